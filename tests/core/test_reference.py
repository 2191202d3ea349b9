"""Direct tests of the reference model (tests/core/reference.py); they need no Rust build."""

from __future__ import annotations

from typing import Any

import pytest

from journal.v1 import records_pb2
from tests.core.reference import (
    Decision,
    InvalidArgument,
    InvalidRecord,
    InvalidState,
    NoCapacity,
    ReferenceCore,
    StaleLease,
    UnknownLease,
    UnknownSandbox,
    UnknownWorker,
)

F, V = "resize", "$LATEST"


def make_core(*workers: tuple[str, str, int], **config: Any) -> ReferenceCore:
    core = ReferenceCore(**config)
    core.apply_all(core.start_epoch(1))
    for worker_id, zone, capacity in workers:
        core.apply_all(core.join_worker(worker_id, zone, f"{worker_id}:7001", capacity))
    return core


def acquire(core: ReferenceCore, now: int, function: str = F, memory: int = 128, timeout: int = 1_000) -> Decision:
    decision = core.acquire(function, V, memory, timeout, now)
    core.apply_all(decision.records)
    return decision


def idle_sandboxes(core: ReferenceCore, now: int, n: int = 1, function: str = F, memory: int = 128) -> list[int]:
    """``n`` cold acquires, confirmed and released in order: the last is at the front of the pool."""
    decisions = [acquire(core, now, function, memory) for _ in range(n)]
    for d in decisions:
        assert d.outcome == "cold"
        assert d.sandbox_id is not None
        assert d.token is not None
        core.apply_all(core.created(d.sandbox_id, now))
    for d in decisions:
        assert d.token is not None
        core.apply_all(core.release(d.token, "ok", now))
    return [d.sandbox_id for d in decisions if d.sandbox_id is not None]


def test_warm_reuse_takes_most_recently_used_first() -> None:
    core = make_core(("w1", "a", 4096))
    first = acquire(core, 1)
    second = acquire(core, 2)
    assert (first.outcome, second.outcome) == ("cold", "cold")
    assert first.sandbox_id == 1
    assert second.sandbox_id == 2
    core.apply_all(core.created(1, 3) + core.created(2, 3))
    assert first.token is not None
    assert second.token is not None
    core.apply_all(core.release(second.token, "ok", 4))
    core.apply_all(core.release(first.token, "function_error", 5))
    assert core.state()["pools"] == {(F, V): [1, 2]}
    assert core.state()["sandboxes"][1][5] == 5

    warm = acquire(core, 6)
    assert warm.outcome == "warm"
    assert warm.sandbox_id == 1
    assert warm.records[0].WhichOneof("kind") == "lease_granted"
    assert warm.alternatives == []
    assert warm.expiry_ms == 6 + 1_000 + 1_000
    assert core.state()["pools"] == {(F, V): [2]}
    assert core.state()["sandboxes"][1][4:] == ("busy", 6, (1, 3, 2006))


def test_warm_skips_other_memory_and_unhealthy_workers() -> None:
    core = make_core(("w1", "a", 4096), ("w2", "b", 4096))
    s1, s2 = idle_sandboxes(core, 1, 2)  # w1 (zone a sorts first), then w2 (zone spread)
    (s3,) = idle_sandboxes(core, 3, memory=256)
    assert core.state()["sandboxes"][s1][0] == "w1"
    assert core.state()["sandboxes"][s2][0] == "w2"
    assert core.state()["pools"] == {(F, V): [s3, s2, s1]}
    core.apply_all(core.update_worker("w2", 4096, False))
    decision = acquire(core, 4)
    assert (decision.outcome, decision.sandbox_id) == ("warm", s1)
    assert acquire(core, 5, memory=256).sandbox_id == s3


