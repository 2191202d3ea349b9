"""Reconcile: what a leader's core believes about the workers, against what the cluster says.

Pure functions, no I/O: the leader gathers the live workers (coordination), the listings
(``ListSandboxes``) and the core's view, asks here what to do, and does it.

- :func:`worker_changes`: which of the core's workers leave (gone, moved, or restarted under another
  incarnation: their sandboxes are lost), which live workers join, and whose capacity changed.

- Before serving, :func:`plan` compares every reachable worker's listing with the core: sandboxes of
  this partition that a worker holds and the core does not place there are *orphans* (destroyed on the
  worker); sandboxes the core places on a worker that no longer lists them have *vanished* (dropped from
  the core, failing their leases). An unreachable worker (no listing) is left to the membership rules.
- While serving, a worker that joins again after its session expired may still hold sandboxes this
  leader dropped when it left: :func:`returned` picks exactly those, matched against the leader's own
  record of what it dropped, never against its view of the partition, which a newer leader may have
  outgrown.

Example::

    changes = worker_changes({"w1": ("10.0.0.1:7001", "a", 4096)}, live, seen={"w1": "i1"})
    todo = plan(3, held={"w1": [1, 2]}, listings={"w1": ("10.0.0.1:7001", ["p3-s2", "p3-s9"])})
    assert todo.vanished == [1] and todo.orphans == [("10.0.0.1:7001", "p3-s9")]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from assignment.members import WorkerInfo
from assignment.worker_client import parse_sandbox_name, sandbox_name

__all__ = ["Plan", "WorkerChanges", "plan", "returned", "worker_changes"]


@dataclass(frozen=True, slots=True)
class WorkerChanges:
    """How the core's workers must change to match the live ones (ids; ``leave`` sorted, the others in
    the live order). ``restarted`` are those of ``leave`` that came back under another incarnation."""

    leave: list[str]
    join: list[str]
    update: list[str]
    restarted: list[str]


def worker_changes(
    current: Mapping[str, tuple[str, str, int]], live: Mapping[str, WorkerInfo], seen: Mapping[str, str]
) -> WorkerChanges:
    """Compare the core's workers (id -> ``(address, zone, capacity_mb)``) with the live ones.

    A worker leaves when it is no longer live, moved (address or zone), or shows another incarnation
    than ``seen`` (id -> the incarnation this leader last saw; unknown on either side counts as the
    same). A live worker joins when the core lacks it or it left; one that stays with another capacity
    is updated.
    """
    leave: list[str] = []
    restarted: list[str] = []
    for worker_id, (address, zone, _capacity) in sorted(current.items()):
        new = live.get(worker_id)
        if new is None or (new.address, new.zone) != (address, zone):
            leave.append(worker_id)
        elif seen.get(worker_id) and new.incarnation and new.incarnation != seen[worker_id]:
            leave.append(worker_id)
            restarted.append(worker_id)
    gone = set(leave)
    join = [wid for wid in live if wid not in current or wid in gone]
    update = [
        wid for wid, new in live.items() if wid in current and wid not in gone and new.capacity_mb != current[wid][2]
    ]
    return WorkerChanges(leave, join, update, restarted)


@dataclass(frozen=True, slots=True)
class Plan:
    """What reconcile does: sandbox ids to drop from the core, and ``(address, name)`` to destroy."""

    vanished: list[int]
    orphans: list[tuple[str, str]]


def plan(
    partition: int,
    held: Mapping[str, Collection[int]],
    listings: Mapping[str, tuple[str, Collection[str]] | None],
) -> Plan:
    """Compare ``held`` (worker id -> the core's sandbox ids there) with ``listings`` (worker id ->
    ``(address, names listed)``, or ``None`` when the worker could not be asked), in the order of
    ``listings``."""
    vanished: list[int] = []
    orphans: list[tuple[str, str]] = []
    for worker_id, listing in listings.items():
        if listing is None:
            continue
        address, names = listing
        mine = set(held.get(worker_id, ()))
        for name in sorted(names):
            parsed = parse_sandbox_name(name)
            if parsed is not None and parsed[0] == partition and parsed[1] not in mine:
                orphans.append((address, name))
        listed = set(names)
        vanished += [sid for sid in mine if sandbox_name(partition, sid) not in listed]
    return Plan(sorted(vanished), orphans)


def returned(address: str, dropped: Collection[str], listed: Iterable[str]) -> list[tuple[str, str]]:
    """``(address, name)`` of the listed sandboxes that were dropped with the worker when it left."""
    return [(address, name) for name in listed if name in dropped]
