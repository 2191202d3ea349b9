"""The durable store of SQS-compatible queues: queues, messages and their transactions (synchronous
SQLAlchemy Core; no asyncio here, no HTTP).

:class:`QueueStore` is what the SQS API will run in worker threads. Every method is one transaction on
the journal's engines (writes on ``writer``: SQLite ``BEGIN IMMEDIATE``, so writers serialise; on
PostgreSQL a receive of a standard queue takes its messages with ``SELECT ... FOR UPDATE SKIP LOCKED``, so
pollers on several hosts never take the same message, and a receive of a FIFO queue locks the queue's row,
so two pollers never split a message group between them). A send is committed before it returns.
Time is always a parameter (``now_ms``); the store never reads a clock.

The semantics are Amazon SQS's (botocore's ``sqs/2012-11-05`` model gives the names, ranges and errors):

* a queue is named within an account (``[A-Za-z0-9_-]{1,80}``, FIFO names end in ``.fifo``); creating it
  again with the same attributes returns it, with different ones raises :class:`QueueNameExists`;
* a receive makes its messages invisible for the visibility timeout and gives each a fresh receipt
  handle; a message received more than the source queue's ``maxReceiveCount`` times is moved to the
  dead-letter queue, in the receive's transaction, instead of being returned;
* FIFO queues deliver each message group in order, one batch in flight per group, and drop sends whose
  deduplication id was seen in the last five minutes (answering with the original message id);
* messages older than the retention period are never returned and are deleted (:meth:`QueueStore.expire`,
  and lazily by every receive).

Where SQS leaves a choice, this module says which it made (see :meth:`QueueStore.delete_message` for old
receipt handles). Errors are :class:`QueueError` subclasses named after the model's error shapes, carrying
the JSON protocol's type (:attr:`QueueError.code`) and the query protocol's code
(:attr:`QueueError.query_code`, what SQS sends in ``x-amzn-query-error``).

Example::

    store = QueueStore(journal)
    store.create_queue("123456789012", "jobs", {"VisibilityTimeout": "60"}, now_ms=now_ms)
    sent = store.send_message("123456789012", "jobs", NewMessage("hello"), sender_id="AIDA...", now_ms=now_ms)
    received = store.receive_messages("123456789012", "jobs", max_messages=10, now_ms=now_ms)
    for message in received.messages:
        store.delete_message("123456789012", "jobs", message.receipt_handle, now_ms=now_ms)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import decimal
import hashlib
import json
import re
import secrets
import struct
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from journal.store import Journal

__all__ = [
    "DEDUP_WINDOW_MS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "PURGE_INTERVAL_MS",
    "QUEUE_ATTRIBUTES",
    "REUSE_NAME_AFTER_MS",
    "BatchEntryIdsNotDistinct",
    "BatchError",
    "BatchRequestTooLong",
    "EmptyBatchRequest",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidBatchEntryId",
    "InvalidMessageContents",
    "InvalidParameterValue",
    "Message",
    "MessageAttribute",
    "MessageNotInflight",
    "NewMessage",
    "PurgeQueueInProgress",
    "Queue",
    "QueueDeletedRecently",
    "QueueDoesNotExist",
    "QueueError",
    "QueueNameExists",
    "QueuePage",
    "QueueStore",
    "ReceiptHandleIsInvalid",
    "Received",
    "SendResult",
    "TooManyEntriesInBatchRequest",
    "md5_of_attributes",
    "md5_of_body",
    "sqs_dedup",
    "sqs_deleted_queues",
    "sqs_messages",
    "sqs_queues",
]

#: A batch holds at most 10 entries (SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch).
MAX_BATCH_ENTRIES = 10
#: The largest message and the largest batch of messages: 1 MiB (the model's MaximumMessageSize range).
MAX_BATCH_BYTES = 1_048_576
#: How long a FIFO deduplication id holds: five minutes from the send that stored it.
DEDUP_WINDOW_MS = 5 * 60_000
#: A queue can be purged once per 60 seconds (PurgeQueueInProgress otherwise).
PURGE_INTERVAL_MS = 60_000
#: A deleted queue's name can be created again after 60 seconds (QueueDeletedRecently before).
REUSE_NAME_AFTER_MS = 60_000

_MAX_VISIBILITY_S = 43_200
_MAX_MESSAGE_ATTRIBUTES = 10
_MAX_TAGS = 50
_DEFAULT_MAX_RECEIVE_COUNT = 10

_ACCOUNT = re.compile(r"[0-9]{12}")
_STANDARD_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")
_INTEGER = re.compile(r"-?[0-9]{1,12}")
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
#: MessageGroupId and MessageDeduplicationId: 1-128 of alphanumerics and punctuation (printable ASCII).
_GROUP_OR_DEDUP_ID = re.compile(r"[!-~]{1,128}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.-]+)?")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: Characters SQS refuses in a body or a string value (all but the W3C XML character set).
_BAD_CHARACTERS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ARN = re.compile(r"arn:[a-z-]{1,32}:sqs:[a-z0-9-]{0,32}:([0-9]{12}):([A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)")
_RECEIPT_HANDLE = re.compile(r"[A-Za-z0-9_-]{66}")
_HANDLE_VERSION = 1
_TOKEN_BYTES = 16


# ----------------------------------------------------------------------------------------------- errors


class QueueError(Exception):
    """An SQS error: ``code`` is the JSON protocol's error type (the model's shape name), ``query_code`` the
    query protocol's code, ``sender_fault`` whether the caller is to blame (HTTP 400) or the service."""

    code: ClassVar[str] = "InternalError"
    query_code: ClassVar[str] = "InternalError"
    sender_fault: ClassVar[bool] = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueDoesNotExist(QueueError):
    """The queue does not exist (in this account)."""

    code = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"


class QueueNameExists(QueueError):
    """A queue of that name exists with other attribute values."""

    code = "QueueNameExists"
    query_code = "QueueAlreadyExists"


class QueueDeletedRecently(QueueError):
    """The name was deleted less than 60 seconds ago."""

    code = "QueueDeletedRecently"
    query_code = "AWS.SimpleQueueService.QueueDeletedRecently"


class PurgeQueueInProgress(QueueError):
    """The queue was purged less than 60 seconds ago."""

    code = "PurgeQueueInProgress"
    query_code = "AWS.SimpleQueueService.PurgeQueueInProgress"


class InvalidAttributeName(QueueError):
    """An attribute name that does not exist (or does not apply to this kind of queue)."""

    code = "InvalidAttributeName"
    query_code = "InvalidAttributeName"


class InvalidAttributeValue(QueueError):
    """A queue attribute's value is out of range or malformed."""

    code = "InvalidAttributeValue"
    query_code = "InvalidAttributeValue"


class InvalidParameterValue(QueueError):
    """A request parameter is invalid (SQS's common error; no shape in the model, the type is its code)."""

    code = "InvalidParameterValue"
    query_code = "InvalidParameterValue"


class InvalidMessageContents(QueueError):
    """A body or string value has characters outside the allowed set."""

    code = "InvalidMessageContents"
    query_code = "InvalidMessageContents"


class ReceiptHandleIsInvalid(QueueError):
    """A receipt handle that is malformed, of another queue, or superseded by a later receive."""

    code = "ReceiptHandleIsInvalid"
    query_code = "ReceiptHandleIsInvalid"


class MessageNotInflight(QueueError):
    """ChangeMessageVisibility on a message that is not in flight."""

    code = "MessageNotInflight"
    query_code = "AWS.SimpleQueueService.MessageNotInflight"


class EmptyBatchRequest(QueueError):
    """A batch without entries."""

    code = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"


class TooManyEntriesInBatchRequest(QueueError):
    """A batch of more than 10 entries."""

    code = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


class BatchEntryIdsNotDistinct(QueueError):
    """Two entries of a batch have the same id."""

    code = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


