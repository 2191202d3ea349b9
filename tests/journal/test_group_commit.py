"""Group commit: concurrent appends share transactions; each caller gets its own seqs after the commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from journal.errors import EmptyBatch, Fenced, RecordTooLarge
from journal.group_commit import GroupCommitter
from journal.store import MAX_RECORD_BYTES, Journal, PreparedRecord
from tests.journal.records import batch, tag_of, worker


def test_concurrent_appends_share_transactions(journal: Journal) -> None:
    epoch = journal.take_over(0)

    async def main() -> tuple[list[int], int]:
        committer = GroupCommitter(journal, max_batch_records=50)

        async def one(i: int) -> int:
            return await committer.append(0, epoch, batch(f"c{i}", 1 + i % 3))

        results = await asyncio.gather(*(one(i) for i in range(200)))
        await committer.close()
        return list(results), committer.transactions

    results, transactions = asyncio.run(main())
    assert transactions < 200  # batches formed
    entries = {e.seq: e for e in journal.read(0, limit=100_000)}
    assert len(entries) == sum(1 + i % 3 for i in range(200))
    for i, last in enumerate(results):
        n = 1 + i % 3
        # the caller's own records, contiguous, ending at the seq it got back
        assert [tag_of(entries[s].payload) for s in range(last - n + 1, last + 1)] == [
            f"c{i}/{k}/{n}" for k in range(n)
        ]
    journal.verify(0)


def test_bad_request_fails_alone_and_fenced_batch_fails_whole(journal: Journal) -> None:
    old = journal.take_over(0)

    async def main() -> None:
        committer = GroupCommitter(journal)
        with pytest.raises(EmptyBatch):
            await committer.append(0, old, [])
        with pytest.raises(RecordTooLarge):
            await committer.append(0, old, [worker("x" * MAX_RECORD_BYTES)])
        assert await committer.append(0, old, batch("ok", 2)) == 2
        journal.take_over(0)
        outcomes = await asyncio.gather(
            *(committer.append(0, old, batch(f"f{i}", 1)) for i in range(10)), return_exceptions=True
        )
        assert all(isinstance(o, Fenced) for o in outcomes)
        await committer.close()
        with pytest.raises(RuntimeError):
            await committer.append(0, old, batch("closed", 1))

    asyncio.run(main())
    assert journal.info(0).last_seq == 2


def test_max_wait_fills_batches(journal: Journal) -> None:
    epoch = journal.take_over(0)

    async def main() -> int:
        committer = GroupCommitter(journal, max_batch_records=8, max_wait_s=0.2)
        await asyncio.gather(*(committer.append(0, epoch, batch(f"w{i}", 1)) for i in range(16)))
        await committer.close()
        return committer.transactions

    assert asyncio.run(main()) == 2
    assert journal.info(0).last_seq == 16


def test_cancelled_callers_records_are_committed_anyway(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelling a caller only ends its wait: its records, in a transaction or still queued, are committed,
    in order, and the callers that still wait get their own seqs.
    """
    epoch = journal.take_over(0)
    entered, gate = threading.Event(), threading.Event()
    append_prepared = journal.append_prepared

    def gated(partition: int, epoch: int, records: Sequence[PreparedRecord]) -> int:
        entered.set()
        assert gate.wait(30)
        return append_prepared(partition, epoch, records)

    monkeypatch.setattr(journal, "append_prepared", gated)

    async def main() -> None:
        committer = GroupCommitter(journal)
        in_flight = asyncio.create_task(committer.append(0, epoch, batch("a", 1)))
        assert await asyncio.to_thread(entered.wait, 30)  # "a" is in a transaction, blocked in the thread
        queued = asyncio.create_task(committer.append(0, epoch, batch("b", 2)))
        waiting = asyncio.create_task(committer.append(0, epoch, batch("c", 1)))
        while len(committer._queues[0].pending) < 2:  # both handed over, not yet in a transaction
            await asyncio.sleep(0)
        for task in (in_flight, queued):
            task.cancel()
        for task in (in_flight, queued):
            with pytest.raises(asyncio.CancelledError):
                await task
        gate.set()
        assert await waiting == 4  # after a/0 (1) and b/0, b/1 (2, 3): nothing was withdrawn
        await committer.close()

    asyncio.run(main())
    assert [(e.seq, tag_of(e.payload)) for e in journal.read(0)] == [
        (1, "a/0/1"),
        (2, "b/0/2"),
        (3, "b/1/2"),
        (4, "c/0/1"),
    ]
    journal.verify(0)


