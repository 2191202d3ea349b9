"""FIFO receive attempts: which messages a ``ReceiveRequestAttemptId`` received, for five minutes.

* ``sqs_receive_attempts`` — one row per ``(queue_id, attempt_id)``: when the receive ran
  (``created_ms``; SQS honours a retry for five minutes) and what it took, as a JSON list of
  ``[message_id, receipt_token, visible_ms]`` in the order returned. A retry with the same id returns the
  same messages and receipt handles while none of them has been deleted, received again or had its
  visibility changed (each row's token and ``visible_ms`` still as recorded).

The table is described in :mod:`assignment.frontend.queues.tables`.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``sqs_receive_attempts``."""
    op.create_table(
        "sqs_receive_attempts",
        sa.Column("queue_id", sa.String(32), nullable=False),
        sa.Column("attempt_id", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("messages", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "attempt_id", name="sqs_receive_attempts_pk"),
    )
    op.create_index("sqs_receive_attempts_created", "sqs_receive_attempts", ["created_ms"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("sqs_receive_attempts_created", "sqs_receive_attempts")
    op.drop_table("sqs_receive_attempts")
