"""The partition core: one partition's leases, warm pools, placement and concurrency limits.

This module is the only importer of the Rust extension ``assignment._core``; everything else imports
the names from here. The semantics are documented in ``assignment/_core.pyi`` and ARCHITECTURE.md.

Example: a leader decides, applies, journals, then answers::

    core = PartitionCore(account_limit=1000)
    core.apply_all(core.start_epoch(journal_epoch))
    core.apply_all(core.join_worker("w1", "zone-a", "10.0.0.5:7001", 8192))
    decision = core.acquire("resize", "$LATEST", 256, 3_000, now_ms)
    core.apply_all(decision.records)       # in memory at once, so the next decision sees it
    journal.append(partition, epoch, [r.encode() for r in decision.records])  # then answer
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Literal aliases exist only in the stub: re-exported here for annotations.
    from assignment._core import DestroyReason, Outcome, RecordKind, ThrottleReason  # noqa: F401

from assignment._core import (
    CoreError,
    CorruptSnapshot,
    Decision,
    InvalidArgument,
    InvalidRecord,
    InvalidState,
    NoCapacity,
    PartitionCore,
    Record,
    StaleLease,
    UnknownLease,
    UnknownSandbox,
    UnknownWorker,
    check_record_rows,
)

__all__ = [
    "CoreError",
    "CorruptSnapshot",
    "Decision",
    "InvalidArgument",
    "InvalidRecord",
    "InvalidState",
    "NoCapacity",
    "PartitionCore",
    "Record",
    "StaleLease",
    "UnknownLease",
    "UnknownSandbox",
    "UnknownWorker",
    "check_record_rows",
]
