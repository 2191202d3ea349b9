"""Following a partition: an async iterator over new records that wakes when they are appended.

Wake-ups: appends made through the tail's own :class:`~journal.store.Journal` wake it at once; on
PostgreSQL appends from other hosts (or other ``Journal`` objects) arrive by LISTEN/NOTIFY; otherwise
(SQLite written by another process or ``Journal``) the tail polls every ``poll_interval_s``. Either way
it reads by seq with :meth:`~journal.store.Journal.read`, so a missed wake-up only delays, and every
record is checked.

Example::

    async with tail(journal, partition, after_seq=recovery.last_seq) as records:
        async for entry in records:
            core.apply(Record.decode(entry.payload))
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from types import TracebackType

import psycopg

from journal.checks import MAX_BIGINT, check_int, check_partition
from journal.store import Entry, Journal, notify_channel

__all__ = ["Tail", "tail"]


class Tail:
    """Async iterator over the records of one partition after ``after_seq``, forever (until closed)."""

    def __init__(
        self, journal: Journal, partition: int, after_seq: int = 0, *, poll_interval_s: float | None = None,
        page: int = 1000,
    ) -> None:  # fmt: skip
        self.journal = journal
        self.partition = check_partition(partition)
        self.after_seq = check_int("after_seq", after_seq, 0, MAX_BIGINT)
        if poll_interval_s is None:
            poll_interval_s = 0.1 if journal.backend == "sqlite" else 1.0
        self.poll_interval_s = poll_interval_s
        self.page = page
        self._buffer: deque[Entry] = deque()
        self._wake = asyncio.Event()
        self._unsubscribe: object = None
        self._listener: asyncio.Task[None] | None = None
        self._pg: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._started = False
        self._closed = False

    async def _start(self) -> None:
        self._started = True
        loop = asyncio.get_running_loop()
        wake = self._wake

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        self._unsubscribe = self.journal.subscribe(self.partition, wake_up)
        if self.journal.backend == "postgresql":
            self._pg = await psycopg.AsyncConnection.connect(self.journal.postgres_conninfo(), autocommit=True)
            await self._pg.execute(f'LISTEN "{notify_channel(self.partition)}"')
            self._listener = loop.create_task(self._listen(self._pg), name=f"journal-listen-{self.partition}")

    async def _listen(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        with contextlib.suppress(psycopg.Error):
            async for _ in conn.notifies():
                self._wake.set()

    def __aiter__(self) -> Tail:
        return self

    async def __anext__(self) -> Entry:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            await self._start()
        while not self._buffer:
            self._wake.clear()
            entries = await asyncio.to_thread(self.journal.read, self.partition, self.after_seq, self.page)
            if entries:
                self._buffer.extend(entries)
                self.after_seq = entries[-1].seq
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            if self._closed:
                raise StopAsyncIteration
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Stop following: unsubscribe and close the LISTEN connection."""
        self._closed = True
        if callable(self._unsubscribe):
            self._unsubscribe()
            self._unsubscribe = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pg is not None:
            await self._pg.close()
            self._pg = None

    async def __aenter__(self) -> Tail:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def tail(journal: Journal, partition: int, after_seq: int = 0, *, poll_interval_s: float | None = None) -> Tail:
    """Follow ``partition`` from ``after_seq``; use as ``async with tail(...) as records: async for ...``."""
    return Tail(journal, partition, after_seq, poll_interval_s=poll_interval_s)
