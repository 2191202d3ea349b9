"""SQS-compatible queues: the queues, their messages, FIFO deduplication and recently deleted names.

* ``sqs_queues`` — one row per queue, keyed by ``queue_id`` (random; a queue deleted and created again
  gets another, so its old messages and receipt handles can never apply to the new one) and unique by
  ``(account_id, name)``. The attributes are columns (the retention period is needed in SQL to expire
  messages); ``redrive_policy`` / ``redrive_allow_policy`` keep the JSON documents, and ``dlq_account`` /
  ``dlq_name`` the dead-letter target's, so a dead-letter queue's sources are one indexed query;
  ``extra`` the FIFO throughput settings (DeduplicationScope, FifoThroughputLimit) as a JSON object.
  ``next_seq`` numbers the queue's messages (FIFO SequenceNumber and the receive order).
* ``sqs_messages`` — one row per stored message: the body, user and system attributes (JSON), their MD5s,
  when it was sent and from when its retention counts, when it is next visible, the receive count and the
  token of its latest receive (``''`` until received, and again when redriven to a dead-letter queue).
* ``sqs_dedup`` — FIFO deduplication ids of the last five minutes and the message each one stood for.
* ``sqs_deleted_queues`` — names deleted in the last 60 seconds (SQS refuses to create them again).

The tables are described in :mod:`assignment.frontend.queues.tables`.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``sqs_queues``, ``sqs_messages``, ``sqs_dedup`` and ``sqs_deleted_queues``."""
    op.create_table(
        "sqs_queues",
        sa.Column("queue_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("fifo", sa.Boolean, nullable=False),
        sa.Column("visibility_timeout", sa.Integer, nullable=False),
        sa.Column("retention_period", sa.Integer, nullable=False),
        sa.Column("delay_seconds", sa.Integer, nullable=False),
        sa.Column("receive_wait", sa.Integer, nullable=False),
        sa.Column("maximum_message_size", sa.Integer, nullable=False),
        sa.Column("content_dedup", sa.Boolean, nullable=False),
        sa.Column("redrive_policy", sa.Text, nullable=False),
        sa.Column("dlq_account", sa.String(12), nullable=False),
        sa.Column("dlq_name", sa.String(80), nullable=False),
        sa.Column("max_receive_count", sa.Integer, nullable=False),
        sa.Column("redrive_allow_policy", sa.Text, nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("modified_ms", sa.BigInteger, nullable=False),
        sa.Column("purged_ms", sa.BigInteger, nullable=False),
        sa.Column("next_seq", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("account_id", "name", name="sqs_queues_name"),
    )
    op.create_index("sqs_queues_dlq", "sqs_queues", ["dlq_account", "dlq_name"])
    op.create_table(
        "sqs_messages",
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("queue_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("system_attributes", sa.Text, nullable=False),
        sa.Column("md5_body", sa.String(32), nullable=False),
        sa.Column("md5_attributes", sa.String(32), nullable=False),
        sa.Column("md5_system", sa.String(32), nullable=False),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("group_id", sa.String(128), nullable=False),
        sa.Column("dedup_id", sa.String(128), nullable=False),
        sa.Column("sent_ms", sa.BigInteger, nullable=False),
        sa.Column("retain_from_ms", sa.BigInteger, nullable=False),
        sa.Column("visible_ms", sa.BigInteger, nullable=False),
        sa.Column("first_receive_ms", sa.BigInteger, nullable=False),
        sa.Column("receive_count", sa.Integer, nullable=False),
        sa.Column("receipt_token", sa.String(32), nullable=False),
    )
    op.create_index("sqs_messages_order", "sqs_messages", ["queue_id", "seq"], unique=True)
    op.create_index("sqs_messages_visible", "sqs_messages", ["queue_id", "visible_ms"])
    op.create_index("sqs_messages_group", "sqs_messages", ["queue_id", "group_id", "seq"])
    op.create_table(
        "sqs_dedup",
        sa.Column("queue_id", sa.String(32), nullable=False),
        sa.Column("dedup_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "dedup_id", name="sqs_dedup_pk"),
    )
    op.create_table(
        "sqs_deleted_queues",
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("deleted_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "name", name="sqs_deleted_queues_pk"),
    )


def downgrade() -> None:
    """Drop the tables."""
    op.drop_table("sqs_deleted_queues")
    op.drop_table("sqs_dedup")
    op.drop_index("sqs_messages_group", "sqs_messages")
    op.drop_index("sqs_messages_visible", "sqs_messages")
    op.drop_index("sqs_messages_order", "sqs_messages")
    op.drop_table("sqs_messages")
    op.drop_index("sqs_queues_dlq", "sqs_queues")
    op.drop_table("sqs_queues")
