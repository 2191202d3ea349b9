"""Function -> partition hashing, rendezvous replicas and balanced preferred leaders."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from assignment.partitioning import partition_of, preferred_leaders, rank_servers, replicas_of

server_sets = st.sets(st.text(alphabet="abcdefgh0123456789", min_size=1, max_size=6), min_size=1, max_size=9)


def test_partition_of_is_pinned() -> None:
    # These values are part of the on-disk contract: journals are per partition.
    assert [partition_of(f, 16) for f in ["resize", "thumbnail", "a", "été"]] == [11, 2, 13, 8]


def test_partition_of_spreads_functions() -> None:
    counts = Counter(partition_of(f"fn-{i}", 16) for i in range(16_000))
    assert min(counts.values()) > 800
    assert max(counts.values()) < 1200


@given(server_sets, st.integers(0, 63))
def test_replicas_are_distinct_live_servers(servers: set[str], partition: int) -> None:
    replicas = replicas_of(partition, servers, 3)
    assert len(replicas) == min(3, len(servers))
    assert len(set(replicas)) == len(replicas)
    assert set(replicas) <= servers


@given(server_sets, st.integers(0, 63), st.text(alphabet="xyz", min_size=1, max_size=3))
def test_removing_a_server_only_moves_its_own_ranks(servers: set[str], partition: int, extra: str) -> None:
    before = rank_servers(partition, servers | {extra})
    after = rank_servers(partition, servers - {extra})
    assert [s for s in before if s != extra] == after


@given(server_sets, st.integers(1, 64))
def test_preferred_leaders_are_balanced_within_one(servers: set[str], partitions: int) -> None:
    chosen = preferred_leaders(partitions, servers)
    assert sorted(chosen) == list(range(partitions))
    counts = Counter(chosen.values())
    per_server = [counts.get(s, 0) for s in servers]
    assert max(per_server) - min(per_server) <= 1
    assert chosen == preferred_leaders(partitions, sorted(servers, reverse=True))  # order does not matter
