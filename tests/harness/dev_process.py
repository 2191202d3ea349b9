"""``leasehold dev`` as a real child process for tests: its ready line, its profile, signals to stop it.

Example::

    dev = Dev(tmp_path / "data", tmp_path / "dev.log")
    dev.client().list_functions()
    dev.stop(signal.SIGKILL)            # a crash
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

import boto3
import botocore.session

from tests.harness.lambda_clients import lambda_client, remember, signed_headers

__all__ = ["READY", "ROOT", "Dev", "wait_for", "zip_of"]

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"ready http=(\S+) grpc=(\S+) data=\S+ auth=(sigv4|none)")
EXPORT = re.compile(r"^export (.*)$")


def zip_of(source: str) -> bytes:
    """A code zip with ``app.py``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


class Dev:
    """One ``leasehold dev`` process and its output."""

    def __init__(self, data_dir: Path, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assignment.cli", "dev", "--data-dir", str(data_dir), "--http-port", "0",
             "--grpc-port", "0", "--log-level", "INFO", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        #: The variables of the export line (empty with --auth none).
        self.profile: dict[str, str] = {}
        self.http, self.auth = self._wait_ready()
        if self.auth == "sigv4":
            self.profile = dict(part.split("=", 1) for part in self._line(EXPORT).group(1).split())
            remember(self.http, self.credentials())

    def _line(self, pattern: re.Pattern[str], timeout_s: float = 60.0) -> re.Match[str]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode()
            if not line:
                raise AssertionError(f"leasehold dev exited early:\n{self.log_path.read_text()[-4000:]}")
            self.lines.append(line)
            match = pattern.search(line)
            if match:
                return match
        raise AssertionError(f"leasehold dev printed no {pattern.pattern!r} in time")

    def _wait_ready(self) -> tuple[str, str]:
        match = self._line(READY)
        return match.group(1), match.group(3)

    def session(self) -> boto3.Session:
        """A boto3 session reading the profile files the export line names, as boto3 would from them."""
        core = botocore.session.Session()
        core.set_config_variable("credentials_file", self.profile["AWS_SHARED_CREDENTIALS_FILE"])
        core.set_config_variable("config_file", self.profile["AWS_CONFIG_FILE"])
        core.set_config_variable("profile", self.profile["AWS_PROFILE"])
        return boto3.Session(botocore_session=core)

    def credentials(self) -> tuple[str, str]:
        found = self.session().get_credentials()
        assert found is not None
        return found.access_key, found.secret_key

    def client(self) -> Any:
        return lambda_client(self.http)

    def admin(self, path: str) -> Any:
        url = f"{self.http}/_leasehold/v1/{path}"
        request = urllib.request.Request(url, headers=signed_headers("GET", url))
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 30.0) -> int:
        self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=timeout_s)
        self.lines.extend(out.decode().splitlines(keepends=True))
        self._log.close()
        return self.process.returncode


def wait_for(condition: Any, timeout_s: float, what: str) -> Any:
    """``condition()``'s first truthy value, polled every 0.1 s; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
