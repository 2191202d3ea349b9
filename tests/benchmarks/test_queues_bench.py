"""Queue and event source mapping benchmarks (``make bench``), against floors measured in the same run.

- **Send + Receive + Delete**, in batches of 10 (one SendMessageBatch, one ReceiveMessage of 10, one
  DeleteMessageBatch: three durable transactions per 10 messages), through :class:`QueueStore` on SQLite
  (WAL, ``synchronous=FULL``) and PostgreSQL. Floor: the raw driver doing the same three transactions on a
  table like ``sqs_messages`` (insert 10; select 10 visible and mark them; delete 10). Goal: >= 30% of it.
- **Through a mapping**: messages per second that the pollers of one frontend take from a backlog, hand to
  the function and delete, at BatchSize 10 and 100 (window 1 s), with an instant in-process function (the
  poller's cost, not a sandbox's). Goal: >= 5,000 messages/s at batch 100 on SQLite. Floor: the store's
  own Send+Receive+Delete rate above.
- **Send → handler start**, no batching window: from the call that sends one message to the function
  being called, one message at a time. Goal: p50 <= 20 ms. Floor: one raw durable single-row insert.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from assignment.frontend.event_sources.mappings import MappingSettings, MappingStore
from assignment.frontend.event_sources.poller import EventSourcePollers, PollerConfig
from assignment.frontend.queues import NewMessage, QueueStore
from assignment.frontend.queues.waiting import QueueWaiters
from assignment.frontend.types import InvokeResult
from journal.store import Journal
from tests.benchmarks.report import Row, Stats, print_table
from tests.harness.postgres import PostgresServer

pytestmark = pytest.mark.benchmark

ACCOUNT = "000000000000"
BODY = '{"order": 12345, "sku": "ABC-123", "quantity": 2, "customer": "c-0001", "note": "gift wrap"}'
CYCLES = 300
_rows: list[Row] = []


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    yield
    print_table("queues and event source mappings", _rows)


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'queues.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    url = server.create_schema(schema)
    try:
        yield "postgresql", url
    finally:
        server.drop_schema(schema)


_RAW_TABLE = (
    "CREATE TABLE raw_m (id TEXT PRIMARY KEY, queue TEXT, seq BIGINT, body {blob}, visible BIGINT, token TEXT,"
    " receives INTEGER)"
)
_SELECT = "SELECT id FROM raw_m WHERE queue = {m} AND visible <= {m} ORDER BY seq LIMIT 10"
_UPDATE = "UPDATE raw_m SET visible = {m}, token = {m}, receives = receives + 1 WHERE id = {m}"


def _raw_cycles_per_s(journal: Journal) -> float:
    """Messages/s of the raw driver doing Send+Receive+Delete in batches of 10 (three commits per batch), on
    a table of the journal's own database."""
    con: Any
    if journal.backend == "sqlite":
        assert journal.sqlite_path is not None
        con = sqlite3.connect(journal.sqlite_path, isolation_level=None)
        con.execute("PRAGMA synchronous=FULL")
        con.execute(_RAW_TABLE.format(blob="BLOB"))
        mark, begin = "?", "BEGIN IMMEDIATE"
    else:
        con = psycopg.connect(journal.postgres_conninfo(), autocommit=True)
        con.execute(_RAW_TABLE.format(blob="BYTEA"))
        mark, begin = "%s", "BEGIN"
    cursor = con.cursor()
    con.execute("CREATE INDEX raw_m_visible ON raw_m (queue, visible)")
    seq = 0
    start = time.perf_counter()
    for _ in range(CYCLES):
        cursor.execute(begin)
        rows = []
        for _ in range(10):
            seq += 1
            rows.append((str(uuid.uuid4()), "q", seq, BODY.encode(), 0, "", 0))
        cursor.executemany(f"INSERT INTO raw_m VALUES ({', '.join([mark] * 7)})", rows)
        cursor.execute("COMMIT")
        cursor.execute(begin)
        now = _now()
        ids = [row[0] for row in cursor.execute(_SELECT.format(m=mark), ("q", now)).fetchall()]
        cursor.executemany(_UPDATE.format(m=mark), [(now + 30_000, uuid.uuid4().hex, i) for i in ids])
        cursor.execute("COMMIT")
        cursor.execute(begin)
        cursor.executemany(f"DELETE FROM raw_m WHERE id = {mark}", [(i,) for i in ids])
        cursor.execute("COMMIT")
    rate = CYCLES * 10 / (time.perf_counter() - start)
    con.close()
    return rate


def _store_cycles_per_s(store: QueueStore) -> float:
    store.create_queue(ACCOUNT, "bench", now_ms=_now())
    start = time.perf_counter()
    for _ in range(CYCLES):
        entries = [(str(n), NewMessage(BODY)) for n in range(10)]
        store.send_message_batch(ACCOUNT, "bench", entries, sender_id="AKIABENCH", now_ms=_now())
        received = store.receive_messages(ACCOUNT, "bench", max_messages=10, now_ms=_now())
        assert len(received.messages) == 10
        store.delete_message_batch(
            ACCOUNT, "bench", [(str(n), m.receipt_handle) for n, m in enumerate(received.messages)]
        )
    return CYCLES * 10 / (time.perf_counter() - start)


