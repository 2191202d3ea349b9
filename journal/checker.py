"""The record checker: every record read from the journal passes here, in seq order, or is reported.

:class:`Checker` is the one Python checker (:meth:`Checker.check`, a record at a time, naming each
fault); :meth:`Checker.check_rows` runs the same checks over a batch in the Rust loop
(:func:`journal.native.check_record_rows`) and hands the row that loop stops at to :meth:`Checker.check`,
which raises the same :class:`~journal.errors.JournalCorrupt` (same seq, same reason) or accepts it (an
unusual but valid row). ``tests/journal/test_checker_equivalence.py`` holds the two to the same verdicts.
The reader, the snapshot code and the SQLite forensics import this module; callers do not.

Example::

    checker = Checker(partition, head, after_seq)
    checker.check_rows(rows, entries, None)   # or checker.check(seq, epoch, kind, payload, crc)
    checker.finish()                           # every record up to the head was seen
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.message import DecodeError

from journal.errors import JournalCorrupt
from journal.model import KIND_BYTES, KINDS, Entry, Head
from journal.native import check_record_rows
from journal.schema import encoded_record_crc
from journal.v1 import records_pb2

__all__ = ["Checker"]


class Checker:
    """Checks records of one partition as they are read, in seq order, and stops at the first bad one."""

    __slots__ = ("decode", "expected", "head", "partition", "prev_epoch")

    def __init__(
        self, partition: int, head: Head, after_seq: int, *, prev_epoch: int = 0, decode: bool = False
    ) -> None:
        self.partition = partition
        self.head = head
        self.expected = after_seq + 1
        self.prev_epoch = prev_epoch
        self.decode = decode

    def check(self, seq: int, epoch: int, kind: str, payload: bytes | None, crc: int | None) -> Entry:
        """Check one ``(seq, epoch, kind, payload, crc)`` row; its :class:`Entry`, or ``JournalCorrupt``."""
        p = self.partition
        if seq.__class__ is not int or epoch.__class__ is not int:  # SQLite keeps whatever a damaged row holds
            raise JournalCorrupt(p, self.expected, f"seq {seq!r:.40} or epoch {epoch!r:.40} is not an integer")
        if seq != self.expected:
            if seq > self.expected:
                raise JournalCorrupt(p, self.expected, f"record missing (the next stored record is seq {seq})")
            raise JournalCorrupt(p, seq, f"record out of order (expected seq {self.expected})")
        if seq >= self.head.next_seq:
            raise JournalCorrupt(p, seq, f"record beyond the head (the journal ends at seq {self.head.next_seq - 1})")
        if payload is None or crc is None:
            raise JournalCorrupt(p, seq, "record torn (payload or CRC missing)")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise JournalCorrupt(p, seq, f"payload is {type(payload).__name__}, not bytes")
        payload = bytes(payload)
        # the epoch's range first: the CRC's header cannot even hold an epoch below 0 or of 2**64 or more
        if epoch < self.prev_epoch:
            raise JournalCorrupt(p, seq, f"epoch {epoch} after epoch {self.prev_epoch}: out of order")
        if epoch > self.head.epoch:
            raise JournalCorrupt(p, seq, f"epoch {epoch} is newer than the partition's epoch {self.head.epoch}")
        kind_bytes = KIND_BYTES.get(kind) if isinstance(kind, str) else None
        if kind_bytes is None:
            raise JournalCorrupt(p, seq, f"{kind!r:.80} is not a record kind")
        computed = encoded_record_crc(p, seq, epoch, kind_bytes, payload)
        if not isinstance(crc, int) or computed != crc:
            stored = f"{crc:#010x}" if isinstance(crc, int) else f"{crc!r:.40}"
            raise JournalCorrupt(p, seq, f"CRC mismatch (stored {stored}, computed {computed:#010x})")
        if not payload:
            raise JournalCorrupt(p, seq, "empty payload")
        if self.decode:
            try:
                decoded = records_pb2.Record.FromString(payload).WhichOneof("kind")
            except DecodeError as exc:
                raise JournalCorrupt(p, seq, f"payload is not a journal.v1.Record: {exc}") from None
            if decoded != kind:
                raise JournalCorrupt(p, seq, f"payload kind {decoded!r} differs from stored kind {kind!r}")
        self.expected = seq + 1
        self.prev_epoch = epoch
        return Entry(p, seq, epoch, kind, payload)

    def check_rows(self, rows: Iterable[Any], entries: list[Entry] | None, payloads: list[bytes] | None) -> None:
        """:meth:`check` for many ``(seq, epoch, kind, payload, crc)`` rows (recovery's hot path).

        Each checked record is added to ``entries`` and its payload to ``payloads`` (either may be ``None``).
        The rows go through the Rust loop, which accepts exactly the rows that :meth:`check` accepts with
        the same result; the row it stops at goes to :meth:`check`, which raises the same
        :class:`~journal.errors.JournalCorrupt` (same seq, same reason) as the record-by-record path, or
        accepts it (an unusual but valid row). With ``decode`` every row goes to :meth:`check`: the Rust
        loop does not decode payloads.
        """
        if self.decode:
            for row in rows:
                self._keep(self.check(*row), entries, payloads)
            return
        rows = rows if isinstance(rows, list) else list(rows)
        sink: list[bytes] = payloads if payloads is not None else []
        p = self.partition
        new_tuple = tuple.__new__  # Entry(...) without the Python-level __new__ of a named tuple
        start = 0
        while start < len(rows):
            accepted, self.expected, self.prev_epoch = check_record_rows(
                rows, start, p, self.expected, self.prev_epoch, self.head.epoch, self.head.next_seq, KINDS, sink
            )
            if entries is not None:
                # the loop accepted only 5-tuples whose payload is exactly bytes: the rows are the entries
                entries += [new_tuple(Entry, (p, *row[:4])) for row in rows[start : start + accepted]]
                if payloads is None:
                    sink.clear()
            start += accepted
            if start < len(rows):
                self._keep(self.check(*rows[start]), entries, payloads)  # raises, unless the row is fine after all
                start += 1

    @staticmethod
    def _keep(entry: Entry, entries: list[Entry] | None, payloads: list[bytes] | None) -> None:
        if entries is not None:
            entries.append(entry)
        if payloads is not None:
            payloads.append(entry.payload)

    def finish(self, upto: int | None = None) -> None:
        """Every record up to ``upto`` (default: the head's last) must have been seen."""
        last = self.head.next_seq - 1 if upto is None else min(upto, self.head.next_seq - 1)
        if self.expected <= last:
            raise JournalCorrupt(
                self.partition, self.expected, f"record missing (the journal should end at seq {last})"
            )
