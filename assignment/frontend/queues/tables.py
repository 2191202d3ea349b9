"""The SQL tables of SQS-compatible queues (SQLAlchemy Core), as the migrations create them.

* ``sqs_queues`` (migration ``0007_queues``, as the next three) — one row per queue (its attributes are
  columns; ``extra`` holds the FIFO throughput settings as a JSON object, ``tags`` the tags);
* ``sqs_messages`` — one row per stored message, with its visibility, receive count and latest receipt token;
* ``sqs_dedup`` — FIFO deduplication ids of the last five minutes;
* ``sqs_deleted_queues`` — names deleted in the last 60 seconds;
* ``sqs_receive_attempts`` — what each FIFO ``ReceiveRequestAttemptId`` of the last five minutes received
  (migration ``0009_receive_attempts``).

The migrations are what create them; these definitions are what the store queries, and a test holds the
two together. What each column means is the migrations' docstrings.

Example::

    from sqlalchemy import select

    from assignment.frontend.queues.tables import sqs_queues

    names = conn.execute(select(sqs_queues.c.name).where(sqs_queues.c.account_id == "123456789012")).scalars()
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["metadata", "sqs_dedup", "sqs_deleted_queues", "sqs_messages", "sqs_queues", "sqs_receive_attempts"]

#: The metadata of the five tables (and of nothing else).
metadata = MetaData()
sqs_queues = Table(
    "sqs_queues",
    metadata,
    Column("queue_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("name", String(80), nullable=False),
    Column("fifo", Boolean, nullable=False),
    Column("visibility_timeout", Integer, nullable=False),
    Column("retention_period", Integer, nullable=False),
    Column("delay_seconds", Integer, nullable=False),
    Column("receive_wait", Integer, nullable=False),
    Column("maximum_message_size", Integer, nullable=False),
    Column("content_dedup", Boolean, nullable=False),
    Column("redrive_policy", Text, nullable=False),
    Column("dlq_account", String(12), nullable=False),
    Column("dlq_name", String(80), nullable=False),
    Column("max_receive_count", Integer, nullable=False),
    Column("redrive_allow_policy", Text, nullable=False),
    Column("extra", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    Column("purged_ms", BigInteger, nullable=False),
    Column("next_seq", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name", name="sqs_queues_name"),
)
sqs_messages = Table(
    "sqs_messages",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("queue_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("attributes", Text, nullable=False),
    Column("system_attributes", Text, nullable=False),
    Column("md5_body", String(32), nullable=False),
    Column("md5_attributes", String(32), nullable=False),
    Column("md5_system", String(32), nullable=False),
    Column("sender_id", String(128), nullable=False),
    Column("group_id", String(128), nullable=False),
    Column("dedup_id", String(128), nullable=False),
    Column("sent_ms", BigInteger, nullable=False),
    Column("retain_from_ms", BigInteger, nullable=False),
    Column("visible_ms", BigInteger, nullable=False),
    Column("first_receive_ms", BigInteger, nullable=False),
    Column("receive_count", Integer, nullable=False),
    Column("receipt_token", String(32), nullable=False),
)
sqs_dedup = Table(
    "sqs_dedup",
    metadata,
    Column("queue_id", String(32), nullable=False),
    Column("dedup_id", String(128), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("queue_id", "dedup_id", name="sqs_dedup_pk"),
)
sqs_deleted_queues = Table(
    "sqs_deleted_queues",
    metadata,
    Column("account_id", String(12), nullable=False),
    Column("name", String(80), nullable=False),
    Column("deleted_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "name", name="sqs_deleted_queues_pk"),
)
sqs_receive_attempts = Table(
    "sqs_receive_attempts",
    metadata,
    Column("queue_id", String(32), nullable=False),
    Column("attempt_id", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("messages", Text, nullable=False),
    PrimaryKeyConstraint("queue_id", "attempt_id", name="sqs_receive_attempts_pk"),
)
