"""SQL that differs by dialect, for every table in the platform's database: an INSERT that can take
``ON CONFLICT``, and the single-statement upsert built on it (SQLite and PostgreSQL both speak it).

Imported by the journal's own tables (code blobs) and by the frontend's storage (registry); it imports
only SQLAlchemy.

Example::

    with engine.begin() as conn:
        upsert(conn, concurrency, {"name": "resize"}, {"reserved": 5})
        conn.execute(dialect_insert(conn, code_blobs).values(row).on_conflict_do_nothing())
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["dialect_insert", "upsert"]


def dialect_insert(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT in the dialect of the connection's engine (SQLite or PostgreSQL), which can take ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the platform's database is SQLite or PostgreSQL, not {conn.dialect.name}")


def upsert(conn: Connection, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Insert the row ``key`` (its primary key) with ``values``, or set ``values`` on it if it exists: one
    statement (``INSERT ... ON CONFLICT DO UPDATE``), so concurrent first writers cannot collide."""
    statement = dialect_insert(conn, table).values({**key, **values})
    conn.execute(statement.on_conflict_do_update(index_elements=list(key), set_=dict(values)))
