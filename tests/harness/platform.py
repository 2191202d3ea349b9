"""The docker-compose topology as local processes: ZooKeeper, PostgreSQL, 3 servers, 2 workers, 1 frontend.

The Leasehold processes run exactly the commands of ``docker-compose.yml`` (read with
``tests/deploy/compose.py``), with only addresses rewritten so the two cannot drift: a ``host:port``
that names a compose service becomes that service's loopback address (every listening flag gets a
free port), ``--zk`` the test ZooKeeper, ``postgresql://...@postgres`` URLs a fresh schema of the test
PostgreSQL, ``--data-dir`` a temporary folder, a Docker secret (``/run/secrets/NAME``) a file of the same
name in the platform's folder (``journal-url`` holds the test database's URL), ``--tls-dir /tls`` the
identity of the process's role made by the compose file's one-shot ``certs`` service (run first, to
completion, as ``service_completed_successfully`` asks). Tests may append flags per subcommand (shorter session
timeouts). Services start in dependency order and, like compose, wait only for dependencies marked
``service_healthy``; readiness is gRPC health SERVING, as the compose healthchecks ask (a frontend's on
its ``--grpc`` port). The frontend is bootstrapped with a fresh admin key through its environment
(compose's ``LEASEHOLD_ADMIN_KEY``), remembered for :attr:`Platform.endpoint`. On a start failure every
log is in the exception; :meth:`Platform.log_tail` gives them for a failed test. Stop: SIGTERM to each
process group, SIGKILL after a grace period.

Example::

    with Platform.start(tmp_path, postgres) as platform:
        boto3.client("lambda", endpoint_url=platform.endpoint, ...)
        platform.kill("server2")
        print(platform.log_tail())
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from assignment.commands.probe import probe_grpc
from assignment.frontend.auth.keys import new_access_key_id, new_secret
from tests.deploy.compose import Compose, load_compose
from tests.harness.cluster import free_port
from tests.harness.lambda_clients import remember
from tests.harness.postgres import PostgresServer
from tests.harness.zookeeper import ZooKeeperCluster
from workers.tls import Tls

__all__ = ["LISTEN_FLAGS", "Platform", "PlatformError", "ServiceProcess", "local_command", "service_ports"]

_ROOT = Path(__file__).resolve().parents[2]
#: Flags whose value is an address a process listens on (each gets a free loopback port).
LISTEN_FLAGS = ("--listen", "--http", "--grpc")
_URL_FLAGS = ("--journal", "--code-store")
#: Where Docker mounts a service's secrets.
SECRETS = "/run/secrets/"


class PlatformError(RuntimeError):
    """The platform did not start; the message holds every log tail."""


@dataclass
class ServiceProcess:
    """One Leasehold process of the platform."""

    name: str
    argv: list[str]
    log_path: Path
    #: container port → loopback port, for each listening flag.
    ports: dict[int, int]
    process: subprocess.Popen[bytes] | None = None
    #: Variables set for this process on top of the test's environment.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def subcommand(self) -> str:
        """``server``, ``worker`` or ``frontend``."""
        return self.argv[0]

    def address(self, container_port: int | None = None) -> str:
        """The loopback address of the (first, or given) listening port."""
        port = self.ports[container_port] if container_port is not None else next(iter(self.ports.values()))
        return f"127.0.0.1:{port}"

    def launch(self) -> None:
        """Start the process in its own process group (so its sandboxes can be signalled too)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assignment.cli", *self.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,
        )
        log.close()

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group (SIGSTOP pauses it, SIGCONT resumes it)."""
        assert self.process is not None, self.name
        os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process group and reap."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM, wait ``grace_s``, then SIGKILL the group; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # sandboxes left behind by the process
        return self.process.returncode

    def log_tail(self, lines: int = 80) -> str:
        """The last lines of the process's log."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- {self.name} ({self.log_path})\n" + "\n".join(text[-lines:])


