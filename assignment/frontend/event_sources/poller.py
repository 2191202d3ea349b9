"""The event source pollers of one frontend: lease mappings, receive batches, invoke, delete what succeeded.

Every frontend runs one :class:`EventSourcePollers`. Its manager loop, every ``refresh_s``:

1. renews the leases it holds and claims mappings whose lease lapsed (:class:`MappingStore`), so the
   mappings of a frontend that died are taken over within ``lease_s``; a mapping whose lease it lost is
   stopped here;
2. hands each held mapping's current row to its :class:`MappingRunner` (new settings take effect at the
   runner's next batch), and *settles* a transition once the runner is in it: ``Creating``, ``Enabling``
   and ``Updating`` once every lane collects with the new settings (a batch of older ones in progress
   finishes first), ``Disabling`` and ``Deleting`` only after the runner's batches in flight ended. So a
   mapping shown ``Enabled`` runs its latest settings, and one shown ``Disabled`` (or gone) never invokes
   again.

A :class:`MappingRunner` runs *lanes*, each a loop: collect a batch (up to BatchSize messages, within
MaximumBatchingWindowInSeconds; a receive waits on the queue's waiters, so a send in this process wakes
it), drop the messages the FilterCriteria does not match (deleted, as AWS does), invoke the function
synchronously with AWS's SQS event, then delete the batch, or, with ReportBatchItemFailures, all but
the failed items. A function error, a timeout, a throttle or a malformed partial response leaves the batch
to come back after the queue's visibility timeout (its receive count rising, so the queue's redrive policy
moves poison messages to the dead-letter queue). Lanes scale up by one after each full batch, to
ScalingConfig.MaximumConcurrency (else ``max_lanes``) and never past the function's reserved concurrency
(read each refresh; reserved 0 stops the lanes, so nothing is received only to be throttled), and down
by one when a receive finds nothing; throttles halve them and back off exponentially.

Delivery is at least once: a frontend killed while its batches run leaves them in flight; they become
visible again after the visibility timeout and whoever holds the mapping then takes them.

Example::

    pollers = EventSourcePollers(mappings, queues, waiters, invoker, owner="fe-1", region="us-east-1",
                                 account_id="000000000000")
    await pollers.start()
    ...
    await pollers.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from assignment.frontend.event_sources.filters import FilterCriteria, parse_filter_criteria, sqs_view
from assignment.frontend.event_sources.mappings import BUSY_STATES, Mapping, MappingStore
from assignment.frontend.event_sources.sqs_event import ALL, failed_items, sqs_event, sqs_record
from assignment.frontend.events import Invoke
from assignment.frontend.queue_targets import parse_queue_arn
from assignment.frontend.queues import MAX_BATCH_ENTRIES, Message, QueueError, QueueStore
from assignment.frontend.queues.receiving import now_ms, receive_waiting
from assignment.frontend.queues.waiting import QueueWaiters
from assignment.frontend.types import LambdaError, TooManyRequestsException

__all__ = ["DEFAULT_LEASE_S", "EventSourcePollers", "Invoke", "MappingRunner", "PollerConfig", "default_owner"]

log = logging.getLogger("leasehold.frontend.event_sources")

#: How long a mapping's lease lasts unrenewed, by default.
DEFAULT_LEASE_S = 10.0
#: A batch stops growing at this many bytes of bodies (the invocation payload limit is 6 MB).
_MAX_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PollerConfig:
    """How a frontend's pollers behave (documented defaults)."""

    #: How long a mapping's lease lasts unrenewed: a dead frontend's mappings move after this.
    lease_s: float = DEFAULT_LEASE_S
    #: How often leases are renewed and mappings re-read (an update takes effect within this).
    refresh_s: float = 1.0
    #: How long an idle lane's receive waits before it looks at its mapping again.
    idle_wait_s: float = 1.0
    #: Lanes of a mapping without ScalingConfig.MaximumConcurrency.
    max_lanes: int = 1000
    #: Back-off after a throttle or service error: first and longest pause.
    backoff_s: tuple[float, float] = (0.1, 5.0)
    #: Mappings one frontend takes in one claim.
    claim_limit: int = 64


