"""Assignment servers as real processes (``python -m assignment.server_cli server ...``) for tests.

Each process gets a free loopback port and a log file; it can be stopped gracefully (SIGTERM), killed
(SIGKILL), paused (SIGSTOP) and resumed (SIGCONT). Readiness is the gRPC health service reporting SERVING.

Example::

    server = ServerProcess.start("s1", zk_hosts, journal_url, tmp_path, partitions=8)   # workers="grpc": real agents
    server.wait_serving()
    server.kill()
    print(server.log_tail())
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.harness import tls

__all__ = ["ServerProcess", "free_port"]

_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One ``leasehold server`` process."""

    server_id: str
    zk: str
    journal: str
    log_path: Path
    port: int
    extra: list[str] = field(default_factory=list)
    #: ``accept`` (worker doubles that register in coordination only) or ``grpc`` (real worker agents).
    workers: str = "accept"
    process: subprocess.Popen[bytes] | None = None
    #: Serve and call plaintext (``--insecure``) instead of mTLS with the session's ``server`` identity.
    insecure: bool = False

    @property
    def address(self) -> str:
        """The address the server listens on."""
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        server_id: str,
        zk: str,
        journal: str,
        folder: Path,
        *,
        partitions: int = 8,
        extra: list[str] | None = None,
        workers: str = "accept",
        insecure: bool = False,
    ) -> ServerProcess:
        """Start a server process (it keeps its port across restarts)."""
        args = ["--partitions", str(partitions), *(extra or [])]
        server = cls(server_id, zk, journal, folder / f"{server_id}.log", free_port(), args, workers, None, insecure)
        server.launch()
        return server

    def launch(self) -> None:
        """(Re)start the process on the same port."""
        log = self.log_path.open("ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assignment.server_cli",
                "server",
                "--zk",
                self.zk,
                "--journal",
                self.journal,
                "--listen",
                self.address,
                "--id",
                self.server_id,
                "--zone",
                "zone-a",
                "--workers",
                self.workers,
                *(["--insecure"] if self.insecure else tls.tls_args("server")),
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=_ROOT,
            env=env,
        )
        log.close()

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def wait_serving(self, timeout_s: float = 30.0) -> None:
        """Wait until the health service reports SERVING."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"server {self.server_id} exited:\n{self.log_tail()}")
            with contextlib.suppress(grpc.RpcError), self._health_channel() as channel:
                stub: Any = health_pb2_grpc.HealthStub(channel)  # the typeshed stub declares no methods
                answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"server {self.server_id} not serving in {timeout_s}s:\n{self.log_tail()}")

    def _health_channel(self) -> grpc.Channel:
        if self.insecure:
            return grpc.insecure_channel(self.address)
        return tls.channel(self.address, "server")

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal to the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (graceful stop) and wait; the exit code."""
        if self.process is None:
            return 0
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def log_tail(self, lines: int = 80) -> str:
        """The last lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- {self.server_id} ({self.log_path})\n" + "\n".join(text[-lines:])
