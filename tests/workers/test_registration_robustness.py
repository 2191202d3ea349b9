"""A worker agent survives its ZooKeeper connection dropping during register or heartbeats.

A real agent process registers through a :class:`TcpProxy` to a real ZooKeeper; the test cuts the proxy
(at start-up, and long enough during heartbeats for the session to expire), checks the agent stays up and
keeps serving, heals, and waits for the worker's ephemeral node to reappear for a new session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient

from tests.harness.proxy import TcpProxy
from tests.harness.zookeeper import ZooKeeperCluster
from tests.workers.harness import AgentProcess, wait_for
from workers.v1 import worker_pb2

PATH = "/leasehold/workers/w-robust"


@pytest.fixture
def zk() -> Iterator[tuple[ZooKeeperCluster, TcpProxy, KazooClient]]:
    """ZooKeeper, a proxy in front of it, and a direct client to watch the worker's node."""
    with (
        ZooKeeperCluster.start(size=1, tick_ms=200) as cluster,
        TcpProxy("127.0.0.1", cluster.nodes[0].client_port) as proxy,
    ):
        client = KazooClient(hosts=cluster.hosts)
        client.start(timeout=30)
        try:
            yield cluster, proxy, client
        finally:
            client.stop()
            client.close()


def owner(client: KazooClient) -> int:
    """The session owning the worker's node (0 when there is none)."""
    stat = client.exists(PATH)
    return int(stat.ephemeralOwner) if stat is not None else 0


def serves(agent: AgentProcess) -> bool:
    """The agent is alive and answers a gRPC call."""
    assert agent.proc.poll() is None, f"the agent exited:\n{agent.log()}"
    agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest(), timeout=5)
    return True


def start(new_agent: Callable[..., AgentProcess], proxy: TcpProxy) -> AgentProcess:
    zk = f"127.0.0.1:{proxy.port}"
    return new_agent(1024, "--zk", zk, "--zk-session-timeout", "1", "--worker-id", "w-robust")


def test_agent_started_while_zookeeper_is_unreachable_registers_once_it_is_back(
    zk: tuple[ZooKeeperCluster, TcpProxy, KazooClient], new_agent: Callable[..., AgentProcess]
) -> None:
    _, proxy, client = zk
    proxy.cut()
    agent = start(new_agent, proxy)  # returns: registration waits in the background
    assert serves(agent)
    assert owner(client) == 0
    proxy.heal()
    wait_for(lambda: owner(client), what="the worker's node")
    data = json.loads(client.get(PATH)[0])
    assert data["worker_id"] == "w-robust"
    assert serves(agent)


def test_agent_whose_session_expires_during_heartbeats_registers_again(
    zk: tuple[ZooKeeperCluster, TcpProxy, KazooClient], new_agent: Callable[..., AgentProcess]
) -> None:
    _, proxy, client = zk
    agent = start(new_agent, proxy)
    first = wait_for(lambda: owner(client), what="the worker's node")
    proxy.cut()
    wait_for(lambda: owner(client) == 0, what="the session to expire and the node to vanish")
    assert serves(agent)  # keeps serving while ZooKeeper is out of reach
    proxy.heal()
    second = wait_for(lambda: owner(client), what="the node to reappear")
    assert second != first
    wait_for(lambda: json.loads(client.get(PATH)[0])["worker_id"] == "w-robust", what="the node's data")
    assert serves(agent)


def test_brief_cut_keeps_the_session_and_the_node(
    zk: tuple[ZooKeeperCluster, TcpProxy, KazooClient], new_agent: Callable[..., AgentProcess]
) -> None:
    _, proxy, client = zk
    agent = start(new_agent, proxy)
    first = wait_for(lambda: owner(client), what="the worker's node")
    version = client.exists(PATH).version
    proxy.cut()
    proxy.heal()
    wait_for(lambda: (stat := client.exists(PATH)) is not None and stat.version > version + 1, what="heartbeats")
    assert owner(client) == first
    assert serves(agent)