class InvalidBatchEntryId(QueueError):
    """An entry id that is not 1-80 of alphanumerics, ``-`` and ``_``."""

    code = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"


class BatchRequestTooLong(QueueError):
    """The messages of a batch add up to more than 1 MiB."""

    code = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"


# ------------------------------------------------------------------------------------------------ tables

_metadata = MetaData()
sqs_queues = Table(
    "sqs_queues",
    _metadata,
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
    _metadata,
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
    _metadata,
    Column("queue_id", String(32), nullable=False),
    Column("dedup_id", String(128), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("queue_id", "dedup_id", name="sqs_dedup_pk"),
)
sqs_deleted_queues = Table(
    "sqs_deleted_queues",
    _metadata,
    Column("account_id", String(12), nullable=False),
    Column("name", String(80), nullable=False),
    Column("deleted_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "name", name="sqs_deleted_queues_pk"),
)


# ------------------------------------------------------------------------------------------ attributes

#: The queue attributes the store keeps, by name: (column, lowest, highest, default) of the integer ones.
_INT_ATTRIBUTES: dict[str, tuple[str, int, int, int]] = {
    "DelaySeconds": ("delay_seconds", 0, 900, 0),
    "MaximumMessageSize": ("maximum_message_size", 1024, 1_048_576, 1_048_576),
    "MessageRetentionPeriod": ("retention_period", 60, 1_209_600, 345_600),
    "ReceiveMessageWaitTimeSeconds": ("receive_wait", 0, 20, 0),
    "VisibilityTimeout": ("visibility_timeout", 0, _MAX_VISIBILITY_S, 30),
}
#: Attributes kept and returned as given, with the values each may take (() for any its rule allows): SSE
#: and the policy mean nothing here (the API's own auth decides), the FIFO throughput settings change no
#: behaviour but DeduplicationScope's (``messageGroup``: ids are deduplicated within their group).
_KEPT: dict[str, tuple[str, ...]] = {
    "Policy": (),
    "KmsMasterKeyId": (),
    "KmsDataKeyReusePeriodSeconds": (),
    "SqsManagedSseEnabled": (),
    "DeduplicationScope": ("messageGroup", "queue"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}
_FIFO_ONLY = ("DeduplicationScope", "FifoThroughputLimit")
_MAX_POLICY_CHARS = 20_480
_SETTABLE = (*_INT_ATTRIBUTES, "RedrivePolicy", "RedriveAllowPolicy", "ContentBasedDeduplication", *_KEPT)
_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
#: Every attribute GetQueueAttributes knows (besides ``All``).
QUEUE_ATTRIBUTES = (
    *_SETTABLE,
    "FifoQueue",
    "QueueArn",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    *_COUNTS,
)


@dataclass(frozen=True, slots=True)
class Queue:
    """A stored queue: its identity, attributes (as the columns hold them), tags and timestamps."""

    queue_id: str
    account_id: str
    name: str
    fifo: bool
    visibility_timeout: int
    retention_period: int
    delay_seconds: int
    receive_wait: int
    maximum_message_size: int
    content_dedup: bool
    #: The RedrivePolicy document as SQS returns it ("" when none).
    redrive_policy: str
    dlq_account: str
    dlq_name: str
    max_receive_count: int
    redrive_allow_policy: str
    #: The attributes kept as given (Policy, SSE, FIFO throughput), by SQS name.
    extra: dict[str, str]
    tags: dict[str, str]
    created_ms: int
    modified_ms: int

    def attributes(self) -> dict[str, str]:
        """The stored attributes by SQS name, as strings (without the counts and QueueArn)."""
        out = {name: str(getattr(self, column)) for name, (column, _, _, _) in _INT_ATTRIBUTES.items()}
        out["CreatedTimestamp"] = str(self.created_ms // 1000)
        out["LastModifiedTimestamp"] = str(self.modified_ms // 1000)
        if self.redrive_policy:
            out["RedrivePolicy"] = self.redrive_policy
        if self.redrive_allow_policy:
            out["RedriveAllowPolicy"] = self.redrive_allow_policy
        if self.fifo:
            out["FifoQueue"] = "true"
            out["ContentBasedDeduplication"] = "true" if self.content_dedup else "false"
        out.update(self.extra)
        return out


def _queue(row: Row[Any]) -> Queue:
    return Queue(
        queue_id=str(row.queue_id),
        account_id=str(row.account_id),
        name=str(row.name),
        fifo=bool(row.fifo),
        visibility_timeout=int(row.visibility_timeout),
        retention_period=int(row.retention_period),
        delay_seconds=int(row.delay_seconds),
        receive_wait=int(row.receive_wait),
        maximum_message_size=int(row.maximum_message_size),
        content_dedup=bool(row.content_dedup),
        redrive_policy=str(row.redrive_policy),
        dlq_account=str(row.dlq_account),
        dlq_name=str(row.dlq_name),
        max_receive_count=int(row.max_receive_count),
        redrive_allow_policy=str(row.redrive_allow_policy),
        extra=dict(json.loads(row.extra)),
        tags=dict(json.loads(row.tags)),
        created_ms=int(row.created_ms),
        modified_ms=int(row.modified_ms),
    )


def _bool_attribute(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    return value.lower() == "true"


def _parse_arn(value: object) -> tuple[str, str] | None:
    """``(account, name)`` of an SQS queue ARN, or ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    match = _ARN.fullmatch(value)
    return None if match is None else (match.group(1), match.group(2))


def _redrive_policy(value: str) -> dict[str, object]:
    """RedrivePolicy's columns: the canonical document, the target's account and name, maxReceiveCount."""
    if value == "":
        return {"redrive_policy": "", "dlq_account": "", "dlq_name": "", "max_receive_count": 0}
    invalid = InvalidParameterValue(f"Value {value:.300} for parameter RedrivePolicy is invalid.")
    try:
        document = json.loads(value)
    except ValueError:
        raise invalid from None
    if not isinstance(document, dict) or not set(document) <= {"deadLetterTargetArn", "maxReceiveCount"}:
        raise invalid
    target = _parse_arn(document.get("deadLetterTargetArn"))
    count: object = document.get("maxReceiveCount", _DEFAULT_MAX_RECEIVE_COUNT)
    if isinstance(count, str) and _INTEGER.fullmatch(count):
        count = int(count)
    if target is None or isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        raise InvalidParameterValue(
            f"Value {value:.300} for parameter RedrivePolicy is invalid. Reason: Redrive policy needs a"
            " deadLetterTargetArn (an SQS queue ARN) and a maxReceiveCount of 1 to 1000."
        )
    canonical = json.dumps(
        {"deadLetterTargetArn": document["deadLetterTargetArn"], "maxReceiveCount": count}, separators=(",", ":")
    )
    return {"redrive_policy": canonical, "dlq_account": target[0], "dlq_name": target[1], "max_receive_count": count}


def _redrive_allow_policy(value: str) -> str:
    """The canonical RedriveAllowPolicy document ("" removes it)."""
    if value == "":
        return ""
    invalid = InvalidParameterValue(f"Value {value:.300} for parameter RedriveAllowPolicy is invalid.")
    try:
        document = json.loads(value)
    except ValueError:
        raise invalid from None
    if not isinstance(document, dict) or not set(document) <= {"redrivePermission", "sourceQueueArns"}:
        raise invalid
    permission = document.get("redrivePermission")
    arns = document.get("sourceQueueArns")
    if permission not in ("allowAll", "denyAll", "byQueue"):
        raise invalid
    if permission == "byQueue":
        if not isinstance(arns, list) or not 1 <= len(arns) <= 10 or any(_parse_arn(a) is None for a in arns):
            raise invalid
        return json.dumps({"redrivePermission": permission, "sourceQueueArns": arns}, separators=(",", ":"))
    if arns is not None:
        raise invalid
    return json.dumps({"redrivePermission": permission}, separators=(",", ":"))


def _parse_attributes(attributes: Mapping[str, str], *, fifo: bool) -> dict[str, object]:
    """Settable attributes to their column values (only those given)."""
    values: dict[str, object] = {}
    for name, value in attributes.items():
        if not isinstance(value, str):
            raise InvalidAttributeValue(f"Invalid value for the parameter {name!s:.256}.")
        if name in _INT_ATTRIBUTES:
            column, low, high, _ = _INT_ATTRIBUTES[name]
            if not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            values[column] = int(value)
        elif name == "RedrivePolicy":
            values.update(_redrive_policy(value))
        elif name == "RedriveAllowPolicy":
            values["redrive_allow_policy"] = _redrive_allow_policy(value)
        elif name == "ContentBasedDeduplication" and fifo:
            values["content_dedup"] = _bool_attribute(name, value)
        elif name in _KEPT and (fifo or name not in _FIFO_ONLY):
            extra = values.setdefault("extra", {})
            assert isinstance(extra, dict)
            extra[name] = _kept_attribute(name, value)
        else:
            raise InvalidAttributeName(f"Unknown Attribute {name!s:.256}.")
    return values


def _kept_attribute(name: str, value: str) -> str:
    """The canonical value of an attribute kept as given (no behaviour here but DeduplicationScope's)."""
    invalid = InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    if name == "Policy":
        if value:
            try:
                document = json.loads(value)
            except ValueError:
                raise invalid from None
            if not isinstance(document, dict) or len(value) > _MAX_POLICY_CHARS:
                raise invalid
        return value
    if name == "KmsMasterKeyId":
        if len(value) > 2048 or _BAD_CHARACTERS.search(value):
            raise invalid
        return value
    if name == "KmsDataKeyReusePeriodSeconds":
        if not _INTEGER.fullmatch(value) or not 60 <= int(value) <= 86_400:
            raise invalid
        return str(int(value))
    if name == "SqsManagedSseEnabled":
        return "true" if _bool_attribute(name, value) else "false"
    if value not in _KEPT[name]:
        raise invalid
    return value


def _differs(queue: Queue, given: Mapping[str, object]) -> bool:
    """Whether a given attribute (as :func:`_parse_attributes` returns them) differs from the queue's."""
    for column, value in given.items():
        if column == "extra":
            assert isinstance(value, dict)
            if any(queue.extra.get(name, "") != kept for name, kept in value.items()):
                return True
        elif getattr(queue, column) != value:
            return True
    return False


def _kept_json(current: Mapping[str, str], given: object) -> str:
    """The ``extra`` column: ``current`` with the ``given`` values (an empty one removes its attribute)."""
    assert isinstance(given, dict)
    merged = {**current, **given}
    return json.dumps({name: value for name, value in merged.items() if value})


def _check_account(account_id: str) -> None:
    if not isinstance(account_id, str) or not _ACCOUNT.fullmatch(account_id):
        raise InvalidParameterValue(f"Invalid account id {account_id!r:.40}.")


def _valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_STANDARD_NAME.fullmatch(name) or _FIFO_NAME.fullmatch(name))


# -------------------------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class MessageAttribute:
    """A message attribute: ``data_type`` ``String``/``Number``/``Binary`` (plus an optional ``.custom``
    suffix) and the matching value (``string_value`` for String and Number, ``binary_value`` for Binary)."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to send: ``delay_seconds`` ``None`` takes the queue's DelaySeconds; the group and
    deduplication ids are FIFO's (a group id on a standard queue is accepted: fair queues)."""

    body: str
    delay_seconds: int | None = None
    attributes: Mapping[str, MessageAttribute] = field(default_factory=dict)
    #: MessageSystemAttributes: only ``AWSTraceHeader`` (a String) exists.
    system_attributes: Mapping[str, MessageAttribute] = field(default_factory=dict)
    group_id: str | None = None
    deduplication_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """A stored (or deduplicated) send: SendMessage's answer. ``sequence_number`` is FIFO's ("" else);
    the attribute MD5s are "" when the message has no such attributes."""

    message_id: str
    md5_of_body: str
    md5_of_attributes: str
    md5_of_system_attributes: str
    sequence_number: str
    #: ``True`` when a FIFO deduplication id matched an earlier send and nothing was stored.
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class BatchError:
    """One failed entry of a batch (BatchResultErrorEntry)."""

    id: str
    code: str
    message: str
    sender_fault: bool = True


@dataclass(frozen=True, slots=True)
class Message:
    """A received message. ``attributes`` are the system attributes by SQS name (SenderId, SentTimestamp,
    ApproximateReceiveCount, ApproximateFirstReceiveTimestamp, and AWSTraceHeader, MessageGroupId,
    MessageDeduplicationId, SequenceNumber when the message has them); the API filters both maps."""

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    md5_of_attributes: str
    message_attributes: dict[str, MessageAttribute]
    attributes: dict[str, str]


@dataclass(frozen=True, slots=True)
class Received:
    """A receive's messages, and when the queue's next invisible message becomes visible (``None`` when
    there is none) so a long poll can sleep until then or until a send wakes it."""

    messages: list[Message]
    next_visible_ms: int | None


@dataclass(frozen=True, slots=True)
class QueuePage:
    """A page of queue names and the token of the next page (``None`` at the end)."""

    names: list[str]
    next_token: str | None


def md5_of_body(body: str) -> str:
    """MD5OfMessageBody: the hex MD5 of the body's UTF-8 bytes."""
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: Mapping[str, MessageAttribute]) -> str:
    """MD5OfMessageAttributes (and of system attributes) as SQS computes it; "" for no attributes.

    Names sorted; for each, the name, the data type, one transport byte (1 String and Number, 2 Binary)
    and the value, each but the transport byte preceded by its length as a 4-byte big-endian integer.
    """
    if not attributes:
        return ""
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        attribute = attributes[name]
        for part in (name.encode("utf-8"), attribute.data_type.encode("utf-8")):
            digest.update(struct.pack(">I", len(part)) + part)
        if attribute.binary_value is not None:
            value, transport = attribute.binary_value, b"\x02"
        else:
            value, transport = (attribute.string_value or "").encode("utf-8"), b"\x01"
        digest.update(transport + struct.pack(">I", len(value)) + value)
    return digest.hexdigest()


def _check_text(text: str, what: str) -> None:
    bad = _BAD_CHARACTERS.search(text)
    if bad is not None:
        raise InvalidMessageContents(f"Invalid characters found in {what}: U+{ord(bad.group()):04X}.")


def _attribute_size(attributes: Mapping[str, MessageAttribute]) -> int:
    """Bytes of the attributes' names, types and values: they count towards the message size."""
    total = 0
    for name, attribute in attributes.items():
        value = attribute.binary_value if attribute.binary_value is not None else (attribute.string_value or "")
        total += len(name.encode()) + len(attribute.data_type.encode())
        total += len(value) if isinstance(value, bytes) else len(value.encode("utf-8"))
    return total


def _rough_size(message: object) -> int:
    """A message's size as :func:`_attribute_size` and the body's UTF-8 count it, before it is validated
    (wrong types count 0, lone surrogates as UTF-8 would encode them)."""
    if not isinstance(message, NewMessage):
        return 0
    size = len(message.body.encode("utf-8", "surrogatepass")) if isinstance(message.body, str) else 0
    if isinstance(message.attributes, Mapping):
        for name, attribute in message.attributes.items():
            if isinstance(name, str) and isinstance(attribute, MessageAttribute):
                value = attribute.binary_value if attribute.binary_value is not None else attribute.string_value
                size += len(name.encode("utf-8", "surrogatepass")) + len(str(attribute.data_type))
                if isinstance(value, bytes):
                    size += len(value)
                elif isinstance(value, str):
                    size += len(value.encode("utf-8", "surrogatepass"))
    return size


def _check_attributes(attributes: Mapping[str, MessageAttribute]) -> None:
    """Message attributes as SQS takes them: up to 10, valid names, types and values."""
    if not isinstance(attributes, Mapping) or len(attributes) > _MAX_MESSAGE_ATTRIBUTES:
        raise InvalidParameterValue(f"Number of message attributes cannot exceed {_MAX_MESSAGE_ATTRIBUTES}.")
    for name, attribute in attributes.items():
        if (
            not isinstance(name, str)
            or not _ATTRIBUTE_NAME.fullmatch(name)
            or name.lower().startswith(("aws.", "amazon."))
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
        ):
            raise InvalidParameterValue(f"Message (user) attribute name {name!r:.260} is invalid.")
        if not isinstance(attribute, MessageAttribute):
            raise InvalidParameterValue(f"Message (user) attribute {name!r} must be a MessageAttribute.")
        data_type = attribute.data_type
        if not isinstance(data_type, str) or len(data_type) > 256 or not _DATA_TYPE.fullmatch(data_type):
            raise InvalidParameterValue(f"The type of message (user) attribute {name!r} is invalid.")
        if data_type.startswith("Binary"):
            if not isinstance(attribute.binary_value, bytes) or attribute.string_value is not None:
                raise InvalidParameterValue(f"Message (user) attribute {name!r} must have a binary value.")
            if not attribute.binary_value:
                raise InvalidParameterValue(f"Message (user) attribute {name!r} must contain a non-empty value.")
            continue
        value = attribute.string_value
        if not isinstance(value, str) or attribute.binary_value is not None:
            raise InvalidParameterValue(f"Message (user) attribute {name!r} must have a string value.")
        if not value:
            raise InvalidParameterValue(f"Message (user) attribute {name!r} must contain a non-empty value.")
        _check_text(value, f"the value of message (user) attribute {name!r}")
        if data_type.startswith("Number") and not _valid_number(value):
            raise InvalidParameterValue(f"Value {value!r:.80} of message (user) attribute {name!r} is not a number.")


def _valid_number(text: str) -> bool:
    """SQS Numbers: up to 38 significant digits, from -10^128 to 10^126."""
    if not _NUMBER.fullmatch(text):
        return False
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return False
    # Significant digits (not normalize(): that rounds to the context's 28).
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    return len(digits) <= 38 and (number == 0 or -(10**128) <= number <= 10**126)


def _check_system_attributes(attributes: Mapping[str, MessageAttribute]) -> None:
    if not isinstance(attributes, Mapping):
        raise InvalidParameterValue("MessageSystemAttributes must be a map.")
    for name, attribute in attributes.items():
        if name != "AWSTraceHeader":
            raise InvalidParameterValue(f"Message system attribute name {name!r:.260} is invalid.")
        if (
            not isinstance(attribute, MessageAttribute)
            or attribute.data_type != "String"
            or not isinstance(attribute.string_value, str)
            or not attribute.string_value
            or attribute.binary_value is not None
        ):
            raise InvalidParameterValue("Message system attribute AWSTraceHeader must be a non-empty String.")
        _check_text(attribute.string_value, "AWSTraceHeader")


@dataclass(frozen=True, slots=True)
class _Checked:
    """A validated message, ready to store."""

    message: NewMessage
    body: bytes
    size: int
    dedup_id: str
    #: What ``sqs_dedup`` is keyed by: the id, or with DeduplicationScope ``messageGroup`` a hash of the
    #: group and the id ("" on standard queues).
    dedup_key: str


def _check_message(queue: Queue, message: NewMessage) -> _Checked:
    """Validate ``message`` for ``queue``; raises the error SQS gives."""
    if not isinstance(message, NewMessage):
        raise InvalidParameterValue("A message must be a NewMessage.")
    if not isinstance(message.body, str) or not message.body:
        raise InvalidParameterValue("The request must contain the parameter MessageBody.")
    _check_text(message.body, "the message body")
    _check_attributes(message.attributes)
    _check_system_attributes(message.system_attributes)
    body = message.body.encode("utf-8")
    size = len(body) + _attribute_size(message.attributes)
    if size > queue.maximum_message_size:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than"
            f" {queue.maximum_message_size} bytes."
        )
    delay = message.delay_seconds
    if delay is not None:
        if queue.fifo:
            raise InvalidParameterValue(
                f"Value {delay} for parameter DelaySeconds is invalid. Reason: The request include parameter"
                " that is not valid for this queue type."
            )
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 900:
            raise InvalidParameterValue(
                f"Value {delay!r:.20} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0"
                " and <= 900."
            )
    for what, value in (("MessageGroupId", message.group_id), ("MessageDeduplicationId", message.deduplication_id)):
        if value is not None and (not isinstance(value, str) or not _GROUP_OR_DEDUP_ID.fullmatch(value)):
            raise InvalidParameterValue(f"Value {value!r:.140} for parameter {what} is invalid.")
    if not queue.fifo:
        if message.deduplication_id is not None:
            raise InvalidParameterValue(
                "The request include parameter MessageDeduplicationId that is not valid for this queue type."
            )
        return _Checked(message, body, size, "", "")
    if message.group_id is None:
        raise InvalidParameterValue("The request must contain the parameter MessageGroupId.")
    dedup_id = message.deduplication_id
    if dedup_id is None:
        if not queue.content_dedup:
            raise InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId"
                " provided explicitly."
            )
        dedup_id = hashlib.sha256(body).hexdigest()
    key = dedup_id
    if queue.extra.get("DeduplicationScope") == "messageGroup":
        key = hashlib.sha256(f"{message.group_id}\x00{dedup_id}".encode()).hexdigest()
    return _Checked(message, body, size, dedup_id, key)


def _encode_attributes(attributes: Mapping[str, MessageAttribute]) -> str:
    return json.dumps(
        {
            name: [a.data_type, "b", base64.b64encode(a.binary_value).decode()]
            if a.binary_value is not None
            else [a.data_type, "s", a.string_value]
            for name, a in attributes.items()
        },
        ensure_ascii=False,
    )


def _decode_attributes(text: str) -> dict[str, MessageAttribute]:
    out: dict[str, MessageAttribute] = {}
    for name, (data_type, kind, value) in json.loads(text).items():
        if kind == "b":
            out[name] = MessageAttribute(data_type, binary_value=base64.b64decode(value))
        else:
            out[name] = MessageAttribute(data_type, string_value=value)
    return out


def _receipt_handle(queue_id: str, message_id: str, token: str) -> str:
    raw = bytes([_HANDLE_VERSION]) + bytes.fromhex(queue_id) + uuid.UUID(message_id).bytes + bytes.fromhex(token)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _parse_handle(handle: object) -> tuple[str, str, str]:
    """``(queue_id, message_id, token)`` of a receipt handle; :class:`ReceiptHandleIsInvalid` if malformed."""
    invalid = ReceiptHandleIsInvalid(f"The input receipt handle {str(handle)[:100]!r} is not a valid receipt handle.")
    if not isinstance(handle, str) or not _RECEIPT_HANDLE.fullmatch(handle):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(handle + "==")
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits only base64url
        raise invalid from None
    if len(raw) != 1 + 3 * _TOKEN_BYTES or raw[0] != _HANDLE_VERSION:
        raise invalid
    return raw[1:17].hex(), str(uuid.UUID(bytes=raw[17:33])), raw[33:].hex()


def _sequence_number(seq: int) -> str:
    """A FIFO SequenceNumber: 20 digits, increasing per queue."""
    return f"{seq:020d}"


def _check_batch(ids: Sequence[str]) -> None:
    """The rules of every batch: 1-10 entries, valid and distinct ids."""
    if not ids:
        raise EmptyBatchRequest("There should be at least one entry in the request.")
    if len(ids) > MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {len(ids)}."
        )
    for entry_id in ids:
        if not isinstance(entry_id, str) or not _BATCH_ID.fullmatch(entry_id):
            raise InvalidBatchEntryId(
                f"A batch entry id {str(entry_id)[:90]!r} can only contain alphanumeric characters, hyphens and"
                " underscores. It can be at most 80 letters long."
            )
    if len(set(ids)) != len(ids):
        raise BatchEntryIdsNotDistinct("Two or more batch entries in the request have the same Id.")


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last}).encode()).decode("ascii")


