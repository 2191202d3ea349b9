"""Fencing under concurrency: once a take-over returned, the older epoch can never append again.

Checked with threads sharing a process and with separate processes; the journal must also stay
ordered by epoch and hold every acknowledged record.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from journal.store import Journal
from tests.journal._writer import FenceLog, fence_writer
from tests.journal.records import tag_of

ROOT = Path(__file__).resolve().parents[2]


def _check(journal: Journal, log: FenceLog, partition: int = 0, *, raced: bool = True) -> None:
    """No append after a newer take-over, and the journal holds exactly the acknowledged records.
    ``raced``: at least one writer must have been fenced (else the race this checks did not happen)."""
    assert log.violations() == []
    if raced:
        assert log.fenced, "no writer was ever fenced: the race did not happen"
    report = journal.verify(partition)  # seqs continuous, CRCs, epochs never go backwards
    entries = {e.seq: e for e in journal.read(partition, limit=100_000)}
    assert report.records == len(entries)
    for epoch, last_seq, _ in log.acks:
        assert entries[last_seq].epoch == epoch
        assert tag_of(entries[last_seq].payload).split("/")[1] == str(epoch)
    assert len(log.acks) == len(entries)  # nothing journaled that was not acknowledged


def _race_threads(journal: Journal, partition: int) -> FenceLog:
    outputs: list[list[str]] = [[] for _ in range(4)]
    threads = [
        threading.Thread(target=fence_writer, args=(journal, 6, 40, out, f"t{i}", partition))
        for i, out in enumerate(outputs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    log = FenceLog()
    for out in outputs:
        for line in out:
            log.parse(line)
    assert len(log.took) == 24
    return log


def test_threads_race_take_over_and_append(journal: Journal) -> None:
    """Like the process race below: every attempt is checked in full; one in which no writer was fenced
    (the threads' rounds did not interleave) is repeated on a fresh partition."""
    for attempt in range(5):
        log = _race_threads(journal, attempt)
        _check(journal, log, attempt, raced=False)
        if log.fenced:
            return
    raise AssertionError("no writer was ever fenced in 5 attempts: the race did not happen")


def _race_processes(journal_url: str, partition: int) -> FenceLog:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.journal._writer", "fence", journal_url, "5", "40", str(partition)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:  # every writer is up before any starts: their rounds overlap
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    log = FenceLog()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        for line in out.splitlines():
            log.parse(line)
    assert len(log.took) == 15
    return log


def test_processes_race_take_over_and_append(journal_url: str) -> None:
    """Whether the writers' rounds interleave is up to the scheduler (SQLite's busy handler sleeps up to
    100 ms between tries, so one process can run all its rounds while the others wait): every attempt is
    checked in full, and attempts repeat, on a fresh partition, until one of them raced."""
    with Journal.open(journal_url):  # create the schema once, before the writers race
        pass
    for attempt in range(5):
        log = _race_processes(journal_url, attempt)
        with Journal.open(journal_url) as journal:
            _check(journal, log, attempt, raced=False)
        if log.fenced:
            return
    raise AssertionError("no writer was ever fenced in 5 attempts: the race did not happen")


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite cannot: see JournalOptions.pg_idle_in_transaction_s
def test_paused_writer_cannot_block_a_take_over(journal_url: str) -> None:
    """A writer SIGSTOPped inside its transaction holds the head row; PostgreSQL ends its session after
    ``pg_idle_in_transaction_s`` so the next take-over goes through, and the resumed writer cannot commit."""
    with (
        Journal.open(journal_url) as journal,
        subprocess.Popen(
            [sys.executable, "-m", "tests.journal._writer", "pause", journal_url, "0.5"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as paused,
    ):
        try:
            assert paused.stdout is not None
            assert paused.stdin is not None
            held = paused.stdout.readline().split()
            assert held[0] == "holding", held
            paused.send_signal(signal.SIGSTOP)
            took: list[int] = []
            taker = threading.Thread(target=lambda: took.append(journal.take_over(0)))
            taker.start()
            taker.join(timeout=60)  # without the server-side timeout this waits for the paused writer forever
            assert not taker.is_alive(), "the take-over is still waiting for the paused writer's row lock"
            assert took == [int(held[1]) + 1]
            paused.send_signal(signal.SIGCONT)
            paused.stdin.write("commit\n")
            paused.stdin.flush()
            assert paused.stdout.readline().split()[0] == "failed"
            assert paused.wait(timeout=30) == 0
            assert journal.info(0).epoch == took[0]
        finally:
            paused.send_signal(signal.SIGCONT)
            paused.kill()
            paused.wait()
