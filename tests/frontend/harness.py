"""A running Leasehold for frontend tests: the real embedded platform (worker agent, assignment server,
frontend) on an event loop in a background thread, so tests can drive it with blocking boto3 calls.
Each platform remembers its admin key for its endpoint (:mod:`tests.harness.lambda_clients`), so clients
and :func:`raw_request` sign as its admin unless told otherwise.

Example::

    with running_platform(tmp_path) as platform:
        client = lambda_client(platform.http_endpoint)
        client.create_function(...)
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from mypy_boto3_lambda import LambdaClient

from assignment.dev import DevConfig, DevPlatform
from assignment.frontend.auth.keys import new_access_key_id, new_secret
from assignment.frontend.auth.sessions import SessionIssuer, cluster_secret
from tests.harness import tls
from tests.harness.lambda_clients import KeyPair, remember, signed_headers
from tests.harness.lambda_clients import lambda_client as shared_lambda_client

T = TypeVar("T")

ROLE = "arn:aws:iam::000000000000:role/test"


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="platform-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def running_platform(data_dir: Path, **frontend: Any) -> Iterator[tuple[DevPlatform, LoopThread]]:
    """The embedded platform on free ports (its key remembered for its endpoint), stopped on exit."""
    loop = LoopThread()
    platform = DevPlatform(DevConfig(data_dir=data_dir, http_port=0, grpc_port=0, frontend=frontend))
    try:
        loop.run(platform.start(), timeout=120)
        if platform.key is not None:
            remember(platform.http_endpoint, (platform.key.access_key_id, platform.key.secret))
        yield platform, loop
    finally:
        loop.run(platform.stop(), timeout=120)
        loop.close()


_FRONTEND_MAIN = """
import argparse, sys
from assignment.frontend import cli
parser = argparse.ArgumentParser(prog="leasehold")
cli.register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def new_key() -> KeyPair:
    """A fresh admin key (id, secret), e.g. for a frontend's bootstrap."""
    return new_access_key_id(), new_secret()


@contextmanager
def frontend_child(
    log_path: Path, *args: str, key: KeyPair | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``leasehold frontend`` as a child process on free ports with ``args``, bootstrapped (through its
    environment variable) with ``key`` or a fresh one, remembered for its endpoint; yields its HTTP endpoint
    and the process (a test may kill it), and kills it on exit if it still runs."""
    command = [sys.executable, "-c", _FRONTEND_MAIN, "frontend", "--http=127.0.0.1:0", "--grpc=127.0.0.1:0"]
    key = key or new_key()
    env = {**os.environ, "LEASEHOLD_FRONTEND_BOOTSTRAP_KEY": f"{key[0]}:{key[1]}"}
    with (
        log_path.open("w") as log_file,
        subprocess.Popen(
            [*command, "--log-level=INFO", *tls.tls_args("frontend"), *args],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env=env,
        ) as process,
    ):
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("ready http="), (line, log_path.read_text()[-3000:])
            endpoint = f"http://127.0.0.1:{line.split()[1].split('=')[1]}"
            remember(endpoint, key)
            yield endpoint, process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)


@contextmanager
def frontend_process(log_path: Path, *args: str, key: KeyPair | None = None) -> Iterator[str]:
    """:func:`frontend_child`, yielding its HTTP endpoint, and checking that SIGTERM stops it cleanly
    (exit status 0)."""
    with frontend_child(log_path, *args, key=key) as (endpoint, process):
        yield endpoint
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        assert code == 0, log_path.read_text()[-3000:]


def lambda_client(endpoint: str, *, timeout_s: float = 60.0, credentials: KeyPair | None = None) -> LambdaClient:
    """A boto3 Lambda client for ``endpoint``: the endpoint's key (or ``credentials``), us-east-1, no
    retries (closed with the module, see :mod:`tests.harness.lambda_clients`)."""
    return shared_lambda_client(endpoint, read_timeout_s=timeout_s, credentials=credentials)


def make_zip(files: Mapping[str, str | bytes]) -> bytes:
    """A zip holding ``files`` (name → content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def raw_request(
    endpoint: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    sign: bool = True,
    credentials: KeyPair | None = None,
    service: str = "lambda",
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP request (no SDK validation), signed with ``credentials`` or the endpoint's key unless
    ``sign`` is False (for ``service``, the signing name): ``(status, headers (lower-case), body)``."""
    sent = dict(headers or {})
    if sign:
        sent = signed_headers(method, endpoint + path, headers, body, credentials=credentials, service=service)
    request = urllib.request.Request(endpoint + path, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def error_of(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, str, dict[str, Any]]:
    """``(status, x-amzn-ErrorType, JSON body)`` of an error answer."""
    status, headers, body = answer
    return status, headers.get("x-amzn-errortype", ""), json.loads(body)


def function_session(platform: DevPlatform, name: str = "worker-fn") -> KeyPair:
    """Credentials of a session of the function ``name`` (made first if it does not exist: the resolver
    refuses sessions of a function that does not), as its sandboxes get them."""
    assert platform.frontend is not None
    assert platform.frontend.journal is not None
    assert platform.frontend.registry is not None
    issuer = SessionIssuer(cluster_secret(platform.frontend.journal))
    lam = lambda_client(platform.http_endpoint)
    if name not in {f["FunctionName"] for f in lam.list_functions()["Functions"]}:
        lam.create_function(
            FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
            Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return e\n"})},
        )  # fmt: skip
    incarnation = platform.frontend.registry.get(name).incarnation
    arn = platform.frontend.registry.function_arn(name)
    creds = issuer.issue(name=name, arn=arn, incarnation=incarnation, role=ROLE, now_ms=int(time.time() * 1000))
    return creds.access_key_id, creds.secret_access_key, creds.session_token
