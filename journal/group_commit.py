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

Linger: a request submitted with ``linger_s > 0`` is *lazy* (nobody waits on its answer to serve a user,
like a frontend's Release): while only lazy requests are queued for a partition, the flusher waits up to
``linger_s`` for company, so that one fsync serves it and the next urgent request. An urgent request
(``linger_s == 0``) or :meth:`GroupCommitter.hurry` ends the wait at once.

Failure: when a transaction fails, its epoch is dead for the partition in this committer: every
request of that partition and epoch still queued fails with the same error, and so does every later
one. A journal therefore never holds a record whose predecessors of the same writer were lost, which a
writer that applied its records in memory before appending (a leader) relies on. A writer that drops
its state for another reason withdraws what it still has queued with :meth:`GroupCommitter.fail_epoch`.

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
    lazy = committer.submit(partition, epoch, [release.encode()], linger_s=0.005)  # queued now
    ...
    await committer.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

from journal.checks import check_epoch, check_partition
from journal.store import Journal, PreparedRecord, prepare_records

__all__ = ["GroupCommitter"]


class _Request:
    __slots__ = ("epoch", "future", "linger_s", "records")

    def __init__(self, epoch: int, records: list[PreparedRecord], future: asyncio.Future[int], linger_s: float) -> None:
        self.epoch = epoch
        self.records = records
        self.future = future
        self.linger_s = linger_s


class _Queue:
    __slots__ = ("company", "dead", "flusher", "more", "pending", "records", "urgent", "waiting")

    def __init__(self) -> None:
        self.pending: deque[_Request] = deque()
        self.records = 0  # records queued, not yet in a transaction
        self.urgent = 0  # queued requests that are not lazy
        self.flusher: asyncio.Task[None] | None = None
        self.more = asyncio.Event()
        self.waiting = False  # the flusher waits for ``more`` (max_wait_s > 0)
        self.company = asyncio.Event()  # set when a lingering flusher should commit now
        #: Epochs whose transaction failed, with the error their later requests fail with.
        self.dead: dict[int, BaseException] = {}


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

    async def append(self, partition: int, epoch: int, records: Sequence[bytes], *, linger_s: float = 0.0) -> int:
        """Like :meth:`Journal.append <journal.store.Journal.append>`, sharing a transaction with others.

        Cancelling the caller does not withdraw the records: they are committed all the same (see the
        module's docstring); only the wait for the outcome ends.
        """
        # Not shielded: cancelling the caller cancels this future only; the flusher still commits the
        # request and skips delivering to a future that is already done.
        return await self.submit(partition, epoch, records, linger_s=linger_s)

    def submit(
        self, partition: int, epoch: int, records: Sequence[bytes], *, linger_s: float = 0.0
    ) -> asyncio.Future[int]:
        """Queue records now (in call order) and return the future of their commit: the seq of the last
        one. Raises at once for a bad request; the future fails with the transaction's error."""
        if self._closed:
            raise RuntimeError("the group committer is closed")
        partition = check_partition(partition)
        epoch = check_epoch(epoch)
        if linger_s < 0:
            raise ValueError("linger_s must be >= 0")
        prepared = prepare_records(records)
        loop = asyncio.get_running_loop()
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = _Queue()
        future: asyncio.Future[int] = loop.create_future()
        dead = queue.dead.get(epoch)
        if dead is not None:
            future.set_exception(dead)
            return future
        queue.pending.append(_Request(epoch, prepared, future, linger_s))
        queue.records += len(prepared)
        if not linger_s:
            queue.urgent += 1
            queue.company.set()
        if queue.waiting:
            queue.more.set()
        if queue.flusher is None or queue.flusher.done():
            queue.flusher = loop.create_task(self._flush(partition, queue), name=f"journal-flush-{partition}")
        return future

    def hurry(self, partition: int) -> None:
        """Commit what the partition has queued without waiting out a linger."""
        queue = self._queues.get(partition)
        if queue is not None:
            queue.company.set()

    def fail_epoch(self, partition: int, epoch: int, error: BaseException) -> None:
        """Withdraw the partition's queued requests of ``epoch`` (failing them with ``error``) and refuse
        its later ones: for a writer that dropped the state those records came from. A transaction already
        in flight is not withdrawn."""
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = _Queue()
        queue.dead.setdefault(epoch, error)
        self._fail_queued(queue, epoch, queue.dead[epoch])
        queue.company.set()

    def _fail_queued(self, queue: _Queue, epoch: int, error: BaseException) -> None:
        kept: deque[_Request] = deque()
        for request in queue.pending:
            if request.epoch != epoch:
                kept.append(request)
                continue
            queue.records -= len(request.records)
            queue.urgent -= not request.linger_s
            if not request.future.done():
                request.future.set_exception(error)
        queue.pending = kept

    async def _flush(self, partition: int, queue: _Queue) -> None:
        loop = asyncio.get_running_loop()
        append_prepared = self.journal.append_prepared
        while queue.pending:
            if not queue.urgent:
                await self._linger(queue)
                if not queue.pending:
                    break
            if self.max_wait_s > 0 and queue.records < self.max_batch_records:
                await self._fill(queue)
            queue.company.clear()  # what arrives from now on is company for the next batch
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
            queue.urgent -= sum(1 for request in batch if not request.linger_s)
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
                queue.records = queue.urgent = 0
                raise
            except Exception as exc:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                queue.dead.setdefault(epoch, exc)
                self._fail_queued(queue, epoch, exc)
                continue
            seq = last - count
            for request in batch:
                seq += len(request.records)
                if not request.future.done():  # a cancelled caller no longer waits
                    request.future.set_result(seq)

    async def _linger(self, queue: _Queue) -> None:
        """While only lazy requests are queued: wait up to the first one's linger for company."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queue.company.wait(), queue.pending[0].linger_s)

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
        for queue in self._queues.values():
            queue.company.set()
        flushers = [q.flusher for q in self._queues.values() if q.flusher is not None]
        if flushers:
            await asyncio.gather(*flushers, return_exceptions=True)
