"""One partition's leader on a real SQLite journal with a worker double: grants, fencing, recovery, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from assignment.errors import BadArgument, LeaseGone, Recovering, Throttled, UnknownLeaseToken
from assignment.leader import AcquireArgs, LeaderConfig, PartitionLeader
from assignment.members import WorkerInfo
from assignment.recovery import replay
from journal.group_commit import GroupCommitter
from journal.store import Journal
from tests.assignment.doubles import FakeWorkers

P = 3
W1 = WorkerInfo("w1", "10.0.0.1:7001", "zone-a", 4096)
W2 = WorkerInfo("w2", "10.0.0.2:7001", "zone-b", 4096)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


Make = Callable[..., Awaitable[PartitionLeader]]


@pytest.fixture
async def make(journal: Journal, clock: Clock) -> AsyncIterator[Make]:
    leaders: list[PartitionLeader] = []
    committers: list[GroupCommitter] = []

    async def start(
        workers: FakeWorkers | None = None,
        live: dict[str, WorkerInfo] | None = None,
        config: LeaderConfig | None = None,
        failed: list[int] | None = None,
    ) -> PartitionLeader:
        committer = GroupCommitter(journal)
        committers.append(committer)
        leader = PartitionLeader(
            P,
            journal,
            committer,
            workers or FakeWorkers(),
            config or LeaderConfig(expiry_interval_s=3600),
            on_failed=(lambda p, _exc: failed.append(p)) if failed is not None else None,
            clock=clock,
        )
        await leader.start({"w1": W1, "w2": W2} if live is None else live)
        leaders.append(leader)
        return leader

    yield start
    for leader in leaders:
        await leader.stop(0.1)
    for committer in committers:
        await committer.close()


def args(function: str = "resize", request_id: str = "", timeout_ms: int = 3000, memory: int = 256) -> AcquireArgs:
    return AcquireArgs(function, "1", memory, timeout_ms, request_id)


async def test_cold_then_warm_and_journaled(make: Make, journal: Journal) -> None:
    workers = FakeWorkers()
    leader = await make(workers)
    first = await leader.acquire(args())
    assert first.cold
    assert first.init_ms == 7
    assert first.token[0] == leader.epoch
    assert ("create", first.worker_address, f"p{P}-s{first.sandbox_id}") in workers.calls
    await leader.release(first.token, "ok")
    second = await leader.acquire(args())
    assert not second.cold
    assert second.sandbox_id == first.sandbox_id
    assert second.token[1] > first.token[1]
    # every acknowledged grant is in the journal: a replayed core holds the same lease
    core = replay(journal, P)
    leases = [s[6] for s in core.state()["sandboxes"].values() if s[6] is not None]
    assert [(lease[0], lease[1]) for lease in leases] == [second.token]


async def test_acquire_is_idempotent_by_request_id(make: Make) -> None:
    leader = await make(FakeWorkers(delay_s=0.05))
    grants = await asyncio.gather(*(leader.acquire(args(request_id="req-1")) for _ in range(5)))
    assert len({g.token for g in grants}) == 1
    again = await leader.acquire(args(request_id="req-1"))
    assert again == grants[0]
    assert leader.core.lease_count == 1
    with pytest.raises(BadArgument) as info:
        await leader.acquire(args(function="other", request_id="req-1"))
    assert info.value.field == "request_id"


async def test_throttles_carry_their_reason(make: Make) -> None:
    leader = await make(config=LeaderConfig(account_limit=1, expiry_interval_s=3600))
    await leader.acquire(args())
    with pytest.raises(Throttled) as info:
        await leader.acquire(args(function="other"))
    assert info.value.reason == "account_limit"


async def test_no_workers_is_no_capacity(make: Make) -> None:
    leader = await make(live={})
    with pytest.raises(Throttled) as info:
        await leader.acquire(args())
    assert info.value.reason == "no_capacity"


async def test_refusing_worker_moves_the_sandbox_to_the_next(make: Make) -> None:
    workers = FakeWorkers()
    leader = await make(workers)
    first = await leader.acquire(args(function="f1"))
    workers.refuse.add(first.worker_address)  # the next placement of f1 prefers the other zone anyway
    workers.refuse.add(W1.address)
    grant = await leader.acquire(args(function="f2"))
    assert grant.worker_id == "w2"
    workers.refuse.add(W2.address)
    with pytest.raises(Throttled) as info:
        await leader.acquire(args(function="f3"))
    assert info.value.reason == "no_capacity"
    assert leader.core.sandbox_count == 2  # the failed one was destroyed


async def test_bad_arguments_name_the_field(make: Make) -> None:
    leader = await make()
    for bad, field in [
        (args(function=""), "function"),
        (args(function="x" * 141), "function"),
        (args(memory=5), "memory_mb"),
        (args(timeout_ms=0), "timeout_ms"),
        (args(request_id="r" * 129), "request_id"),
    ]:
        with pytest.raises(BadArgument) as info:
            await leader.acquire(bad)
        assert info.value.field == field


async def test_release_errors(make: Make) -> None:
    leader = await make()
    grant = await leader.acquire(args())
    with pytest.raises(UnknownLeaseToken):
        await leader.release((leader.epoch, 999), "ok")
    with pytest.raises(BadArgument):
        await leader.release(grant.token, "bogus")
    await leader.release(grant.token, "ok")
    with pytest.raises(LeaseGone):
        await leader.release(grant.token, "ok")


async def test_broken_outcome_destroys_the_sandbox_on_the_worker(make: Make) -> None:
    workers = FakeWorkers()
    leader = await make(workers)
    grant = await leader.acquire(args())
    await leader.release(grant.token, "crash")
    await _until(lambda: ("destroy", grant.worker_address, grant.sandbox_name) in workers.calls)
    assert leader.core.sandbox_count == 0


async def test_a_deposed_leader_is_fenced_and_steps_down(make: Make) -> None:
    failed: list[int] = []
    old = await make(failed=failed)
    grant = await old.acquire(args())
    new = await make()  # takes the epoch over
    assert new.epoch > old.epoch
    with pytest.raises(Recovering):
        await old.acquire(args(function="other"))
    assert old.state == "failed"
    assert failed == [P]
    with pytest.raises(Recovering):
        await old.acquire(args())
    # the new leader knows the old lease and releases it
    await new.release(grant.token, "ok")


async def test_recovery_from_snapshot_and_tail_keeps_leases_and_request_ids(make: Make) -> None:
    old = await make()
    before = await old.acquire(args(request_id="a"))
    assert await old.maybe_snapshot(force=True)
    after = await old.acquire(args(function="g", request_id="b"))
    await old.stop()
    new = await make()
    retried = await new.acquire(args(function="g", request_id="b"))  # found in the tail
    assert (retried.token, retried.sandbox_id, retried.worker_address, retried.cold) == (
        after.token,
        after.sandbox_id,
        after.worker_address,
        True,
    )
    assert sorted(new.leases()) == sorted([before.token, after.token])
    await new.release(before.token, "ok")
    await new.release(after.token, "ok")
    assert new.core.lease_count == 0


async def test_expired_lease_is_reset_before_reuse(make: Make, clock: Clock) -> None:
    workers = FakeWorkers()
    leader = await make(workers, config=LeaderConfig(lease_margin_ms=0, expiry_interval_s=3600))
    grant = await leader.acquire(args(timeout_ms=1000))
    clock.now += 2
    assert await leader.expire_once() == 1
    with pytest.raises(LeaseGone):
        await leader.release(grant.token, "ok")
    await _until(lambda: ("reset", grant.worker_address, grant.sandbox_name) in workers.calls)
    await _until(lambda: leader.core.state()["sandboxes"][grant.sandbox_id][4] == "idle")
    again = await leader.acquire(args())
    assert again.sandbox_id == grant.sandbox_id
    assert not again.cold


async def test_idle_sandboxes_are_reclaimed(make: Make, clock: Clock) -> None:
    workers = FakeWorkers()
    leader = await make(workers, config=LeaderConfig(idle_keepalive_ms=60_000, expiry_interval_s=3600))
    grant = await leader.acquire(args())
    await leader.release(grant.token, "ok")
    clock.now += 61
    assert await leader.expire_once() == 1
    await _until(lambda: ("destroy", grant.worker_address, grant.sandbox_name) in workers.calls)
    assert leader.core.sandbox_count == 0


async def test_lost_worker_drops_its_sandboxes_and_fails_their_leases(make: Make) -> None:
    leader = await make()
    grant = await leader.acquire(args())
    gone = "w1" if grant.worker_id == "w1" else "w2"
    live = {w.worker_id: w for w in (W1, W2) if w.worker_id != gone}
    await leader.sync_workers(live)
    with pytest.raises(LeaseGone):
        await leader.release(grant.token, "ok")
    assert leader.core.worker_count == 1
    assert leader.core.sandbox_count == 0


async def test_paused_leader_grants_nothing(make: Make) -> None:
    leader = await make()
    leader.paused = True
    with pytest.raises(Recovering):
        await leader.acquire(args())


async def test_stop_waits_for_in_flight_grants(make: Make) -> None:
    leader = await make(FakeWorkers(delay_s=0.2))
    pending = asyncio.ensure_future(leader.acquire(args()))
    await _until(lambda: leader.core.lease_count == 1)
    await leader.stop(5.0)
    grant = await pending
    assert grant.cold
    assert leader.state == "stopped"


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_next_leader_destroys_sandboxes_never_confirmed(make: Make) -> None:
    workers = FakeWorkers(delay_s=0.5)
    old = await make(workers)
    pending = asyncio.ensure_future(old.acquire(args(request_id="x")))
    await _until(lambda: any(call[0] == "create" for call in workers.calls))
    new = await make(workers)
    assert new.core.sandbox_count == 0
    with pytest.raises((Recovering, LeaseGone)):
        await pending
    with pytest.raises(LeaseGone):  # the retry learns that its lease is gone, it is not handed a dead sandbox
        await new.acquire(args(request_id="x"))
    await _until(lambda: any(call[0] == "destroy" for call in workers.calls))


async def test_follower_catches_up_and_is_promoted_replaying_only_the_tail(
    make: Make, journal: Journal, clock: Clock
) -> None:
    old = await make()
    first = await old.acquire(args(request_id="a"))
    committer = GroupCommitter(journal)
    follower = PartitionLeader(P, journal, committer, FakeWorkers(), LeaderConfig(expiry_interval_s=3600), clock=clock)
    await follower.follow()
    try:
        await _until(lambda: follower.last_seq == old.last_seq)
        second = await old.acquire(args(function="g", request_id="b"))
        await _until(lambda: follower.last_seq == old.last_seq)  # tailing, not waiting for promotion
        with pytest.raises(Recovering):
            await follower.acquire(args())  # a follower grants nothing
        await follower.start({"w1": W1, "w2": W2})
        assert follower.serving
        assert sorted(follower.leases()) == sorted([first.token, second.token])
        retried = await follower.acquire(args(function="g", request_id="b"))
        assert retried.token == second.token
        with pytest.raises(Recovering):
            await old.acquire(args(function="h"))  # fenced by the promotion
    finally:
        await follower.stop(0.1)
        await committer.close()


async def test_cancelled_callers_do_not_withdraw_applied_records(make: Make, journal: Journal) -> None:
    leader = await make()
    calls = [asyncio.ensure_future(leader.acquire(args(function=f"f{i}"))) for i in range(20)]
    await _until(lambda: leader.core.lease_count == 20)  # every decision applied; commits still queued
    for call in calls[::2]:
        call.cancel()  # e.g. the client's deadline passed
    await asyncio.gather(*calls, return_exceptions=True)
    await leader.acquire(args(function="after"))
    await _until(leader.all_committed)
    core = replay(journal, P)  # the journal holds every applied record, without gaps
    assert core.lease_count == leader.core.lease_count == 21


async def test_worker_leaving_during_a_cold_start_is_retryable_not_a_capacity_verdict(make: Make) -> None:
    workers = FakeWorkers(delay_s=0.5)
    leader = await make(workers, live={"w1": W1})
    pending = asyncio.ensure_future(leader.acquire(args(request_id="r1")))
    await _until(lambda: any(call[0] == "create" for call in workers.calls))
    await leader.sync_workers({"w2": W2})  # w1 leaves while its sandbox is being created
    with pytest.raises(Recovering):  # UNAVAILABLE: the routing client retries; no_capacity would not be retried
        await pending
    workers.delay_s = 0.0
    retried = await leader.acquire(args(request_id="r1"))
    assert (retried.cold, retried.worker_id) == (True, "w2")
