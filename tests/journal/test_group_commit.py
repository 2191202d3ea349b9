"""Group commit: concurrent appends share transactions; each caller gets its own seqs after the commit."""

from __future__ import annotations

import asyncio

import pytest

from journal.errors import EmptyBatch, Fenced, RecordTooLarge
from journal.group_commit import GroupCommitter
from journal.store import MAX_RECORD_BYTES, Journal
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
