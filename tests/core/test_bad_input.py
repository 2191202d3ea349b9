"""Bad input: every malformed argument, record or snapshot is a named error, never a crash, and changes nothing."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assignment.partition_core import (
    CoreError,
    CorruptSnapshot,
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
)
from journal.v1 import records_pb2, snapshot_pb2
from tests.core.workload import CONFIG, run_workload

FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)

BAD_INTS: list[Any] = [-1, 2**64, 10**100, -(2**64), True, False, 1.0, None, "1", b"1", [1]]
BAD_NAMES: list[Any] = ["", "a\x00b", "a\nb", "\x7f", "\x9f", "\ud800", 1, None, b"w", ["w"]]
BAD_TOKENS: list[Any] = [
    (-1, 1),
    (1, -1),
    (2**64, 1),
    (1, 2**64),
    (10**100, 1),
    (True, 1),
    (1, False),
    (1.0, 1),
    (1,),
    (1, 1, 1),
    (),
    [1, 1],
    None,
    "1:1",
    1,
]


@pytest.fixture
def core() -> PartitionCore:
    """A core with a sandbox in every state.

    Epoch 3. Sandboxes (256 MB, function "f" version "v"): 1 idle, 2 resetting (its lease 2 expired),
    3 creating with lease 3, 4 busy with lease 4. Leases 1 (released) and 2 (expired) are stale; 3 and 4
    are active; the next sandbox id and lease seq are 5.
    """
    c = PartitionCore(account_limit=100, lease_margin_ms=0)
    c.apply_all(c.start_epoch(3))
    c.apply_all(c.join_worker("w1", "za", "10.0.0.1:7001", 4096))
    c.apply_all(c.join_worker("w2", "zb", "10.0.0.2:7001", 4096))
    c.apply_all(c.join_worker("w3", "zc", "10.0.0.3:7001", 128))
    for timeout in (1_000, 10, 1_000, 1_000):
        c.apply_all(c.acquire("f", "v", 256, timeout, 100).records)
    c.apply_all(c.created(1, 101) + c.created(2, 101) + c.created(4, 101))
    c.apply_all(c.release((3, 1), "ok", 102))
    c.apply_all(c.expire(110, 1))  # lease 2 (expiry 110) expires; sandbox 2 resets
    c.apply_all(c.set_reserved("g", 5))
    state = c.state()
    assert [state["sandboxes"][i][4] for i in (1, 2, 3, 4)] == ["idle", "resetting", "creating", "busy"]
    return c


@pytest.fixture
def busy_core() -> PartitionCore:
    c = PartitionCore(**CONFIG)
    run_workload(c, random.Random(5), 300)
    assert c.sandbox_count > 0
    return c


def refused(core: PartitionCore, error: type[CoreError], call: Callable[[], object]) -> None:
    """``call`` raises exactly ``error`` (not a panic, not another error) and leaves the core unchanged."""
    before_state, before_snapshot = core.state(), core.snapshot()
    try:
        call()
    except error:
        pass
    except BaseException as e:
        pytest.fail(f"expected {error.__name__}, got {type(e).__module__}.{type(e).__name__}: {e}")
    else:
        pytest.fail(f"expected {error.__name__}, nothing raised")
    assert core.state() == before_state
    assert core.snapshot() == before_snapshot


def refused_each(core: PartitionCore, error: type[CoreError], values: list[Any], call: Callable[[Any], object]) -> None:
    for value in values:
        refused(core, error, lambda: call(value))  # noqa: B023 - called at once


# -- arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("memory", [*BAD_INTS, 0, 127, 10241, 2**32 + 128])
def test_acquire_bad_memory(core: PartitionCore, memory: Any) -> None:
    refused(core, InvalidArgument, lambda: core.acquire("f", "v", memory, 1_000, 200))


@pytest.mark.parametrize("name", [*BAD_NAMES, "f" * 141, "é" * 71])
def test_acquire_bad_function(core: PartitionCore, name: Any) -> None:
    refused(core, InvalidArgument, lambda: core.acquire(name, "v", 128, 1_000, 200))


@pytest.mark.parametrize("name", [*BAD_NAMES, "v" * 65])
def test_acquire_bad_version(core: PartitionCore, name: Any) -> None:
    refused(core, InvalidArgument, lambda: core.acquire("f", name, 128, 1_000, 200))


@pytest.mark.parametrize(
    ("timeout", "now", "request_id"),
    [
        *((t, 200, "") for t in [*BAD_INTS, 0, 900_001]),
        *((1_000, n, "") for n in [*BAD_INTS, 2**53 + 1]),
        *((1_000, 200, r) for r in ["r" * 129, "a\x00", "\ud800", 1, b"r"]),
    ],
)
def test_acquire_bad_timeout_now_request_id(core: PartitionCore, timeout: Any, now: Any, request_id: Any) -> None:
    refused(core, InvalidArgument, lambda: core.acquire("f", "v", 128, timeout, now, request_id))


def test_acquire_limits_are_inclusive(core: PartitionCore) -> None:
    for args in [("f" * 140, "v" * 64, 128, 1, 0, "r" * 128), ("é" * 70, "é" * 32, 128, 900_000, 2**53 - 10**7, "")]:
        decision = core.acquire(*args)
        assert decision.outcome in {"cold", "warm", "throttled"}


def test_acquire_before_an_epoch() -> None:
    c = PartitionCore()
    c.apply_all(c.join_worker("w1", "za", "", 4096))
    refused(c, InvalidState, lambda: c.acquire("f", "v", 128, 1_000, 1))


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_release_malformed_token(core: PartitionCore, token: Any) -> None:
    refused(core, InvalidArgument, lambda: core.release(token, "ok", 200))


def test_release_unknown_stale_and_twice(core: PartitionCore) -> None:
    loose: Any = core
    refused_each(
        core,
        UnknownLease,
        [(3, 0), (3, 6), (3, 99), (3, 2**64 - 1), (0, 2**64 - 1)],
        lambda token: loose.release(token, "ok", 200),
    )
    refused_each(
        core,
        StaleLease,
        [(3, 1), (3, 2), (2, 4), (4, 4), (0, 4), (2**64 - 1, 3)],
        lambda token: loose.release(token, "ok", 200),
    )
    refused(core, InvalidState, lambda: core.release((3, 3), "ok", 200))  # its sandbox is still creating
    core.apply_all(core.release((3, 4), "crash", 200))
    refused(core, StaleLease, lambda: core.release((3, 4), "crash", 201))
    refused(core, StaleLease, lambda: core.release((3, 4), "ok", 201))


@pytest.mark.parametrize("outcome", ["OK", "", "success", None, 1, b"ok"])
def test_release_bad_outcome(core: PartitionCore, outcome: Any) -> None:
    refused(core, InvalidArgument, lambda: core.release((3, 4), outcome, 200))
    refused(core, InvalidArgument, lambda: core.release((3, 99), outcome, 200))


@pytest.mark.parametrize("method", ["created", "reset_done", "destroy", "relocate"])
def test_sandbox_ids(core: PartitionCore, method: str) -> None:
    def call(sandbox_id: Any) -> Callable[[], object]:
        loose: Any = core
        if method == "destroy":
            return lambda: loose.destroy(sandbox_id, "requested", 200)
        if method == "relocate":
            return lambda: loose.relocate(sandbox_id, "w2")
        return lambda: getattr(loose, method)(sandbox_id, 200)

    for sandbox_id in [-1, 2**64, 10**100, True, None, 1.0, "1"]:
        refused(core, InvalidArgument, call(sandbox_id))
    for sandbox_id in [0, 5, 99, 2**64 - 1]:
        refused(core, UnknownSandbox, call(sandbox_id))
    wrong_state = {"created": [1, 2, 4], "reset_done": [1, 3, 4], "relocate": [1, 2, 4], "destroy": []}[method]
    for sandbox_id in wrong_state:
        refused(core, InvalidState, call(sandbox_id))


def test_relocate_refusals(core: PartitionCore) -> None:
    loose: Any = core
    refused(core, UnknownWorker, lambda: core.relocate(3, "w9"))
    refused(core, InvalidArgument, lambda: core.relocate(3, "w1"))  # its own worker
    refused(core, NoCapacity, lambda: core.relocate(3, "w3"))  # 128 MB free, needs 256
    core.apply_all(core.update_worker("w2", 4096, False))
    refused(core, NoCapacity, lambda: core.relocate(3, "w2"))  # unhealthy
    refused_each(core, InvalidArgument, list(BAD_NAMES), lambda name: loose.relocate(3, name))


@pytest.mark.parametrize("reason", ["IDLE", "", "gone", None, 1])
def test_destroy_bad_reason(core: PartitionCore, reason: Any) -> None:
    refused(core, InvalidArgument, lambda: core.destroy(1, reason, 200))


def test_worker_refusals(core: PartitionCore) -> None:
    loose: Any = core
    refused(core, InvalidState, lambda: core.join_worker("w1", "za", "", 1024))
    refused(core, UnknownWorker, lambda: core.leave_worker("w9"))
    refused(core, UnknownWorker, lambda: core.update_worker("w9", 1024, True))
    names = [*BAD_NAMES, "w" * 129]
    refused_each(core, InvalidArgument, names, lambda name: loose.join_worker(name, "za", "", 1024))
    refused_each(core, InvalidArgument, names, loose.leave_worker)
    refused_each(core, InvalidArgument, names, lambda name: loose.update_worker(name, 1024, True))
    refused_each(core, InvalidArgument, [*BAD_NAMES, "z" * 65], lambda zone: loose.join_worker("w4", zone, "", 1024))
    refused_each(
        core,
        InvalidArgument,
        ["a" * 257, "a\x00", "\ud800", None, 1],
        lambda address: loose.join_worker("w4", "za", address, 1024),
    )
    capacities = [*BAD_INTS, 4_194_305, 2**32]
    refused_each(core, InvalidArgument, capacities, lambda capacity: loose.join_worker("w4", "za", "", capacity))
    refused_each(core, InvalidArgument, capacities, lambda capacity: loose.update_worker("w1", capacity, True))
    refused_each(
        core, InvalidArgument, [1, 0, None, "true", 1.0], lambda healthy: loose.update_worker("w1", 1024, healthy)
    )


def test_reserved_epoch_and_expire_refusals(core: PartitionCore) -> None:
    loose: Any = core
    refused_each(
        core,
        InvalidArgument,
        [-1, 101, 2**32, 2**64, True, 1.0, "1"],
        lambda reserved: loose.set_reserved("f", reserved),
    )
    refused_each(core, InvalidArgument, [*BAD_NAMES, "f" * 141], lambda name: loose.set_reserved(name, 1))
    refused_each(core, InvalidState, [0, 1, 2, 3], loose.start_epoch)
    refused_each(core, InvalidArgument, [-1, 2**64, 10**100, True, 4.0, None, "4"], loose.start_epoch)
    refused_each(core, InvalidArgument, [*BAD_INTS, 2**53 + 1], loose.expire)
    not_none = [v for v in BAD_INTS if v is not None]  # see test_none_is_not_a_default
    refused_each(core, InvalidArgument, [0, 1_000_001, *not_none], lambda limit: loose.expire(200, limit))


@pytest.mark.parametrize(
    "config",
    [{"account_limit": v} for v in [-1, True, 1.5, "1", 2**64]] + [{"alternatives": -1}, {"lease_margin_ms": 2**64}],
)
def test_constructor_refuses_bad_config(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        PartitionCore(**config)


def test_none_takes_the_default(core: PartitionCore) -> None:
    """The stub types these ``int | None = None`` / ``str | None = None``: ``None`` means the default."""
    assert core.expire(200, None) == core.expire(200)
    assert core.acquire("f", "v", 128, 1_000, 200, None).outcome == core.acquire("f", "v", 128, 1_000, 200).outcome
    assert PartitionCore(account_limit=None).state() == PartitionCore().state()


def test_records_apply_under_any_configuration() -> None:
    """Reserved concurrency above this core's account limit is policy, not structure: it applies."""
    small = PartitionCore(account_limit=2)
    big = PartitionCore(account_limit=100)
    big.apply_all(big.set_reserved("f", 50))
    small.restore(big.snapshot())
    assert small.state()["reserved"] == {"f": 50}


