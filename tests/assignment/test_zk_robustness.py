"""An assignment server survives its ZooKeeper connection dropping at any moment (found by the chaos test).

Real ZooKeeper, a real in-process :class:`AssignmentServer`, and a :class:`TcpProxy` between them that cuts
the connection at a chosen moment: while the server starts (ZooKeeper unreachable or flapping), inside one
of the start-up steps (paths, publish, first read), and inside the republish that follows a lost session.
Each test then heals the connection and checks that the server is still running, published and leading.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from assignment.coordination.zookeeper import ZooKeeperCoordinator
from assignment.host import HostConfig
from assignment.members import WorkerInfo
from assignment.server import AssignmentServer, ServerConfig
from tests.assignment.doubles import FakeWorkers
from tests.assignment.polling import until
from tests.harness.proxy import TcpProxy

PARTITIONS = 2


@pytest.fixture
def proxy(zk_hosts: str) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy to the test's ZooKeeper and the connect string (with the test's chroot) through it."""
    address, _, chroot = zk_hosts.partition("/")
    host, port = address.rsplit(":", 1)
    with TcpProxy(host, int(port)) as made:
        yield made, f"127.0.0.1:{made.port}/{chroot}"


@pytest.fixture
async def servers() -> AsyncIterator[list[AssignmentServer]]:
    """Servers of the test, stopped at its end."""
    made: list[AssignmentServer] = []
    yield made
    for server in made:
        await server.stop()


def new_server(hosts: str, tmp_path: Path, session_timeout_s: float = 2.0) -> AssignmentServer:
    config = ServerConfig(
        server_id="s1",
        listen="127.0.0.1:0",
        journal=f"sqlite:///{tmp_path / 'journal.db'}",
        zk=hosts,
        session_timeout_s=session_timeout_s,
        host=HostConfig(partitions=PARTITIONS, tick_s=0.1),
    )
    return AssignmentServer(config, workers=FakeWorkers())


def coordinator_of(server: AssignmentServer) -> ZooKeeperCoordinator:
    coordinator = server.coordinator
    assert isinstance(coordinator, ZooKeeperCoordinator)
    return coordinator


def leads_all(server: AssignmentServer) -> bool:
    host = server.host
    return host is not None and all(p in host.leaders and host.leaders[p].serving for p in range(PARTITIONS))


async def assert_alive_and_leading(server: AssignmentServer, timeout_s: float = 20.0) -> None:
    """The reconcile loop still runs, the server is published and leads every partition."""
    host = server.host
    assert host is not None
    await until(lambda: leads_all(server), timeout_s, "leadership of every partition")
    await until(lambda: "s1" in server.coordinator.servers(), timeout_s, "the server's node")
    assert host._task is not None
    assert not host._task.done(), "the reconcile loop died"
    refresher = coordinator_of(server)._refresher
    assert refresher is not None
    assert not refresher.done(), "the refresher died"


class CutOnCall:
    """Wraps a coordinator method: the first call cuts the proxy, then runs (and fails); records the error."""

    def __init__(self, coordinator: ZooKeeperCoordinator, name: str, proxy: TcpProxy) -> None:
        self.original: Callable[..., Any] = getattr(coordinator, name)
        self.proxy = proxy
        self.armed = True
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        setattr(coordinator, name, self)

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            cut, self.armed = self.armed, False
        if cut:
            self.proxy.cut()
        try:
            return self.original(*args)
        except BaseException as exc:
            if cut:
                self.errors.append(exc)
            raise


async def test_server_started_while_zookeeper_is_unreachable_leads_once_it_is_back(
    proxy: tuple[TcpProxy, str], tmp_path: Path, servers: list[AssignmentServer]
) -> None:
    tcp, hosts = proxy
    tcp.cut()
    server = new_server(hosts, tmp_path)
    servers.append(server)
    await server.start()  # returns after its bounded wait instead of raising
    assert server.coordinator.connection != "connected"
    assert not server.host or not server.host.leaders
    for _ in range(5):  # flapping: brief windows that close again
        tcp.heal()
        await asyncio.sleep(0.05)
        tcp.cut()
    tcp.heal()
    await assert_alive_and_leading(server)


@pytest.mark.parametrize("step", ["_ensure_paths", "_publish", "_read_all"])
async def test_connection_cut_inside_a_start_up_step_is_survived(
    step: str, proxy: tuple[TcpProxy, str], tmp_path: Path, servers: list[AssignmentServer]
) -> None:
    tcp, hosts = proxy
    server = new_server(hosts, tmp_path, session_timeout_s=4.0)
    servers.append(server)
    fault = CutOnCall(coordinator_of(server), step, tcp)
    starting = asyncio.ensure_future(server.start())
    await until(lambda: not fault.armed, 20, f"the cut inside {step}")
    tcp.heal()
    await starting
    await assert_alive_and_leading(server)


async def test_connection_cut_inside_the_republish_after_a_lost_session_is_survived(
    proxy: tuple[TcpProxy, str], zk_hosts: str, tmp_path: Path, servers: list[AssignmentServer]
) -> None:
    tcp, hosts = proxy
    server = new_server(hosts, tmp_path)
    servers.append(server)
    await server.start()
    await server.coordinator.register_worker(WorkerInfo("w1", "127.0.0.1:1", "zone-a", 1_000_000))
    await until(lambda: leads_all(server), 20, "leadership")
    host = server.host
    assert host is not None
    old_epoch = host.leaders[0].epoch
    coordinator = coordinator_of(server)
    fault = CutOnCall(coordinator, "_publish", tcp)
    # expire the session from another client with the same id and password (kazoo's test trick)
    session_id, password = coordinator.client.client_id
    intruder = KazooClient(hosts=zk_hosts.partition("/")[0], client_id=(session_id, password), timeout=2.0)
    await asyncio.to_thread(intruder.start, 10)
    await asyncio.to_thread(intruder.stop)
    await asyncio.to_thread(intruder.close)
    await until(lambda: not fault.armed, 20, "the cut inside republish")
    assert coordinator.generation >= 1
    tcp.heal()
    await assert_alive_and_leading(server)
    assert host.leaders[0].epoch > old_epoch


async def test_republish_never_raises_while_disconnected(
    proxy: tuple[TcpProxy, str], tmp_path: Path, servers: list[AssignmentServer]
) -> None:
    tcp, hosts = proxy
    server = new_server(hosts, tmp_path, session_timeout_s=4.0)
    servers.append(server)
    await server.start()
    await until(lambda: leads_all(server), 20, "leadership")
    tcp.cut()
    await until(lambda: server.coordinator.connection != "connected", 10, "SUSPENDED")
    await server.coordinator.republish()  # no error: the refresher publishes once the connection is back
    assert await server.coordinator.holds(0) is False  # asks nothing while in doubt
    tcp.heal()
    await assert_alive_and_leading(server)
