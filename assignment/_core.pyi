"""Type stub of the Rust partition core (``assignment._core``), checked by ``mypy.stubtest``.

Only :mod:`assignment.partition_core` imports this module; everything else imports that one.

The core holds one partition's state and makes every hot-path decision. It is pure: no I/O, no clock
(every time is an argument, in milliseconds since the epoch), no randomness. Decisions come back as
:class:`Record` values and change nothing; state changes only through :meth:`PartitionCore.apply`, so the
leader (decide, apply, journal), its followers and recovery (apply) share one code path.

Semantics, shared with the Python reference model in ``tests/core/reference.py``:

* Ids. Sandbox ids and lease sequence numbers are assigned by the core from counters that start at 1
  and advance when the record that uses them is applied (a record must use exactly the next one).
  A lease token is ``(epoch, seq)``; ``seq`` is unique in the partition across epochs.
* Validation. Names (function ≤ 140, version ≤ 64, worker id ≤ 128, zone ≤ 64, address ≤ 256,
  request id ≤ 128 UTF-8 bytes) must not contain control characters (Unicode category Cc); function,
  version, worker id and zone must be non-empty. ``memory_mb`` 128..=10240, ``capacity_mb``
  0..=4194304, ``timeout_ms`` 1..=900000, ``now_ms`` 0..=2**53, ``reserved`` 0..=account_limit,
  ``limit`` 1..=1000000; sandbox ids, epochs and both parts of a token 0..=2**64-1 (a token is a
  ``tuple`` of two ints). Integers must be ``int`` (not ``bool``). Anything else: :class:`InvalidArgument`.
* Concurrency. A lease counts against its function (all versions). A function with reserved
  concurrency R is throttled (``reserved_limit``) when it holds R leases. Other functions share
  ``account_limit - sum(reserved)`` (at least 0) and are throttled (``account_limit``) when their leases
  together reach it. Checked before the warm pool, so it applies to warm and cold grants alike.
* Warm. The idle sandboxes of a (function, version) form a pool, most recently used first. Acquire takes
  the first one whose worker is healthy and whose memory equals the request's.
* Cold. Scale-up: a function may create ``scale_up_per_window`` sandboxes per ``scale_up_window_ms``;
  the creation times ``t`` with ``t + window > now`` count; when they reach the limit: ``scale_up_rate``.
  The creation times are kept sorted; applying ``SandboxCreating`` first drops those with
  ``t + window <= record.now_ms`` and then inserts ``now_ms`` after any equal ones.
  Placement ranks healthy workers with ``capacity - used >= memory`` by the key
  ``(zone_count, zone, 0 if holds_code else 1, worker_count, -free_mb, worker_id)`` where
  ``zone_count`` / ``worker_count`` count the (function, version)'s sandboxes (any state) in the
  worker's zone / on the worker, and ``holds_code`` is ``worker_count > 0``. The first is chosen, the
  next ``alternatives`` are returned ranked. None: ``no_capacity``.
* Release. A token whose seq is an active lease with the same epoch is released. A seq in
  ``1..next_lease_seq`` that is not active (released, expired, dropped) or has another epoch is
  :class:`StaleLease`; any other token is :class:`UnknownLease`. A lease on a sandbox still creating
  cannot be released (:class:`InvalidState`). Outcomes ``ok`` and ``function_error`` return the sandbox
  to the front of its pool with ``last_used = now``; the others destroy it.
* Expiry. ``expire(now, limit)`` returns ``LeaseExpired`` for leases with ``expiry <= now`` in
  ``(expiry, seq)`` order, then ``SandboxDestroyed(idle)`` for idle sandboxes with
  ``last_used + idle_keepalive_ms <= now`` in ``(last_used, sandbox_id)`` order, at most ``limit`` in all.
  An expired lease's sandbox goes to ``resetting`` until ``SandboxReset`` or ``SandboxDestroyed``.
* Time of use. Every record about one sandbox that carries ``now_ms`` (creating, created, reset, lease
  granted, released, expired) sets its ``last_used_ms``. A sandbox that becomes idle (created without a
  lease, released reusable, reset) goes to the front of its pool.
* Workers. ``WorkerLeft`` drops the worker's sandboxes and their leases. An unhealthy worker gets no
  placements and its idle sandboxes are skipped by warm acquire. ``free = max(capacity - used, 0)``.
* Apply. A record that does not fit the state raises :class:`InvalidRecord` and changes nothing.
  Apply checks structure (ids, existence, sandbox states, enum values, the name/memory/capacity/time
  limits above), never the configuration or policy (account limit, room on a worker, health,
  throttles): a journal must replay to the same state under any configuration.
  :meth:`PartitionCore.apply_all` applies in order and stops at the first failure (the records before it
  stay applied; a leader that sees this must rebuild its core from the journal).
"""

