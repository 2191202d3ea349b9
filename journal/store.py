"""The journal store: an append-only, fenced, checked log per partition on SQLAlchemy (sync API).

:class:`Journal` is the one facade callers open (``Journal.open(url)``); this module composes it of the
parts that do the work and re-exports their public names, so callers import from here alone:
:mod:`journal.engine` (the database handle: engines, connect events, WAL, migrations at open),
:mod:`journal.append` (the fenced append), :mod:`journal.reader` (the checked reader, on the one
:mod:`journal.checker` and its native fast path :mod:`journal.native`), :mod:`journal.snapshots`
(snapshots and compaction), :mod:`journal.forensics` (SQLite damage) and :mod:`journal.wakeup` (the
in-process wake-ups, one set per ``Journal``). Anything may import this module.

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

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from journal.append import Appender, notify_channel, prepare_records
from journal.checks import MAX_PARTITION
from journal.engine import Backend, Database, JournalOptions
from journal.model import (
    MAX_READ_LIMIT,
    MAX_RECORD_BYTES,
    MAX_SNAPSHOT_BYTES,
    CompactResult,
    Entry,
    PartitionInfo,
    PayloadRecovery,
    PreparedRecord,
    Recovery,
    Snapshot,
    VerifyReport,
)
from journal.reader import Reader
from journal.snapshots import Snapshots
from journal.wakeup import Callback, Wakeups

__all__ = [
    "MAX_PARTITION",
    "MAX_READ_LIMIT",
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
    "notify_channel",
    "prepare_records",
]


class Journal:
    """A journal on one database; thread-safe. Open with :meth:`open`, close with :meth:`close`.

    Each method hands over to the part that does the work; the part's docstring says the details.
    """

    def __init__(self, database: Database) -> None:
        """Use :meth:`open`."""
        self._database = database
        self._engine: Engine = database.engine
        self.backend: Backend = database.backend
        self.options: JournalOptions = database.options
        self._wakeups = Wakeups()
        self._appender = Appender(database, self._wakeups)
        self._reader = Reader(database)
        self._snapshots = Snapshots(database)
        # SQLite: the writers of this process's other tables queue here, woken at once, rather than
        # spinning on the file lock (PostgreSQL serialises on rows and needs none).
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def open(cls, url: str | URL, *, options: JournalOptions | None = None, migrate: bool = True) -> Journal:
        """Open the journal at ``url`` (``sqlite:///path`` or ``postgresql://...``).

        With ``migrate`` (the default) the schema is created or upgraded first; without it the database
        must exist at the newest schema revision (:class:`~journal.errors.SchemaMismatch` otherwise).
        A SQLite file so damaged that SQLite refuses it still opens; every read then reports the damage.
        """
        return cls(Database.open(url, options or JournalOptions(), migrate=migrate))

    def close(self) -> None:
        """Close every connection (SQLite checkpoints its WAL into the main file)."""
        self._database.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def writer(self) -> Engine:
        """An engine for other tables in the journal's database (function registry, code blobs, event
        queue): its transactions take the write lock at BEGIN (SQLite ``BEGIN IMMEDIATE``), durably."""
        return self._database.writer

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on :attr:`writer`, committed when the block ends without error; on SQLite
        the writers of one process (registry, event queue, queues, mappings) take turns in it."""
        if self.backend == "postgresql":
            with self._database.writer.begin() as conn:
                yield conn
            return
        with self._write_lock, self._database.writer.begin() as conn:
            yield conn

    @property
    def reader(self) -> Engine:
        """An engine for read-only transactions on the journal's database (a consistent snapshot)."""
        return self._database.reader

    @property
    def url(self) -> URL:
        """The database URL (with its driver)."""
        return self._database.url

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or ``None`` on PostgreSQL."""
        return self._database.path

    def __repr__(self) -> str:
        return f"Journal({self.url.render_as_string(hide_password=True)!r})"

    def postgres_conninfo(self) -> str:
        """A libpq connection string for this database (for LISTEN); PostgreSQL only."""
        if self.backend != "postgresql":
            raise ValueError("not a PostgreSQL journal")
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    # ------------------------------------------------------------------ fencing and appending (journal.append)

    def take_over(self, partition: int) -> int:
        """Become the partition's writer; return the new epoch (:meth:`Appender.take_over`)."""
        return self._appender.take_over(partition)

    def append(self, partition: int, epoch: int, records: Sequence[bytes]) -> int:
        """Append records as the writer of ``epoch``; return the last seq (:meth:`Appender.append`)."""
        return self._appender.append(partition, epoch, records)

    def append_prepared(self, partition: int, epoch: int, records: Sequence[PreparedRecord]) -> int:
        """:meth:`append` for records checked by :func:`prepare_records` (:meth:`Appender.append_prepared`)."""
        return self._appender.append_prepared(partition, epoch, records)

    # ------------------------------------------------------------------ reading (journal.reader)

    def partitions(self) -> list[int]:
        """Every partition that has been taken over at least once, in order."""
        return self._reader.partitions()

    def info(self, partition: int) -> PartitionInfo:
        """The partition's head (:meth:`Reader.info`)."""
        return self._reader.info(partition)

    def read(self, partition: int, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """Up to ``limit`` checked records with ``seq > after_seq``, in order (:meth:`Reader.read`)."""
        return self._reader.read(partition, after_seq, limit)

    def iter_entries(self, partition: int, after_seq: int = 0, page: int = 10_000) -> Iterator[Entry]:
        """Every record after ``after_seq``, read ``page`` at a time (:meth:`Reader.iter_entries`)."""
        return self._reader.iter_entries(partition, after_seq, page)

    def recover(self, partition: int) -> Recovery:
        """The newest snapshot and every record after it, checked (:meth:`Reader.recover`)."""
        return self._reader.recover(partition)

    def recover_payloads(self, partition: int) -> PayloadRecovery:
        """:meth:`recover` with the payloads only (:meth:`Reader.recover_payloads`)."""
        return self._reader.recover_payloads(partition)

    def verify(self, partition: int) -> VerifyReport:
        """Check the whole partition, records and snapshots (:meth:`Reader.verify`)."""
        return self._reader.verify(partition)

    # ------------------------------------------------------------------ snapshots, compaction (journal.snapshots)

    def write_snapshot(self, partition: int, seq: int, data: bytes) -> Snapshot:
        """Store a core snapshot taken after applying record ``seq`` (:meth:`Snapshots.write_snapshot`)."""
        return self._snapshots.write_snapshot(partition, seq, data)

    def latest_snapshot(self, partition: int) -> Snapshot | None:
        """The newest snapshot of the partition, CRC-checked; ``None`` if there is none."""
        return self._snapshots.latest_snapshot(partition)

    def compact(
        self, partition: int, *, retain_records: int | None = None, retain_snapshots: int | None = None
    ) -> CompactResult:
        """Delete what the newest snapshot makes unnecessary (:meth:`Snapshots.compact`)."""
        return self._snapshots.compact(partition, retain_records=retain_records, retain_snapshots=retain_snapshots)

    # ------------------------------------------------------------------ wake-ups (journal.wakeup)

    def subscribe(self, partition: int, callback: Callback) -> Callback:
        """Call ``callback`` (from the appending thread) after every append to ``partition`` made through
        this :class:`Journal`; returns the function that unsubscribes (:meth:`Wakeups.subscribe`).
        """
        return self._wakeups.subscribe(partition, callback)
