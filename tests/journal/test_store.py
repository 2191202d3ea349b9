"""The store on both backends: take-over, append, fencing, read, snapshots, compaction, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from journal.errors import (
    Compacted,
    EmptyBatch,
    Fenced,
    InvalidEpoch,
    InvalidRecord,
    RecordTooLarge,
    SchemaMismatch,
    UnknownPartition,
)
from journal.store import MAX_RECORD_BYTES, Journal, JournalOptions
from journal.v1 import records_pb2
from tests.journal.records import batch, tag_of, worker


def test_take_over_creates_then_bumps_the_epoch(journal: Journal) -> None:
    assert journal.take_over(0) == 1
    assert journal.take_over(0) == 2
    assert journal.take_over(7) == 1
    assert journal.partitions() == [0, 7]
    info = journal.info(0)
    assert (info.epoch, info.first_seq, info.last_seq) == (2, 1, 0)


def test_append_assigns_consecutive_seqs_and_reads_back(journal: Journal) -> None:
    epoch = journal.take_over(3)
    assert journal.append(3, epoch, batch("a", 3)) == 3
    assert journal.append(3, epoch, batch("b", 2)) == 5
    entries = journal.read(3)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [tag_of(e.payload) for e in entries] == ["a/0/3", "a/1/3", "a/2/3", "b/0/2", "b/1/2"]
    assert {e.kind for e in entries} == {"worker_joined"}
    assert all(e.epoch == epoch and e.partition == 3 for e in entries)
    assert entries[0].record().worker_joined.zone == "zone-a"


def test_partitions_are_independent(journal: Journal) -> None:
    e0, e1 = journal.take_over(0), journal.take_over(1)
    journal.append(0, e0, batch("p0", 2))
    journal.append(1, e1, batch("p1", 1))
    assert [tag_of(e.payload) for e in journal.read(1)] == ["p1/0/1"]
    assert journal.info(0).last_seq == 2


def test_older_epoch_is_fenced_and_writes_nothing(journal: Journal) -> None:
    old = journal.take_over(0)
    journal.append(0, old, batch("old", 1))
    new = journal.take_over(0)
    with pytest.raises(Fenced) as caught:
        journal.append(0, old, batch("late", 3))
    assert (caught.value.partition, caught.value.epoch, caught.value.current_epoch) == (0, old, new)
    assert journal.append(0, new, batch("new", 1)) == 2
    assert [tag_of(e.payload) for e in journal.read(0)] == ["old/0/1", "new/0/1"]


def test_epoch_never_issued_is_rejected(journal: Journal) -> None:
    epoch = journal.take_over(0)
    with pytest.raises(InvalidEpoch):
        journal.append(0, epoch + 1, batch("x", 1))
    assert journal.info(0).last_seq == 0


def test_read_pages_by_after_seq_and_limit(journal: Journal) -> None:
    epoch = journal.take_over(0)
    journal.append(0, epoch, batch("r", 10))
    assert [e.seq for e in journal.read(0, after_seq=3, limit=4)] == [4, 5, 6, 7]
    assert [e.seq for e in journal.read(0, after_seq=8, limit=4)] == [9, 10]
    assert journal.read(0, after_seq=10) == []
    assert journal.read(0, after_seq=99) == []
    assert [e.seq for e in journal.iter_entries(0, after_seq=2, page=3)] == list(range(3, 11))


def test_snapshots_and_recover(journal: Journal) -> None:
    epoch = journal.take_over(0)
    assert journal.latest_snapshot(0) is None
    journal.append(0, epoch, batch("s", 5))
    empty = journal.recover(0)
    assert empty.snapshot is None
    assert [e.seq for e in empty.entries] == [1, 2, 3, 4, 5]
    journal.write_snapshot(0, 2, b"state@2")
    journal.write_snapshot(0, 4, b"state@4")
    latest = journal.latest_snapshot(0)
    assert latest is not None
    assert (latest.seq, latest.epoch, latest.data) == (4, epoch, b"state@4")
    journal.write_snapshot(0, 4, b"state@4 again")
    recovery = journal.recover(0)
    assert recovery.snapshot is not None
    assert recovery.snapshot.data == b"state@4 again"
    assert [e.seq for e in recovery.entries] == [5]
    assert recovery.last_seq == 5
    assert recovery.epoch == epoch
    for bad_seq in (6, 100):
        with pytest.raises(ValueError, match="snapshot seq"):
            journal.write_snapshot(0, bad_seq, b"future")
    with pytest.raises(TypeError):
        journal.write_snapshot(0, 1, "text")  # type: ignore[arg-type]


def test_compaction_keeps_what_recovery_needs(journal: Journal) -> None:
    epoch = journal.take_over(0)
    journal.append(0, epoch, batch("c", 10))
    assert journal.compact(0).records_deleted == 0  # no snapshot: nothing to compact
    for seq in (3, 6, 8):
        journal.write_snapshot(0, seq, f"state@{seq}".encode())
    result = journal.compact(0, retain_records=2, retain_snapshots=2)
    assert (result.records_deleted, result.snapshots_deleted, result.first_seq) == (6, 1, 7)
    assert [e.seq for e in journal.read(0, after_seq=6)] == [7, 8, 9, 10]
    with pytest.raises(Compacted) as caught:
        journal.read(0, after_seq=2)
    assert caught.value.first_seq == 7
    recovery = journal.recover(0)
    assert recovery.snapshot is not None
    assert recovery.snapshot.seq == 8
    assert [e.seq for e in recovery.entries] == [9, 10]
    report = journal.verify(0)
    assert (report.first_seq, report.last_seq, report.records, report.snapshots) == (7, 10, 4, 2)
    assert journal.compact(0, retain_records=0, retain_snapshots=1).first_seq == 9
    assert journal.append(0, epoch, batch("after", 1)) == 11


def test_default_retention_from_options(journal_url: str) -> None:
    with Journal.open(journal_url, options=JournalOptions(retain_records=1, retain_snapshots=1)) as journal:
        epoch = journal.take_over(0)
        journal.append(0, epoch, batch("d", 4))
        journal.write_snapshot(0, 3, b"s")
        assert journal.compact(0).first_seq == 3


# ---------------------------------------------------------------------------- bad input


def test_empty_batch_is_refused(journal: Journal) -> None:
    epoch = journal.take_over(0)
    with pytest.raises(EmptyBatch):
        journal.append(0, epoch, [])
    with pytest.raises(EmptyBatch):
        journal.append(0, epoch, ())


def test_record_size_limit(journal: Journal) -> None:
    epoch = journal.take_over(0)
    base = worker("")
    pad = MAX_RECORD_BYTES - len(base) - 4  # varint length of the worker id grows by 2 bytes, twice nested
    biggest = worker("x" * pad)
    while len(biggest) > MAX_RECORD_BYTES:
        pad -= 1
        biggest = worker("x" * pad)
    assert journal.append(0, epoch, [biggest]) == 1
    with pytest.raises(RecordTooLarge) as caught:
        journal.append(0, epoch, [worker("x" * (MAX_RECORD_BYTES + 1))])
    assert caught.value.limit == MAX_RECORD_BYTES == 65536
    assert journal.info(0).last_seq == 1


def test_unknown_partition(journal: Journal) -> None:
    with pytest.raises(UnknownPartition):
        journal.append(5, 1, batch("u", 1))
    for call in (
        lambda: journal.read(5),
        lambda: journal.info(5),
        lambda: journal.recover(5),
        lambda: journal.latest_snapshot(5),
        lambda: journal.write_snapshot(5, 1, b"s"),
        lambda: journal.verify(5),
        lambda: journal.compact(5),
    ):
        with pytest.raises(UnknownPartition):
            call()


@pytest.mark.parametrize("epoch", ["1", 1.0, True, None, b"1"])
def test_wrong_epoch_types(journal: Journal, epoch: object) -> None:
    journal.take_over(0)
    with pytest.raises(TypeError, match="epoch"):
        journal.append(0, epoch, batch("t", 1))  # type: ignore[arg-type]


@pytest.mark.parametrize("epoch", [0, -1, 2**63])
def test_epoch_out_of_range(journal: Journal, epoch: int) -> None:
    journal.take_over(0)
    with pytest.raises(ValueError, match="epoch"):
        journal.append(0, epoch, batch("t", 1))


@pytest.mark.parametrize("partition", [-1, 2**31, "0", 0.0, False])
def test_bad_partitions(journal: Journal, partition: object) -> None:
    with pytest.raises((TypeError, ValueError), match="partition"):
        journal.take_over(partition)  # type: ignore[arg-type]


def test_bad_records(journal: Journal) -> None:
    epoch = journal.take_over(0)
    with pytest.raises(TypeError):
        journal.append(0, epoch, worker("one"))  # type: ignore[arg-type]  # bytes, not a list of bytes
    with pytest.raises(TypeError):
        journal.append(0, epoch, ["text"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        journal.append(0, epoch, iter([worker("gen")]))  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord, match=r"not a journal\.v1\.Record"):
        journal.append(0, epoch, [b"\xff\xff\xff"])
    with pytest.raises(InvalidRecord, match="no kind"):
        journal.append(0, epoch, [records_pb2.Record().SerializeToString()])
    with pytest.raises(InvalidRecord, match="record 1"):
        journal.append(0, epoch, [worker("ok"), b""])
    assert journal.info(0).last_seq == 0


def test_bad_read_arguments(journal: Journal) -> None:
    journal.take_over(0)
    with pytest.raises(ValueError, match="limit"):
        journal.read(0, limit=0)
    with pytest.raises(ValueError, match="after_seq"):
        journal.read(0, after_seq=-1)


# ---------------------------------------------------------------------------- opening, schema, durability


def test_reopen_keeps_everything_and_migrates_once(journal_url: str) -> None:
    with Journal.open(journal_url) as journal:
        epoch = journal.take_over(0)
        journal.append(0, epoch, batch("keep", 2))
    with Journal.open(journal_url) as journal:
        assert journal.info(0).epoch == epoch
        assert [tag_of(e.payload) for e in journal.read(0)] == ["keep/0/2", "keep/1/2"]
    with Journal.open(journal_url, migrate=False) as journal:
        assert journal.verify(0).records == 2


def _open_concurrently(url: str, openers: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            Journal.open(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_opens_migrate_once(journal_url: str) -> None:
    assert _open_concurrently(journal_url, 6) == []
    Journal.open(journal_url, migrate=False).close()  # SchemaMismatch unless the schema is at the head


def test_concurrent_first_opens_of_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL needs an exclusive lock that SQLite refuses at once, without its busy
    # handler, to all but one of several first opens (about one round in twenty failed in CI before
    # the journal retried): many rounds, each on a fresh file, make the race show up.
    for round_ in range(20):
        url = f"sqlite:///{tmp_path / f'journal-{round_}.db'}"
        assert _open_concurrently(url, 6) == [], f"round {round_}"


def test_open_without_migration_needs_the_schema(journal_url: str, backend: str) -> None:
    if backend == "sqlite":
        with pytest.raises(FileNotFoundError):
            Journal.open(journal_url, migrate=False)
        Path(journal_url.removeprefix("sqlite:///")).touch()
    with pytest.raises(SchemaMismatch):
        Journal.open(journal_url, migrate=False)


def test_durable_settings(journal: Journal, backend: str) -> None:
    with journal._engine.connect() as conn:  # the store's pool, as its writers see it
        if backend == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() in ("on", "remote_write", "remote_apply")
            assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "5s"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pool_size", 0),
        ("retain_snapshots", 0),
        ("retain_records", -1),
        ("pg_idle_in_transaction_s", -1.0),
        ("pg_idle_in_transaction_s", float("nan")),
        ("pg_idle_in_transaction_s", 1e12),
    ],
)
def test_bad_options_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        JournalOptions(**{field: value})  # type: ignore[arg-type]


def test_in_memory_sqlite_is_refused() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ValueError, match="file path"):
            Journal.open(url)
    with pytest.raises(ValueError, match="unsupported"):
        Journal.open("mysql://localhost/x")
