"""The event queue's tables and their transactions (synchronous SQLAlchemy Core; no asyncio here).

:class:`EventStore` is what :mod:`assignment.frontend.events` runs in worker threads: accept events
(deduplicated by request id), claim due events with a lease, renew and settle claims, keep dead letters
and forget finished events after the dedupe window. Every write is one transaction on the journal's
``writer`` engine (SQLite ``BEGIN IMMEDIATE``, so writers serialise; PostgreSQL claims with
``SELECT ... FOR UPDATE SKIP LOCKED``, so pollers on several hosts never take the same row).

A claim is identified by ``(request_id, claim_token)``: every settle is conditional on the row still
carrying the claim's token, so a poller whose claim expired and was taken over writes nothing.

A settle also sends the event's queue messages (:class:`QueueSend`: a dead-letter queue's message, a
destination record) through the :class:`~assignment.frontend.queues.QueueStore` on the same database, in
the settle's transaction: the event is finished if and only if its messages are stored, so a crash can
neither lose them nor send them twice. A message a queue refuses (the queue was deleted, the message is
too large for it, the payload is no text) makes the settle keep the event's dead letter instead.

Example::

    store = EventStore(journal)
    [accepted] = store.insert_many([NewEvent("echo", "$LATEST", b"{}", "7f1c...", now_ms)])
    claims, next_due_ms = store.claim("poller-1", limit=8, lease_ms=30_000, now_ms=now_ms)
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from assignment.frontend.queues import NewMessage, QueueError, QueueStore
from assignment.frontend.types import InvalidParameterValueException, RequestTooLargeException
from journal.store import Journal

__all__ = [
    "ERROR_MESSAGE_BYTES",
    "MAX_EVENT_PAYLOAD_BYTES",
    "Claim",
    "DeadLetter",
    "EventStore",
    "NewEvent",
    "QueueSend",
    "Settle",
    "check_event",
    "dead_letter_json",
    "event_dead_letters",
    "event_queue",
    "truncate_utf8",
]

log = logging.getLogger("leasehold.events")

#: The largest asynchronous payload accepted: 1 MiB (1,048,576 bytes), AWS's async limit.
MAX_EVENT_PAYLOAD_BYTES = 1024 * 1024
#: How much of an error message a dead letter keeps: the first 1 KB (1024 bytes of UTF-8).
ERROR_MESSAGE_BYTES = 1024
_ERROR_TYPE_CHARS = 128

#: AWS's function name (1-64 of letters, digits, ``-`` and ``_``); the queue stores resolved names.
_FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: ``$LATEST``, a version number or an alias (1-128 of letters, digits, ``-`` and ``_``); "" = unqualified.
_QUALIFIER = re.compile(r"\$LATEST|[A-Za-z0-9_-]{1,128}|")
#: Request ids are UUIDs in practice; anything of 1-64 letters, digits, ``-``, ``_``, ``.``, ``:``.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

QUEUED, DONE, FAILED = "queued", "done", "failed"

_metadata = MetaData()
event_queue = Table(
    "event_queue",
    _metadata,
    Column("request_id", String(64), primary_key=True),
    Column("function", String(64), nullable=False),
    Column("qualifier", String(128), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("state", String(8), nullable=False),
    Column("enqueued_ms", BigInteger, nullable=False),
    Column("next_run_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("function_errors", Integer, nullable=False),
    Column("throttles", Integer, nullable=False),
    Column("claimed_by", String(64), nullable=False),
    Column("claim_token", String(32), nullable=False),
    Column("claimed_until_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=False),
    Column("last_error_type", String(128), nullable=False),
    Column("last_error", String(1024), nullable=False),
)
event_dead_letters = Table(
    "event_dead_letters",
    _metadata,
    Column("request_id", String(64), primary_key=True),
    Column("function", String(64), nullable=False),
    Column("qualifier", String(128), nullable=False),
    Column("condition", String(32), nullable=False),
    Column("error_type", String(128), nullable=False),
    Column("error_message", String(1024), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
)


# Plain SQL (the same on SQLite and PostgreSQL but for the placeholder), one statement per batch: the
# hot path of every accept. RETURNING tells which rows went in (rowcount says nothing about which).
_INSERT_HEAD = (
    "INSERT INTO event_queue (request_id, function, qualifier, payload, state, enqueued_ms, next_run_ms, attempts,"
    " function_errors, throttles, claimed_by, claim_token, claimed_until_ms, finished_ms, last_error_type, last_error)"
    " VALUES "
)
_INSERT_ROW = "({p}, {p}, {p}, {p}, 'queued', {p}, {p}, 0, 0, 0, '', '', 0, 0, '', '')"
_INSERT_TAIL = " ON CONFLICT (request_id) DO NOTHING RETURNING request_id"


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int, placeholder: str) -> str:
    return _INSERT_HEAD + ", ".join([_INSERT_ROW.format(p=placeholder)] * rows) + _INSERT_TAIL


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``max_bytes`` (never splits a character)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")


def check_event(function: object, qualifier: object, payload: object, request_id: object) -> None:
    """Validate an event before it is queued.

    Raises :class:`TypeError` for wrong types, :class:`~assignment.frontend.types.RequestTooLargeException`
    for a payload over :data:`MAX_EVENT_PAYLOAD_BYTES` and
    :class:`~assignment.frontend.types.InvalidParameterValueException` for a bad function name, qualifier
    or request id.
    """
    if not isinstance(payload, bytes):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    for name, value in (("function", function), ("qualifier", qualifier), ("request_id", request_id)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    assert isinstance(function, str)
    assert isinstance(qualifier, str)
    assert isinstance(request_id, str)
    if len(payload) > MAX_EVENT_PAYLOAD_BYTES:
        raise RequestTooLargeException(
            f"{len(payload)} byte payload is over the asynchronous limit of {MAX_EVENT_PAYLOAD_BYTES} bytes"
        )
    if not _FUNCTION.fullmatch(function):
        raise InvalidParameterValueException(f"invalid function name {function!r:.80}")
    if not _QUALIFIER.fullmatch(qualifier):
        raise InvalidParameterValueException(f"invalid qualifier {qualifier!r:.80}")
    if not _REQUEST_ID.fullmatch(request_id):
        raise InvalidParameterValueException(f"invalid request id {request_id!r:.80}")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to queue (validated with :func:`check_event`), due at ``next_run_ms``."""

    function: str
    qualifier: str
    payload: bytes
    request_id: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A queued event claimed by one poller; valid while the row carries ``token``."""

    request_id: str
    function: str
    qualifier: str
    payload: bytes
    enqueued_ms: int
    #: Attempts counted so far, including this claim's.
    attempts: int
    function_errors: int
    throttles: int
    token: str
    #: The latest error that held the event back ("" when none).
    last_error_type: str = ""
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that failed for good, as kept in ``event_dead_letters``."""

    request_id: str
    function: str
    qualifier: str
    condition: str
    error_type: str
    error_message: str
    attempts: int
    time_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class QueueSend:
    """A message for an SQS queue of the account, sent in the settle's transaction; ``purpose`` names it in
    the logs (``dead_letter_queue``, ``on_failure``, ``on_success``)."""

    account_id: str
    queue: str
    message: NewMessage
    sender_id: str
    purpose: str


