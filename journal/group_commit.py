"""Group commit: concurrent asyncio appends to a partition share one transaction (a
:class:`~journal.batching.Batcher` keyed by partition and grouped by epoch).

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
from collections.abc import Sequence

from journal.batching import Batcher
from journal.checks import check_epoch, check_partition
from journal.store import Journal, PreparedRecord, prepare_records

__all__ = ["GroupCommitter"]


class GroupCommitter:
    """Shares transactions between concurrent appends; use from one event loop."""

    def __init__(self, journal: Journal, *, max_batch_records: int = 1024, max_wait_s: float = 0.0) -> None:
        """``max_batch_records``: most records in one transaction (the batcher's ``max_rows``);
        ``max_wait_s``: how long a flusher waits for a batch to fill (0: not at all)."""
        self.journal = journal
        self._batcher: Batcher[int, int, PreparedRecord, int] = Batcher(
            self._append,
            max_rows=max_batch_records,
            max_wait_s=max_wait_s,
            fence_failed_groups=True,
            name="group committer",
        )
        #: The per-partition queues (tests look at what is queued).
        self._queues = self._batcher.queues

    @property
    def transactions(self) -> int:
        """Number of transactions committed (or attempted), for tests and metrics."""
        return self._batcher.writes

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
        partition = check_partition(partition)
        epoch = check_epoch(epoch)
        return self._batcher.submit(partition, epoch, prepare_records(records), linger_s=linger_s)

    def hurry(self, partition: int) -> None:
        """Commit what the partition has queued without waiting out a linger."""
        self._batcher.hurry(partition)

    def fail_epoch(self, partition: int, epoch: int, error: BaseException) -> None:
        """Withdraw the partition's queued requests of ``epoch`` (failing them with ``error``) and refuse
        its later ones: for a writer that dropped the state those records came from. A transaction already
        in flight is not withdrawn."""
        self._batcher.fail_group(partition, epoch, error)

    def _append(self, partition: int, epoch: int, requests: list[list[PreparedRecord]]) -> list[int]:
        """One transaction for the requests (in a worker thread); the seq of each request's last record."""
        records = [record for request in requests for record in request]
        seq = self.journal.append_prepared(partition, epoch, records) - len(records)
        seqs = []
        for request in requests:
            seq += len(request)
            seqs.append(seq)
        return seqs

    async def close(self) -> None:
        """Refuse new appends and wait until everything queued is committed (including the records of
        callers that were cancelled).
        """
        await self._batcher.close()
