"""The frontend's access keys: who may sign requests to the HTTP API (SigV4).

* ``access_keys`` — one row per key: ``access_key_id`` (``AKIA`` + 16 upper-case letters and digits, the
  primary key), ``secret`` (40 characters; SigV4 needs the secret itself to recompute a signature, so it is
  kept as given: whoever reads this table can sign as any key, like whoever reads the journal), a free
  ``description`` and ``created_ms``.

The table is described (and queried) in :mod:`assignment.frontend.auth.keys`.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``access_keys``."""
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(20), primary_key=True),
        sa.Column("secret", sa.String(40), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop ``access_keys``."""
    op.drop_table("access_keys")
