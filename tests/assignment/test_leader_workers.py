"""A leader and its workers, in-process on a real SQLite journal with a worker double: the sandbox template
on the cold path, reserved concurrency through failover, provisioned sandboxes (EnsureWarm), and the
reconcile with what the workers report when a leader takes over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from assignment.errors import BadArgument, LeaseGone, Throttled
from assignment.leader import AcquireArgs, LeaderConfig, PartitionLeader
from assignment.members import WorkerInfo
from assignment.worker_client import GrpcWorkerClient, NoTemplate, SandboxSpec, parse_sandbox_name, sandbox_name
from journal.group_commit import GroupCommitter
from journal.store import Journal
from tests.assignment.doubles import FakeWorkers
from tests.harness import tls
from workers.v1 import worker_pb2

P = 5
W1 = WorkerInfo("w1", "10.0.0.1:7001", "zone-a", 4096)
W2 = WorkerInfo("w2", "10.0.0.2:7001", "zone-b", 4096)
LIVE = {"w1": W1, "w2": W2}
TEMPLATE = worker_pb2.CreateSandboxRequest(
    function_name="resize",
    code=worker_pb2.CodeRef(blob_sha256="ab" * 32),
    handler="app.handler",
    runtime="python",
    environment={"STAGE": "test"},
)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


Make = Callable[..., Awaitable[PartitionLeader]]


@pytest.fixture
async def make(journal: Journal) -> AsyncIterator[Make]:
    """Start leaders of partition P on the journal; each start is a takeover (a new epoch)."""
    leaders: list[PartitionLeader] = []
    committers: list[GroupCommitter] = []

    async def start(
        workers: FakeWorkers, config: LeaderConfig | None = None, clock: Callable[[], float] = time.time
    ) -> PartitionLeader:
        for old in leaders:
            await old.stop(0.1)
        committer = GroupCommitter(journal)
        committers.append(committer)
        config = config or LeaderConfig(expiry_interval_s=3600)
        leader = PartitionLeader(P, journal, committer, workers, config, clock=clock)
        await leader.start(LIVE)
        leaders.append(leader)
        return leader

    yield start
    for leader in leaders:
        await leader.stop(0.1)
    for committer in committers:
        await committer.close()


def cold(
    function: str = "resize", version: str = "1", template: worker_pb2.CreateSandboxRequest | None = TEMPLATE
) -> AcquireArgs:
    return AcquireArgs(function, version, 256, 500, "", template)


async def test_the_template_reaches_the_worker_with_name_memory_and_timeout(make: Make) -> None:
    workers = FakeWorkers()
    leader = await make(workers)
    grant = await leader.acquire(cold())
    spec = workers.specs[-1]
    request = spec.request()
    assert request.sandbox_id == grant.sandbox_name == sandbox_name(P, grant.sandbox_id)
    assert (request.function_name, request.memory_mb) == ("resize", 256)
    assert request.timeout_ms == 1000  # the worker's smallest timeout, for a 500 ms lease
    assert request.code.blob_sha256 == "ab" * 32
    assert dict(request.environment) == {"STAGE": "test"}
    assert TEMPLATE.sandbox_id == ""  # the caller's template is not changed


async def test_a_template_every_worker_finds_malformed_is_a_bad_argument(make: Make) -> None:
    workers = FakeWorkers(malformed=True)
    leader = await make(workers)
    with pytest.raises(BadArgument) as info:
        await leader.acquire(cold())
    assert info.value.field == "sandbox"
    assert "code.blob_sha256" in str(info.value)
    assert len([c for c in workers.calls if c[0] == "create"]) == 1  # no other worker is asked
    assert leader.core.sandbox_count == 0
    assert leader.core.lease_count == 0


async def test_a_real_worker_client_needs_the_template() -> None:
    client = GrpcWorkerClient(tls=tls.identity("server"))
    with pytest.raises(NoTemplate) as info:
        await client.create_sandbox("127.0.0.1:1", SandboxSpec("p1-s1", "f", "1", 128))
    assert info.value.invalid
    await client.close()


async def test_reserved_concurrency_is_journaled_and_survives_failover(make: Make) -> None:
    workers = FakeWorkers()
    leader = await make(workers)
    await leader.set_concurrency("resize", 1)
    first = await leader.acquire(cold())
    with pytest.raises(Throttled) as info:
        await leader.acquire(cold())
    assert info.value.reason == "reserved_limit"
    await leader.release(first.token, "ok")
    successor = await make(workers)
    assert successor.core.state()["reserved"] == {"resize": 1}
    held = await successor.acquire(cold())
    with pytest.raises(Throttled):
        await successor.acquire(cold())
    await successor.release(held.token, "ok")
    await successor.set_concurrency("resize", None)
    assert successor.core.state()["reserved"] == {}
    leases = [await successor.acquire(cold()) for _ in range(3)]
    assert len({g.sandbox_id for g in leases}) == 3


@pytest.mark.parametrize("reserved", [-1, 1001, 2**40])
async def test_reserved_out_of_range_is_a_bad_argument(make: Make, reserved: int) -> None:
    leader = await make(FakeWorkers())
    with pytest.raises(BadArgument) as info:
        await leader.set_concurrency("resize", reserved)
    assert info.value.field == "reserved"


async def test_ensure_warm_tops_up_to_count_and_leaves_them_idle(make: Make) -> None:
    workers = FakeWorkers()
    leader = await make(workers, LeaderConfig(expiry_interval_s=3600, warm_parallel=2))
    busy = await leader.acquire(cold())  # one busy sandbox counts
    assert await leader.ensure_warm(cold(), 3) == (3, 2)
    assert leader.sandboxes_of("resize", "1", 256) == (3, 2)
    assert leader.core.lease_count == 1
    assert await leader.ensure_warm(cold(), 3) == (3, 0)  # nothing missing
    await leader.release(busy.token, "ok")
    assert await leader.ensure_warm(cold(), 5) == (5, 2)  # idle ones are held so the acquires go cold
    assert leader.sandboxes_of("resize", "1", 256) == (5, 5)
    warm = [await leader.acquire(cold()) for _ in range(5)]
    assert not any(g.cold for g in warm)
    assert await leader.ensure_warm(cold(version="2"), 0) == (0, 0)


async def test_a_worker_restarted_under_its_id_loses_its_sandboxes_and_leases(make: Make) -> None:
    leader = await make(FakeWorkers())
    first = {"w1": replace(W1, incarnation="boot-1"), "w2": replace(W2, incarnation="boot-7")}
    seq = leader.last_seq
    await leader.sync_workers(first)  # incarnations this leader had not seen are adopted, nothing changes
    assert leader.last_seq == seq
    grants = [await leader.acquire(cold()) for _ in range(4)]
    on = {w: [g for g in grants if g.worker_id == w] for w in ("w1", "w2")}
    assert on["w1"], "zone spread puts sandboxes on both workers"
    assert on["w2"], "zone spread puts sandboxes on both workers"
    for grant in on["w2"]:
        await leader.release(grant.token, "ok")
    await leader.sync_workers({**first, "w2": replace(W2, incarnation="boot-8")})  # w2 restarted
    boxes = leader.core.state()["sandboxes"].values()
    assert sorted(b[0] for b in boxes) == ["w1"] * len(on["w1"]), "w2's sandboxes are gone, w1's stay"
    assert "w2" in leader.core.state()["workers"], "and w2 is back, empty"
    await leader.sync_workers({**first, "w2": replace(W2, incarnation="boot-8")})
    assert len(leader.core.state()["sandboxes"]) == len(on["w1"]), "the same incarnation again changes nothing"
    await leader.sync_workers(
        {**first, "w1": replace(W1, incarnation="boot-2"), "w2": replace(W2, incarnation="boot-8")}
    )
    assert leader.core.state()["sandboxes"] == {}
    with pytest.raises(LeaseGone):
        await leader.release(on["w1"][0].token, "ok")


async def test_provisioned_sandboxes_outlast_idle_reclaim_and_failover_until_the_pin_lapses(make: Make) -> None:
    now = [1_000_000.0]
    config = LeaderConfig(expiry_interval_s=3600, idle_keepalive_ms=1_000, provisioned_hold_s=60.0)
    workers = FakeWorkers()
    leader = await make(workers, config, clock=lambda: now[0])
    assert await leader.ensure_warm(cold(), 3) == (3, 3)
    plain = await leader.acquire(cold(version="2"))
    await leader.release(plain.token, "ok")
    now[0] += 10  # past the keep-alive of every sandbox
    assert await leader.expire_once() == 1, "only the unpinned version's sandbox goes"
    assert leader.sandboxes_of("resize", "1", 256) == (3, 3)
    assert leader.sandboxes_of("resize", "2", 256) == (0, 0)
    # A top-up soon after does not journal the pin again; one after half the hold renews it.
    last = leader.last_seq
    assert await leader.ensure_warm(cold(), 3) == (3, 0)
    assert leader.last_seq == last
    now[0] += 31
    await leader.ensure_warm(cold(), 3)
    assert leader.last_seq == last + 1
    # The pin is in the journal: a new leader keeps the sandboxes too.
    leader = await make(workers, config, clock=lambda: now[0])
    assert await leader.expire_once() == 0
    assert leader.sandboxes_of("resize", "1", 256) == (3, 3)
    # Lowered, the pin lets the surplus go; unrenewed, it lapses and idle reclaim takes the rest.
    assert await leader.ensure_warm(cold(), 1) == (3, 0)
    assert await leader.expire_once() == 2
    now[0] += 61
    assert await leader.expire_once() == 1
    assert leader.sandboxes_of("resize", "1", 256) == (0, 0)
    # Count 0 unpins, and needs no template.
    assert await leader.ensure_warm(cold(), 2) == (2, 2)
    assert await leader.ensure_warm(cold(template=None), 0) == (2, 0)
    now[0] += 10
    assert await leader.expire_once() == 2


async def test_ensure_warm_bad_input_and_throttles(make: Make) -> None:
    leader = await make(FakeWorkers(), LeaderConfig(expiry_interval_s=3600, account_limit=10))
    for count in (-1, 11):
        with pytest.raises(BadArgument) as info:
            await leader.ensure_warm(cold(), count)
        assert info.value.field == "count"
    with pytest.raises(BadArgument) as info:
        await leader.ensure_warm(cold(template=None), 1)
    assert info.value.field == "sandbox"
    await leader.set_concurrency("resize", 0)
    with pytest.raises(Throttled) as throttled:
        await leader.ensure_warm(cold(), 2)
    assert throttled.value.reason == "reserved_limit"
    await leader.set_concurrency("resize", 2)
    assert await leader.ensure_warm(cold(), 4) == (2, 2)  # as many as the reservation allows
    malformed = await make(FakeWorkers(malformed=True), LeaderConfig(expiry_interval_s=3600))
    with pytest.raises(BadArgument):
        await malformed.ensure_warm(cold(function="other"), 1)


async def test_takeover_reconciles_with_what_the_workers_hold(make: Make) -> None:
    workers = FakeWorkers(report=True)
    leader = await make(workers)
    kept = await leader.acquire(cold())
    lost = await leader.acquire(cold())
    await leader.release(kept.token, "ok")
    # the worker lost one sandbox (its lease is held), and holds an orphan of this partition plus others' boxes
    workers.sandboxes[lost.worker_address].discard(lost.sandbox_name)
    orphan = sandbox_name(P, 999)
    workers.sandboxes.setdefault(W1.address, set()).update({orphan, sandbox_name(P + 1, 1), "not-ours"})
    successor = await make(workers)
    boxes = successor.core.state()["sandboxes"]
    assert set(boxes) == {kept.sandbox_id}
    assert ("destroy", W1.address, orphan) in workers.calls
    assert not [c for c in workers.calls if c[0] == "destroy" and c[2] in (sandbox_name(P + 1, 1), "not-ours")]
    with pytest.raises(LeaseGone):
        await successor.release(lost.token, "ok")
    again = await successor.acquire(cold())
    assert not again.cold
    assert again.sandbox_id == kept.sandbox_id


async def test_a_worker_back_from_an_expired_session_loses_what_the_leader_dropped(make: Make) -> None:
    workers = FakeWorkers(report=True)
    leader = await make(workers)
    grants = [await leader.acquire(cold()) for _ in range(4)]
    on_w1 = {g.sandbox_name for g in grants if g.worker_id == "w1"}
    assert on_w1, "zone spread puts sandboxes on w1"
    others = {sandbox_name(P + 1, 1), "not-ours"}
    workers.sandboxes[W1.address] |= others
    await leader.sync_workers({"w2": W2})  # w1's session expired: the leader drops its sandboxes...
    assert workers.sandboxes[W1.address] >= on_w1, "...which the agent, alive, still holds"
    await leader.sync_workers(LIVE)  # w1 registers again
    deadline = time.monotonic() + 10
    while workers.sandboxes[W1.address] & on_w1:
        assert time.monotonic() < deadline, "the dropped sandboxes were never destroyed on w1"
        await asyncio.sleep(0.01)
    assert workers.sandboxes[W1.address] == others, "other partitions' sandboxes and foreign names stay"
    # What the leader made there since the join is its own: a later cleaning keeps it.
    fresh = {g.sandbox_name for g in [await leader.acquire(cold()) for _ in range(4)] if g.worker_id == "w1"}
    assert fresh
    await leader._clean_joined({"w1": W1})
    assert workers.sandboxes[W1.address] == others | fresh


async def test_takeover_leaves_an_unreachable_worker_to_membership(make: Make) -> None:
    workers = FakeWorkers(report=True)
    leader = await make(workers)
    grant = await leader.acquire(cold())
    await leader.release(grant.token, "ok")
    workers.sandboxes.clear()  # the worker would report nothing ...
    workers.refuse.add(grant.worker_address)  # ... but cannot be reached
    successor = await make(workers)
    assert grant.sandbox_id in successor.core.state()["sandboxes"]


@pytest.mark.parametrize(
    ("name", "parsed"),
    [("p3-s17", (3, 17)), ("p0-s1", (0, 1)), ("p3-s", None), ("x3-s1", None), ("p3-s1 ", None), ("p-1-s2", None)],
)
def test_sandbox_names(name: str, parsed: tuple[int, int] | None) -> None:
    assert parse_sandbox_name(name) == parsed
