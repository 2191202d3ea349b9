"""A small, deliberately naive Python model of the partition core, to hold the Rust core to its spec.

The spec is the module docstring of ``assignment/_core.pyi``; this model follows it line by line with
plain dicts and lists (sort every candidate, scan every sandbox) so that a reader can check it against
the text. It imports nothing from the Rust extension and needs no build.

Example::

    core = ReferenceCore(account_limit=10)
    core.apply_all(core.start_epoch(1))
    core.apply_all(core.join_worker("w1", "zone-a", "10.0.0.5:7001", 2048))
    decision = core.acquire("resize", "$LATEST", 256, 3_000, now_ms=1_000)
    core.apply_all(decision.records)

Interpretations of points the spec leaves open (tell the core's owner when one turns out wrong):

1.  Arguments are validated (types and ranges, all :class:`InvalidArgument`) before the state is
    consulted: ``acquire`` with a bad argument and no epoch raises ``InvalidArgument``, not ``InvalidState``.
2.  A wrong type (``None`` or a float for an int, an int for a string, a list for a token) is
    ``InvalidArgument`` ("anything else"), not ``TypeError``. So is a string that is not valid UTF-8
    (a lone surrogate). ``healthy`` must be a real ``bool``; ``reserved`` an int or ``None``.
3.  (Spec since clarified: sandbox ids, epochs and token parts are ints in 0..=2**64-1, a token a
    ``tuple`` of two.) Within that range an id that is not in the partition is ``UnknownSandbox``; a token
    whose seq is in ``1..next_lease_seq`` is active-or-``StaleLease`` whatever its epoch, any other seq
    (0, or not issued yet) is ``UnknownLease``.
4.  ``start_epoch``: an epoch that is not greater than the current one (including 0) is ``InvalidState``.
5.  Cold path: the scale-up limit is checked before placement, so a function at its scale-up limit is
    ``scale_up_rate`` even when no worker has room.
6.  ``expiry_ms = now_ms + timeout_ms + lease_margin_ms``, for warm and cold grants alike.
7.  ``release``: unknown/stale is decided before the "still creating" check (``InvalidState``).
8.  ``relocate`` checks in this order: sandbox known (``UnknownSandbox``), creating (``InvalidState``),
    worker known (``UnknownWorker``), not its current worker (``InvalidArgument``), healthy with
    ``capacity - used >= memory`` (``NoCapacity``).
9.  A lease on a creating sandbox (a cold grant) expires like any other; its sandbox goes to
    ``resetting`` (literal reading of "An expired lease's sandbox goes to resetting").
10. ``expire`` considers idle sandboxes on unhealthy workers too.
11. ``apply`` checks structure, not policy: ids (exactly the next sandbox id / lease seq, token epoch
    equal to the current epoch and > 0), existence, the sandbox's state, enum values (not
    ``UNSPECIFIED``, not unknown), and the ranges the spec names (names, ``memory_mb``, ``capacity_mb``,
    ``now_ms``, ``reserved``). It does not re-check worker health, room, throttles, whether a
    ``LeaseExpired`` is actually due, or ``expiry_ms`` (the spec gives it no range). A ``SandboxRelocated``
    to the sandbox's current worker is invalid. ``LeaseGranted`` fits an idle sandbox, or a creating one
    without a lease.
12. ``state()`` sandbox states are the lowercase names ``"creating"``, ``"idle"``, ``"busy"``,
    ``"resetting"``; ``reserved`` lists explicit zeros.
13. The snapshot ``format`` is 1; an absent lease has no ``lease`` field and ``lease_expiry_ms == 0``.
14. Constructor arguments must be non-negative ints (``InvalidArgument`` otherwise).
"""

from __future__ import annotations

import bisect
import dataclasses
import unicodedata
from collections.abc import Iterable
from typing import Any, Literal

from journal.v1 import records_pb2, snapshot_pb2

MAX_NOW_MS = 2**53
MAX_U64 = 2**64 - 1
SNAPSHOT_FORMAT = 1