def service_ports(compose: Compose) -> dict[tuple[str, int], int]:
    """(service, container port) → a free loopback port, for every listening flag in the compose file."""
    ports: dict[tuple[str, int], int] = {}
    for name in compose.leasehold_services():
        argv = compose.command(name)
        for flag, value in itertools.pairwise(argv):
            if flag in LISTEN_FLAGS:
                ports[(name, int(value.rpartition(":")[2]))] = free_port()
    return ports


def local_command(
    compose: Compose, name: str, ports: dict[tuple[str, int], int], *, zk: str, database: str, data_root: Path
) -> list[str]:
    """The compose command of ``name`` with every address rewritten for loopback processes."""
    services = set(compose.services)
    argv = compose.command(name)
    out: list[str] = []
    i = 0
    while i < len(argv):
        flag = argv[i]
        out.append(flag)
        if i + 1 >= len(argv) or not flag.startswith("--") or argv[i + 1].startswith("--"):
            i += 1
            continue
        value = argv[i + 1]
        if flag in LISTEN_FLAGS:
            value = f"127.0.0.1:{ports[(name, int(value.rpartition(':')[2]))]}"
        elif flag == "--zk":
            value = zk
        elif flag in _URL_FLAGS and urllib.parse.urlsplit(value).hostname in services:
            value = database
        elif flag == "--lambda-endpoint":
            url = urllib.parse.urlsplit(value)
            assert url.hostname is not None, value
            assert url.port is not None, value
            value = url._replace(netloc=f"127.0.0.1:{ports[(url.hostname, url.port)]}").geturl()
        elif flag == "--data-dir":
            value = str(data_root / name)
        elif flag == "--tls-dir":
            value = str(data_root / "certs" / argv[0])
        elif value.startswith(SECRETS):
            value = str(data_root / "secrets" / value.removeprefix(SECRETS))
        else:
            addresses = []
            for part in value.split(","):
                host, sep, port = part.rpartition(":")
                known = sep and host in services and port.isdigit()
                addresses.append(f"127.0.0.1:{ports[(host, int(port))]}" if known else part)
            value = ",".join(addresses)
        out.append(value)
        i += 2
    if out[:2] == ["certs", "init"]:
        out[2] = str(data_root / "certs")
    return out


def _start_order(compose: Compose) -> list[str]:
    order: list[str] = []

    def visit(node: str) -> None:
        if node in order:
            return
        for target in compose.services[node].get("depends_on") or {}:
            visit(target)
        order.append(node)

    for name in compose.leasehold_services():
        visit(name)
    return [name for name in order if name in compose.leasehold_services()]