def test_send_receive_delete(database: tuple[str, str], tmp_path: Path) -> None:
    backend, url = database
    with Journal.open(url) as journal:
        floor = _raw_cycles_per_s(journal)
        rate = _store_cycles_per_s(QueueStore(journal))
    _rows.append(
        Row(
            f"Send+Receive+Delete messages/s, batches of 10, {backend}",
            f"{rate:,.0f}/s",
            f"{floor:,.0f}/s raw driver, same 3 commits per 10",
            f"{rate / floor:.2f}",
            ">= 0.3",
        )
    )
    assert rate > 0


def _instant(seen: list[int], starts: dict[str, int], latencies: dict[str, int]) -> Any:
    """A function that returns at once, counting records and timing the bodies ``starts`` has."""

    async def invoke(function: str, qualifier: str, payload: bytes, request_id: str) -> InvokeResult:
        now = time.perf_counter_ns()
        for record in json.loads(payload)["Records"]:
            seen.append(1)
            body = record["body"]
            if body in starts:
                latencies[body] = now - starts[body]
        return InvokeResult(request_id, b"{}", "$LATEST")

    return invoke


async def _mapping_rate(journal: Journal, batch_size: int, backlog: int) -> float:
    store, mappings, waiters = QueueStore(journal), MappingStore(journal), QueueWaiters()
    name = f"bench{batch_size}"
    store.create_queue(ACCOUNT, name, now_ms=_now())
    for _ in range(backlog // 10):
        store.send_message_batch(
            ACCOUNT, name, [(str(n), NewMessage(BODY)) for n in range(10)], sender_id="AKIABENCH", now_ms=_now()
        )
    seen: list[int] = []
    pollers = EventSourcePollers(
        mappings, store, waiters, _instant(seen, {}, {}), region="us-east-1", account_id=ACCOUNT,
        config=PollerConfig(refresh_s=0.1),
    )  # fmt: skip
    settings = MappingSettings(batch_size=batch_size, batching_window_s=1 if batch_size > 10 else 0)
    mappings.create("bench", "", f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}", settings, now_ms=_now())
    await pollers.start()
    begun = time.perf_counter()
    try:
        while len(seen) < backlog:
            await asyncio.sleep(0.01)  # sampling progress; the figure is the elapsed time
        elapsed = time.perf_counter() - begun
    finally:
        await pollers.stop()
    return backlog / elapsed


async def test_mapping_throughput_and_latency(tmp_path: Path) -> None:
    with Journal.open(f"sqlite:///{tmp_path / 'store.db'}") as journal:
        floor = _store_cycles_per_s(QueueStore(journal))
    for batch_size, backlog in ((10, 3000), (100, 6000)):
        with Journal.open(f"sqlite:///{tmp_path / f'map{batch_size}.db'}") as journal:
            rate = await _mapping_rate(journal, batch_size, backlog)
        _rows.append(
            Row(
                f"through a mapping, messages/s, BatchSize {batch_size}, sqlite",
                f"{rate:,.0f}/s",
                f"{floor:,.0f}/s store Send+Receive+Delete",
                f"{rate / floor:.2f}",
                ">= 5,000/s" if batch_size == 100 else "-",
            )
        )
    # Send -> handler start, one message at a time, no batching window.
    raw = sqlite3.connect(tmp_path / "raw1.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE q (id TEXT PRIMARY KEY, body BLOB)")
    floor_ns = []
    for _ in range(200):
        t = time.perf_counter_ns()
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO q VALUES (?, ?)", (str(uuid.uuid4()), BODY.encode()))
        raw.execute("COMMIT")
        floor_ns.append(time.perf_counter_ns() - t)
    raw.close()
    with Journal.open(f"sqlite:///{tmp_path / 'latency.db'}") as journal:
        store, mappings, waiters = QueueStore(journal), MappingStore(journal), QueueWaiters()
        store.create_queue(ACCOUNT, "latency", now_ms=_now())
        starts: dict[str, int] = {}
        latencies: dict[str, int] = {}
        pollers = EventSourcePollers(
            mappings, store, waiters, _instant([], starts, latencies), region="us-east-1", account_id=ACCOUNT,
            config=PollerConfig(refresh_s=0.1),
        )  # fmt: skip
        mapping = mappings.create(
            "bench", "", f"arn:aws:sqs:us-east-1:{ACCOUNT}:latency", MappingSettings(batch_size=10), now_ms=_now()
        )
        await pollers.start()
        try:
            while mappings.get(mapping.uuid).state != "Enabled":
                await asyncio.sleep(0.01)
            samples = []
            for n in range(200):
                body = f"m{n}"
                starts[body] = time.perf_counter_ns()
                await asyncio.to_thread(
                    store.send_message, ACCOUNT, "latency", NewMessage(body), sender_id="AKIABENCH", now_ms=_now()
                )
                waiters.notify((ACCOUNT, "latency"))  # what the SQS API does after a send commits
                while body not in latencies:
                    await asyncio.sleep(0.0005)  # sampling; the figure is taken inside the function
                samples.append(latencies[body])
        finally:
            await pollers.stop()
    latency, floor_stats = Stats.of(samples), Stats.of(floor_ns)
    _rows.append(
        Row(
            "send -> handler start, p50 / p99, no batching window, sqlite",
            f"{_ms(latency.p50_ns)} / {_ms(latency.p99_ns)}",
            f"{_ms(floor_stats.p50_ns)} raw durable insert",
            f"{latency.p50_ns / floor_stats.p50_ns:.1f}",
            "p50 <= 20 ms",
        )
    )
