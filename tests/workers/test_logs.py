"""The platform's log framing: AWS's text lines, and with LogFormat JSON the ``platform.*`` records,
filtered by the system log level."""

from __future__ import annotations

import json

from workers.logs import PlatformLog


def test_text_frames_with_start_end_and_report() -> None:
    log = PlatformLog()
    assert log.start("r1", "$LATEST") == "START RequestId: r1 Version: $LATEST\n"
    assert log.end("r1") == "END RequestId: r1\n"
    report = log.report("r1", duration_ms=1.2, memory_mb=128, max_memory_mb=40, status="timeout")
    assert report.startswith("REPORT RequestId: r1\tDuration: 1.20 ms\tBilled Duration: 2 ms")
    assert report.endswith("\tStatus: timeout\n")


def test_json_writes_platform_records_and_no_end() -> None:
    log = PlatformLog(json=True)
    start = json.loads(log.start("r1", "3"))
    assert (start["type"], start["record"]) == ("platform.start", {"requestId": "r1", "version": "3"})
    assert start["time"].endswith("Z")
    assert log.end("r1") == ""
    report = json.loads(
        log.report("r1", duration_ms=1.2, memory_mb=128, max_memory_mb=40, init_ms=5, json_status="error")
    )
    assert report["type"] == "platform.report"
    assert report["record"]["status"] == "error"
    assert report["record"]["metrics"] == {
        "durationMs": 1.2,
        "billedDurationMs": 2,
        "memorySizeMB": 128,
        "maxMemoryUsedMB": 40,
        "initDurationMs": 5,
    }
    init = json.loads(log.init_report(12.5, "error", "Runtime.ExitError"))
    assert (init["type"], init["record"]["errorType"]) == ("platform.initReport", "Runtime.ExitError")


def test_a_warn_system_level_leaves_out_the_info_records() -> None:
    log = PlatformLog(json=True, system_level="WARN")
    assert log.start("r1", "$LATEST") == ""
    assert log.report("r1", duration_ms=1, memory_mb=128, max_memory_mb=1) == ""
    assert log.init_report(1, "error") == ""
    assert PlatformLog(json=True, system_level="DEBUG").start("r1", "1") != ""
