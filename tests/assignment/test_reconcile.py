"""Reconcile's pure rules: what a new leader destroys on workers and drops from its core."""

from __future__ import annotations

from assignment.members import WorkerInfo
from assignment.reconcile import Plan, WorkerChanges, plan, returned, worker_changes


def test_orphans_are_this_partitions_sandboxes_the_core_does_not_place_there() -> None:
    todo = plan(
        3,
        held={"w1": [1, 2], "w2": [5]},
        listings={
            "w1": ("10.0.0.1:7001", ["p3-s9", "p3-s1", "p3-s2", "p4-s9", "stray"]),
            "w2": ("10.0.0.2:7001", ["p3-s1", "p3-s5"]),  # s1 is on w1 as far as the core knows
        },
    )
    assert todo == Plan(vanished=[], orphans=[("10.0.0.1:7001", "p3-s9"), ("10.0.0.2:7001", "p3-s1")])


def test_sandboxes_a_worker_no_longer_lists_have_vanished_sorted() -> None:
    todo = plan(3, held={"w1": [7, 2, 4]}, listings={"w1": ("a:1", ["p3-s4"])})
    assert todo == Plan(vanished=[2, 7], orphans=[])


def test_an_unreachable_worker_is_left_alone() -> None:
    assert plan(3, held={"w1": [1]}, listings={"w1": None}) == Plan([], [])


def test_a_worker_the_core_does_not_know_holds_only_orphans() -> None:
    todo = plan(3, held={}, listings={"w9": ("a:1", ["p3-s1"])})
    assert todo == Plan([], [("a:1", "p3-s1")])


def test_a_returning_worker_loses_exactly_what_was_dropped_with_it() -> None:
    assert returned("a:1", {"p3-s1", "p3-s2"}, ["p3-s2", "p3-s3", "p3-s1"]) == [("a:1", "p3-s2"), ("a:1", "p3-s1")]
    assert returned("a:1", set(), ["p3-s2"]) == []


def _live(*infos: WorkerInfo) -> dict[str, WorkerInfo]:
    return {info.worker_id: info for info in infos}


def test_workers_that_left_moved_or_restarted_leave_and_the_live_join() -> None:
    current = {
        "w1": ("a:1", "z1", 4096),
        "w2": ("b:1", "z1", 4096),
        "w3": ("c:1", "z1", 4096),
        "w4": ("d:1", "z2", 4096),
    }
    live = _live(
        WorkerInfo("w2", "b:2", "z1", 4096),  # moved: leaves and joins again
        WorkerInfo("w3", "c:1", "z1", 4096, "i2"),  # restarted: another incarnation than seen
        WorkerInfo("w4", "d:1", "z2", 8192, "i9"),  # stays, with more memory
        WorkerInfo("w5", "e:1", "z2", 2048),  # new
    )
    changes = worker_changes(current, live, seen={"w3": "i1", "w4": "i9"})
    assert changes == WorkerChanges(leave=["w1", "w2", "w3"], join=["w2", "w3", "w5"], update=["w4"], restarted=["w3"])


def test_an_incarnation_unknown_on_either_side_is_the_same_worker() -> None:
    current = {"w1": ("a:1", "z1", 4096)}
    assert worker_changes(current, _live(WorkerInfo("w1", "a:1", "z1", 4096, "i2")), seen={}) == WorkerChanges(
        [], [], [], []
    )
    assert worker_changes(current, _live(WorkerInfo("w1", "a:1", "z1", 4096)), seen={"w1": "i1"}) == WorkerChanges(
        [], [], [], []
    )
