"""The frontend in cluster mode: real ZooKeeper and PostgreSQL, an assignment server process, a worker agent
process registered in ZooKeeper, and ``leasehold frontend --zk`` finding both through membership."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.frontend.harness import ROLE, frontend_process, lambda_client, make_zip, raw_request
from tests.harness.cluster import ServerProcess
from tests.harness.zookeeper import ZooKeeperCluster
from tests.workers.harness import start_agent


@pytest.fixture(scope="module")
def zookeeper() -> Iterator[ZooKeeperCluster]:
    """One ZooKeeper server (tickTime 200 ms)."""
    with ZooKeeperCluster.start(size=1, tick_ms=200) as cluster:
        yield cluster


def test_frontend_finds_servers_and_workers_through_zookeeper(
    zookeeper: ZooKeeperCluster, database: str, tmp_path: Path
) -> None:
    hosts = f"{zookeeper.hosts}/frontend_cluster"
    server = ServerProcess.start("s1", hosts, database, tmp_path, partitions=4, workers="grpc")
    agent = start_agent(tmp_path / "w1", 2048, "--zk", hosts, "--code-store", database, "--worker-id", "w1")
    try:
        server.wait_serving()
        with frontend_process(tmp_path / "frontend.log", "--zk", hosts, "--journal", database) as endpoint:
            lam = lambda_client(endpoint)
            lam.create_function(
                FunctionName="clustered",
                Runtime="python3.12",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return {'got': e}\n"})},
            )
            deadline = time.monotonic() + 30
            while True:  # the server sees the worker once its membership watch fires
                answer = lam.invoke(FunctionName="clustered", Payload=b'{"x": 1}')
                if "FunctionError" not in answer or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert json.loads(answer["Payload"].read()) == {"got": {"x": 1}}
            status, _, body = raw_request(endpoint, "GET", "/_leasehold/v1/status")
            assert status == 200
            doc = json.loads(body)
            assert [w["worker_id"] for w in doc["workers"]] == ["w1"]
            assert doc["workers"][0]["sandboxes"] == 1
            assert {p["leader_address"] for p in doc["partitions"]} == {server.address}
            assert doc["functions"] == [{"name": "clustered", "version": "$LATEST", "sandboxes": 1}]
    finally:
        agent.stop()
        server.terminate()
