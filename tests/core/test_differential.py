"""The Rust partition core against the reference model, under the same random operation sequences.

Every rule calls one method on both cores with the same arguments. Both must raise (an error of the same
class name) or both return equal records and decisions; the returned records are then applied to both.
After every step the two ``state()`` values and snapshots must be equal.

CI runs a fixed, derandomized profile; ``HYPOTHESIS_PROFILE=thorough`` runs many more random examples.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from assignment.partition_core import CoreError, PartitionCore, Record
from journal.v1 import records_pb2, snapshot_pb2
from tests.core import reference
from tests.core.reference import ReferenceCore

settings.register_profile(
    "ci",
    max_examples=500,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    report_multiple_bugs=False,  # shrink one failure, fast, rather than every distinct one
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=5_000,
    stateful_step_count=80,
    deadline=None,
    database=None,
    print_blob=True,  # random: print how to reproduce a failure with @reproduce_failure
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "ci")
PROFILE = settings.get_profile(PROFILE_NAME)

# Small pools of names, so that operations collide.
ZONES = ["za", "zb", "zc"]
WORKERS = ["w1", "w2", "w3", "w4", "w5"]
FUNCTIONS = ["f1", "f2", "f3"]
VERSIONS = ["v1", "v2"]
MEMORY = [128, 256, 512, 1024, 10240]
CAPACITY = [0, 512, 1024, 2048, 4096, 12000]
TIMEOUTS = [1, 50, 1_000, 5_000, 900_000]
OUTCOMES = ["ok", "function_error", "timeout", "crash", "out_of_memory"]
REASONS = ["idle", "create_failed", "reset_failed", "vanished", "requested"]
KINDS = [
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

# Invalid values, mixed in now and then.
BAD_INTS: list[Any] = [-1, 2**64, 10**100, True, False, 1.0, None, "128"]
BAD_NAMES: list[Any] = ["", "bad\x00id", "tab\tname", "\x7f", "\x85", "x" * 141, "é" * 71, "\ud800", 5, None, b"w1"]
EDGE_NAMES = ["x" * 64, "é" * 32, "ƒ"]  # valid everywhere, but at the byte limits or not ASCII
BAD_NOWS: list[Any] = [-1, 2**53 + 1, 2**64, True, 1.5, None]
EDGE_NOWS = [2**53, 2**53 - 1]  # valid; a lease granted then expires after 2**53
END_OF_TIME = 2**53  # the largest now_ms
# Hand-built LeaseGranted: expiry_ms = now_ms + one of these (the spec gives expiry_ms no range).
EXPIRIES = [2_000, 0, -1, 900_000 + 1_000]


def bad_reserved(config: dict[str, int]) -> list[int]:
    return [config["account_limit"] + 1, 2**32 - 1]


CONFIGS = st.fixed_dictionaries(
    {
        "account_limit": st.sampled_from([2, 5, 1000, 1000]),
        "scale_up_per_window": st.sampled_from([1, 3, 1000, 1000]),
        "scale_up_window_ms": st.sampled_from([1_000, 10_000]),
        "lease_margin_ms": st.sampled_from([0, 1_000]),
        "idle_keepalive_ms": st.sampled_from([2_000, 60_000, 600_000]),
        "alternatives": st.sampled_from([0, 1, 3]),
    }
)


def sometimes_bad(good: st.SearchStrategy[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``good``; about one draw in twenty from ``bad``."""
    return st.integers(0, 19).flatmap(lambda k: st.sampled_from(bad) if k == 19 else good)


def names(pool: list[str]) -> st.SearchStrategy[Any]:
    return sometimes_bad(st.sampled_from(pool), [*BAD_NAMES, *EDGE_NAMES])


def as_pb(record: Record) -> records_pb2.Record:
    pb = records_pb2.Record.FromString(record.encode())
    assert record.kind == pb.WhichOneof("kind")
    return pb


