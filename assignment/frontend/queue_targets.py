"""SQS queues as targets of asynchronous invocations: a function's dead-letter queue (``DeadLetterConfig``)
and the on-success / on-failure destinations (``DestinationConfig``) that name a queue.

:func:`parse_queue_arn` reads ``arn:aws:sqs:<region>:<account>:<name>``; :class:`QueueTargets` checks, when a
target is configured, that it is a standard queue of this frontend's account and region that exists
(else :class:`UnusableTarget`, an ``InvalidParameterValueException`` that carries the field, the ARN and
why); :func:`dead_letter_message` and :func:`record_message` build what is sent: the event payload with
AWS's three DLQ attributes, or the destination record as JSON. The event store sends them in the
transaction that settles the event (:mod:`assignment.frontend.event_store`).

Example::

    targets = QueueTargets(QueueStore(journal), account_id="000000000000", region="us-east-1")
    arn = "arn:aws:sqs:us-east-1:000000000000:failed-orders"
    targets.check(arn, field="DeadLetterConfig.TargetArn")          # UnusableTarget unless the queue exists
    message = dead_letter_message(request_id, 200, "boom", b'{"order": 1}')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from assignment.frontend.event_store import ERROR_MESSAGE_BYTES, truncate_utf8
from assignment.frontend.queues import MessageAttribute, NewMessage, QueueDoesNotExist, QueueStore
from assignment.frontend.types import InvalidParameterValueException

__all__ = [
    "QueueTarget",
    "QueueTargets",
    "UnusableTarget",
    "Why",
    "dead_letter_message",
    "parse_queue_arn",
    "record_message",
]

#: Why a target is refused: not an ARN Leasehold can send to, an SNS topic (Leasehold has none), a queue
#: of another account or region, a FIFO queue (Lambda sends to standard queues only), no such queue.
Why = Literal["malformed", "sns", "elsewhere", "fifo", "no_queue"]

_SQS_ARN = re.compile(r"arn:aws[a-zA-Z-]*:sqs:([a-z0-9-]{1,32}):([0-9]{12}):([A-Za-z0-9_-]{1,80}(?:\.fifo)?)")
_SNS_ARN = re.compile(r"arn:aws[a-zA-Z-]*:sns:.*")


@dataclass(frozen=True, slots=True)
class QueueTarget:
    """A queue an ARN names."""

    region: str
    account_id: str
    name: str

    @property
    def fifo(self) -> bool:
        """Whether the name is a FIFO queue's."""
        return self.name.endswith(".fifo")


def parse_queue_arn(arn: str) -> QueueTarget | None:
    """The queue ``arn`` names, or ``None`` when it is no SQS queue ARN."""
    match = _SQS_ARN.fullmatch(arn)
    return None if match is None else QueueTarget(match.group(1), match.group(2), match.group(3))


class UnusableTarget(InvalidParameterValueException):
    """A configured target Leasehold cannot send to: ``field`` names the request field, ``why`` the reason."""

    def __init__(self, field: str, arn: str, why: Why, *, account_id: str, region: str) -> None:
        self.field = field
        self.arn = arn
        self.why: Why = why
        shown = arn[:400]
        messages: dict[Why, str] = {
            "malformed": f"{field} {shown} is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)",
            "sns": f"{field} {shown} is an SNS topic; Leasehold has no SNS: use an SQS queue ARN",
            "elsewhere": f"{field} {shown} is not a queue of account {account_id} in region {region}",
            "fifo": f"{field} {shown} is a FIFO queue; only standard queues can be targets",
            "no_queue": f"The provided target ARN does not exist: {field} {shown} names no queue",
        }
        super().__init__(messages[why])


class QueueTargets:
    """Checks queue targets against the queues of one account and region (synchronous: call in a thread)."""

    def __init__(self, store: QueueStore, *, account_id: str, region: str) -> None:
        self.store = store
        self.account_id = account_id
        self.region = region

    def check(self, arn: str, *, field: str) -> QueueTarget:
        """The queue ``arn`` names; :class:`UnusableTarget` unless it is an existing standard queue here."""
        target = parse_queue_arn(arn)
        if target is None:
            why: Why = "sns" if _SNS_ARN.fullmatch(arn) else "malformed"
            raise UnusableTarget(field, arn, why, account_id=self.account_id, region=self.region)
        if (target.account_id, target.region) != (self.account_id, self.region):
            raise UnusableTarget(field, arn, "elsewhere", account_id=self.account_id, region=self.region)
        if target.fifo:
            raise UnusableTarget(field, arn, "fifo", account_id=self.account_id, region=self.region)
        try:
            self.store.get_queue(target.account_id, target.name)
        except QueueDoesNotExist:
            raise UnusableTarget(field, arn, "no_queue", account_id=self.account_id, region=self.region) from None
        return target


def dead_letter_message(request_id: str, error_code: int, error_message: str, payload: bytes) -> NewMessage:
    """What a dead-letter queue receives: the event payload unchanged as the body (UTF-8; a payload that is
    not is refused by the queue), and AWS's attributes ``RequestID`` (String), ``ErrorCode`` (Number, the
    HTTP status) and ``ErrorMessage`` (String, the first 1 KB).

    Raises :class:`UnicodeDecodeError` for a payload that is not UTF-8 (no SQS body can hold it).
    """
    attributes = {
        "RequestID": MessageAttribute("String", request_id),
        "ErrorCode": MessageAttribute("Number", str(error_code)),
    }
    # SQS refuses an empty string value: a failure without a message has no ErrorMessage attribute.
    message = truncate_utf8(error_message, ERROR_MESSAGE_BYTES)
    if message:
        attributes["ErrorMessage"] = MessageAttribute("String", message)
    return NewMessage(payload.decode("utf-8"), attributes=attributes)


def record_message(record: dict[str, object]) -> NewMessage:
    """What a destination queue receives: the destination record as JSON, without attributes."""
    return NewMessage(json.dumps(record, separators=(",", ":")))
