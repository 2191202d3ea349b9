"""Alembic environment: online migrations only, on the connection handed over by ``journal.migrations``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from journal.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("journal migrations run through journal.migrations.upgrade(connection) only")

context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
