"""Registration in a real ZooKeeper (Debian's package, started with java): an ephemeral node per worker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.harness.zookeeper import ZooKeeperCluster
from tests.workers.harness import AgentProcess, create, function_dir, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def zookeeper() -> Iterator[str]:
    """One ZooKeeper server from the shared harness; raises (never skips) when it cannot start."""
    with ZooKeeperCluster.start(size=1, tick_ms=200) as cluster:
        yield cluster.hosts


def test_worker_registers_an_ephemeral_node_with_its_capacity(
    zookeeper: str, new_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    agent = new_agent(1024, "--zk", zookeeper, "--worker-id", "w-zk-1", "--zone", "zone-b")
    client = KazooClient(hosts=zookeeper)
    client.start(timeout=30)
    try:
        path = "/leasehold/workers/w-zk-1"

        def data() -> dict[str, object] | None:
            if not client.exists(path):
                return None
            node: dict[str, object] = json.loads(client.get(path)[0])
            return node

        first = wait_for(data, what="the worker's node")
        assert first["zone"] == "zone-b"
        assert first["memory_mb"] == 1024
        assert first["address"] == f"127.0.0.1:{agent.port}"
        assert client.exists(path).ephemeralOwner != 0
        create(agent.stub, "zk-sb-1", function_dir(tmp_path / "fn", "def handler(e, c):\n    return 1\n"))
        beat = wait_for(lambda: (d := data()) and d["sandboxes"] == ["zk-sb-1"] and d, what="a heartbeat")
        assert beat["free_memory_mb"] == 1024 - 128
        agent.stop()
        deadline = time.monotonic() + 30
        while client.exists(path):
            assert time.monotonic() < deadline, "the node outlived the worker"
            time.sleep(0.05)
    finally:
        client.stop()
        client.close()
