"""The journal's database handle: the engine factory, the connect events, WAL, and migrations at open.

:meth:`Database.open` turns a URL into SQLAlchemy engines set up for the journal: SQLite with WAL,
``synchronous`` per :attr:`JournalOptions.durable`, a busy timeout and ``BEGIN IMMEDIATE`` for writers;
PostgreSQL through psycopg 3 with ``synchronous_commit`` and ``idle_in_transaction_session_timeout``.
It runs the migrations (or checks the schema revision) and reads partition heads (:meth:`Database.head`).
The store's parts (:mod:`journal.append`, :mod:`journal.reader`, :mod:`journal.snapshots`,
:mod:`journal.forensics`) and the :class:`~journal.store.Journal` facade import it; other callers
reach the engines through :attr:`Journal.writer <journal.store.Journal.writer>` and
:attr:`Journal.reader <journal.store.Journal.reader>`.

Example::

    database = Database.open("sqlite:///data/journal.db", JournalOptions(), migrate=True)
    with database.reader.connect() as conn:
        head = database.head(conn, 3)
    database.close()
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from journal import migrations
from journal.errors import JournalCorrupt, SchemaMismatch, UnknownPartition
from journal.model import Head
from journal.schema import partition_head

__all__ = ["Backend", "Database", "JournalOptions", "is_corruption"]

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


def is_corruption(exc: DBAPIError) -> bool:
    """Whether the database itself says it is damaged (SQLite ``SQLITE_CORRUPT`` etc., PostgreSQL ``XX...``)."""
    orig = exc.orig
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"))
    sqlstate = getattr(orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("XX")


class Database:
    """The journal's engines on one database: :attr:`writer` (write lock at BEGIN) and :attr:`reader`."""

    def __init__(self, engine: Engine, url: URL, backend: Backend, options: JournalOptions, path: Path | None) -> None:
        """Use :meth:`open`."""
        self.engine = engine
        self.url = url
        self.backend: Backend = backend
        self.options = options
        self.path = path
        if backend == "sqlite":
            self.writer: Engine = engine.execution_options(leasehold_write=True)
            self.reader: Engine = engine
        else:
            self.writer = engine
            self.reader = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        #: Set when SQLite refused the file at open; every read then reports the damage.
        self.damaged: DBAPIError | None = None
        self.dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    @classmethod
    def open(cls, url: str | URL, options: JournalOptions, *, migrate: bool) -> Database:
        """Open the database at ``url``; see :meth:`Journal.open <journal.store.Journal.open>`."""
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
        database = cls(engine, parsed, "sqlite" if backend == "sqlite" else "postgresql", options, path)
        try:
            database._prepare_schema(migrate)
        except DBAPIError as exc:
            if backend == "sqlite" and is_corruption(exc):
                database.damaged = exc
            else:
                engine.dispose()
                raise
        except BaseException:
            engine.dispose()
            raise
        return database

    def _prepare_schema(self, migrate: bool) -> None:
        if migrate:
            with self.writer.begin() as conn:
                if self.backend == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                migrations.upgrade(conn)
            return
        with self.reader.connect() as conn:
            current = migrations.current_revision(conn)
        head = migrations.head_revision()
        if current != head:
            raise SchemaMismatch(f"journal schema is at revision {current!r}, this code needs {head!r}")

    def close(self) -> None:
        """Close every connection (SQLite checkpoints its WAL into the main file)."""
        self.engine.dispose()

    def head(self, conn: Connection, partition: int, *, lock: bool = False) -> Head:
        """The partition's head in ``conn``'s transaction (``lock``: ``FOR UPDATE`` on PostgreSQL)."""
        stmt = select(partition_head.c.epoch, partition_head.c.next_seq, partition_head.c.first_seq).where(
            partition_head.c.partition == partition
        )
        if lock and self.backend == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).one_or_none()
        if row is None:
            raise UnknownPartition(partition)
        head = Head(int(row[0]), int(row[1]), int(row[2]))
        if head.epoch < 1 or not 1 <= head.first_seq <= head.next_seq:
            raise JournalCorrupt(partition, None, f"partition head is inconsistent: {head}")
        return head


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
