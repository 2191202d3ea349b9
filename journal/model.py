"""The journal's values: what its calls take and return, the size limits, and the record kinds.

:class:`Entry` (one checked record), :class:`Snapshot`, :class:`Recovery`, :class:`PayloadRecovery`,
:class:`PartitionInfo`, :class:`VerifyReport`, :class:`CompactResult`, :class:`PreparedRecord`, and
:class:`Head` (a partition head as read inside a transaction). Callers import them from
:mod:`journal.store`, which re-exports them; the store's parts import them from here. This module
imports only the record schema (``journal.v1``).

Example::

    entry = Entry(partition=3, seq=7, epoch=2, kind="worker_updated", payload=payload)
    assert entry.kind in KIND_BYTES and entry.record().WhichOneof("kind") == entry.kind
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from journal.v1 import records_pb2

__all__ = [
    "KINDS",
    "KIND_BYTES",
    "MAX_READ_LIMIT",
    "MAX_RECORD_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "CompactResult",
    "Entry",
    "Head",
    "PartitionInfo",
    "PayloadRecovery",
    "PreparedRecord",
    "Recovery",
    "Snapshot",
    "VerifyReport",
]

#: Largest record payload accepted by :meth:`Journal.append` (64 KiB). A record is one state change of
#: one partition; the largest real ones are well under 1 KiB.
MAX_RECORD_BYTES = 64 * 1024
#: Largest snapshot accepted by :meth:`Journal.write_snapshot` (256 MiB).
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024
#: Most records one :meth:`Journal.read` returns.
MAX_READ_LIMIT = 100_000

# The record kinds' encoded names, so the per-record CRC check need not encode them (recovery's hot loop).
KIND_BYTES = {f.name: f.name.encode() for f in records_pb2.Record.DESCRIPTOR.oneofs_by_name["kind"].fields}
KINDS = frozenset(KIND_BYTES)


class Entry(NamedTuple):
    """One checked record of the journal. ``payload`` is the bytes of a ``journal.v1.Record``.

    A named tuple rather than a frozen dataclass: recovery makes one per record, and a tuple is
    several times cheaper to build.
    """

    partition: int
    seq: int
    epoch: int
    kind: str
    payload: bytes

    def record(self) -> records_pb2.Record:
        """The payload parsed as ``journal.v1.Record``."""
        return records_pb2.Record.FromString(self.payload)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A partition core snapshot: the state after applying every record up to and including ``seq``."""

    partition: int
    seq: int
    epoch: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a new leader or follower needs: the newest snapshot (if any) and every record after it."""

    partition: int
    epoch: int
    snapshot: Snapshot | None
    entries: list[Entry]

    @property
    def last_seq(self) -> int:
        """The seq of the last record covered (0 for an empty journal)."""
        if self.entries:
            return self.entries[-1].seq
        return self.snapshot.seq if self.snapshot is not None else 0


@dataclass(frozen=True, slots=True)
class PayloadRecovery:
    """:class:`Recovery` with the records' payloads only; ``payloads[i]`` is the record of seq ``first_seq + i``."""

    partition: int
    epoch: int
    snapshot: Snapshot | None
    first_seq: int
    payloads: list[bytes]

    @property
    def last_seq(self) -> int:
        """The seq of the last record covered (0 for an empty journal)."""
        return self.first_seq + len(self.payloads) - 1


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A partition's head: its current epoch and the range of records kept."""

    partition: int
    epoch: int
    first_seq: int
    next_seq: int

    @property
    def last_seq(self) -> int:
        """The seq of the newest record (0 when none was ever appended)."""
        return self.next_seq - 1


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of a clean :meth:`Journal.verify`."""

    partition: int
    epoch: int
    first_seq: int
    last_seq: int
    records: int
    snapshots: int


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What :meth:`Journal.compact` removed, and where the journal starts now."""

    partition: int
    records_deleted: int
    snapshots_deleted: int
    first_seq: int


class PreparedRecord(NamedTuple):
    """A validated payload and its kind, ready to be appended."""

    kind: str
    payload: bytes


class Head(NamedTuple):
    """A partition's ``partition_head`` row: records ``first_seq .. next_seq - 1`` exist, none newer than ``epoch``."""

    epoch: int
    next_seq: int
    first_seq: int