@dataclass
class Platform:
    """ZooKeeper + PostgreSQL + the compose file's Leasehold services as local processes."""

    root: Path
    zk: ZooKeeperCluster
    postgres: PostgresServer
    schema: str
    database: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    compose: Compose = field(default_factory=load_compose)
    #: The frontend's bootstrap admin key (id, secret).
    key: tuple[str, str] = field(default_factory=lambda: (new_access_key_id(), new_secret()))

    @classmethod
    def start(
        cls,
        root: Path,
        postgres: PostgresServer,
        *,
        extra: dict[str, list[str]] | None = None,
        timeout_s: float = 90.0,
    ) -> Platform:
        """Start everything and wait until each process is ready; ``extra`` appends flags per subcommand."""
        zk = ZooKeeperCluster.start(size=1)
        schema = f"platform_{uuid.uuid4().hex[:10]}"
        platform = cls(root, zk, postgres, schema, postgres.create_schema(schema))
        try:
            platform._launch_all(extra or {}, timeout_s)
        except BaseException:
            logs = platform.log_tail()
            platform.stop()
            raise PlatformError(f"the platform did not start:\n{logs}") from None
        return platform

    def _launch_all(self, extra: dict[str, list[str]], timeout_s: float) -> None:
        """Launch in dependency order, waiting only where compose would: ``condition: service_healthy``."""
        ports = service_ports(self.compose)
        secrets = self.root / "secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        (secrets / "journal-url").write_text(self.database + "\n")
        for name in _start_order(self.compose):
            for target, rule in (self.compose.services[name].get("depends_on") or {}).items():
                if target in self.services and rule.get("condition") == "service_healthy":
                    self.wait_ready(target, timeout_s)
            argv = local_command(
                self.compose, name, ports, zk=self.zk.hosts, database=self.database, data_root=self.root
            )
            if argv[0] == "certs":  # the one-shot
                command = [sys.executable, "-m", "assignment.cli", *argv]
                done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=_ROOT)
                if done.returncode != 0:
                    raise PlatformError(f"{name} failed: {done.stdout}{done.stderr}")
                continue
            argv += extra.get(argv[0], [])
            own = {container: local for (service, container), local in ports.items() if service == name}
            service = ServiceProcess(name, argv, self.root / f"{name}.log", own)
            if service.subcommand == "frontend":
                service.env["LEASEHOLD_FRONTEND_BOOTSTRAP_KEY"] = ":".join(self.key)
            self.services[name] = service
            service.launch()
        for name in self.services:
            self.wait_ready(name, timeout_s)
        remember(self.endpoint, self.key)

    def wait_ready(self, name: str, timeout_s: float = 60.0) -> None:
        """Wait until ``name``'s gRPC health service reports SERVING (a frontend's on its gRPC port)."""
        service = self.services[name]
        deadline = time.monotonic() + timeout_s
        address = service.address(9001) if service.subcommand == "frontend" else service.address()
        while True:
            if not service.alive:
                raise PlatformError(f"{name} exited ({service.process and service.process.returncode})")
            if not probe_grpc(address, 1.0, self.identity(service.subcommand)):
                return
            if time.monotonic() > deadline:
                raise PlatformError(f"{name} not ready in {timeout_s}s")
            time.sleep(0.1)

    def identity(self, role: str) -> Tls:
        """The platform's identity of ``role`` (``client`` for a gRPC caller outside the cluster)."""
        return Tls.load(self.root / "certs" / role)

    @property
    def endpoint(self) -> str:
        """The frontend's Lambda HTTP API (``http://127.0.0.1:PORT``)."""
        return f"http://{self.services['frontend'].address(9000)}"

    @property
    def grpc_endpoint(self) -> str:
        """The frontend's gRPC API address."""
        return self.services["frontend"].address(9001)

    def add_copy(
        self, name: str, of: str, *, extra: list[str] | None = None, timeout_s: float = 60.0
    ) -> ServiceProcess:
        """Start ``name``: another process of service ``of`` (its command, fresh listening ports, ``extra``
        appended), as ``docker compose up --scale`` would; ready when it returns."""
        ports = {(key, port): local for (key, port), local in service_ports(self.compose).items() if key == of}
        argv = local_command(self.compose, of, ports, zk=self.zk.hosts, database=self.database, data_root=self.root)
        own = {container: local for (_, container), local in ports.items()}
        service = ServiceProcess(name, [*argv, *(extra or [])], self.root / f"{name}.log", own)
        self.services[name] = service
        service.launch()
        self.wait_ready(name, timeout_s)
        return service

    def by_subcommand(self, subcommand: str) -> list[ServiceProcess]:
        """The running services of one kind, in compose order."""
        return [s for s in self.services.values() if s.subcommand == subcommand]

    def kill(self, name: str) -> None:
        """SIGKILL one service (and its process group)."""
        self.services[name].kill()

    def log_tail(self, lines: int = 60) -> str:
        """Every process's log tail, ZooKeeper's and PostgreSQL's included."""
        parts = [s.log_tail(lines) for s in self.services.values()]
        parts.append(self.zk.log_tail(20))
        parts.append("--- postgresql\n" + self.postgres.log_tail(2000))
        return "\n".join(parts)

    def stop(self) -> None:
        """Frontend first, then workers, then servers: SIGTERM, SIGKILL after the grace period; then ZooKeeper."""
        for name in reversed(list(self.services)):
            self.services[name].terminate()
        self.zk.close()
        with contextlib.suppress(Exception):
            self.postgres.drop_schema(self.schema)

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