@dataclass(frozen=True, slots=True)
class Settle:
    """How a claim ends: the row's new counters and state, and what else the same transaction writes.

    ``state`` ``queued`` puts the event back, due at ``next_run_ms``; ``done``/``failed`` finish it.
    ``follow_up`` (a destination invocation) is queued and ``sends`` are sent atomically with it.
    ``dead_letter`` is stored when there are no ``sends``, or when a queue refused one of them (so a
    failed event whose queue is gone ends in the dead-letter store, never nowhere).
    """

    state: str
    attempts: int
    function_errors: int
    throttles: int
    next_run_ms: int
    now_ms: int
    dead_letter: DeadLetter | None = None
    follow_up: NewEvent | None = None
    sends: tuple[QueueSend, ...] = ()
    #: The error that made a retry necessary (kept for a later dead letter); "" keeps the previous one.
    error_type: str = ""
    error_message: str = ""


def dead_letter_json(letter: DeadLetter) -> dict[str, object]:
    """A dead letter as JSON-able data (``payload`` a string if it is UTF-8, else base64)."""
    try:
        payload, encoding = letter.payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(letter.payload).decode("ascii"), "base64"
    return {
        "request_id": letter.request_id,
        "function": letter.function,
        "qualifier": letter.qualifier,
        "condition": letter.condition,
        "error_type": letter.error_type,
        "error_message": letter.error_message,
        "attempts": letter.attempts,
        "time_ms": letter.time_ms,
        "payload": payload,
        "payload_encoding": encoding,
    }