from collections.abc import Iterable
from typing import Any, Final, Literal, final

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
    "check_record_rows",
]

Outcome = Literal["ok", "function_error", "timeout", "crash", "out_of_memory"]
DestroyReason = Literal["idle", "create_failed", "reset_failed", "vanished", "requested"]
ThrottleReason = Literal["account_limit", "reserved_limit", "scale_up_rate", "no_capacity"]

def check_record_rows(
    rows: list[Any],
    start: int,
    partition: int,
    expected: int,
    prev_epoch: int,
    head_epoch: int,
    end: int,
    kinds: frozenset[str],
    payloads: list[bytes],
) -> tuple[int, int, int]:
    """The journal's recovery hot loop: check rows ``(seq, epoch, kind, payload, crc)`` of ``rows[start:]``.

    Each must continue from ``expected``, lie before ``end``, name a kind in ``kinds``, carry a non-empty
    ``bytes`` payload, have an epoch between ``prev_epoch`` and ``head_epoch``, and match its CRC
    (``journal.schema.record_crc``). Good rows' payloads are appended to ``payloads``. Stops before the
    first row that fails (or has another shape) and returns ``(rows_accepted, expected, prev_epoch)``;
    the caller re-checks that row to name the fault.
    """

#: AWS's default account concurrency limit, the core's default ``account_limit``.
DEFAULT_ACCOUNT_LIMIT: Final[int]

RecordKind = Literal[
    "epoch_started",
    "worker_joined",
    "worker_left",
    "worker_updated",
    "function_concurrency_set",
    "sandbox_creating",
    "sandbox_relocated",
    "sandbox_created",
    "sandbox_reset",
    "sandbox_destroyed",
    "lease_granted",
    "lease_released",
    "lease_expired",
    "version_provisioned",
]

class CoreError(Exception):
    """Base of every error the core raises."""

class InvalidArgument(CoreError, ValueError):
    """An argument is malformed or out of range; the message is ``"{field} {why}"``."""

    #: The parameter at fault (``"memory_mb"``, ``"token"``, ...), as data: map it, never parse the message.
    field: str

class InvalidState(CoreError):
    """The request does not fit the current state (e.g. no epoch started, sandbox not creating)."""

class UnknownWorker(CoreError):
    """No worker with that id is in the partition."""

class UnknownSandbox(CoreError):
    """No sandbox with that id is in the partition."""

class UnknownLease(CoreError):
    """The lease token was never issued by this partition."""

class StaleLease(CoreError):
    """The lease token was issued but is no longer held (released, expired, or superseded)."""

class NoCapacity(CoreError):
    """The target worker has no room for the sandbox."""

class InvalidRecord(CoreError):
    """A record could not be decoded or does not fit the state it is applied to."""

class CorruptSnapshot(CoreError):
    """Snapshot bytes could not be decoded or describe an inconsistent state."""

