"""The worker's invocation audit log (``--invocation-log``): a real agent process, real function code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from journal.v1 import records_pb2
from tests.workers.harness import AgentProcess, code_of, create, function_dir, invoke, wait_for
from workers import cli
from workers.agent import Agent, AgentConfig
from workers.audit import InvocationLog, read
from workers.v1 import worker_pb2

APP = """
import time


def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""


def test_records_start_and_end_of_every_run_invocation(new_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    audit_path = tmp_path / "audit" / "invocations.jsonl"
    agent = new_agent(2048, "--invocation-log", str(audit_path))
    code = function_dir(tmp_path / "fn", APP)
    create(agent.stub, "p1-s1", code)
    assert invoke(agent.stub, "p1-s1", b"{}", token=(3, 10), request_id="r-ok").outcome == 1
    assert invoke(agent.stub, "p1-s1", b'{"fail": true}', token=(3, 11), request_id="r-fail").function_error
    hostile = 'r"},{"event":"end"}'  # refused: request ids become HTTP headers for the runtime
    assert code_of(lambda: invoke(agent.stub, "p1-s1", b"{}", token=(3, 12), request_id=hostile)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert invoke(agent.stub, "p1-s1", b"{}", token=(3, 12), request_id="r-3").outcome == 1
    # refused invocations never ran, so they are not in the audit log
    stale = code_of(lambda: invoke(agent.stub, "p1-s1", b"{}", token=(3, 9), request_id="r-stale"))
    assert stale == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: invoke(agent.stub, "nope", b"{}", token=(3, 13), request_id="r-x")) == (
        grpc.StatusCode.NOT_FOUND
    )

    opened, *runs = read(audit_path)  # each line is written before the Invoke answer is sent
    assert opened["event"] == "open"
    assert opened["pid"] == agent.proc.pid
    assert [(r["event"], r["request_id"], r["epoch"], r["seq"]) for r in runs] == [
        ("start", "r-ok", 3, 10),
        ("end", "r-ok", 3, 10),
        ("start", "r-fail", 3, 11),
        ("end", "r-fail", 3, 11),
        ("start", "r-3", 3, 12),
        ("end", "r-3", 3, 12),
    ]
    assert [r["outcome"] for r in runs if r["event"] == "end"] == ["ok", "function_error", "ok"]
    assert all(r["sandbox"] == "p1-s1" for r in runs)
    for start, end in zip(runs[::2], runs[1::2], strict=True):
        assert start["start_ms"] == end["start_ms"] <= end["end_ms"]
        assert opened["ms"] <= start["start_ms"]
    assert len(audit_path.read_text().splitlines()) == 7  # the hostile id did not split a line

    # a restarted agent appends to the same file behind a new "open" line
    agent.stop()
    again = new_agent(2048, "--invocation-log", str(audit_path), data_dir=agent.data_dir)
    create(again.stub, "p1-s2", code)
    invoke(again.stub, "p1-s2", b"{}", token=(4, 1), request_id="r-again")
    later = read(audit_path)[7:]
    assert [r["event"] for r in later] == ["open", "start", "end"]
    assert later[0]["pid"] == again.proc.pid


def test_an_invocation_cut_by_a_crash_has_a_start_only(new_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    audit_path = tmp_path / "invocations.jsonl"
    agent = new_agent(2048, "--invocation-log", str(audit_path))
    create(agent.stub, "p0-s1", function_dir(tmp_path / "fn", APP), timeout_ms=30_000)
    future = agent.stub.Invoke.future(_request("p0-s1", (1, 1), b'{"sleep": 20}'), timeout=60)
    wait_for(lambda: any(r["event"] == "start" for r in read(audit_path)), what="the start line")
    agent.proc.kill()
    agent.proc.wait(10)
    with pytest.raises(grpc.RpcError):
        future.result()
    assert [r["event"] for r in read(audit_path)] == ["open", "start"]


def _request(sandbox_id: str, token: tuple[int, int], payload: bytes) -> worker_pb2.InvokeRequest:
    return worker_pb2.InvokeRequest(
        sandbox_id=sandbox_id,
        token=records_pb2.LeaseToken(epoch=token[0], seq=token[1]),
        payload=payload,
        request_id="r-long",
    )


def test_reader_skips_torn_and_garbled_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = InvocationLog.open(path)
    started = log.started("p0-s1", (1, 2), "r1")
    log.ended("p0-s1", (1, 2), "r1", started, "ok")
    log.close()
    log.ended("p0-s1", (1, 3), "r2", started, "ok")  # after close: dropped, not raised
    with path.open("a") as f:
        f.write('[1, 2]\n\x00\xff garbage\n{"event": "start", "sandbox": "p0-s1", "ep')  # torn last line
    assert [r["event"] for r in read(path)] == ["open", "start", "end"]


def test_flag_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    assert parser.parse_args(["worker"]).invocation_log is None
    assert parser.parse_args(["worker", "--invocation-log", "a.jsonl"]).invocation_log == Path("a.jsonl")
    monkeypatch.setenv("LEASEHOLD_WORKER_INVOCATION_LOG", "/var/log/inv.jsonl")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    assert parser.parse_args(["worker"]).invocation_log == Path("/var/log/inv.jsonl")
    # off by default: no file, no audit object on the invoke path
    assert Agent(AgentConfig(data_dir=tmp_path / "data")).audit is None
    assert not any(tmp_path.rglob("*.jsonl"))


def test_agents_sharing_a_host_with_disjoint_uid_bases(
    new_agent: Callable[..., AgentProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sandbox kills go by uid: two agents on one host with the same ``--uid-base`` kill each other's
    sandboxes (found by the chaos test); with disjoint ranges a destroy on one leaves the other's alone."""
    code = function_dir(tmp_path / "fn", APP)
    first = new_agent(1024, "--uid-base", "300000")
    second = new_agent(1024, "--uid-base", "310000")
    create(first.stub, "p0-s1", code)
    create(second.stub, "p0-s1", code)
    first.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="p0-s1"), timeout=30)
    assert invoke(second.stub, "p0-s1", b"{}").outcome == records_pb2.OUTCOME_OK
    for bad in ("0", "999", "-5", str(2**31)):
        assert cli.main(["--uid-base", bad]) == 2
        assert "--uid-base must be between" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--uid-base", "lots"])
