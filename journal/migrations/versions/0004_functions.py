"""The frontend's function registry: functions, their versions, layers, concurrency and async settings.

Revision ID: 0004
Revises: 0003

The tables are described (and queried) in :mod:`assignment.frontend.registry`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``functions``, ``function_versions``, ``layer_versions``, ``provisioned_concurrency`` and
    ``event_invoke_configs``."""
    op.create_table(
        "functions",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("incarnation", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("next_version", sa.BigInteger, nullable=False),
        sa.Column("reserved_concurrency", sa.Integer, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "function_versions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("modified_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="function_versions_pk"),
    )
    op.create_table(
        "layer_versions",
        sa.Column("name", sa.String(140), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="layer_versions_pk"),
    )
    op.create_table(
        "provisioned_concurrency",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("modified_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="provisioned_concurrency_pk"),
    )
    op.create_table(
        "event_invoke_configs",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(16), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("modified_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "qualifier", name="event_invoke_configs_pk"),
    )


def downgrade() -> None:
    """Drop the tables."""
    for table in (
        "event_invoke_configs",
        "provisioned_concurrency",
        "layer_versions",
        "function_versions",
        "functions",
    ):
        op.drop_table(table)
