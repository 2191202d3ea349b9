"""Long polling: receivers wait for a queue to change instead of asking the database again and again.

A ``ReceiveMessage`` with ``WaitTimeSeconds`` that finds nothing waits on :class:`QueueWaiters` for its
queue: a send, a visibility change or a delete made by this process wakes it at once (``notify``, called
after the change committed). Changes made by another frontend, and messages whose delay or visibility
timeout runs out, are seen by the waiter's next look, which comes after ``recheck_s`` at the latest (or
when the store said the next invisible message becomes visible, if sooner), so a long poll is never
late by more than that. Waiting holds no thread and no connection.

Example::

    waiters = QueueWaiters()
    changed = await waiters.wait(("000000000000", "jobs"), timeout_s=0.2)   # False: nothing happened
    waiters.notify(("000000000000", "jobs"))                                 # wakes every waiter of jobs
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["DEFAULT_RECHECK_S", "QueueKey", "QueueWaiters"]

#: A queue: (account id, name).
QueueKey = tuple[str, str]
#: The longest a waiting receive goes without looking at the database again.
DEFAULT_RECHECK_S = 0.2


class QueueWaiters:
    """The receivers of this process waiting for a change, by queue (one event loop's)."""

    def __init__(self, *, recheck_s: float = DEFAULT_RECHECK_S) -> None:
        if recheck_s <= 0:
            raise ValueError(f"recheck_s must be positive, not {recheck_s!r}")
        self.recheck_s = recheck_s
        self._waiting: dict[QueueKey, set[asyncio.Future[None]]] = {}

    def waiting(self, key: QueueKey) -> int:
        """How many receivers wait on ``key``."""
        return len(self._waiting.get(key, ()))

    def notify(self, key: QueueKey) -> None:
        """Wake every receiver waiting on ``key`` (after a change to it committed)."""
        for future in self._waiting.pop(key, ()):
            if not future.done():
                future.set_result(None)

    async def wait(self, key: QueueKey, *, timeout_s: float) -> bool:
        """Until ``key`` is notified (True) or ``min(timeout_s, recheck_s)`` passed (False)."""
        if timeout_s <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, set()).add(future)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), min(timeout_s, self.recheck_s))
                return True
            return False
        finally:
            others = self._waiting.get(key)
            if others is not None:
                others.discard(future)
                if not others:
                    del self._waiting[key]
            future.cancel()