# -- records ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xff", b"\x0a", b"\x0a\x05\x08", b"\x5a\x02\x08", b"\x12\x03\x0a\x01\xff"])
def test_decode_malformed_records(data: bytes) -> None:
    with pytest.raises(InvalidRecord):
        Record.decode(data)


@pytest.mark.parametrize("data", ["x", None, bytearray(b"\x0a\x02\x08\x01"), 1])
def test_decode_wrong_types(data: Any) -> None:
    with pytest.raises(InvalidRecord):
        Record.decode(data)


def test_decode_truncated_records() -> None:
    journal = run_workload(PartitionCore(**CONFIG), random.Random(3), 60)
    for record in journal:
        data = record.encode()
        for cut in range(len(data)):
            try:
                records_pb2.Record.FromString(data[:cut])
                python_ok = True
            except Exception:
                python_ok = False
            if python_ok:
                continue  # a cut at a field boundary may still be a valid (different) message
            with pytest.raises(InvalidRecord):
                Record.decode(data[:cut])


@FUZZ
@given(st.binary(max_size=64))
def test_decode_random_bytes_never_crashes(data: bytes) -> None:
    try:
        record = Record.decode(data)
    except InvalidRecord:
        return
    assert Record.decode(record.encode()) == record


@pytest.mark.parametrize("thing", ["x", b"\x0a\x02\x08\x05", None, 1, records_pb2.Record()])
def test_apply_wrong_types(core: PartitionCore, thing: Any) -> None:
    refused(core, InvalidArgument, lambda: core.apply(thing))
    refused(core, InvalidArgument, lambda: core.apply_all([thing]))


