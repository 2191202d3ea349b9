"""The queue store's hot statements, built once with bind parameters.

Building a SQLAlchemy Core statement and computing its cache key costs about 100 µs per statement in
Python, as much as SQLite takes to run it; a statement built once keeps its cache key, so executing it
again costs only the binding. Every statement a send, receive or delete runs is here; the store's rarer
ones (create, attributes, purge, listings) are built where they run.

Each takes its values as named bind parameters (the names are in each docstring); the store passes them.

Example::

    row = conn.execute(FIND_QUEUE, {"b_account": "000000000000", "b_name": "orders"}).first()
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select, update

from assignment.frontend.queues.tables import sqs_messages, sqs_queues

__all__ = [
    "DELETE_RECEIVED",
    "FIND_QUEUE",
    "FIND_QUEUE_FOR_UPDATE",
    "INSERT_MESSAGES",
    "MARK_RECEIVED",
    "NEXT_VISIBLE",
    "RESERVE_SEQ",
    "ready",
]

_q = sqs_queues.c
_m = sqs_messages.c

#: The queue row of (``b_account``, ``b_name``). (Bind names of insert/update statements cannot be column
#: names, so every statement here uses ``b_`` names.)
FIND_QUEUE = select(sqs_queues).where(_q.account_id == bindparam("b_account"), _q.name == bindparam("b_name"))
#: :data:`FIND_QUEUE`, locking the row (PostgreSQL).
FIND_QUEUE_FOR_UPDATE = FIND_QUEUE.with_for_update()

#: Takes ``b_count`` sequence numbers of queue (``b_account``, ``b_name``), returning its row (with the new
#: ``next_seq``); the update locks the row, so sends to one queue are serial.
RESERVE_SEQ = (
    update(sqs_queues)
    .where(_q.account_id == bindparam("b_account"), _q.name == bindparam("b_name"))
    .values(next_seq=_q.next_seq + bindparam("b_count"))
    .returning(*sqs_queues.c)
)

#: New message rows (executed with a list of rows, one statement for a batch).
INSERT_MESSAGES = insert(sqs_messages)

#: A received message's new state: ``b_id``, ``b_count``, ``b_first``, ``b_visible``, ``b_token``.
MARK_RECEIVED = (
    update(sqs_messages)
    .where(_m.message_id == bindparam("b_id"))
    .values(
        receive_count=bindparam("b_count"),
        first_receive_ms=bindparam("b_first"),
        visible_ms=bindparam("b_visible"),
        receipt_token=bindparam("b_token"),
    )
)

#: Deletes message ``b_id`` of ``b_queue_id`` if its receipt token is still ``b_token``; executed with a
#: list of them, one statement per batch (by primary key: a list of pairs in one ``IN`` makes SQLite scan
#: the queue).
DELETE_RECEIVED = delete(sqs_messages).where(
    _m.message_id == bindparam("b_id"),
    _m.queue_id == bindparam("b_queue_id"),
    _m.receipt_token == bindparam("b_token"),
)

#: When the next invisible, unexpired message of ``b_queue_id`` becomes visible (``b_now``, ``b_live_after``).
NEXT_VISIBLE = select(func.min(_m.visible_ms)).where(
    _m.queue_id == bindparam("b_queue_id"),
    _m.visible_ms > bindparam("b_now"),
    _m.retain_from_ms > bindparam("b_live_after"),
)


def _ready(fifo: bool, lock: str) -> Any:
    stmt = select(sqs_messages).where(
        _m.queue_id == bindparam("b_queue_id"),
        _m.visible_ms <= bindparam("b_now"),
        _m.retain_from_ms > bindparam("b_live_after"),
    )
    if fifo:
        other = sqs_messages.alias("other")
        o = other.c
        blocked = exists().where(
            o.queue_id == _m.queue_id,
            o.group_id == _m.group_id,
            o.visible_ms > bindparam("b_now"),
            o.retain_from_ms > bindparam("b_live_after"),
            or_(o.receipt_token != "", o.seq < _m.seq),
        )
        stmt = stmt.where(~blocked)
    stmt = stmt.order_by(_m.seq).limit(bindparam("b_limit"))
    if lock == "update":
        stmt = stmt.with_for_update()
    elif lock == "skip_locked":
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt


_READY = {(fifo, lock): _ready(fifo, lock) for fifo in (False, True) for lock in ("", "update", "skip_locked")}


def ready(*, fifo: bool, lock: str = "") -> Any:
    """The messages of ``b_queue_id`` a receive may take at ``b_now``, in order, at most ``b_limit``: visible and
    within retention (retained after ``b_live_after``); on a FIFO queue also not behind an invisible message
    of their group, nor in a group with one in flight. ``lock``: ``""``, ``"update"`` (``FOR UPDATE``) or
    ``"skip_locked"`` (``FOR UPDATE SKIP LOCKED``), for PostgreSQL."""
    return _READY[(fifo, lock)]