class EventStore:
    """The event queue's transactions on a journal's database; thread-safe (one transaction per call)."""

    def __init__(self, journal: Journal, queues: QueueStore | None = None) -> None:
        """``queues``: the SQS queues (on ``journal``'s database) settles send to; without it, every
        :class:`QueueSend` is refused (and the dead letter kept)."""
        self._journal = journal
        self.queues = queues
        self._postgres = journal.backend == "postgresql"
        # SQLite: this process's writers wait for each other here, woken at once, rather than in SQLite's
        # busy handler, which sleeps (1, 2, 5, 10 ms...) between tries. Other processes still use it.

    def _writing(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction (SQLite ``BEGIN IMMEDIATE``, this process's writers in turn)."""
        return self._journal.writing()

    def _insert_ignore(self, conn: Connection, events: list[NewEvent]) -> list[bool]:
        """Insert the events whose request id is new, in one statement; per event whether it went in."""
        first: dict[str, NewEvent] = {}
        for event in events:
            first.setdefault(event.request_id, event)
        if not first:
            return []
        params: list[object] = []
        for event in first.values():
            params += (event.request_id, event.function, event.qualifier, event.payload, event.now_ms, event.now_ms)
        sql = _insert_sql(len(first), "%s" if self._postgres else "?")
        inserted = {str(row[0]) for row in conn.exec_driver_sql(sql, tuple(params))}
        # Only the first of several events with one new request id went in.
        return [event.request_id in inserted and first[event.request_id] is event for event in events]

    def insert_in(self, conn: Connection, events: list[NewEvent]) -> list[bool]:
        """Queue ``events`` in the caller's write transaction ``conn`` (on this store's journal), so they
        commit or roll back with the caller's own writes (a schedule firing); as :meth:`insert_many`."""
        return self._insert_ignore(conn, events)

    def insert_many(self, events: list[NewEvent]) -> list[bool]:
        """Queue ``events`` in one transaction; per event, ``False`` when its request id is already known."""
        with self._writing() as conn:
            return self._insert_ignore(conn, events)

    def depth(self, function: str | None = None) -> int:
        """Events accepted and not yet finished (queued, waiting for a retry, or running)."""
        q = event_queue.c
        stmt = select(func.count()).select_from(event_queue).where(q.state == QUEUED)
        if function is not None:
            stmt = stmt.where(q.function == function)
        with self._journal.reader.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def state_of(self, request_id: str) -> str | None:
        """The state of one event (``queued``, ``done``, ``failed``) or ``None`` when unknown (or forgotten)."""
        q = event_queue.c
        with self._journal.reader.connect() as conn:
            value = conn.execute(select(q.state).where(q.request_id == request_id)).scalar_one_or_none()
        return None if value is None else str(value)

    def dead_letters(self, function: str, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters of ``function``, newest first."""
        d = event_dead_letters.c
        stmt = (
            select(event_dead_letters)
            .where(d.function == function)
            .order_by(d.time_ms.desc(), d.request_id)
            .limit(limit)
        )
        with self._journal.reader.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            DeadLetter(
                str(r.request_id),
                str(r.function),
                str(r.qualifier),
                str(r.condition),
                str(r.error_type),
                str(r.error_message),
                int(r.attempts),
                int(r.time_ms),
                bytes(r.payload),
            )
            for r in rows
        ]

    def claim(self, poller: str, *, limit: int, lease_ms: int, now_ms: int) -> tuple[list[Claim], int | None]:
        """Claim up to ``limit`` due events for ``lease_ms``, counting one attempt for each, durably.

        Returns the claims and when the next not yet due event will be (``None`` when there is none).
        """
        q = event_queue.c
        due = (
            select(q.request_id)
            .where(q.state == QUEUED, q.next_run_ms <= now_ms, q.claimed_until_ms <= now_ms)
            .order_by(q.next_run_ms)
        )
        later = (func.greatest if self._postgres else func.max)(q.next_run_ms, q.claimed_until_ms)
        # A read first, so an idle poll takes no write lock (SQLite) and writes nothing.
        with self._journal.reader.connect() as conn:
            any_due = limit > 0 and conn.execute(due.limit(1)).first() is not None
            next_due = conn.execute(select(func.min(later)).where(q.state == QUEUED, later > now_ms)).scalar()
        next_due_ms = None if next_due is None else int(next_due)
        if not any_due:
            return [], next_due_ms
        token = secrets.token_hex(16)
        with self._writing() as conn:
            locked = due.limit(limit).with_for_update(skip_locked=True) if self._postgres else due.limit(limit)
            ids = list(conn.execute(locked).scalars())
            if not ids:
                return [], next_due_ms
            conn.execute(
                update(event_queue)
                .where(q.request_id.in_(ids))
                .values(
                    claimed_by=poller, claim_token=token, claimed_until_ms=now_ms + lease_ms, attempts=q.attempts + 1
                )
            )
            rows = conn.execute(
                select(
                    q.request_id, q.function, q.qualifier, q.payload, q.enqueued_ms, q.attempts,
                    q.function_errors, q.throttles, q.last_error_type, q.last_error,
                ).where(q.request_id.in_(ids), q.claim_token == token)
            ).all()  # fmt: skip
        order = {request_id: index for index, request_id in enumerate(ids)}
        claims = [
            Claim(
                request_id=str(r[0]),
                function=str(r[1]),
                qualifier=str(r[2]),
                payload=bytes(r[3]),
                enqueued_ms=int(r[4]),
                attempts=int(r[5]),
                function_errors=int(r[6]),
                throttles=int(r[7]),
                token=token,
                last_error_type=str(r[8]),
                last_error=str(r[9]),
            )
            for r in rows
        ]
        claims.sort(key=lambda c: order[c.request_id])
        return claims, next_due_ms

    def renew(self, claims: list[Claim], *, lease_ms: int, now_ms: int) -> int:
        """Extend the lease of ``claims`` still held; returns how many were."""
        if not claims:
            return 0
        q = event_queue.c
        held = 0
        with self._writing() as conn:
            for claim in claims:
                held += conn.execute(
                    update(event_queue)
                    .where(q.request_id == claim.request_id, q.claim_token == claim.token, q.state == QUEUED)
                    .values(claimed_until_ms=now_ms + lease_ms)
                ).rowcount
        return held

    def settle(self, claim: Claim, outcome: Settle) -> bool:
        """End ``claim`` as ``outcome`` says, in one transaction; ``False`` (and nothing written) when the
        claim is no longer held (it expired and another poller took the event).
        """
        q = event_queue.c
        with self._writing() as conn:
            changed = conn.execute(
                update(event_queue)
                .where(q.request_id == claim.request_id, q.claim_token == claim.token, q.state == QUEUED)
                .values(
                    state=outcome.state,
                    attempts=outcome.attempts,
                    function_errors=outcome.function_errors,
                    throttles=outcome.throttles,
                    next_run_ms=outcome.next_run_ms,
                    claimed_by="",
                    claim_token="",
                    claimed_until_ms=0,
                    finished_ms=0 if outcome.state == QUEUED else outcome.now_ms,
                    # A finished event's payload is not needed for deduplication.
                    **({} if outcome.state == QUEUED else {"payload": b""}),
                    **(
                        {
                            "last_error_type": truncate_utf8(outcome.error_type, _ERROR_TYPE_CHARS),
                            "last_error": truncate_utf8(outcome.error_message, ERROR_MESSAGE_BYTES),
                        }
                        if outcome.error_type
                        else {}
                    ),
                )
            ).rowcount
            if changed != 1:
                conn.rollback()
                return False
            refused = [send for send in outcome.sends if not self._send(conn, claim, send, outcome.now_ms)]
            if outcome.dead_letter is not None and (refused or not outcome.sends):
                letter = outcome.dead_letter
                d = event_dead_letters.c
                conn.execute(delete(event_dead_letters).where(d.request_id == letter.request_id))
                conn.execute(
                    insert(event_dead_letters).values(
                        request_id=letter.request_id,
                        function=letter.function,
                        qualifier=letter.qualifier,
                        condition=letter.condition,
                        error_type=truncate_utf8(letter.error_type, _ERROR_TYPE_CHARS),
                        error_message=truncate_utf8(letter.error_message, ERROR_MESSAGE_BYTES),
                        attempts=letter.attempts,
                        time_ms=letter.time_ms,
                        payload=letter.payload,
                    )
                )
            if outcome.follow_up is not None:
                self._insert_ignore(conn, [outcome.follow_up])
        return True

    def _send(self, conn: Connection, claim: Claim, send: QueueSend, now_ms: int) -> bool:
        """Send ``send`` in the settle's transaction; ``False`` (logged, nothing written) when refused."""
        if self.queues is None:
            why = "no queue store"
        else:
            try:
                self.queues.send_message_in(
                    conn, send.account_id, send.queue, send.message, sender_id=send.sender_id, now_ms=now_ms
                )
                return True
            except QueueError as exc:
                why = f"{exc.code}: {exc.message}"
        log.warning(
            "event=queue_send_refused request_id=%s purpose=%s queue=%s why=%.300s",
            claim.request_id, send.purpose, send.queue, why,
        )  # fmt: skip
        return False

    def release(self, claims: list[Claim]) -> int:
        """Give claims back unfinished (a poller stopping): the events are due again at once."""
        q = event_queue.c
        released = 0
        with self._writing() as conn:
            for claim in claims:
                released += conn.execute(
                    update(event_queue)
                    .where(q.request_id == claim.request_id, q.claim_token == claim.token, q.state == QUEUED)
                    .values(claimed_by="", claim_token="", claimed_until_ms=0)
                ).rowcount
        return released

    def purge(self, *, before_ms: int) -> int:
        """Delete finished events that finished before ``before_ms`` (the end of their dedupe window)."""
        q = event_queue.c
        with self._writing() as conn:
            return int(
                conn.execute(delete(event_queue).where(and_(q.state != QUEUED, q.finished_ms < before_ms))).rowcount
            )

    def purge_dead_letters(self, *, before_ms: int) -> int:
        """Delete dead letters stored before ``before_ms`` (past their retention)."""
        with self._writing() as conn:
            return int(
                conn.execute(delete(event_dead_letters).where(event_dead_letters.c.time_ms < before_ms)).rowcount
            )