OUTCOMES: dict[str, int] = {
    "ok": records_pb2.OUTCOME_OK,
    "function_error": records_pb2.OUTCOME_FUNCTION_ERROR,
    "timeout": records_pb2.OUTCOME_TIMEOUT,
    "crash": records_pb2.OUTCOME_CRASH,
    "out_of_memory": records_pb2.OUTCOME_OUT_OF_MEMORY,
}
REUSABLE_OUTCOMES = {records_pb2.OUTCOME_OK, records_pb2.OUTCOME_FUNCTION_ERROR}
DESTROY_REASONS: dict[str, int] = {
    "idle": records_pb2.DESTROY_REASON_IDLE,
    "create_failed": records_pb2.DESTROY_REASON_CREATE_FAILED,
    "reset_failed": records_pb2.DESTROY_REASON_RESET_FAILED,
    "vanished": records_pb2.DESTROY_REASON_VANISHED,
    "requested": records_pb2.DESTROY_REASON_REQUESTED,
}
SANDBOX_STATES: dict[str, int] = {
    "creating": snapshot_pb2.SANDBOX_STATE_CREATING,
    "idle": snapshot_pb2.SANDBOX_STATE_IDLE,
    "busy": snapshot_pb2.SANDBOX_STATE_BUSY,
    "resetting": snapshot_pb2.SANDBOX_STATE_RESETTING,
}

SandboxState = Literal["creating", "idle", "busy", "resetting"]


# Look-alikes of the Rust core's errors: the differential test compares class names.
class CoreError(Exception):
    pass


class InvalidArgument(CoreError, ValueError):
    pass


class InvalidState(CoreError):
    pass


class UnknownWorker(CoreError):
    pass


class UnknownSandbox(CoreError):
    pass


class UnknownLease(CoreError):
    pass


class StaleLease(CoreError):
    pass


class NoCapacity(CoreError):
    pass


class InvalidRecord(CoreError):
    pass


class CorruptSnapshot(CoreError):
    pass


@dataclasses.dataclass(frozen=True)
class Decision:
    outcome: Literal["warm", "cold", "throttled"]
    reason: str | None = None
    records: list[records_pb2.Record] = dataclasses.field(default_factory=list)
    token: tuple[int, int] | None = None
    sandbox_id: int | None = None
    worker_id: str | None = None
    worker_address: str | None = None
    expiry_ms: int | None = None
    alternatives: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Worker:
    zone: str
    address: str
    capacity_mb: int
    healthy: bool


@dataclasses.dataclass
class Lease:
    epoch: int
    seq: int
    expiry_ms: int


@dataclasses.dataclass
class Sandbox:
    worker_id: str
    function: str
    version: str
    memory_mb: int
    state: SandboxState
    last_used_ms: int
    lease: Lease | None


# ---------------------------------------------------------------------------------------------------
# Argument validation. `error` is InvalidArgument for method arguments, InvalidRecord inside apply.


def check_int(value: object, name: str, lo: int, hi: int, error: type[CoreError] = InvalidArgument) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise error(f"{name} must be in {lo}..={hi}, not {value}")
    return int(value)


