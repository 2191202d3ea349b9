"""The journal store: an append-only, fenced, checked log per partition on SQLAlchemy (sync API).

Backends:

* **SQLite** (the embedded default), a file: ``sqlite:////var/lib/leasehold/journal.db``. WAL mode;
  ``synchronous=FULL`` by default (:attr:`JournalOptions.durable`), so a commit is on disk before
  :meth:`Journal.append` returns and no acknowledged append is lost on a crash or power loss.
  Writes use ``BEGIN IMMEDIATE``, which serialises writers (threads and processes) on the database lock.
  In-memory databases are refused: they are neither durable nor shared between connections.
* **PostgreSQL** (several hosts), through psycopg 3: ``postgresql://user@host/db``. Appenders serialise
  on their partition's ``partition_head`` row. With :attr:`JournalOptions.durable` a session whose server
  default is ``synchronous_commit = off`` is switched back to ``on``; otherwise the server's setting
  (``on``, ``remote_write``, ...) stands.

Fencing: :meth:`Journal.take_over` bumps the partition's epoch in one transaction and returns it;
:meth:`Journal.append` checks the epoch and advances ``next_seq`` in the same transaction that inserts
the records, so a deposed leader's append raises :class:`~journal.errors.Fenced` and writes nothing, and
sequence numbers have no gaps. Safety does not depend on any clock or on ZooKeeper.

Integrity: every record carries a CRC over (partition, seq, epoch, kind, payload); every read checks
CRCs, continuity of seqs against the head, and that epochs never go backwards, and stops with
:class:`~journal.errors.JournalCorrupt` naming the partition and the first bad seq. A SQLite file that
SQLite itself finds damaged (e.g. truncated) is scanned record by record to name that seq too.

Example::

    with Journal.open("sqlite:///data/journal.db") as journal:
        epoch = journal.take_over(3)
        last_seq = journal.append(3, epoch, [record.encode()])
        for entry in journal.read(3, after_seq=0):
            ...
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zlib import crc32

from google.protobuf.message import DecodeError
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from assignment.partition_core import check_record_rows
from journal import migrations
from journal.errors import (
    Compacted,
    EmptyBatch,
    Fenced,
    InvalidEpoch,
    InvalidRecord,
    JournalCorrupt,
    RecordTooLarge,
    SchemaMismatch,
    UnknownPartition,
)
from journal.schema import RECORD_HEADER, partition_head, record_crc, snapshot_crc, snapshots
from journal.schema import journal as journal_table
from journal.v1 import records_pb2

__all__ = [
    "MAX_PARTITION",
    "MAX_RECORD_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "Backend",
    "CompactResult",
    "Entry",
    "Journal",
    "JournalOptions",
    "PartitionInfo",
    "PayloadRecovery",
    "PreparedRecord",
    "Recovery",
    "Snapshot",
    "VerifyReport",
    "prepare_records",
]

#: Largest record payload accepted by :meth:`Journal.append` (64 KiB). A record is one state change of
#: one partition; the largest real ones are well under 1 KiB.
MAX_RECORD_BYTES = 64 * 1024
#: Largest snapshot accepted by :meth:`Journal.write_snapshot` (256 MiB).
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024
#: Partitions are numbered ``0 .. MAX_PARTITION`` (a PostgreSQL ``integer``).
MAX_PARTITION = 2**31 - 1
_MAX_BIGINT = 2**63 - 1
#: Most records one :meth:`Journal.read` returns.
MAX_READ_LIMIT = 100_000
#: Rows fetched from the driver at a time when reading records.
_FETCH_ROWS = 4096
_PG_MIGRATION_LOCK = 0x4C48_4A4E  # "LHJN": advisory lock key serialising migrations

Backend = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class JournalOptions:
    """How a journal is opened; every field has a safe default.

    ``durable``: SQLite ``synchronous=FULL`` (else ``NORMAL``: a power loss may drop the last commits);
    PostgreSQL ``synchronous_commit`` at least ``on`` (else ``off`` for the session).
    ``busy_timeout_s``: how long a SQLite writer waits for another one's lock before failing.
    ``pg_idle_in_transaction_s``: PostgreSQL ends a session that sits this long inside a transaction
    (``idle_in_transaction_session_timeout``; 0 turns it off). It bounds how long a paused writer — a
    leader stopped by SIGSTOP or a VM freeze between its UPDATE of ``partition_head`` and its COMMIT —
    can hold the row lock that the next leader's take-over waits for. SQLite has no equivalent: a paused
    process that holds its database's write lock stalls every writer until it resumes or dies.
    ``retain_records``: records older than the newest snapshot that :meth:`Journal.compact` keeps.
    ``retain_snapshots``: snapshots (newest first) that :meth:`Journal.compact` keeps, at least 1.
    ``pool_size``: connections kept open per journal.
    """

    durable: bool = True
    busy_timeout_s: float = 30.0
    pg_idle_in_transaction_s: float = 5.0
    retain_records: int = 0
    retain_snapshots: int = 2
    pool_size: int = 8

    def __post_init__(self) -> None:
        if self.retain_records < 0:
            raise ValueError("retain_records must be >= 0")
        if self.retain_snapshots < 1:
            raise ValueError("retain_snapshots must be >= 1")
        if self.pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        if not 0 <= self.pg_idle_in_transaction_s <= 86_400:  # also refuses NaN
            raise ValueError("pg_idle_in_transaction_s must be between 0 and 86400 seconds")


class Entry(NamedTuple):
    """One checked record of the journal. ``payload`` is the bytes of a ``journal.v1.Record``.

    A named tuple rather than a frozen dataclass: recovery makes one per record, and a tuple is
    several times cheaper to build.
    """

    partition: int
    seq: int
    epoch: int
    kind: str
    payload: bytes

    def record(self) -> records_pb2.Record:
        """The payload parsed as ``journal.v1.Record``."""
        return records_pb2.Record.FromString(self.payload)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A partition core snapshot: the state after applying every record up to and including ``seq``."""

    partition: int
    seq: int
    epoch: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a new leader or follower needs: the newest snapshot (if any) and every record after it."""

    partition: int
    epoch: int
    snapshot: Snapshot | None
    entries: list[Entry]

    @property
    def last_seq(self) -> int:
        """The seq of the last record covered (0 for an empty journal)."""
        if self.entries:
            return self.entries[-1].seq
        return self.snapshot.seq if self.snapshot is not None else 0


@dataclass(frozen=True, slots=True)
class PayloadRecovery:
    """:class:`Recovery` with the records' payloads only; ``payloads[i]`` is the record of seq ``first_seq + i``."""

    partition: int
    epoch: int
    snapshot: Snapshot | None
    first_seq: int
    payloads: list[bytes]

    @property
    def last_seq(self) -> int:
        """The seq of the last record covered (0 for an empty journal)."""
        return self.first_seq + len(self.payloads) - 1


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A partition's head: its current epoch and the range of records kept."""

    partition: int
    epoch: int
    first_seq: int
    next_seq: int

    @property
    def last_seq(self) -> int:
        """The seq of the newest record (0 when none was ever appended)."""
        return self.next_seq - 1


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of a clean :meth:`Journal.verify`."""

    partition: int
    epoch: int
    first_seq: int
    last_seq: int
    records: int
    snapshots: int


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What :meth:`Journal.compact` removed, and where the journal starts now."""

    partition: int
    records_deleted: int
    snapshots_deleted: int
    first_seq: int


