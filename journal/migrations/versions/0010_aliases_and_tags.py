"""Function aliases and tags, and qualifiers as long as an alias name.

* ``function_aliases`` — one row per ``(name, alias)``: the version it points at (``function_version``),
  ``weights`` (RoutingConfig.AdditionalVersionWeights as a JSON object, ``{}`` for none), its description,
  ``revision_id`` (changes with every update; UpdateAlias may require it) and when it last changed.
* ``functions.tags`` — the function's tags as a JSON object (``{}`` for none).
* ``provisioned_concurrency.version`` and ``event_invoke_configs.qualifier`` widen to 128 characters: a
  qualifier may now be an alias name (1-128 characters).

The tables are described (and queried) in :mod:`assignment.frontend.registry` and
:mod:`assignment.frontend.aliases`.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``function_aliases``, add ``functions.tags``, widen the qualifier columns."""
    op.create_table(
        "function_aliases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("function_version", sa.String(16), nullable=False),
        sa.Column("weights", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.Column("modified_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", name="function_aliases_pk"),
    )
    with op.batch_alter_table("functions") as batch:
        batch.add_column(sa.Column("tags", sa.Text, nullable=False, server_default="{}"))
    with op.batch_alter_table("provisioned_concurrency") as batch:
        batch.alter_column("version", type_=sa.String(128), existing_type=sa.String(16), existing_nullable=False)
    with op.batch_alter_table("event_invoke_configs") as batch:
        batch.alter_column("qualifier", type_=sa.String(128), existing_type=sa.String(16), existing_nullable=False)


def downgrade() -> None:
    """Drop the aliases and tags (and any alias-qualified settings, which no longer fit)."""
    op.execute("DELETE FROM provisioned_concurrency WHERE LENGTH(version) > 16")
    op.execute("DELETE FROM event_invoke_configs WHERE LENGTH(qualifier) > 16")
    with op.batch_alter_table("event_invoke_configs") as batch:
        batch.alter_column("qualifier", type_=sa.String(16), existing_type=sa.String(128), existing_nullable=False)
    with op.batch_alter_table("provisioned_concurrency") as batch:
        batch.alter_column("version", type_=sa.String(16), existing_type=sa.String(128), existing_nullable=False)
    with op.batch_alter_table("functions") as batch:
        batch.drop_column("tags")
    op.drop_table("function_aliases")
