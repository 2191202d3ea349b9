"""Function sessions: the cluster secret that signs them, and per-function revocations.

* ``cluster_secrets`` — named random values shared by every frontend; ``session_hmac`` keys the MAC of
  function session tokens and the derivation of their key ids and secrets. Created by the first frontend
  that needs it.
* ``session_revocations`` — per function, the time (ms) before which its sessions are refused
  (``leasehold keys revoke-sessions FUNCTION``).

The tables are described (and queried) in :mod:`assignment.frontend.auth.sessions`.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``cluster_secrets`` and ``session_revocations``."""
    op.create_table(
        "cluster_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "session_revocations",
        sa.Column("function", sa.String(64), primary_key=True),
        sa.Column("before_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop the tables."""
    op.drop_table("session_revocations")
    op.drop_table("cluster_secrets")
