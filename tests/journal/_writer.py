"""Writer processes for the fencing and crash tests: ``python -m tests.journal._writer MODE URL ...``.

``crash URL``: take over partition 0 once, then append batches of 1..20 records forever, printing
``ack BATCH SIZE LAST_SEQ`` after each append returned (the parent kills it with SIGKILL).

``fence URL ROUNDS APPENDS [PARTITION]``: print ``ready`` and wait for ``go`` on stdin; then ROUNDS times,
take over PARTITION (default 0; ``took EPOCH T``) and append one-record batches (``ack EPOCH LAST_SEQ T_START``) until
fenced (``fenced EPOCH T_START``) or APPENDS were made. Times are ``time.monotonic_ns()``, comparable
across processes on one machine.

``pause URL IDLE_S``: take over partition 0, then open a write transaction that holds partition 0's head
row the way an append does before its COMMIT, print ``holding EPOCH`` and wait for ``commit`` on stdin
(the parent SIGSTOPs it meanwhile); then commit that transaction, printing ``committed``
or ``failed EXCEPTION``. ``IDLE_S`` is the journal's ``pg_idle_in_transaction_s``.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field

from sqlalchemy import update

from journal.errors import Fenced
from journal.schema import partition_head
from journal.store import Journal, JournalOptions
from tests.journal.records import worker


@dataclass
class FenceLog:
    """What fencing writers saw: take-over times per epoch, successful and fenced appends."""

    took: dict[int, int] = field(default_factory=dict)
    acks: list[tuple[int, int, int]] = field(default_factory=list)  # (epoch, last_seq, t_start)
    fenced: list[tuple[int, int]] = field(default_factory=list)  # (epoch, t_start)

    def parse(self, line: str) -> None:
        """Add one line of a ``fence`` writer's output."""
        parts = line.split()
        if parts[0] == "took":
            self.took[int(parts[1])] = int(parts[2])
        elif parts[0] == "ack":
            self.acks.append((int(parts[1]), int(parts[2]), int(parts[3])))
        elif parts[0] == "fenced":
            self.fenced.append((int(parts[1]), int(parts[2])))

    def violations(self) -> list[str]:
        """Appends that succeeded although they started after a newer epoch's take-over had returned."""
        bad = []
        for epoch, last_seq, t_start in self.acks:
            for newer, took in self.took.items():
                if newer > epoch and took < t_start:
                    bad.append(f"epoch {epoch} appended seq {last_seq} after epoch {newer} took over")
        return bad


def fence_writer(journal: Journal, rounds: int, appends: int, out: list[str], tag: str, partition: int = 0) -> None:
    """The ``fence`` loop, writing its lines to ``out`` (shared by the thread and process tests)."""
    for _ in range(rounds):
        epoch = journal.take_over(partition)
        out.append(f"took {epoch} {time.monotonic_ns()}")
        for i in range(appends):
            t_start = time.monotonic_ns()
            try:
                last = journal.append(partition, epoch, [worker(f"{tag}/{epoch}/{i}")])
            except Fenced:
                out.append(f"fenced {epoch} {t_start}")
                break
            out.append(f"ack {epoch} {last} {t_start}")


class _Printer(list[str]):
    def append(self, line: str) -> None:
        print(line, flush=True)


def hold_head_row(url: str, idle_s: float) -> int:
    """The ``pause`` mode: hold partition 0's head row in an open transaction until told to commit."""
    with Journal.open(url, options=JournalOptions(pg_idle_in_transaction_s=idle_s)) as journal:
        epoch = journal.take_over(0)
        with journal.writer.connect() as conn:
            tx = conn.begin()
            conn.execute(update(partition_head).where(partition_head.c.partition == 0).values(epoch=epoch))
            print(f"holding {epoch}", flush=True)
            if sys.stdin.readline().strip() != "commit":
                return 1
            try:
                tx.commit()
            except Exception as exc:  # what a resumed writer meets: the server ended its session
                print(f"failed {type(exc).__name__}", flush=True)
                return 0
            print("committed", flush=True)
            return 0


def main(argv: list[str]) -> int:
    """Entry point; see the module docstring."""
    mode, url = argv[0], argv[1]
    if mode == "pause":
        return hold_head_row(url, float(argv[2]))
    with Journal.open(url) as journal:
        if mode == "fence":
            # Start together: the parent says "go" once every writer is ready (opened, imports done), so
            # the writers' rounds overlap however long each process took to start.
            print("ready", flush=True)
            if sys.stdin.readline().strip() != "go":
                return 1
            partition = int(argv[4]) if len(argv) > 4 else 0
            fence_writer(journal, int(argv[2]), int(argv[3]), _Printer(), f"pid{os.getpid()}", partition)
            return 0
        if mode == "crash":
            rng = random.Random(os.getpid())
            epoch = journal.take_over(0)
            print(f"epoch {epoch}", flush=True)
            batch_id = 0
            while True:
                size = rng.randint(1, 20)
                last = journal.append(0, epoch, [worker(f"b{batch_id}/{i}/{size}") for i in range(size)])
                print(f"ack {batch_id} {size} {last}", flush=True)
                batch_id += 1
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
