"""Queue attributes: the stored :class:`Queue`, the attributes SQS knows, their parsing and validation, and
the limits of queues and messages.

Attribute values arrive as strings (as on the wire) and leave as the column values of ``sqs_queues``
(:func:`parse_attributes`); :meth:`Queue.attributes` turns them back into SQS's strings. Nothing here
touches the database: the store reads a row and builds a :class:`Queue` with :func:`queue_from_row`.

No attribute is kept without its effect. Those that need what Leasehold has not got are refused with
InvalidAttributeValue naming the attribute and why (the names are SQS's, so InvalidAttributeName would
say they do not exist): ``Policy`` (no resource policies; SigV4 keys decide), ``KmsMasterKeyId`` and
``KmsDataKeyReusePeriodSeconds`` (no KMS), ``SqsManagedSseEnabled`` ``true`` (messages are not encrypted at
rest). The one value that states what every queue here is, is taken: an empty Policy or KmsMasterKeyId,
SqsManagedSseEnabled ``false``; and GetQueueAttributes answers ``SqsManagedSseEnabled`` ``false`` for
every queue, where SQS answers ``true`` for a queue created since it encrypts by default. The FIFO
throughput settings are kept: DeduplicationScope has its effect; FifoThroughputLimit is a ceiling that
Leasehold does not enforce, so its values behave alike, but ``perMessageGroupId`` still needs
DeduplicationScope ``messageGroup``, as SQS documents; both read as SQS's defaults until set.

Example::

    values = parse_attributes({"VisibilityTimeout": "60", "RedrivePolicy": policy}, fifo=False)
    # {"visibility_timeout": 60, "redrive_policy": ..., "dlq_account": ..., "dlq_name": ..., ...}
    if differs(existing_queue, values):
        raise QueueNameExists("...")
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Row

from assignment.frontend.queues.errors import InvalidAttributeName, InvalidAttributeValue, InvalidParameterValue

__all__ = [
    "BAD_CHARACTERS",
    "COUNTS",
    "DEDUP_WINDOW_MS",
    "FIFO_NAME",
    "INT_ATTRIBUTES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "MAX_TAGS",
    "MAX_VISIBILITY_S",
    "PURGE_INTERVAL_MS",
    "QUEUE_ATTRIBUTES",
    "REUSE_NAME_AFTER_MS",
    "STANDARD_NAME",
    "Queue",
    "bool_attribute",
    "check_account",
    "default_throughput",
    "differs",
    "kept_json",
    "parse_arn",
    "parse_attributes",
    "queue_from_row",
    "valid_name",
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

#: The longest visibility timeout: 12 hours.
MAX_VISIBILITY_S = 43_200
#: A queue has at most 50 tags.
MAX_TAGS = 50
_DEFAULT_MAX_RECEIVE_COUNT = 10

_ACCOUNT = re.compile(r"[0-9]{12}")
STANDARD_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
FIFO_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")
_INTEGER = re.compile(r"-?[0-9]{1,12}")
#: Characters SQS refuses in a body or a string value (all but the W3C XML character set).
BAD_CHARACTERS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ARN = re.compile(r"arn:[a-z-]{1,32}:sqs:[a-z0-9-]{0,32}:([0-9]{12}):([A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)")


#: The queue attributes the store keeps, by name: (column, lowest, highest, default) of the integer ones.
INT_ATTRIBUTES: dict[str, tuple[str, int, int, int]] = {
    "DelaySeconds": ("delay_seconds", 0, 900, 0),
    "MaximumMessageSize": ("maximum_message_size", 1024, 1_048_576, 1_048_576),
    "MessageRetentionPeriod": ("retention_period", 60, 1_209_600, 345_600),
    "ReceiveMessageWaitTimeSeconds": ("receive_wait", 0, 20, 0),
    "VisibilityTimeout": ("visibility_timeout", 0, MAX_VISIBILITY_S, 30),
}
#: The FIFO throughput settings (FIFO queues only), kept in the ``extra`` column: the values each may take,
#: SQS's default first. DeduplicationScope ``messageGroup`` deduplicates ids within their group.
#: FifoThroughputLimit is a ceiling on throughput; Leasehold enforces none, so its two values behave alike,
#: but their rule holds: ``perMessageGroupId`` only with DeduplicationScope ``messageGroup``.
_THROUGHPUT: dict[str, tuple[str, ...]] = {
    "DeduplicationScope": ("queue", "messageGroup"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}
#: SQS attributes that need what Leasehold has not got, by name: the one value each takes (the state every
#: queue here is in; ``None`` for none) and why no other. A value that asks for an effect is refused rather
#: than kept without one.
_UNSUPPORTED: dict[str, tuple[str | None, str]] = {
    "Policy": (
        "",
        "Leasehold has no resource policies; who may use a queue is decided by the caller's SigV4 key.",
    ),
    "KmsMasterKeyId": ("", "Leasehold has no KMS; messages are stored unencrypted in the platform's database."),
    "KmsDataKeyReusePeriodSeconds": (None, "Leasehold has no KMS, so there is no data key to reuse."),
    "SqsManagedSseEnabled": (
        "false",
        "Leasehold does not encrypt messages at rest; they are stored in the platform's database as sent.",
    ),
}
_SETTABLE = (*INT_ATTRIBUTES, "RedrivePolicy", "RedriveAllowPolicy", "ContentBasedDeduplication", *_UNSUPPORTED)
COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
#: Every attribute GetQueueAttributes knows (besides ``All``).
QUEUE_ATTRIBUTES = (
    *_SETTABLE,
    *_THROUGHPUT,
    "FifoQueue",
    "QueueArn",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    *COUNTS,
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
    #: The FIFO throughput settings by SQS name, both of them on a FIFO queue (none on a standard one).
    extra: dict[str, str]
    tags: dict[str, str]
    created_ms: int
    modified_ms: int

    def attributes(self) -> dict[str, str]:
        """The stored attributes by SQS name, as strings (without the counts and QueueArn).

        SqsManagedSseEnabled is ``false`` on every queue: SQS encrypts new queues by default and answers
        ``true``, but messages here are not encrypted at rest, and the answer says so. Policy and the KMS
        attributes are left out, as SQS leaves them out of a queue that has none.
        """
        out = {name: str(getattr(self, column)) for name, (column, _, _, _) in INT_ATTRIBUTES.items()}
        out["CreatedTimestamp"] = str(self.created_ms // 1000)
        out["LastModifiedTimestamp"] = str(self.modified_ms // 1000)
        if self.redrive_policy:
            out["RedrivePolicy"] = self.redrive_policy
        if self.redrive_allow_policy:
            out["RedriveAllowPolicy"] = self.redrive_allow_policy
        if self.fifo:
            out["FifoQueue"] = "true"
            out["ContentBasedDeduplication"] = "true" if self.content_dedup else "false"
        out["SqsManagedSseEnabled"] = "false"
        out.update(self.extra)
        return out


def queue_from_row(row: Row[Any]) -> Queue:
    """A :class:`Queue` from a row of ``sqs_queues``."""
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
        extra=_throughput(bool(row.fifo), json.loads(row.extra)),
        tags=dict(json.loads(row.tags)),
        created_ms=int(row.created_ms),
        modified_ms=int(row.modified_ms),
    )


def default_throughput(fifo: bool) -> dict[str, str]:
    """The FIFO throughput settings of a new queue: SQS's defaults on a FIFO queue, none on a standard one."""
    return {name: values[0] for name, values in _THROUGHPUT.items()} if fifo else {}


