"""The CloudWatch-style lines that frame each invocation's output: START, END, REPORT (and INIT_REPORT),
or with LogFormat JSON the ``platform.*`` records instead (:class:`PlatformLog`).

Example::

    >>> start_line("8f5a", "$LATEST")
    'START RequestId: 8f5a Version: $LATEST\\n'
    >>> report_line("8f5a", duration_ms=15.74, memory_mb=128, max_memory_mb=56, init_ms=130.49).split("\\t")[1:3]
    ['Duration: 15.74 ms', 'Billed Duration: 16 ms']
"""

from __future__ import annotations

import json as _json
import math
import time
from dataclasses import dataclass

__all__ = [
    "SYSTEM_LOG_LEVELS",
    "PlatformLog",
    "billed_ms",
    "end_line",
    "init_report_line",
    "report_line",
    "start_line",
    "timeout_line",
    "utc_timestamp",
]


def billed_ms(duration_ms: float) -> int:
    """Billed duration: the duration rounded up to the next millisecond (at least 1 ms)."""
    return max(1, math.ceil(duration_ms))


def utc_timestamp(epoch_s: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as Lambda prints it (``2024-01-02T03:04:05.678Z``)."""
    now = time.time() if epoch_s is None else epoch_s
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{whole}.{int((now % 1) * 1000):03d}Z"


def start_line(request_id: str, version: str) -> str:
    """``START RequestId: <id> Version: <version>``."""
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    """``END RequestId: <id>``."""
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None = None,
    restore_ms: float | None = None,
    status: str | None = None,
) -> str:
    """The REPORT line; ``Init Duration`` (or ``Restore Duration``) only on a sandbox's first invoke."""
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_mb} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    if restore_ms is not None:
        parts.append(f"Restore Duration: {restore_ms:.2f} ms")
    if status is not None:
        parts.append(f"Status: {status}")
    return "\t".join(parts) + "\n"


def init_report_line(duration_ms: float, status: str, error_type: str | None = None) -> str:
    """``INIT_REPORT Init Duration: ... Phase: init Status: error Error Type: ...`` for a failed init."""
    line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    return line + "\n"


def timeout_line(request_id: str, timeout_s: float) -> str:
    """``<timestamp> <id> Task timed out after 3.00 seconds``."""
    return f"{utc_timestamp()} {request_id} Task timed out after {timeout_s:.2f} seconds\n"


#: The system log levels of AWS's advanced logging controls, least severe first.
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")


@dataclass(frozen=True, slots=True)
class PlatformLog:
    """How a sandbox frames its invocations' output: AWS's text lines, or with ``json`` (LogFormat JSON)
    the ``platform.*`` records Lambda writes then — ``platform.start`` and ``platform.report``, both at
    INFO, so a ``system_level`` of WARN leaves them out. The END line has no JSON record (Lambda writes
    none to the log)."""

    json: bool = False
    system_level: str = "INFO"

    def _shows(self, level: str) -> bool:
        wanted = self.system_level or "INFO"
        return SYSTEM_LOG_LEVELS.index(level) >= SYSTEM_LOG_LEVELS.index(wanted)

    @staticmethod
    def _record(kind: str, record: dict[str, object]) -> str:
        return _json.dumps({"time": utc_timestamp(), "type": kind, "record": record}) + "\n"

    def start(self, request_id: str, version: str) -> str:
        """``START`` or ``platform.start``."""
        if not self.json:
            return start_line(request_id, version)
        if not self._shows("INFO"):
            return ""
        return self._record("platform.start", {"requestId": request_id, "version": version})

    def end(self, request_id: str) -> str:
        """``END`` (nothing in JSON)."""
        return "" if self.json else end_line(request_id)

    def report(
        self,
        request_id: str,
        *,
        duration_ms: float,
        memory_mb: int,
        max_memory_mb: int,
        init_ms: float | None = None,
        restore_ms: float | None = None,
        status: str | None = None,
        json_status: str = "success",
    ) -> str:
        """``REPORT`` (with ``Status: <status>`` when given) or ``platform.report`` (metrics, and
        ``json_status``: success, error or timeout)."""
        if not self.json:
            return report_line(
                request_id,
                duration_ms=duration_ms,
                memory_mb=memory_mb,
                max_memory_mb=max_memory_mb,
                init_ms=init_ms,
                restore_ms=restore_ms,
                status=status,
            )
        if not self._shows("INFO"):
            return ""
        metrics: dict[str, object] = {
            "durationMs": round(duration_ms, 3),
            "billedDurationMs": billed_ms(duration_ms),
            "memorySizeMB": memory_mb,
            "maxMemoryUsedMB": max_memory_mb,
        }
        if init_ms is not None:
            metrics["initDurationMs"] = round(init_ms, 3)
        if restore_ms is not None:
            metrics["restoreDurationMs"] = round(restore_ms, 3)
        record: dict[str, object] = {"requestId": request_id, "metrics": metrics, "status": json_status}
        return self._record("platform.report", record)

    def init_report(self, duration_ms: float, status: str, error_type: str | None = None) -> str:
        """``INIT_REPORT`` or ``platform.initReport`` of a failed init."""
        if not self.json:
            return init_report_line(duration_ms, status, error_type)
        if not self._shows("INFO"):
            return ""
        record: dict[str, object] = {
            "initializationType": "on-demand",
            "phase": "init",
            "status": status,
            "metrics": {"durationMs": round(duration_ms, 3)},
        }
        if error_type:
            record["errorType"] = error_type
        return self._record("platform.initReport", record)
