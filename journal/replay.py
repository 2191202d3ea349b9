"""Rebuilding a partition core from the journal: the latest snapshot, then every record after it.

This is the one journal module that imports the partition core (through
:mod:`assignment.partition_core`). Anything the core refuses becomes
:class:`~journal.errors.JournalCorrupt` at the seq of the record (or snapshot) it refused.

Example::

    core = replay(journal, partition, config={"account_limit": 1000})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from assignment.partition_core import CoreError, PartitionCore, Record
from journal.errors import JournalCorrupt
from journal.store import Entry, Journal

__all__ = ["Replayed", "apply_entries", "rebuild", "replay"]


@dataclass(frozen=True, slots=True)
class Replayed:
    """A rebuilt core and what it was built from."""

    core: PartitionCore
    partition: int
    snapshot_seq: int | None
    last_seq: int
    records: int


def apply_entries(core: PartitionCore, entries: Iterable[Entry]) -> int:
    """Apply journal entries to ``core`` in order; return how many. A refusal is ``JournalCorrupt``."""
    count = 0
    for entry in entries:
        try:
            core.apply(Record.decode(entry.payload))
        except CoreError as exc:
            raise JournalCorrupt(entry.partition, entry.seq, f"the partition core refused the record: {exc}") from exc
        count += 1
    return count


def rebuild(journal: Journal, partition: int, *, config: Mapping[str, Any] | None = None) -> Replayed:
    """Rebuild the partition's core (``PartitionCore(**config)``) from its snapshot and records."""
    recovery = journal.recover(partition)
    core = PartitionCore(**dict(config or {}))
    snapshot = recovery.snapshot
    if snapshot is not None:
        try:
            core.restore(snapshot.data)
        except CoreError as exc:
            raise JournalCorrupt(partition, snapshot.seq, f"the partition core refused the snapshot: {exc}") from exc
    count = apply_entries(core, recovery.entries)
    return Replayed(core, partition, snapshot.seq if snapshot else None, recovery.last_seq, count)


def replay(journal: Journal, partition: int, *, config: Mapping[str, Any] | None = None) -> PartitionCore:
    """The partition's core rebuilt from the journal (see :func:`rebuild`)."""
    return rebuild(journal, partition, config=config).core