def test_apply_records_that_do_not_fit(core: PartitionCore) -> None:
    token = records_pb2.LeaseToken
    bad = [
        records_pb2.Record(epoch_started=records_pb2.EpochStarted(epoch=3)),
        records_pb2.Record(worker_joined=records_pb2.WorkerJoined(worker_id="w1", zone="za")),
        records_pb2.Record(worker_left=records_pb2.WorkerLeft(worker_id="w9")),
        records_pb2.Record(worker_updated=records_pb2.WorkerUpdated(worker_id="w1", capacity_mb=4_194_305)),
        records_pb2.Record(sandbox_creating=records_pb2.SandboxCreating(sandbox_id=5, worker_id="w9", function="f")),
        records_pb2.Record(
            sandbox_creating=records_pb2.SandboxCreating(
                sandbox_id=4, worker_id="w1", function="f", version="v", memory_mb=128, now_ms=1
            )
        ),
        records_pb2.Record(sandbox_relocated=records_pb2.SandboxRelocated(sandbox_id=1, worker_id="w2")),
        records_pb2.Record(sandbox_created=records_pb2.SandboxCreated(sandbox_id=4, now_ms=1)),
        records_pb2.Record(sandbox_reset=records_pb2.SandboxReset(sandbox_id=1, now_ms=1)),
        records_pb2.Record(
            sandbox_destroyed=records_pb2.SandboxDestroyed(sandbox_id=99, reason=records_pb2.DESTROY_REASON_IDLE)
        ),
        records_pb2.Record(
            sandbox_destroyed=records_pb2.SandboxDestroyed(sandbox_id=1, reason=records_pb2.DESTROY_REASON_UNSPECIFIED)
        ),
        records_pb2.Record(
            lease_granted=records_pb2.LeaseGranted(token=token(epoch=3, seq=5), sandbox_id=4, expiry_ms=9, now_ms=1)
        ),
        records_pb2.Record(
            lease_granted=records_pb2.LeaseGranted(token=token(epoch=3, seq=4), sandbox_id=1, expiry_ms=9, now_ms=1)
        ),
        records_pb2.Record(
            lease_released=records_pb2.LeaseReleased(token=token(epoch=3, seq=1), outcome=records_pb2.OUTCOME_OK)
        ),
        records_pb2.Record(
            lease_released=records_pb2.LeaseReleased(
                token=token(epoch=3, seq=4), outcome=records_pb2.OUTCOME_UNSPECIFIED
            )
        ),
        records_pb2.Record(lease_expired=records_pb2.LeaseExpired(token=token(epoch=2, seq=4))),
    ]
    for pb in bad:
        record = Record.decode(pb.SerializeToString())
        refused(core, InvalidRecord, lambda: core.apply(record))  # noqa: B023 - called at once


