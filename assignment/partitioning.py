"""Which partition a function belongs to, and which servers hold each partition.

Functions map to a fixed number of partitions by a stable hash of the name (BLAKE2b, so every process and
every version of Python agree). Each partition's replicas are the first ``replicas`` servers ranked by
rendezvous (highest-random-weight) hashing over the live servers. Rendezvous alone does not balance
leadership (8 partitions over 3 servers can rank one server first 5 times), so the preferred leaders are
chosen by :func:`preferred_leaders`: each server gets a quota (``partitions // servers``, one more for the
first ``partitions % servers``), and partitions in order take the best-ranked server with quota left.
Every server computes the same answer from the same live set.

Example::

    partition = partition_of("resize", 16)
    preferred, *others = replicas_of(partition, ["s1", "s2", "s3", "s4"], 3)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_REPLICAS",
    "partition_of",
    "preferred_leaders",
    "rank_servers",
    "replicas_of",
]

DEFAULT_PARTITIONS = 16
DEFAULT_REPLICAS = 3


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def partition_of(function: str, partitions: int) -> int:
    """The partition of ``function`` among ``partitions`` (stable across processes and releases)."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    return _hash64(b"fn:" + function.encode("utf-8", "surrogatepass")) % partitions


def rank_servers(partition: int, servers: Iterable[str]) -> list[str]:
    """Every server, best first, for ``partition`` by rendezvous hashing (ties broken by id)."""
    return sorted(
        set(servers),
        key=lambda server: (-_hash64(f"p:{partition}:{server}".encode("utf-8", "surrogatepass")), server),
    )


def replicas_of(partition: int, servers: Iterable[str], replicas: int = DEFAULT_REPLICAS) -> list[str]:
    """The partition's replicas among ``servers``, preferred leader first."""
    return rank_servers(partition, servers)[:replicas]


def preferred_leaders(partitions: int, servers: Iterable[str]) -> dict[int, str]:
    """The preferred leader of every partition: rendezvous order, capped so leadership is balanced
    within one partition per server. Empty when there are no servers."""
    live = sorted(set(servers))
    if not live:
        return {}
    base, extra = divmod(partitions, len(live))
    quota = {server: base + (1 if index < extra else 0) for index, server in enumerate(live)}
    chosen: dict[int, str] = {}
    for partition in range(partitions):
        for server in rank_servers(partition, live):
            if quota[server] > 0:
                quota[server] -= 1
                chosen[partition] = server
                break
    return chosen
