"""Asynchronous invocation: the durable event queue, its pollers, retries, destinations and dead letters.

An ``Event`` invocation is accepted (HTTP 202) only after :meth:`EventQueue.enqueue` committed it to the
journal's database, so an accepted event survives the death of any process. :class:`EventPoller` claims
due events with a lease (renewed while they run; a dead poller's claims expire and another poller takes
them), counts the attempt durably, runs the event through the frontend's synchronous invoke path and
settles it in one transaction:

* success: done (and the on-success destination, if any, gets a ``Success`` record);
* function error: retried ``MaximumRetryAttempts`` times (default 2), ``retry_intervals_s`` apart (about
  1 and 2 minutes by default), then ``RetriesExhausted``;
* throttle (``TooManyRequestsException``) or service error: retried with exponential backoff between
  ``throttle_backoff_s`` (1 s .. 5 min) until ``MaximumEventAgeInSeconds``, then ``EventAgeExceeded``;
* function gone (``ResourceNotFoundException``) or another client error: failed at once.

A failed event goes to its on-failure destination with AWS's destination record (a function name or
``arn:aws:lambda:...:function:NAME``, invoked asynchronously, so durably; or an SQS queue ARN, the record
as the message body) and also, as AWS does when both are configured, to the function version's
dead-letter queue (``DeadLetterConfig``: the payload as the body, with the ``RequestID``, ``ErrorCode`` and
``ErrorMessage`` attributes). Queue messages are sent in the transaction that settles the event
(:class:`~assignment.frontend.event_store.QueueSend`). With neither, or when the dead-letter queue (or the
on-failure queue) refuses the message, because it was deleted for example, the event goes to the built-in
dead-letter store (:meth:`EventQueue.dead_letters`, shown by ``leasehold dlq list FUNCTION``); an
on-success destination gets a ``Success`` record, the same ways. Delivery is at least once: an event
whose poller died mid-run runs again. Enqueue deduplicates by request id for the dedupe window (finished
events are remembered that long).

Example::

    queue = EventQueue(journal, queues=QueueStore(journal))
    accepted = await queue.enqueue("resize", "$LATEST", b'{"key": "a.png"}', request_id)   # -> 202
    poller = EventPoller(queue, invoker, invoker.event_config, dead_letter_of=invoker.dead_letter_target)
    await poller.start()
    ...
    await poller.stop()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from assignment.frontend.event_store import (
    DONE,
    ERROR_MESSAGE_BYTES,
    FAILED,
    QUEUED,
    Claim,
    DeadLetter,
    EventStore,
    NewEvent,
    QueueSend,
    Settle,
    check_event,
    dead_letter_json,
    truncate_utf8,
)
from assignment.frontend.queue_targets import dead_letter_message, parse_queue_arn, record_message
from assignment.frontend.queues import QueueStore
from assignment.frontend.types import (
    EventInvokeConfig,
    InvokeResult,
    LambdaError,
    ResourceNotFoundException,
    ServiceException,
    TooManyRequestsException,
)
from journal.batching import Batcher
from journal.store import Journal

__all__ = [
    "DEAD_LETTER_RETENTION_S",
    "ConfigOf",
    "DeadLetterOf",
    "EventPoller",
    "EventQueue",
    "Invoke",
    "destination_function",
    "destination_record",
    "destination_request_id",
]

log = logging.getLogger("leasehold.events")
_T = TypeVar("_T")

#: How long the dead-letter store keeps a letter by default: 14 days, the longest an SQS queue (AWS's
#: dead-letter target) keeps a message.
DEAD_LETTER_RETENTION_S = 14 * 24 * 3600.0

#: The frontend's synchronous invoke path: ``(function, qualifier, payload, request_id) -> InvokeResult``.
Invoke = Callable[[str, str, bytes, str], Awaitable[InvokeResult]]
#: The event invoke configuration of ``(function, qualifier)`` (defaults when none is set).
ConfigOf = Callable[[str, str], Awaitable[EventInvokeConfig]]
#: The dead-letter queue ARN of ``(function, qualifier)`` (its ``DeadLetterConfig.TargetArn``; "" for none).
DeadLetterOf = Callable[[str, str], Awaitable[str]]

_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]*:\d{12}:function:([A-Za-z0-9_-]{1,64})(?::(\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)
_NAME = re.compile(r"([A-Za-z0-9_-]{1,64})(?::(\$LATEST|[A-Za-z0-9_-]{1,128}))?")
_DESTINATION_NS = uuid.UUID("6c1f3a53-2d0e-4b7e-9a51-7b3c3e0f5a10")


def _now_ms() -> int:
    return int(time.time() * 1000)


def destination_function(target: str) -> tuple[str, str] | None:
    """The ``(function, qualifier)`` a destination names (a function name or a Lambda function ARN,
    optionally qualified), or ``None`` when it names no function (empty, or another kind of ARN).
    """
    match = _ARN.fullmatch(target) or _NAME.fullmatch(target)
    if match is None:
        return None
    return match.group(1), match.group(2) or "$LATEST"


def destination_request_id(request_id: str, condition: str) -> str:
    """The request id of the destination invocation for one event's outcome: derived, so that a poller
    that repeats the settle after a crash queues the same id again and the duplicate is dropped.
    """
    return str(uuid.uuid5(_DESTINATION_NS, f"{request_id}/{condition}"))


def _json_or_text(data: bytes) -> object:
    """Bytes as the JSON value they hold, else as text, else as base64 text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii")
    try:
        return json.loads(text)
    except ValueError:
        return text


