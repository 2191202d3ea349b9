"""Assignment server benchmarks (``make bench``): Acquire+Release throughput against one partition leader
with a durable journal versus a bare grpc.aio echo at the same concurrency, and failover times.

Everything runs as real processes: ZooKeeper (tickTime 200 ms), ``leasehold server`` processes on a
SQLite journal (``synchronous=FULL``), and a worker double registered in ZooKeeper.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

from assignment.client import AssignmentClient
from assignment.members import WorkerInfo
from assignment.partitioning import partition_of
from assignment.v1 import assignment_pb2 as pb
from assignment.v1 import assignment_pb2_grpc as pb_grpc
from journal.v1 import records_pb2
from tests.benchmarks.echo import ECHO_SERVER
from tests.benchmarks.report import Row, print_table
from tests.harness import tls
from tests.harness.cluster import ServerProcess, free_port
from tests.harness.zookeeper import ZooKeeperCluster

pytestmark = pytest.mark.benchmark

CONCURRENCY = 64
SECONDS = 5.0
TRIALS = 10
_rows: list[Row] = []


@pytest.fixture(scope="module")
def zk() -> Iterator[ZooKeeperCluster]:
    with ZooKeeperCluster.start(size=1, tick_ms=200) as cluster:
        yield cluster


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    yield
    if _rows:
        print_table("assignment server", _rows)


def _register_worker(hosts: str) -> KazooClient:
    host, _, chroot = hosts.partition("/")
    client = KazooClient(hosts=host, timeout=5.0)
    client.start(15)
    info = WorkerInfo("w1", "127.0.0.1:1", "zone-a", 4_000_000)
    client.create(f"/{chroot}/workers/w1", info.encode(), ephemeral=True, makepath=True)
    return client


async def _closed_loop(call: object, seconds: float) -> int:
    """Run ``CONCURRENCY`` loops of ``call`` for ``seconds``; the number of RPCs made."""
    stop = time.monotonic() + seconds
    counts = [0] * CONCURRENCY

    async def loop(i: int) -> None:
        while time.monotonic() < stop:
            counts[i] += await call()  # type: ignore[operator]

    await asyncio.gather(*(loop(i) for i in range(CONCURRENCY)))
    return sum(counts)


async def _echo_rate(address: str) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        echo: Any = channel.unary_unary("/bench.Echo/Echo")
        payload = pb.AcquireRequest(function="fn", version="1", memory_mb=128, timeout_ms=60_000).SerializeToString()

        async def call() -> int:
            await echo(payload)
            return 1

        await _closed_loop(call, 1.0)
        return await _closed_loop(call, SECONDS) / SECONDS


async def _lease_rate(address: str) -> float:
    async with tls.aio_channel(address, "server") as channel:
        stub = pb_grpc.AssignmentStub(channel)
        index = iter(range(10**9))

        async def call() -> int:
            i = next(index)
            request = pb.AcquireRequest(function=f"fn{i % CONCURRENCY}", version="1", memory_mb=128, timeout_ms=60_000)
            lease = (await stub.Acquire(request)).lease
            await stub.Release(
                pb.ReleaseRequest(partition=lease.partition, token=lease.token, outcome=records_pb2.OUTCOME_OK)
            )
            return 2

        await _closed_loop(call, 1.0)
        return await _closed_loop(call, SECONDS) / SECONDS


def test_acquire_release_throughput(zk: ZooKeeperCluster, tmp_path: Path) -> None:
    hosts = f"{zk.hosts}/bench_throughput"
    worker = _register_worker(hosts)
    server = ServerProcess.start(
        "s1", hosts, f"sqlite:///{tmp_path / 'journal.db'}", tmp_path, partitions=1, extra=["--log-level", "WARNING"]
    )
    echo_port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, f"127.0.0.1:{echo_port}"], stdout=subprocess.DEVNULL)
    try:
        server.wait_serving()
        echo_rate = asyncio.run(_echo_rate(f"127.0.0.1:{echo_port}"))
        lease_rate = asyncio.run(_lease_rate(server.address))
    finally:
        echo.kill()
        echo.wait()
        server.terminate()
        worker.stop()
        worker.close()
    ratio = lease_rate / echo_rate
    _rows.append(
        Row(
            f"Acquire+Release RPCs/s, 1 leader, SQLite durable, {CONCURRENCY} in flight",
            f"{lease_rate:,.0f}/s",
            f"grpc.aio echo {echo_rate:,.0f}/s",
            f"{ratio:.2f}",
            ">= 0.50",
        )
    )


async def _handover_gap(client: AssignmentClient, leader: ServerProcess, function: str) -> float:
    """SIGTERM the leader under load (4 loops); the longest gap between successful Acquires around it."""
    acks: list[float] = []
    running = [True]

    async def load() -> None:
        while running[0]:
            got = await client.acquire(function, "1", 128, 60_000, deadline_s=30)
            acks.append(time.monotonic())
            await client.release(got, "ok", deadline_s=30)

    tasks = [asyncio.ensure_future(load()) for _ in range(4)]
    while len(acks) < 20:
        await asyncio.sleep(0.01)
    t0 = time.monotonic()
    await asyncio.to_thread(leader.terminate)
    while len([a for a in acks if a > t0]) < 20:
        await asyncio.sleep(0.01)
    running[0] = False
    await asyncio.gather(*tasks)
    around = sorted(a for a in acks if a > t0 - 1)
    return max(b - a for a, b in itertools.pairwise(around))


async def _failover_trials(hosts: str, folder: Path, sig: str) -> list[float]:
    """Per trial: the time from killing (or SIGTERM-ing) a partition's leader to the first successful Acquire
    for that partition (kill -9), or the longest gap between successful Acquires under load (SIGTERM)."""
    journal = f"sqlite:///{folder / 'journal.db'}"
    extra = ["--session-timeout", "2", "--settle", "1", "--log-level", "WARNING"]
    servers = [ServerProcess.start(f"s{i}", hosts, journal, folder, partitions=4, extra=extra) for i in range(3)]
    function = "fn0"
    partition = partition_of(function, 4)
    results: list[float] = []
    worker = _register_worker(hosts)
    try:
        for server in servers:
            server.wait_serving()
        async with AssignmentClient(
            [s.address for s in servers], partitions=4, base_backoff_s=0.01, tls=tls.identity("frontend")
        ) as client:
            for _ in range(TRIALS):
                lease = await client.acquire(function, "1", 128, 60_000, deadline_s=30)
                await client.release(lease, "ok")
                await client.refresh()
                leader = next(s for s in servers if s.address == client.leaders[partition])
                if sig == "kill":
                    t0 = time.monotonic()
                    leader.kill()
                    lease = await client.acquire(function, "1", 128, 60_000, deadline_s=30)
                    results.append(time.monotonic() - t0)
                    await client.release(lease, "ok")
                else:
                    results.append(await _handover_gap(client, leader, function))
                leader.launch()
                await asyncio.to_thread(leader.wait_serving)
                # let the restarted server take its partitions back before the next trial
                await asyncio.sleep(2.5)
    finally:
        for server in servers:
            server.kill()
        worker.stop()
        worker.close()
    return results


def test_failover_times(zk: ZooKeeperCluster) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kill = asyncio.run(_failover_trials(f"{zk.hosts}/bench_kill", Path(tmp), "kill"))
    with tempfile.TemporaryDirectory() as tmp:
        term = asyncio.run(_failover_trials(f"{zk.hosts}/bench_term", Path(tmp), "term"))
    _rows.append(
        Row(
            f"kill -9 leader -> first Acquire on the new leader, session 2 s, p50 of {len(kill)}",
            f"{statistics.median(kill):.2f} s (max {max(kill):.2f})",
            "session timeout 2.00 s",
            f"{statistics.median(kill) / 2.0:.2f}",
            "p50 <= 2.5 s",
        )
    )
    _rows.append(
        Row(
            f"SIGTERM hand-over: longest gap between grants, p50 of {len(term)}",
            f"{statistics.median(term) * 1000:.0f} ms (max {max(term) * 1000:.0f})",
            "-",
            "-",
            "<= 200 ms",
        )
    )
