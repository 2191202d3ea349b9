"""FIFO receive attempts: a retried ``ReceiveMessage`` with the same ``ReceiveRequestAttemptId`` gets the
same messages and receipt handles, as SQS documents.

A FIFO receive that names an attempt id records what it took (``sqs_receive_attempts``: each message's id,
receipt token and ``visible_ms``). A receive with that id within five minutes of the first replays it —
the same messages, handles and receive counts, their visibility timeout reset from now — while every one
of them is unchanged: not deleted, not received again, its visibility not changed, not expired. Otherwise
the receive runs afresh and its record replaces the old one. That is the retry SQS promises a consumer
whose response was lost: it neither loses the batch until the visibility timeout nor splits a group.

Example (inside the store's receive transaction)::

    rows = replay(conn, queue, attempt_id, now_ms, timeout_s)
    if rows is None:
        ...  # receive afresh, then record(conn, queue, attempt_id, now_ms, taken)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row

from assignment.frontend.queues.attributes import Queue
from assignment.frontend.queues.errors import InvalidParameterValue
from assignment.frontend.queues.tables import sqs_messages, sqs_receive_attempts

__all__ = ["ATTEMPT_WINDOW_MS", "check_attempt_id", "expire_attempts", "record", "replay"]

#: How long SQS honours a ReceiveRequestAttemptId after the receive that first used it.
ATTEMPT_WINDOW_MS = 5 * 60 * 1000
#: 1-128 alphanumerics and punctuation (printable ASCII without the space), as botocore's model documents.
_ATTEMPT_ID = re.compile(r"[!-~]{1,128}")

_a = sqs_receive_attempts.c
_m = sqs_messages.c


def check_attempt_id(queue: Queue, attempt_id: object) -> str:
    """The attempt id if it is well formed and the queue is FIFO; :class:`InvalidParameterValue` if not."""
    if not isinstance(attempt_id, str) or not _ATTEMPT_ID.fullmatch(attempt_id):
        raise InvalidParameterValue(f"Value {attempt_id!r:.140} for parameter ReceiveRequestAttemptId is invalid.")
    if not queue.fifo:
        raise InvalidParameterValue(
            "The request include parameter ReceiveRequestAttemptId that is not valid for this queue type."
        )
    return attempt_id


def replay(conn: Connection, queue: Queue, attempt_id: str, now_ms: int, timeout_s: int) -> list[Row[Any]] | None:
    """The message rows the attempt received, in order, made invisible for ``timeout_s`` from now — or
    ``None`` when there is no live record or one of its messages changed since (the receive runs afresh)."""
    found = conn.execute(
        select(_a.messages).where(
            _a.queue_id == queue.queue_id,
            _a.attempt_id == attempt_id,
            _a.created_ms > now_ms - ATTEMPT_WINDOW_MS,
        )
    ).scalar_one_or_none()
    if found is None:
        return None
    recorded: list[list[Any]] = json.loads(found)
    ids = [entry[0] for entry in recorded]
    live_after = now_ms - queue.retention_period * 1000
    rows = {
        row.message_id: row
        for row in conn.execute(
            select(sqs_messages).where(
                _m.queue_id == queue.queue_id, _m.message_id.in_(ids), _m.retain_from_ms > live_after
            )
        )
    }
    for message_id, token, visible_ms in recorded:
        row = rows.get(message_id)
        if row is None or row.receipt_token != token or int(row.visible_ms) != visible_ms:
            return None
    visible = now_ms + timeout_s * 1000
    conn.execute(
        update(sqs_messages).where(_m.queue_id == queue.queue_id, _m.message_id.in_(ids)).values(visible_ms=visible)
    )
    entries = [[message_id, token, visible] for message_id, token, _ in recorded]
    conn.execute(
        update(sqs_receive_attempts)
        .where(_a.queue_id == queue.queue_id, _a.attempt_id == attempt_id)
        .values(messages=json.dumps(entries))
    )
    return [rows[message_id] for message_id in ids]


def record(conn: Connection, queue: Queue, attempt_id: str, now_ms: int, taken: Sequence[tuple[str, str, int]]) -> None:
    """Remember what a fresh receive of the attempt took (``(message id, receipt token, visible_ms)`` in
    order), replacing an earlier record of the id; an empty receive leaves none (a retry receives afresh)."""
    conn.execute(delete(sqs_receive_attempts).where(_a.queue_id == queue.queue_id, _a.attempt_id == attempt_id))
    if taken:
        conn.execute(
            insert(sqs_receive_attempts).values(
                queue_id=queue.queue_id,
                attempt_id=attempt_id,
                created_ms=now_ms,
                messages=json.dumps([list(entry) for entry in taken]),
            )
        )


def expire_attempts(conn: Connection, now_ms: int, queue_id: str | None = None) -> None:
    """Forget the attempts past their five minutes (or every attempt of ``queue_id``, a deleted queue)."""
    where = _a.queue_id == queue_id if queue_id is not None else _a.created_ms <= now_ms - ATTEMPT_WINDOW_MS
    conn.execute(delete(sqs_receive_attempts).where(where))
