"""The fenced append: take-over, append, and the validation of what is appended.

:meth:`Appender.take_over` bumps the partition's epoch in one transaction and returns it;
:meth:`Appender.append` checks the epoch and advances ``next_seq`` in the same transaction that inserts
the records, so a deposed leader's append raises :class:`~journal.errors.Fenced` and writes nothing, and
sequence numbers have no gaps. Every committed append rings the journal's :class:`~journal.wakeup.Wakeups`
and, on PostgreSQL, NOTIFYs :func:`notify_channel`. Callers use these through
:class:`~journal.store.Journal`; :func:`prepare_records` and :func:`notify_channel` are public (the group
committer and the tail import them from :mod:`journal.store`).

Example::

    appender = Appender(database, Wakeups())
    epoch = appender.take_over(3)
    last_seq = appender.append(3, epoch, [record.encode()])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from google.protobuf.message import DecodeError
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError

from journal.checks import check_epoch, check_partition
from journal.engine import Database
from journal.errors import EmptyBatch, Fenced, InvalidEpoch, InvalidRecord, RecordTooLarge, UnknownPartition
from journal.model import KIND_BYTES, MAX_RECORD_BYTES, PreparedRecord
from journal.schema import encoded_record_crc, partition_head
from journal.v1 import records_pb2
from journal.wakeup import Wakeups

__all__ = ["Appender", "notify_channel", "prepare_records"]


def prepare_records(records: Sequence[bytes]) -> list[PreparedRecord]:
    """Validate an append's payloads: a non-empty sequence of serialized ``journal.v1.Record`` with a kind.

    Raises :class:`TypeError` (not a sequence of ``bytes``), :class:`~journal.errors.EmptyBatch`,
    :class:`~journal.errors.RecordTooLarge` (over :data:`MAX_RECORD_BYTES`) or
    :class:`~journal.errors.InvalidRecord`.
    """
    if (records.__class__ is not list and records.__class__ is not tuple) and (  # lists, tuples: no ABC check
        isinstance(records, (bytes, bytearray, memoryview, str)) or not isinstance(records, Sequence)
    ):
        raise TypeError(f"records must be a sequence of bytes, not {type(records).__name__}")
    prepared: list[PreparedRecord] = []
    parse = records_pb2.Record.FromString
    for index, payload in enumerate(records):
        if not isinstance(payload, bytes):
            raise TypeError(f"record {index} must be bytes, not {type(payload).__name__}")
        if len(payload) > MAX_RECORD_BYTES:
            raise RecordTooLarge(len(payload), MAX_RECORD_BYTES)
        try:
            kind = parse(payload).WhichOneof("kind")
        except DecodeError as exc:
            raise InvalidRecord(f"record {index} is not a journal.v1.Record: {exc}") from None
        if kind is None:
            raise InvalidRecord(f"record {index} has no kind set")
        prepared.append(PreparedRecord(kind, payload))
    if not prepared:
        raise EmptyBatch("an append needs at least one record")
    return prepared


def notify_channel(partition: int) -> str:
    """The PostgreSQL NOTIFY channel announcing appends to ``partition``."""
    return f"leasehold_journal_{partition}"


class _Statements(NamedTuple):
    begin: str
    bump: str
    epoch: str


_SQLITE_SQL = _Statements(
    begin="BEGIN IMMEDIATE",
    bump='UPDATE partition_head SET next_seq = next_seq + ? WHERE "partition" = ? AND epoch = ? RETURNING next_seq',
    epoch='SELECT epoch FROM partition_head WHERE "partition" = ?',
)
_POSTGRES_SQL = _Statements(
    begin="",
    bump=_SQLITE_SQL.bump.replace("?", "%s"),
    epoch=_SQLITE_SQL.epoch.replace("?", "%s"),
)

#: Most rows one INSERT statement of an append carries (6 parameters each).
_INSERT_CHUNK = 128
_insert_cache: dict[int, str] = {}


def _sqlite_insert_sql(rows: int) -> str:
    """The SQLite INSERT of ``rows`` journal rows (cached: the driver caches prepared statements by text)."""
    found = _insert_cache.get(rows)
    if found is None:
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
        found = _insert_cache[rows] = (
            f'INSERT INTO journal ("partition", seq, epoch, kind, payload, crc) VALUES {values}'
        )
    return found


# A data-modifying WITH runs exactly once whether or not the outer query reads it.
_PG_INSERT_NOTIFY = (
    'WITH ins AS (INSERT INTO journal ("partition", seq, epoch, kind, payload, crc)'
    " SELECT %s, s, %s, k, p, c FROM unnest(%s::bigint[], %s::text[], %s::bytea[], %s::bigint[]) AS r(s, k, p, c))"
    " SELECT pg_notify(%s, %s)"
)


class Appender:
    """The writing side of a journal: fencing (:meth:`take_over`) and appends."""

    def __init__(self, database: Database, wakeups: Wakeups) -> None:
        self._database = database
        self._wakeups = wakeups
        self._sql = _SQLITE_SQL if database.backend == "sqlite" else _POSTGRES_SQL

    def take_over(self, partition: int) -> int:
        """Become the partition's writer: bump its epoch in one transaction and return the new epoch.

        Creates the partition (epoch 1) on first use. Every append with an older epoch fails from the
        moment this commits.
        """
        partition = check_partition(partition)
        ins = (pg_dialect.insert if self._database.backend == "postgresql" else sqlite_dialect.insert)(partition_head)
        stmt = (
            ins.values(partition=partition, epoch=1, next_seq=1, first_seq=1)
            .on_conflict_do_update(
                index_elements=[partition_head.c.partition], set_={"epoch": partition_head.c.epoch + 1}
            )
            .returning(partition_head.c.epoch)
        )
        with self._database.writer.begin() as conn:
            return int(conn.execute(stmt).scalar_one())

    def append(self, partition: int, epoch: int, records: Sequence[bytes]) -> int:
        """Append records (serialized ``journal.v1.Record``) as the writer of ``epoch``; return the last seq.

        One transaction: check the epoch, advance the sequence, insert the records. When it returns the
        records are committed (durably, see :class:`~journal.engine.JournalOptions`) with seqs
        ``last - n + 1 .. last``. Raises :class:`~journal.errors.Fenced` when a newer epoch took over
        (nothing is written), :class:`~journal.errors.UnknownPartition`, :class:`~journal.errors.InvalidEpoch`,
        or the errors of :func:`prepare_records`. If the database fails during commit the outcome is
        unknown; a reader will see all of the records or none.
        """
        partition = check_partition(partition)
        epoch = check_epoch(epoch)
        return self.append_prepared(partition, epoch, prepare_records(records))

    def append_prepared(self, partition: int, epoch: int, records: Sequence[PreparedRecord]) -> int:
        """:meth:`append` for records already checked by :func:`prepare_records` (the group committer's path).

        This is the hot path, so it runs the transaction on the pooled driver connection with plain SQL
        (SQLAlchemy Core adds more than the commit itself costs); driver errors come out wrapped in
        :class:`sqlalchemy.exc.DBAPIError` as from Core.
        """
        count = len(records)
        if count == 0:
            raise EmptyBatch("an append needs at least one record")
        sql = self._sql
        dbapi_error = self._database.dbapi_error
        raw = self._database.engine.raw_connection()
        statement = sql.bump
        try:
            cursor = raw.cursor()
            try:
                if sql.begin:
                    cursor.execute(sql.begin)
                cursor.execute(sql.bump, (count, partition, epoch))
                row = cursor.fetchall()
                if not row:
                    statement = sql.epoch
                    cursor.execute(sql.epoch, (partition,))
                    found = cursor.fetchall()
                    raw.rollback()
                    if not found:
                        raise UnknownPartition(partition)
                    current = int(found[0][0])
                    if current > epoch:
                        raise Fenced(partition, epoch, current)
                    raise InvalidEpoch(partition, epoch, current)
                last = int(row[0][0]) - 1
                first = last - count + 1
                kinds = KIND_BYTES
                crcs: list[int] = []
                for i, (kind, payload) in enumerate(records):
                    kind_bytes = kinds.get(kind)
                    crcs.append(
                        encoded_record_crc(
                            partition, first + i, epoch, kind.encode() if kind_bytes is None else kind_bytes, payload
                        )
                    )
                if self._database.backend == "postgresql":
                    # One statement with array parameters (unnest), its text constant so the driver's
                    # query cache holds it, the NOTIFY riding along: one round trip for all the rows.
                    statement = _PG_INSERT_NOTIFY
                    cursor.execute(
                        statement,
                        (
                            partition,
                            epoch,
                            list(range(first, last + 1)),
                            [rec.kind for rec in records],
                            [rec.payload for rec in records],
                            crcs,
                            notify_channel(partition),
                            str(last),
                        ),
                    )
                else:
                    # Multi-row INSERTs of up to _INSERT_CHUNK rows: one statement step (one release of the
                    # GIL) per chunk rather than one per row as executemany does.
                    params: list[object] = []
                    for i, (kind, payload) in enumerate(records):
                        params += (partition, first + i, epoch, kind, payload, crcs[i])
                    for begin in range(0, count, _INSERT_CHUNK):
                        rows = min(_INSERT_CHUNK, count - begin)
                        statement = _sqlite_insert_sql(rows)
                        cursor.execute(statement, params[begin * 6 : (begin + rows) * 6])
                statement = "COMMIT"
                raw.commit()
            finally:
                cursor.close()
        except dbapi_error as exc:
            try:
                raw.rollback()
            except dbapi_error:
                raw.invalidate()
            raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
        self._wakeups.wake(partition)
        return last
