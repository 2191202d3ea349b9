"""Group commit: concurrent asyncio appends to a partition share one transaction.

Each caller's records are validated in its own coroutine (a bad request fails alone), queued, and
committed by the partition's flusher together with whatever else is queued, in one
:meth:`~journal.store.Journal.append_prepared` transaction run in a worker thread. A caller resumes
only after the commit that holds its records, with the seq of its own last record. One request's
records are never split across transactions. Requests of different epochs are never mixed. Requests
are committed in the order :meth:`GroupCommitter.append` was called (per partition), one transaction at
a time, so a caller that appends after another's append returned gets the higher seqs.

Bounds: a transaction takes requests until it holds ``max_batch_records`` records (a single larger
request goes alone). With ``max_wait_s > 0`` the flusher waits up to that long for a batch to fill
before committing; by default it does not wait: requests that arrive while a commit is in flight form
the next batch, which is what makes batches under load.

Cancellation: once :meth:`GroupCommitter.append` is called its records belong to the committer (the
hand-over happens before the call first suspends, so there is no window in between). Cancelling the
caller only stops its wait: the records are committed with their batch all the same, as if the caller
had been answered and then gone away; their outcome (the seq, or the error the batch failed with) is
simply not delivered. Records are never withdrawn, so a caller that applied them somewhere before
appending (a leader's in-memory state) can rely on the journal holding them unless the batch fails,
and a failed batch fails the same way whether or not its callers are still waiting.
:meth:`GroupCommitter.close` waits for such records too. The one exception is the committer's own
flusher task being cancelled (its event loop shutting down): then whatever is still queued is not
committed and every waiting caller gets :class:`asyncio.CancelledError`.

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

from journal.checks import check_epoch as _check_epoch
from journal.checks import check_partition as _check_partition
from journal.store import Journal, PreparedRecord, prepare_records

__all__ = ["GroupCommitter"]


class _Request:
    __slots__ = ("epoch", "future", "records")

    def __init__(self, epoch: int, records: list[PreparedRecord], future: asyncio.Future[int]) -> None:
        self.epoch = epoch
        self.records = records
        self.future = future


class _Queue:
    __slots__ = ("flusher", "more", "pending", "records", "waiting")

    def __init__(self) -> None:
        self.pending: deque[_Request] = deque()
        self.records = 0
        self.flusher: asyncio.Task[None] | None = None
        self.more = asyncio.Event()
        self.waiting = False  # the flusher waits for ``more`` (max_wait_s > 0)


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
        """Like :meth:`Journal.append <journal.store.Journal.append>`, sharing a transaction with others.

        Cancelling the caller does not withdraw the records: they are committed all the same (see the
        module's docstring); only the wait for the outcome ends.
        """
        if self._closed:
            raise RuntimeError("the group committer is closed")
        partition = _check_partition(partition)
        epoch = _check_epoch(epoch)
        prepared = prepare_records(records)
        loop = asyncio.get_running_loop()
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = _Queue()
        future: asyncio.Future[int] = loop.create_future()
        queue.pending.append(_Request(epoch, prepared, future))
        queue.records += len(prepared)
        if queue.waiting:
            queue.more.set()
        if queue.flusher is None or queue.flusher.done():
            queue.flusher = loop.create_task(self._flush(partition, queue), name=f"journal-flush-{partition}")
        # Not shielded: cancelling the caller cancels this future only; the flusher still commits the
        # request and skips delivering to a future that is already done.
        return await future

    async def _flush(self, partition: int, queue: _Queue) -> None:
        loop = asyncio.get_running_loop()
        append_prepared = self.journal.append_prepared
        while queue.pending:
            if self.max_wait_s > 0 and queue.records < self.max_batch_records:
                await self._fill(queue)
            batch = [queue.pending.popleft()]
            epoch = batch[0].epoch
            records = list(batch[0].records)
            while (
                queue.pending
                and queue.pending[0].epoch == epoch
                and len(records) + len(queue.pending[0].records) <= self.max_batch_records
            ):
                request = queue.pending.popleft()
                batch.append(request)
                records += request.records
            count = len(records)
            queue.records -= count
            self.transactions += 1
            try:
                # run_in_executor rather than asyncio.to_thread: no context copy per transaction.
                last = await loop.run_in_executor(None, append_prepared, partition, epoch, records)
            except asyncio.CancelledError:
                # The flusher itself is cancelled (its event loop is shutting down): nobody will commit
                # what is queued, and the batch in flight has an unknown outcome. Its callers must not
                # wait forever.
                for request in (*batch, *queue.pending):
                    request.future.cancel()
                queue.pending.clear()
                queue.records = 0
                raise
            except Exception as exc:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            seq = last - count
            for request in batch:
                seq += len(request.records)
                if not request.future.done():  # a cancelled caller no longer waits
                    request.future.set_result(seq)

    async def _fill(self, queue: _Queue) -> None:
        """Wait up to ``max_wait_s`` for the queue to hold ``max_batch_records`` records."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        queue.waiting = True
        try:
            while queue.records < self.max_batch_records:
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
        """Refuse new appends and wait until everything queued is committed (including the records of
        callers that were cancelled).
        """
        self._closed = True
        flushers = [q.flusher for q in self._queues.values() if q.flusher is not None]
        if flushers:
            await asyncio.gather(*flushers, return_exceptions=True)
