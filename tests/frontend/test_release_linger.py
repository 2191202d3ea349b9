"""A frontend's Release commits lazily: it may share the next Acquire's transaction, and is still durable.

The leader is real (Rust core, SQLite journal, group committer); the workers are the assignment tests'
double. What must hold: a released lease is journaled before ``release`` returns; a release and the
acquire that follows within the linger share one transaction; without a linger they do not; a leader
that stops while a release lingers still commits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from assignment.leader import AcquireArgs, LeaderConfig, PartitionLeader
from assignment.members import WorkerInfo
from assignment.recovery import replay
from journal.group_commit import GroupCommitter
from journal.store import Journal
from tests.assignment.doubles import FakeWorkers

P = 2
W1 = WorkerInfo("w1", "10.0.0.1:7001", "zone-a", 4096)
ARGS = AcquireArgs("resize", "1", 256, 3000)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


@pytest.fixture
async def started(journal: Journal) -> AsyncIterator[list[tuple[PartitionLeader, GroupCommitter]]]:
    made: list[tuple[PartitionLeader, GroupCommitter]] = []
    yield made
    for leader, committer in made:
        await leader.stop(0.5)
        await committer.close()


async def _leader(
    journal: Journal, made: list[tuple[PartitionLeader, GroupCommitter]], linger_s: float
) -> PartitionLeader:
    committer = GroupCommitter(journal)
    config = LeaderConfig(expiry_interval_s=3600, release_linger_s=linger_s)
    leader = PartitionLeader(P, journal, committer, FakeWorkers(), config)
    await leader.start({"w1": W1})
    made.append((leader, committer))
    return leader


def _idle_in_journal(journal: Journal) -> int:
    return sum(1 for s in replay(journal, P).state()["sandboxes"].values() if s[4] == "idle")


async def test_a_lazy_release_is_journaled_when_it_returns(
    journal: Journal, started: list[tuple[PartitionLeader, GroupCommitter]]
) -> None:
    leader = await _leader(journal, started, 0.05)
    grant = await leader.acquire(ARGS)
    assert _idle_in_journal(journal) == 0
    await leader.release(grant.token, "ok", lazy=True)  # nobody else commits: it waits out the linger
    assert leader.all_committed()
    assert _idle_in_journal(journal) == 1


async def test_a_release_and_the_next_acquire_share_one_transaction(
    journal: Journal, started: list[tuple[PartitionLeader, GroupCommitter]]
) -> None:
    leader = await _leader(journal, started, 1.0)
    committer = started[0][1]
    grant = await leader.acquire(ARGS)
    before = committer.transactions
    release = asyncio.ensure_future(leader.release(grant.token, "ok", lazy=True))
    await asyncio.sleep(0)  # the release is applied and queued, lingering
    assert not release.done()
    again = await leader.acquire(ARGS)  # warm: the same sandbox, granted after the release was applied
    await release
    assert again.sandbox_id == grant.sandbox_id
    assert not again.cold
    assert committer.transactions == before + 1
    core = replay(journal, P)
    leases = [s[6] for s in core.state()["sandboxes"].values() if s[6] is not None]
    assert [(lease[0], lease[1]) for lease in leases] == [again.token]


async def test_without_a_linger_a_release_commits_alone(
    journal: Journal, started: list[tuple[PartitionLeader, GroupCommitter]]
) -> None:
    leader = await _leader(journal, started, 0.0)
    committer = started[0][1]
    grant = await leader.acquire(ARGS)
    before = committer.transactions
    await leader.release(grant.token, "ok", lazy=True)
    assert committer.transactions == before + 1
    await leader.acquire(ARGS)
    assert committer.transactions == before + 2


async def test_a_leader_that_stops_while_a_release_lingers_commits_it(
    journal: Journal, started: list[tuple[PartitionLeader, GroupCommitter]]
) -> None:
    leader = await _leader(journal, started, 5.0)
    grant = await leader.acquire(ARGS)
    release = asyncio.ensure_future(leader.release(grant.token, "ok", lazy=True))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await leader.stop(0.5)
    await release
    assert loop.time() - began < 2.0  # stopping ends the linger at once
    assert _idle_in_journal(journal) == 1