def default_owner() -> str:
    """A poller owner id unique to this process's run: host, pid and a random suffix."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _queue_of(source_arn: str) -> tuple[str, str]:
    """(account, name) of a mapping's queue (the API checked the ARN's form when it stored it)."""
    target = parse_queue_arn(source_arn)
    assert target is not None, source_arn
    return target.account_id, target.name


def _criteria(text: str) -> FilterCriteria | None:
    return parse_filter_criteria(json.loads(text)) if text else None


class MappingRunner:
    """The lanes of one mapping on this frontend."""

    def __init__(self, pollers: EventSourcePollers, mapping: Mapping) -> None:
        self._pollers = pollers
        self.mapping = mapping
        self._criteria = _criteria(mapping.settings.filter_criteria)
        self._lanes: set[asyncio.Task[None]] = set()
        #: The revision each lane runs (the one of the batch it collects or processes now).
        self._revisions: dict[asyncio.Task[None], int] = {}
        self._stopping = False
        self._backoff_s = 0.0
        self._last_result = mapping.last_result
        #: Batches invoked, and messages deleted, by this runner (for status and tests).
        self.batches = 0
        self.deleted = 0

    @property
    def lanes(self) -> int:
        """Lanes running now."""
        return len(self._lanes)

    def runs(self, revision: int) -> bool:
        """Whether every lane runs ``revision`` or later (no batch of older settings is in progress)."""
        return all(seen >= revision for seen in self._revisions.values())

    @property
    def idle(self) -> bool:
        """No lane runs (a stopped runner's batches in flight have ended)."""
        return not self._lanes

    def _cap(self) -> int:
        """Lanes allowed: MaximumConcurrency (else ``max_lanes``), within the function's reserved concurrency."""
        cap = self.mapping.settings.max_concurrency or self._pollers.config.max_lanes
        reserved = self._pollers.reserved.get(self.mapping.function_name)
        return cap if reserved is None else min(cap, reserved)

    def apply(self, mapping: Mapping) -> None:
        """Run ``mapping``'s current settings from the next batch on; stop when it is disabled or deleted."""
        if mapping.settings.filter_criteria != self.mapping.settings.filter_criteria:
            self._criteria = _criteria(mapping.settings.filter_criteria)
        self.mapping = mapping
        if mapping.state == "Deleting" or not mapping.settings.enabled:
            self._stopping = True
            return
        self._stopping = False
        if not self._lanes and self._cap() > 0:
            self._spawn()

    def stop(self) -> None:
        """Stop taking batches (those in flight finish); :attr:`idle` once they did."""
        self._stopping = True

    async def wait_idle(self, timeout_s: float) -> None:
        """Until every lane ended, or ``timeout_s`` passed (then they are cancelled)."""
        self.stop()
        if not self._lanes:
            return
        _, pending = await asyncio.wait(set(self._lanes), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self) -> None:
        task = asyncio.create_task(self._lane(), name=f"esm-{self.mapping.uuid[:8]}")
        self._lanes.add(task)
        self._revisions[task] = self.mapping.revision
        task.add_done_callback(self._lanes.discard)
        task.add_done_callback(lambda done: self._revisions.pop(done, None))

    def _running(self) -> bool:
        return not self._stopping and not self._pollers.stopping

    async def _lane(self) -> None:
        try:
            while self._running():
                if len(self._lanes) > self._cap():
                    return
                mapping = self.mapping
                task = asyncio.current_task()
                if task is not None:
                    self._revisions[task] = mapping.revision
                try:
                    batch = await self._collect(mapping)
                except QueueError as exc:  # the queue was deleted, or refuses: keep the mapping, back off
                    await self._problem(f"PROBLEM: {exc.code}: {exc.message}"[:128])
                    continue
                if not batch:
                    if len(self._lanes) > 1:
                        return  # scale down: this lane found nothing
                    continue
                if not self._running():
                    await self._give_back(mapping, batch)
                    return
                if len(batch) >= mapping.settings.batch_size and len(self._lanes) < self._cap():
                    self._spawn()  # scale up: the backlog filled a batch
                await self._process(mapping, batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=esm_lane_crashed uuid=%s", self.mapping.uuid)

    async def _collect(self, mapping: Mapping) -> list[Message]:
        """Up to BatchSize messages: the first receive waits ``idle_wait_s``; more are gathered until the
        batching window closes (none when it is 0) or the batch is full."""
        settings = mapping.settings
        account, name = _queue_of(mapping.source_arn)
        pollers = self._pollers
        first = await receive_waiting(
            pollers.queues, pollers.waiters, account, name,
            max_messages=settings.batch_size, wait_s=pollers.config.idle_wait_s, bulk=True,
        )  # fmt: skip
        batch = list(first.messages)
        if not batch or settings.batching_window_s == 0:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.batching_window_s
        size = sum(len(m.body) for m in batch)
        while len(batch) < settings.batch_size and size < _MAX_BATCH_BYTES and self._running():
            left = deadline - loop.time()
            if left <= 0:
                break
            more = await receive_waiting(
                pollers.queues, pollers.waiters, account, name,
                max_messages=settings.batch_size - len(batch), wait_s=left, bulk=True,
            )  # fmt: skip
            batch += more.messages
            size += sum(len(m.body) for m in more.messages)
        return batch

    async def _process(self, mapping: Mapping, batch: list[Message]) -> None:
        pollers = self._pollers
        records = [sqs_record(m, source_arn=mapping.source_arn, region=pollers.region) for m in batch]
        if self._criteria is not None:
            criteria = self._criteria
            matched = [criteria.matches(sqs_view(record)) for record in records]
            dropped = [m for m, keep in zip(batch, matched, strict=True) if not keep]
            await self._delete(mapping, dropped)  # AWS deletes what the filter does not match
            batch = [m for m, keep in zip(batch, matched, strict=True) if keep]
            records = [r for r, keep in zip(records, matched, strict=True) if keep]
            if not batch:
                return
        request_id = str(uuid.uuid4())
        try:
            result = await pollers.invoke(mapping.function_name, mapping.qualifier, sqs_event(records), request_id)
        except TooManyRequestsException:
            await self._problem("PROBLEM: Function call throttled", throttled=True)
            return
        except LambdaError as exc:
            await self._problem(f"PROBLEM: Function call failed: {exc.type}"[:128])
            return
        self.batches += 1
        if result.function_error:
            log.info("event=esm_batch_failed uuid=%s request_id=%s size=%d", mapping.uuid, request_id, len(batch))
            await self._record("PROBLEM: Function call failed")
            return
        report = "ReportBatchItemFailures" in mapping.settings.response_types
        failed = failed_items(result.payload, {m.message_id for m in batch}, report=report)
        if failed == ALL:
            log.info("event=esm_partial_response_invalid uuid=%s request_id=%s", mapping.uuid, request_id)
            await self._record("PROBLEM: Invalid partial batch response")
            return
        await self._delete(mapping, [m for m in batch if m.message_id not in failed])
        self._backoff_s = 0.0
        await self._record("OK")

    async def _delete(self, mapping: Mapping, messages: list[Message]) -> None:
        if not messages:
            return
        account, name = _queue_of(mapping.source_arn)
        handles = [m.receipt_handle for m in messages]
        try:
            self.deleted += await asyncio.to_thread(self._pollers.queues.delete_received, account, name, handles)
        except QueueError as exc:
            log.warning("event=esm_delete_failed uuid=%s error=%s", mapping.uuid, exc.code)
            return
        self._pollers.waiters.notify((account, name))  # a FIFO group may be free again

    async def _give_back(self, mapping: Mapping, batch: list[Message]) -> None:
        """Make a batch collected but not invoked (the mapping stopped) visible again at once."""
        account, name = _queue_of(mapping.source_arn)
        entries = [(str(n), m.receipt_handle, 0) for n, m in enumerate(batch)]
        for start in range(0, len(entries), MAX_BATCH_ENTRIES):
            with contextlib.suppress(QueueError):
                await asyncio.to_thread(
                    self._pollers.queues.change_message_visibility_batch, account, name,
                    entries[start : start + MAX_BATCH_ENTRIES], now_ms=now_ms(),
                )  # fmt: skip

    async def _problem(self, result: str, *, throttled: bool = False) -> None:
        """Record ``result`` and pause this lane (exponentially longer each time, until a batch succeeds)."""
        await self._record(result)
        low, high = self._pollers.config.backoff_s
        self._backoff_s = min(high, max(low, self._backoff_s * 2))
        if throttled and len(self._lanes) > 1:
            return  # a throttle sheds this lane (halving as they all meet it), the last one backs off
        await asyncio.sleep(self._backoff_s)

    async def _record(self, result: str) -> None:
        if result != self._last_result:
            self._last_result = result
            await asyncio.to_thread(
                self._pollers.mappings.record_result, self.mapping.uuid, self._pollers.owner, result
            )


class EventSourcePollers:
    """Every mapping this frontend holds a lease on, polled."""

    def __init__(
        self,
        mappings: MappingStore,
        queues: QueueStore,
        waiters: QueueWaiters,
        invoke: Invoke,
        *,
        region: str,
        account_id: str,
        owner: str | None = None,
        config: PollerConfig | None = None,
        reserved_of: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        """``reserved_of`` reads every function's reserved concurrency (``Registry.all_reserved``); without
        it lanes are capped by the mapping's settings only."""
        self.mappings = mappings
        self.queues = queues
        self.waiters = waiters
        self.invoke = invoke
        self.region = region
        self.account_id = account_id
        self.owner = owner or default_owner()
        self.config = config or PollerConfig()
        self.runners: dict[str, MappingRunner] = {}
        #: Reserved concurrency by function name, as read at the last refresh.
        self.reserved: dict[str, int] = {}
        self._reserved_of = reserved_of
        self.stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the manager loop (the first claim at once)."""
        if self._task is None:
            self.stopping = False
            self._task = asyncio.create_task(self._run(), name="esm-manager")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop polling: batches in flight finish (up to ``grace_s``), then the leases are given up so
        another frontend takes the mappings at once."""
        self.stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runners = list(self.runners.values())
        await asyncio.gather(*(runner.wait_idle(grace_s) for runner in runners))
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.mappings.release, self.owner, [r.mapping.uuid for r in runners])
        self.runners.clear()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=esm_tick_failed owner=%s", self.owner)
            await asyncio.sleep(self.config.refresh_s)

    async def tick(self) -> None:
        """One round: renew and claim leases, apply each held mapping, settle finished transitions."""
        lease_ms = int(self.config.lease_s * 1000)
        now = now_ms()
        held = await asyncio.to_thread(self.mappings.renew, self.owner, now_ms=now, lease_ms=lease_ms)
        claimed = await asyncio.to_thread(
            self.mappings.claim, self.owner, now_ms=now, lease_ms=lease_ms, limit=self.config.claim_limit
        )
        current = {m.uuid: m for m in (*held, *claimed)}
        if self._reserved_of is not None and current:
            self.reserved = await asyncio.to_thread(self._reserved_of)
        for uuid_, runner in list(self.runners.items()):
            if uuid_ not in current:
                runner.stop()  # the lease is gone: another frontend polls it now
                del self.runners[uuid_]
        for mapping in current.values():
            found = self.runners.get(mapping.uuid)
            if found is None:
                runner = self.runners[mapping.uuid] = MappingRunner(self, mapping)
                log.info("event=esm_taken uuid=%s owner=%s state=%s", mapping.uuid, self.owner, mapping.state)
            else:
                runner = found
            runner.apply(mapping)
            stopping = mapping.state in ("Disabling", "Deleting")
            if mapping.state in BUSY_STATES and (runner.idle if stopping else runner.runs(mapping.revision)):
                settled = await asyncio.to_thread(
                    self.mappings.settle, mapping.uuid, self.owner, mapping.revision, now_ms=now_ms()
                )
                log.info(
                    "event=esm_settled uuid=%s from=%s to=%s", mapping.uuid, mapping.state,
                    settled.state if settled else "deleted",
                )  # fmt: skip
                if settled is None:
                    self.runners.pop(mapping.uuid, None)
                else:
                    runner.mapping = settled
            elif mapping.state == "Disabled" and not runner.idle:
                runner.stop()
