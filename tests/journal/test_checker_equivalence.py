"""The journal's one Python checker (``Checker.check``, a row at a time) against its Rust fast path
(``Checker.check_rows``, which runs ``check_record_rows`` and hands the row it stops at to ``check``).

Both must accept the same rows, build the same entries and payloads, and stop at the same damaged row
with the same report, on the damaged inputs of ``test_record_rows`` and a few more that only a damaged
SQLite file (dynamic typing) can hold.
"""

from __future__ import annotations

from typing import Any

import pytest

from journal.checker import Checker
from journal.errors import JournalCorrupt
from journal.model import Entry
from tests.journal.test_record_rows import CASES, HEAD, PARTITION, damaged, good_rows

MORE_CASES = {
    "epoch as float": damaged(4, 1, 2.0),
    "epoch as a fraction": damaged(4, 1, 2.5),
    "seq as float": damaged(4, 0, 5.0),
    "kind as a str subclass": damaged(5, 2, type("Kind", (str,), {})("worker_updated")),
    "payload as bytearray": damaged(5, 3, bytearray(good_rows()[5][3])),
    "crc as float": damaged(5, 4, float(good_rows()[5][4])),
    "empty": [],
    "last row missing": good_rows()[:-1],
}
ALL_CASES = {**CASES, **MORE_CASES}

Outcome = tuple[list[Entry], list[bytes], tuple[int | None, str] | None]


def one_by_one(rows: list[tuple[Any, ...]]) -> Outcome:
    """The Python checker alone."""
    checker = Checker(PARTITION, HEAD, 0, prev_epoch=1)
    entries: list[Entry] = []
    try:
        for row in rows:
            entries.append(checker.check(*row))
        checker.finish()
    except JournalCorrupt as exc:
        return entries, [e.payload for e in entries], (exc.seq, exc.why)
    return entries, [e.payload for e in entries], None


def fast_path(rows: list[tuple[Any, ...]], *, batch: int) -> Outcome:
    """The Rust loop, ``batch`` rows at a time (as fetched from the driver), collecting entries and payloads."""
    checker = Checker(PARTITION, HEAD, 0, prev_epoch=1)
    entries: list[Entry] = []
    payloads: list[bytes] = []
    try:
        for start in range(0, len(rows), batch):
            checker.check_rows(rows[start : start + batch], entries, payloads)
        checker.finish()
    except JournalCorrupt as exc:
        return entries, payloads, (exc.seq, exc.why)
    return entries, payloads, None


@pytest.mark.parametrize("batch", [1, 3, 100])
@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_fast_path_and_python_checker_agree(case: str, batch: int) -> None:
    rows = ALL_CASES[case]
    assert fast_path(rows, batch=batch) == one_by_one(rows)


def test_the_more_cases_do_damage() -> None:
    """The cases added here are reported, but for the valid unusual ones, so the agreement is not vacuous."""
    valid = {"kind as a str subclass", "payload as bytearray"}
    for case, rows in MORE_CASES.items():
        report = one_by_one(rows)[2]
        assert (report is None) == (case in valid), (case, report)
