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
from sqlalchemy import MetaData

from assignment.partition_core import PartitionCore
from assignment.recovery import replay
from journal import schema
from journal.group_commit import GroupCommitter
from journal.store import Journal, prepare_records
from tests.harness.postgres import PostgresServer
from tests.journal.records import worker

pytestmark = pytest.mark.benchmark

APPENDERS = 64
RECORDS = APPENDERS * 192
REPEATS = 5
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


_Row = tuple[int, int, int, str, bytes, int]


def _raw_connect(backend: str, journal: Journal) -> tuple[Callable[[list[_Row]], None], Callable[[], None]]:
    """A raw-driver inserter of journal rows into a table of the journal's own schema (made from its
    SQLAlchemy table, so the columns, types and primary key are the same), one transaction per call:
    the floor is the raw driver inserting the same rows, as the issue puts it.
    """
    table = f"raw_{backend}"
    raw_table = schema.journal.to_metadata(MetaData(), name=table)
    raw_table.primary_key.name = f"{table}_pk"  # PostgreSQL's constraint names are per schema
    raw_table.create(journal.writer, checkfirst=True)
    columns = '("partition", seq, epoch, kind, payload, crc)'
    if backend == "sqlite":
        assert journal.sqlite_path is not None
        con = sqlite3.connect(journal.sqlite_path, isolation_level=None)
        con.execute("PRAGMA synchronous=FULL")

        def insert_sqlite(rows: list[_Row]) -> None:
            con.execute("BEGIN IMMEDIATE")
            con.executemany(f"INSERT INTO {table} {columns} VALUES (?, ?, ?, ?, ?, ?)", rows)
            con.execute("COMMIT")

        return insert_sqlite, con.close
    pg = psycopg.connect(journal.postgres_conninfo())

    def insert_pg(rows: list[_Row]) -> None:
        with pg.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} {columns} VALUES (%s, %s, %s, %s, %s, %s)", rows)
        pg.commit()

    return insert_pg, pg.close


def _journal_rows(payloads: list[bytes], first_seq: int) -> list[_Row]:
    """The journal's rows for ``payloads`` from ``first_seq`` on (partition 0, epoch 1), CRCs included."""
    return [
        (0, seq, 1, kind, payload, schema.record_crc(0, seq, 1, kind, payload))
        for seq, (kind, payload) in enumerate(prepare_records(payloads), first_seq)
    ]


def test_concurrent_appenders(bench_url: tuple[str, str]) -> None:
    """Round 0 of each side warms up (connections, statement caches, the file's first pages) and is not
    counted; then ``REPEATS`` rounds of ours and of the floor alternate, and the medians are compared.
    """
    backend, url = bench_url
    payloads = [_payload(i) for i in range(RECORDS)]
    ours: list[float] = []
    floors: list[float] = []
    latencies: list[float] = []
    with Journal.open(url) as journal:
        insert, close = _raw_connect(backend, journal)
        seq = 1
        for repeat in range(REPEATS + 1):
            epoch = journal.take_over(repeat)

            async def run(partition: int, epoch: int) -> tuple[float, list[float]]:
                committer = GroupCommitter(journal)
                per = RECORDS // APPENDERS
                waits: list[float] = []
                clock = time.perf_counter

                async def appender(k: int) -> None:
                    for i in range(per):
                        began = clock()
                        await committer.append(partition, epoch, [payloads[k * per + i]])
                        waits.append(clock() - began)

                start = clock()
                await asyncio.gather(*(appender(k) for k in range(APPENDERS)))
                elapsed = clock() - start
                await committer.close()
                return per * APPENDERS / elapsed, waits

            rate, waits = asyncio.run(run(repeat, epoch))
            rows = _journal_rows(payloads, seq)
            seq += RECORDS
            start = time.perf_counter()
            for b in range(0, RECORDS, APPENDERS):
                insert(rows[b : b + APPENDERS])
            floor = RECORDS / (time.perf_counter() - start)
            if repeat > 0:
                ours.append(rate)
                floors.append(floor)
                latencies += waits
        close()
    value, floor = statistics.median(ours), statistics.median(floors)
    goal = 20_000 if backend == "sqlite" else 10_000
    verdict = "met" if value >= goal else "MISSED"
    runs = ", ".join(f"{v:,.0f}" for v in ours)
    floor_runs = ", ".join(f"{v:,.0f}" for v in floors)
    _add(backend, f"{APPENDERS} appenders, records/s", value, floor, "rec/s", ">= 0.30",
         f"goal >= {goal:,}/s: {verdict}; runs {runs}; floor runs {floor_runs}; one append under this load:"
         f" p50 {_pct(latencies, 0.5) * 1e3:.2f} ms, p99 {_pct(latencies, 0.99) * 1e3:.2f} ms")  # fmt: skip
    assert value > 0


def test_single_appender_latency(bench_url: tuple[str, str]) -> None:
    backend, url = bench_url
    n = 400
    ours: list[float] = []
    raw: list[float] = []
    with Journal.open(url) as journal:
        insert, close = _raw_connect(backend, journal)
        epoch = journal.take_over(0)
        rows = _journal_rows([_payload(i) for i in range(n)], 10_000_000)
        for i in range(n):
            payload = rows[i][4]
            start = time.perf_counter()
            journal.append(0, epoch, [payload])
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            insert([rows[i]])
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
