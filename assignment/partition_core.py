"""The partition core: one partition's leases, warm pools, placement and concurrency limits.

This module is the only importer of the Rust extension ``assignment._core`` in the ``assignment``
package; everything else imports the names from here. The semantics are documented in
``assignment/_core.pyi`` and ARCHITECTURE.md. It is also the one place where a core error becomes an
error of the assignment service (:func:`service_error`): callers never read a core error's message.

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
    from assignment._core import DestroyReason, Outcome, RecordKind, SandboxState, ThrottleReason  # noqa: F401

from assignment._core import (
    DEFAULT_ACCOUNT_LIMIT,
    CoreError,
    CorruptSnapshot,
    Decision,
    InvalidArgument,
    InvalidRecord,
    InvalidState,
    NoCapacity,
    PartitionCore,
    Record,
    SandboxView,
    StaleLease,
    UnknownLease,
    UnknownSandbox,
    UnknownWorker,
    WorkerView,
)
from assignment.errors import AssignmentError, BadArgument, LeaseGone, Recovering, UnknownLeaseToken

__all__ = [
    "DEFAULT_ACCOUNT_LIMIT",
    "CoreError",
    "CorruptSnapshot",
    "Decision",
    "InvalidArgument",
    "InvalidRecord",
    "InvalidState",
    "NoCapacity",
    "PartitionCore",
    "Record",
    "SandboxView",
    "StaleLease",
    "UnknownLease",
    "UnknownSandbox",
    "UnknownWorker",
    "WorkerView",
    "service_error",
]


def service_error(exc: CoreError, partition: int, *, of_lease: bool = False) -> AssignmentError:
    """What the assignment service answers for a core error of a client's request.

    ``of_lease``: the request names a lease (Release), so a lease in the wrong state (its sandbox still
    being created) means the lease is gone; elsewhere a state the request does not fit means the partition
    is not ready (no epoch started yet) and the caller should retry. Anything else the core raises for a
    request is a broken invariant: the partition is recovered rather than answered.
    """
    if isinstance(exc, InvalidArgument):
        return BadArgument(exc.field, str(exc))
    if isinstance(exc, UnknownLease):
        return UnknownLeaseToken(str(exc))
    if isinstance(exc, StaleLease) or (of_lease and isinstance(exc, InvalidState)):
        return LeaseGone(str(exc))
    return Recovering(partition, str(exc))