def test_apply_all_stops_at_the_first_failure(core: PartitionCore) -> None:
    good = core.join_worker("w4", "za", "", 1024)
    bad = Record.decode(records_pb2.Record(worker_left=records_pb2.WorkerLeft(worker_id="w9")).SerializeToString())
    later = core.join_worker("w5", "za", "", 1024)
    with pytest.raises(InvalidRecord):
        core.apply_all([*good, bad, *later])
    workers = core.state()["workers"]
    assert "w4" in workers
    assert "w5" not in workers


# -- snapshots -------------------------------------------------------------------------------------------


def snapshot_of(core: PartitionCore) -> snapshot_pb2.PartitionSnapshot:
    return snapshot_pb2.PartitionSnapshot.FromString(core.snapshot())


def corruptions(good: snapshot_pb2.PartitionSnapshot) -> Iterator[tuple[str, snapshot_pb2.PartitionSnapshot]]:
    """Valid protobuf, inconsistent content. ``good`` is the ``core`` fixture's snapshot."""

    def variant() -> snapshot_pb2.PartitionSnapshot:
        copy = snapshot_pb2.PartitionSnapshot()
        copy.CopyFrom(good)
        return copy

    def sandbox(snap: snapshot_pb2.PartitionSnapshot, sandbox_id: int) -> snapshot_pb2.SandboxSnapshot:
        return next(s for s in snap.sandboxes if s.sandbox_id == sandbox_id)

    s = variant()
    s.format = 0
    yield "format 0", s
    s = variant()
    s.format = 99
    yield "unknown format", s
    s = variant()
    sandbox(s, 1).worker_id = "w9"
    yield "sandbox on an unknown worker", s
    s = variant()
    s.pools[0].sandbox_ids.append(4)
    yield "pool lists a busy sandbox", s
    s = variant()
    s.pools[0].sandbox_ids.append(99)
    yield "pool lists an unknown sandbox", s
    s = variant()
    s.pools[0].sandbox_ids.append(1)
    yield "pool lists a sandbox twice", s
    s = variant()
    del s.pools[:]
    yield "idle sandbox missing from its pool", s
    s = variant()
    s.pools[0].version = "other"
    yield "sandbox in another version's pool", s
    s = variant()
    sandbox(s, 1).lease.CopyFrom(records_pb2.LeaseToken(epoch=3, seq=5))
    sandbox(s, 1).lease_expiry_ms = 5_000
    s.next_lease_seq = 6
    yield "lease on an idle sandbox", s
    s = variant()
    sandbox(s, 2).lease.CopyFrom(records_pb2.LeaseToken(epoch=3, seq=5))
    s.next_lease_seq = 6
    yield "lease on a resetting sandbox", s
    s = variant()
    sandbox(s, 4).ClearField("lease")
    yield "busy sandbox without a lease", s
    s = variant()
    sandbox(s, 4).lease.seq = 3
    yield "two sandboxes hold the same lease", s
    s = variant()
    s.next_lease_seq = 4
    yield "lease seq not below next_lease_seq", s
    s = variant()
    sandbox(s, 4).lease.epoch = 4
    yield "lease from a future epoch", s
    s = variant()
    s.next_sandbox_id = 4
    yield "sandbox id not below next_sandbox_id", s
    s = variant()
    s.sandboxes.add().CopyFrom(sandbox(s, 1))
    yield "duplicate sandbox id", s
    s = variant()
    s.workers.add().CopyFrom(s.workers[0])
    yield "duplicate worker id", s
    s = variant()
    s.workers[0].worker_id = ""
    yield "empty worker id", s
    s = variant()
    s.workers[0].zone = "z\x00"
    yield "control character in a zone", s
    s = variant()
    s.workers[0].capacity_mb = 4_194_305
    yield "capacity out of range", s
    s = variant()
    sandbox(s, 1).memory_mb = 64
    yield "memory out of range", s
    s = variant()
    sandbox(s, 1).state = snapshot_pb2.SANDBOX_STATE_UNSPECIFIED
    yield "unspecified sandbox state", s
    s = variant()
    sandbox(s, 1).state = 9  # type: ignore[assignment]
    yield "unknown sandbox state", s
    s = variant()
    sandbox(s, 1).function = ""
    yield "empty function", s
    s = variant()
    s = variant()
    s.reserved.add(function="g", reserved=1)
    yield "function reserved twice", s
    s = variant()
    s.scale_up[0].created_ms.insert(0, 2**53 + 1)
    yield "creation time out of range", s
    s = variant()
    s.scale_up[0].created_ms.append(0)
    yield "creation times not sorted", s


