"""Rebuilding a partition core from the journal: the latest snapshot, then every record after it.

Replaying records into a core is the assignment side's job, so it lives here and the journal stays
below: this module imports :mod:`journal.store` and the partition core, and the journal imports
nothing of ``assignment`` but the native extension (see :mod:`journal.native`). Anything the core
refuses becomes :class:`~journal.errors.JournalCorrupt` at the seq of the record (or snapshot) it
refused. Tests and the ``leasehold journal replay`` command import it; that command's action is
:data:`JOURNAL_ACTIONS`, which :mod:`assignment.cli` hands to :func:`journal.cli.register`.

Example::

    core = replay(journal, partition, config={"account_limit": 1000})
    result = rebuild(journal, partition)   # the core, and what it was built from
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from assignment.partition_core import CoreError, PartitionCore, Record
from journal.cli import Action
from journal.errors import JournalCorrupt
from journal.store import Entry, Journal

__all__ = ["JOURNAL_ACTIONS", "Replayed", "apply_entries", "rebuild", "replay"]


@dataclass(frozen=True, slots=True)
class Replayed:
    """A rebuilt core and what it was built from."""

    core: PartitionCore
    partition: int
    snapshot_seq: int | None
    last_seq: int
    records: int


def apply_entries(core: PartitionCore, entries: Iterable[Entry]) -> int:
    """Apply journal entries to ``core`` in order; return how many. A refusal is ``JournalCorrupt``.

    The entries go to the core in one call (it pulls them lazily, so entries before a refusal, or before
    an error raised by ``entries`` itself, stay applied, as one by one).
    """
    count = 0
    current: Entry | None = None
    decode = Record.decode

    def decoded() -> Iterator[Record]:
        nonlocal count, current
        for entry in entries:
            current = entry
            yield decode(entry.payload)
            count += 1

    try:
        core.apply_all(decoded())
    except CoreError as exc:
        if current is None:
            raise
        raise JournalCorrupt(current.partition, current.seq, f"the partition core refused the record: {exc}") from exc
    return count


def _apply_payloads(core: PartitionCore, partition: int, first_seq: int, payloads: list[bytes]) -> int:
    """Decode and apply ``payloads`` (seqs ``first_seq, first_seq + 1, ...``) in one call into the core.

    The core stops at the first record it cannot decode or apply (keeping what came before) and says how
    many it applied, so the refused record's seq is exact.
    """
    applied, error = core.apply_encoded(payloads)
    if error is not None:
        raise JournalCorrupt(
            partition, first_seq + applied, f"the partition core refused the record: {error}"
        ) from error
    return applied


def rebuild(journal: Journal, partition: int, *, config: Mapping[str, Any] | None = None) -> Replayed:
    """Rebuild the partition's core (``PartitionCore(**config)``) from its snapshot and records.

    The records are read as payloads only (:meth:`~journal.store.Journal.recover_payloads`) and handed
    to the core in one call: no per-record Python objects beyond the decoded records.
    """
    recovery = journal.recover_payloads(partition)
    core = PartitionCore(**dict(config or {}))
    snapshot = recovery.snapshot
    if snapshot is not None:
        try:
            core.restore(snapshot.data)
        except CoreError as exc:
            raise JournalCorrupt(partition, snapshot.seq, f"the partition core refused the snapshot: {exc}") from exc
    count = _apply_payloads(core, partition, recovery.first_seq, recovery.payloads)
    return Replayed(core, partition, snapshot.seq if snapshot else None, recovery.last_seq, count)


def replay(journal: Journal, partition: int, *, config: Mapping[str, Any] | None = None) -> PartitionCore:
    """The partition's core rebuilt from the journal (see :func:`rebuild`)."""
    return rebuild(journal, partition, config=config).core


def _replay_action(journal: Journal, partition: int, out: TextIO) -> None:
    """``leasehold journal replay``: rebuild the partition's core and print a summary of it."""
    result = rebuild(journal, partition)
    core = result.core
    print(
        f"partition={partition} ok snapshot_seq={result.snapshot_seq} last_seq={result.last_seq} "
        f"records={result.records} epoch={core.epoch} workers={core.worker_count} sandboxes={core.sandbox_count} "
        f"leases={core.lease_count}",
        file=out,
    )


#: The ``leasehold journal`` actions that need the partition core: ``name -> (help, action)``.
JOURNAL_ACTIONS: dict[str, tuple[str, Action]] = {
    "replay": ("rebuild the partition core from snapshot + records and summarise it", _replay_action),
}
