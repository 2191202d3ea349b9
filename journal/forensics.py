"""Damage forensics: read transactions that turn a database the engine calls corrupt into a named seq.

:class:`ReadTx` is the read transaction of every journal read (SQLite deferred ``BEGIN``; PostgreSQL
``REPEATABLE READ READ ONLY``); when the database itself reports damage it raises
:class:`~journal.errors.JournalCorrupt`, and on SQLite :func:`sqlite_damage` scans the file record by
record to name the first damaged seq. The reader and the snapshot code import this module.

Example::

    with ReadTx(database, partition, after_seq) as conn:
        head = database.head(conn, partition)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from journal.checker import Checker
from journal.engine import Database, is_corruption
from journal.errors import JournalCorrupt
from journal.model import Head

__all__ = ["ReadTx", "sqlite_damage"]


class ReadTx:
    """A read transaction (SQLite deferred ``BEGIN``; PostgreSQL ``REPEATABLE READ READ ONLY``) that turns
    a database SQLite calls corrupt into :class:`~journal.errors.JournalCorrupt` at the exact seq.
    """

    def __init__(self, database: Database, partition: int | None, after_seq: int = 0) -> None:
        self._database = database
        self._partition = partition
        self._after_seq = after_seq
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        database = self._database
        if database.damaged is not None:
            self._raise_damage(database.damaged)
        try:
            self._conn = database.reader.connect()
            self._conn.begin()
        except DBAPIError as exc:
            self._close()
            if is_corruption(exc):
                self._raise_damage(exc)
            raise
        return self._conn

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._close()
        if isinstance(exc, DBAPIError) and is_corruption(exc):
            self._raise_damage(exc)

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.rollback()
            finally:
                conn.close()

    def _raise_damage(self, exc: DBAPIError) -> None:
        database = self._database
        partition = self._partition
        if partition is None:
            raise JournalCorrupt(-1, None, f"database damaged: {exc.orig}") from exc
        if database.backend == "sqlite" and database.path is not None:
            raise sqlite_damage(database.path, partition, self._after_seq, str(exc.orig)) from exc
        raise JournalCorrupt(partition, None, f"database damaged: {exc.orig}") from exc


def sqlite_damage(path: Path, partition: int, after_seq: int, why: str) -> JournalCorrupt:
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
        head = Head(int(row[0]), int(row[1]), int(row[2]))
        checker = Checker(partition, head, max(after_seq, head.first_seq - 1))
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
