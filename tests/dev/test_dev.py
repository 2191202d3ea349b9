"""``leasehold dev`` as a real process: ready line, boto3 against it, Ctrl-C, restart on the same data dir.

The process is the README's first command minus the sample; it is stopped with real signals (SIGINT as
Ctrl-C, SIGKILL as a crash) and started again on the same data directory.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.harness.lambda_clients import lambda_client

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"ready http=(\S+) grpc=(\S+)")

SLOW_ECHO = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    print("ran", event.get("n"))
    return {"n": event.get("n"), "version": context.function_version}
"""


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


class Dev:
    """One ``leasehold dev`` process and its output."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assignment.cli", "dev", "--data-dir", str(data_dir), "--http-port", "0",
             "--grpc-port", "0", "--log-level", "INFO"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        self.http = self._wait_ready()

    def _wait_ready(self, timeout_s: float = 60.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode()
            if not line:
                raise AssertionError(f"leasehold dev exited before ready:\n{self.log_path.read_text()[-4000:]}")
            self.lines.append(line)
            match = READY.search(line)
            if match:
                return match.group(1)
        raise AssertionError("leasehold dev not ready in time")

    def client(self) -> Any:
        return lambda_client(self.http)

    def admin(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.http}/_leasehold/v1/{path}", timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 30.0) -> int:
        self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=timeout_s)
        self.lines.extend(out.decode().splitlines(keepends=True))
        self._log.close()
        return self.process.returncode


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _wait(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_ctrl_c_stops_cleanly_and_a_restart_keeps_functions_and_versions(dev_dir: Path, tmp_path: Path) -> None:
    dev = Dev(dev_dir, tmp_path / "dev1.log")
    try:
        client = dev.client()
        client.create_function(
            FunctionName="echo", Runtime="python3.11", Handler="app.handler", Role="arn:aws:iam::000000000000:role/x",
            Code={"ZipFile": _zip(SLOW_ECHO)}, Timeout=10,
        )  # fmt: skip
        first = json.loads(client.invoke(FunctionName="echo", Payload=b'{"n": 1}')["Payload"].read())
        assert first == {"n": 1, "version": "$LATEST"}
        published = client.publish_version(FunctionName="echo")["Version"]
    finally:
        code = dev.stop(signal.SIGINT)
    assert code == 0, dev.log_path.read_text()[-4000:]
    assert any(line.startswith("stopped") for line in dev.lines)

    dev = Dev(dev_dir, tmp_path / "dev2.log")
    try:
        client = dev.client()
        names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
        assert names == ["echo"]
        answer = client.invoke(FunctionName="echo", Qualifier=published, Payload=b'{"n": 2}')
        assert answer["ExecutedVersion"] == published
        assert json.loads(answer["Payload"].read()) == {"n": 2, "version": published}
    finally:
        assert dev.stop(signal.SIGINT) == 0


def test_events_accepted_before_a_crash_run_after_the_restart(dev_dir: Path, tmp_path: Path) -> None:
    dev = Dev(dev_dir, tmp_path / "dev1.log")
    try:
        client = dev.client()
        client.create_function(
            FunctionName="slow", Runtime="python3.11", Handler="app.handler", Role="arn:aws:iam::000000000000:role/x",
            Code={"ZipFile": _zip(SLOW_ECHO)}, Timeout=30,
        )  # fmt: skip
        accepted = []
        for n in range(6):
            answer = client.invoke(
                FunctionName="slow", InvocationType="Event", Payload=json.dumps({"n": n, "sleep": 2})
            )
            assert answer["StatusCode"] == 202
            accepted.append(answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    finally:
        dev.stop(signal.SIGKILL)  # a crash: events are queued, some are running

    dev = Dev(dev_dir, tmp_path / "dev2.log")
    try:
        _wait(lambda: dev.admin("status")["queue_depth"] == 0, 90, "the queue to drain")
        ran = {event["request_id"] for event in dev.admin("logs/slow?limit=100")["events"]}
        assert set(accepted) <= ran | {item["request_id"] for item in dev.admin("dlq/slow")["items"]}
    finally:
        assert dev.stop(signal.SIGINT) == 0
