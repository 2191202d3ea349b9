"""Messages: the values a send takes and a receive returns, their validation and MD5s, receipt handles and
the rules of batches (pure functions; no database).

:func:`check_message` validates a :class:`NewMessage` for a queue as SQS does and gives what the store
writes (:class:`CheckedMessage`); :func:`md5_of_body` and :func:`md5_of_attributes` are SQS's digests; a
receipt handle (:func:`make_receipt_handle`) packs the queue id, the message id and the token of the
receive that handed it out, so a handle of another queue or of an earlier receive is told apart.

Example::

    checked = check_message(queue, NewMessage("hello", attributes={"kind": MessageAttribute("String", "a")}))
    assert md5_of_body("hello") == "5d41402abc4b2a76b9719d911017c592"
    handle = make_receipt_handle(queue.queue_id, message_id, token)
    assert parse_receipt_handle(handle) == (queue.queue_id, message_id, token)
"""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import json
import re
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from assignment.frontend.queues.attributes import BAD_CHARACTERS, MAX_BATCH_ENTRIES, MAX_VISIBILITY_S, Queue
from assignment.frontend.queues.errors import (
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    ReceiptHandleIsInvalid,
    TooManyEntriesInBatchRequest,
)

__all__ = [
    "TOKEN_BYTES",
    "BatchError",
    "CheckedMessage",
    "Message",
    "MessageAttribute",
    "NewMessage",
    "Received",
    "SendResult",
    "check_batch",
    "check_message",
    "check_visibility",
    "decode_attributes",
    "encode_attributes",
    "format_sequence_number",
    "make_receipt_handle",
    "md5_of_attributes",
    "md5_of_body",
    "not_in_flight_visibility",
    "parse_receipt_handle",
    "rough_size",
]

_MAX_MESSAGE_ATTRIBUTES = 10
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
#: MessageGroupId and MessageDeduplicationId: 1-128 of alphanumerics and punctuation (printable ASCII).
_GROUP_OR_DEDUP_ID = re.compile(r"[!-~]{1,128}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.-]+)?")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_RECEIPT_HANDLE = re.compile(r"[A-Za-z0-9_-]{66}")
_HANDLE_VERSION = 1
#: Random bytes of a queue id and of a receipt token (a receipt handle carries both).
TOKEN_BYTES = 16


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
    """A receive's messages and, when there are none, when the queue's next invisible message becomes
    visible (``None`` when there is none, or when messages were returned), so a long poll can sleep until
    then or until a send wakes it."""

    messages: list[Message]
    next_visible_ms: int | None


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
    bad = BAD_CHARACTERS.search(text)
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


def rough_size(message: object) -> int:
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
class CheckedMessage:
    """A validated message, ready to store."""

    message: NewMessage
    body: bytes
    size: int
    dedup_id: str
    #: What ``sqs_dedup`` is keyed by: the id, or with DeduplicationScope ``messageGroup`` a hash of the
    #: group and the id ("" on standard queues).
    dedup_key: str


def check_message(queue: Queue, message: NewMessage) -> CheckedMessage:
    """Validate ``message`` for ``queue``; raises the error SQS gives."""
    if not isinstance(message, NewMessage):
        raise InvalidParameterValue("A message must be a NewMessage.")
    if not isinstance(message.body, str) or not message.body:
        raise MissingParameter("The request must contain the parameter MessageBody.")
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
        return CheckedMessage(message, body, size, "", "")
    if message.group_id is None:
        raise MissingParameter("The request must contain the parameter MessageGroupId.")
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
    return CheckedMessage(message, body, size, dedup_id, key)


def encode_attributes(attributes: Mapping[str, MessageAttribute]) -> str:
    """Message attributes as the JSON text ``sqs_messages`` keeps (binary values in base64)."""
    return json.dumps(
        {
            name: [a.data_type, "b", base64.b64encode(a.binary_value).decode()]
            if a.binary_value is not None
            else [a.data_type, "s", a.string_value]
            for name, a in attributes.items()
        },
        ensure_ascii=False,
    )


def decode_attributes(text: str) -> dict[str, MessageAttribute]:
    """The message attributes :func:`encode_attributes` wrote."""
    out: dict[str, MessageAttribute] = {}
    for name, (data_type, kind, value) in json.loads(text).items():
        if kind == "b":
            out[name] = MessageAttribute(data_type, binary_value=base64.b64decode(value))
        else:
            out[name] = MessageAttribute(data_type, string_value=value)
    return out


def make_receipt_handle(queue_id: str, message_id: str, token: str) -> str:
    """A receipt handle: version, queue id, message id and receive token, base64url without padding."""
    raw = bytes([_HANDLE_VERSION]) + bytes.fromhex(queue_id) + uuid.UUID(message_id).bytes + bytes.fromhex(token)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_receipt_handle(handle: object) -> tuple[str, str, str]:
    """``(queue_id, message_id, token)`` of a receipt handle; :class:`ReceiptHandleIsInvalid` if malformed."""
    invalid = ReceiptHandleIsInvalid(f"The input receipt handle {str(handle)[:100]!r} is not a valid receipt handle.")
    if not isinstance(handle, str) or not _RECEIPT_HANDLE.fullmatch(handle):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(handle + "==")
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits only base64url
        raise invalid from None
    if len(raw) != 1 + 3 * TOKEN_BYTES or raw[0] != _HANDLE_VERSION:
        raise invalid
    return raw[1:17].hex(), str(uuid.UUID(bytes=raw[17:33])), raw[33:].hex()


def format_sequence_number(seq: int) -> str:
    """A FIFO SequenceNumber: 20 digits, increasing per queue."""
    return f"{seq:020d}"


def check_batch(ids: Sequence[str]) -> None:
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


def check_visibility(timeout: object) -> int:
    """A visibility timeout of 0-43200 seconds, or :class:`InvalidParameterValue`."""
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 <= timeout <= MAX_VISIBILITY_S:
        raise InvalidParameterValue(
            f"Value {timeout!r:.20} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200."
        )
    return timeout


def not_in_flight_visibility(message_id: str) -> InvalidParameterValue:
    """SQS's answer to a visibility change of a message that no longer exists."""
    return InvalidParameterValue(
        f"Value for parameter ReceiptHandle is invalid. Reason: Message {message_id} does not exist or is not"
        " available for visibility timeout change."
    )
