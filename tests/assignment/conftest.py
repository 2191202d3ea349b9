"""Fixtures of the assignment tests: ZooKeeper (session-wide, a chroot per test), server processes, worker
doubles registered in ZooKeeper, and logs attached to the report of a failed test."""

from __future__ import annotations

import re
import signal
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from assignment.members import WorkerInfo
from tests.harness.cluster import ServerProcess
from tests.harness.postgres import PostgresServer, schema_name
from tests.harness.zookeeper import ZooKeeperCluster

_ZK = pytest.StashKey[ZooKeeperCluster]()
_SERVERS = pytest.StashKey[list[ServerProcess]]()


@pytest.fixture(scope="session")
def zookeeper(request: pytest.FixtureRequest) -> Iterator[ZooKeeperCluster]:
    """One ZooKeeper server (tickTime 200 ms) for the session; raises (never skips) when it cannot start."""
    with ZooKeeperCluster.start(size=1, tick_ms=200) as cluster:
        request.config.stash[_ZK] = cluster
        yield cluster


@pytest.fixture
def zk_hosts(zookeeper: ZooKeeperCluster, request: pytest.FixtureRequest) -> str:
    """The connect string with a chroot of the test's own."""
    return f"{zookeeper.hosts}/t_{re.sub(r'[^a-z0-9]+', '_', request.node.name.lower())[-60:]}"


class Workers:
    """Worker doubles: each one a ZooKeeper session holding its ephemeral membership node."""

    def __init__(self, hosts: str) -> None:
        self.hosts, _, chroot = hosts.partition("/")
        self.root = "/" + chroot if chroot else "/leasehold"
        self.sessions: dict[str, KazooClient] = {}

    def add(self, worker_id: str, capacity_mb: int = 1_000_000, zone: str = "zone-a") -> None:
        client = KazooClient(hosts=self.hosts, timeout=2.0)
        client.start(15)
        info = WorkerInfo(worker_id, f"127.0.0.1:{1000 + len(self.sessions)}", zone, capacity_mb)
        client.create(f"{self.root}/workers/{worker_id}", info.encode(), ephemeral=True, makepath=True)
        self.sessions[worker_id] = client

    def kill(self, worker_id: str) -> None:
        client = self.sessions.pop(worker_id)
        client.stop()
        client.close()

    def close(self) -> None:
        for worker_id in list(self.sessions):
            self.kill(worker_id)


@pytest.fixture
def workers(zk_hosts: str) -> Iterator[Workers]:
    """Worker doubles registered in the test's chroot."""
    made = Workers(zk_hosts)
    yield made
    made.close()


class Servers:
    """Server processes of one test, all killed at the end."""

    def __init__(self, zk: str, journal: str, folder: Path, registry: list[ServerProcess]) -> None:
        self.zk = zk
        self.journal = journal
        self.folder = folder
        self.all = registry

    def start(
        self, server_id: str, *, partitions: int = 8, extra: list[str] | None = None, workers: str = "accept"
    ) -> ServerProcess:
        args = ["--session-timeout", "2", "--settle", "1", "--grace", "3", *(extra or [])]
        server = ServerProcess.start(
            server_id, self.zk, self.journal, self.folder, partitions=partitions, extra=args, workers=workers
        )
        self.all.append(server)
        return server

    def by_address(self, address: str) -> ServerProcess:
        return next(s for s in self.all if s.address == address)


@pytest.fixture
def journal_backend() -> str:
    """The database of the servers' journal; a test parametrizes it to run on ``"postgresql"`` as well."""
    return "sqlite"


@pytest.fixture
def servers(zk_hosts: str, tmp_path: Path, journal_backend: str, request: pytest.FixtureRequest) -> Iterator[Servers]:
    """Start assignment server processes on a journal of the test's own: a SQLite file in ``tmp_path``, or a
    PostgreSQL schema on the session's server (``journal_backend``)."""
    registry: list[ServerProcess] = []
    request.node.stash[_SERVERS] = registry
    postgres: PostgresServer | None = None
    schema = schema_name("t_", request.node.name)
    if journal_backend == "postgresql":
        postgres = request.getfixturevalue("postgres")
        url = postgres.create_schema(schema)
    else:
        url = f"sqlite:///{tmp_path / 'journal.db'}"
    made = Servers(zk_hosts, url, tmp_path, registry)
    yield made
    for server in registry:
        if server.alive:
            server.signal(signal.SIGCONT)
            server.kill()
    if postgres is not None:
        postgres.drop_schema(schema)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach ZooKeeper's and the servers' logs to the report of a failed test."""
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"server {server.server_id} log (tail)", server.log_tail()))
        zk = item.config.stash.get(_ZK, None)
        if zk is not None and "zookeeper" in getattr(item, "fixturenames", ()):
            report.sections.append(("zookeeper log (tail)", zk.log_tail(40)))
    return report
