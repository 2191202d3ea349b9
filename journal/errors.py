"""Errors of the journal, one name per thing that can go wrong.

Every error derives from :class:`JournalError`. Errors about the caller's input also derive from the
matching built-in (``ValueError``, ``LookupError``) so generic handlers still catch them. Every
module of the journal and its callers may import this one; it imports nothing.

Example::

    try:
        journal.append(partition, epoch, records)
    except Fenced:
        ...  # a newer leader took over: stop leading
"""

from __future__ import annotations

__all__ = [
    "Compacted",
    "EmptyBatch",
    "Fenced",
    "InvalidEpoch",
    "InvalidRecord",
    "JournalCorrupt",
    "JournalError",
    "RecordTooLarge",
    "SchemaMismatch",
    "UnknownPartition",
]


class JournalError(Exception):
    """Base of every error the journal raises on purpose."""


class Fenced(JournalError):
    """A newer epoch owns the partition: the appender was deposed and must stop and re-contend.

    Nothing of the rejected append was written.
    """

    def __init__(self, partition: int, epoch: int, current_epoch: int) -> None:
        super().__init__(f"partition {partition}: epoch {epoch} is fenced by epoch {current_epoch}")
        self.partition = partition
        self.epoch = epoch
        self.current_epoch = current_epoch


class InvalidEpoch(JournalError, ValueError):
    """The epoch was never issued for the partition (it is newer than the newest take-over)."""

    def __init__(self, partition: int, epoch: int, current_epoch: int) -> None:
        super().__init__(f"partition {partition}: epoch {epoch} was never issued (current epoch {current_epoch})")
        self.partition = partition
        self.epoch = epoch
        self.current_epoch = current_epoch


class UnknownPartition(JournalError, LookupError):
    """No take-over ever happened for the partition, so it has no head, no records and no epoch."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"unknown partition {partition} (no take_over yet)")
        self.partition = partition


class EmptyBatch(JournalError, ValueError):
    """An append carried no records."""


class RecordTooLarge(JournalError, ValueError):
    """A record (or snapshot) is larger than the journal accepts; ``limit`` is the bound in bytes."""

    def __init__(self, size: int, limit: int, what: str = "record") -> None:
        super().__init__(f"{what} of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class InvalidRecord(JournalError, ValueError):
    """A payload is not a ``journal.v1.Record`` with its ``kind`` set; nothing malformed is journaled."""


class Compacted(JournalError):
    """The records asked for were compacted away; start from the latest snapshot instead."""

    def __init__(self, partition: int, after_seq: int, first_seq: int) -> None:
        super().__init__(
            f"partition {partition}: records after seq {after_seq} were compacted; the journal starts at {first_seq}"
        )
        self.partition = partition
        self.after_seq = after_seq
        self.first_seq = first_seq


class JournalCorrupt(JournalError):
    """The journal is damaged at ``seq`` of ``partition``: reading stops there, nothing is skipped.

    ``seq`` is the first sequence number that cannot be trusted (a record that is missing, torn,
    fails its CRC, is out of order, or is rejected by the partition core on replay; for a damaged
    snapshot, the snapshot's seq). It is ``None`` only when not even the partition's head could be read.
    """

    def __init__(self, partition: int, seq: int | None, why: str) -> None:
        where = f"seq {seq}" if seq is not None else "unknown seq"
        super().__init__(f"journal corrupt: partition {partition}, {where}: {why}")
        self.partition = partition
        self.seq = seq
        self.why = why

    def __reduce__(self) -> tuple[type[JournalCorrupt], tuple[int, int | None, str]]:
        return (type(self), (self.partition, self.seq, self.why))


class SchemaMismatch(JournalError):
    """The database's journal schema is not the version this code expects (opened with ``migrate=False``)."""