def test_corrupt_snapshot_cases_are_inconsistent(core: PartitionCore) -> None:
    assert len(list(corruptions(snapshot_of(core)))) >= 20
    for name, snap in corruptions(snapshot_of(core)):
        assert snap != snapshot_of(core), name


def test_restore_refuses_inconsistent_snapshots(core: PartitionCore, busy_core: PartitionCore) -> None:
    failures = []
    for target in (core, busy_core):
        for name, snap in corruptions(snapshot_of(core)):
            before_state, before_snapshot = target.state(), target.snapshot()
            try:
                target.restore(snap.SerializeToString())
                failures.append(f"{name}: accepted")
            except CorruptSnapshot:
                pass
            except BaseException as e:
                failures.append(f"{name}: {type(e).__module__}.{type(e).__name__}: {e}")
            if target.state() != before_state or target.snapshot() != before_snapshot:
                failures.append(f"{name}: changed the state")
    assert not failures, "\n".join(failures)


def test_restore_refuses_garbage(core: PartitionCore) -> None:
    good = core.snapshot()
    loose: Any = core
    refused_each(
        core,
        CorruptSnapshot,
        [b"\xff\xff\xff", b"\x0a", good[:-1], good[: len(good) // 2] + b"\xff", b"\x08\x01\x2a\x05\x0a"],
        loose.restore,
    )
    refused_each(core, CorruptSnapshot, ["x", None, bytearray(good), 1], loose.restore)


def test_restore_truncated_snapshots(busy_core: PartitionCore) -> None:
    good = busy_core.snapshot()
    for cut in range(0, len(good), max(len(good) // 200, 1)):
        target = PartitionCore(**CONFIG)
        before = target.state()
        try:
            target.restore(good[:cut])
        except CorruptSnapshot:
            assert target.state() == before
            continue
        # A cut at a field boundary can leave a consistent, smaller state: it must round-trip.
        again = PartitionCore(**CONFIG)
        again.restore(target.snapshot())
        assert again.state() == target.state()


@FUZZ
@given(data=st.data())
def test_restore_mutated_snapshots_never_crash(data: st.DataObject) -> None:
    source = PartitionCore(**CONFIG)
    run_workload(source, random.Random(data.draw(st.integers(0, 3))), 120)
    blob = bytearray(source.snapshot())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    target = PartitionCore(**CONFIG)
    before = target.state()
    try:
        target.restore(bytes(blob))
    except CorruptSnapshot:
        assert target.state() == before
        return
    again = PartitionCore(**CONFIG)
    again.restore(target.snapshot())
    assert again.state() == target.state()
    # A restored core must keep working: a workload on it raises only named errors.
    run_workload(target, random.Random(1), 50)
