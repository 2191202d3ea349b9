"""Partition core benchmark: the hot path through the Python API, against the reference model.

A partition of 10,000 workers (3 zones) and 100,000 idle sandboxes over 1,000 functions. Both the Rust
core and the pure-Python reference model (``tests/core/reference.py``) get the same records, so they
hold the same state; the reference is the floor of the comparison. Run with ``make bench``.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from assignment.partition_core import PartitionCore, Record
from journal.v1 import records_pb2
from tests.benchmarks.report import Row, Stats, print_table, us
from tests.core.reference import ReferenceCore

WORKERS = 10_000
FUNCTIONS = 1_000
PER_FUNCTION = 100
ZONES = 3
CONFIG: dict[str, int] = {"account_limit": 1_000_000, "scale_up_per_window": 1_000_000}

pytestmark = pytest.mark.benchmark


def setup_records() -> Iterator[list[bytes]]:
    """The partition's history in chunks: an epoch, the workers, then each function's sandboxes."""
    yield [records_pb2.Record(epoch_started=records_pb2.EpochStarted(epoch=1)).SerializeToString()]
    yield [
        records_pb2.Record(
            worker_joined=records_pb2.WorkerJoined(
                worker_id=f"w{i:05d}",
                zone=f"zone-{i % ZONES}",
                address=f"10.1.{i // 250}.{i % 250}:7000",
                capacity_mb=16_384,
            )
        ).SerializeToString()
        for i in range(WORKERS)
    ]
    sandbox_id = 1
    for f in range(FUNCTIONS):
        chunk = []
        for k in range(PER_FUNCTION):
            worker = f"w{(f * 7919 + k * 104_729) % WORKERS:05d}"
            creating = records_pb2.SandboxCreating(
                sandbox_id=sandbox_id, worker_id=worker, function=f"fn-{f:04d}", version="1", memory_mb=256, now_ms=0
            )
            chunk.append(records_pb2.Record(sandbox_creating=creating).SerializeToString())
            created = records_pb2.SandboxCreated(sandbox_id=sandbox_id, now_ms=0)
            chunk.append(records_pb2.Record(sandbox_created=created).SerializeToString())
            sandbox_id += 1
        yield chunk


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def timed(op: Callable[[int], Any], n: int) -> Stats:
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        op(i)
        samples.append(clock() - start)
    return Stats.of(samples)


def test_partition_core_hot_path() -> None:
    gc.collect()
    before = rss_bytes()
    core = PartitionCore(**CONFIG)
    for chunk in setup_records():
        core.apply_all(Record.decode(r) for r in chunk)
    gc.collect()
    per_sandbox = (rss_bytes() - before) / (FUNCTIONS * PER_FUNCTION)

    reference = ReferenceCore(**CONFIG)
    for chunk in setup_records():
        reference.apply_all(records_pb2.Record.FromString(r) for r in chunk)
    assert core.sandbox_count == reference.sandbox_count == FUNCTIONS * PER_FUNCTION

    # The first 200 functions are busy: every sandbox leased, so their next acquire is a cold start
    # that ranks the version's 100 holders (a busy function scaling out).
    now = 1_000
    busy = [f"fn-{f:04d}" for f in range(200)]
    for function in busy:
        for _ in range(PER_FUNCTION):
            records = core.acquire(function, "1", 256, 3_000, now, apply=True).records
            reference.apply_all(records_pb2.Record.FromString(r.encode()) for r in records)
    rng = random.Random(42)
    idle = [f"fn-{rng.randrange(200, FUNCTIONS):04d}" for _ in range(200_000)]
    busy_order = [busy[rng.randrange(len(busy))] for _ in range(100_000)]

    def warm_pair(target: Any, i: int) -> None:
        decision = target.acquire(idle[i], "1", 256, 3_000, now)
        target.apply_all(decision.records)
        target.apply_all(target.release(decision.token, "ok", now))

    def warm_pair_applied(i: int) -> None:
        token = core.acquire(idle[i], "1", 256, 3_000, now, apply=True).token
        assert token is not None
        core.release(token, "ok", now, apply=True)

    def cold_decision(target: Any, i: int) -> None:
        target.acquire(busy_order[i], "1", 256, 3_000, now)

    assert core.acquire(idle[0], "1", 256, 3_000, now).outcome == "warm"
    assert core.acquire(busy[0], "1", 256, 3_000, now).outcome == "cold"
    assert reference.acquire(busy[0], "1", 256, 3_000, now).outcome == "cold"

    rust_warm = timed(warm_pair_applied, 200_000)
    rust_warm_separate = timed(lambda i: warm_pair(core, i), 200_000)
    ref_warm = timed(lambda i: warm_pair(reference, i), 200)
    rust_cold = timed(lambda i: cold_decision(core, i), 100_000)
    ref_cold = timed(lambda i: cold_decision(reference, i), 30)
    assert core.state()["pools"] == reference.state()["pools"], "both models must end in the same state"

    rows = [
        Row(
            "warm pair, decide then apply_all (5 calls), p50",
            us(rust_warm_separate.p50_ns),
            f"reference {us(ref_warm.p50_ns)}",
            f"{ref_warm.p50_ns / rust_warm_separate.p50_ns:.0f}x faster",
            "",
        ),
        Row(
            "warm acquire+release pair (apply=True), p50",
            us(rust_warm.p50_ns),
            f"reference {us(ref_warm.p50_ns)}",
            f"{ref_warm.p50_ns / rust_warm.p50_ns:.0f}x faster",
            "≤ 2 µs, ≥ 20x",
        ),
        Row(
            "warm acquire+release pair (apply=True), p99",
            us(rust_warm.p99_ns),
            f"reference {us(ref_warm.p99_ns)}",
            f"{ref_warm.p99_ns / rust_warm.p99_ns:.0f}x faster",
            "",
        ),
        Row(
            "cold decision, busy function, 100 holders, p50",
            us(rust_cold.p50_ns),
            f"reference {us(ref_cold.p50_ns)}",
            f"{ref_cold.p50_ns / rust_cold.p50_ns:.0f}x faster",
            "≤ 10 µs, ≥ 20x",
        ),
        Row(
            "cold decision, busy function, 100 holders, p99",
            us(rust_cold.p99_ns),
            f"reference {us(ref_cold.p99_ns)}",
            f"{ref_cold.p99_ns / rust_cold.p99_ns:.0f}x faster",
            "",
        ),
        Row("memory per sandbox (RSS growth / 100k)", f"{per_sandbox:.0f} B", "", "", "≤ 256 B"),
        Row(
            "warm pairs per second (1 thread)",
            f"{1e9 / rust_warm.p50_ns:,.0f}/s",
            f"reference {1e9 / ref_warm.p50_ns:,.0f}/s",
            "",
            "",
        ),
    ]
    print_table(
        f"Partition core: {WORKERS:,} workers, {FUNCTIONS * PER_FUNCTION:,} sandboxes, {FUNCTIONS:,} functions",
        rows,
    )
