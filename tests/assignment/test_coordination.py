"""ZooKeeper coordination in-process: step-down rules (DESIGN §4) and a 3-node ensemble."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assignment.coordination.zookeeper import ZooKeeperCoordinator
from assignment.errors import Recovering
from assignment.host import HostConfig
from assignment.leader import AcquireArgs
from assignment.members import ServerInfo, WorkerInfo
from assignment.server import AssignmentServer, ServerConfig
from tests.assignment.doubles import FakeWorkers
from tests.assignment.polling import until
from tests.harness.proxy import TcpProxy
from tests.harness.zookeeper import ZooKeeperCluster

PARTITIONS = 2


async def start_server(hosts: str, tmp_path: Path, session_timeout_s: float) -> AssignmentServer:
    config = ServerConfig(
        server_id="s1",
        listen="127.0.0.1:0",
        journal=f"sqlite:///{tmp_path / 'journal.db'}",
        zk=hosts,
        session_timeout_s=session_timeout_s,
        host=HostConfig(partitions=PARTITIONS, tick_s=0.1),
    )
    server = AssignmentServer(config, workers=FakeWorkers())
    await server.start()
    await server.coordinator.register_worker(WorkerInfo("w1", "127.0.0.1:1", "zone-a", 1_000_000))
    host = server.host
    assert host is not None
    await until(lambda: all(p in host.leaders and host.leaders[p].serving for p in range(PARTITIONS)), 20, "leadership")
    await until(lambda: all(host.leaders[p].core.worker_count == 1 for p in range(PARTITIONS)), 20, "the worker")
    return server


@pytest.fixture
async def stopper() -> AsyncIterator[list[AssignmentServer]]:
    made: list[AssignmentServer] = []
    yield made
    for server in made:
        await server.stop()


async def test_suspended_stops_grants_at_once_and_resumes_after_checks(zk_hosts: str, tmp_path: Path) -> None:
    # A partition between this server and ZooKeeper, made by a proxy: ZooKeeper keeps running, so the
    # 20 s session survives a short cut (a ZooKeeper restart races the client's reconnect instead).
    address, _, chroot = zk_hosts.partition("/")
    zk_host, zk_port = address.rsplit(":", 1)
    with TcpProxy(zk_host, int(zk_port)) as proxy:
        server = await start_server(f"127.0.0.1:{proxy.port}/{chroot}", tmp_path, session_timeout_s=20.0)
        try:
            host = server.host
            assert host is not None
            leader = host.leaders[0]
            epoch = leader.epoch
            grant = await leader.acquire(AcquireArgs("f", "1", 128, 60_000))
            proxy.cut()
            try:
                await until(lambda: server.coordinator.connection != "connected", 10, "SUSPENDED")
                with pytest.raises(Recovering):
                    await leader.acquire(AcquireArgs("g", "1", 128, 60_000))
            finally:
                proxy.heal()
            # the session survived: after re-checking the node and the journal epoch, the same leader serves again
            await until(lambda: leader.serving, 30, "the leader to resume")
            assert host.leaders[0] is leader
            assert leader.epoch == epoch
            await leader.release(grant.token, "ok")
        finally:
            await server.stop()


async def test_lost_session_drops_leadership_and_contends_again(
    zk_hosts: str, tmp_path: Path, stopper: list[AssignmentServer]
) -> None:
    server = await start_server(zk_hosts, tmp_path, session_timeout_s=2.0)
    stopper.append(server)
    host = server.host
    assert host is not None
    coordinator = server.coordinator
    assert isinstance(coordinator, ZooKeeperCoordinator)
    old = host.leaders[0]
    # expire the session from another client with the same session id and password (kazoo's test trick)
    from kazoo.client import KazooClient  # noqa: PLC0415

    session_id, password = coordinator.client.client_id
    intruder = KazooClient(hosts=coordinator.hosts, client_id=(session_id, password), timeout=2.0)
    await asyncio.to_thread(intruder.start, 10)
    await asyncio.to_thread(intruder.stop)
    await asyncio.to_thread(intruder.close)
    await until(lambda: old.state in ("stopped", "failed"), 20, "the old leader to be dropped")
    await until(lambda: 0 in host.leaders and host.leaders[0].serving, 20, "leadership again")
    assert host.leaders[0].epoch > old.epoch


async def test_three_node_ensemble_survives_losing_a_node(tmp_path: Path, stopper: list[AssignmentServer]) -> None:
    with ZooKeeperCluster.start(size=3, tick_ms=200) as ensemble:
        server = await start_server(ensemble.hosts + "/ensemble", tmp_path, session_timeout_s=4.0)
        stopper.append(server)
        host = server.host
        assert host is not None
        await asyncio.to_thread(ensemble.stop_node, 0)
        for i in range(20):
            leader = host.leaders.get(i % PARTITIONS)
            if leader is None or not leader.serving:
                await asyncio.sleep(0.1)
                continue
            grant = await leader.acquire(AcquireArgs(f"f{i}", "1", 128, 60_000))
            await leader.release(grant.token, "ok")
        await until(
            lambda: all(p in host.leaders and host.leaders[p].serving for p in range(PARTITIONS)), 20, "serving"
        )
        assert ServerInfo("s1", server.address, "") in server.coordinator.servers().values()
        await server.stop()
        stopper.clear()