def check_name(
    value: object, name: str, max_bytes: int, *, required: bool, error: type[CoreError] = InvalidArgument
) -> str:
    if not isinstance(value, str):
        raise error(f"{name} must be a str, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise error(f"{name} is not valid UTF-8") from None
    if required and size == 0:
        raise error(f"{name} must not be empty")
    if size > max_bytes:
        raise error(f"{name} is longer than {max_bytes} bytes")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise error(f"{name} contains a control character")
    return value


def check_function(value: object, error: type[CoreError] = InvalidArgument) -> str:
    return check_name(value, "function", 140, required=True, error=error)


def check_version(value: object, error: type[CoreError] = InvalidArgument) -> str:
    return check_name(value, "version", 64, required=True, error=error)


def check_worker_id(value: object, error: type[CoreError] = InvalidArgument) -> str:
    return check_name(value, "worker_id", 128, required=True, error=error)


def check_zone(value: object, error: type[CoreError] = InvalidArgument) -> str:
    return check_name(value, "zone", 64, required=True, error=error)


def check_address(value: object, error: type[CoreError] = InvalidArgument) -> str:
    return check_name(value, "address", 256, required=False, error=error)


def check_request_id(value: object, error: type[CoreError] = InvalidArgument) -> str:
    return check_name(value, "request_id", 128, required=False, error=error)


def check_memory(value: object, error: type[CoreError] = InvalidArgument) -> int:
    return check_int(value, "memory_mb", 128, 10240, error)


def check_capacity(value: object, error: type[CoreError] = InvalidArgument) -> int:
    return check_int(value, "capacity_mb", 0, 4_194_304, error)


def check_now(value: object, error: type[CoreError] = InvalidArgument) -> int:
    return check_int(value, "now_ms", 0, MAX_NOW_MS, error)


def check_u64(value: object, name: str) -> int:
    return check_int(value, name, 0, MAX_U64)


def check_token(token: object) -> tuple[int, int]:
    if not isinstance(token, tuple) or len(token) != 2:
        raise InvalidArgument("token must be a tuple (epoch, seq)")
    return check_u64(token[0], "token epoch"), check_u64(token[1], "token seq")


# ---------------------------------------------------------------------------------------------------
# Record constructors.


def token_pb(epoch: int, seq: int) -> records_pb2.LeaseToken:
    return records_pb2.LeaseToken(epoch=epoch, seq=seq)


class ReferenceCore:
    """The partition core's semantics, naively."""

    def __init__(
        self,
        *,
        account_limit: int = 1000,
        scale_up_per_window: int = 1000,
        scale_up_window_ms: int = 10_000,
        lease_margin_ms: int = 1_000,
        idle_keepalive_ms: int = 600_000,
        alternatives: int = 3,
    ) -> None:
        self.account_limit = check_int(account_limit, "account_limit", 0, 2**32 - 1)
        self.scale_up_per_window = check_int(scale_up_per_window, "scale_up_per_window", 0, 2**32 - 1)
        self.scale_up_window_ms = check_int(scale_up_window_ms, "scale_up_window_ms", 0, MAX_NOW_MS)
        self.lease_margin_ms = check_int(lease_margin_ms, "lease_margin_ms", 0, MAX_NOW_MS)
        self.idle_keepalive_ms = check_int(idle_keepalive_ms, "idle_keepalive_ms", 0, MAX_NOW_MS)
        self.alternatives = check_int(alternatives, "alternatives", 0, 2**32 - 1)
        self._epoch = 0
        self.next_sandbox_id = 1
        self.next_lease_seq = 1
        self.workers: dict[str, Worker] = {}
        self.sandboxes: dict[int, Sandbox] = {}
        self.pools: dict[tuple[str, str], list[int]] = {}
        self.reserved: dict[str, int] = {}
        self.scale_up: dict[str, list[int]] = {}
        #: (function, version) -> (count, until_ms) of provisioned-concurrency pins.
        self.provisioned: dict[tuple[str, str], tuple[int, int]] = {}

    # -- inspection ---------------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def worker_count(self) -> int:
        return len(self.workers)

    @property
    def sandbox_count(self) -> int:
        return len(self.sandboxes)

    @property
    def lease_count(self) -> int:
        return sum(1 for s in self.sandboxes.values() if s.lease is not None)

    def used_mb(self, worker_id: str) -> int:
        return sum(s.memory_mb for s in self.sandboxes.values() if s.worker_id == worker_id)

    def free_mb(self, worker_id: str) -> int:
        return max(self.workers[worker_id].capacity_mb - self.used_mb(worker_id), 0)

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self._epoch,
            "next_sandbox_id": self.next_sandbox_id,
            "next_lease_seq": self.next_lease_seq,
            "workers": {
                wid: (w.zone, w.address, w.capacity_mb, self.used_mb(wid), w.healthy) for wid, w in self.workers.items()
            },
            "sandboxes": {
                sid: (
                    s.worker_id,
                    s.function,
                    s.version,
                    s.memory_mb,
                    s.state,
                    s.last_used_ms,
                    None if s.lease is None else (s.lease.epoch, s.lease.seq, s.lease.expiry_ms),
                )
                for sid, s in self.sandboxes.items()
            },
            "pools": {key: list(ids) for key, ids in self.pools.items() if ids},
            "reserved": dict(self.reserved),
            "scale_up": {f: list(ts) for f, ts in self.scale_up.items() if ts},
            "provisioned": dict(self.provisioned),
        }

    def snapshot(self) -> bytes:
        snap = snapshot_pb2.PartitionSnapshot(
            format=SNAPSHOT_FORMAT,
            epoch=self._epoch,
            next_sandbox_id=self.next_sandbox_id,
            next_lease_seq=self.next_lease_seq,
        )
        for wid in sorted(self.workers):
            w = self.workers[wid]
            snap.workers.add(
                worker_id=wid, zone=w.zone, address=w.address, capacity_mb=w.capacity_mb, healthy=w.healthy
            )
        for sid in sorted(self.sandboxes):
            s = self.sandboxes[sid]
            entry = snap.sandboxes.add(
                sandbox_id=sid,
                worker_id=s.worker_id,
                function=s.function,
                version=s.version,
                memory_mb=s.memory_mb,
                state=SANDBOX_STATES[s.state],
                last_used_ms=s.last_used_ms,
            )
            if s.lease is not None:
                entry.lease.CopyFrom(token_pb(s.lease.epoch, s.lease.seq))
                entry.lease_expiry_ms = s.lease.expiry_ms
        for (function, version), ids in sorted(self.pools.items()):
            if ids:
                snap.pools.add(function=function, version=version, sandbox_ids=ids)
        for function in sorted(self.reserved):
            snap.reserved.add(function=function, reserved=self.reserved[function])
        for function in sorted(self.scale_up):
            if self.scale_up[function]:
                snap.scale_up.add(function=function, created_ms=self.scale_up[function])
        for (function, version), (count, until_ms) in sorted(self.provisioned.items()):
            snap.provisioned.add(function=function, version=version, count=count, until_ms=until_ms)
        return snap.SerializeToString()

    # -- helpers --------------------------------------------------------------------------------------

    def lease_holder(self, seq: int) -> tuple[int, Sandbox] | None:
        for sid, s in self.sandboxes.items():
            if s.lease is not None and s.lease.seq == seq:
                return sid, s
        return None

    def active_leases(self, function: str) -> int:
        return sum(1 for s in self.sandboxes.values() if s.lease is not None and s.function == function)

    def concurrency_throttle(self, function: str) -> str | None:
        if function in self.reserved:
            return "reserved_limit" if self.active_leases(function) >= self.reserved[function] else None
        unreserved = max(self.account_limit - sum(self.reserved.values()), 0)
        shared = sum(1 for s in self.sandboxes.values() if s.lease is not None and s.function not in self.reserved)
        return "account_limit" if shared >= unreserved else None

    def placement_keys(self, function: str, version: str) -> dict[str, tuple[int, str, int, int, int, str]]:
        """The placement key of every worker for a sandbox of (function, version), from one pass over
        the sandboxes (so a decision is linear in the partition, never quadratic)."""
        used: dict[str, int] = dict.fromkeys(self.workers, 0)
        per_zone: dict[str, int] = {}
        per_worker: dict[str, int] = {}
        for s in self.sandboxes.values():
            used[s.worker_id] += s.memory_mb
            if s.function == function and s.version == version:
                zone = self.workers[s.worker_id].zone
                per_zone[zone] = per_zone.get(zone, 0) + 1
                per_worker[s.worker_id] = per_worker.get(s.worker_id, 0) + 1
        keys = {}
        for wid, w in self.workers.items():
            worker_count = per_worker.get(wid, 0)
            free = max(w.capacity_mb - used[wid], 0)
            keys[wid] = (per_zone.get(w.zone, 0), w.zone, 0 if worker_count > 0 else 1, worker_count, -free, wid)
        return keys

    def push_idle(self, sandbox_id: int) -> None:
        """Make a sandbox idle at the front of its pool."""
        s = self.sandboxes[sandbox_id]
        s.state = "idle"
        pool = self.pools.setdefault((s.function, s.version), [])
        assert sandbox_id not in pool
        pool.insert(0, sandbox_id)

    def drop_sandbox(self, sandbox_id: int) -> None:
        s = self.sandboxes.pop(sandbox_id)
        key = (s.function, s.version)
        if sandbox_id in self.pools.get(key, []):
            self.pools[key].remove(sandbox_id)
            if not self.pools[key]:
                del self.pools[key]

    def take_from_pool(self, sandbox_id: int) -> None:
        s = self.sandboxes[sandbox_id]
        key = (s.function, s.version)
        self.pools[key].remove(sandbox_id)
        if not self.pools[key]:
            del self.pools[key]

    def sandbox_for(self, sandbox_id: object) -> Sandbox:
        sid = check_u64(sandbox_id, "sandbox_id")
        if sid not in self.sandboxes:
            raise UnknownSandbox(f"no sandbox {sid}")
        return self.sandboxes[sid]

    # -- decisions ------------------------------------------------------------------------------------

    def acquire(
        self, function: str, version: str, memory_mb: int, timeout_ms: int, now_ms: int, request_id: str = ""
    ) -> Decision:
        check_function(function)
        check_version(version)
        check_memory(memory_mb)
        check_int(timeout_ms, "timeout_ms", 1, 900_000)
        check_now(now_ms)
        check_request_id(request_id)
        if self._epoch == 0:
            raise InvalidState("no epoch started")

        reason = self.concurrency_throttle(function)
        if reason is not None:
            return Decision("throttled", reason)

        token = (self._epoch, self.next_lease_seq)
        expiry = now_ms + timeout_ms + self.lease_margin_ms

        def grant(sandbox_id: int) -> records_pb2.Record:
            return records_pb2.Record(
                lease_granted=records_pb2.LeaseGranted(
                    token=token_pb(*token),
                    sandbox_id=sandbox_id,
                    expiry_ms=expiry,
                    now_ms=now_ms,
                    request_id=request_id,
                )
            )

        for sid in self.pools.get((function, version), []):
            s = self.sandboxes[sid]
            w = self.workers[s.worker_id]
            if w.healthy and s.memory_mb == memory_mb:
                return Decision(
                    "warm",
                    records=[grant(sid)],
                    token=token,
                    sandbox_id=sid,
                    worker_id=s.worker_id,
                    worker_address=w.address,
                    expiry_ms=expiry,
                )

        recent = [t for t in self.scale_up.get(function, []) if t + self.scale_up_window_ms > now_ms]
        if len(recent) >= self.scale_up_per_window:
            return Decision("throttled", "scale_up_rate")

        keys = self.placement_keys(function, version)
        eligible = [wid for wid, w in self.workers.items() if w.healthy and -keys[wid][4] >= memory_mb]
        ranked = sorted(eligible, key=keys.__getitem__)
        if not ranked:
            return Decision("throttled", "no_capacity")
        chosen = ranked[0]
        sid = self.next_sandbox_id
        creating = records_pb2.Record(
            sandbox_creating=records_pb2.SandboxCreating(
                sandbox_id=sid,
                worker_id=chosen,
                function=function,
                version=version,
                memory_mb=memory_mb,
                now_ms=now_ms,
            )
        )
        return Decision(
            "cold",
            records=[creating, grant(sid)],
            token=token,
            sandbox_id=sid,
            worker_id=chosen,
            worker_address=self.workers[chosen].address,
            expiry_ms=expiry,
            alternatives=ranked[1 : 1 + self.alternatives],
        )

    def release(self, token: tuple[int, int], outcome: str, now_ms: int) -> list[records_pb2.Record]:
        epoch, seq = check_token(token)
        if not isinstance(outcome, str) or outcome not in OUTCOMES:
            raise InvalidArgument(f"unknown outcome {outcome!r}")
        check_now(now_ms)
        holder = self.lease_holder(seq)
        if holder is None or holder[1].lease is None or holder[1].lease.epoch != epoch:
            if 1 <= seq < self.next_lease_seq:
                raise StaleLease(f"lease {(epoch, seq)} is no longer held")
            raise UnknownLease(f"lease {(epoch, seq)} was never issued")
        if holder[1].state == "creating":
            raise InvalidState("the lease's sandbox is still creating")
        return [
            records_pb2.Record(
                lease_released=records_pb2.LeaseReleased(
                    token=token_pb(epoch, seq),
                    outcome=OUTCOMES[outcome],  # type: ignore[arg-type]
                    now_ms=now_ms,
                )
            )
        ]

    def expire(self, now_ms: int, limit: int = 1024) -> list[records_pb2.Record]:
        check_now(now_ms)
        check_int(limit, "limit", 1, 1_000_000)
        due_leases = sorted(
            (s.lease.expiry_ms, s.lease.seq, s.lease.epoch)
            for s in self.sandboxes.values()
            if s.lease is not None and s.lease.expiry_ms <= now_ms
        )
        due_idle = sorted(
            (s.last_used_ms, sid)
            for sid, s in self.sandboxes.items()
            if s.state == "idle" and s.last_used_ms + self.idle_keepalive_ms <= now_ms
        )
        out = [
            records_pb2.Record(lease_expired=records_pb2.LeaseExpired(token=token_pb(epoch, seq), now_ms=now_ms))
            for _, seq, epoch in due_leases
        ]
        # A pinned version keeps its provisioned count: its least recently used go first, down to it.
        left: dict[tuple[str, str], int] = {}
        for _, sid in due_idle:
            s = self.sandboxes[sid]
            key = (s.function, s.version)
            count, until_ms = self.provisioned.get(key, (0, 0))
            if count and until_ms > now_ms:
                if key not in left:
                    left[key] = sum(1 for o in self.sandboxes.values() if (o.function, o.version) == key)
                if left[key] <= count:
                    continue
                left[key] -= 1
            out.append(
                records_pb2.Record(
                    sandbox_destroyed=records_pb2.SandboxDestroyed(
                        sandbox_id=sid, reason=records_pb2.DESTROY_REASON_IDLE, now_ms=now_ms
                    )
                )
            )
        return out[:limit]

    def created(self, sandbox_id: int, now_ms: int) -> list[records_pb2.Record]:
        check_u64(sandbox_id, "sandbox_id")
        check_now(now_ms)
        if self.sandbox_for(sandbox_id).state != "creating":
            raise InvalidState(f"sandbox {sandbox_id} is not creating")
        return [records_pb2.Record(sandbox_created=records_pb2.SandboxCreated(sandbox_id=sandbox_id, now_ms=now_ms))]

    def relocate(self, sandbox_id: int, worker_id: str) -> list[records_pb2.Record]:
        check_u64(sandbox_id, "sandbox_id")
        check_worker_id(worker_id)
        s = self.sandbox_for(sandbox_id)
        if s.state != "creating":
            raise InvalidState(f"sandbox {sandbox_id} is not creating")
        if worker_id not in self.workers:
            raise UnknownWorker(f"no worker {worker_id!r}")
        if worker_id == s.worker_id:
            raise InvalidArgument(f"sandbox {sandbox_id} is already on {worker_id!r}")
        w = self.workers[worker_id]
        if not w.healthy or w.capacity_mb - self.used_mb(worker_id) < s.memory_mb:
            raise NoCapacity(f"worker {worker_id!r} has no room")
        return [
            records_pb2.Record(
                sandbox_relocated=records_pb2.SandboxRelocated(sandbox_id=sandbox_id, worker_id=worker_id)
            )
        ]

    def reset_done(self, sandbox_id: int, now_ms: int) -> list[records_pb2.Record]:
        check_u64(sandbox_id, "sandbox_id")
        check_now(now_ms)
        if self.sandbox_for(sandbox_id).state != "resetting":
            raise InvalidState(f"sandbox {sandbox_id} is not resetting")
        return [records_pb2.Record(sandbox_reset=records_pb2.SandboxReset(sandbox_id=sandbox_id, now_ms=now_ms))]

    def destroy(self, sandbox_id: int, reason: str, now_ms: int) -> list[records_pb2.Record]:
        check_u64(sandbox_id, "sandbox_id")
        if not isinstance(reason, str) or reason not in DESTROY_REASONS:
            raise InvalidArgument(f"unknown destroy reason {reason!r}")
        check_now(now_ms)
        self.sandbox_for(sandbox_id)
        return [
            records_pb2.Record(
                sandbox_destroyed=records_pb2.SandboxDestroyed(
                    sandbox_id=sandbox_id,
                    reason=DESTROY_REASONS[reason],  # type: ignore[arg-type]
                    now_ms=now_ms,
                )
            )
        ]

    def join_worker(self, worker_id: str, zone: str, address: str, capacity_mb: int) -> list[records_pb2.Record]:
        check_worker_id(worker_id)
        check_zone(zone)
        check_address(address)
        check_capacity(capacity_mb)
        if worker_id in self.workers:
            raise InvalidState(f"worker {worker_id!r} is already present")
        return [
            records_pb2.Record(
                worker_joined=records_pb2.WorkerJoined(
                    worker_id=worker_id, zone=zone, address=address, capacity_mb=capacity_mb
                )
            )
        ]

    def leave_worker(self, worker_id: str) -> list[records_pb2.Record]:
        check_worker_id(worker_id)
        if worker_id not in self.workers:
            raise UnknownWorker(f"no worker {worker_id!r}")
        return [records_pb2.Record(worker_left=records_pb2.WorkerLeft(worker_id=worker_id))]

    def update_worker(self, worker_id: str, capacity_mb: int, healthy: bool) -> list[records_pb2.Record]:
        check_worker_id(worker_id)
        check_capacity(capacity_mb)
        if not isinstance(healthy, bool):
            raise InvalidArgument("healthy must be a bool")
        if worker_id not in self.workers:
            raise UnknownWorker(f"no worker {worker_id!r}")
        return [
            records_pb2.Record(
                worker_updated=records_pb2.WorkerUpdated(worker_id=worker_id, capacity_mb=capacity_mb, healthy=healthy)
            )
        ]

    def set_reserved(self, function: str, reserved: int | None) -> list[records_pb2.Record]:
        check_function(function)
        msg = records_pb2.FunctionConcurrencySet(function=function)
        if reserved is not None:
            msg.reserved = check_int(reserved, "reserved", 0, self.account_limit)
        return [records_pb2.Record(function_concurrency_set=msg)]

    def set_provisioned(self, function: str, version: str, count: int, until_ms: int) -> list[records_pb2.Record]:
        check_function(function)
        check_version(version)
        msg = records_pb2.VersionProvisioned(
            function=function,
            version=version,
            count=check_int(count, "count", 0, self.account_limit),
            until_ms=check_int(until_ms, "until_ms", 0, MAX_NOW_MS),
        )
        return [records_pb2.Record(version_provisioned=msg)]

    def start_epoch(self, epoch: int) -> list[records_pb2.Record]:
        check_u64(epoch, "epoch")
        if epoch <= self._epoch:
            raise InvalidState(f"epoch {epoch} is not greater than {self._epoch}")
        return [records_pb2.Record(epoch_started=records_pb2.EpochStarted(epoch=epoch))]

    # -- state changes --------------------------------------------------------------------------------

    def apply_all(self, records: Iterable[records_pb2.Record]) -> None:
        for record in records:
            self.apply(record)

    def apply(self, record: records_pb2.Record) -> None:
        """Check the record against the state (InvalidRecord, nothing changed), then apply it."""
        kind = record.WhichOneof("kind")
        if kind is None:
            raise InvalidRecord("empty record")
        getattr(self, f"_apply_{kind}")(getattr(record, kind))

    def _known_sandbox(self, sandbox_id: int, *states: SandboxState) -> Sandbox:
        if sandbox_id not in self.sandboxes:
            raise InvalidRecord(f"no sandbox {sandbox_id}")
        s = self.sandboxes[sandbox_id]
        if states and s.state not in states:
            raise InvalidRecord(f"sandbox {sandbox_id} is {s.state}, not {'/'.join(states)}")
        return s

    def _known_worker(self, worker_id: str) -> Worker:
        if worker_id not in self.workers:
            raise InvalidRecord(f"no worker {worker_id!r}")
        return self.workers[worker_id]

    def _active_lease(self, token: records_pb2.LeaseToken) -> tuple[int, Sandbox]:
        holder = self.lease_holder(token.seq)
        if holder is None or holder[1].lease is None or holder[1].lease.epoch != token.epoch:
            raise InvalidRecord(f"lease {(token.epoch, token.seq)} is not active")
        return holder

    def _apply_epoch_started(self, r: records_pb2.EpochStarted) -> None:
        if r.epoch <= self._epoch:
            raise InvalidRecord(f"epoch {r.epoch} is not greater than {self._epoch}")
        self._epoch = r.epoch

    def _apply_worker_joined(self, r: records_pb2.WorkerJoined) -> None:
        check_worker_id(r.worker_id, InvalidRecord)
        check_zone(r.zone, InvalidRecord)
        check_address(r.address, InvalidRecord)
        check_capacity(r.capacity_mb, InvalidRecord)
        if r.worker_id in self.workers:
            raise InvalidRecord(f"worker {r.worker_id!r} is already present")
        self.workers[r.worker_id] = Worker(r.zone, r.address, r.capacity_mb, healthy=True)

    def _apply_worker_left(self, r: records_pb2.WorkerLeft) -> None:
        self._known_worker(r.worker_id)
        for sid in [sid for sid, s in self.sandboxes.items() if s.worker_id == r.worker_id]:
            self.drop_sandbox(sid)
        del self.workers[r.worker_id]

    def _apply_worker_updated(self, r: records_pb2.WorkerUpdated) -> None:
        w = self._known_worker(r.worker_id)
        check_capacity(r.capacity_mb, InvalidRecord)
        w.capacity_mb = r.capacity_mb
        w.healthy = r.healthy

    def _apply_function_concurrency_set(self, r: records_pb2.FunctionConcurrencySet) -> None:
        check_function(r.function, InvalidRecord)
        if r.HasField("reserved"):
            self.reserved[r.function] = check_int(r.reserved, "reserved", 0, 2**32 - 1, InvalidRecord)
        else:
            self.reserved.pop(r.function, None)

    def _apply_version_provisioned(self, r: records_pb2.VersionProvisioned) -> None:
        check_function(r.function, InvalidRecord)
        check_version(r.version, InvalidRecord)
        check_int(r.until_ms, "until_ms", 0, MAX_NOW_MS, InvalidRecord)
        if r.count:
            self.provisioned[(r.function, r.version)] = (r.count, r.until_ms)
        else:
            self.provisioned.pop((r.function, r.version), None)

    def _apply_sandbox_creating(self, r: records_pb2.SandboxCreating) -> None:
        if r.sandbox_id != self.next_sandbox_id:
            raise InvalidRecord(f"sandbox id {r.sandbox_id} is not the next one, {self.next_sandbox_id}")
        self._known_worker(r.worker_id)
        check_function(r.function, InvalidRecord)
        check_version(r.version, InvalidRecord)
        check_memory(r.memory_mb, InvalidRecord)
        check_now(r.now_ms, InvalidRecord)
        self.sandboxes[r.sandbox_id] = Sandbox(
            r.worker_id, r.function, r.version, r.memory_mb, "creating", last_used_ms=r.now_ms, lease=None
        )
        self.next_sandbox_id += 1
        window = [t for t in self.scale_up.get(r.function, []) if t + self.scale_up_window_ms > r.now_ms]
        bisect.insort_right(window, r.now_ms)
        self.scale_up[r.function] = window

    def _apply_sandbox_relocated(self, r: records_pb2.SandboxRelocated) -> None:
        s = self._known_sandbox(r.sandbox_id, "creating")
        self._known_worker(r.worker_id)
        if r.worker_id == s.worker_id:
            raise InvalidRecord(f"sandbox {r.sandbox_id} is already on {r.worker_id!r}")
        s.worker_id = r.worker_id

    def _apply_sandbox_created(self, r: records_pb2.SandboxCreated) -> None:
        s = self._known_sandbox(r.sandbox_id, "creating")
        check_now(r.now_ms, InvalidRecord)
        s.last_used_ms = r.now_ms
        if s.lease is not None:
            s.state = "busy"
        else:
            self.push_idle(r.sandbox_id)

    def _apply_sandbox_reset(self, r: records_pb2.SandboxReset) -> None:
        s = self._known_sandbox(r.sandbox_id, "resetting")
        check_now(r.now_ms, InvalidRecord)
        s.last_used_ms = r.now_ms
        self.push_idle(r.sandbox_id)

    def _apply_sandbox_destroyed(self, r: records_pb2.SandboxDestroyed) -> None:
        self._known_sandbox(r.sandbox_id)
        if r.reason not in DESTROY_REASONS.values():
            raise InvalidRecord(f"bad destroy reason {r.reason}")
        check_now(r.now_ms, InvalidRecord)
        self.drop_sandbox(r.sandbox_id)

    def _apply_lease_granted(self, r: records_pb2.LeaseGranted) -> None:
        if self._epoch == 0 or r.token.epoch != self._epoch:
            raise InvalidRecord(f"lease epoch {r.token.epoch} is not the current epoch {self._epoch}")
        if r.token.seq != self.next_lease_seq:
            raise InvalidRecord(f"lease seq {r.token.seq} is not the next one, {self.next_lease_seq}")
        s = self._known_sandbox(r.sandbox_id, "idle", "creating")
        if s.lease is not None:
            raise InvalidRecord(f"sandbox {r.sandbox_id} already holds a lease")
        check_now(r.now_ms, InvalidRecord)
        check_request_id(r.request_id, InvalidRecord)
        if s.state == "idle":
            self.take_from_pool(r.sandbox_id)
            s.state = "busy"
        s.lease = Lease(r.token.epoch, r.token.seq, r.expiry_ms)
        s.last_used_ms = r.now_ms
        self.next_lease_seq += 1

    def _apply_lease_released(self, r: records_pb2.LeaseReleased) -> None:
        sid, s = self._active_lease(r.token)
        if s.state == "creating":
            raise InvalidRecord(f"sandbox {sid} is still creating")
        if r.outcome not in OUTCOMES.values():
            raise InvalidRecord(f"bad outcome {r.outcome}")
        check_now(r.now_ms, InvalidRecord)
        if r.outcome in REUSABLE_OUTCOMES:
            s.lease = None
            s.last_used_ms = r.now_ms
            self.push_idle(sid)
        else:
            self.drop_sandbox(sid)

    def _apply_lease_expired(self, r: records_pb2.LeaseExpired) -> None:
        _, s = self._active_lease(r.token)
        check_now(r.now_ms, InvalidRecord)
        s.lease = None
        s.state = "resetting"
        s.last_used_ms = r.now_ms