def _decode_token(token: str) -> str:
    invalid = InvalidParameterValue("Invalid NextToken value.")
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))["after"]
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise invalid from None
    if not _valid_name(after):
        raise invalid
    return str(after)


def _check_max_results(max_results: int | None) -> None:
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= 1000
    ):
        raise InvalidParameterValue(f"Value {max_results!r:.20} for parameter MaxResults is invalid. Must be 1-1000.")


def _check_visibility(timeout: object) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 <= timeout <= _MAX_VISIBILITY_S:
        raise InvalidParameterValue(
            f"Value {timeout!r:.20} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200."
        )
    return timeout


def _not_in_flight_visibility(message_id: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Value for parameter ReceiptHandle is invalid. Reason: Message {message_id} does not exist or is not"
        " available for visibility timeout change."
    )


# ----------------------------------------------------------------------------------------------- store


class QueueStore:
    """SQS queues on a journal's database; thread-safe (one transaction per call)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._postgres = journal.backend == "postgresql"
        # SQLite: this process's writers wait for each other here, woken at once (as in EventStore).
        self._write_lock = threading.Lock()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (SQLite ``BEGIN IMMEDIATE``), committed when the block ends without error."""
        if self._postgres:
            with self._journal.writer.begin() as conn:
                yield conn
            return
        with self._write_lock, self._journal.writer.begin() as conn:
            yield conn

    # ------------------------------------------------------------------------------------------ queues

    def _by_name(self) -> Any:
        """The queue name in byte order (SQLite's default; PostgreSQL's ``C`` collation), for listings."""
        return sqs_queues.c.name.collate("C") if self._postgres else sqs_queues.c.name

    def _find(self, conn: Connection, account_id: str, name: str, *, lock: bool = False) -> Queue:
        _check_account(account_id)
        if not _valid_name(name):
            raise QueueDoesNotExist("The specified queue does not exist.")
        q = sqs_queues.c
        stmt = select(sqs_queues).where(q.account_id == account_id, q.name == name)
        if lock and self._postgres:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise QueueDoesNotExist("The specified queue does not exist.")
        return _queue(row)

    def _check_redrive(
        self, conn: Connection, account_id: str, name: str, fifo: bool, values: Mapping[str, object]
    ) -> None:
        """The dead-letter target of a RedrivePolicy exists in the same account, is of the same kind and
        lets ``name`` redrive to it (its RedriveAllowPolicy)."""
        dlq_name = str(values.get("dlq_name", ""))
        if not dlq_name:
            return
        reason = ""
        if values["dlq_account"] != account_id:
            reason = "Dead letter target must be in the same account."
        elif dlq_name == name:
            reason = "Dead letter target cannot be the queue itself."
        else:
            try:
                target = self._find(conn, account_id, dlq_name)
            except QueueDoesNotExist:
                reason = "Dead letter target does not exist."
            else:
                if target.fifo != fifo:
                    reason = "Dead-letter queue must be same type of queue as the source."
                elif target.redrive_allow_policy:
                    allow = json.loads(target.redrive_allow_policy)
                    permitted = allow["redrivePermission"] == "allowAll" or (
                        allow["redrivePermission"] == "byQueue"
                        and (account_id, name) in {_parse_arn(arn) for arn in allow["sourceQueueArns"]}
                    )
                    if not permitted:
                        reason = "Queue is not allowed to use the dead letter queue by its RedriveAllowPolicy."
        if reason:
            raise InvalidParameterValue(
                f"Value {values['redrive_policy']!s:.300} for parameter RedrivePolicy is invalid. Reason: {reason}"
            )

    def create_queue(
        self,
        account_id: str,
        name: str,
        attributes: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        now_ms: int,
    ) -> Queue:
        """Create a queue, or return the existing one when every given attribute has its value.

        Raises :class:`QueueNameExists` when a given attribute differs (only the given ones are compared, as
        SQS does; tags are not compared), :class:`QueueDeletedRecently` within 60 s of deleting the name.
        """
        _check_account(account_id)
        attributes = dict(attributes or {})
        fifo_text = attributes.pop("FifoQueue", "false")
        fifo = _bool_attribute("FifoQueue", fifo_text) if isinstance(fifo_text, str) else None
        if fifo is None:
            raise InvalidAttributeValue("Invalid value for the parameter FifoQueue.")
        if not isinstance(name, str) or not (_FIFO_NAME if fifo else _STANDARD_NAME).fullmatch(name):
            raise InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must"
                " end with .fifo suffix and be 1 to 80 in length."
                if fifo or (isinstance(name, str) and name.endswith(".fifo"))
                else "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
            )
        given = _parse_attributes(attributes, fifo=fifo)
        tag_map = self._check_tags(dict(tags or {}))
        q = sqs_queues.c
        with self._writing() as conn:
            existing = conn.execute(select(sqs_queues).where(q.account_id == account_id, q.name == name)).first()
            if existing is not None:
                queue = _queue(existing)
                if _differs(queue, given):
                    raise QueueNameExists(
                        "A queue already exists with the same name and a different value for attribute(s)"
                        f" {', '.join(sorted(attributes))}."
                    )
                return queue
            d = sqs_deleted_queues.c
            deleted = conn.execute(
                select(d.deleted_ms).where(d.account_id == account_id, d.name == name)
            ).scalar_one_or_none()
            if deleted is not None and now_ms < int(deleted) + REUSE_NAME_AFTER_MS:
                raise QueueDeletedRecently(
                    "You must wait 60 seconds after deleting a queue before you can create another with the same name."
                )
            self._check_redrive(conn, account_id, name, fifo, given)
            values: dict[str, object] = {column: default for column, _, _, default in _INT_ATTRIBUTES.values()}
            values.update(
                content_dedup=False,
                redrive_policy="",
                dlq_account="",
                dlq_name="",
                max_receive_count=0,
                redrive_allow_policy="",
            )
            values.update(given)
            values["extra"] = _kept_json({}, given.get("extra", {}))
            queue_id = secrets.token_hex(_TOKEN_BYTES)
            conn.execute(delete(sqs_deleted_queues).where(d.account_id == account_id, d.name == name))
            conn.execute(
                insert(sqs_queues).values(
                    queue_id=queue_id,
                    account_id=account_id,
                    name=name,
                    fifo=fifo,
                    tags=json.dumps(tag_map),
                    created_ms=now_ms,
                    modified_ms=now_ms,
                    purged_ms=0,
                    next_seq=1,
                    **values,
                )
            )
            return self._find(conn, account_id, name)

    def get_queue(self, account_id: str, name: str) -> Queue:
        """The queue (GetQueueUrl); :class:`QueueDoesNotExist` when there is none."""
        with self._journal.reader.connect() as conn:
            return self._find(conn, account_id, name)

    def delete_queue(self, account_id: str, name: str, *, now_ms: int) -> None:
        """Delete the queue and its messages; its name can be created again 60 s later."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            conn.execute(delete(sqs_messages).where(sqs_messages.c.queue_id == queue.queue_id))
            conn.execute(delete(sqs_dedup).where(sqs_dedup.c.queue_id == queue.queue_id))
            conn.execute(delete(sqs_queues).where(sqs_queues.c.queue_id == queue.queue_id))
            d = sqs_deleted_queues.c
            conn.execute(delete(sqs_deleted_queues).where(d.account_id == account_id, d.name == name))
            conn.execute(insert(sqs_deleted_queues).values(account_id=account_id, name=name, deleted_ms=now_ms))

    def purge_queue(self, account_id: str, name: str, *, now_ms: int) -> int:
        """Delete every message of the queue (once per 60 s: :class:`PurgeQueueInProgress`); how many."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            q = sqs_queues.c
            purged = conn.execute(select(q.purged_ms).where(q.queue_id == queue.queue_id)).scalar_one()
            if purged and now_ms < int(purged) + PURGE_INTERVAL_MS:
                raise PurgeQueueInProgress(f"Only one PurgeQueue operation on {name} is allowed every 60 seconds.")
            conn.execute(update(sqs_queues).where(q.queue_id == queue.queue_id).values(purged_ms=now_ms))
            return int(conn.execute(delete(sqs_messages).where(sqs_messages.c.queue_id == queue.queue_id)).rowcount)

    def list_queues(
        self, account_id: str, prefix: str = "", *, max_results: int | None = None, next_token: str | None = None
    ) -> QueuePage:
        """Queue names of the account starting with ``prefix`` (case-sensitive), by name; a page of
        ``max_results`` (1-1000) with a token for the next, or up to 1000 and no token without it."""
        _check_account(account_id)
        _check_max_results(max_results)
        if not isinstance(prefix, str) or len(prefix) > 80:
            raise InvalidParameterValue("Value for parameter QueueNamePrefix is invalid.")
        q = sqs_queues.c
        name = self._by_name()
        # Not LIKE: SQLite's is case-insensitive, and names are not.
        stmt = select(q.name).where(q.account_id == account_id, func.substr(q.name, 1, len(prefix)) == prefix)
        if next_token is not None:
            stmt = stmt.where(name > _decode_token(next_token))
        limit = max_results or 1000
        with self._journal.reader.connect() as conn:
            names = [str(n) for n in conn.execute(stmt.order_by(name).limit(limit + 1)).scalars()]
        more = len(names) > limit
        names = names[:limit]
        return QueuePage(names, _encode_token(names[-1]) if more and max_results is not None else None)

    def list_dead_letter_source_queues(
        self, account_id: str, name: str, *, max_results: int | None = None, next_token: str | None = None
    ) -> QueuePage:
        """Names of the queues whose RedrivePolicy targets this one, by name, paged like :meth:`list_queues`."""
        _check_max_results(max_results)
        q = sqs_queues.c
        with self._journal.reader.connect() as conn:
            self._find(conn, account_id, name)
            stmt = select(q.name).where(q.dlq_account == account_id, q.dlq_name == name, q.account_id == account_id)
            name_order = self._by_name()
            if next_token is not None:
                stmt = stmt.where(name_order > _decode_token(next_token))
            limit = max_results or 1000
            names = [str(n) for n in conn.execute(stmt.order_by(name_order).limit(limit + 1)).scalars()]
        more = len(names) > limit
        names = names[:limit]
        return QueuePage(names, _encode_token(names[-1]) if more and max_results is not None else None)

    def get_queue_attributes(
        self, account_id: str, name: str, names: Sequence[str] = ("All",), *, queue_arn: str, now_ms: int
    ) -> dict[str, str]:
        """The attributes asked for (``All`` for every one); ``queue_arn`` is the API's (it knows the region).

        Raises :class:`InvalidAttributeName` for a name that is not an attribute. FIFO-only attributes are
        left out for a standard queue, and the policies when unset, as SQS does.
        """
        for attribute in names:
            if attribute != "All" and attribute not in QUEUE_ATTRIBUTES:
                raise InvalidAttributeName(f"Unknown Attribute {attribute!s:.256}.")
        wanted = set(QUEUE_ATTRIBUTES) if "All" in names else set(names)
        m = sqs_messages.c
        with self._journal.reader.connect() as conn:
            queue = self._find(conn, account_id, name)
            values = queue.attributes()
            values["QueueArn"] = queue_arn
            if wanted & set(_COUNTS):
                live = and_(m.queue_id == queue.queue_id, m.retain_from_ms > now_ms - queue.retention_period * 1000)
                invisible = m.visible_ms > now_ms
                in_flight = and_(invisible, m.receipt_token != "")
                visible, not_visible, delayed = conn.execute(
                    select(
                        func.coalesce(func.sum(case((invisible, 0), else_=1)), 0),
                        func.coalesce(func.sum(case((in_flight, 1), else_=0)), 0),
                        func.coalesce(func.sum(case((and_(invisible, m.receipt_token == ""), 1), else_=0)), 0),
                    ).where(live)
                ).one()
                values.update(zip(_COUNTS, (str(int(visible)), str(int(not_visible)), str(int(delayed))), strict=True))
        return {key: value for key, value in values.items() if key in wanted}

    def set_queue_attributes(self, account_id: str, name: str, attributes: Mapping[str, str], *, now_ms: int) -> Queue:
        """Change the settable attributes given (FifoQueue cannot change; "" removes a redrive policy)."""
        attributes = dict(attributes)
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            if "FifoQueue" in attributes:
                raise InvalidAttributeName("FifoQueue can only be set when the queue is created.")
            values = _parse_attributes(attributes, fifo=queue.fifo)
            self._check_redrive(conn, account_id, name, queue.fifo, values)
            if "extra" in values:
                values["extra"] = _kept_json(queue.extra, values["extra"])
            if values:
                q = sqs_queues.c
                conn.execute(
                    update(sqs_queues).where(q.queue_id == queue.queue_id).values(modified_ms=now_ms, **values)
                )
            return self._find(conn, account_id, name)

    @staticmethod
    def _check_tags(tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > _MAX_TAGS:
            raise InvalidParameterValue(f"Too many tags: a queue can have at most {_MAX_TAGS}.")
        for key, value in tags.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
                raise InvalidParameterValue(f"Tag key {key!r:.140} is invalid.")
            if not isinstance(value, str) or len(value) > 256:
                raise InvalidParameterValue(f"The value of tag {key!r} is invalid.")
            if _BAD_CHARACTERS.search(key + value):
                raise InvalidParameterValue(f"Tag {key!r:.140} has characters outside the allowed set.")
        return tags

    def tag_queue(self, account_id: str, name: str, tags: Mapping[str, str]) -> None:
        """Add or replace tags (a queue has at most 50)."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            merged = self._check_tags({**queue.tags, **self._check_tags(dict(tags))})
            conn.execute(
                update(sqs_queues).where(sqs_queues.c.queue_id == queue.queue_id).values(tags=json.dumps(merged))
            )

    def untag_queue(self, account_id: str, name: str, keys: Sequence[str]) -> None:
        """Remove tags by key (keys that are not there are ignored)."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            kept = {k: v for k, v in queue.tags.items() if k not in set(keys)}
            conn.execute(
                update(sqs_queues).where(sqs_queues.c.queue_id == queue.queue_id).values(tags=json.dumps(kept))
            )

    def list_queue_tags(self, account_id: str, name: str) -> dict[str, str]:
        """The queue's tags."""
        return self.get_queue(account_id, name).tags

    # ---------------------------------------------------------------------------------------- sending

    def send_message(
        self, account_id: str, name: str, message: NewMessage, *, sender_id: str, now_ms: int
    ) -> SendResult:
        """Store one message, durably (committed before this returns); raises the error SQS gives."""
        with self._writing() as conn:
            queue, seq = self._reserve(conn, account_id, name, 1)
            return self._store(conn, queue, seq, _check_message(queue, message), sender_id=sender_id, now_ms=now_ms)

    def send_message_batch(
        self, account_id: str, name: str, entries: Sequence[tuple[str, NewMessage]], *, sender_id: str, now_ms: int
    ) -> list[SendResult | BatchError]:
        """Store up to 10 messages ``(id, message)`` in one transaction; per entry its result or error.

        The batch as a whole is refused for no entries, more than 10, bad or repeated ids, or more than
        1 MiB in all; an entry that is invalid on its own fails alone (BatchResultErrorEntry).
        """
        _check_batch([entry_id for entry_id, _ in entries])
        # Every entry counts, valid or not (an entry too large alone makes the batch too long, as in SQS).
        if sum(_rough_size(message) for _, message in entries) > MAX_BATCH_BYTES:
            raise BatchRequestTooLong(f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes.")
        with self._writing() as conn:
            queue, first_seq = self._reserve(conn, account_id, name, len(entries))
            checked: list[_Checked | BatchError] = []
            for entry_id, message in entries:
                try:
                    checked.append(_check_message(queue, message))
                except QueueError as exc:
                    checked.append(BatchError(entry_id, exc.code, exc.message, exc.sender_fault))
            return [
                c if isinstance(c, BatchError) else self._store(conn, queue, seq, c, sender_id=sender_id, now_ms=now_ms)
                for seq, c in enumerate(checked, start=first_seq)
            ]

    def _reserve(self, conn: Connection, account_id: str, name: str, count: int) -> tuple[Queue, int]:
        """The queue and the first of ``count`` sequence numbers taken for its new messages; the update
        locks the queue's row, so sends to one queue (and FIFO deduplication) are serial."""
        _check_account(account_id)
        if not _valid_name(name):
            raise QueueDoesNotExist("The specified queue does not exist.")
        q = sqs_queues.c
        row = conn.execute(
            update(sqs_queues)
            .where(q.account_id == account_id, q.name == name)
            .values(next_seq=q.next_seq + count)
            .returning(*sqs_queues.c)
        ).first()
        if row is None:
            raise QueueDoesNotExist("The specified queue does not exist.")
        return _queue(row), int(row.next_seq) - count

    def _store(
        self, conn: Connection, queue: Queue, seq: int, checked: _Checked, *, sender_id: str, now_ms: int
    ) -> SendResult:
        message = checked.message
        md5_body = md5_of_body(message.body)
        md5_attributes = md5_of_attributes(message.attributes)
        md5_system = md5_of_attributes(message.system_attributes)
        if queue.fifo:
            d = sqs_dedup.c
            seen = conn.execute(
                select(d.message_id, d.seq, d.created_ms).where(
                    d.queue_id == queue.queue_id, d.dedup_id == checked.dedup_key
                )
            ).first()
            if seen is not None and now_ms < int(seen.created_ms) + DEDUP_WINDOW_MS:
                sequence = _sequence_number(int(seen.seq))
                return SendResult(str(seen.message_id), md5_body, md5_attributes, md5_system, sequence, duplicate=True)
            if seen is not None:
                conn.execute(delete(sqs_dedup).where(d.queue_id == queue.queue_id, d.dedup_id == checked.dedup_key))
        message_id = str(uuid.uuid4())
        delay = queue.delay_seconds if message.delay_seconds is None else message.delay_seconds
        conn.execute(
            insert(sqs_messages).values(
                message_id=message_id,
                queue_id=queue.queue_id,
                seq=seq,
                body=checked.body,
                attributes=_encode_attributes(message.attributes),
                system_attributes=_encode_attributes(message.system_attributes),
                md5_body=md5_body,
                md5_attributes=md5_attributes,
                md5_system=md5_system,
                sender_id=sender_id,
                group_id=message.group_id or "",
                dedup_id=checked.dedup_id,
                sent_ms=now_ms,
                retain_from_ms=now_ms,
                visible_ms=now_ms + delay * 1000,
                first_receive_ms=0,
                receive_count=0,
                receipt_token="",
            )
        )
        if queue.fifo:
            conn.execute(
                insert(sqs_dedup).values(
                    queue_id=queue.queue_id,
                    dedup_id=checked.dedup_key,
                    message_id=message_id,
                    seq=seq,
                    created_ms=now_ms,
                )
            )
        return SendResult(message_id, md5_body, md5_attributes, md5_system, _sequence_number(seq) if queue.fifo else "")

    # -------------------------------------------------------------------------------------- receiving

    def _ready(self, queue: Queue, now_ms: int) -> Any:
        """The queue's messages a receive may take now, in order: visible and within retention; on a FIFO
        queue also not behind an invisible message of their group, nor in a group with one in flight."""
        m = sqs_messages.c
        live_after = now_ms - queue.retention_period * 1000
        stmt = select(sqs_messages).where(
            m.queue_id == queue.queue_id, m.visible_ms <= now_ms, m.retain_from_ms > live_after
        )
        if queue.fifo:
            other = sqs_messages.alias("other")
            o = other.c
            blocked = exists().where(
                o.queue_id == m.queue_id,
                o.group_id == m.group_id,
                o.visible_ms > now_ms,
                o.retain_from_ms > live_after,
                or_(o.receipt_token != "", o.seq < m.seq),
            )
            stmt = stmt.where(~blocked)
        return stmt.order_by(m.seq)

    def _next_visible(self, conn: Connection, queue: Queue, now_ms: int) -> int | None:
        m = sqs_messages.c
        value = conn.execute(
            select(func.min(m.visible_ms)).where(
                m.queue_id == queue.queue_id,
                m.visible_ms > now_ms,
                m.retain_from_ms > now_ms - queue.retention_period * 1000,
            )
        ).scalar()
        return None if value is None else int(value)

    def receive_messages(
        self,
        account_id: str,
        name: str,
        *,
        max_messages: int = 1,
        visibility_timeout: int | None = None,
        now_ms: int,
    ) -> Received:
        """Take up to ``max_messages`` (1-10) visible messages, invisible for ``visibility_timeout`` seconds
        (the queue's when ``None``), each with a fresh receipt handle; durably, in one transaction.

        A message already received the source queue's ``maxReceiveCount`` times is moved to the dead-letter
        queue instead (with its body, attributes, SentTimestamp and receive count; a FIFO message's retention
        starts again there, a standard message's does not, as SQS does). Expired messages of the queue are
        deleted. Answers what is visible now, and when the next invisible message will be.
        """
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not 1 <= max_messages <= 10:
            raise InvalidParameterValue(
                f"Value {max_messages!r:.20} for parameter MaxNumberOfMessages is invalid. Reason: Must be between"
                " 1 and 10, if provided."
            )
        if visibility_timeout is not None:
            _check_visibility(visibility_timeout)
        # A read first, so an idle poll takes no write lock (SQLite) and writes nothing.
        with self._journal.reader.connect() as conn:
            queue = self._find(conn, account_id, name)
            if conn.execute(self._ready(queue, now_ms).limit(1)).first() is None:
                return Received([], self._next_visible(conn, queue, now_ms))
        with self._writing() as conn:
            # A FIFO queue's receives are serial (its row locked): two pollers must not split a group.
            queue = self._find(conn, account_id, name, lock=queue.fifo)
            self._expire_queue(conn, queue, now_ms)
            ready = self._ready(queue, now_ms).limit(max_messages)
            if self._postgres:
                ready = ready.with_for_update(skip_locked=not queue.fifo)
            rows = conn.execute(ready).all()
            timeout = queue.visibility_timeout if visibility_timeout is None else visibility_timeout
            messages: list[Message] = []
            for row in rows:
                spent = queue.max_receive_count and int(row.receive_count) >= queue.max_receive_count
                if spent and self._redrive(conn, queue, row, now_ms):
                    continue
                messages.append(self._deliver(conn, queue, row, timeout, now_ms))
            return Received(messages, self._next_visible(conn, queue, now_ms))

    def _deliver(self, conn: Connection, queue: Queue, row: Row[Any], timeout: int, now_ms: int) -> Message:
        token = secrets.token_hex(_TOKEN_BYTES)
        first_receive = int(row.first_receive_ms) or now_ms
        count = int(row.receive_count) + 1
        m = sqs_messages.c
        conn.execute(
            update(sqs_messages)
            .where(m.message_id == row.message_id)
            .values(
                receive_count=count,
                first_receive_ms=first_receive,
                visible_ms=now_ms + timeout * 1000,
                receipt_token=token,
            )
        )
        attributes = {
            "SenderId": str(row.sender_id),
            "SentTimestamp": str(row.sent_ms),
            "ApproximateReceiveCount": str(count),
            "ApproximateFirstReceiveTimestamp": str(first_receive),
        }
        system = _decode_attributes(row.system_attributes)
        if "AWSTraceHeader" in system:
            attributes["AWSTraceHeader"] = str(system["AWSTraceHeader"].string_value)
        if row.group_id:
            attributes["MessageGroupId"] = str(row.group_id)
        if queue.fifo:
            attributes["MessageDeduplicationId"] = str(row.dedup_id)
            attributes["SequenceNumber"] = _sequence_number(int(row.seq))
        return Message(
            message_id=str(row.message_id),
            receipt_handle=_receipt_handle(queue.queue_id, str(row.message_id), token),
            body=bytes(row.body).decode("utf-8"),
            md5_of_body=str(row.md5_body),
            md5_of_attributes=str(row.md5_attributes),
            message_attributes=_decode_attributes(row.attributes),
            attributes=attributes,
        )

    def _redrive(self, conn: Connection, queue: Queue, row: Row[Any], now_ms: int) -> bool:
        """Move the message to the queue's dead-letter queue; ``False`` when that queue is gone (or changed
        kind), and the message is delivered as usual."""
        try:
            target, seq = self._reserve(conn, queue.dlq_account, queue.dlq_name, 1)
        except QueueDoesNotExist:
            return False
        if target.fifo != queue.fifo:
            return False
        m = sqs_messages.c
        conn.execute(
            update(sqs_messages)
            .where(m.message_id == row.message_id)
            .values(
                queue_id=target.queue_id,
                seq=seq,
                visible_ms=now_ms,
                receipt_token="",
                retain_from_ms=now_ms if queue.fifo else int(row.retain_from_ms),
            )
        )
        return True

    def _expire_queue(self, conn: Connection, queue: Queue, now_ms: int) -> None:
        m = sqs_messages.c
        expired = select(m.message_id).where(
            m.queue_id == queue.queue_id, m.retain_from_ms <= now_ms - queue.retention_period * 1000
        )
        if self._postgres:
            expired = expired.with_for_update(skip_locked=True)
        conn.execute(delete(sqs_messages).where(m.message_id.in_(expired.scalar_subquery())))

    # ------------------------------------------------------------------------- deleting and visibility

    def _handle_of(self, queue: Queue, receipt_handle: str) -> tuple[str, str]:
        """``(message_id, token)`` of a receipt handle of ``queue``'s."""
        queue_id, message_id, token = _parse_handle(receipt_handle)
        if queue_id != queue.queue_id:
            raise ReceiptHandleIsInvalid(
                f"The input receipt handle {receipt_handle[:100]!r} is not a valid receipt handle for this queue."
            )
        return message_id, token

    def _delete(self, conn: Connection, queue: Queue, receipt_handle: str) -> bool:
        message_id, token = self._handle_of(queue, receipt_handle)
        m = sqs_messages.c
        deleted = conn.execute(
            delete(sqs_messages).where(
                m.message_id == message_id, m.queue_id == queue.queue_id, m.receipt_token == token
            )
        ).rowcount
        return bool(deleted)

    def delete_message(self, account_id: str, name: str, receipt_handle: str) -> bool:
        """Delete the message received with ``receipt_handle``; whether it was deleted.

        A malformed handle, or one of another queue (or of an earlier queue of that name), raises
        :class:`ReceiptHandleIsInvalid`. A well-formed handle of a message already deleted (or expired), or
        superseded by a later receive of the message, succeeds and deletes nothing (``False``): SQS documents
        that an old handle "will succeed, but the message might not be deleted", and only the latest
        receiver's handle deleting keeps a slow consumer, whose visibility timeout ran out, from deleting a
        message another consumer is processing. The latest handle deletes even after the visibility timeout
        ran out, as long as nobody received the message since.
        """
        with self._writing() as conn:
            return self._delete(conn, self._find(conn, account_id, name), receipt_handle)

    def delete_message_batch(
        self, account_id: str, name: str, entries: Sequence[tuple[str, str]]
    ) -> list[str | BatchError]:
        """Delete up to 10 messages ``(id, receipt handle)`` in one transaction; per entry its id (success,
        as :meth:`delete_message` counts it) or its error."""
        _check_batch([entry_id for entry_id, _ in entries])
        results: list[str | BatchError] = []
        with self._writing() as conn:
            queue = self._find(conn, account_id, name)
            for entry_id, handle in entries:
                try:
                    self._delete(conn, queue, handle)
                    results.append(entry_id)
                except QueueError as exc:
                    results.append(BatchError(entry_id, exc.code, exc.message, exc.sender_fault))
        return results

    def _change(self, conn: Connection, queue: Queue, receipt_handle: str, timeout: object, now_ms: int) -> None:
        message_id, token = self._handle_of(queue, receipt_handle)
        seconds = _check_visibility(timeout)
        m = sqs_messages.c
        changed = conn.execute(
            update(sqs_messages)
            .where(
                m.message_id == message_id,
                m.queue_id == queue.queue_id,
                m.receipt_token == token,
                m.visible_ms > now_ms,
            )
            .values(visible_ms=now_ms + seconds * 1000)
        ).rowcount
        if changed:
            return
        current = conn.execute(
            select(m.receipt_token).where(m.message_id == message_id, m.queue_id == queue.queue_id)
        ).scalar_one_or_none()
        if current is None:
            raise _not_in_flight_visibility(message_id)
        if current != token:
            raise ReceiptHandleIsInvalid(f"The receipt handle {receipt_handle[:100]!r} has expired.")
        raise MessageNotInflight(f"Message {message_id} is not in flight.")

    def change_message_visibility(
        self, account_id: str, name: str, receipt_handle: str, visibility_timeout: int, *, now_ms: int
    ) -> None:
        """Make an in-flight message visible again ``visibility_timeout`` seconds (0-43200) from now.

        Raises :class:`MessageNotInflight` when its visibility timeout has run out already,
        :class:`ReceiptHandleIsInvalid` for a malformed handle or one superseded by a later receive, and
        :class:`InvalidParameterValue` (SQS's answer) when the message no longer exists.
        """
        with self._writing() as conn:
            self._change(conn, self._find(conn, account_id, name), receipt_handle, visibility_timeout, now_ms)

    def change_message_visibility_batch(
        self, account_id: str, name: str, entries: Sequence[tuple[str, str, int]], *, now_ms: int
    ) -> list[str | BatchError]:
        """:meth:`change_message_visibility` for up to 10 ``(id, receipt handle, timeout)``, one transaction;
        per entry its id or its error."""
        _check_batch([entry[0] for entry in entries])
        results: list[str | BatchError] = []
        with self._writing() as conn:
            queue = self._find(conn, account_id, name)
            for entry_id, handle, timeout in entries:
                try:
                    self._change(conn, queue, handle, timeout, now_ms)
                    results.append(entry_id)
                except QueueError as exc:
                    results.append(BatchError(entry_id, exc.code, exc.message, exc.sender_fault))
        return results

    # -------------------------------------------------------------------------------------- retention

    def expire(self, now_ms: int) -> int:
        """Delete every message past its queue's retention period, deduplication ids past their five
        minutes and deleted names past their 60 seconds; returns how many messages went."""
        m, q = sqs_messages.c, sqs_queues.c
        retention = select(q.retention_period).where(q.queue_id == m.queue_id).scalar_subquery()
        with self._writing() as conn:
            expired = int(
                conn.execute(delete(sqs_messages).where(m.retain_from_ms + retention * 1000 <= now_ms)).rowcount
            )
            conn.execute(delete(sqs_dedup).where(sqs_dedup.c.created_ms <= now_ms - DEDUP_WINDOW_MS))
            conn.execute(
                delete(sqs_deleted_queues).where(sqs_deleted_queues.c.deleted_ms <= now_ms - REUSE_NAME_AFTER_MS)
            )
        return expired
