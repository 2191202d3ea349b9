"""What a function sees of an SQS batch, and what its answer means: pure functions, no I/O.

* :func:`sqs_record` turns a received message into a record of AWS's SQS event (``messageId``,
  ``receiptHandle``, ``body``, ``attributes`` — ApproximateReceiveCount, SentTimestamp, SenderId,
  ApproximateFirstReceiveTimestamp and, for FIFO, MessageGroupId, MessageDeduplicationId, SequenceNumber —,
  ``messageAttributes`` in the event's own form ``{stringValue, binaryValue, stringListValues,
  binaryListValues, dataType}``, ``md5OfBody``, ``md5OfMessageAttributes`` when there are attributes,
  ``eventSource`` ``aws:sqs``, ``eventSourceARN``, ``awsRegion``); :func:`sqs_event` is ``{"Records": [...]}``.
* :func:`failed_items` reads a function's answer to a batch as AWS documents for partial batch responses
  (``FunctionResponseTypes: ["ReportBatchItemFailures"]``): ``None``, ``{}``, or a missing, null or empty
  ``batchItemFailures`` is full success; a list of ``{"itemIdentifier": <messageId of the batch>}`` fails
  those; anything else — not JSON, not an object, an entry without ``itemIdentifier``, a null or empty
  one, an id that is not in the batch — fails the whole batch. Without ReportBatchItemFailures any answer
  that is not a function error is full success.

Example::

    payload = sqs_event([sqs_record(m, source_arn=arn, region="us-east-1") for m in messages])
    failed = failed_items(result.payload, {m.message_id for m in messages}, report=True)  # ALL or a set
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Sequence
from typing import Any, Final

from assignment.frontend.queues import Message, MessageAttribute

__all__ = ["ALL", "failed_items", "sqs_event", "sqs_record"]

#: The whole batch failed.
ALL: Final = "ALL"


def _attribute(attribute: MessageAttribute) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attribute.string_value is not None:
        out["stringValue"] = attribute.string_value
    if attribute.binary_value is not None:
        out["binaryValue"] = base64.b64encode(attribute.binary_value).decode("ascii")
    out["stringListValues"] = []
    out["binaryListValues"] = []
    out["dataType"] = attribute.data_type
    return out


def sqs_record(message: Message, *, source_arn: str, region: str) -> dict[str, Any]:
    """One record of AWS's SQS event for ``message``, received from the queue ``source_arn``."""
    record: dict[str, Any] = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": dict(message.attributes),
        "messageAttributes": {name: _attribute(value) for name, value in message.message_attributes.items()},
        "md5OfBody": message.md5_of_body,
    }
    if message.message_attributes:
        record["md5OfMessageAttributes"] = message.md5_of_attributes
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = source_arn
    record["awsRegion"] = region
    return record


def sqs_event(records: Sequence[dict[str, Any]]) -> bytes:
    """The event payload of a batch."""
    return json.dumps({"Records": list(records)}, separators=(",", ":")).encode()


def failed_items(payload: bytes, batch_ids: Collection[str], *, report: bool) -> frozenset[str] | str:
    """The ids of the batch that failed (an empty set: none), or :data:`ALL`; ``payload`` is the answer
    of an invocation that was not a function error."""
    if not report:
        return frozenset()
    try:
        answer = json.loads(payload) if payload.strip() else None
    except (UnicodeDecodeError, ValueError):
        return ALL
    if answer is None:
        return frozenset()
    if not isinstance(answer, dict):
        return ALL
    failures = answer.get("batchItemFailures")
    if failures is None:
        return frozenset()
    if not isinstance(failures, list):
        return ALL
    failed: set[str] = set()
    for entry in failures:
        if not isinstance(entry, dict):
            return ALL
        item = entry.get("itemIdentifier")
        if not isinstance(item, str) or not item or item not in batch_ids:
            return ALL
        failed.add(item)
    return frozenset(failed)
