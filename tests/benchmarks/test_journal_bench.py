"""Journal benchmarks (``make bench``): group-commit throughput, single-append latency and replay speed,
each against a floor measured in the same run on the same database with the raw driver.

Goals (issue 3): 64 concurrent appenders of one ~100-byte record each, durable: >= 20,000 records/s on
SQLite and >= 10,000 on PostgreSQL, and >= 30% of the raw driver inserting the same rows in batches of 64;
one appender's p50 latency <= 2x one raw durable single-row insert; replay >= 200,000 records/s.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from assignment.partition_core import PartitionCore
from journal.group_commit import GroupCommitter
from journal.replay import replay
from journal.store import Journal
from tests.harness.postgres import PostgresServer
from tests.journal.records import worker

pytestmark = pytest.mark.benchmark

APPENDERS = 64
RECORDS = APPENDERS * 192
REPEATS = 3
_rows: list[tuple[str, str, str, str, str, str]] = []


def _machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}"


def _payload(i: int) -> bytes:
    record = worker(f"bench-{i:08d}-" + "x" * 40)
    return record


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _add(backend: str, figure: str, value: float, floor: float, unit: str, goal: str, extra: str = "") -> None:
    ratio = value / floor if floor else float("nan")
    _rows.append((backend, figure, f"{value:,.0f} {unit}", f"{floor:,.0f} {unit}", f"{ratio:.2f} ({goal})", extra))


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    print(f"\njournal benchmarks on {_machine()}")
    header = ("backend", "figure", "value", "floor", "ratio (goal)", "detail")
    widths = [max(len(str(r[i])) for r in [header, *_rows]) for i in range(len(header))]
    for row in [header, *_rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


@pytest.fixture(params=["sqlite", "postgresql"])
def bench_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'bench.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_schema("bench")
    yield "postgresql", url
    server.drop_schema("bench")


def _raw_connect(
    backend: str, journal: Journal
) -> tuple[Callable[[list[tuple[int, bytes]]], None], Callable[[], None]]:
    """A raw-driver inserter of (seq, payload) rows into a table like the journal's, one transaction per call."""
    if backend == "sqlite":
        assert journal.sqlite_path is not None
        con = sqlite3.connect(journal.sqlite_path, isolation_level=None)
        con.execute("PRAGMA synchronous=FULL")
        con.execute(
            "CREATE TABLE IF NOT EXISTS raw_rows"
            " (p INTEGER, seq INTEGER, payload BLOB, PRIMARY KEY (p, seq)) WITHOUT ROWID"
        )

        def insert_sqlite(rows: list[tuple[int, bytes]]) -> None:
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT INTO raw_rows VALUES (0, ?, ?)", rows)
            con.execute("COMMIT")

        return insert_sqlite, con.close
    pg = psycopg.connect(journal.postgres_conninfo())
    pg.execute("CREATE TABLE IF NOT EXISTS raw_rows (p integer, seq bigint, payload bytea, PRIMARY KEY (p, seq))")
    pg.commit()

    def insert_pg(rows: list[tuple[int, bytes]]) -> None:
        with pg.cursor() as cur:
            cur.executemany("INSERT INTO raw_rows VALUES (0, %s, %s)", rows)
        pg.commit()

    return insert_pg, pg.close


def test_concurrent_appenders(bench_url: tuple[str, str]) -> None:
    backend, url = bench_url
    payloads = [_payload(i) for i in range(RECORDS)]
    ours: list[float] = []
    floors: list[float] = []
    with Journal.open(url) as journal:
        insert, close = _raw_connect(backend, journal)
        seq = 0
        for repeat in range(REPEATS):
            epoch = journal.take_over(repeat)

            async def run(partition: int, epoch: int) -> float:
                committer = GroupCommitter(journal)
                per = RECORDS // APPENDERS

                async def appender(k: int) -> None:
                    for i in range(per):
                        await committer.append(partition, epoch, [payloads[k * per + i]])

                start = time.perf_counter()
                await asyncio.gather(*(appender(k) for k in range(APPENDERS)))
                elapsed = time.perf_counter() - start
                await committer.close()
                return per * APPENDERS / elapsed

            ours.append(asyncio.run(run(repeat, epoch)))
            start = time.perf_counter()
            for b in range(0, RECORDS, APPENDERS):
                insert([(seq + i, payloads[b + i]) for i in range(APPENDERS)])
                seq += APPENDERS
            floors.append(RECORDS / (time.perf_counter() - start))
        close()
    value, floor = statistics.median(ours), statistics.median(floors)
    goal = 20_000 if backend == "sqlite" else 10_000
    runs = ", ".join(f"{v:,.0f}" for v in ours)
    verdict = "met" if value >= goal else "MISSED"
    _add(backend, f"{APPENDERS} appenders, records/s", value, floor, "rec/s", ">= 0.30",
         f"goal >= {goal:,}/s: {verdict}; runs {runs}")  # fmt: skip
    assert value > 0


def test_single_appender_latency(bench_url: tuple[str, str]) -> None:
    backend, url = bench_url
    n = 400
    ours: list[float] = []
    raw: list[float] = []
    with Journal.open(url) as journal:
        insert, close = _raw_connect(backend, journal)
        epoch = journal.take_over(0)
        for i in range(n):
            payload = _payload(i)
            start = time.perf_counter()
            journal.append(0, epoch, [payload])
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            insert([(10_000_000 + i, payload)])
            raw.append(time.perf_counter() - start)
        close()
    p50, floor = statistics.median(ours) * 1e6, statistics.median(raw) * 1e6
    _add(backend, "1 appender p50 latency", p50, floor, "us", "<= 2.0",
         f"p99 {_pct(ours, 0.99) * 1e6:,.0f} us vs raw p99 {_pct(raw, 0.99) * 1e6:,.0f} us")  # fmt: skip
    assert p50 > 0


def test_replay_speed(bench_url: tuple[str, str]) -> None:
    backend, url = bench_url
    count = 60_000
    with Journal.open(url) as journal:
        epoch = journal.take_over(0)
        core = PartitionCore()
        core.apply_all(core.start_epoch(epoch) + core.join_worker("w1", "zone-a", "10.0.0.1:7001", 8192))
        records = [r for cap in range(count) for r in core.update_worker("w1", 1024 + cap % 7, True)]
        journal.append(0, epoch, [r.encode() for r in PartitionCore().start_epoch(epoch)])
        journal.append(
            0, epoch, [r.encode() for r in PartitionCore().join_worker("w1", "zone-a", "10.0.0.1:7001", 8192)]
        )
        encoded = [r.encode() for r in records]
        for b in range(0, len(encoded), 5000):
            journal.append(0, epoch, encoded[b : b + 5000])
        rates = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            rebuilt = replay(journal, 0)
            rates.append((count + 2) / (time.perf_counter() - start))
        assert rebuilt.worker_count == 1
    value = statistics.median(rates)
    _add(backend, "replay into the core, records/s", value, 200_000, "rec/s", ">= 1.0 (floor = goal)",
         f"runs {', '.join(f'{v:,.0f}' for v in rates)}")  # fmt: skip