def test_cold_spreads_across_zones_then_prefers_code_then_free_then_id() -> None:
    core = make_core(("a1", "a", 1024), ("a2", "a", 2048), ("b1", "b", 1024), ("b2", "b", 4096))
    # Empty partition: zone "a" before "b", no code anywhere, most free first.
    d1 = acquire(core, 1)
    assert (d1.worker_id, d1.alternatives) == ("a2", ["a1", "b2", "b1"])
    assert d1.worker_address == "a2:7001"
    # Zone a holds one sandbox of F: zone b goes first.
    d2 = acquire(core, 2)
    assert (d2.worker_id, d2.alternatives) == ("b2", ["b1", "a2", "a1"])
    # Both zones hold one: zone "a" again, and a2 holds the code.
    d3 = acquire(core, 3)
    assert d3.worker_id == "a2"
    # Another function version has no sandboxes: its own counts start at zero.
    other = core.acquire(F, "v2", 128, 1_000, 4)
    assert other.worker_id == "a2"
    # Equal everything but worker id.
    core2 = make_core(("x2", "a", 1024), ("x1", "a", 1024), alternatives=1)
    d = core2.acquire(F, V, 128, 1_000, 1)
    assert (d.worker_id, d.alternatives) == ("x1", ["x2"])


def test_cold_code_locality_beats_free_memory() -> None:
    core = make_core(("a1", "a", 4096), ("a2", "a", 8192))
    assert acquire(core, 1).worker_id == "a2"
    core.apply_all(core.join_worker("a3", "a", "", 16384))
    # All in zone a (zone_count 1); a2 holds the code, a3 has more free memory.
    assert acquire(core, 2).worker_id == "a2"


def test_cold_needs_room_and_health() -> None:
    core = make_core(("w1", "a", 256), ("w2", "b", 4096))
    core.apply_all(core.update_worker("w2", 4096, False))
    assert acquire(core, 1, memory=256).worker_id == "w1"
    d = acquire(core, 2, memory=128)
    assert (d.outcome, d.reason, d.records, d.token) == ("throttled", "no_capacity", [], None)
    # Capacity below use: free clamps to zero and the state shows it.
    core.apply_all(core.update_worker("w1", 128, True))
    assert core.state()["workers"]["w1"] == ("a", "w1:7001", 128, 256, True)
    assert core.free_mb("w1") == 0


def test_throttle_account_limit_counts_unreserved_functions_together() -> None:
    core = make_core(("w1", "a", 100_000), account_limit=3)
    core.apply_all(core.set_reserved("g", 1))
    assert acquire(core, 1, "f1").outcome == "cold"
    assert acquire(core, 1, "f2").outcome == "cold"
    d = acquire(core, 1, "f3")  # 3 - 1 reserved = 2 shared
    assert (d.outcome, d.reason) == ("throttled", "account_limit")
    assert acquire(core, 1, "g").outcome == "cold"
    d = acquire(core, 1, "g")
    assert (d.outcome, d.reason) == ("throttled", "reserved_limit")
    core.apply_all(core.set_reserved("g", None))
    assert acquire(core, 1, "g").reason == "account_limit"
    core.apply_all(core.set_reserved("f9", 3) + core.set_reserved("f8", 3))
    assert core.state()["reserved"] == {"f9": 3, "f8": 3}
    assert acquire(core, 1, "f7").reason == "account_limit"  # max(3 - 6, 0) = 0 shared


def test_throttle_applies_to_warm_grants_and_reserved_zero() -> None:
    core = make_core(("w1", "a", 4096), account_limit=1)
    idle_sandboxes(core, 1)
    core.apply_all(core.set_reserved(F, 0))
    assert acquire(core, 2).reason == "reserved_limit"
    core.apply_all(core.set_reserved(F, 1))
    assert acquire(core, 2).outcome == "warm"
    assert acquire(core, 2).reason == "reserved_limit"


def test_throttle_scale_up_rate_and_window_pruning() -> None:
    core = make_core(("w1", "a", 100_000), scale_up_per_window=2, scale_up_window_ms=1_000)
    assert acquire(core, 100).outcome == "cold"
    assert acquire(core, 100).outcome == "cold"
    assert acquire(core, 1_099).reason == "scale_up_rate"
    assert acquire(core, 1_099, "other").outcome == "cold"
    assert core.state()["scale_up"] == {F: [100, 100], "other": [1_099]}
    # At t + window == now the creation no longer counts; nothing is pruned until a SandboxCreating.
    decision = core.acquire(F, V, 128, 1_000, 1_100)
    assert decision.outcome == "cold"
    assert core.state()["scale_up"][F] == [100, 100]
    core.apply_all(decision.records)
    assert core.state()["scale_up"][F] == [1_100]
    # A creation in the past is inserted in order, after equal ones.
    acquire(core, 1_050)
    assert core.state()["scale_up"][F] == [1_050, 1_100]


