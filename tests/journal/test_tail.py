"""Tail: an async iterator that yields new records as they are appended (in-process wake-ups, LISTEN/NOTIFY
on PostgreSQL, polling for other SQLite writers).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from journal.store import Journal
from journal.tail import tail
from tests.journal.records import batch, tag_of

ROOT = Path(__file__).resolve().parents[2]


def test_tail_follows_appends_in_process(journal: Journal) -> None:
    epoch = journal.take_over(0)
    journal.append(0, epoch, batch("before", 2))

    async def main() -> list[str]:
        seen: list[str] = []
        async with tail(journal, 0, after_seq=1, poll_interval_s=30.0) as records:

            async def writer() -> None:
                for i in range(3):
                    await asyncio.to_thread(journal.append, 0, epoch, batch(f"live{i}", 2))

            task = asyncio.create_task(writer())
            async for entry in records:
                seen.append(tag_of(entry.payload))
                if len(seen) == 7:
                    break
            await task
        return seen

    # poll_interval_s=30 and a 20 s deadline: only the wake-up can make this finish in time
    seen = asyncio.run(asyncio.wait_for(main(), 20))
    assert seen == ["before/1/2"] + [f"live{i}/{k}/2" for i in range(3) for k in range(2)]


def test_tail_sees_another_process(journal: Journal, journal_url: str) -> None:
    journal.take_over(0)

    async def main() -> list[int]:
        seqs: list[int] = []
        async with tail(journal, 0, poll_interval_s=0.2 if journal.backend == "sqlite" else 30.0) as records:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c",
                "import sys; from journal.store import Journal; from tests.journal.records import batch\n"
                "j = Journal.open(sys.argv[1]); e = j.take_over(0); j.append(0, e, batch('other', 3)); j.close()",
                journal_url, cwd=ROOT,
            )  # fmt: skip
            async for entry in records:
                seqs.append(entry.seq)
                if len(seqs) == 3:
                    break
            assert await proc.wait() == 0
        return seqs

    assert asyncio.run(asyncio.wait_for(main(), 60)) == [1, 2, 3]
