"""The worker's invocation audit log: one JSON line per invocation start and end, flushed per line.

An operator turns it on with ``leasehold worker --invocation-log FILE`` (env
``LEASEHOLD_WORKER_INVOCATION_LOG``); without it the agent does no audit work at all. The file is opened for
append, so one file can span restarts of the agent: each agent writes an ``open`` line first (its pid and
the time), which lets a reader tell the incarnations apart. Lines, with wall-clock times in epoch ms::

    {"event": "open", "pid": 4242, "ms": 1763850000000}
    {"event": "start", "sandbox": "p3-s17", "epoch": 2, "seq": 41, "request_id": "r1", "start_ms": 1763850000123}
    {"event": "end", "sandbox": "p3-s17", "epoch": 2, "seq": 41, "request_id": "r1", "start_ms": 1763850000123,
     "end_ms": 1763850000131, "outcome": "ok"}

``outcome`` is the invocation's :class:`~journal.outcomes.Outcome` label (``ok``, ``timeout``...),
or ``error:<Name>`` when the agent raised instead of returning a result (e.g. ``error:CancelledError``).
A ``start`` without an ``end`` means the agent died during the invocation. A line is written with one
``write`` of a whole line on a line-buffered file, so a crash leaves at most a torn last line (readers skip
it: :func:`read`).

Example::

    audit = InvocationLog.open(Path("/var/log/leasehold/invocations.jsonl"))
    started = audit.started("p3-s17", (2, 41), "r1")
    audit.ended("p3-s17", (2, 41), "r1", started, "ok")
    audit.close()
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["InvocationLog", "read"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class InvocationLog:
    """An append-only JSON-lines file of invocation starts and ends."""

    def __init__(self, path: Path, stream: IO[str]) -> None:
        self.path = path
        self._stream = stream

    @classmethod
    def open(cls, path: Path) -> InvocationLog:
        """Open ``path`` for append (creating its folder) and write the ``open`` line."""
        path.parent.mkdir(parents=True, exist_ok=True)
        log = cls(path, path.open("a", buffering=1, encoding="utf-8"))
        log._write({"event": "open", "pid": os.getpid(), "ms": _now_ms()})
        return log

    def _write(self, record: dict[str, Any]) -> None:
        if self._stream.closed:  # an invocation that outlived the agent's close
            return
        self._stream.write(json.dumps(record, separators=(",", ":")) + "\n")

    def started(self, sandbox_id: str, token: tuple[int, int], request_id: str) -> int:
        """Record an invocation's start; return its start time (epoch ms) for :meth:`ended`."""
        start_ms = _now_ms()
        epoch, seq = token
        self._write(
            {"event": "start", "sandbox": sandbox_id, "epoch": epoch, "seq": seq, "request_id": request_id,
             "start_ms": start_ms}
        )  # fmt: skip
        return start_ms

    def ended(self, sandbox_id: str, token: tuple[int, int], request_id: str, start_ms: int, outcome: str) -> None:
        """Record an invocation's end and outcome."""
        epoch, seq = token
        self._write(
            {"event": "end", "sandbox": sandbox_id, "epoch": epoch, "seq": seq, "request_id": request_id,
             "start_ms": start_ms, "end_ms": _now_ms(), "outcome": outcome}
        )  # fmt: skip

    def close(self) -> None:
        """Close the file."""
        self._stream.close()


def read(path: Path) -> list[dict[str, Any]]:
    """Every whole record of an audit file, in order (a torn or garbled line is skipped)."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