def _throughput(fifo: bool, stored: Mapping[str, str]) -> dict[str, str]:
    # Rows written before these settings were filled in at creation lack them (they are the defaults), and
    # may hold attributes that were once kept without effect (Policy, SSE): those are not read back.
    return {**default_throughput(fifo), **{k: v for k, v in stored.items() if k in _THROUGHPUT and fifo}}


def bool_attribute(name: str, value: str) -> bool:
    """A ``true``/``false`` attribute (any case), or :class:`InvalidAttributeValue`."""
    if value.lower() not in ("true", "false"):
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.", attribute=name)
    return value.lower() == "true"


def parse_arn(value: object) -> tuple[str, str] | None:
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
    target = parse_arn(document.get("deadLetterTargetArn"))
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
        if not isinstance(arns, list) or not 1 <= len(arns) <= 10 or any(parse_arn(a) is None for a in arns):
            raise invalid
        return json.dumps({"redrivePermission": permission, "sourceQueueArns": arns}, separators=(",", ":"))
    if arns is not None:
        raise invalid
    return json.dumps({"redrivePermission": permission}, separators=(",", ":"))


def parse_attributes(attributes: Mapping[str, str], *, fifo: bool) -> dict[str, object]:
    """Settable attributes to their column values (only those given)."""
    values: dict[str, object] = {}
    for name, value in attributes.items():
        if not isinstance(value, str):
            raise InvalidAttributeValue(f"Invalid value for the parameter {name!s:.256}.", attribute=str(name))
        if name in INT_ATTRIBUTES:
            column, low, high, _ = INT_ATTRIBUTES[name]
            if not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.", attribute=name)
            values[column] = int(value)
        elif name == "RedrivePolicy":
            values.update(_redrive_policy(value))
        elif name == "RedriveAllowPolicy":
            values["redrive_allow_policy"] = _redrive_allow_policy(value)
        elif name == "ContentBasedDeduplication" and fifo:
            values["content_dedup"] = bool_attribute(name, value)
        elif name in _UNSUPPORTED:
            _check_unsupported(name, value)
        elif name in _THROUGHPUT and fifo:
            if value not in _THROUGHPUT[name]:
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.", attribute=name)
            extra = values.setdefault("extra", {})
            assert isinstance(extra, dict)
            extra[name] = value
        else:
            raise InvalidAttributeName(f"Unknown Attribute {name!s:.256}.")
    return values


