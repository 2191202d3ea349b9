"""The Rust loop that checks records on recovery (``check_record_rows``) against the Python checker.

Both must accept exactly the same rows and stop at the same damaged row with the same report. Rows are
built as the drivers return them, then damaged one field at a time, including values of the wrong type
that only a damaged SQLite file (dynamic typing) can hold.
"""

from __future__ import annotations

from typing import Any

import pytest

from journal.checker import Checker as _Checker
from journal.errors import JournalCorrupt
from journal.model import Entry
from journal.model import Head as _Head
from journal.schema import record_crc
from tests.journal.records import worker

PARTITION = 5
HEAD = _Head(epoch=3, next_seq=11, first_seq=1)


def good_rows() -> list[tuple[Any, ...]]:
    rows = []
    for seq in range(1, 11):
        epoch = 2 if seq < 6 else 3
        payload = worker(f"w{seq}")
        rows.append(
            (seq, epoch, "worker_updated", payload, record_crc(PARTITION, seq, epoch, "worker_updated", payload))
        )
    return rows


def damaged(index: int, field: int, value: object, *, recrc: bool = False) -> list[tuple[Any, ...]]:
    rows = good_rows()
    row = list(rows[index])
    row[field] = value
    if recrc:
        row[4] = record_crc(PARTITION, row[0], row[1], row[2], bytes(row[3]))
    rows[index] = tuple(row)
    return rows


CASES = {
    "good": good_rows(),
    "gap": good_rows()[:3] + good_rows()[4:],
    "duplicate": good_rows()[:4] + good_rows()[3:],
    "beyond the head": damaged(9, 0, 11, recrc=True),
    "flipped payload": damaged(4, 3, b"\x00" + worker("w5")[1:]),
    "wrong crc": damaged(2, 4, 12345),
    "negative crc": damaged(2, 4, -1),
    "crc too big": damaged(2, 4, 2**40),
    "crc as text": damaged(2, 4, "0x1234"),
    "unknown kind": damaged(6, 2, "lease_stolen", recrc=False),
    "kind as bytes": damaged(6, 2, b"worker_updated"),
    "long kind": damaged(6, 2, "k" * 300),
    "empty payload": damaged(7, 3, b"", recrc=True),
    "payload missing": damaged(7, 3, None),
    "payload as text": damaged(7, 3, "text"),
    "payload as memoryview": damaged(7, 3, memoryview(worker("w8"))),
    "epoch backwards": damaged(6, 1, 1, recrc=True),
    "epoch newer than the head": damaged(6, 1, 4, recrc=True),
    "negative epoch": damaged(0, 1, -1),
    "epoch of 2**64": damaged(0, 1, 2**64),
    "seq as text": damaged(3, 0, "4"),
    "negative seq": damaged(3, 0, -4),
}


def run(rows: list[tuple[Any, ...]], *, rust: bool) -> tuple[list[bytes], tuple[int | None, str] | None]:
    """The payloads accepted (before any damage) and the damage reported, by one of the two loops."""
    checker = _Checker(PARTITION, HEAD, 0, prev_epoch=1)
    payloads: list[bytes] = []
    entries: list[Entry] = []
    report = None
    try:
        if rust:
            checker.check_rows(rows, None, payloads)  # payloads only: the Rust loop
        else:
            checker.check_rows(rows, entries, None)  # entries: the Python loop
        checker.finish()
    except JournalCorrupt as exc:
        report = (exc.seq, exc.why)
    return (payloads if rust else [e.payload for e in entries]), report


@pytest.mark.parametrize("case", sorted(CASES))
def test_rust_and_python_loops_agree(case: str) -> None:
    rows = CASES[case]
    assert run(rows, rust=True) == run(rows, rust=False)


def test_the_cases_do_damage() -> None:
    """Every case but the good ones is reported, so the agreement above is not vacuous."""
    for case, rows in CASES.items():
        outcome = run(rows, rust=True)[1]
        assert (outcome is None) == (case in ("good", "payload as memoryview")), (case, outcome)
