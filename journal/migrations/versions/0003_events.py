"""The frontend's asynchronous invocation tables: the durable event queue and the dead-letter store.

* ``event_queue`` — one row per accepted ``Event`` invocation, keyed by request id (duplicates are
  refused at enqueue). ``state`` is ``queued`` until the event succeeded (``done``) or failed for good
  (``failed``); finished rows stay for the dedupe window, then are deleted. A poller claims a due row by
  setting ``claimed_by`` / ``claim_token`` / ``claimed_until_ms`` and counting the attempt, durably,
  before it runs the event; a claim that expires (its poller died) may be taken by another poller.
  ``last_error_type`` / ``last_error`` keep the latest throttle, service or function error (first 1 KB),
  so an event that ages out between tries is dead-lettered with the error that held it back.
* ``event_dead_letters`` — events that failed for good and had no on-failure destination: request id,
  error type, the first 1 KB of the error message, the attempts made and the payload.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``event_queue`` and ``event_dead_letters``."""
    op.create_table(
        "event_queue",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("enqueued_ms", sa.BigInteger, nullable=False),
        sa.Column("next_run_ms", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("function_errors", sa.Integer, nullable=False),
        sa.Column("throttles", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.Column("claim_token", sa.String(32), nullable=False),
        sa.Column("claimed_until_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger, nullable=False),
        sa.Column("last_error_type", sa.String(128), nullable=False),
        sa.Column("last_error", sa.String(1024), nullable=False),
    )
    op.create_index("event_queue_due", "event_queue", ["state", "next_run_ms"])
    op.create_index("event_queue_function", "event_queue", ["function", "state"])
    op.create_table(
        "event_dead_letters",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("condition", sa.String(32), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("error_message", sa.String(1024), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("event_dead_letters_function", "event_dead_letters", ["function", "time_ms"])


def downgrade() -> None:
    """Drop ``event_dead_letters`` and ``event_queue``."""
    op.drop_index("event_dead_letters_function", "event_dead_letters")
    op.drop_table("event_dead_letters")
    op.drop_index("event_queue_function", "event_queue")
    op.drop_index("event_queue_due", "event_queue")
    op.drop_table("event_queue")
