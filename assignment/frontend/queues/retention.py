"""The retention sweep: messages past their queue's retention period are deleted, whether or not anybody
receives from that queue again (a receive also drops its own queue's expired messages).

Every frontend runs one :class:`RetentionSweeper`; sweeps on several hosts delete the same rows at most
once each (a delete of a deleted row is nothing), so no election is needed. A failed sweep is logged and
tried again at the next interval: expired messages are never returned anyway, the sweep only frees space.

Example::

    sweeper = RetentionSweeper(store, interval_s=60)
    await sweeper.start()
    ...
    await sweeper.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from assignment.frontend.queues import QueueStore
from assignment.frontend.queues.receiving import now_ms

__all__ = ["DEFAULT_SWEEP_INTERVAL_S", "RetentionSweeper"]

log = logging.getLogger("leasehold.frontend.queues")

#: How often a frontend sweeps (SQS's shortest retention is 60 s).
DEFAULT_SWEEP_INTERVAL_S = 60.0


class RetentionSweeper:
    """Calls :meth:`QueueStore.expire` every ``interval_s`` seconds until stopped."""

    def __init__(self, store: QueueStore, *, interval_s: float = DEFAULT_SWEEP_INTERVAL_S) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s!r}")
        self.store = store
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start sweeping (the first sweep after one interval)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="queue-retention")

    async def stop(self) -> None:
        """Stop sweeping (a sweep in its thread finishes its transaction)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep(self) -> int:
        """One sweep now: how many messages and deduplication ids were deleted."""
        return await asyncio.to_thread(self.store.expire, now_ms())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                deleted = await self.sweep()
            except Exception:
                log.exception("event=queue_sweep_failed")
                continue
            if deleted:
                log.info("event=queue_sweep deleted=%d", deleted)
