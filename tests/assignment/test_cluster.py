"""Real ZooKeeper, real server processes, real signals: election, balance, failover, fencing, hand-over."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections import Counter
from collections.abc import Callable

import grpc
import pytest

from assignment.client import AssignmentClient, RpcFailed
from assignment.partitioning import partition_of
from assignment.v1 import assignment_pb2 as pb
from assignment.v1 import assignment_pb2_grpc as pb_grpc
from journal.store import Journal
from tests.assignment.conftest import Servers, Workers
from tests.assignment.history import Load
from tests.harness import tls
from tests.harness.cluster import ServerProcess
from tests.harness.zookeeper import ZooKeeperCluster

PARTITIONS = 8
FUNCTIONS = [f"fn{i}" for i in range(32)]


def function_of(partition: int) -> str:
    return next(f"fn{i}" for i in range(10_000) if partition_of(f"fn{i}", PARTITIONS) == partition)


async def routing(address: str) -> dict[int, str]:
    async with tls.aio_channel(address, "server") as channel:
        answer = await pb_grpc.AssignmentStub(channel).Routing(pb.RoutingRequest(), timeout=1.0)
    return {r.partition: r.leader_address for r in answer.routes if r.leader_address}


async def until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def leaders_via(server: ServerProcess) -> dict[int, str]:
    try:
        return await routing(server.address)
    except grpc.aio.AioRpcError:
        return {}


async def settled(servers: list[ServerProcess]) -> bool:
    """Every partition led by a live server, and leadership balanced within one partition per server."""
    live = {s.address for s in servers if s.alive}
    leaders = await leaders_via(next(s for s in servers if s.alive))
    if len(leaders) != PARTITIONS or not set(leaders.values()) <= live:
        return False
    counts = Counter(leaders.values())
    per_server = [counts.get(a, 0) for a in live]
    return max(per_server) - min(per_server) <= 1


async def serves(client: AssignmentClient, function: str) -> bool:
    try:
        lease = await client.acquire(function, "1", 128, 60_000, deadline_s=1.0)
    except Exception:
        return False
    await client.release(lease, "ok", deadline_s=2.0)
    return True


async def start_cluster(servers: Servers, workers: Workers, n: int = 3) -> list[ServerProcess]:
    workers.add("w1")
    workers.add("w2", zone="zone-b")
    started = [servers.start(f"s{i + 1}", partitions=PARTITIONS) for i in range(n)]
    for server in started:
        server.wait_serving()
    await until(lambda: settled(started), 30, "balanced leadership")
    return started


async def test_election_balance_and_routing(servers: Servers, workers: Workers) -> None:
    started = await start_cluster(servers, workers)

    async def agree() -> bool:
        views = [await routing(s.address) for s in started]
        return views[0] == views[1] == views[2] and len(views[0]) == PARTITIONS

    await until(agree, 10, "every server to publish the same routes")
    async with AssignmentClient([started[0].address], tls=tls.identity("frontend")) as client:
        for partition in range(PARTITIONS):
            assert await serves(client, function_of(partition))


async def test_sigkill_leader_under_load(servers: Servers, workers: Workers) -> None:
    started = await start_cluster(servers, workers)
    victim_partition = partition_of(FUNCTIONS[0], PARTITIONS)
    async with Load([s.address for s in started], FUNCTIONS, partitions=PARTITIONS) as load:
        await until(lambda: load.history.successes_since(0) > 50, 20, "load running")
        leader = servers.by_address((await routing(started[0].address))[victim_partition])
        killed_at = time.monotonic()
        leader.kill()
        await until(lambda: load.history.successes_since(killed_at + 0.001, victim_partition) > 0, 15, "failover")
        failover_s = (
            min(g.acked_at for g in load.history.grants if g.acked_at > killed_at and g.partition == victim_partition)
            - killed_at
        )
        leader.launch()
        leader.wait_serving()
    survivors = [s for s in started if s.alive]
    await until(lambda: settled(survivors), 30, "balanced after restart")
    assert load.history.check(servers.journal) == []
    assert failover_s < 10, failover_s


@pytest.mark.parametrize("journal_backend", ["sqlite", "postgresql"])
async def test_sigstop_leader_is_fenced_after_sigcont(servers: Servers, workers: Workers, journal_backend: str) -> None:
    started = await start_cluster(servers, workers)
    partition = partition_of(FUNCTIONS[0], PARTITIONS)
    old = servers.by_address((await routing(started[0].address))[partition])
    others = [s for s in started if s is not old]
    async with Load([s.address for s in others], FUNCTIONS, partitions=PARTITIONS) as load:
        await until(lambda: load.history.successes_since(0) > 20, 20, "load running")
        with Journal.open(servers.journal, migrate=False) as journal:
            epoch_before = journal.info(partition).epoch  # the old leader's, or newer after a hand-over
        old.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        if journal_backend == "postgresql":
            # the new leader serves while the old one is still stopped, even if it stopped inside a
            # transaction: PostgreSQL ends that session (JournalOptions.pg_idle_in_transaction_s)
            await until(
                lambda: load.history.successes_since(stopped_at + 2.5, partition) > 5,
                20,
                "a new leader past the session",
            )
            assert (await routing(others[0].address))[partition] != old.address
            old.signal(signal.SIGCONT)
        else:
            # SQLite: a process stopped inside a commit holds the database's write lock, and every writer
            # waits for it until it resumes; leadership still moves when its session expires
            async def moved() -> bool:
                return (await routing(others[0].address)).get(partition) not in (None, old.address)

            await until(moved, 20, "a new leader past the session")
            old.signal(signal.SIGCONT)
            resumed_at = time.monotonic()
            await until(lambda: load.history.successes_since(resumed_at, partition) > 5, 20, "service after it resumed")
        # the old leader must never grant again on its old epoch: ask it directly, repeatedly
        async with tls.aio_channel(old.address, "server") as channel:
            stub = pb_grpc.AssignmentStub(channel)
            refused: list[grpc.StatusCode] = []
            for i in range(30):
                request = pb.AcquireRequest(
                    function=FUNCTIONS[0], version="1", memory_mb=128, timeout_ms=60_000, request_id=f"direct-{i}"
                )
                try:
                    lease = (await stub.Acquire(request, timeout=2.0)).lease
                except grpc.aio.AioRpcError as exc:
                    refused.append(exc.code())
                    continue
                # a grant from the old server is only allowed once it legitimately leads again: it took the
                # partition over after it resumed, so its epoch is newer than any from before the stop
                assert lease.token.epoch > epoch_before, "a deposed leader granted a lease on its old epoch"
            assert set(refused) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION}
    assert load.history.check(servers.journal) == []


async def test_zookeeper_restart_keeps_serving(servers: Servers, workers: Workers, zookeeper: ZooKeeperCluster) -> None:
    started = await start_cluster(servers, workers)
    async with Load([s.address for s in started], FUNCTIONS, partitions=PARTITIONS) as load:
        await until(lambda: load.history.successes_since(0) > 20, 20, "load running")
        await asyncio.to_thread(zookeeper.restart)
        restarted_at = time.monotonic()
        await until(lambda: load.history.successes_since(restarted_at) > 50, 30, "service after the restart")
    await until(lambda: settled(started), 30, "leadership after the restart")
    assert load.history.check(servers.journal) == []


async def test_lost_worker_fails_its_leases_and_gets_no_placements(servers: Servers, workers: Workers) -> None:
    started = await start_cluster(servers, workers)
    async with AssignmentClient([started[0].address], tls=tls.identity("frontend")) as client:
        leases = [await client.acquire(f, "1", 128, 60_000, deadline_s=5) for f in FUNCTIONS[:8]]
        on_w1 = [lease for lease in leases if lease.worker_id == "w1"]
        assert on_w1
        workers.kill("w1")

        async def w1_gone() -> bool:
            fresh = await client.acquire(FUNCTIONS[9], "1", 128, 60_000, deadline_s=5)
            if fresh.worker_id == "w1":
                # granted on w1 just before its leader saw w1 leave: the lease may already have failed with it
                with contextlib.suppress(RpcFailed):
                    await client.release(fresh, "crash")
                return False
            await client.release(fresh, "crash")
            return True

        await until(w1_gone, 15, "w1 dropped")
        for lease in on_w1:
            with pytest.raises(RpcFailed, match=r"stale|no longer"):
                await client.release(lease, "ok", deadline_s=5)
        for lease in leases:
            if lease.worker_id == "w2":
                await client.release(lease, "ok", deadline_s=5)
        for function in FUNCTIONS[:8]:
            lease = await client.acquire(function, "1", 128, 60_000, deadline_s=5)
            assert lease.worker_id == "w2"
            await client.release(lease, "ok")


async def test_sigterm_hands_over_quickly(servers: Servers, workers: Workers) -> None:
    started = await start_cluster(servers, workers)
    partition = partition_of(FUNCTIONS[0], PARTITIONS)
    leader = servers.by_address((await routing(started[0].address))[partition])
    others = [s for s in started if s is not leader]
    async with Load([s.address for s in others], [FUNCTIONS[0]], clients=4, partitions=PARTITIONS) as load:
        await until(lambda: load.history.successes_since(0) > 20, 20, "load running")
        assert await asyncio.to_thread(leader.terminate) == 0
        await until(lambda: load.history.successes_since(time.monotonic() - 0.05) > 5, 10, "load after hand-over")
    acks = sorted(g.acked_at for g in load.history.grants)
    gap = max(b - a for a, b in itertools.pairwise(acks))
    assert load.history.check(servers.journal) == []
    assert load.history.errors.get("release_stale_lease", 0) == 0
    assert gap < 1.5, f"unavailable for {gap:.3f}s"
