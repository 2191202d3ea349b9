"""Reconcile: what a leader's core believes each worker holds, against what the workers list.

Pure functions, no I/O: the leader gathers the listings (``ListSandboxes``) and the core's view, asks
here what to do, and does it.

- Before serving, :func:`plan` compares every reachable worker's listing with the core: sandboxes of
  this partition that a worker holds and the core does not place there are *orphans* (destroyed on the
  worker); sandboxes the core places on a worker that no longer lists them have *vanished* (dropped from
  the core, failing their leases). An unreachable worker (no listing) is left to the membership rules.
- While serving, a worker that joins again after its session expired may still hold sandboxes this
  leader dropped when it left: :func:`returned` picks exactly those, matched against the leader's own
  record of what it dropped, never against its view of the partition, which a newer leader may have
  outgrown.

Example::

    todo = plan(3, held={"w1": [1, 2]}, listings={"w1": ("10.0.0.1:7001", ["p3-s2", "p3-s9"])})
    assert todo.vanished == [1] and todo.orphans == [("10.0.0.1:7001", "p3-s9")]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from assignment.worker_client import parse_sandbox_name, sandbox_name

__all__ = ["Plan", "plan", "returned"]


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
