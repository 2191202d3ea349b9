"""Checks a store's tables against the journal's migrations: the columns a store's ``Table`` objects name
are the ones the migrations create, and a migration's downgrade really removes what its upgrade made."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Table, inspect

from journal import migrations
from journal.store import Journal

__all__ = ["assert_tables_match_migrations", "downgrade_then_upgrade"]


def assert_tables_match_migrations(journal: Journal, tables: Iterable[Table]) -> None:
    """Every table of ``tables``, as migrated in ``journal``, has exactly the columns the code declares."""
    inspector = inspect(journal.writer)
    for table in tables:
        migrated = {column["name"] for column in inspector.get_columns(table.name)}
        assert migrated == {column.name for column in table.columns}, table.name


def downgrade_then_upgrade(journal: Journal, revision: str, tables: set[str]) -> None:
    """Downgrade ``journal`` to ``revision``, check that none of ``tables`` is left, and upgrade to head."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with journal.writer.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
    assert not tables & set(inspect(journal.writer).get_table_names())
    with journal.writer.begin() as conn:
        migrations.upgrade(conn)
