"""Benchmark reporting: percentiles and the table every benchmark prints.

Each row names a figure, the floor it is compared with (measured in the same run), their ratio and the
goal, so that a noisy shared machine still gives comparable numbers.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stats:
    """Latency statistics of one measured operation, in nanoseconds."""

    p50_ns: float
    p99_ns: float
    count: int

    @classmethod
    def of(cls, samples_ns: list[int]) -> Stats:
        ordered = sorted(samples_ns)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return cls(statistics.median(ordered), float(p99), len(ordered))


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    floor: str
    ratio: str
    goal: str


def machine() -> str:
    """One line describing where the numbers were taken."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
    )


def us(ns: float) -> str:
    return f"{ns / 1000:.2f} µs"


def print_table(title: str, rows: list[Row]) -> str:
    """Print (and return) the table as Markdown."""
    header = ("figure", "value", "floor (same run)", "ratio", "goal")
    lines = [f"### {title}", f"machine: {machine()}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += [f"| {r.figure} | {r.value} | {r.floor} | {r.ratio} | {r.goal} |" for r in rows]
    text = "\n".join(lines)
    print("\n" + text + "\n")
    return text


def durable_insert_latency(path: Path, samples: int, payload: bytes) -> Stats:
    """The floor of anything that makes a row durable on SQLite: the raw driver committing one row per
    transaction (WAL, ``synchronous=FULL``, as the journal runs) into a fresh database at ``path``."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE q (request_id TEXT PRIMARY KEY, payload BLOB)")
    out = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO q VALUES (?, ?)", (str(uuid.uuid4()), payload))
        con.execute("COMMIT")
        out.append(time.perf_counter_ns() - start)
    con.close()
    return Stats.of(out)
