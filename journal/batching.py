"""Group commit, in general: concurrent asyncio callers' rows share one blocking write.

A caller submits a request (a list of rows) under a *key* (e.g. a journal partition) and a *group*
(e.g. the writer's epoch); the key's one flusher takes the queued requests in call order, as many as fit
``max_rows`` (a larger request goes alone) and only of one group, runs ``write(key, group, requests)`` in
a worker thread, and settles each request's future with its own result. Whatever arrives while a write is
in flight forms the next batch, which is what makes batches under load. Both :mod:`journal.group_commit`
(the journal's appends) and the frontend's async event queue are batchers of this one kind.

- **Filling:** with ``max_wait_s > 0`` the flusher waits up to that long for a batch to fill.
- **Linger:** a request submitted with ``linger_s > 0`` is *lazy*: while only lazy requests are queued
  for its key, the flusher waits up to ``linger_s`` for company. An urgent request (``linger_s == 0``)
  or :meth:`Batcher.hurry` ends the wait at once.
- **Failure:** the batch's callers get the write's error. With ``fence_failed_groups`` the group is dead
  for its key from then on: queued and later requests of that key and group fail with the same error
  (a writer that applied rows in memory never sees a later row written without an earlier one);
  :meth:`Batcher.fail_group` does the same on the writer's word.
- **Cancellation:** a submitted request belongs to the batcher; cancelling the caller only ends its wait.
  If the flusher itself is cancelled (its event loop shutting down) whatever is queued is not written
  and every future is cancelled. :meth:`Batcher.close` waits for everything queued.

Imported by :mod:`journal.group_commit` and ``assignment.frontend.events``; imports nothing of the project.

Example::

    batcher = Batcher(lambda key, group, requests: [len(r) for r in requests], max_rows=256)
    future = batcher.submit("events", None, [row])
    assert await future == 1
    await batcher.close()
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Batcher"]

Key = TypeVar("Key", bound=Hashable)
Group = TypeVar("Group", bound=Hashable)
Row = TypeVar("Row")
Result = TypeVar("Result")


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Request(Generic[Group, Row, Result]):
    __slots__ = ("future", "group", "linger_s", "rows")

    def __init__(self, group: Group, rows: list[Row], future: asyncio.Future[Result], linger_s: float) -> None:
        self.group = group
        self.rows = rows
        self.future = future
        self.linger_s = linger_s


class _Queue(Generic[Group, Row, Result]):
    __slots__ = ("company", "dead", "flusher", "lingering", "more", "pending", "records", "urgent", "waiting")

    def __init__(self) -> None:
        self.pending: deque[_Request[Group, Row, Result]] = deque()
        self.records = 0  # rows queued, not yet in a write
        self.urgent = 0  # queued requests that are not lazy
        self.flusher: asyncio.Task[None] | None = None
        self.more = asyncio.Event()  # set when rows arrive while the flusher waits to fill
        self.waiting = False
        self.company = False  # something arrived (or was asked) that a lingering flusher should not wait past
        self.lingering: asyncio.Future[None] | None = None  # set while the flusher lingers
        #: Groups whose write failed (with ``fence_failed_groups``), with the error their requests get.
        self.dead: dict[Group, BaseException] = {}


class Batcher(Generic[Key, Group, Row, Result]):
    """Shares blocking writes between concurrent submissions; use from one event loop."""

    def __init__(
        self,
        write: Callable[[Key, Group, list[list[Row]]], list[Result]],
        *,
        max_rows: int,
        max_wait_s: float = 0.0,
        fence_failed_groups: bool = False,
        on_written: Callable[[Key], None] | None = None,
        name: str = "batcher",
    ) -> None:
        """``write(key, group, requests)`` returns one result per request, in order; ``on_written(key)``
        runs in the event loop after each successful write."""
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be >= 0")
        self.write = write
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.fence_failed_groups = fence_failed_groups
        self.on_written = on_written
        self.name = name
        #: The queue of each key (read them, never change them: for tests and metrics).
        self.queues: dict[Key, _Queue[Group, Row, Result]] = {}
        self._closed = False
        #: Number of writes made (or attempted), for tests and metrics.
        self.writes = 0

    def _queue(self, key: Key) -> _Queue[Group, Row, Result]:
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = _Queue()
        return queue

    def submit(self, key: Key, group: Group, rows: list[Row], *, linger_s: float = 0.0) -> asyncio.Future[Result]:
        """Queue ``rows`` now (in call order) and return the future of their write's result."""
        if self._closed:
            raise RuntimeError(f"the {self.name} is closed")
        if linger_s < 0:
            raise ValueError("linger_s must be >= 0")
        loop = asyncio.get_running_loop()
        queue = self._queue(key)
        future: asyncio.Future[Result] = loop.create_future()
        dead = queue.dead.get(group)
        if dead is not None:
            future.set_exception(dead)
            return future
        queue.pending.append(_Request(group, rows, future, linger_s))
        queue.records += len(rows)
        if not linger_s:
            queue.urgent += 1
            self._company(queue)
        if queue.waiting:
            queue.more.set()
        if queue.flusher is None or queue.flusher.done():
            queue.flusher = loop.create_task(self._flush(key, queue), name=f"{self.name} flush {key}")
        return future

    def hurry(self, key: Key) -> None:
        """Write what ``key`` has queued without waiting out a linger."""
        queue = self.queues.get(key)
        if queue is not None:
            self._company(queue)

    def fail_group(self, key: Key, group: Group, error: BaseException) -> None:
        """Withdraw ``key``'s queued requests of ``group`` (failing them with ``error``) and refuse its
        later ones. A write already in flight is not withdrawn."""
        queue = self._queue(key)
        self._fence(queue, group, error)
        self._company(queue)

    @staticmethod
    def _company(queue: _Queue[Group, Row, Result]) -> None:
        """End a linger now (or prevent the next one before the next batch is taken)."""
        queue.company = True
        if queue.lingering is not None and not queue.lingering.done():
            queue.lingering.set_result(None)

    @staticmethod
    def _fence(queue: _Queue[Group, Row, Result], group: Group, error: BaseException) -> None:
        """Mark ``group`` dead (keeping the first error) and fail its queued requests with that error."""
        error = queue.dead.setdefault(group, error)
        kept: deque[_Request[Group, Row, Result]] = deque()
        for request in queue.pending:
            if request.group != group:
                kept.append(request)
                continue
            queue.records -= len(request.rows)
            queue.urgent -= not request.linger_s
            if not request.future.done():
                request.future.set_exception(error)
        queue.pending = kept

    async def _flush(self, key: Key, queue: _Queue[Group, Row, Result]) -> None:
        loop = asyncio.get_running_loop()
        while queue.pending:
            if not queue.urgent:
                await self._linger(queue)
                if not queue.pending:
                    break
            if self.max_wait_s > 0 and queue.records < self.max_rows:
                await self._fill(queue)
            queue.company = False  # what arrives from now on is company for the next batch
            batch = self._take(queue)
            group = batch[0].group
            self.writes += 1
            try:
                # run_in_executor rather than asyncio.to_thread: no context copy per write.
                results = await loop.run_in_executor(None, self.write, key, group, [r.rows for r in batch])
            except asyncio.CancelledError:
                # The flusher itself is cancelled (its event loop is shutting down): nobody will write what
                # is queued, and the batch in flight has an unknown outcome. Its callers must not wait forever.
                for request in (*batch, *queue.pending):
                    request.future.cancel()
                queue.pending.clear()
                queue.records = queue.urgent = 0
                raise
            except Exception as exc:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                if self.fence_failed_groups:
                    self._fence(queue, group, exc)
                continue
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():  # a cancelled caller no longer waits
                    request.future.set_result(result)
            if self.on_written is not None:
                self.on_written(key)

    def _take(self, queue: _Queue[Group, Row, Result]) -> list[_Request[Group, Row, Result]]:
        """The next batch: the head request, and those after it of its group while they fit."""
        batch = [queue.pending.popleft()]
        group, rows = batch[0].group, len(batch[0].rows)
        while queue.pending and queue.pending[0].group == group and rows + len(queue.pending[0].rows) <= self.max_rows:
            request = queue.pending.popleft()
            batch.append(request)
            rows += len(request.rows)
        queue.records -= rows
        queue.urgent -= sum(1 for request in batch if not request.linger_s)
        return batch

    async def _linger(self, queue: _Queue[Group, Row, Result]) -> None:
        """While only lazy requests are queued: wait up to the first one's linger for company (a bare
        future and a timer: this runs for every lazy request, so no task per wait)."""
        if queue.company:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(queue.pending[0].linger_s, _settle, waiter)
        queue.lingering = waiter
        try:
            await waiter
        finally:
            timer.cancel()
            queue.lingering = None

    async def _fill(self, queue: _Queue[Group, Row, Result]) -> None:
        """Wait up to ``max_wait_s`` for the queue to hold ``max_rows`` rows."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        queue.waiting = True
        try:
            while queue.records < self.max_rows:
                queue.more.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(queue.more.wait(), remaining)
                except TimeoutError:
                    break
        finally:
            queue.waiting = False

    async def close(self) -> None:
        """Refuse new submissions and wait until everything queued is written (including the requests of
        callers that were cancelled)."""
        self._closed = True
        for queue in self.queues.values():
            self._company(queue)
        flushers = [q.flusher for q in self.queues.values() if q.flusher is not None]
        if flushers:
            await asyncio.gather(*flushers, return_exceptions=True)