def state_diff(rust: dict[str, Any], ref: dict[str, Any]) -> str:
    lines = []
    for key in sorted(set(rust) | set(ref)):
        if rust.get(key) != ref.get(key):
            lines.append(f"{key}:\n  rust: {rust.get(key)!r}\n  ref:  {ref.get(key)!r}")
    return "\n".join(lines)


class Differential(RuleBasedStateMachine):
    rust: PartitionCore
    ref: ReferenceCore
    config: dict[str, int]

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000
        self.tokens: list[tuple[int, int]] = []

    @initialize(
        config=CONFIGS,
        bootstrap=st.booleans() | st.just(True),
        workers=st.lists(
            st.tuples(st.sampled_from(WORKERS), st.sampled_from(ZONES), st.sampled_from(CAPACITY[2:])),
            min_size=1,
            max_size=4,
        ),
    )
    def make_cores(self, config: dict[str, int], bootstrap: bool, workers: list[tuple[str, str, int]]) -> None:
        """Two cores with the same configuration; usually with an epoch and a few workers already."""
        self.config = config
        self.rust = PartitionCore(**config)
        self.ref = ReferenceCore(**config)
        if bootstrap:
            self.both("start_epoch", 1)
            for worker_id, zone, capacity in workers:
                self.both("join_worker", worker_id, zone, f"{worker_id}:7001", capacity)

    # -- the comparison ------------------------------------------------------------------------------

    def both(self, method: str, *args: Any) -> Any:
        """Call ``method`` on both cores; compare the outcomes; apply the records. The reference's answer."""
        before = self.rust.state()
        rust_out: Any = None
        ref_out: Any = None
        rust_err: Exception | None = None
        ref_err: Exception | None = None
        try:
            rust_out = getattr(self.rust, method)(*args)
        except Exception as e:
            rust_err = e
        try:
            ref_out = getattr(self.ref, method)(*args)
        except reference.CoreError as e:
            ref_err = e
        assert self.rust.state() == before, f"{method}{args!r} changed the state"
        if rust_err is not None or ref_err is not None:
            assert type(rust_err).__name__ == type(ref_err).__name__, (
                f"{method}{args!r}: rust {rust_err!r}, reference {ref_err!r}"
            )
            assert isinstance(rust_err, CoreError)
            event(f"{method}: {type(rust_err).__name__}")
            return None
        if method == "acquire":
            rust_records = rust_out.records
            ref_records = ref_out.records
            for field in ("outcome", "reason", "token", "sandbox_id", "worker_id", "worker_address", "expiry_ms"):
                mine, theirs = getattr(rust_out, field), getattr(ref_out, field)
                assert mine == theirs, f"{method}{args!r}: {field} rust {mine!r}, reference {theirs!r}"
            assert list(rust_out.alternatives) == ref_out.alternatives, f"{method}{args!r}: alternatives"
            event(f"acquire: {ref_out.outcome} {ref_out.reason or ''}")
        else:
            rust_records = rust_out
            ref_records = ref_out
            event(f"{method}: {len(ref_out)} records")
        assert isinstance(rust_records, list)
        assert [as_pb(r) for r in rust_records] == ref_records, (
            f"{method}{args!r}:\n  rust {[as_pb(r) for r in rust_records]}\n  ref  {ref_records}"
        )
        self.rust.apply_all(rust_records)
        self.ref.apply_all(ref_records)
        return ref_out

    def apply_both(self, records: list[records_pb2.Record]) -> None:
        """Apply hand-built records to both cores with ``apply_all``: same error, same partial progress."""
        rust_err: Exception | None = None
        ref_err: Exception | None = None
        try:
            self.rust.apply_all(Record.decode(r.SerializeToString()) for r in records)
        except Exception as e:
            rust_err = e
        try:
            self.ref.apply_all(records)
        except reference.CoreError as e:
            ref_err = e
        assert type(rust_err).__name__ == type(ref_err).__name__, f"apply {records}: rust {rust_err!r}, ref {ref_err!r}"
        assert rust_err is None or isinstance(rust_err, CoreError)
        kinds = ",".join(r.WhichOneof("kind") or "empty" for r in records)
        event(f"apply [{kinds}]: {type(ref_err).__name__ if ref_err else 'ok'}")

    # -- argument helpers ----------------------------------------------------------------------------

    def now_arg(self, data: st.DataObject) -> Any:
        return data.draw(sometimes_bad(st.just(self.now), [*BAD_NOWS, *EDGE_NOWS]), label="now")

    def sandbox_arg(self, data: st.DataObject, state: str | None = None) -> Any:
        sandboxes = self.ref.state()["sandboxes"]
        wanted = sorted(sid for sid, s in sandboxes.items() if state is None or s[4] == state)
        anything = st.integers(0, self.ref.next_sandbox_id + 1)
        good = st.sampled_from(wanted) | anything if wanted else anything
        return data.draw(sometimes_bad(good, [-1, 2**64, 10**100, True, None, "1"]), label="sandbox_id")

    def token_arg(self, data: st.DataObject) -> Any:
        active = sorted((s[6][0], s[6][1]) for s in self.ref.state()["sandboxes"].values() if s[6] is not None)
        epoch, seq = self.ref.epoch, self.ref.next_lease_seq
        made_up = st.tuples(st.sampled_from([epoch, epoch + 1, max(epoch - 1, 0)]), st.integers(0, seq + 1))
        choices = [s for s in (active, self.tokens) if s]
        good = st.one_of(*(st.sampled_from(c) for c in choices), made_up) if choices else made_up
        bad: list[Any] = [
            (-1, 1),
            (epoch, -1),
            (2**64, 1),
            (epoch, 2**64),
            (epoch, 10**100),
            [epoch, 1],
            (epoch,),
            (epoch, 1, 1),
            (True, 1),
            (epoch, True),
            None,
            "1:1",
        ]
        return data.draw(sometimes_bad(good, bad), label="token")

    # -- rules ---------------------------------------------------------------------------------------

    @rule(
        delta=st.sampled_from(
            [0, 1, 10, 100, 500, 999, 1_000, 1_001, 2_000, 3_000, 10_000, 60_000, 700_000, -300, 2**53]
        )
    )
    def tick(self, delta: int) -> None:
        """Time mostly advances; sometimes it steps back a little or jumps to the end of time (2**53)."""
        self.now = min(max(self.now + delta, 0), END_OF_TIME)

    tick_2 = tick

    @rule(data=st.data())
    def start_epoch(self, data: st.DataObject) -> None:
        e = self.ref.epoch
        epoch = data.draw(sometimes_bad(st.sampled_from([e + 1, e + 1, e + 2, e, max(e - 1, 0)]), [*BAD_INTS, 0]))
        self.both("start_epoch", epoch)

    @rule(
        worker_id=names(WORKERS),
        zone=names(ZONES),
        address=sometimes_bad(st.sampled_from(["", "10.0.0.1:7001", "a" * 256]), ["a" * 257, "x\ny", 1]),
        capacity=sometimes_bad(st.sampled_from(CAPACITY), [*BAD_INTS, 4_194_304, 4_194_305, 2**32]),
    )
    def join_worker(self, worker_id: Any, zone: Any, address: Any, capacity: Any) -> None:
        self.both("join_worker", worker_id, zone, address, capacity)

    @rule(worker_id=names(WORKERS))
    def leave_worker(self, worker_id: Any) -> None:
        self.both("leave_worker", worker_id)

    @rule(
        worker_id=names(WORKERS),
        capacity=sometimes_bad(st.sampled_from(CAPACITY), [*BAD_INTS, 4_194_305]),
        healthy=sometimes_bad(st.booleans(), [1, 0, None, "true"]),
    )
    def update_worker(self, worker_id: Any, capacity: Any, healthy: Any) -> None:
        self.both("update_worker", worker_id, capacity, healthy)

    @rule(data=st.data(), function=names(FUNCTIONS))
    def set_reserved(self, data: st.DataObject, function: Any) -> None:
        limit = self.config["account_limit"]
        reserved = data.draw(
            sometimes_bad(st.sampled_from([None, None, 0, 1, 2, limit]), [limit + 1, -1, 2**32, True, 1.0, "1"])
        )
        self.both("set_reserved", function, reserved)

    @rule(data=st.data(), function=names(FUNCTIONS), version=names(VERSIONS))
    def set_provisioned(self, data: st.DataObject, function: Any, version: Any) -> None:
        limit = self.config["account_limit"]
        counts = Counter((s[1], s[2]) for s in self.ref.state()["sandboxes"].values())
        sizes = [0, 1, 2, 3, limit]
        pin_existing: bool = data.draw(st.booleans(), label="pin a version that has sandboxes")
        if counts and pin_existing:
            # Around its current size: where idle reclaim must stop exactly at the pin.
            (function, version), n = data.draw(st.sampled_from(sorted(counts.items())), label="version")
            sizes = [max(n - 1, 0), n, n + 1]
        count = data.draw(sometimes_bad(st.sampled_from(sizes), [limit + 1, -1, True, 1.0, "1"]))
        # Pins that outlive the run and pins that lapse soon, so that expire sees both.
        until = data.draw(
            sometimes_bad(st.sampled_from([self.now + 1, self.now + 5_000, 2**53]), [-1, 2**53 + 1, None])
        )
        self.both("set_provisioned", function, version, count, until)

    def idle_versions(self) -> list[tuple[str, str]]:
        return sorted({(s[1], s[2]) for s in self.ref.state()["sandboxes"].values() if s[4] == "idle"})

    @precondition(lambda self: self.idle_versions())
    @rule(data=st.data())
    def pin_then_reclaim(self, data: st.DataObject) -> None:
        """Pin a version with idle sandboxes at about its size, then run idle reclaim past the keep-alive:
        where the pin must stop it exactly (random rules alone rarely line these up)."""
        function, version = data.draw(st.sampled_from(self.idle_versions()), label="version")
        size = sum(1 for s in self.ref.state()["sandboxes"].values() if (s[1], s[2]) == (function, version))
        count = data.draw(st.sampled_from([max(size - 1, 1), size, size + 1]), label="count")
        self.both("set_provisioned", function, version, count, END_OF_TIME)
        self.now = min(self.now + self.config["idle_keepalive_ms"] + 1, END_OF_TIME - 1)
        self.both("expire", self.now)

    @rule(
        data=st.data(),
        function=names(FUNCTIONS),
        version=names(VERSIONS),
        memory=sometimes_bad(st.sampled_from(MEMORY), [*BAD_INTS, 0, 127, 10241]),
        timeout=sometimes_bad(st.sampled_from(TIMEOUTS), [0, 900_001, -5, True]),
        request_id=sometimes_bad(st.sampled_from([None, "", "req-1", "r" * 128]), ["r" * 129, "a\x1fb", 7]),
    )
    def acquire(
        self, data: st.DataObject, function: Any, version: Any, memory: Any, timeout: Any, request_id: Any
    ) -> None:
        now = self.now_arg(data)
        args = (function, version, memory, timeout, now) + (() if request_id is None else (request_id,))
        decision = self.both("acquire", *args)
        if decision is not None and decision.token is not None:
            self.tokens.append(decision.token)

    @rule(
        data=st.data(),
        function=st.sampled_from(FUNCTIONS),
        version=st.sampled_from(VERSIONS),
        memory=st.sampled_from([128, 128, 256, 1024]),
        timeout=st.sampled_from(TIMEOUTS),
    )
    def acquire_valid(self, data: st.DataObject, function: str, version: str, memory: int, timeout: int) -> None:
        """An acquire with good arguments (the generic rule above mixes in bad ones)."""
        decision = self.both("acquire", function, version, memory, timeout, self.now, f"req-{self.now}")
        if decision is not None and decision.token is not None:
            self.tokens.append(decision.token)

    @rule(
        function=st.sampled_from(FUNCTIONS[:2]),
        memory=st.sampled_from([128, 128, 256]),
        timeout=st.sampled_from([50, 1_000, 5_000]),
        finish=st.sampled_from(["ok", "ok", "function_error", "timeout", "keep"]),
        elapsed=st.sampled_from([0, 10, 100, 1_000, 3_000, 10_000]),
    )
    def invocation(self, function: str, memory: int, timeout: int, finish: str, elapsed: int) -> None:
        """A whole invocation: acquire, confirm a cold sandbox, run for a while, release (or keep the lease)."""
        decision = self.both("acquire", function, "v1", memory, timeout, self.now)
        if decision is None or decision.token is None:
            return
        self.tokens.append(decision.token)
        if decision.outcome == "cold":
            self.both("created", decision.sandbox_id, self.now)
        self.now += elapsed
        if finish != "keep":
            self.both("release", decision.token, finish, self.now)

    # Whole invocations are what builds interesting state (warm pools, leases to expire): weigh them up.
    invocation_2 = invocation
    invocation_3 = invocation
    invocation_4 = invocation

    @precondition(lambda self: self.ref.lease_count > 0)
    @rule(data=st.data(), outcome=st.sampled_from(["ok", "ok", "function_error", "timeout", "crash"]))
    def release_active(self, data: st.DataObject, outcome: str) -> None:
        """Release a lease that is held (it may still be creating)."""
        active = sorted((s[6][0], s[6][1]) for s in self.ref.state()["sandboxes"].values() if s[6] is not None)
        self.both("release", data.draw(st.sampled_from(active)), outcome, self.now)

    @precondition(lambda self: any(s[4] in {"creating", "resetting"} for s in self.ref.state()["sandboxes"].values()))
    @rule(data=st.data())
    def worker_reports(self, data: st.DataObject) -> None:
        """The worker confirms a creating sandbox or a reset."""
        pending = sorted(
            (sid, s[4]) for sid, s in self.ref.state()["sandboxes"].items() if s[4] in {"creating", "resetting"}
        )
        sid, state = data.draw(st.sampled_from(pending))
        self.both("created" if state == "creating" else "reset_done", sid, self.now)

    @rule(data=st.data(), outcome=sometimes_bad(st.sampled_from(OUTCOMES), ["OK", "", None, 1]))
    def release(self, data: st.DataObject, outcome: Any) -> None:
        self.both("release", self.token_arg(data), outcome, self.now_arg(data))

    @rule(data=st.data(), limit=sometimes_bad(st.sampled_from([1, 2, 1024, 1_000_000]), [0, -1, 1_000_001, True]))
    def expire(self, data: st.DataObject, limit: Any) -> None:
        self.both("expire", self.now_arg(data), limit)

    @rule(data=st.data())
    def expire_default_limit(self, data: st.DataObject) -> None:
        self.both("expire", self.now_arg(data))

    @rule(data=st.data())
    def created(self, data: st.DataObject) -> None:
        self.both("created", self.sandbox_arg(data, "creating"), self.now_arg(data))

    @rule(data=st.data(), worker_id=names(WORKERS))
    def relocate(self, data: st.DataObject, worker_id: Any) -> None:
        self.both("relocate", self.sandbox_arg(data, "creating"), worker_id)

    @rule(data=st.data())
    def reset_done(self, data: st.DataObject) -> None:
        self.both("reset_done", self.sandbox_arg(data, "resetting"), self.now_arg(data))

    @rule(data=st.data(), reason=sometimes_bad(st.sampled_from(REASONS), ["IDLE", "", None, 2]))
    def destroy(self, data: st.DataObject, reason: Any) -> None:
        self.both("destroy", self.sandbox_arg(data), reason, self.now_arg(data))

    @rule(data=st.data())
    def apply_built_records(self, data: st.DataObject) -> None:
        count = data.draw(st.sampled_from([1, 1, 1, 2, 3]), label="count")
        self.apply_both([self.build_record(data) for _ in range(count)])

    @rule(data=st.data())
    def apply_decision_out_of_order(self, data: st.DataObject) -> None:
        """A cold decision's records applied backwards: LeaseGranted first does not fit."""
        function = data.draw(st.sampled_from(FUNCTIONS))
        try:
            decision = self.ref.acquire(function, "v1", 128, 1_000, self.now)
        except reference.CoreError:
            return
        self.apply_both(list(reversed(decision.records)))

    @precondition(lambda self: self.ref.sandbox_count > 0 or self.ref.worker_count > 0)
    @rule()
    def restore_into_fresh_core(self) -> None:
        """Continue with a core restored from a snapshot: indexes rebuilt from it must behave the same."""
        fresh = PartitionCore(**self.config)
        fresh.restore(self.rust.snapshot())
        assert fresh.state() == self.rust.state()
        assert fresh.snapshot() == self.rust.snapshot()
        self.rust = fresh

    # -- hand-built records --------------------------------------------------------------------------

    def build_record(self, data: st.DataObject) -> records_pb2.Record:
        """A record of a random kind with fields near the state's edges: some fit, many do not."""
        ref = self.ref
        e, sid_next, seq_next = ref.epoch, ref.next_sandbox_id, ref.next_lease_seq

        def draw(label: str, values: list[Any]) -> Any:
            return data.draw(st.sampled_from(values), label=label)

        def now() -> int:
            return int(draw("now_ms", [self.now, self.now, 0, 2**53, 2**53 + 1, -1, -(2**63), 2**63 - 1]))

        def sid() -> int:
            return int(draw("sandbox_id", [sid_next, max(sid_next - 1, 0), sid_next + 1, 0, 1, 2, 3, 2**64 - 1]))

        def worker() -> str:
            return str(draw("worker_id", [*WORKERS, "", "w\x00", "w" * 129]))

        def capacity() -> int:
            return int(draw("capacity_mb", [*CAPACITY, 4_194_304, 4_194_305, 2**32 - 1]))

        def token() -> records_pb2.LeaseToken:
            if self.tokens and draw("issued token", [True, False]):
                epoch, seq = draw("token", self.tokens)
            else:
                epoch = draw("token epoch", [e, e, e + 1, max(e - 1, 0), 0])
                seq = draw("token seq", [seq_next, seq_next, max(seq_next - 1, 0), seq_next + 1, 1, 0])
            return records_pb2.LeaseToken(epoch=epoch, seq=seq)

        kind = draw("kind", [*KINDS, "empty"])
        R = records_pb2
        if kind == "epoch_started":
            return R.Record(epoch_started=R.EpochStarted(epoch=draw("epoch", [e + 1, e, max(e - 1, 0), e + 5])))
        if kind == "worker_joined":
            zone = draw("zone", [*ZONES, "", "z" * 65, "z\x7f"])
            address = draw("address", ["", "10.0.0.1:1", "a" * 256, "a" * 257])
            return R.Record(
                worker_joined=R.WorkerJoined(worker_id=worker(), zone=zone, address=address, capacity_mb=capacity())
            )
        if kind == "worker_left":
            return R.Record(worker_left=R.WorkerLeft(worker_id=worker()))
        if kind == "worker_updated":
            healthy = draw("healthy", [True, False])
            return R.Record(worker_updated=R.WorkerUpdated(worker_id=worker(), capacity_mb=capacity(), healthy=healthy))
        if kind == "function_concurrency_set":
            function = draw("function", [*FUNCTIONS, "", "f" * 141, "f\n"])
            reserved = draw("reserved", [None, 0, 1, self.config["account_limit"], *bad_reserved(self.config)])
            return R.Record(function_concurrency_set=R.FunctionConcurrencySet(function=function, reserved=reserved))
        if kind == "version_provisioned":
            return R.Record(
                version_provisioned=R.VersionProvisioned(
                    function=draw("function", [*FUNCTIONS, "", "f" * 141]),
                    version=draw("version", [*VERSIONS, "", "v" * 65]),
                    count=draw("count", [0, 1, 2, 2**32 - 1]),
                    until_ms=now(),
                )
            )
        if kind == "sandbox_creating":
            return R.Record(
                sandbox_creating=R.SandboxCreating(
                    sandbox_id=sid(),
                    worker_id=worker(),
                    function=draw("function", [*FUNCTIONS, "", "f" * 141, "f\n"]),
                    version=draw("version", [*VERSIONS, "", "v" * 65]),
                    memory_mb=draw("memory_mb", [*MEMORY, 0, 127, 10241, 2**32 - 1]),
                    now_ms=now(),
                )
            )
        if kind == "sandbox_relocated":
            return R.Record(sandbox_relocated=R.SandboxRelocated(sandbox_id=sid(), worker_id=worker()))
        if kind == "sandbox_created":
            return R.Record(sandbox_created=R.SandboxCreated(sandbox_id=sid(), now_ms=now()))
        if kind == "sandbox_reset":
            return R.Record(sandbox_reset=R.SandboxReset(sandbox_id=sid(), now_ms=now()))
        if kind == "sandbox_destroyed":
            reason = draw("reason", [1, 2, 3, 4, 5, 0, 6])
            return R.Record(sandbox_destroyed=R.SandboxDestroyed(sandbox_id=sid(), reason=reason, now_ms=now()))
        if kind == "lease_granted":
            granted_at = now()
            expiry = granted_at + draw("expiry_ms", EXPIRIES) if 0 <= granted_at <= 2**53 else 5
            return R.Record(
                lease_granted=R.LeaseGranted(
                    token=token(),
                    sandbox_id=sid(),
                    expiry_ms=expiry,
                    now_ms=granted_at,
                    request_id=draw("request_id", ["", "req", "r" * 129, "a\x01"]),
                )
            )
        if kind == "lease_released":
            outcome = draw("outcome", [1, 2, 3, 4, 5, 0, 9])
            return R.Record(lease_released=R.LeaseReleased(token=token(), outcome=outcome, now_ms=now()))
        if kind == "lease_expired":
            return R.Record(lease_expired=R.LeaseExpired(token=token(), now_ms=now()))
        return R.Record()

    # -- invariants ----------------------------------------------------------------------------------

    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "rust"):
            return
        rust_state, ref_state = self.rust.state(), self.ref.state()
        assert rust_state == ref_state, "states differ:\n" + state_diff(rust_state, ref_state)
        for name in ("epoch", "worker_count", "sandbox_count", "lease_count"):
            assert getattr(self.rust, name) == getattr(self.ref, name), name
        rust_snap = snapshot_pb2.PartitionSnapshot.FromString(self.rust.snapshot())
        ref_snap = snapshot_pb2.PartitionSnapshot.FromString(self.ref.snapshot())
        ref_snap.format = rust_snap.format
        assert rust_snap == ref_snap, f"snapshots differ:\n  rust {rust_snap}\n  ref  {ref_snap}"


Differential.TestCase.settings = PROFILE
# The CI profile takes well under a minute; the thorough one may take an hour.
TestDifferential = pytest.mark.timeout(300 if PROFILE_NAME == "ci" else 3_600)(Differential.TestCase)
