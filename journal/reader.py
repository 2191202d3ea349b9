"""The checked reader: partitions, heads, pages of records, recovery, and verification.

Every record read passes the one :class:`~journal.checker.Checker` (CRC, continuity against the head,
epochs never going backwards) and a read stops with :class:`~journal.errors.JournalCorrupt` naming the
partition and the first bad seq; reads run in :class:`~journal.forensics.ReadTx`, so a SQLite file that
SQLite itself finds damaged is reported at its seq too. Callers use these through
:class:`~journal.store.Journal`; nothing else imports this module.

Example::

    reader = Reader(database)
    entries = reader.read(3, after_seq=0, limit=100)
    recovery = reader.recover(3)     # newest snapshot + every record after it
    report = reader.verify(3)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError

from journal.checker import Checker
from journal.checks import MAX_BIGINT, check_int, check_partition
from journal.engine import Database
from journal.errors import Compacted, JournalCorrupt
from journal.forensics import ReadTx
from journal.model import MAX_READ_LIMIT, Entry, Head, PartitionInfo, PayloadRecovery, Recovery, Snapshot, VerifyReport
from journal.schema import journal as journal_table
from journal.schema import partition_head, snapshots
from journal.snapshots import check_snapshot, latest_snapshot

__all__ = ["Reader"]

#: Rows fetched from the driver at a time when reading records.
_FETCH_ROWS = 4096

_SQLITE_RECORDS = 'SELECT seq, epoch, kind, payload, crc FROM journal WHERE "partition" = ? AND seq > ? ORDER BY seq'
_SQLITE_RECORDS_LIMIT = _SQLITE_RECORDS + " LIMIT ?"


class Reader:
    """The reading side of a journal; every method checks what it returns."""

    def __init__(self, database: Database) -> None:
        self._database = database
        if database.backend == "sqlite":
            self._records, self._records_limit = _SQLITE_RECORDS, _SQLITE_RECORDS_LIMIT
        else:
            self._records = _SQLITE_RECORDS.replace("?", "%s")
            self._records_limit = _SQLITE_RECORDS_LIMIT.replace("?", "%s")

    def _reading(self, partition: int | None, after_seq: int = 0) -> ReadTx:
        return ReadTx(self._database, partition, after_seq)

    def partitions(self) -> list[int]:
        """Every partition that has been taken over at least once, in order."""
        with self._reading(None) as conn:
            return [int(p) for p in conn.execute(select(partition_head.c.partition).order_by("partition")).scalars()]

    def info(self, partition: int) -> PartitionInfo:
        """The partition's head (:class:`~journal.errors.UnknownPartition` if it has none)."""
        partition = check_partition(partition)
        with self._reading(partition) as conn:
            head = self._database.head(conn, partition)
        return PartitionInfo(partition, head.epoch, head.first_seq, head.next_seq)

    def read(self, partition: int, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """Up to ``limit`` checked records with ``seq > after_seq``, in order (fewer only at the end).

        Raises :class:`~journal.errors.Compacted` if records after ``after_seq`` were compacted away,
        :class:`~journal.errors.JournalCorrupt` at the first damaged or missing record.
        """
        partition = check_partition(partition)
        after_seq = check_int("after_seq", after_seq, 0, MAX_BIGINT)
        limit = check_int("limit", limit, 1, MAX_READ_LIMIT)
        return self._read_page(partition, after_seq, limit, 0)[0]

    def _read_page(self, partition: int, after_seq: int, limit: int, prev_epoch: int) -> tuple[list[Entry], Head]:
        with self._reading(partition, after_seq) as conn:
            head = self._database.head(conn, partition)
            if after_seq < head.first_seq - 1:
                raise Compacted(partition, after_seq, head.first_seq)
            checker = Checker(partition, head, after_seq, prev_epoch=prev_epoch)
            entries: list[Entry] = []
            self._check_records(conn, checker, limit, entries, None)
            checker.finish(after_seq + limit)
        return entries, head

    def _check_records(
        self,
        conn: Connection,
        checker: Checker,
        limit: int | None,
        entries: list[Entry] | None,
        payloads: list[bytes] | None,
    ) -> None:
        """Read the records after ``checker.expected - 1`` (at most ``limit``) on the transaction's own driver
        connection, in large batches, through :meth:`Checker.check_rows <journal.checker.Checker.check_rows>`.

        The raw driver cursor, not SQLAlchemy's result rows: per row those cost more than the check itself.
        Driver errors come out wrapped in :class:`sqlalchemy.exc.DBAPIError`, as from Core, so a damaged
        SQLite file is still recognised (see :class:`~journal.forensics.ReadTx`).
        """
        params: tuple[int, ...] = (checker.partition, checker.expected - 1)
        statement = self._records
        if limit is not None:
            statement = self._records_limit
            params = (*params, limit)
        dbapi_conn: Any = conn.connection.dbapi_connection
        dbapi_error = self._database.dbapi_error
        try:
            # PostgreSQL: binary results, so bytea arrives as bytes instead of hex text to decode.
            postgres = self._database.backend == "postgresql"
            cursor = dbapi_conn.cursor(binary=True) if postgres else dbapi_conn.cursor()
            try:
                cursor.execute(statement, params)
                while rows := cursor.fetchmany(_FETCH_ROWS):
                    checker.check_rows(rows, entries, payloads)
            finally:
                cursor.close()
        except dbapi_error as exc:
            raise DBAPIError.instance(statement, params, exc, dbapi_error) from exc

    @staticmethod
    def _records_stmt(partition: int, after_seq: int) -> Any:
        j = journal_table.c
        return (
            select(j.seq, j.epoch, j.kind, j.payload, j.crc)
            .where(j.partition == partition, j.seq > after_seq)
            .order_by(j.seq)
        )

    def iter_entries(self, partition: int, after_seq: int = 0, page: int = 10_000) -> Iterator[Entry]:
        """Every record after ``after_seq`` up to the end seen at the last page, read ``page`` at a time."""
        partition = check_partition(partition)
        after_seq = check_int("after_seq", after_seq, 0, MAX_BIGINT)
        page = check_int("page", page, 1, MAX_READ_LIMIT)
        prev_epoch = 0
        while True:
            entries, _ = self._read_page(partition, after_seq, page, prev_epoch)
            yield from entries
            if len(entries) < page:
                return
            after_seq = entries[-1].seq
            prev_epoch = entries[-1].epoch

    def recover(self, partition: int) -> Recovery:
        """The newest snapshot and every record after it, read in one consistent transaction and checked.

        Raises :class:`~journal.errors.JournalCorrupt` at the first damaged record or a damaged snapshot.
        """
        entries: list[Entry] = []
        head, snapshot = self._recover(partition, entries, None)
        return Recovery(partition, head.epoch, snapshot, entries)

    def recover_payloads(self, partition: int) -> PayloadRecovery:
        """:meth:`recover` without an :class:`~journal.model.Entry` per record: the payloads only, checked
        the same way.

        Replay's fast path (:func:`assignment.recovery.rebuild`): record ``i`` of the result has seq
        ``first_seq + i``, as the seqs were checked to be contiguous.
        """
        payloads: list[bytes] = []
        head, snapshot = self._recover(partition, None, payloads)
        start = snapshot.seq if snapshot is not None else 0
        return PayloadRecovery(partition, head.epoch, snapshot, start + 1, payloads)

    def _recover(
        self, partition: int, entries: list[Entry] | None, payloads: list[bytes] | None
    ) -> tuple[Head, Snapshot | None]:
        partition = check_partition(partition)
        with self._reading(partition) as conn:
            head = self._database.head(conn, partition)
            snapshot = latest_snapshot(conn, partition, head)
            start = snapshot.seq if snapshot is not None else 0
            if start < head.first_seq - 1:
                raise JournalCorrupt(
                    partition,
                    head.first_seq - 1,
                    "records up to here were compacted but no snapshot covers them",
                )
            checker = Checker(partition, head, start, prev_epoch=snapshot.epoch if snapshot else 0)
            self._check_records(conn, checker, None, entries, payloads)
            checker.finish()
        return head, snapshot

    def verify(self, partition: int) -> VerifyReport:
        """Check the whole partition: head, every record (CRC, continuity, epochs, decodable with the
        stored kind) and every snapshot. Raises :class:`~journal.errors.JournalCorrupt` at the first damage.
        """
        partition = check_partition(partition)
        s = snapshots.c
        with self._reading(partition) as conn:
            head = self._database.head(conn, partition)
            checker = Checker(partition, head, head.first_seq - 1, decode=True)
            rows = conn.execution_options(stream_results=True, yield_per=2000).execute(
                self._records_stmt(partition, head.first_seq - 1)
            )
            count = 0
            try:
                for row in rows:
                    checker.check(*row)
                    count += 1
            finally:
                rows.close()
            checker.finish()
            snaps = conn.execute(
                select(s.seq, s.epoch, s.data, s.crc).where(s.partition == partition).order_by(s.seq)
            ).all()
            for snap in snaps:
                check_snapshot(partition, head, snap)
            if head.first_seq > 1 and not any(int(r[0]) >= head.first_seq - 1 for r in snaps):
                raise JournalCorrupt(
                    partition, head.first_seq - 1, "records up to here were compacted but no snapshot covers them"
                )
        return VerifyReport(partition, head.epoch, head.first_seq, head.next_seq - 1, count, len(snaps))
