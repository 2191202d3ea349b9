"""The event source mapping store on SQLite and PostgreSQL: one mapping per source and function, paging and
filters, changes refused while one is in transition, moving a mapping to another function, and the
pollers' leases (claim, renew, lapse, release) and settling (also of a stale revision and of a deletion).

Time is passed in (``now_ms``): nothing here sleeps.
"""

from __future__ import annotations

import pytest

from assignment.frontend.event_sources.mappings import (
    MappingConflict,
    MappingInUse,
    MappingNotFound,
    MappingSettings,
    MappingStore,
)
from journal.store import Journal

T0 = 1_700_000_000_000
LEASE = 10_000
JOBS = "arn:aws:sqs:us-east-1:123456789012:jobs"
OTHER = "arn:aws:sqs:us-east-1:123456789012:other"


@pytest.fixture
def store(journal: Journal) -> MappingStore:
    return MappingStore(journal)


def settled(store: MappingStore, uuid: str, owner: str = "a", now_ms: int = T0) -> None:
    """Claim the mapping for ``owner`` and settle its current revision."""
    store.claim(owner, now_ms=now_ms, lease_ms=LEASE)
    mapping = store.get(uuid)
    store.settle(uuid, owner, mapping.revision, now_ms=now_ms)


def settle(store: MappingStore, uuid: str, owner: str, revision: int, now_ms: int = T0) -> tuple[str, int] | None:
    """(state, modified_ms) after ``settle`` (``None``: the mapping was removed)."""
    mapping = store.settle(uuid, owner, revision, now_ms=now_ms)
    return None if mapping is None else (mapping.state, mapping.modified_ms)


# ---------------------------------------------------------------------------------------- the API side


def test_create_stores_creating_with_the_settings_and_get_reads_them(store: MappingStore) -> None:
    settings = MappingSettings(
        batch_size=50, batching_window_s=5, max_concurrency=7, response_types=("ReportBatchItemFailures",)
    )
    made = store.create("resize", "3", JOBS, settings, now_ms=T0)
    assert (made.state, made.state_reason, made.revision) == ("Creating", "USER_INITIATED", 1)
    assert (made.function_name, made.qualifier, made.source_arn) == ("resize", "3", JOBS)
    assert store.get(made.uuid) == made
    assert made.settings == settings
    assert store.get(made.uuid).settings.max_concurrency == 7


def test_a_source_feeds_a_function_once_and_the_conflict_names_the_existing_mapping(store: MappingStore) -> None:
    first = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    with pytest.raises(MappingConflict) as caught:
        store.create("resize", "", JOBS, MappingSettings(batch_size=1), now_ms=T0)
    assert (caught.value.uuid, caught.value.source_arn, caught.value.function_name) == (first.uuid, JOBS, "resize")
    # Another qualifier, another function or another source is another pair.
    store.create("resize", "1", JOBS, MappingSettings(), now_ms=T0)
    store.create("thumb", "", JOBS, MappingSettings(), now_ms=T0)
    store.create("resize", "", OTHER, MappingSettings(), now_ms=T0)
    assert len(store.page()[0]) == 4


def test_unknown_uuids_are_not_found(store: MappingStore) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(MappingNotFound):
        store.get(missing)
    with pytest.raises(MappingNotFound):
        store.update(missing, MappingSettings(), now_ms=T0)
    with pytest.raises(MappingNotFound):
        store.delete(missing, now_ms=T0)


