"""Event source mappings: which queue feeds which function, with what settings, and which frontend polls it.

* ``event_source_mappings`` — one row per mapping, keyed by its ``uuid``, unique by ``(source_arn,
  function_name, qualifier)`` (one source feeds one function once). The settings are columns (the filter
  criteria and response types as JSON text); ``state`` is AWS's (Creating, Enabled, Disabled, Updating,
  Deleting, ...) and ``enabled`` what the user asked for; ``revision`` grows with every change, so a poller
  knows it runs the latest settings. ``owner`` / ``lease_until_ms`` are the poller lease: the frontend
  polling the mapping and until when, renewed while it lives, taken over by another once it lapses.

The table is described (and queried) in :mod:`assignment.frontend.event_sources.mappings`.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``event_source_mappings``."""
    op.create_table(
        "event_source_mappings",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("source_arn", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.String(256), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("batching_window_s", sa.Integer, nullable=False),
        sa.Column("max_concurrency", sa.Integer, nullable=False),
        sa.Column("response_types", sa.Text, nullable=False),
        sa.Column("filter_criteria", sa.Text, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("modified_ms", sa.BigInteger, nullable=False),
        sa.Column("last_result", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("source_arn", "function_name", "qualifier", name="event_source_mappings_pair"),
    )
    op.create_index("event_source_mappings_function", "event_source_mappings", ["function_name"])
    op.create_index("event_source_mappings_lease", "event_source_mappings", ["lease_until_ms"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("event_source_mappings_lease", "event_source_mappings")
    op.drop_index("event_source_mappings_function", "event_source_mappings")
    op.drop_table("event_source_mappings")