def destination_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    response_context: dict[str, object],
    response_payload: object,
    now_ms: int,
) -> dict[str, object]:
    """AWS's destination record (``version`` 1.0): ``condition`` is ``Success``, ``RetriesExhausted`` or
    ``EventAgeExceeded``.
    """
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "version": "1.0",
        "timestamp": stamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
        "responseContext": response_context,
        "responsePayload": response_payload,
    }


@dataclass(frozen=True, slots=True)
class _Routing:
    """Where one event's outcome goes: its version's async settings and dead-letter queue ("" none)."""

    config: EventInvokeConfig
    dead_letter_target: str = ""


_DEFAULTS = _Routing(EventInvokeConfig())


class EventQueue:
    """The durable queue of asynchronous invocations in the journal's database.

    Concurrent :meth:`enqueue` calls share transactions (a :class:`~journal.batching.Batcher`, the
    journal's group commit): whatever arrives while one commit is in flight goes into the next; a failed
    transaction fails its callers alone. Use from one event loop.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        queues: QueueStore | None = None,
        dedupe_window_s: float = 6 * 3600.0,
        max_batch: int = 256,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        """``queues``: the SQS queues on ``journal``'s database that dead-letter queues and destinations
        name (without it a message for a queue is refused, so the event goes to the dead-letter store).
        ``dedupe_window_s``: how long a finished event's request id is remembered (and refused again).
        ``max_batch``: most events committed in one transaction. ``clock``: wall-clock milliseconds.
        """
        if dedupe_window_s < 0:
            raise ValueError("dedupe_window_s must be >= 0")
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.store = EventStore(journal, queues)
        self.dedupe_window_s = dedupe_window_s
        self.clock = clock
        self._batcher: Batcher[None, None, NewEvent, bool] = Batcher(
            self._insert, max_rows=max_batch, on_written=self._wake_listeners, name="event queue"
        )
        self._listeners: set[asyncio.Event] = set()

    async def enqueue(self, function: str, qualifier: str, payload: bytes, request_id: str) -> bool:
        """Queue an event durably (committed before this returns). ``False`` when ``request_id`` is already
        queued or was finished within the dedupe window (the event is then not queued again).

        Raises :class:`~assignment.frontend.types.RequestTooLargeException` (payload over 1 MiB),
        :class:`~assignment.frontend.types.InvalidParameterValueException` (bad function name, qualifier
        or request id) or :class:`TypeError`.
        """
        check_event(function, qualifier, payload, request_id)
        event = NewEvent(function, qualifier, payload, request_id, self.clock())
        return await self._batcher.submit(None, None, [event])

    def _insert(self, _key: None, _group: None, requests: list[list[NewEvent]]) -> list[bool]:
        """One transaction for the queued events (in a worker thread): whether each was accepted."""
        return self.store.insert_many([event for request in requests for event in request])

    def _wake_listeners(self, _key: None) -> None:
        for listener in self._listeners:
            listener.set()

    def notify(self) -> None:
        """Wake this process's pollers: events were committed by another writer (a schedule firing)."""
        self._wake_listeners(None)

    def add_listener(self, wake: asyncio.Event) -> None:
        """Set ``wake`` after every commit of new events (how a poller in this process hears of them)."""
        self._listeners.add(wake)

    def remove_listener(self, wake: asyncio.Event) -> None:
        """Undo :meth:`add_listener`."""
        self._listeners.discard(wake)

    async def depth(self, function: str | None = None) -> int:
        """Events accepted and not finished yet (of ``function``, or of all functions)."""
        return await asyncio.to_thread(self.store.depth, function)

    async def dead_letters(self, function: str, limit: int = 100) -> list[dict[str, object]]:
        """The newest dead letters of ``function`` (at most ``limit``, 1..10000), newest first, JSON-able:
        request_id, function, qualifier, condition, error_type, error_message (at most 1 KB), attempts,
        time_ms, payload (text if UTF-8, else base64) and payload_encoding (``utf-8`` or ``base64``).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValueError(f"limit must be an int in 1..10000, got {limit!r:.40}")
        if not isinstance(function, str):
            raise TypeError(f"function must be a str, not {type(function).__name__}")
        letters = await asyncio.to_thread(self.store.dead_letters, function, limit)
        return [dead_letter_json(letter) for letter in letters]

    async def state_of(self, request_id: str) -> str | None:
        """``queued``, ``done`` or ``failed``; ``None`` for an unknown (or forgotten) request id."""
        return await asyncio.to_thread(self.store.state_of, request_id)


class EventPoller:
    """Runs queued events through the synchronous invoke path, at most ``concurrency`` at a time.

    Several pollers (in one or several processes, on one database) share the queue safely: a claimed
    event is run by its claimant only, until the claim expires (``claim_timeout_s`` after the last
    renewal; claims of running events are renewed every third of it).
    """

    def __init__(
        self,
        queue: EventQueue,
        invoke: Invoke,
        config_of: ConfigOf,
        *,
        dead_letter_of: DeadLetterOf | None = None,
        retry_intervals_s: tuple[float, ...] = (60.0, 120.0),
        concurrency: int = 8,
        poll_interval_s: float = 1.0,
        throttle_backoff_s: tuple[float, float] = (1.0, 300.0),
        claim_timeout_s: float = 30.0,
        stop_grace_s: float = 10.0,
        purge_interval_s: float = 60.0,
        dead_letter_retention_s: float = DEAD_LETTER_RETENTION_S,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        poller_id: str = "",
    ) -> None:
        """``dead_letter_of``: the dead-letter queue of a function version (``None``: no version has one).
        ``retry_intervals_s``: delay before the n-th retry after a function error (the last repeats).
        ``poll_interval_s``: how often the database is looked at when nothing wakes the poller (events
        queued in this process wake it at once). ``throttle_backoff_s``: first and largest delay after a
        throttle or service error (doubling). ``claim_timeout_s``: how long a claim outlives its
        poller. ``stop_grace_s``: how long :meth:`stop` lets running events finish before giving them back.
        ``dead_letter_retention_s``: how long a dead letter is kept (then purged, as SQS drops a message
        past its queue's retention; 14 days, SQS's longest, by default).
        """
        if not retry_intervals_s or any(i < 0 for i in retry_intervals_s):
            raise ValueError("retry_intervals_s must be a non-empty tuple of delays >= 0")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if poll_interval_s <= 0 or claim_timeout_s <= 0 or stop_grace_s < 0 or purge_interval_s <= 0:
            raise ValueError("poll_interval_s, claim_timeout_s, purge_interval_s must be > 0, stop_grace_s >= 0")
        if not 0 < dead_letter_retention_s < float("inf"):
            raise ValueError("dead_letter_retention_s must be > 0 and finite")
        low, high = throttle_backoff_s
        if not 0 <= low <= high:
            raise ValueError("throttle_backoff_s must be (first, largest) with 0 <= first <= largest")
        self.queue = queue
        self._store = queue.store
        self._invoke = invoke
        self._config_of = config_of
        self._dead_letter_of = dead_letter_of
        self.retry_intervals_s = retry_intervals_s
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.throttle_backoff_s = throttle_backoff_s
        self.claim_timeout_s = claim_timeout_s
        self.stop_grace_s = stop_grace_s
        self.purge_interval_s = purge_interval_s
        self.dead_letter_retention_s = dead_letter_retention_s
        self.region = region
        self.account_id = account_id
        self.poller_id = poller_id or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._running: dict[asyncio.Task[None], Claim] = {}
        self._kick = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._db_calls: set[asyncio.Future[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start polling (idempotent)."""
        if self._loop_task is not None:
            return
        self._stopping = False
        self.queue.add_listener(self._kick)
        self._loop_task = asyncio.create_task(self._run(), name=f"event-poller-{self.poller_id}")
        log.info("event=poller_started poller=%s concurrency=%d", self.poller_id, self.concurrency)

    async def stop(self) -> None:
        """Stop claiming; let running events finish for up to ``stop_grace_s``, then give the rest back
        (their claims are released, so another poller takes them at once). Returns after every database
        call of this poller has ended.
        """
        if self._loop_task is None:
            return
        self._stopping = True
        self._kick.set()
        self.queue.remove_listener(self._kick)
        loop_task, self._loop_task = self._loop_task, None
        await asyncio.gather(loop_task, return_exceptions=True)  # it stops between two database calls
        if self._running:
            # Nothing renews claims from here on: make them last through the grace period.
            lease_ms = int((self.stop_grace_s + self.claim_timeout_s) * 1000)
            with contextlib.suppress(Exception):
                held = list(self._running.values())
                await self._db(self._store.renew, held, lease_ms=lease_ms, now_ms=self.queue.clock())
            if self._running:
                await asyncio.wait(list(self._running), timeout=self.stop_grace_s)
        leftovers = dict(self._running)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        while self._db_calls:  # a cancelled settle still runs to its end in its thread
            await asyncio.gather(*self._db_calls, return_exceptions=True)
        if leftovers:
            released = await asyncio.to_thread(self._store.release, list(leftovers.values()))
            log.info("event=claims_released poller=%s count=%d", self.poller_id, released)
        log.info("event=poller_stopped poller=%s", self.poller_id)

    async def _db(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a store call in a thread; it runs to its end even if the caller is cancelled, and
        :meth:`stop` waits for it (so nothing touches the database after ``stop`` returned).
        """
        future = asyncio.ensure_future(asyncio.to_thread(call, *args, **kwargs))
        self._db_calls.add(future)
        future.add_done_callback(self._db_calls.discard)
        return await asyncio.shield(future)

    # ------------------------------------------------------------------ the loop

    async def _purge(self) -> None:
        """Forget finished events past their dedupe window and dead letters past their retention."""
        now_ms = self.queue.clock()
        purged = await self._db(self._store.purge, before_ms=now_ms - int(self.queue.dedupe_window_s * 1000))
        before_ms = now_ms - int(self.dead_letter_retention_s * 1000)
        letters = await self._db(self._store.purge_dead_letters, before_ms=before_ms)
        if purged or letters:
            log.info("event=events_purged poller=%s count=%d dead_letters=%d", self.poller_id, purged, letters)

    async def _run(self) -> None:
        lease_ms = int(self.claim_timeout_s * 1000)
        renew_every = self.claim_timeout_s / 3
        next_renew = time.monotonic() + renew_every
        next_purge = time.monotonic()
        while not self._stopping:
            self._kick.clear()
            wait_s = self.poll_interval_s
            try:
                free = self.concurrency - len(self._running)
                claims, next_due = await self._db(
                    self._store.claim, self.poller_id, limit=free, lease_ms=lease_ms, now_ms=self.queue.clock()
                )
                for claim in claims:
                    task = asyncio.create_task(self._process(claim))
                    self._running[task] = claim
                    task.add_done_callback(self._finished)
                if claims and len(claims) == free:
                    wait_s = 0.0  # there may be more due
                elif next_due is not None:
                    wait_s = min(wait_s, max(0.0, (next_due - self.queue.clock()) / 1000))
                now = time.monotonic()
                if now >= next_renew:
                    next_renew = now + renew_every
                    held = list(self._running.values())
                    kept = await self._db(self._store.renew, held, lease_ms=lease_ms, now_ms=self.queue.clock())
                    if kept != len(held):
                        log.warning("event=claims_lost poller=%s lost=%d", self.poller_id, len(held) - kept)
                if now >= next_purge:
                    next_purge = now + self.purge_interval_s
                    await self._purge()
                wait_s = min(wait_s, max(0.0, next_renew - time.monotonic()))
            except Exception as exc:  # the database hiccuped: keep polling, never die silently
                log.warning("event=poll_failed poller=%s error=%r", self.poller_id, exc)
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), wait_s)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._kick.set()

    async def _process(self, claim: Claim) -> None:
        try:
            outcome = await self._decide(claim)
        except Exception as exc:  # a bug in a callback: retry later rather than lose the event
            log.exception("event=event_process_failed request_id=%s", claim.request_id)
            outcome = self._backoff(claim, _DEFAULTS, ServiceException(repr(exc)), ran=True)
        try:
            settled = await self._db(self._store.settle, claim, outcome)
        except Exception as exc:  # the claim expires and the event runs again: at least once
            log.warning("event=settle_failed request_id=%s error=%r", claim.request_id, exc)
            return
        log.info(
            "event=event_settled request_id=%s function=%s state=%s attempts=%d settled=%s",
            claim.request_id, claim.function, outcome.state, outcome.attempts, settled,
        )  # fmt: skip

    # ------------------------------------------------------------------ decisions

    async def _decide(self, claim: Claim) -> Settle:
        now = self.queue.clock()
        try:
            config = await self._config_of(claim.function, claim.qualifier)
            # Resolved through the invoker's cache, which the invocation below then hits.
            dead_letter = await self._dead_letter_of(claim.function, claim.qualifier) if self._dead_letter_of else ""
        except ResourceNotFoundException as exc:
            return self._fail(
                claim, _DEFAULTS, "RetriesExhausted",
                error_type=exc.type, message=exc.message, context=None, ran=False, status=exc.status,
            )  # fmt: skip
        except Exception as exc:
            error = exc if isinstance(exc, LambdaError) else ServiceException(repr(exc))
            return self._backoff(claim, _DEFAULTS, error, ran=False)
        routing = _Routing(config, dead_letter)
        if now - claim.enqueued_ms >= config.maximum_event_age_s * 1000:
            # Aged out while waiting for its next try: fail with the error that held it back, if any.
            return self._fail(
                claim, routing, "EventAgeExceeded",
                error_type=claim.last_error_type or "EventAgeExceeded",
                message=claim.last_error or f"event older than {config.maximum_event_age_s} s",
                context=None, ran=False, status=_held_back_status(claim),
            )  # fmt: skip
        try:
            result = await self._invoke(claim.function, claim.qualifier, claim.payload, claim.request_id)
        except TooManyRequestsException as exc:
            return self._backoff(claim, routing, exc, ran=False)
        except ServiceException as exc:
            return self._backoff(claim, routing, exc, ran=True)
        except LambdaError as exc:  # the function is gone, or the event can never run
            context: dict[str, object] = {"statusCode": exc.status, "executedVersion": ""}
            return self._fail(
                claim, routing, "RetriesExhausted",
                error_type=exc.type, message=exc.message, context=context, ran=False, status=exc.status,
            )  # fmt: skip
        except Exception as exc:
            return self._backoff(claim, routing, ServiceException(repr(exc)), ran=True)
        if not result.function_error:
            return self._succeed(claim, config, result)
        errors = claim.function_errors + 1
        error_type, message = _function_error(result)
        context = {
            "statusCode": 200,
            "executedVersion": result.executed_version,
            "functionError": result.function_error,
        }
        if errors > config.maximum_retry_attempts:
            return self._fail(
                claim, routing, "RetriesExhausted", error_type=error_type, message=message, context=context,
                ran=True, status=200, function_errors=errors, response=result.payload,
            )  # fmt: skip
        delay_ms = int(self.retry_intervals_s[min(errors, len(self.retry_intervals_s)) - 1] * 1000)
        if now + delay_ms - claim.enqueued_ms >= config.maximum_event_age_s * 1000:
            return self._fail(
                claim, routing, "EventAgeExceeded", error_type=error_type, message=message, context=context,
                ran=True, status=200, function_errors=errors, response=result.payload,
            )  # fmt: skip
        log.info(
            "event=event_retry request_id=%s function=%s error_type=%s errors=%d delay_ms=%d",
            claim.request_id, claim.function, error_type, errors, delay_ms,
        )  # fmt: skip
        return Settle(
            QUEUED, claim.attempts, errors, claim.throttles, now + delay_ms, now,
            error_type=error_type, error_message=message,
        )  # fmt: skip

    def _backoff(self, claim: Claim, routing: _Routing, error: LambdaError, *, ran: bool) -> Settle:
        """Retry after a throttle or service error, doubling the delay, until the event is too old."""
        config = routing.config
        now = self.queue.clock()
        throttles = claim.throttles + 1
        low, high = self.throttle_backoff_s
        delay_ms = int(min(high, low * 2 ** min(throttles - 1, 30)) * 1000)
        attempts = claim.attempts if ran else claim.attempts - 1
        if now + delay_ms - claim.enqueued_ms >= config.maximum_event_age_s * 1000:
            context: dict[str, object] = {"statusCode": error.status, "executedVersion": ""}
            return self._fail(
                claim, routing, "EventAgeExceeded", error_type=error.type, message=error.message, context=context,
                ran=ran, status=error.status, throttles=throttles,
            )  # fmt: skip
        log.info(
            "event=event_backoff request_id=%s function=%s error_type=%s throttles=%d delay_ms=%d",
            claim.request_id, claim.function, error.type, throttles, delay_ms,
        )  # fmt: skip
        return Settle(
            QUEUED, attempts, claim.function_errors, throttles, now + delay_ms, now,
            error_type=error.type, error_message=error.message,
        )  # fmt: skip

    def _arn(self, function: str, qualifier: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{function}:{qualifier or '$LATEST'}"

    def _follow_up(
        self, claim: Claim, target: str, condition: str, record: dict[str, object]
    ) -> NewEvent | QueueSend | None:
        """The delivery of ``record`` to a destination: an invocation of the function ``target`` names, or a
        message for the queue it names; ``None`` when it names neither (of this account and region) or the
        record cannot be queued (then a failure goes to the dead-letter store).
        """
        queue = parse_queue_arn(target)
        if queue is not None and (queue.account_id, queue.region) == (self.account_id, self.region):
            sender = self._arn(claim.function, claim.qualifier)
            return QueueSend(queue.account_id, queue.name, record_message(record), sender, f"on_{condition.lower()}")
        destination = None if queue is not None else destination_function(target)
        if destination is None:
            if target:
                log.warning("event=destination_unusable request_id=%s destination=%.200s", claim.request_id, target)
            return None
        payload = json.dumps(record, separators=(",", ":")).encode()
        request_id = destination_request_id(claim.request_id, condition)
        try:
            check_event(destination[0], destination[1], payload, request_id)
        except LambdaError as exc:
            log.warning("event=destination_record_refused request_id=%s why=%s", claim.request_id, exc.message)
            return None
        return NewEvent(destination[0], destination[1], payload, request_id, self.queue.clock())

    def _dead_letter_send(self, claim: Claim, target: str, status: int, message: str) -> QueueSend | None:
        """The message for the version's dead-letter queue, or ``None`` (logged) when none can be made."""
        queue = parse_queue_arn(target)
        if queue is None or (queue.account_id, queue.region) != (self.account_id, self.region):
            log.warning("event=dead_letter_queue_unusable request_id=%s target=%.200s", claim.request_id, target)
            return None
        try:
            body = dead_letter_message(claim.request_id, status, message, claim.payload)
        except UnicodeDecodeError:  # an SQS body is text: such a payload stays in the dead-letter store
            log.warning("event=dead_letter_payload_not_text request_id=%s", claim.request_id)
            return None
        sender = self._arn(claim.function, claim.qualifier)
        return QueueSend(queue.account_id, queue.name, body, sender, "dead_letter_queue")

    def _succeed(self, claim: Claim, config: EventInvokeConfig, result: InvokeResult) -> Settle:
        now = self.queue.clock()
        delivery = None
        if config.on_success:
            record = destination_record(
                request_id=claim.request_id,
                function_arn=self._arn(claim.function, claim.qualifier),
                condition="Success",
                invoke_count=claim.attempts,
                request_payload=claim.payload,
                response_context={"statusCode": 200, "executedVersion": result.executed_version},
                response_payload=_json_or_text(result.payload),
                now_ms=now,
            )
            delivery = self._follow_up(claim, config.on_success, "Success", record)
        return Settle(
            DONE, claim.attempts, claim.function_errors, claim.throttles, now, now,
            follow_up=delivery if isinstance(delivery, NewEvent) else None,
            sends=(delivery,) if isinstance(delivery, QueueSend) else (),
        )  # fmt: skip

    def _fail(
        self,
        claim: Claim,
        routing: _Routing,
        condition: str,
        *,
        error_type: str,
        message: str,
        context: dict[str, object] | None,
        ran: bool,
        status: int,
        function_errors: int | None = None,
        throttles: int | None = None,
        response: bytes | None = None,
    ) -> Settle:
        """The event failed for good: its destination record and its dead-letter queue's message (both, as
        AWS sends to both when both are configured), else (or as the fallback of a refused queue message) a
        dead letter. ``status``: the failure's HTTP status (the dead-letter message's ``ErrorCode``).
        """
        config = routing.config
        now = self.queue.clock()
        attempts = claim.attempts if ran else claim.attempts - 1
        errors = claim.function_errors if function_errors is None else function_errors
        throttled = claim.throttles if throttles is None else throttles
        log.warning(
            "event=event_failed request_id=%s function=%s condition=%s error_type=%s attempts=%d",
            claim.request_id, claim.function, condition, error_type, attempts,
        )  # fmt: skip
        delivery = None
        if config.on_failure:
            response_payload: object = (
                _json_or_text(response)
                if response is not None
                else {"errorType": error_type, "errorMessage": truncate_utf8(message, ERROR_MESSAGE_BYTES)}
            )
            record = destination_record(
                request_id=claim.request_id,
                function_arn=self._arn(claim.function, claim.qualifier),
                condition=condition,
                invoke_count=attempts,
                request_payload=claim.payload,
                response_context=context if context is not None else {"statusCode": 0, "executedVersion": ""},
                response_payload=response_payload,
                now_ms=now,
            )
            delivery = self._follow_up(claim, config.on_failure, "Failure", record)
        sends = [delivery] if isinstance(delivery, QueueSend) else []
        unsendable = False  # a dead-letter queue no message can be made for: the dead-letter store keeps it
        if routing.dead_letter_target:
            dead_letter = self._dead_letter_send(claim, routing.dead_letter_target, status, message)
            unsendable = dead_letter is None
            sends += [dead_letter] if dead_letter is not None else []
        letter = None
        # Kept when nothing else takes the event; with queue messages, kept only if a queue refuses one.
        if delivery is None or sends or unsendable:
            letter = DeadLetter(
                claim.request_id, claim.function, claim.qualifier, condition, error_type,
                truncate_utf8(message, ERROR_MESSAGE_BYTES), attempts, now, claim.payload,
            )  # fmt: skip
        return Settle(
            FAILED, attempts, errors, throttled, now, now, dead_letter=letter,
            follow_up=delivery if isinstance(delivery, NewEvent) else None, sends=tuple(sends),
        )  # fmt: skip


def _held_back_status(claim: Claim) -> int:
    """The HTTP status of the error that held an aged-out event back: a throttle's 429, a service error's
    500, else (function errors) 200, the status an invocation that returns a function error has."""
    if claim.last_error_type == TooManyRequestsException.type:
        return TooManyRequestsException.status
    if claim.last_error_type == ServiceException.type:
        return ServiceException.status
    return 200


def _function_error(result: InvokeResult) -> tuple[str, str]:
    """``(errorType, errorMessage)`` of a function error's document (``Unhandled`` and the raw text when
    the document is not the usual JSON).
    """
    document = _json_or_text(result.payload)
    if isinstance(document, dict):
        error_type = document.get("errorType")
        message = document.get("errorMessage")
        return (
            error_type if isinstance(error_type, str) and error_type else result.function_error or "Unhandled",
            message if isinstance(message, str) else json.dumps(document)[: ERROR_MESSAGE_BYTES * 2],
        )
    return result.function_error or "Unhandled", str(document)[: ERROR_MESSAGE_BYTES * 2]
