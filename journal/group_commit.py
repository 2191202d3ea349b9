"""Group commit: concurrent asyncio appends to a partition share one transaction.

Each caller's records are validated in its own coroutine (a bad request fails alone), queued, and
committed by the partition's flusher together with whatever else is queued, in one
:meth:`~journal.store.Journal.append_prepared` transaction run in a worker thread. A caller resumes
only after the commit that holds its records, with the seq of its own last record. One request's
records are never split across transactions. Requests of different epochs are never mixed.

Bounds: a transaction takes requests until it holds ``max_batch_records`` records (a single larger
request goes alone). With ``max_wait_s > 0`` the flusher waits up to that long for a batch to fill
before committing; by default it does not wait: requests that arrive while a commit is in flight form
the next batch, which is what makes batches under load.

Cancelling a caller whose records are already in a transaction does not withdraw them.

Example::

    committer = GroupCommitter(journal)
    last_seq = await committer.append(partition, epoch, [record.encode()])
    ...
    await committer.close()
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from journal.store import Journal, PreparedRecord, _check_epoch, _check_partition, prepare_records

__all__ = ["GroupCommitter"]


@dataclass(slots=True)
class _Request:
    epoch: int
    records: list[PreparedRecord]
    future: asyncio.Future[int]


class _Queue:
    __slots__ = ("flusher", "more", "pending", "records")

    def __init__(self) -> None:
        self.pending: deque[_Request] = deque()
        self.records = 0
        self.flusher: asyncio.Task[None] | None = None
        self.more = asyncio.Event()


class GroupCommitter:
    """Shares transactions between concurrent appends; use from one event loop."""

    def __init__(self, journal: Journal, *, max_batch_records: int = 1024, max_wait_s: float = 0.0) -> None:
        if max_batch_records < 1:
            raise ValueError("max_batch_records must be >= 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be >= 0")
        self.journal = journal
        self.max_batch_records = max_batch_records
        self.max_wait_s = max_wait_s
        self._queues: dict[int, _Queue] = {}
        self._closed = False
        #: Number of transactions committed (or attempted), for tests and metrics.
        self.transactions = 0

    async def append(self, partition: int, epoch: int, records: Sequence[bytes]) -> int:
        """Like :meth:`Journal.append <journal.store.Journal.append>`, sharing a transaction with others."""
        if self._closed:
            raise RuntimeError("the group committer is closed")
        partition = _check_partition(partition)
        epoch = _check_epoch(epoch)
        prepared = prepare_records(records)
        loop = asyncio.get_running_loop()
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = _Queue()
        request = _Request(epoch, prepared, loop.create_future())
        queue.pending.append(request)
        queue.records += len(prepared)
        queue.more.set()
        if queue.flusher is None or queue.flusher.done():
            queue.flusher = loop.create_task(self._flush(partition, queue), name=f"journal-flush-{partition}")
        try:
            return await asyncio.shield(request.future)
        except asyncio.CancelledError:
            if request in queue.pending:  # not yet handed to a transaction: withdraw it
                queue.pending.remove(request)
                queue.records -= len(prepared)
            raise

    async def _flush(self, partition: int, queue: _Queue) -> None:
        while queue.pending:
            if self.max_wait_s > 0 and queue.records < self.max_batch_records:
                deadline = asyncio.get_running_loop().time() + self.max_wait_s
                while queue.records < self.max_batch_records:
                    queue.more.clear()
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0:
                        break
                    try:
                        await asyncio.wait_for(queue.more.wait(), remaining)
                    except TimeoutError:
                        break
                if not queue.pending:
                    return
            batch = [queue.pending.popleft()]
            count = len(batch[0].records)
            while (
                queue.pending
                and queue.pending[0].epoch == batch[0].epoch
                and count + len(queue.pending[0].records) <= self.max_batch_records
            ):
                request = queue.pending.popleft()
                batch.append(request)
                count += len(request.records)
            queue.records -= count
            records = [record for request in batch for record in request.records]
            self.transactions += 1
            try:
                last = await asyncio.to_thread(self.journal.append_prepared, partition, batch[0].epoch, records)
            except Exception as exc:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            seq = last - count
            for request in batch:
                seq += len(request.records)
                if not request.future.done():
                    request.future.set_result(seq)

    async def close(self) -> None:
        """Refuse new appends and wait until everything queued is committed."""
        self._closed = True
        flushers = [q.flusher for q in self._queues.values() if q.flusher is not None]
        if flushers:
            await asyncio.gather(*flushers, return_exceptions=True)
