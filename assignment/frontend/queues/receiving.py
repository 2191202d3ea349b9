"""A receive that waits: the long poll of ReceiveMessage, shared by the SQS API and the event source pollers.

:func:`receive_waiting` asks the store for visible messages; when there are none it waits on the queue's
:class:`~assignment.frontend.queues.waiting.QueueWaiters` (woken by this process's sends, or after the
waiters' recheck interval, or when the store said the next invisible message becomes visible) and asks
again, until messages come or ``wait_s`` has passed. Each look is one short transaction in a worker
thread; the waiting holds neither a thread nor a connection.

Example::

    received = await receive_waiting(store, waiters, "000000000000", "jobs", max_messages=10, wait_s=20)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from assignment.frontend.queues.messages import Received
from assignment.frontend.queues.store import QueueStore
from assignment.frontend.queues.waiting import QueueWaiters

__all__ = ["now_ms", "receive_waiting"]


def now_ms() -> int:
    """The wall clock in milliseconds (what the store's times are)."""
    return time.time_ns() // 1_000_000


async def receive_waiting(
    store: QueueStore,
    waiters: QueueWaiters,
    account_id: str,
    name: str,
    *,
    max_messages: int,
    wait_s: float,
    visibility_timeout: int | None = None,
    attempt_id: str | None = None,
    clock_ms: Callable[[], int] = now_ms,
    bulk: bool = False,
) -> Received:
    """Up to ``max_messages`` messages of the queue, waiting up to ``wait_s`` seconds for the first;
    ``bulk`` (the pollers) takes up to :data:`~assignment.frontend.queues.store.MAX_TAKE` in one go
    (:meth:`QueueStore.take`) instead of SQS's 10."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        now = clock_ms()
        if bulk:
            received = await asyncio.to_thread(store.take, account_id, name, max_messages=max_messages, now_ms=now)
        else:
            received = await asyncio.to_thread(
                store.receive_messages,
                account_id,
                name,
                max_messages=max_messages,
                visibility_timeout=visibility_timeout,
                attempt_id=attempt_id,
                now_ms=now,
            )
        left = deadline - loop.time()
        if received.messages or left <= 0:
            return received
        if received.next_visible_ms is not None:
            left = min(left, max(0.0, (received.next_visible_ms - now) / 1000))
        await waiters.wait((account_id, name), timeout_s=max(left, 0.001))