def _refused(name: str, why: str) -> InvalidAttributeValue:
    return InvalidAttributeValue(f"Invalid value for the parameter {name}. Reason: {why}", attribute=name, reason=why)


def _check_unsupported(name: str, value: str) -> None:
    """Accept the one value of an unsupported attribute that states what the queue is; refuse any other
    with InvalidAttributeValue (the name is SQS's, so InvalidAttributeName, "does not exist", would be
    wrong: it is the value this platform cannot honour)."""
    accepted, why = _UNSUPPORTED[name]
    given = str(bool_attribute(name, value)).lower() if name == "SqsManagedSseEnabled" else value
    if given != accepted:
        raise _refused(name, why)


def differs(queue: Queue, given: Mapping[str, object]) -> bool:
    """Whether a given attribute (as :func:`parse_attributes` returns them) differs from the queue's."""
    for column, value in given.items():
        if column == "extra":
            assert isinstance(value, dict)
            if any(queue.extra.get(name) != kept for name, kept in value.items()):
                return True
        elif getattr(queue, column) != value:
            return True
    return False


def kept_json(current: Mapping[str, str], given: object) -> str:
    """The ``extra`` column: the ``current`` FIFO throughput settings with the ``given`` ones, refused
    (InvalidAttributeValue) when FifoThroughputLimit ``perMessageGroupId`` would stand without
    DeduplicationScope ``messageGroup``, whichever of the two the change sets."""
    assert isinstance(given, dict)
    merged = {**current, **given}
    if merged.get("FifoThroughputLimit") == "perMessageGroupId" and merged.get("DeduplicationScope") != "messageGroup":
        why = "FifoThroughputLimit perMessageGroupId is allowed only when DeduplicationScope is messageGroup."
        name = "DeduplicationScope" if "DeduplicationScope" in given else "FifoThroughputLimit"
        raise _refused(name, why)
    return json.dumps(merged)


def check_account(account_id: str) -> None:
    """Refuse anything but a 12-digit account id (:class:`InvalidParameterValue`)."""
    if not isinstance(account_id, str) or not _ACCOUNT.fullmatch(account_id):
        raise InvalidParameterValue(f"Invalid account id {account_id!r:.40}.")


def valid_name(name: object) -> bool:
    """Whether ``name`` is a well-formed standard or FIFO queue name."""
    return isinstance(name, str) and bool(STANDARD_NAME.fullmatch(name) or FIFO_NAME.fullmatch(name))
