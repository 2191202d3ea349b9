"""Registration in a real ZooKeeper (Debian's package, started with java): an ephemeral node per worker."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.workers.harness import AgentProcess, create, function_dir, wait_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ruok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"ruok")
            return s.recv(16) == b"imok"
    except OSError:
        return False


@pytest.fixture
def zookeeper(tmp_path: Path) -> Iterator[str]:
    """One ZooKeeper server on a free port; fails (never skips) when it cannot start."""
    assert shutil.which("java"), "java is required (make test installs ZooKeeper)"
    port = _free_port()
    data = tmp_path / "zk"
    data.mkdir()
    config = tmp_path / "zoo.cfg"
    config.write_text(
        f"tickTime=200\ndataDir={data}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
        "admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,mntr\n"
    )
    log = open(tmp_path / "zk.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        ["java", "-cp", "/usr/share/java/*:/etc/zookeeper/conf", "org.apache.zookeeper.server.quorum.QuorumPeerMain",
         str(config)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _ruok(port), timeout=60, what="ZooKeeper to answer ruok")
        yield f"127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()
        log.close()


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