@final
class Record:
    """One journal record (protobuf ``leasehold.journal.v1.Record``)."""

    @property
    def kind(self) -> RecordKind:
        """The record's kind: the name of the ``Record.kind`` oneof field that is set."""

    def encode(self) -> bytes:
        """The record's protobuf encoding."""

    @staticmethod
    def decode(data: bytes) -> Record:
        """Parse a protobuf-encoded record; :class:`InvalidRecord` when it is malformed or empty."""

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Decision:
    """The answer to :meth:`PartitionCore.acquire`. Apply :attr:`records` before acting on it."""

    @property
    def outcome(self) -> Literal["warm", "cold", "throttled"]: ...
    @property
    def reason(self) -> ThrottleReason | None:
        """Why the acquire was throttled; ``None`` unless ``outcome == "throttled"``."""

    @property
    def records(self) -> list[Record]:
        """Warm: ``[LeaseGranted]``. Cold: ``[SandboxCreating, LeaseGranted]``. Throttled: ``[]``."""

    @property
    def token(self) -> tuple[int, int] | None:
        """The granted lease token ``(epoch, seq)``."""

    @property
    def sandbox_id(self) -> int | None: ...
    @property
    def worker_id(self) -> str | None: ...
    @property
    def worker_address(self) -> str | None: ...
    @property
    def expiry_ms(self) -> int | None: ...
    @property
    def alternatives(self) -> list[str]:
        """Cold only: the next-best workers, best first, to try if the chosen one refuses."""

