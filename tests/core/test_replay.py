"""Replay: a journal of applied records rebuilds the same core, from scratch or from a snapshot."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from assignment.partition_core import PartitionCore, Record
from journal.v1 import records_pb2
from tests.core.workload import CONFIG, Workload, run_workload

SEEDS = range(12)
STEPS = 400


def fresh() -> PartitionCore:
    return PartitionCore(**CONFIG)


@pytest.fixture(scope="module")
def journals() -> dict[int, tuple[PartitionCore, list[Record]]]:
    """One leader core per seed, after its workload, and the records it applied."""
    out = {}
    for seed in SEEDS:
        core = fresh()
        out[seed] = (core, run_workload(core, random.Random(seed), STEPS))
    return out


def test_workload_covers_every_record_kind(journals: dict[int, tuple[PartitionCore, list[Record]]]) -> None:
    kinds = Counter(r.kind for _, journal in journals.values() for r in journal)
    assert set(kinds) == {f.name for f in records_pb2.Record.DESCRIPTOR.oneofs_by_name["kind"].fields}, kinds


@pytest.mark.parametrize("seed", SEEDS)
def test_replay_from_scratch_gives_identical_state(
    journals: dict[int, tuple[PartitionCore, list[Record]]], seed: int
) -> None:
    leader, journal = journals[seed]
    follower = fresh()
    follower.apply_all(Record.decode(r.encode()) for r in journal)  # as read back from the journal store
    assert follower.state() == leader.state()
    assert follower.snapshot() == leader.snapshot()
    for name in ("epoch", "worker_count", "sandbox_count", "lease_count"):
        assert getattr(follower, name) == getattr(leader, name)


@pytest.mark.parametrize("seed", SEEDS)
def test_restore_midway_then_tail(seed: int) -> None:
    leader = fresh()
    workload = Workload(leader, random.Random(seed))
    for _ in range(STEPS // 2):
        workload.step()
    snapshot, head = leader.snapshot(), len(workload.journal)
    restored = fresh()
    restored.restore(snapshot)
    assert restored.state() == leader.state()
    assert restored.snapshot() == snapshot
    # The restored core decides as the leader does: drive both with the same operations.
    twin = Workload(restored, random.Random(seed * 1_000 + 1), now_ms=workload.now)
    workload.rng = random.Random(seed * 1_000 + 1)
    for _ in range(STEPS // 2):
        workload.step()
        twin.step()
        assert [r.encode() for r in twin.journal] == [r.encode() for r in workload.journal[head:]]
    assert restored.state() == leader.state()
    assert restored.snapshot() == leader.snapshot()
    # And a follower that restores the midway snapshot and applies the journal's tail catches up too.
    follower = fresh()
    follower.restore(snapshot)
    follower.apply_all(workload.journal[head:])
    assert follower.snapshot() == leader.snapshot()


def test_restore_replaces_everything() -> None:
    full = fresh()
    run_workload(full, random.Random(99), STEPS)
    other = fresh()
    run_workload(other, random.Random(98), STEPS // 4)
    other.restore(full.snapshot())
    assert other.state() == full.state()
    empty = fresh()
    other.restore(empty.snapshot())
    assert other.state() == empty.state()
    assert other.worker_count == other.sandbox_count == other.lease_count == other.epoch == 0


def test_records_survive_encode_decode(journals: dict[int, tuple[PartitionCore, list[Record]]]) -> None:
    for _, journal in journals.values():
        for record in journal:
            data = record.encode()
            again = Record.decode(data)
            assert again == record
            assert hash(again) == hash(record)
            assert again.kind == record.kind
            assert again.encode() == data
            pb = records_pb2.Record.FromString(data)
            assert pb.WhichOneof("kind") == record.kind
            assert pb.SerializeToString() == data  # canonical: Python's encoding is byte-identical
            assert Record.decode(pb.SerializeToString()) == record


def test_records_compare_by_value() -> None:
    core = fresh()
    a = core.start_epoch(1)[0]
    b = core.start_epoch(1)[0]
    c = core.start_epoch(2)[0]
    assert a == b
    assert a != c
    assert len({a, b, c}) == 2
    assert a != a.encode()


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_apply_encoded_equals_apply_all(journals: dict[int, tuple[PartitionCore, list[Record]]], seed: int) -> None:
    leader, journal = journals[seed]
    follower = fresh()
    assert follower.apply_encoded([r.encode() for r in journal]) == (len(journal), None)
    assert follower.snapshot() == leader.snapshot()


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("not bytes", "a record is bytes"),
        (b"\xff\xff\xff", "undecodable record"),
        (b"", "empty record"),
    ],
)
def test_apply_encoded_stops_at_a_bad_record_and_names_its_index(
    journals: dict[int, tuple[PartitionCore, list[Record]]], bad: object, error: str
) -> None:
    _, journal = journals[0]
    payloads: list[object] = [r.encode() for r in journal[:10]] + [bad] + [r.encode() for r in journal[10:]]
    follower = fresh()
    applied, exc = follower.apply_encoded(payloads)  # type: ignore[arg-type]
    assert applied == 10
    assert exc is not None
    assert error in str(exc)
    reference = fresh()
    reference.apply_all(journal[:10])
    assert follower.snapshot() == reference.snapshot()  # what came before stays applied, nothing after


def test_apply_encoded_reports_a_refused_record() -> None:
    core = fresh()
    unknown_worker = records_pb2.Record(worker_left=records_pb2.WorkerLeft(worker_id="ghost")).SerializeToString()
    applied, exc = core.apply_encoded([unknown_worker])
    assert applied == 0
    assert exc is not None
    assert type(exc).__name__ == "InvalidRecord"
