"""Replay: a core rebuilt from the journal (snapshot + records) equals the leader's; refusals are damage."""

from __future__ import annotations

import pytest

from assignment.partition_core import PartitionCore
from assignment.recovery import apply_entries, rebuild, replay
from journal.errors import JournalCorrupt
from journal.store import Journal
from tests.journal.records import worker


def _lead(journal: Journal, core: PartitionCore) -> int:
    """Act as a leader for a while: decide, apply, journal. Returns the epoch."""
    epoch = journal.take_over(0)
    now = 1_000_000

    def commit(records: list) -> None:  # type: ignore[type-arg]
        core.apply_all(records)
        journal.append(0, epoch, [r.encode() for r in records])

    commit(core.start_epoch(epoch))
    commit(core.join_worker("w1", "zone-a", "10.0.0.1:7001", 8192))
    commit(core.join_worker("w2", "zone-b", "10.0.0.2:7001", 8192))
    tokens = []
    for i in range(20):
        decision = core.acquire(f"fn{i % 4}", "$LATEST", 256, 3_000, now + i, request_id=f"r{i}")
        commit(decision.records)
        if decision.token is not None:
            tokens.append(decision.token)
            if decision.outcome == "cold" and decision.sandbox_id is not None:
                commit(core.created(decision.sandbox_id, now + i))
    for i, token in enumerate(tokens[:10]):
        commit(core.release(token, "ok", now + 100 + i))
    return epoch


def test_replay_rebuilds_the_same_state(journal: Journal) -> None:
    leader = PartitionCore()
    _lead(journal, leader)
    assert replay(journal, 0).snapshot() == leader.snapshot()
    # with a snapshot in the middle, and after compaction
    info = journal.info(0)
    journal.write_snapshot(0, info.last_seq, leader.snapshot())
    journal.compact(0)
    more = leader.join_worker("w3", "zone-c", "10.0.0.3:7001", 4096)
    leader.apply_all(more)
    journal.append(0, info.epoch, [r.encode() for r in more])
    result = rebuild(journal, 0)
    assert result.snapshot_seq == info.last_seq
    assert result.records == 1
    assert result.core.snapshot() == leader.snapshot()
    assert result.core.state() == leader.state()


def test_core_refusal_is_corruption_at_its_seq(journal: Journal) -> None:
    epoch = journal.take_over(0)
    core = PartitionCore()
    journal.append(0, epoch, [r.encode() for r in core.start_epoch(epoch)])
    journal.append(0, epoch, [worker("w1"), worker("w1")])  # the same worker joins twice
    with pytest.raises(JournalCorrupt) as caught:
        replay(journal, 0)
    assert caught.value.seq == 3


def test_refused_snapshot_is_corruption_at_its_seq(journal: Journal) -> None:
    epoch = journal.take_over(0)
    journal.append(0, epoch, [r.encode() for r in PartitionCore().start_epoch(epoch)])
    journal.write_snapshot(0, 1, b"\xff not a snapshot")
    with pytest.raises(JournalCorrupt) as caught:
        replay(journal, 0)
    assert caught.value.seq == 1


def test_refusal_after_a_snapshot_and_many_records_names_its_seq(journal: Journal) -> None:
    """The bulk path (payloads handed to the core in one call) still names the exact refused seq."""
    leader = PartitionCore()
    epoch = journal.take_over(0)
    records = leader.start_epoch(epoch) + leader.join_worker("w1", "zone-a", "10.0.0.1:7001", 8192)
    leader.apply_all(records)
    journal.append(0, epoch, [r.encode() for r in records])
    journal.write_snapshot(0, 2, leader.snapshot())
    updates = [r for cap in range(5000) for r in leader.update_worker("w1", 1024 + cap % 7, True)]
    leader.apply_all(updates)
    journal.append(0, epoch, [r.encode() for r in updates])  # seqs 3 .. 5002
    result = rebuild(journal, 0)
    assert (result.snapshot_seq, result.last_seq, result.records) == (2, 5002, 5000)
    assert result.core.snapshot() == leader.snapshot()
    journal.append(0, epoch, [r.encode() for r in leader.update_worker("w1", 1, True)] + [worker("w1")])
    with pytest.raises(JournalCorrupt) as caught:
        replay(journal, 0)
    assert (caught.value.partition, caught.value.seq) == (0, 5004)
    assert "already joined" in caught.value.why
    core = PartitionCore()
    snapshot = journal.latest_snapshot(0)
    assert snapshot is not None
    core.restore(snapshot.data)
    with pytest.raises(JournalCorrupt) as caught:
        apply_entries(core, journal.iter_entries(0, after_seq=2))
    assert caught.value.seq == 5004