class PreparedRecord(NamedTuple):
    """A validated payload and its kind, ready to be appended."""

    kind: str
    payload: bytes


class _Head(NamedTuple):
    epoch: int
    next_seq: int
    first_seq: int


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if value.__class__ is int and low <= value <= high:  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


def _check_partition(partition: object) -> int:
    return _check_int("partition", partition, 0, MAX_PARTITION)


def _check_epoch(epoch: object) -> int:
    return _check_int("epoch", epoch, 1, _MAX_BIGINT)


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


# The record kinds' encoded names, so the per-record CRC check need not encode them (recovery's hot loop).
_KIND_BYTES = {f.name: f.name.encode() for f in records_pb2.Record.DESCRIPTOR.oneofs_by_name["kind"].fields}
_KINDS = frozenset(_KIND_BYTES)


class _Checker:
    """Checks records of one partition as they are read, in seq order, and stops at the first bad one."""

    __slots__ = ("decode", "expected", "head", "partition", "prev_epoch")

    def __init__(
        self, partition: int, head: _Head, after_seq: int, *, prev_epoch: int = 0, decode: bool = False
    ) -> None:
        self.partition = partition
        self.head = head
        self.expected = after_seq + 1
        self.prev_epoch = prev_epoch
        self.decode = decode

    def check(self, seq: int, epoch: int, kind: str, payload: bytes | None, crc: int | None) -> Entry:
        p = self.partition
        if seq.__class__ is not int or epoch.__class__ is not int:  # SQLite keeps whatever a damaged row holds
            raise JournalCorrupt(p, self.expected, f"seq {seq!r:.40} or epoch {epoch!r:.40} is not an integer")
        if seq != self.expected:
            if seq > self.expected:
                raise JournalCorrupt(p, self.expected, f"record missing (the next stored record is seq {seq})")
            raise JournalCorrupt(p, seq, f"record out of order (expected seq {self.expected})")
        if seq >= self.head.next_seq:
            raise JournalCorrupt(p, seq, f"record beyond the head (the journal ends at seq {self.head.next_seq - 1})")
        if payload is None or crc is None:
            raise JournalCorrupt(p, seq, "record torn (payload or CRC missing)")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise JournalCorrupt(p, seq, f"payload is {type(payload).__name__}, not bytes")
        payload = bytes(payload)
        # the epoch's range first: the CRC's header cannot even hold an epoch below 0 or of 2**64 or more
        if epoch < self.prev_epoch:
            raise JournalCorrupt(p, seq, f"epoch {epoch} after epoch {self.prev_epoch}: out of order")
        if epoch > self.head.epoch:
            raise JournalCorrupt(p, seq, f"epoch {epoch} is newer than the partition's epoch {self.head.epoch}")
        kind_bytes = _KIND_BYTES.get(kind) if isinstance(kind, str) else None
        if kind_bytes is None:
            raise JournalCorrupt(p, seq, f"{kind!r:.80} is not a record kind")
        computed = crc32(payload, crc32(kind_bytes, crc32(RECORD_HEADER.pack(p, seq, epoch, len(kind_bytes)))))
        if not isinstance(crc, int) or computed != crc:
            stored = f"{crc:#010x}" if isinstance(crc, int) else f"{crc!r:.40}"
            raise JournalCorrupt(p, seq, f"CRC mismatch (stored {stored}, computed {computed:#010x})")
        if not payload:
            raise JournalCorrupt(p, seq, "empty payload")
        if self.decode:
            try:
                decoded = records_pb2.Record.FromString(payload).WhichOneof("kind")
            except DecodeError as exc:
                raise JournalCorrupt(p, seq, f"payload is not a journal.v1.Record: {exc}") from None
            if decoded != kind:
                raise JournalCorrupt(p, seq, f"payload kind {decoded!r} differs from stored kind {kind!r}")
        self.expected = seq + 1
        self.prev_epoch = epoch
        return Entry(p, seq, epoch, kind, payload)

    def check_rows(self, rows: Iterable[Any], entries: list[Entry] | None, payloads: list[bytes] | None) -> None:
        """:meth:`check` for many ``(seq, epoch, kind, payload, crc)`` rows in a tight loop (recovery's hot path).

        Each checked record is added to ``entries`` and its payload to ``payloads`` (either may be ``None``).
        A row that passes every check here is exactly one that :meth:`check` accepts; any other row is
        handed to :meth:`check`, which raises the same :class:`~journal.errors.JournalCorrupt` (same seq,
        same reason) as the record-by-record path, or accepts it (an unusual but valid row).
        """
        if payloads is not None and entries is None and not self.decode:
            self._check_payload_rows(rows if isinstance(rows, list) else list(rows), payloads)
            return
        if self.decode:  # the fast path does not decode payloads: check record by record
            for row in rows:
                entry = self.check(*row)
                if entries is not None:
                    entries.append(entry)
                if payloads is not None:
                    payloads.append(entry.payload)
            return
        p = self.partition
        expected = self.expected
        prev_epoch = self.prev_epoch
        head_epoch = self.head.epoch
        end = self.head.next_seq
        kinds = _KIND_BYTES
        pack = RECORD_HEADER.pack
        add_entry = entries.append if entries is not None else None
        add_payload = payloads.append if payloads is not None else None
        new_tuple = tuple.__new__  # Entry(...) without the Python-level __new__ of a named tuple
        for seq, epoch, kind, payload, crc in rows:
            kind_bytes = kinds.get(kind)
            if (
                seq != expected
                or seq >= end
                or kind_bytes is None
                or payload.__class__ is not bytes
                or not payload
                or epoch < prev_epoch
                or epoch > head_epoch
                or crc32(payload, crc32(kind_bytes, crc32(pack(p, seq, epoch, len(kind_bytes))))) != crc
            ):
                self.expected = expected
                self.prev_epoch = prev_epoch
                entry = self.check(seq, epoch, kind, payload, crc)  # raises, unless the row is fine after all
                expected = seq + 1
                prev_epoch = epoch
                if add_entry is not None:
                    add_entry(entry)
                if add_payload is not None:
                    add_payload(entry.payload)
                continue
            expected = seq + 1
            prev_epoch = epoch
            if add_entry is not None:
                add_entry(new_tuple(Entry, (p, seq, epoch, kind, payload)))
            if add_payload is not None:
                add_payload(payload)
        self.expected = expected
        self.prev_epoch = prev_epoch

    def _check_payload_rows(self, rows: list[Any], payloads: list[bytes]) -> None:
        """Recovery's payload-only path: the same checks as :meth:`check_rows`, in the Rust core's loop
        (:func:`~assignment.partition_core.check_record_rows`); a row it stops at goes to :meth:`check`."""
        start = 0
        while start < len(rows):
            accepted, self.expected, self.prev_epoch = check_record_rows(
                rows, start, self.partition, self.expected, self.prev_epoch, self.head.epoch,
                self.head.next_seq, _KINDS, payloads,
            )  # fmt: skip
            start += accepted
            if start < len(rows):
                payloads.append(self.check(*rows[start]).payload)  # raises, unless the row is fine after all
                start += 1

    def finish(self, upto: int | None = None) -> None:
        """Every record up to ``upto`` (default: the head's last) must have been seen."""
        last = self.head.next_seq - 1 if upto is None else min(upto, self.head.next_seq - 1)
        if self.expected <= last:
            raise JournalCorrupt(
                self.partition, self.expected, f"record missing (the journal should end at seq {last})"
            )


