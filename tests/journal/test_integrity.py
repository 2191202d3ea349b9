"""Damage is found, reported at the exact seq, and never skipped: SQL-level tampering on both backends,
byte flips and truncation of the SQLite file.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from journal.errors import JournalCorrupt
from journal.schema import record_crc
from journal.store import Journal
from tests.journal.records import worker


def _fill(journal: Journal, n: int, per_batch: int = 10) -> int:
    epoch = journal.take_over(0)
    for start in range(0, n, per_batch):
        journal.append(
            0, epoch, [worker(f"rec-{i:06d}-{os.urandom(4).hex()}") for i in range(start, start + per_batch)]
        )
    return epoch


def _sql(journal: Journal, sql: str, **params: object) -> None:
    with journal._engine.begin() as conn:
        conn.execute(text(sql), params)


def _assert_reports(journal: Journal, seq: int | None, why: str = "") -> None:
    """verify, recover (entries, and payloads only: the Rust loop) and a read from the start all stop at ``seq``."""
    for call in (
        lambda: journal.verify(0),
        lambda: journal.recover(0),
        lambda: journal.recover_payloads(0),
        lambda: journal.read(0, limit=100_000),
    ):
        with pytest.raises(JournalCorrupt) as caught:
            call()
        assert (caught.value.partition, caught.value.seq) == (0, seq), str(caught.value)
        assert why in caught.value.why


def test_flipped_payload_fails_its_crc(journal: Journal) -> None:
    _fill(journal, 30)
    with journal._engine.begin() as conn:
        payload = conn.execute(text('SELECT payload FROM journal WHERE "partition" = 0 AND seq = 17')).scalar_one()
        damaged = bytes(payload[:5]) + bytes([payload[5] ^ 0x40]) + bytes(payload[6:])
        conn.execute(text('UPDATE journal SET payload = :p WHERE "partition" = 0 AND seq = 17'), {"p": damaged})
    _assert_reports(journal, 17, "CRC mismatch")
    assert [e.seq for e in journal.read(0, limit=16)] == list(range(1, 17))  # before the damage reads fine


def test_deleted_row_in_the_middle(journal: Journal) -> None:
    _fill(journal, 30)
    _sql(journal, 'DELETE FROM journal WHERE "partition" = 0 AND seq = 12')
    _assert_reports(journal, 12, "missing")


def test_deleted_last_rows(journal: Journal) -> None:
    _fill(journal, 30)
    _sql(journal, 'DELETE FROM journal WHERE "partition" = 0 AND seq >= 28')
    _assert_reports(journal, 28, "missing")


def test_renumbered_row(journal: Journal) -> None:
    _fill(journal, 20)
    _sql(journal, 'DELETE FROM journal WHERE "partition" = 0 AND seq = 9')
    _sql(journal, 'UPDATE journal SET seq = 9 WHERE "partition" = 0 AND seq = 10')  # moved into the hole
    _assert_reports(journal, 9, "CRC mismatch")


def test_row_moved_to_another_partition(journal: Journal) -> None:
    _fill(journal, 20)
    journal.take_over(1)
    _sql(journal, 'UPDATE journal SET "partition" = 1 WHERE "partition" = 0 AND seq = 1')
    _sql(journal, 'UPDATE partition_head SET next_seq = 2 WHERE "partition" = 1')
    _assert_reports(journal, 1, "missing")
    with pytest.raises(JournalCorrupt, match="CRC mismatch"):
        journal.verify(1)


def test_epoch_going_backwards(journal: Journal) -> None:
    first = _fill(journal, 10)
    second = journal.take_over(0)
    journal.append(0, second, [worker("second")])
    # A record of the older epoch after one of the newer, with a CRC that matches: out of order.
    payload = worker("forged")
    crc = record_crc(0, 12, first, "worker_joined", payload)
    _sql(
        journal,
        'INSERT INTO journal ("partition", seq, epoch, kind, payload, crc) VALUES (0, 12, :e, :k, :p, :c)',
        e=first, k="worker_joined", p=payload, c=crc,
    )  # fmt: skip
    _sql(journal, 'UPDATE partition_head SET next_seq = 13 WHERE "partition" = 0')
    _assert_reports(journal, 12, "out of order")


def test_record_beyond_the_head(journal: Journal) -> None:
    epoch = _fill(journal, 10)
    payload = worker("ghost")
    crc = record_crc(0, 11, epoch, "worker_joined", payload)
    _sql(
        journal,
        'INSERT INTO journal ("partition", seq, epoch, kind, payload, crc) VALUES (0, 11, :e, :k, :p, :c)',
        e=epoch, k="worker_joined", p=payload, c=crc,
    )  # fmt: skip
    _assert_reports(journal, 11, "beyond the head")


def test_kind_not_matching_the_payload(journal: Journal) -> None:
    epoch = _fill(journal, 5)
    payload = worker("k")
    _sql(
        journal,
        'UPDATE journal SET kind = :k, crc = :c WHERE "partition" = 0 AND seq = 3',
        k="worker_left", c=record_crc(0, 3, epoch, "worker_left", payload),
    )  # fmt: skip
    _sql(journal, 'UPDATE journal SET payload = :p WHERE "partition" = 0 AND seq = 3', p=payload)
    with pytest.raises(JournalCorrupt, match="differs from stored kind") as caught:
        journal.verify(0)
    assert caught.value.seq == 3


def test_damaged_snapshot(journal: Journal) -> None:
    _fill(journal, 10)
    journal.write_snapshot(0, 6, b"snapshot bytes")
    _sql(journal, "UPDATE snapshots SET data = :d WHERE seq = 6", d=b"snapshot bytez")
    for call in (lambda: journal.verify(0), lambda: journal.recover(0), lambda: journal.latest_snapshot(0)):
        with pytest.raises(JournalCorrupt, match="snapshot CRC mismatch") as caught:
            call()
        assert caught.value.seq == 6


def test_compacted_without_snapshot(journal: Journal) -> None:
    _fill(journal, 10)
    journal.write_snapshot(0, 5, b"s")
    journal.compact(0, retain_records=0, retain_snapshots=1)
    _sql(journal, "DELETE FROM snapshots")
    for call in (lambda: journal.verify(0), lambda: journal.recover(0), lambda: journal.recover_payloads(0)):
        with pytest.raises(JournalCorrupt, match="no snapshot") as caught:
            call()
        assert caught.value.seq == 5


# ---------------------------------------------------------------------------- damage to the SQLite file


def _sqlite_file(tmp_path: Path, n: int) -> tuple[Path, dict[int, bytes]]:
    """A closed (checkpointed) SQLite journal of ``n`` records; returns its path and each record's tag."""
    path = tmp_path / "damaged.db"
    tags: dict[int, bytes] = {}
    with Journal.open(f"sqlite:///{path}") as journal:
        epoch = journal.take_over(0)
        for seq in range(1, n + 1):
            tag = f"tag-{seq:06d}-{os.urandom(6).hex()}"
            tags[seq] = tag.encode()
            journal.append(0, epoch, [worker(tag)])
    assert not Path(f"{path}-wal").exists()  # everything is in the main file
    return path, tags


