"""Async invocation benchmarks (``make bench``): the event queue's accept rate and accept-to-start latency,
on a durable SQLite database (WAL, ``synchronous=FULL``), against floors measured in the same run with
the raw ``sqlite3`` driver on a database of its own:

- accept rate: 32 concurrent enqueuers of ~100-byte events through :meth:`EventQueue.enqueue` (each
  returns only after its commit); floors: the raw driver inserting the same rows one per durable
  transaction (what an accept without group commit costs) and 32 per transaction (the batching ceiling).
  Goal: >= 1x the first floor and >= 30% of the second.
- accept-to-start latency: one event at a time, from the call of ``enqueue`` to the fake (instant) invoke
  being called by an :class:`EventPoller` in the same process; floor: one raw durable single-row insert.
  Goal: p50 <= 4x the floor (an accept is one commit, a claim another, plus two thread hops).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assignment.frontend.events import EventPoller, EventQueue
from assignment.frontend.types import EventInvokeConfig, InvokeResult
from journal.store import Journal
from tests.benchmarks.report import Row, Stats, durable_insert_latency, print_table

pytestmark = pytest.mark.benchmark

ENQUEUERS = 32
EVENTS = ENQUEUERS * 100
LATENCY_SAMPLES = 300
PAYLOAD = b'{"bucket": "images", "key": "2026/11/22/photo-0001.png", "size": 123456, "etag": "abcdef"}'
_rows: list[Row] = []


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    print_table("async invocation (event queue, SQLite durable)", _rows)


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"


def _raw_floor(path: Path, rows: list[tuple[str, bytes]], per_tx: int) -> float:
    """Rows per second the raw driver inserts into a table like ``event_queue``, ``per_tx`` per commit."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(
        "CREATE TABLE q (request_id TEXT PRIMARY KEY, function TEXT, qualifier TEXT, payload BLOB, state TEXT,"
        " enqueued_ms INTEGER, next_run_ms INTEGER, attempts INTEGER, function_errors INTEGER, throttles INTEGER,"
        " claimed_by TEXT, claim_token TEXT, claimed_until_ms INTEGER, finished_ms INTEGER)"
    )
    con.execute("CREATE INDEX q_due ON q (state, next_run_ms)")
    con.execute("CREATE INDEX q_fn ON q (function, state)")
    sql = "INSERT INTO q VALUES (?, 'bench', '$LATEST', ?, 'queued', ?, ?, 0, 0, 0, '', '', 0, 0)"
    start = time.perf_counter()
    for i in range(0, len(rows), per_tx):
        con.execute("BEGIN IMMEDIATE")
        now = int(time.time() * 1000)
        con.executemany(sql, [(r, p, now, now) for r, p in rows[i : i + per_tx]])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return len(rows) / elapsed


async def test_accept_rate(tmp_path: Path) -> None:
    ids = [str(uuid.uuid4()) for _ in range(EVENTS)]
    single = _raw_floor(tmp_path / "raw1.db", [(i, PAYLOAD) for i in ids], 1)
    batched = _raw_floor(tmp_path / "raw32.db", [(i, PAYLOAD) for i in ids], ENQUEUERS)
    with Journal.open(f"sqlite:///{tmp_path / 'events.db'}") as journal:
        queue = EventQueue(journal)
        per = EVENTS // ENQUEUERS

        async def enqueuer(k: int) -> None:
            for request_id in ids[k * per : (k + 1) * per]:
                assert await queue.enqueue("bench", "$LATEST", PAYLOAD, request_id)

        start = time.perf_counter()
        await asyncio.gather(*(enqueuer(k) for k in range(ENQUEUERS)))
        rate = EVENTS / (time.perf_counter() - start)
        assert await queue.depth() == EVENTS
    _rows.append(
        Row(
            f"accepts/s, {ENQUEUERS} concurrent enqueuers",
            f"{rate:,.0f}/s",
            f"{single:,.0f}/s raw, 1 row per commit",
            f"{rate / single:.2f}",
            ">= 1",
        )
    )
    _rows.append(
        Row(
            f"accepts/s, {ENQUEUERS} concurrent enqueuers",
            f"{rate:,.0f}/s",
            f"{batched:,.0f}/s raw, {ENQUEUERS} rows per commit",
            f"{rate / batched:.2f}",
            ">= 0.3",
        )
    )


async def test_accept_to_start_latency(tmp_path: Path) -> None:
    floor = durable_insert_latency(tmp_path / "raw.db", LATENCY_SAMPLES, PAYLOAD)
    started: dict[str, int] = {}
    arrived = asyncio.Event()

    async def invoke(function: str, qualifier: str, payload: bytes, request_id: str) -> InvokeResult:
        started[request_id] = time.perf_counter_ns()
        arrived.set()
        return InvokeResult(request_id, b"null", "$LATEST")

    async def config_of(function: str, qualifier: str) -> EventInvokeConfig:
        return EventInvokeConfig()

    samples: list[int] = []
    with Journal.open(f"sqlite:///{tmp_path / 'events.db'}") as journal:
        queue = EventQueue(journal)
        poller = EventPoller(queue, invoke, config_of, poll_interval_s=1.0)
        await poller.start()
        try:
            for _ in range(LATENCY_SAMPLES):
                request_id = str(uuid.uuid4())
                arrived.clear()
                begin = time.perf_counter_ns()
                assert await queue.enqueue("bench", "$LATEST", PAYLOAD, request_id)
                await asyncio.wait_for(arrived.wait(), 10)
                samples.append(started[request_id] - begin)
        finally:
            await poller.stop()
    stats = Stats.of(samples)
    _rows.append(Row("accept-to-start p50", _ms(stats.p50_ns), _ms(floor.p50_ns) + " raw insert p50",
                     f"{stats.p50_ns / floor.p50_ns:.2f}", "<= 4"))  # fmt: skip
    _rows.append(Row("accept-to-start p99", _ms(stats.p99_ns), _ms(floor.p99_ns) + " raw insert p99",
                     f"{stats.p99_ns / floor.p99_ns:.2f}", "-"))  # fmt: skip
