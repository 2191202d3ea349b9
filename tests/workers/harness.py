"""A real worker agent in its own process, and helpers to make function packages and call it."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc

from journal.v1 import records_pb2
from tests.harness import tls
from workers.v1 import worker_pb2, worker_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
_tokens = itertools.count(1)


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy (returns it) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class AgentProcess:
    """A ``leasehold worker`` process and a channel to it."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    #: Plaintext (``--insecure``) instead of mTLS with the session's identities.
    insecure: bool = False
    channel: grpc.Channel = field(init=False)
    frontend_channel: grpc.Channel = field(init=False)
    stub: worker_pb2_grpc.WorkerStub = field(init=False)

    def __post_init__(self) -> None:
        options = [("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)]
        address = f"127.0.0.1:{self.port}"
        if self.insecure:
            self.channel = grpc.insecure_channel(address, options=options)
            self.frontend_channel = grpc.insecure_channel(address, options=options)
        else:
            self.channel = tls.channel(address, "worker", as_role="server", options=options)
            self.frontend_channel = tls.channel(address, "worker", as_role="frontend", options=options)
        self.stub = cast(worker_pb2_grpc.WorkerStub, _ClusterCalls(self.channel, self.frontend_channel))

    def log(self) -> str:
        """The agent's own log so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the agent and wait for it to exit; return its exit status."""
        self.channel.close()
        self.frontend_channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


class _ClusterCalls:
    """A Worker stub that makes each call as the role that makes it in a cluster (the worker's policy):
    sandboxes are managed by a server, invoked by a frontend."""

    def __init__(self, as_server: grpc.Channel, as_frontend: grpc.Channel) -> None:
        server, frontend = worker_pb2_grpc.WorkerStub(as_server), worker_pb2_grpc.WorkerStub(as_frontend)
        self.CreateSandbox = server.CreateSandbox
        self.DestroySandbox = server.DestroySandbox
        self.ResetSandbox = server.ResetSandbox
        self.ListSandboxes = server.ListSandboxes
        self.Invoke = frontend.Invoke


def start_agent(data_dir: Path, memory_mb: int = 8192, *extra: str, insecure: bool = False) -> AgentProcess:
    """Start ``python -m workers.cli`` on an ephemeral port; wait for its ``worker_listening`` line."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-agent.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the child
    command = [sys.executable, "-m", "workers.cli", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    command += [
        "--memory",
        str(memory_mb),
        "--heartbeat",
        "0.2",
        *(["--insecure"] if insecure else tls.tls_args("worker")),
        *extra,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, cwd=ROOT)
    log_file.close()
    assert proc.stdout is not None
    found: list[int] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b"event=worker_listening port="):
                found.append(int(line.split(b"=")[-1]))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)
    if not found:
        proc.kill()
        raise AssertionError(f"agent did not start: {log_path.read_text(errors='replace')}")
    return AgentProcess(proc, found[0], data_dir, log_path, insecure)


def function_dir(root: Path, code: str, name: str = "app.py", files: dict[str, str] | None = None) -> Path:
    """A folder holding ``app.py`` (dedented) and any other files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(textwrap.dedent(code))
    for path, text in (files or {}).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    return root


def create(
    stub: worker_pb2_grpc.WorkerStub,
    sandbox_id: str,
    code: Path | worker_pb2.CodeRef,
    handler: str = "app.handler",
    **fields: Any,
) -> worker_pb2.CreateSandboxResponse:
    """CreateSandbox with sensible defaults (python, 128 MB, 3 s)."""
    ref = code if isinstance(code, worker_pb2.CodeRef) else worker_pb2.CodeRef(directory=str(code))
    fields.setdefault("memory_mb", 128)
    fields.setdefault("function_name", "fn")
    request = worker_pb2.CreateSandboxRequest(sandbox_id=sandbox_id, code=ref, handler=handler, **fields)
    response: worker_pb2.CreateSandboxResponse = stub.CreateSandbox(request, timeout=60)
    return response


def invoke(
    stub: worker_pb2_grpc.WorkerStub,
    sandbox_id: str,
    payload: bytes = b"{}",
    *,
    token: tuple[int, int] | None = None,
    request_id: str = "",
    **fields: Any,
) -> worker_pb2.InvokeResponse:
    """Invoke with a fresh lease token (epoch 1, increasing seq) unless one is given."""
    epoch, seq = token if token is not None else (1, next(_tokens))
    request = worker_pb2.InvokeRequest(
        sandbox_id=sandbox_id,
        token=records_pb2.LeaseToken(epoch=epoch, seq=seq),
        payload=payload,
        request_id=request_id or f"req-{seq}-{os.urandom(4).hex()}",
        **fields,
    )
    response: worker_pb2.InvokeResponse = stub.Invoke(request, timeout=120)
    return response


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    """The status code a call fails with (fails the test when it succeeds)."""
    try:
        call()
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    raise AssertionError("the call succeeded")


def processes_of(uid: int) -> list[int]:
    """Pids of the live (non-zombie) processes owned by ``uid``."""
    pids = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        with open(f"/proc/{entry.name}/stat", "rb") as f:
                            if f.read().rpartition(b")")[2].split()[0] != b"Z":
                                pids.append(int(entry.name))
                except (FileNotFoundError, ProcessLookupError):
                    continue
    return pids
