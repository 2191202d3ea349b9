"""Crash consistency: a writer killed with SIGKILL in the middle of appends leaves whole batches, no gap,
and every append that returned.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from journal.store import Journal
from tests.journal.records import tag_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.chaos
def test_sigkill_mid_append_leaves_whole_batches(journal_url: str) -> None:
    with Journal.open(journal_url):
        pass
    rng = random.Random(7)
    acked: dict[int, tuple[int, int]] = {}  # batch -> (size, last_seq)
    for _round in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.journal._writer", "crash", journal_url],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("epoch"), first + proc.stderr.read() if proc.stderr else ""
        round_acks: dict[int, tuple[int, int]] = {}
        kill_after = rng.randint(20, 120)
        while len(round_acks) < kill_after:
            line = proc.stdout.readline()
            assert line, "writer exited early"
            _, batch, size, last = line.split()
            round_acks[int(batch)] = (int(size), int(last))
        proc.send_signal(signal.SIGKILL)
        # Whatever it printed before dying was acknowledged too.
        rest, _ = proc.communicate(timeout=30)
        for line in rest.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "ack":
                round_acks[int(parts[1])] = (int(parts[2]), int(parts[3]))
        assert proc.returncode == -signal.SIGKILL
        with Journal.open(journal_url) as journal:
            report = journal.verify(0)  # no gap, no torn record
            entries = journal.read(0, limit=100_000)
            assert len(entries) == report.records
            seen: dict[tuple[int, int], list[int]] = {}
            sizes: dict[tuple[int, int], int] = {}
            for entry in entries:
                batch_tag, index, size = tag_of(entry.payload).split("/")
                key = (entry.epoch, int(batch_tag[1:]))
                seen.setdefault(key, []).append(int(index))
                sizes[key] = int(size)
            # Every batch present is whole and in order: no partial batch survived the kill.
            for key, indexes in seen.items():
                assert indexes == list(range(sizes[key])), key
            epoch = max(e.epoch for e in entries)
            by_seq = {e.seq: e for e in entries}
            for acked_batch, (acked_size, acked_last) in round_acks.items():
                assert seen[(epoch, acked_batch)] == list(range(acked_size))
                assert tag_of(by_seq[acked_last].payload) == f"b{acked_batch}/{acked_size - 1}/{acked_size}"
        for acked_batch, value in round_acks.items():
            acked[acked_batch * 1000 + _round] = value
    assert len(acked) >= 60
