"""Snapshots and compaction: storing partition core snapshots, reading the newest checked, and cutting
the records and snapshots that the newest snapshot makes unnecessary.

Callers use these through :class:`~journal.store.Journal`; :mod:`journal.reader` imports
:func:`latest_snapshot` and :func:`check_snapshot` for recovery and verification.

Example::

    snapshots = Snapshots(database)
    snapshots.write_snapshot(3, seq=120, data=core.snapshot())
    newest = snapshots.latest_snapshot(3)
    snapshots.compact(3, retain_records=0)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from journal.checks import MAX_BIGINT, check_int, check_partition
from journal.engine import Database
from journal.errors import JournalCorrupt, RecordTooLarge
from journal.forensics import ReadTx
from journal.model import MAX_SNAPSHOT_BYTES, CompactResult, Head, Snapshot
from journal.schema import journal as journal_table
from journal.schema import partition_head, snapshot_crc, snapshots

__all__ = ["Snapshots", "check_snapshot", "latest_snapshot"]


def latest_snapshot(conn: Connection, partition: int, head: Head) -> Snapshot | None:
    """The newest snapshot of ``partition`` in ``conn``'s transaction, checked; ``None`` if there is none."""
    s = snapshots.c
    row = conn.execute(
        select(s.seq, s.epoch, s.data, s.crc).where(s.partition == partition).order_by(s.seq.desc()).limit(1)
    ).one_or_none()
    if row is None:
        return None
    return check_snapshot(partition, head, row)


def check_snapshot(partition: int, head: Head, row: Any) -> Snapshot:
    """The snapshot of a ``(seq, epoch, data, crc)`` row, or :class:`~journal.errors.JournalCorrupt`."""
    seq, epoch, data, crc = int(row[0]), int(row[1]), row[2], row[3]
    if data is None or crc is None:
        raise JournalCorrupt(partition, seq, "snapshot torn (data or CRC missing)")
    data = bytes(data)
    computed = snapshot_crc(partition, seq, epoch, data)
    if computed != crc:
        raise JournalCorrupt(partition, seq, f"snapshot CRC mismatch (stored {crc:#010x}, computed {computed:#010x})")
    if seq >= head.next_seq:
        raise JournalCorrupt(partition, seq, f"snapshot beyond the head (the journal ends at {head.next_seq - 1})")
    if epoch > head.epoch:
        raise JournalCorrupt(partition, seq, f"snapshot epoch {epoch} is newer than the partition's {head.epoch}")
    return Snapshot(partition, seq, epoch, data)


class Snapshots:
    """The snapshot side of a journal: write, read the newest, compact."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def write_snapshot(self, partition: int, seq: int, data: bytes) -> Snapshot:
        """Store a core snapshot taken after applying record ``seq`` (``first_seq <= seq <= last_seq``).

        Snapshots are derived state, so any holder of a correct core may write one (no epoch check);
        writing the same seq again replaces it. Its epoch is that of record ``seq``.
        """
        partition = check_partition(partition)
        seq = check_int("seq", seq, 1, MAX_BIGINT)
        if not isinstance(data, bytes):
            raise TypeError(f"snapshot data must be bytes, not {type(data).__name__}")
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise RecordTooLarge(len(data), MAX_SNAPSHOT_BYTES, "snapshot")
        database = self._database
        with database.writer.begin() as conn:
            head = database.head(conn, partition)
            if not head.first_seq <= seq < head.next_seq:
                raise ValueError(
                    f"partition {partition}: a snapshot seq must be in {head.first_seq}..{head.next_seq - 1}, got {seq}"
                )
            epoch = conn.execute(
                select(journal_table.c.epoch).where(journal_table.c.partition == partition, journal_table.c.seq == seq)
            ).scalar_one_or_none()
            if epoch is None:
                raise JournalCorrupt(partition, seq, "record missing (snapshot written at its seq)")
            crc = snapshot_crc(partition, seq, int(epoch), data)
            ins = (pg_dialect.insert if database.backend == "postgresql" else sqlite_dialect.insert)(snapshots)
            conn.execute(
                ins.values(partition=partition, seq=seq, epoch=int(epoch), data=data, crc=crc).on_conflict_do_update(
                    index_elements=[snapshots.c.partition, snapshots.c.seq],
                    set_={"epoch": int(epoch), "data": data, "crc": crc},
                )
            )
        return Snapshot(partition, seq, int(epoch), data)

    def latest_snapshot(self, partition: int) -> Snapshot | None:
        """The newest snapshot of the partition, CRC-checked; ``None`` if there is none."""
        partition = check_partition(partition)
        with ReadTx(self._database, partition) as conn:
            head = self._database.head(conn, partition)
            return latest_snapshot(conn, partition, head)

    def compact(
        self, partition: int, *, retain_records: int | None = None, retain_snapshots: int | None = None
    ) -> CompactResult:
        """Delete records older than the newest snapshot (keeping ``retain_records`` of them) and all but
        the newest ``retain_snapshots`` snapshots; defaults from :class:`~journal.engine.JournalOptions`.
        """
        partition = check_partition(partition)
        options = self._database.options
        keep_records = options.retain_records if retain_records is None else retain_records
        keep_records = check_int("retain_records", keep_records, 0, MAX_BIGINT)
        keep_snaps = options.retain_snapshots if retain_snapshots is None else retain_snapshots
        keep_snaps = check_int("retain_snapshots", keep_snaps, 1, 1_000_000)
        s = snapshots.c
        with self._database.writer.begin() as conn:
            head = self._database.head(conn, partition, lock=True)
            seqs = list(conn.execute(select(s.seq).where(s.partition == partition).order_by(s.seq.desc())).scalars())
            if not seqs:
                return CompactResult(partition, 0, 0, head.first_seq)
            cut = int(seqs[0]) - keep_records
            records_deleted = 0
            first_seq = head.first_seq
            if cut >= head.first_seq:
                records_deleted = conn.execute(
                    delete(journal_table).where(journal_table.c.partition == partition, journal_table.c.seq <= cut)
                ).rowcount
                first_seq = cut + 1
                conn.execute(
                    update(partition_head).where(partition_head.c.partition == partition).values(first_seq=first_seq)
                )
            snapshots_deleted = 0
            if len(seqs) > keep_snaps:
                oldest_kept = int(seqs[keep_snaps - 1])
                snapshots_deleted = conn.execute(
                    delete(snapshots).where(s.partition == partition, s.seq < oldest_kept)
                ).rowcount
        return CompactResult(partition, records_deleted, snapshots_deleted, first_seq)