@final
class WorkerView:
    """A worker as the partition knows it (:meth:`PartitionCore.worker`)."""

    @property
    def id(self) -> str: ...
    @property
    def zone(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def capacity_mb(self) -> int: ...
    @property
    def used_mb(self) -> int: ...
    @property
    def healthy(self) -> bool: ...

SandboxState = Literal["creating", "idle", "busy", "resetting"]

@final
class SandboxView:
    """A sandbox as the partition knows it (:meth:`PartitionCore.sandbox`)."""

    @property
    def id(self) -> int: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def function(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def memory_mb(self) -> int: ...
    @property
    def state(self) -> SandboxState: ...
    @property
    def last_used_ms(self) -> int: ...
    @property
    def lease(self) -> tuple[int, int, int] | None:
        """``(epoch, seq, expiry_ms)`` while the sandbox holds a lease."""

@final
class PartitionCore:
    """The state of one partition and every decision about it."""

    def __new__(
        cls,
        *,
        account_limit: int | None = None,
        scale_up_per_window: int | None = None,
        scale_up_window_ms: int | None = None,
        lease_margin_ms: int | None = None,
        idle_keepalive_ms: int | None = None,
        alternatives: int | None = None,
    ) -> PartitionCore:
        """A core with no state. Defaults: ``account_limit=1000`` (leases without a reservation),
        ``scale_up_per_window=1000`` per ``scale_up_window_ms=10_000``, ``lease_margin_ms=1_000`` (added
        to the function timeout), ``idle_keepalive_ms=600_000``, ``alternatives=3`` (ranked workers
        returned after the chosen one); ``None`` takes the default. Out of range: :class:`InvalidArgument`."""

    @property
    def epoch(self) -> int: ...
    @property
    def worker_count(self) -> int: ...
    @property
    def sandbox_count(self) -> int: ...
    @property
    def lease_count(self) -> int: ...

    # Decisions: they validate, return records, and change nothing.
    def acquire(
        self,
        function: str,
        version: str,
        memory_mb: int,
        timeout_ms: int,
        now_ms: int,
        request_id: str | None = None,
        *,
        apply: bool = False,
    ) -> Decision:
        """Warm grant, cold placement or throttle. :class:`InvalidState` before any epoch started.

        ``apply=True`` also applies the decision's records, in the same call: a leader applies every
        decision before making the next, and one call across the boundary is cheaper than two.
        """

    def release(self, token: tuple[int, int], outcome: Outcome, now_ms: int, *, apply: bool = False) -> list[Record]:
        """``[LeaseReleased]``; see the module doc for which tokens are unknown or stale.
        ``apply=True`` applies it too."""

    def expire(self, now_ms: int, limit: int | None = None) -> list[Record]:
        """Leases and idle sandboxes past their time, at most ``limit`` (default 1024) records."""

    def created(self, sandbox_id: int, now_ms: int) -> list[Record]:
        """``[SandboxCreated]`` once the worker confirmed a creating sandbox."""

    def relocate(self, sandbox_id: int, worker_id: str) -> list[Record]:
        """``[SandboxRelocated]``: move a creating sandbox to another healthy worker with room
        (:class:`NoCapacity` otherwise; :class:`InvalidArgument` for its current worker)."""

    def reset_done(self, sandbox_id: int, now_ms: int) -> list[Record]:
        """``[SandboxReset]`` for a resetting sandbox."""

    def destroy(self, sandbox_id: int, reason: DestroyReason, now_ms: int) -> list[Record]:
        """``[SandboxDestroyed]`` for a sandbox in any state."""

    def join_worker(self, worker_id: str, zone: str, address: str, capacity_mb: int) -> list[Record]:
        """``[WorkerJoined]``; :class:`InvalidState` if the id is already present."""

    def leave_worker(self, worker_id: str) -> list[Record]: ...
    def update_worker(self, worker_id: str, capacity_mb: int, healthy: bool) -> list[Record]: ...
    def set_reserved(self, function: str, reserved: int | None) -> list[Record]: ...
    def set_provisioned(self, function: str, version: str, count: int, until_ms: int) -> list[Record]:
        """``[VersionProvisioned]``: idle reclaim leaves ``count`` sandboxes of the version until
        ``until_ms``; ``count`` 0 removes the pin. ``count`` is at most the account limit."""

    def start_epoch(self, epoch: int) -> list[Record]:
        """``[EpochStarted]``; the epoch must be greater than the current one (:class:`InvalidState`)."""

    # State changes.
    def apply(self, record: Record) -> None:
        """Apply one record, or raise :class:`InvalidRecord` and change nothing."""

    def apply_all(self, records: Iterable[Record]) -> None:
        """Apply records in order, stopping at the first that fails."""

    def apply_encoded(self, payloads: Iterable[bytes]) -> tuple[int, CoreError | None]:
        """Decode and apply encoded records in order (replay's path: no :class:`Record` per record).

        Stops at the first that cannot be decoded (:class:`InvalidRecord`) or applied; returns how many
        were applied and that error, not raised, so the caller can name the record (``None``: all applied).
        """

    # Persistence and inspection.
    def snapshot(self) -> bytes:
        """The state as ``PartitionSnapshot`` bytes, canonical: equal states give equal bytes."""

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's, or raise :class:`CorruptSnapshot` and keep it."""

    # Narrow queries: what a leader asks between decisions, without copying the state.
    def worker(self, worker_id: str) -> WorkerView | None:
        """The worker with that id, if it has joined."""
    def workers(self) -> list[WorkerView]:
        """Every joined worker, by id."""
    def sandbox(self, sandbox_id: int) -> SandboxView | None:
        """The sandbox with that id, if it exists."""
    def lease_sandbox(self, seq: int) -> int | None:
        """The id of the sandbox holding the active lease with that seq (seqs are unique across epochs)."""
    def sandboxes_on(self, worker_id: str) -> list[int]:
        """The ids of a worker's sandboxes, sorted (empty for a worker that has not joined)."""
    def creating(self) -> list[int]:
        """The ids of the sandboxes still being created, sorted."""
    def version_sandboxes(self, function: str, version: str, memory_mb: int) -> tuple[int, int]:
        """``(all, idle)``: the version's sandboxes of that memory size."""
    def provisioned_pin(self, function: str, version: str) -> tuple[int, int] | None:
        """The version's provisioned pin ``(count, until_ms)``, if it has one."""
    def state(self) -> dict[str, Any]:
        """The primary state as plain data, for tests, debugging and ``leasehold journal`` only: production
        code asks the narrow queries above.

        ``{"epoch", "next_sandbox_id", "next_lease_seq",
        "workers": {id: (zone, address, capacity_mb, used_mb, healthy)},
        "sandboxes": {id: (worker_id, function, version, memory_mb, state, last_used_ms, lease)}`` where
        ``lease`` is ``(epoch, seq, expiry_ms)`` or ``None``,
        ``"pools": {(function, version): [sandbox ids, most recent first]}`` (non-empty pools only),
        ``"reserved": {function: n}``, ``"scale_up": {function: [creation times]}`` (non-empty only),
        ``"provisioned": {(function, version): (count, until_ms)}``}.
        """
