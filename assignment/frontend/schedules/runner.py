"""The scheduler: the loop, in every frontend, that fires due schedules while it holds the scheduler's lease.

One frontend at a time holds the lease (a row in the database, ``lease_s`` long, renewed as it works); the
others look every third of a lease and take it once it lapses, so a dead holder's occurrences fire late,
once, when a peer takes over. A stopping frontend releases it at once. The lease decides *who* fires;
*exactly once* is the store's commit (:meth:`~.store.ScheduleStore.commit`: lease checked, the occurrence's
invocation queued and the schedule advanced in one transaction, only where the row still has the
occurrence the holder read).

Each firing of an occurrence is an asynchronous invocation of the target (the function, version or alias of
its ARN), queued in the event queue with a request id derived from the schedule and the occurrence, so the
event queue's own dedupe also holds; the function's event invoke config then governs retries, as for any
``Event`` invocation. A firing that cannot be delivered goes to the schedule's dead-letter queue (the payload
as the body; attributes ``ERROR_CODE``, ``ERROR_MESSAGE``, ``RETRY_ATTEMPTS``, ``SCHEDULE_ARN``,
``TARGET_ARN``, and ``EXHAUSTED_RETRY_CONDITION`` when the RetryPolicy ran out), else it is logged and
dropped, as AWS drops it:

* the target does not exist (ResourceNotFoundException): at once, no retry;
* the occurrence is older than RetryPolicy.MaximumEventAgeInSeconds when it could be fired (every frontend
  was down): ``EXHAUSTED_RETRY_CONDITION`` ``MaximumEventAgeInSeconds``;
* the delivery failed (the database, or the function's lookup) more than MaximumRetryAttempts times:
  ``MaximumRetryAttempts``. Attempts are counted by the holder in memory; a new holder counts afresh.

The target's ``Input`` may use EventBridge Scheduler's context attributes ``<aws.scheduler.schedule-arn>``,
``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>`` and ``<aws.scheduler.attempt-number>``.

Example::

    runner = ScheduleRunner(store, queue, invoker.resolve, owner="frontend-1", region=r, account_id=a)
    await runner.start()
    runner.wake()          # a schedule changed in this process
    await runner.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from assignment.frontend.event_store import NewEvent
from assignment.frontend.events import EventQueue
from assignment.frontend.queue_targets import parse_queue_arn
from assignment.frontend.queues import MessageAttribute, NewMessage
from assignment.frontend.schedules.model import Schedule, function_target, schedule_arn
from assignment.frontend.schedules.store import DeadLetterSend, Firing, LeaseLost, ScheduleStore
from assignment.frontend.types import LambdaError, ResourceNotFoundException

__all__ = ["DEFAULT_LEASE_S", "Resolve", "ScheduleRunner", "execution_id"]

log = logging.getLogger("leasehold.schedules")

#: How long the scheduler's lease lasts unrenewed (a dead holder's firings move after at most this).
DEFAULT_LEASE_S = 10.0
#: The function lookup a firing needs: raises ResourceNotFoundException for a target that is gone.
Resolve = Callable[[str, str | None], Awaitable[Any]]
_EXECUTION_NS = uuid.UUID("5b0e8a52-4c1d-4f57-9d3e-2a6f1c7e9b40")
_EMPTY_PAYLOAD = "{}"
#: EXHAUSTED_RETRY_CONDITION's values.
_AGE, _ATTEMPTS = "MaximumEventAgeInSeconds", "MaximumRetryAttempts"


def _now_ms() -> int:
    return int(time.time() * 1000)


def execution_id(schedule: Schedule) -> str:
    """The request id of ``schedule``'s pending occurrence: the same for every scheduler that fires it."""
    spec = schedule.spec
    return str(uuid.uuid5(_EXECUTION_NS, f"{spec.group}/{spec.name}/{schedule.created_ms}/{schedule.next_ms}"))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleRunner:
    """One frontend's scheduler; use from one event loop."""

    def __init__(
        self,
        store: ScheduleStore,
        events: EventQueue,
        resolve: Resolve,
        *,
        owner: str,
        region: str,
        account_id: str,
        lease_s: float = DEFAULT_LEASE_S,
        poll_s: float = 0.5,
        batch: int = 100,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        """``owner``: this frontend's unique name in the lease. ``poll_s``: how often the holder looks for
        schedules another frontend created (its own wake it at once). ``batch``: most firings per commit."""
        if lease_s <= 0 or poll_s <= 0 or batch < 1:
            raise ValueError("lease_s and poll_s must be > 0 and batch >= 1")
        self.store = store
        self.events = events
        self.resolve = resolve
        self.owner = owner
        self.region = region
        self.account_id = account_id
        self.lease_ms = int(lease_s * 1000)
        self.poll_s = poll_s
        self.batch = batch
        self.clock = clock
        #: Whether this frontend held the lease at its last look.
        self.holding = False
        #: Occurrences this scheduler fired (queued or dead-lettered).
        self.fired = 0
        self._renewed_ms = 0
        self._looked_ms = 0
        self._failures: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop."""
        if self._task is None:
            log.info("event=scheduler_started owner=%s lease_s=%.1f", self.owner, self.lease_ms / 1000)
            self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        """Stop the loop and release the lease (a peer takes over at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.holding:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release_lease, self.owner)
            self.holding = False

    def wake(self) -> None:
        """Look again now (a schedule was created or changed in this process)."""
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            try:
                delay = await self._tick()
                backoff = 0.0
            except Exception:
                backoff = min(max(backoff * 2, 0.5), 30.0)
                log.exception("event=scheduler_error retry_in_s=%.1f", backoff)
                delay = backoff
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _hold(self, now: int) -> bool:
        """Whether this frontend holds the lease: renewed every third of it; peers look as often."""
        third = self.lease_ms // 3
        if self.holding and now - self._renewed_ms < third:
            return True
        if not self.holding and now - self._looked_ms < third:
            return False
        self._looked_ms = now
        self.holding = await asyncio.to_thread(self.store.hold_lease, self.owner, now_ms=now, lease_ms=self.lease_ms)
        if self.holding:
            self._renewed_ms = now
        return self.holding

    async def _tick(self) -> float:
        """One look: fire what is due; how long to wait before the next."""
        now = self.clock()
        if not await self._hold(now):
            return self.lease_ms / 3000
        due = await asyncio.to_thread(self.store.due, now_ms=now, limit=self.batch)
        if due:
            await self._fire(due, now)
            if len(due) == self.batch:
                return 0.0
        upcoming = await asyncio.to_thread(self.store.next_fire_ms)
        wait = self.poll_s if upcoming is None else min(self.poll_s, max(0.0, (upcoming - self.clock()) / 1000))
        return min(wait, (self._renewed_ms + self.lease_ms // 3 - self.clock()) / 1000 + 0.001)

    async def _fire(self, due: list[Schedule], now: int) -> None:
        firings = [firing for schedule in due if (firing := await self._plan(schedule, now)) is not None]
        if not firings:
            return
        try:
            fired = await asyncio.to_thread(self.store.commit, self.owner, firings, now_ms=now, lease_ms=self.lease_ms)
        except LeaseLost:
            log.warning("event=scheduler_lease_lost owner=%s", self.owner)
            self.holding = False
            return
        except Exception:
            for firing in firings:
                key = execution_id(firing.schedule)
                self._failures[key] = self._failures.get(key, 0) + 1
            raise
        self._renewed_ms = now
        queued = False
        for firing, done in zip(firings, fired, strict=True):
            self._failures.pop(execution_id(firing.schedule), None)
            if not done:
                continue
            self.fired += 1
            queued = queued or firing.event is not None
            spec = firing.schedule.spec
            log.info(
                "event=schedule_fired schedule=%s/%s occurrence=%s lateness_ms=%d outcome=%s",
                spec.group, spec.name, _iso(firing.schedule.next_ms or 0), now - (firing.schedule.fire_ms or now),
                "queued" if firing.event is not None else "dead_letter" if firing.dead_letter else "dropped",
            )  # fmt: skip
        if queued:
            self.events.notify()

    async def _plan(self, schedule: Schedule, now: int) -> Firing | None:
        """What to do with the pending occurrence: queue it, dead-letter it, or (``None``) retry later."""
        spec = schedule.spec
        target = spec.target
        occurrence = schedule.next_ms
        assert occurrence is not None
        request_id = execution_id(schedule)
        failures = self._failures.get(request_id, 0)
        payload = self._render(schedule, request_id, failures + 1)
        if now - occurrence > target.max_event_age_s * 1000:
            why = "The event is older than MaximumEventAgeInSeconds."
            return self._dead_letter(schedule, payload, "EventAgeExceeded", why, failures, exhausted=_AGE)
        if failures > target.max_retry_attempts:
            why = f"Delivery failed {failures} times."
            return self._dead_letter(schedule, payload, "RetriesExhausted", why, failures, exhausted=_ATTEMPTS)
        function = function_target(target.arn)
        if function is None:  # the API refuses such ARNs; a row written otherwise must not stop the loop
            return self._dead_letter(schedule, payload, "ValidationException", "The target is no function.", 0)
        try:
            config = await self.resolve(function.name, function.qualifier or None)
        except ResourceNotFoundException as exc:
            return self._dead_letter(schedule, payload, exc.type, exc.message, failures)
        except LambdaError as exc:
            self._failures[request_id] = failures + 1
            log.warning("event=schedule_delivery_failed schedule=%s/%s error=%s", spec.group, spec.name, exc.type)
            return None
        qualifier = function.qualifier or str(getattr(config, "version", "$LATEST"))
        event = NewEvent(function.name, qualifier, payload.encode(), request_id, now)
        return Firing(schedule, event=event)

    def _render(self, schedule: Schedule, request_id: str, attempt: int) -> str:
        """The target's Input with the context attributes filled in (``{}`` without Input)."""
        text = schedule.spec.target.input
        if text is None:
            return _EMPTY_PAYLOAD
        spec = schedule.spec
        values = {
            "<aws.scheduler.schedule-arn>": schedule_arn(self.region, self.account_id, spec.group, spec.name),
            "<aws.scheduler.scheduled-time>": _iso(schedule.next_ms or 0),
            "<aws.scheduler.execution-id>": request_id,
            "<aws.scheduler.attempt-number>": str(attempt),
        }
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        return text

    def _dead_letter(
        self, schedule: Schedule, payload: str, code: str, message: str, attempts: int, *, exhausted: str = ""
    ) -> Firing:
        spec = schedule.spec
        queue = parse_queue_arn(spec.target.dead_letter_arn) if spec.target.dead_letter_arn else None
        log.warning(
            "event=schedule_not_delivered schedule=%s/%s error=%s dead_letter_queue=%s",
            spec.group, spec.name, code, queue.name if queue else "-",
        )  # fmt: skip
        if queue is None:
            return Firing(schedule)
        arn = schedule_arn(self.region, self.account_id, spec.group, spec.name)
        attributes = {
            "ERROR_CODE": MessageAttribute("String", code),
            "ERROR_MESSAGE": MessageAttribute("String", message[:1000] or code),
            "RETRY_ATTEMPTS": MessageAttribute("String", str(attempts)),
            "SCHEDULE_ARN": MessageAttribute("String", arn),
            "TARGET_ARN": MessageAttribute("String", spec.target.arn),
        }
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = MessageAttribute("String", exhausted)
        send = DeadLetterSend(queue.account_id, queue.name, NewMessage(payload, attributes=attributes))
        return Firing(schedule, dead_letter=send)