def test_queued_records_of_cancelled_callers_are_committed(journal: Journal) -> None:
    epoch = journal.take_over(0)

    async def main() -> None:
        committer = GroupCommitter(journal, max_batch_records=1000, max_wait_s=30.0)  # the flusher waits to fill
        tasks = [asyncio.create_task(committer.append(0, epoch, batch(f"x{i}", 1))) for i in range(5)]
        while committer._queues.get(0) is None or committer._queues[0].records < 5:
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(task.cancelled() for task in tasks)
        # The queued records still belong to the committer: filling the batch up to its bound sends it.
        last = await committer.append(0, epoch, batch("fill", 995))
        assert last == 1000
        await committer.close()

    asyncio.run(main())
    assert journal.info(0).last_seq == 1000
    assert [tag_of(e.payload) for e in journal.read(0, limit=5)] == [f"x{i}/0/1" for i in range(5)]


def test_a_lazy_request_lingers_for_company_and_an_urgent_one_ends_the_wait(journal: Journal) -> None:
    epoch = journal.take_over(0)

    async def main() -> None:
        committer = GroupCommitter(journal)
        lazy = committer.submit(0, epoch, batch("lazy", 1), linger_s=30.0)
        for _ in range(5):  # the flusher runs and waits: nothing is committed while only lazy work is queued
            await asyncio.sleep(0)
        assert not lazy.done()
        assert committer.transactions == 0
        assert await committer.append(0, epoch, batch("urgent", 1)) == 2  # one transaction for both
        assert await lazy == 1
        assert committer.transactions == 1
        alone = committer.submit(0, epoch, batch("alone", 1), linger_s=30.0)
        committer.hurry(0)
        assert await alone == 3
        await committer.close()

    asyncio.run(main())
    assert [tag_of(e.payload) for e in journal.read(0)] == ["lazy/0/1", "urgent/0/1", "alone/0/1"]


def test_a_failed_transaction_fails_every_later_request_of_its_epoch(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that applied records in memory must never see a later record committed without an
    earlier one: after a failed transaction its epoch is dead in the committer."""
    epoch = journal.take_over(0)
    real = journal.append_prepared
    calls = 0

    def flaky(partition: int, epoch: int, records: Sequence[PreparedRecord]) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("the database went away")
        return real(partition, epoch, records)

    monkeypatch.setattr(journal, "append_prepared", flaky)

    async def main() -> None:
        committer = GroupCommitter(journal, max_batch_records=1)  # one request per transaction
        first = committer.submit(0, epoch, batch("a", 1))
        second = committer.submit(0, epoch, batch("b", 1))  # queued behind the one that fails
        outcomes = await asyncio.gather(first, second, return_exceptions=True)
        assert all(isinstance(o, OSError) for o in outcomes), outcomes
        with pytest.raises(OSError, match="went away"):
            await committer.append(0, epoch, batch("c", 1))
        newer = journal.take_over(0)  # a new epoch is a new writer: it commits
        assert await committer.append(0, newer, batch("d", 1)) == 1
        await committer.close()

    asyncio.run(main())
    assert calls == 2
    assert [tag_of(e.payload) for e in journal.read(0)] == ["d/0/1"]


def test_fail_epoch_withdraws_what_is_queued_and_refuses_the_rest(journal: Journal) -> None:
    epoch = journal.take_over(0)

    async def main() -> None:
        committer = GroupCommitter(journal)
        queued = committer.submit(0, epoch, batch("q", 1), linger_s=30.0)
        committer.fail_epoch(0, epoch, RuntimeError("the writer dropped its state"))
        with pytest.raises(RuntimeError, match="dropped"):
            await queued
        with pytest.raises(RuntimeError, match="dropped"):
            await committer.append(0, epoch, batch("later", 1))
        await committer.close()

    asyncio.run(main())
    assert journal.info(0).last_seq == 0
