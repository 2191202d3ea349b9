"""Versioned schema migrations of the journal (Alembic), run by :func:`upgrade` when a journal opens.

No ``alembic.ini`` is needed: :func:`upgrade` builds the configuration in code and runs Alembic on a
connection that already holds the database's write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a
transaction-scoped advisory lock), so several processes opening one database at once migrate it once.
Add a revision with ``alembic -c /dev/null -x ... revision`` or by copying the newest file in
``versions/`` and bumping ``revision`` / ``down_revision``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from journal.schema import VERSION_TABLE

__all__ = ["current_revision", "head_revision", "upgrade"]

_HERE = Path(__file__).resolve().parent


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, ``None`` when it has no journal schema."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: Connection) -> None:
    """Bring the schema to the newest revision inside the caller's (locked) transaction."""
    command.upgrade(_config(connection), "head")