def _is_corruption(exc: DBAPIError) -> bool:
    orig = exc.orig
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"))
    sqlstate = getattr(orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("XX")


class _Statements(NamedTuple):
    begin: str
    bump: str
    epoch: str
    records: str
    records_limit: str


_SQLITE_SQL = _Statements(
    begin="BEGIN IMMEDIATE",
    bump='UPDATE partition_head SET next_seq = next_seq + ? WHERE "partition" = ? AND epoch = ? RETURNING next_seq',
    epoch='SELECT epoch FROM partition_head WHERE "partition" = ?',
    records='SELECT seq, epoch, kind, payload, crc FROM journal WHERE "partition" = ? AND seq > ? ORDER BY seq',
    records_limit='SELECT seq, epoch, kind, payload, crc FROM journal WHERE "partition" = ? AND seq > ? ORDER BY seq'
    " LIMIT ?",
)
_POSTGRES_SQL = _Statements(
    begin="",
    bump=_SQLITE_SQL.bump.replace("?", "%s"),
    epoch=_SQLITE_SQL.epoch.replace("?", "%s"),
    records=_SQLITE_SQL.records.replace("?", "%s"),
    records_limit=_SQLITE_SQL.records_limit.replace("?", "%s"),
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


_Callback = Callable[[], None]
_watchers: dict[tuple[str, int], set[_Callback]] = {}
_watchers_lock = threading.Lock()


class Journal:
    """A journal on one database; thread-safe. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, engine: Engine, url: URL, backend: Backend, options: JournalOptions, path: Path | None) -> None:
        """Use :meth:`open`."""
        self._engine = engine
        self._url = url
        self.backend: Backend = backend
        self.options = options
        self._path = path
        if backend == "sqlite":
            self._write: Engine = engine.execution_options(leasehold_write=True)
            self._read: Engine = engine
            self._key = f"sqlite:{path}"
        else:
            self._write = engine
            self._read = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            self._key = url.render_as_string(hide_password=True)
        self._damaged: DBAPIError | None = None
        self._sql = _SQLITE_SQL if backend == "sqlite" else _POSTGRES_SQL
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def open(cls, url: str | URL, *, options: JournalOptions | None = None, migrate: bool = True) -> Journal:
        """Open the journal at ``url`` (``sqlite:///path`` or ``postgresql://...``).

        With ``migrate`` (the default) the schema is created or upgraded first; without it the database
        must exist at the newest schema revision (:class:`~journal.errors.SchemaMismatch` otherwise).
        A SQLite file so damaged that SQLite refuses it still opens; every read then reports the damage.
        """
        options = options or JournalOptions()
        parsed = make_url(url) if isinstance(url, str) else url
        backend = parsed.get_backend_name()
        path: Path | None = None
        if backend == "sqlite":
            if parsed.get_driver_name() not in ("pysqlite", ""):
                raise ValueError(f"unsupported SQLite driver {parsed.drivername!r}; use sqlite:///path")
            if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
                raise ValueError("the SQLite journal must be a file path (sqlite:///path); in-memory is not durable")
            path = Path(parsed.database).resolve()
            if not migrate and not path.exists():
                raise FileNotFoundError(f"no journal database at {path}")
            parsed = parsed.set(drivername="sqlite+pysqlite", database=str(path))
            engine = create_engine(
                parsed,
                connect_args={"timeout": options.busy_timeout_s, "check_same_thread": False},
                pool_size=options.pool_size,
                max_overflow=64,
            )
            _install_sqlite_events(engine, options)
        elif backend == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
            engine = create_engine(parsed, pool_size=options.pool_size, max_overflow=64)
            _install_postgres_events(engine, options)
        else:
            raise ValueError(f"unsupported journal database {backend!r}; use sqlite:///path or postgresql://...")
        journal = cls(engine, parsed, "sqlite" if backend == "sqlite" else "postgresql", options, path)
        try:
            journal._prepare_schema(migrate)
        except DBAPIError as exc:
            if backend == "sqlite" and _is_corruption(exc):
                journal._damaged = exc
            else:
                engine.dispose()
                raise
        except BaseException:
            engine.dispose()
            raise
        return journal

    def _prepare_schema(self, migrate: bool) -> None:
        if migrate:
            with self._write.begin() as conn:
                if self.backend == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                migrations.upgrade(conn)
            return
        with self._read.connect() as conn:
            current = migrations.current_revision(conn)
        head = migrations.head_revision()
        if current != head:
            raise SchemaMismatch(f"journal schema is at revision {current!r}, this code needs {head!r}")

    def close(self) -> None:
        """Close every connection (SQLite checkpoints its WAL into the main file)."""
        self._engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def writer(self) -> Engine:
        """An engine for other tables in the journal's database (function registry, code blobs, event
        queue): its transactions take the write lock at BEGIN (SQLite ``BEGIN IMMEDIATE``), durably."""
        return self._write

    @property
    def reader(self) -> Engine:
        """An engine for read-only transactions on the journal's database (a consistent snapshot)."""
        return self._read

    @property
    def url(self) -> URL:
        """The database URL (with its driver)."""
        return self._url

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or ``None`` on PostgreSQL."""
        return self._path

    def __repr__(self) -> str:
        return f"Journal({self._url.render_as_string(hide_password=True)!r})"

    # ------------------------------------------------------------------ heads and partitions

    def _head(self, conn: Connection, partition: int, *, lock: bool = False) -> _Head:
        stmt = select(partition_head.c.epoch, partition_head.c.next_seq, partition_head.c.first_seq).where(
            partition_head.c.partition == partition
        )
        if lock and self.backend == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).one_or_none()
        if row is None:
            raise UnknownPartition(partition)
        head = _Head(int(row[0]), int(row[1]), int(row[2]))
        if head.epoch < 1 or not 1 <= head.first_seq <= head.next_seq:
            raise JournalCorrupt(partition, None, f"partition head is inconsistent: {head}")
        return head

    def partitions(self) -> list[int]:
        """Every partition that has been taken over at least once, in order."""
        with self._reading(None) as conn:
            return [int(p) for p in conn.execute(select(partition_head.c.partition).order_by("partition")).scalars()]

    def info(self, partition: int) -> PartitionInfo:
        """The partition's head (:class:`~journal.errors.UnknownPartition` if it has none)."""
        partition = _check_partition(partition)
        with self._reading(partition) as conn:
            head = self._head(conn, partition)
        return PartitionInfo(partition, head.epoch, head.first_seq, head.next_seq)

    # ------------------------------------------------------------------ fencing and appending

    def take_over(self, partition: int) -> int:
        """Become the partition's writer: bump its epoch in one transaction and return the new epoch.

        Creates the partition (epoch 1) on first use. Every append with an older epoch fails from the
        moment this commits.
        """
        partition = _check_partition(partition)
        ins = (pg_dialect.insert if self.backend == "postgresql" else sqlite_dialect.insert)(partition_head)
        stmt = (
            ins.values(partition=partition, epoch=1, next_seq=1, first_seq=1)
            .on_conflict_do_update(
                index_elements=[partition_head.c.partition], set_={"epoch": partition_head.c.epoch + 1}
            )
            .returning(partition_head.c.epoch)
        )
        with self._write.begin() as conn:
            return int(conn.execute(stmt).scalar_one())

    def append(self, partition: int, epoch: int, records: Sequence[bytes]) -> int:
        """Append records (serialized ``journal.v1.Record``) as the writer of ``epoch``; return the last seq.

        One transaction: check the epoch, advance the sequence, insert the records. When it returns the
        records are committed (durably, see :class:`JournalOptions`) with seqs ``last - n + 1 .. last``.
        Raises :class:`~journal.errors.Fenced` when a newer epoch took over (nothing is written),
        :class:`~journal.errors.UnknownPartition`, :class:`~journal.errors.InvalidEpoch`, or the errors of
        :func:`prepare_records`. If the database fails during commit the outcome is unknown; a reader
        will see all of the records or none.
        """
        partition = _check_partition(partition)
        epoch = _check_epoch(epoch)
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
        raw = self._engine.raw_connection()
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
                pack = RECORD_HEADER.pack
                kinds = _KIND_BYTES
                crcs: list[int] = []
                for i, (kind, payload) in enumerate(records):
                    seq = first + i
                    kind_bytes = kinds.get(kind)
                    if kind_bytes is None:
                        crcs.append(record_crc(partition, seq, epoch, kind, payload))
                    else:
                        crcs.append(
                            crc32(payload, crc32(kind_bytes, crc32(pack(partition, seq, epoch, len(kind_bytes)))))
                        )
                if self.backend == "postgresql":
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
        except self._dbapi_error as exc:
            try:
                raw.rollback()
            except self._dbapi_error:
                raw.invalidate()
            raise DBAPIError.instance(statement, None, exc, self._dbapi_error) from exc
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
        self._wake(partition)
        return last

    # ------------------------------------------------------------------ reading

    def _reading(self, partition: int | None, after_seq: int = 0) -> _ReadTx:
        return _ReadTx(self, partition, after_seq)

    def read(self, partition: int, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """Up to ``limit`` checked records with ``seq > after_seq``, in order (fewer only at the end).

        Raises :class:`~journal.errors.Compacted` if records after ``after_seq`` were compacted away,
        :class:`~journal.errors.JournalCorrupt` at the first damaged or missing record.
        """
        partition = _check_partition(partition)
        after_seq = _check_int("after_seq", after_seq, 0, _MAX_BIGINT)
        limit = _check_int("limit", limit, 1, MAX_READ_LIMIT)
        return self._read_page(partition, after_seq, limit, 0)[0]

    def _read_page(self, partition: int, after_seq: int, limit: int, prev_epoch: int) -> tuple[list[Entry], _Head]:
        with self._reading(partition, after_seq) as conn:
            head = self._head(conn, partition)
            if after_seq < head.first_seq - 1:
                raise Compacted(partition, after_seq, head.first_seq)
            checker = _Checker(partition, head, after_seq, prev_epoch=prev_epoch)
            entries: list[Entry] = []
            self._check_records(conn, checker, limit, entries, None)
            checker.finish(after_seq + limit)
        return entries, head

    def _check_records(
        self,
        conn: Connection,
        checker: _Checker,
        limit: int | None,
        entries: list[Entry] | None,
        payloads: list[bytes] | None,
    ) -> None:
        """Read the records after ``checker.expected - 1`` (at most ``limit``) on the transaction's own driver
        connection, in large batches, through :meth:`_Checker.check_rows`.

        The raw driver cursor, not SQLAlchemy's result rows: per row those cost more than the check itself.
        Driver errors come out wrapped in :class:`sqlalchemy.exc.DBAPIError`, as from Core, so a damaged
        SQLite file is still recognised (see :class:`_ReadTx`).
        """
        sql = self._sql
        params: tuple[int, ...] = (checker.partition, checker.expected - 1)
        statement = sql.records
        if limit is not None:
            statement = sql.records_limit
            params = (*params, limit)
        dbapi_conn: Any = conn.connection.dbapi_connection
        try:
            # PostgreSQL: binary results, so bytea arrives as bytes instead of hex text to decode.
            cursor = dbapi_conn.cursor(binary=True) if self.backend == "postgresql" else dbapi_conn.cursor()
            try:
                cursor.execute(statement, params)
                while rows := cursor.fetchmany(_FETCH_ROWS):
                    checker.check_rows(rows, entries, payloads)
            finally:
                cursor.close()
        except self._dbapi_error as exc:
            raise DBAPIError.instance(statement, params, exc, self._dbapi_error) from exc

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
        partition = _check_partition(partition)
        after_seq = _check_int("after_seq", after_seq, 0, _MAX_BIGINT)
        page = _check_int("page", page, 1, MAX_READ_LIMIT)
        prev_epoch = 0
        while True:
            entries, _ = self._read_page(partition, after_seq, page, prev_epoch)
            yield from entries
            if len(entries) < page:
                return
            after_seq = entries[-1].seq
            prev_epoch = entries[-1].epoch

    # ------------------------------------------------------------------ snapshots, recovery, compaction

    def write_snapshot(self, partition: int, seq: int, data: bytes) -> Snapshot:
        """Store a core snapshot taken after applying record ``seq`` (``first_seq <= seq <= last_seq``).

        Snapshots are derived state, so any holder of a correct core may write one (no epoch check);
        writing the same seq again replaces it. Its epoch is that of record ``seq``.
        """
        partition = _check_partition(partition)
        seq = _check_int("seq", seq, 1, _MAX_BIGINT)
        if not isinstance(data, bytes):
            raise TypeError(f"snapshot data must be bytes, not {type(data).__name__}")
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise RecordTooLarge(len(data), MAX_SNAPSHOT_BYTES, "snapshot")
        with self._write.begin() as conn:
            head = self._head(conn, partition)
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
            ins = (pg_dialect.insert if self.backend == "postgresql" else sqlite_dialect.insert)(snapshots)
            conn.execute(
                ins.values(partition=partition, seq=seq, epoch=int(epoch), data=data, crc=crc).on_conflict_do_update(
                    index_elements=[snapshots.c.partition, snapshots.c.seq],
                    set_={"epoch": int(epoch), "data": data, "crc": crc},
                )
            )
        return Snapshot(partition, seq, int(epoch), data)

    def _latest_snapshot(self, conn: Connection, partition: int, head: _Head) -> Snapshot | None:
        s = snapshots.c
        row = conn.execute(
            select(s.seq, s.epoch, s.data, s.crc).where(s.partition == partition).order_by(s.seq.desc()).limit(1)
        ).one_or_none()
        if row is None:
            return None
        return self._check_snapshot(partition, head, row)

    @staticmethod
    def _check_snapshot(partition: int, head: _Head, row: Any) -> Snapshot:
        seq, epoch, data, crc = int(row[0]), int(row[1]), row[2], row[3]
        if data is None or crc is None:
            raise JournalCorrupt(partition, seq, "snapshot torn (data or CRC missing)")
        data = bytes(data)
        computed = snapshot_crc(partition, seq, epoch, data)
        if computed != crc:
            raise JournalCorrupt(
                partition, seq, f"snapshot CRC mismatch (stored {crc:#010x}, computed {computed:#010x})"
            )
        if seq >= head.next_seq:
            raise JournalCorrupt(partition, seq, f"snapshot beyond the head (the journal ends at {head.next_seq - 1})")
        if epoch > head.epoch:
            raise JournalCorrupt(partition, seq, f"snapshot epoch {epoch} is newer than the partition's {head.epoch}")
        return Snapshot(partition, seq, epoch, data)

    def latest_snapshot(self, partition: int) -> Snapshot | None:
        """The newest snapshot of the partition, CRC-checked; ``None`` if there is none."""
        partition = _check_partition(partition)
        with self._reading(partition) as conn:
            head = self._head(conn, partition)
            return self._latest_snapshot(conn, partition, head)

    def recover(self, partition: int) -> Recovery:
        """The newest snapshot and every record after it, read in one consistent transaction and checked.

        Raises :class:`~journal.errors.JournalCorrupt` at the first damaged record or a damaged snapshot.
        """
        entries: list[Entry] = []
        head, snapshot = self._recover(partition, entries, None)
        return Recovery(partition, head.epoch, snapshot, entries)

    def recover_payloads(self, partition: int) -> PayloadRecovery:
        """:meth:`recover` without an :class:`Entry` per record: the payloads only, checked the same way.

        Replay's fast path (:func:`journal.replay.rebuild`): record ``i`` of the result has seq
        ``first_seq + i``, as the seqs were checked to be contiguous.
        """
        payloads: list[bytes] = []
        head, snapshot = self._recover(partition, None, payloads)
        start = snapshot.seq if snapshot is not None else 0
        return PayloadRecovery(partition, head.epoch, snapshot, start + 1, payloads)

    def _recover(
        self, partition: int, entries: list[Entry] | None, payloads: list[bytes] | None
    ) -> tuple[_Head, Snapshot | None]:
        partition = _check_partition(partition)
        with self._reading(partition) as conn:
            head = self._head(conn, partition)
            snapshot = self._latest_snapshot(conn, partition, head)
            start = snapshot.seq if snapshot is not None else 0
            if start < head.first_seq - 1:
                raise JournalCorrupt(
                    partition,
                    head.first_seq - 1,
                    "records up to here were compacted but no snapshot covers them",
                )
            checker = _Checker(partition, head, start, prev_epoch=snapshot.epoch if snapshot else 0)
            self._check_records(conn, checker, None, entries, payloads)
            checker.finish()
        return head, snapshot

    def compact(
        self, partition: int, *, retain_records: int | None = None, retain_snapshots: int | None = None
    ) -> CompactResult:
        """Delete records older than the newest snapshot (keeping ``retain_records`` of them) and all but
        the newest ``retain_snapshots`` snapshots; defaults from :class:`JournalOptions`.
        """
        partition = _check_partition(partition)
        keep_records = self.options.retain_records if retain_records is None else retain_records
        keep_records = _check_int("retain_records", keep_records, 0, _MAX_BIGINT)
        keep_snaps = self.options.retain_snapshots if retain_snapshots is None else retain_snapshots
        keep_snaps = _check_int("retain_snapshots", keep_snaps, 1, 1_000_000)
        s = snapshots.c
        with self._write.begin() as conn:
            head = self._head(conn, partition, lock=True)
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

    # ------------------------------------------------------------------ verification

    def verify(self, partition: int) -> VerifyReport:
        """Check the whole partition: head, every record (CRC, continuity, epochs, decodable with the
        stored kind) and every snapshot. Raises :class:`~journal.errors.JournalCorrupt` at the first damage.
        """
        partition = _check_partition(partition)
        s = snapshots.c
        with self._reading(partition) as conn:
            head = self._head(conn, partition)
            checker = _Checker(partition, head, head.first_seq - 1, decode=True)
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
                self._check_snapshot(partition, head, snap)
            if head.first_seq > 1 and not any(int(r[0]) >= head.first_seq - 1 for r in snaps):
                raise JournalCorrupt(
                    partition, head.first_seq - 1, "records up to here were compacted but no snapshot covers them"
                )
        return VerifyReport(partition, head.epoch, head.first_seq, head.next_seq - 1, count, len(snaps))

    # ------------------------------------------------------------------ wake-ups (tail)

    def subscribe(self, partition: int, callback: _Callback) -> _Callback:
        """Call ``callback`` (from the appending thread) after every append to ``partition`` made in this
        process, by any :class:`Journal` on the same database; returns the function that unsubscribes.
        """
        key = (self._key, partition)
        with _watchers_lock:
            _watchers.setdefault(key, set()).add(callback)

        def unsubscribe() -> None:
            with _watchers_lock:
                callbacks = _watchers.get(key)
                if callbacks is not None:
                    callbacks.discard(callback)
                    if not callbacks:
                        del _watchers[key]

        return unsubscribe

    def _wake(self, partition: int) -> None:
        with _watchers_lock:
            callbacks = list(_watchers.get((self._key, partition), ()))
        for callback in callbacks:
            callback()

    def postgres_conninfo(self) -> str:
        """A libpq connection string for this database (for LISTEN); PostgreSQL only."""
        if self.backend != "postgresql":
            raise ValueError("not a PostgreSQL journal")
        return self._url.set(drivername="postgresql").render_as_string(hide_password=False)


def notify_channel(partition: int) -> str:
    """The PostgreSQL NOTIFY channel announcing appends to ``partition``."""
    return f"leasehold_journal_{partition}"


class _ReadTx:
    """A read transaction (SQLite deferred ``BEGIN``; PostgreSQL ``REPEATABLE READ READ ONLY``) that turns
    a database SQLite calls corrupt into :class:`~journal.errors.JournalCorrupt` at the exact seq.
    """

    def __init__(self, journal: Journal, partition: int | None, after_seq: int) -> None:
        self._journal = journal
        self._partition = partition
        self._after_seq = after_seq
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        journal = self._journal
        if journal._damaged is not None:
            self._raise_damage(journal._damaged)
        try:
            self._conn = journal._read.connect()
            self._conn.begin()
        except DBAPIError as exc:
            self._close()
            if _is_corruption(exc):
                self._raise_damage(exc)
            raise
        return self._conn

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._close()
        if isinstance(exc, DBAPIError) and _is_corruption(exc):
            self._raise_damage(exc)

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.rollback()
            finally:
                conn.close()

    def _raise_damage(self, exc: DBAPIError) -> None:
        journal = self._journal
        partition = self._partition
        if partition is None:
            raise JournalCorrupt(-1, None, f"database damaged: {exc.orig}") from exc
        if journal.backend == "sqlite" and journal.sqlite_path is not None:
            raise _sqlite_damage(journal.sqlite_path, partition, self._after_seq, str(exc.orig)) from exc
        raise JournalCorrupt(partition, None, f"database damaged: {exc.orig}") from exc


def _sqlite_damage(path: Path, partition: int, after_seq: int, why: str) -> JournalCorrupt:
    """Find the first damaged seq of ``partition`` in a SQLite file that SQLite itself finds corrupt.

    Reads the file read-only with ``writable_schema`` on, which lets SQLite read a file shorter than its
    header claims, record by record in seq order; the first record that cannot be read or fails the
    usual checks is the one reported.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        con.execute("PRAGMA writable_schema=ON")
        try:
            row = con.execute(
                'SELECT epoch, next_seq, first_seq FROM partition_head WHERE "partition" = ?', (partition,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            return JournalCorrupt(partition, None, f"database damaged ({why}); partition head unreadable: {exc}")
        if row is None:
            return JournalCorrupt(partition, None, f"database damaged ({why}); partition head missing")
        head = _Head(int(row[0]), int(row[1]), int(row[2]))
        checker = _Checker(partition, head, max(after_seq, head.first_seq - 1))
        select_from = (
            'SELECT seq, epoch, kind, payload, crc FROM journal WHERE "partition" = ? AND seq > ? ORDER BY seq'
        )
        select_one = 'SELECT seq, epoch, kind, payload, crc FROM journal WHERE "partition" = ? AND seq = ?'
        try:
            while True:
                try:
                    for record in con.execute(select_from, (partition, checker.expected - 1)):
                        checker.check(*record)
                    break
                except sqlite3.DatabaseError as exc:
                    # The sqlite3 module steps one row ahead, so the error may belong to the next record:
                    # look the expected one up alone, and go on after it if it reads.
                    try:
                        found = con.execute(select_one, (partition, checker.expected)).fetchone()
                    except sqlite3.DatabaseError:
                        found = None
                    if found is None:
                        return JournalCorrupt(
                            partition, checker.expected, f"database damaged ({why}); record unreadable: {exc}"
                        )
                    checker.check(*found)
        except JournalCorrupt as exc:
            return JournalCorrupt(partition, exc.seq, f"database damaged ({why}); {exc.why}")
        try:
            checker.finish()
        except JournalCorrupt as exc:
            return JournalCorrupt(partition, exc.seq, f"database damaged ({why}); {exc.why}")
        return JournalCorrupt(partition, None, f"database damaged ({why}); every record of the partition reads")
    finally:
        con.close()


def _enable_wal(cursor: sqlite3.Cursor, busy_timeout_s: float) -> None:
    """Put the database in WAL mode, waiting up to ``busy_timeout_s`` for other connections.

    Switching the journal mode needs an exclusive lock, and SQLite answers ``SQLITE_BUSY`` at once,
    without calling the busy handler, when another connection holds it: the first open of a new file
    racing another open, or the last connection of another process checkpointing and deleting the WAL
    as it closes. Both last milliseconds, so retry with a short back-off until the busy timeout.
    """
    deadline = time.monotonic() + busy_timeout_s
    pause_s = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_BUSY")
            if not busy or time.monotonic() + pause_s > deadline:
                raise
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.05)


def _install_sqlite_events(engine: Engine, options: JournalOptions) -> None:
    synchronous = "FULL" if options.durable else "NORMAL"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module: we emit BEGIN ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            try:
                _enable_wal(cursor, options.busy_timeout_s)
            except sqlite3.DatabaseError as exc:
                if not str(getattr(exc, "sqlite_errorname", "")).startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                    raise
            cursor.execute(f"PRAGMA synchronous={synchronous}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("leasehold_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _install_postgres_events(engine: Engine, options: JournalOptions) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            if options.durable:
                cursor.execute("SHOW synchronous_commit")
                if cursor.fetchone()[0] == "off":
                    cursor.execute("SET synchronous_commit = on")
            else:
                cursor.execute("SET synchronous_commit = off")
            timeout_ms = round(options.pg_idle_in_transaction_s * 1000)
            cursor.execute(f"SET idle_in_transaction_session_timeout = {timeout_ms}")
        dbapi_connection.commit()
