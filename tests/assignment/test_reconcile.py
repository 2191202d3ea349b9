"""Reconcile's pure rules: what a new leader destroys on workers and drops from its core."""

from __future__ import annotations

from assignment.reconcile import Plan, plan, returned


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