def test_pages_follow_uuid_order_and_filter_by_function_qualifier_and_source(store: MappingStore) -> None:
    made = [store.create(f"fn{i}", "", JOBS, MappingSettings(), now_ms=T0) for i in range(5)]
    made.append(store.create("fn0", "2", OTHER, MappingSettings(), now_ms=T0))
    uuids = sorted(m.uuid for m in made)
    seen: list[str] = []
    marker: str | None = None
    while True:
        found, marker = store.page(marker=marker, limit=2)
        seen += [m.uuid for m in found]
        if marker is None:
            break
        assert len(found) == 2
    assert seen == uuids
    assert {m.uuid for m in store.page(function_name="fn0")[0]} == {made[0].uuid, made[5].uuid}
    assert [m.uuid for m in store.page(function_name="fn0", qualifier="2")[0]] == [made[5].uuid]
    assert [m.uuid for m in store.page(function_name="fn0", qualifier="")[0]] == [made[0].uuid]
    assert [m.uuid for m in store.page(source_arn=OTHER)[0]] == [made[5].uuid]
    assert store.page(function_name="fn1", source_arn=OTHER) == ([], None)
    assert store.page(limit=6)[1] is None


def test_a_change_is_refused_while_another_is_in_transition(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    with pytest.raises(MappingInUse) as caught:
        store.update(made.uuid, MappingSettings(batch_size=5), now_ms=T0)
    assert caught.value.state == "Creating"
    settled(store, made.uuid)
    assert store.get(made.uuid).state == "Enabled"

    updated = store.update(made.uuid, MappingSettings(batch_size=5), now_ms=T0 + 1)
    assert (updated.state, updated.revision, updated.settings.batch_size) == ("Updating", 2, 5)
    assert updated.modified_ms == T0 + 1
    with pytest.raises(MappingInUse):
        store.update(made.uuid, MappingSettings(batch_size=6), now_ms=T0 + 2)
    assert store.get(made.uuid).settings.batch_size == 5  # the refused change left nothing behind


def test_enabled_changes_are_enabling_and_disabling(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    settled(store, made.uuid)
    assert store.update(made.uuid, MappingSettings(enabled=False), now_ms=T0).state == "Disabling"
    settled(store, made.uuid)
    assert store.get(made.uuid).state == "Disabled"
    assert store.update(made.uuid, MappingSettings(enabled=True), now_ms=T0).state == "Enabling"
    settled(store, made.uuid)
    assert store.get(made.uuid).state == "Enabled"


def test_a_mapping_made_disabled_settles_disabled(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(enabled=False), now_ms=T0)
    settled(store, made.uuid)
    assert store.get(made.uuid).state == "Disabled"


def test_update_moves_a_mapping_to_another_function_unless_the_source_feeds_it_already(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    taken = store.create("thumb", "2", JOBS, MappingSettings(), now_ms=T0)
    settled(store, made.uuid)
    moved = store.update(made.uuid, MappingSettings(), now_ms=T0, function_name="thumb", qualifier="1")
    assert (moved.function_name, moved.qualifier, moved.state) == ("thumb", "1", "Updating")
    settled(store, made.uuid)
    with pytest.raises(MappingConflict) as caught:
        store.update(made.uuid, MappingSettings(), now_ms=T0, function_name="thumb", qualifier="2")
    assert (caught.value.uuid, caught.value.qualifier) == (taken.uuid, "2")
    assert store.get(made.uuid).qualifier == "1"
    # Its own pair is no conflict; no qualifier is the unqualified function.
    assert store.update(made.uuid, MappingSettings(), now_ms=T0, function_name="thumb", qualifier="1").qualifier == "1"
    settled(store, made.uuid)
    assert store.update(made.uuid, MappingSettings(), now_ms=T0, function_name="resize").qualifier == ""
    with pytest.raises(ValueError, match="give both"):
        store.update(made.uuid, MappingSettings(), now_ms=T0, qualifier="1")


def test_delete_marks_deleting_once(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    deleting = store.delete(made.uuid, now_ms=T0 + 5)
    assert (deleting.state, deleting.revision, deleting.modified_ms) == ("Deleting", 2, T0 + 5)
    assert store.get(made.uuid).state == "Deleting"
    with pytest.raises(MappingInUse):
        store.delete(made.uuid, now_ms=T0)
    with pytest.raises(MappingInUse):
        store.update(made.uuid, MappingSettings(), now_ms=T0)


# ------------------------------------------------------------------------------------- the pollers' side


def test_a_lease_is_one_owners_until_it_lapses(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    assert [m.uuid for m in store.claim("a", now_ms=T0, lease_ms=LEASE)] == [made.uuid]
    assert store.claim("b", now_ms=T0 + 1, lease_ms=LEASE) == []
    # Renewing keeps it past the first lease's end.
    assert [m.uuid for m in store.renew("a", now_ms=T0 + LEASE - 1, lease_ms=LEASE)] == [made.uuid]
    assert store.claim("b", now_ms=T0 + LEASE + 1, lease_ms=LEASE) == []
    # a stops renewing: once the lease lapses b takes it, and a's renew finds nothing.
    lapsed = T0 + 2 * LEASE
    assert [m.owner for m in store.claim("b", now_ms=lapsed, lease_ms=LEASE)] == ["b"]
    assert store.renew("a", now_ms=lapsed + 1, lease_ms=LEASE) == []
    assert store.get(made.uuid).owner == "b"


def test_release_hands_a_mapping_over_at_once(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    store.claim("a", now_ms=T0, lease_ms=LEASE)
    store.release("b", [made.uuid])  # not b's to give
    assert store.claim("b", now_ms=T0 + 1, lease_ms=LEASE) == []
    store.release("a", [made.uuid])
    store.release("a", [])
    assert [m.owner for m in store.claim("b", now_ms=T0 + 1, lease_ms=LEASE)] == ["b"]


def test_renew_returns_the_current_settings_and_state(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    settled(store, made.uuid)
    store.update(made.uuid, MappingSettings(batch_size=3), now_ms=T0)
    (held,) = store.renew("a", now_ms=T0 + 1, lease_ms=LEASE)
    assert (held.state, held.settings.batch_size, held.revision) == ("Updating", 3, 2)


def test_settle_applies_only_the_owners_current_revision(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    store.claim("a", now_ms=T0, lease_ms=LEASE)
    assert settle(store, made.uuid, "b", made.revision) == ("Creating", T0)  # not b's lease
    assert settle(store, made.uuid, "a", made.revision, now_ms=T0 + 3) == ("Enabled", T0 + 3)
    # A change after the pollers read revision r: settling r must not settle the newer change.
    store.update(made.uuid, MappingSettings(enabled=False), now_ms=T0 + 4)
    assert settle(store, made.uuid, "a", made.revision, now_ms=T0 + 5) == ("Disabling", T0 + 4)
    assert settle(store, made.uuid, "a", made.revision + 1, now_ms=T0 + 6) == ("Disabled", T0 + 6)
    # Settling what is settled changes nothing.
    assert settle(store, made.uuid, "a", made.revision + 1, now_ms=T0 + 7) == ("Disabled", T0 + 6)


def test_settling_a_deletion_removes_the_mapping_and_a_stale_one_does_not(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    store.claim("a", now_ms=T0, lease_ms=LEASE)
    deleting = store.delete(made.uuid, now_ms=T0 + 1)
    assert settle(store, made.uuid, "a", made.revision) == ("Deleting", T0 + 1)  # the revision before the delete
    assert settle(store, made.uuid, "a", deleting.revision) is None
    with pytest.raises(MappingNotFound):
        store.get(made.uuid)
    assert settle(store, made.uuid, "a", deleting.revision) is None
    # The pair is free again.
    store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)


def test_record_result_is_the_owners_only(store: MappingStore) -> None:
    made = store.create("resize", "", JOBS, MappingSettings(), now_ms=T0)
    store.claim("a", now_ms=T0, lease_ms=LEASE)
    store.record_result(made.uuid, "b", "PROBLEM: not b's")
    assert store.get(made.uuid).last_result == ""
    store.record_result(made.uuid, "a", "OK" + "x" * 300)
    assert store.get(made.uuid).last_result == "OK" + "x" * 126