def test_release_ok_returns_to_pool_broken_destroys() -> None:
    core = make_core(("w1", "a", 1024))
    d = acquire(core, 1, memory=512)
    assert d.token is not None
    assert d.sandbox_id is not None
    with pytest.raises(InvalidState):
        core.release(d.token, "ok", 2)  # still creating
    core.apply_all(core.created(d.sandbox_id, 2))
    assert core.state()["sandboxes"][d.sandbox_id][4:] == ("busy", 2, (1, 1, 2001))
    (record,) = core.release(d.token, "ok", 3)
    assert record.lease_released.outcome == records_pb2.OUTCOME_OK
    core.apply(record)
    assert core.state()["sandboxes"][d.sandbox_id][4:] == ("idle", 3, None)
    assert core.lease_count == 0

    warm = acquire(core, 4, memory=512)
    assert warm.token is not None
    core.apply_all(core.release(warm.token, "out_of_memory", 5))
    assert core.state()["sandboxes"] == {}
    assert core.state()["workers"]["w1"][3] == 0
    assert core.state()["pools"] == {}


def test_release_twice_is_stale_and_unknown_tokens() -> None:
    core = make_core(("w1", "a", 1024))
    d = acquire(core, 1)
    assert d.token is not None
    assert d.sandbox_id is not None
    core.apply_all(core.created(d.sandbox_id, 1))
    with pytest.raises(StaleLease):
        core.release((2, 1), "ok", 2)  # right seq, other epoch
    core.apply_all(core.release(d.token, "ok", 2))
    with pytest.raises(StaleLease):
        core.release(d.token, "ok", 3)
    for token in [(1, 2), (1, 0), (0, 2**64 - 1)]:
        with pytest.raises(UnknownLease):
            core.release(token, "ok", 3)
    with pytest.raises(StaleLease):
        core.release((0, 1), "ok", 3)
    for bad in [[1, 1], (1,), (1, 1, 1), (1, True), (1.0, 1), (1, -1), (-1, 1), (1, 2**64), None]:
        with pytest.raises(InvalidArgument):
            core.release(bad, "ok", 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        core.release(d.token, "fine", 3)


def test_idle_reclaim_leaves_a_pinned_version_its_count_until_the_pin_lapses() -> None:
    core = make_core(("w1", "a", 100_000), idle_keepalive_ms=100)
    pinned = idle_sandboxes(core, 10, n=3)  # the last is the most recently used
    (other,) = idle_sandboxes(core, 20, function="g")
    core.apply_all(core.set_provisioned(F, V, 2, 1_000))
    assert core.state()["provisioned"] == {(F, V): (2, 1_000)}
    destroyed = [r.sandbox_destroyed.sandbox_id for r in core.expire(500)]
    assert destroyed == [pinned[0], other], "the least recently used goes, down to the pin"
    core.apply_all(core.expire(500))
    assert core.expire(999) == []
    assert [r.sandbox_destroyed.sandbox_id for r in core.expire(1_000)] == pinned[1:], "lapsed"
    core.apply_all(core.set_provisioned(F, V, 0, 0))
    assert core.state()["provisioned"] == {}
    assert len(core.expire(500)) == 2, "unpinned"
    for count, until in [(-1, 1), (1_001, 1), (1, -1), (True, 1), (1, 2**53 + 1)]:
        with pytest.raises(InvalidArgument):
            core.set_provisioned(F, V, count, until)


def test_expire_orders_leases_then_idle_and_honours_limit() -> None:
    core = make_core(("w1", "a", 100_000), idle_keepalive_ms=100, lease_margin_ms=0)
    a = acquire(core, 0, timeout=50)  # expiry 50
    b = acquire(core, 0, timeout=30)  # expiry 30
    c = acquire(core, 0, timeout=30)  # expiry 30
    for d in (a, b, c):
        assert d.sandbox_id is not None
        core.apply_all(core.created(d.sandbox_id, 0))
    (idle_late,) = idle_sandboxes(core, 20, function="g")
    (idle_early,) = idle_sandboxes(core, 10, function="h")
    assert core.expire(29) == []
    records = core.expire(200)
    kinds = [r.WhichOneof("kind") for r in records]
    assert kinds == ["lease_expired"] * 3 + ["sandbox_destroyed"] * 2
    assert [r.lease_expired.token.seq for r in records[:3]] == [2, 3, 1]
    assert [r.sandbox_destroyed.sandbox_id for r in records[3:]] == [idle_early, idle_late]
    assert records[3].sandbox_destroyed.reason == records_pb2.DESTROY_REASON_IDLE
    assert core.expire(200, limit=4) == records[:4]
    core.apply_all(records[:3])
    assert b.sandbox_id is not None
    assert core.state()["sandboxes"][b.sandbox_id][4:] == ("resetting", 200, None)
    # A resetting sandbox is not handed out, and a reset puts it at the front of its pool.
    core.apply_all(core.reset_done(b.sandbox_id, 201))
    assert core.state()["pools"][(F, V)][0] == b.sandbox_id
    with pytest.raises(InvalidArgument):
        core.expire(200, limit=0)


def test_worker_leave_drops_sandboxes_and_leases() -> None:
    core = make_core(("w1", "a", 1024), ("w2", "b", 1024))
    d1 = acquire(core, 1)
    d2 = acquire(core, 1)
    assert {d1.worker_id, d2.worker_id} == {"w1", "w2"}
    gone = d1 if d1.worker_id == "w1" else d2
    assert gone.token is not None
    core.apply_all(core.leave_worker("w1"))
    assert core.worker_count == 1
    assert core.sandbox_count == 1
    assert core.lease_count == 1
    with pytest.raises(StaleLease):
        core.release(gone.token, "ok", 2)
    with pytest.raises(UnknownWorker):
        core.leave_worker("w1")


def test_relocate_rules() -> None:
    core = make_core(("w1", "a", 1024), ("w2", "b", 256), ("w3", "c", 128))
    d = acquire(core, 1, memory=256)
    assert d.sandbox_id == 1
    with pytest.raises(InvalidArgument):
        core.relocate(1, "w1")
    with pytest.raises(UnknownWorker):
        core.relocate(1, "w9")
    with pytest.raises(NoCapacity):
        core.relocate(1, "w3")
    with pytest.raises(UnknownSandbox):
        core.relocate(2, "w2")
    core.apply_all(core.relocate(1, "w2"))
    assert core.state()["workers"]["w1"][3] == 0
    assert core.state()["workers"]["w2"][3] == 256
    core.apply_all(core.created(1, 2))
    with pytest.raises(InvalidState):
        core.relocate(1, "w1")


def test_argument_validation() -> None:
    core = ReferenceCore()
    with pytest.raises(InvalidState):
        core.acquire(F, V, 128, 1, 0)
    with pytest.raises(InvalidArgument):
        core.acquire(F, V, 127, 1, 0)
    core.apply_all(core.start_epoch(5))
    with pytest.raises(InvalidState):
        core.start_epoch(5)
    with pytest.raises(InvalidArgument):
        core.start_epoch(True)
    loose: Any = core  # for the calls with wrong types
    bad_calls = [
        lambda: core.acquire("", V, 128, 1, 0),
        lambda: core.acquire("x" * 141, V, 128, 1, 0),
        lambda: core.acquire("é" * 71, V, 128, 1, 0),  # 142 bytes
        lambda: core.acquire("a\x00b", V, 128, 1, 0),
        lambda: core.acquire("a\x85b", V, 128, 1, 0),
        lambda: core.acquire("\ud800", V, 128, 1, 0),
        lambda: core.acquire(F, V, 10241, 1, 0),
        lambda: core.acquire(F, V, True, 1, 0),
        lambda: loose.acquire(F, V, 128.0, 1, 0),
        lambda: core.acquire(F, V, 128, 0, 0),
        lambda: core.acquire(F, V, 128, 900_001, 0),
        lambda: core.acquire(F, V, 128, 1, 2**53 + 1),
        lambda: core.acquire(F, V, 128, 1, -1),
        lambda: core.acquire(F, V, 128, 1, 0, "r" * 129),
        lambda: core.join_worker("w", "", "", 0),
        lambda: core.join_worker("w", "z", "\n", 0),
        lambda: core.join_worker("w", "z", "", 4_194_305),
        lambda: loose.update_worker("w", 0, 1),
        lambda: core.set_reserved(F, 1001),
        lambda: core.set_reserved(F, -1),
        lambda: core.set_reserved(F, False),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidArgument):
            call()  # type: ignore[no-untyped-call]
    assert core.acquire("é" * 70, V, 128, 1, 0).reason == "no_capacity"
    assert core.set_reserved(F, 1000)[0].function_concurrency_set.reserved == 1000


def test_apply_rejects_records_that_do_not_fit_and_changes_nothing() -> None:
    core = make_core(("w1", "a", 1024))
    d = acquire(core, 1)
    before = core.state()
    creating = records_pb2.SandboxCreating(sandbox_id=2, worker_id="w1", function=F, version=V, memory_mb=128)
    bad = [
        records_pb2.Record(),
        records_pb2.Record(epoch_started=records_pb2.EpochStarted(epoch=1)),
        records_pb2.Record(worker_joined=records_pb2.WorkerJoined(worker_id="w1", zone="a")),
        records_pb2.Record(worker_joined=records_pb2.WorkerJoined(worker_id="w2", zone="")),
        records_pb2.Record(worker_joined=records_pb2.WorkerJoined(worker_id="w2", zone="a", capacity_mb=2**32 - 1)),
        records_pb2.Record(worker_left=records_pb2.WorkerLeft(worker_id="w9")),
        records_pb2.Record(sandbox_creating=records_pb2.SandboxCreating(sandbox_id=1, worker_id="w1")),
        records_pb2.Record(sandbox_creating=creating.__class__(sandbox_id=2, worker_id="w9", function=F, version=V)),
        records_pb2.Record(sandbox_created=records_pb2.SandboxCreated(sandbox_id=9)),
        records_pb2.Record(sandbox_reset=records_pb2.SandboxReset(sandbox_id=1)),
        records_pb2.Record(sandbox_relocated=records_pb2.SandboxRelocated(sandbox_id=1, worker_id="w1")),
        records_pb2.Record(sandbox_destroyed=records_pb2.SandboxDestroyed(sandbox_id=1)),
        records_pb2.Record(lease_granted=records_pb2.LeaseGranted(token=records_pb2.LeaseToken(epoch=1, seq=1))),
        records_pb2.Record(
            lease_granted=records_pb2.LeaseGranted(token=records_pb2.LeaseToken(epoch=2, seq=2), sandbox_id=1)
        ),
        records_pb2.Record(
            lease_released=records_pb2.LeaseReleased(
                token=records_pb2.LeaseToken(epoch=1, seq=1), outcome=records_pb2.OUTCOME_OK
            )
        ),  # still creating
        records_pb2.Record(lease_expired=records_pb2.LeaseExpired(token=records_pb2.LeaseToken(epoch=2, seq=1))),
    ]
    for record in bad:
        with pytest.raises(InvalidRecord):
            core.apply(record)
        assert core.state() == before, record
    # The same SandboxCreating with a valid memory fits.
    creating.memory_mb = 128
    core.apply(records_pb2.Record(sandbox_creating=creating))
    assert core.state()["sandboxes"][2][4] == "creating"
    assert d.sandbox_id == 1


def test_snapshot_is_canonical() -> None:
    one = make_core(("w2", "b", 1024), ("w1", "a", 1024))
    two = make_core(("w1", "a", 1024), ("w2", "b", 1024))
    assert one.snapshot() == two.snapshot()
    acquire(one, 1)
    assert one.snapshot() != two.snapshot()
