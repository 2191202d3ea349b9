"""Schedules (EventBridge Scheduler's subset for Lambda targets) and the scheduler's lease.

* ``schedules`` — one row per ``(group_name, name)``: the expression, its time zone, StartDate and EndDate
  (``start_ms``/``end_ms``, NULL for none), ``state`` (ENABLED or DISABLED), the description, the flexible
  time window (``flex_mode``, ``flex_window_min``), ``action_after_completion``, ``target`` (the Target as
  a JSON object, defaults filled in), the ClientToken of the create, when it was created and last changed,
  ``next_ms`` (the next occurrence not yet fired; NULL when none remains) and ``fire_ms`` (when it fires:
  the occurrence plus its offset in the flexible window). A firing advances ``next_ms`` in the transaction
  that queues its invocation, so an occurrence is queued once.
* ``scheduler_lease`` — one row: the frontend whose scheduler fires (``holder``) until ``expires_ms``.

The tables are described (and queried) in :mod:`assignment.frontend.schedules.store`.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``schedules`` and ``scheduler_lease``."""
    op.create_table(
        "schedules",
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("expression", sa.String(256), nullable=False),
        sa.Column("timezone", sa.String(50), nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=True),
        sa.Column("end_ms", sa.BigInteger, nullable=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("flex_mode", sa.String(8), nullable=False),
        sa.Column("flex_window_min", sa.Integer, nullable=True),
        sa.Column("action_after_completion", sa.String(8), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("client_token", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("modified_ms", sa.BigInteger, nullable=False),
        sa.Column("next_ms", sa.BigInteger, nullable=True),
        sa.Column("fire_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("group_name", "name", name="schedules_pk"),
    )
    op.create_index("schedules_due", "schedules", ["state", "fire_ms"])
    op.create_table(
        "scheduler_lease",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop the schedules and the lease."""
    op.drop_table("scheduler_lease")
    op.drop_index("schedules_due", table_name="schedules")
    op.drop_table("schedules")
