"""What the people's CLI prints: aligned tables for people, JSON for scripts, progress notes on a TTY.

Progress and notes go to stderr and only when stderr is a terminal, so pipes and scripts see exactly
the result on stdout.

Example::

    print_table(["NAME", "MEMORY"], [["resize", 256]])
    with wait_note("invoking resize"):
        answer = client.invoke(FunctionName="resize")
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

__all__ = [
    "PROGRESS_MIN_BYTES",
    "WAIT_NOTE_S",
    "ProgressReader",
    "cell",
    "human_bytes",
    "print_json",
    "print_table",
    "stderr_is_tty",
    "upload_progress",
    "wait_note",
]

#: Uploads smaller than this finish too quickly to be worth a progress line.
PROGRESS_MIN_BYTES = 1024 * 1024
#: A call still running after this many seconds gets a "waiting…" note (``LEASEHOLD_WAIT_NOTE_S``).
WAIT_NOTE_S = 2.0
_MAX_CELL = 80


def stderr_is_tty() -> bool:
    """Whether progress and notes should be shown."""
    return sys.stderr.isatty()


def print_json(document: Any) -> None:
    """One JSON document on stdout (sorted keys, indented)."""
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def cell(value: Any) -> str:
    """A value as a table cell: one line of printable characters, at most 80 of them, '-' for nothing.

    Control characters (a hostile answer's terminal escapes) become '?'.
    """
    if value is None or value == "":
        return "-"
    text = "".join(c if c.isprintable() else "?" for c in " ".join(str(value).split()))
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: IO[str] | None = None) -> None:
    """Left-aligned columns under upper-case headers."""
    out = out or sys.stdout
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)


def human_bytes(size: int) -> str:
    """``1536`` → ``1.5 KB``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class ProgressReader:
    """A request body that reports how much of it has been read (sent) so far.

    botocore hands file-like bodies to the connection, which reads them in blocks; ``seek``/``tell``
    let botocore rewind the body before a retry.
    """

    def __init__(self, data: bytes, report: Callable[[int, int], None]) -> None:
        self._data = data
        self._pos = 0
        self._report = report
        self._last_percent = -1

    def __len__(self) -> int:
        return len(self._data)

    def read(self, size: int = -1) -> bytes:
        """The next block (everything left when ``size`` < 0)."""
        end = len(self._data) if size < 0 else min(len(self._data), self._pos + size)
        block = self._data[self._pos : end]
        self._pos = end
        percent = 100 * self._pos // max(1, len(self._data))
        if percent != self._last_percent:
            self._last_percent = percent
            self._report(self._pos, len(self._data))
        return block

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the read position (botocore rewinds before a retry)."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: len(self._data)}[whence]
        self._pos = max(0, min(len(self._data), base + offset))
        return self._pos

    def tell(self) -> int:
        """The read position."""
        return self._pos


def upload_progress(label: str) -> Callable[[int, int], None]:
    """A reporter that rewrites one stderr line: ``uploading resize: 3.2 MB / 12.0 MB (26%)``."""

    def report(sent: int, total: int) -> None:
        percent = 100 * sent // max(1, total)
        end = "\n" if sent >= total else ""
        sys.stderr.write(f"\ruploading {label}: {human_bytes(sent)} / {human_bytes(total)} ({percent}%){end}")
        sys.stderr.flush()

    return report


@contextlib.contextmanager
def wait_note(what: str) -> Iterator[None]:
    """Print ``waiting for <what>…`` to stderr once if the block is still running after ``WAIT_NOTE_S``
    seconds and stderr is a terminal; nothing otherwise."""
    if not stderr_is_tty():
        yield
        return
    delay = float(os.environ.get("LEASEHOLD_WAIT_NOTE_S", WAIT_NOTE_S))
    timer = threading.Timer(delay, lambda: print(f"waiting for {what}…", file=sys.stderr, flush=True))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
