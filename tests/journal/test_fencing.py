"""Fencing under concurrency: once a take-over returned, the older epoch can never append again.

Checked with threads sharing a process and with separate processes; the journal must also stay
ordered by epoch and hold every acknowledged record.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from journal.store import Journal
from tests.journal._writer import FenceLog, fence_writer
from tests.journal.records import tag_of

ROOT = Path(__file__).resolve().parents[2]


def _check(journal: Journal, log: FenceLog) -> None:
    assert log.violations() == []
    assert log.fenced, "no writer was ever fenced: the race did not happen"
    report = journal.verify(0)  # seqs continuous, CRCs, epochs never go backwards
    entries = {e.seq: e for e in journal.read(0, limit=100_000)}
    assert report.records == len(entries)
    for epoch, last_seq, _ in log.acks:
        assert entries[last_seq].epoch == epoch
        assert tag_of(entries[last_seq].payload).split("/")[1] == str(epoch)
    assert len(log.acks) == len(entries)  # nothing journaled that was not acknowledged


def test_threads_race_take_over_and_append(journal: Journal) -> None:
    outputs: list[list[str]] = [[] for _ in range(4)]
    threads = [
        threading.Thread(target=fence_writer, args=(journal, 6, 40, out, f"t{i}")) for i, out in enumerate(outputs)
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
    _check(journal, log)


def test_processes_race_take_over_and_append(journal_url: str) -> None:
    with Journal.open(journal_url):  # create the schema once, before the writers race
        pass
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.journal._writer", "fence", journal_url, "5", "40"],
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
    with Journal.open(journal_url) as journal:
        _check(journal, log)