def _reports_on_file(path: Path, seq: int, why: str) -> None:
    with Journal.open(f"sqlite:///{path}", migrate=False) as journal:
        for call in (
            lambda: journal.verify(0),
            lambda: journal.recover(0),
            lambda: journal.recover_payloads(0),
            lambda: journal.read(0, limit=100_000),
        ):
            with pytest.raises(JournalCorrupt) as caught:
                call()
            assert caught.value.seq == seq, str(caught.value)
            assert why in caught.value.why, str(caught.value)


def test_sqlite_flipped_bytes_in_a_payload(tmp_path: Path) -> None:
    path, tags = _sqlite_file(tmp_path, 300)
    data = bytearray(path.read_bytes())
    offset = data.find(tags[123])
    assert offset > 0
    assert data.count(tags[123]) == 1
    data[offset + 8] ^= 0x01
    path.write_bytes(bytes(data))
    _reports_on_file(path, 123, "CRC mismatch")


def test_sqlite_truncated_file(tmp_path: Path) -> None:
    path, tags = _sqlite_file(tmp_path, 1500)
    size = path.stat().st_size
    os.truncate(path, (size * 2 // 3) // 4096 * 4096)
    # The oracle: point lookups, one seq at a time, on the damaged file; the first that fails is lost.
    first_lost = None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        con.execute("PRAGMA writable_schema=ON")
        for seq in range(1, len(tags) + 1):
            try:
                row = con.execute('SELECT payload FROM journal WHERE "partition" = 0 AND seq = ?', (seq,)).fetchone()
            except sqlite3.DatabaseError:
                row = None
            if row is None or tags[seq] not in row[0]:
                first_lost = seq
                break
    finally:
        con.close()
    assert first_lost is not None
    assert 1 < first_lost < len(tags)
    _reports_on_file(path, first_lost, "database damaged")


def test_sqlite_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 1000)
    with Journal.open(f"sqlite:///{path}", migrate=False) as journal, pytest.raises(JournalCorrupt) as caught:
        journal.verify(0)
    assert caught.value.seq is None
