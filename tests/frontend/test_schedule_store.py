"""The schedule store on SQLite and PostgreSQL: next occurrences on create and update, the scheduler's lease,
and the firing commit's exactly-once rule (only the lease holder writes; an occurrence is queued once even
when the same read is committed twice or by racing threads; a schedule changed since it was read is left
alone), ActionAfterCompletion, dead letters in the firing's transaction, and the tables against the
migration."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from assignment.frontend.event_store import EventStore, NewEvent, event_queue
from assignment.frontend.queues import NewMessage, QueueStore
from assignment.frontend.schedules.model import ScheduleSpec, Target, fire_time
from assignment.frontend.schedules.store import (
    DeadLetterSend,
    Firing,
    LeaseLost,
    ScheduleConflict,
    ScheduleNotFound,
    ScheduleStore,
    scheduler_lease,
    schedules,
)
from journal.store import Journal
from tests.harness.migrations import assert_tables_match_migrations, downgrade_then_upgrade

T0 = 1_900_000_000_000  # 2030-03-17T17:46:40Z
MINUTE = 60_000
LEASE = 10_000
ACCOUNT = "000000000000"
TARGET = Target("arn:aws:lambda:us-east-1:000000000000:function:f", "arn:aws:iam::000000000000:role/r")


@pytest.fixture
def store(journal: Journal) -> ScheduleStore:
    return ScheduleStore(journal, events=EventStore(journal), queues=QueueStore(journal))


def _spec(name: str = "s", expression: str = "rate(5 minutes)", **extra: object) -> ScheduleSpec:
    return ScheduleSpec("default", name, expression, TARGET, **extra)  # type: ignore[arg-type]


def _firing(store: ScheduleStore, name: str, *, now_ms: int) -> Firing:
    schedule = store.get("default", name)
    event = NewEvent("f", "$LATEST", b"{}", f"{name}-{schedule.next_ms}", now_ms)
    return Firing(schedule, event=event)


def _events(journal: Journal) -> int:
    with journal.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(event_queue)).scalar_one())


def test_create_counts_the_first_occurrence_from_the_creation(store: ScheduleStore) -> None:
    rate = store.create(_spec("rate"), now_ms=T0)
    assert (rate.next_ms, rate.fire_ms, rate.created_ms, rate.modified_ms) == (T0, T0, T0, T0)  # at once
    started = store.create(_spec("started", start_ms=T0 + 7 * MINUTE), now_ms=T0)
    assert started.next_ms == T0 + 7 * MINUTE
    cron = store.create(_spec("cron", "cron(0 18 * * ? *)"), now_ms=T0)
    assert cron.next_ms == T0 + 13 * MINUTE + 20_000  # 18:00:00 that day
    ended = store.create(_spec("ended", start_ms=T0 + 10 * MINUTE, end_ms=T0 + 5 * MINUTE), now_ms=T0)
    assert ended.next_ms is None
    flexible = store.create(_spec("flex", flex_mode="FLEXIBLE", flex_window_min=10), now_ms=T0)
    assert flexible.fire_ms == fire_time(flexible.spec, created_ms=T0, occurrence_ms=T0)
    assert flexible.next_ms is not None
    assert flexible.fire_ms is not None
    assert T0 <= flexible.fire_ms < T0 + 10 * MINUTE


def test_a_name_is_taken_once_unless_the_create_is_retried_with_its_token(store: ScheduleStore) -> None:
    store.create(_spec(client_token="t1"), now_ms=T0)
    assert store.create(_spec(client_token="t1"), now_ms=T0 + 5).created_ms == T0
    with pytest.raises(ScheduleConflict):
        store.create(_spec(client_token="t2"), now_ms=T0)
    with pytest.raises(ScheduleConflict):
        store.create(_spec(), now_ms=T0)


def test_update_replaces_and_counts_again_from_now(store: ScheduleStore) -> None:
    store.create(_spec(description="first"), now_ms=T0)
    updated = store.update(_spec(expression="rate(1 hour)"), now_ms=T0 + 90 * MINUTE)
    assert updated.spec.description == ""
    assert updated.created_ms == T0
    assert updated.modified_ms == T0 + 90 * MINUTE
    assert updated.next_ms == T0 + 120 * MINUTE  # the cadence still counts from the creation
    with pytest.raises(ScheduleNotFound):
        store.update(_spec("ghost"), now_ms=T0)
    store.delete("default", "s")
    with pytest.raises(ScheduleNotFound):
        store.delete("default", "s")


def test_the_lease_has_one_holder_until_it_lapses_or_is_released(store: ScheduleStore) -> None:
    assert store.hold_lease("a", now_ms=T0, lease_ms=LEASE)
    assert not store.hold_lease("b", now_ms=T0 + 1, lease_ms=LEASE)
    assert store.lease_holder(now_ms=T0 + 1) == "a"
    assert store.hold_lease("a", now_ms=T0 + 5_000, lease_ms=LEASE)  # renewed to T0 + 15 s
    assert not store.hold_lease("b", now_ms=T0 + 14_999, lease_ms=LEASE)
    assert store.hold_lease("b", now_ms=T0 + 15_000, lease_ms=LEASE)
    assert not store.hold_lease("a", now_ms=T0 + 15_001, lease_ms=LEASE)
    store.release_lease("b")
    assert store.lease_holder(now_ms=T0 + 15_002) is None
    assert store.hold_lease("a", now_ms=T0 + 15_002, lease_ms=LEASE)


def test_only_the_lease_holder_fires_and_a_deposed_one_writes_nothing(store: ScheduleStore, journal: Journal) -> None:
    store.create(_spec(), now_ms=T0)
    assert store.hold_lease("a", now_ms=T0, lease_ms=LEASE)
    firing = _firing(store, "s", now_ms=T0)
    with pytest.raises(LeaseLost):
        store.commit("b", [firing], now_ms=T0, lease_ms=LEASE)
    # a's lease lapsed and b took it: a's commit of what it read is refused whole.
    assert store.hold_lease("b", now_ms=T0 + LEASE, lease_ms=LEASE)
    with pytest.raises(LeaseLost):
        store.commit("a", [firing], now_ms=T0 + LEASE, lease_ms=LEASE)
    assert _events(journal) == 0
    assert store.get("default", "s").next_ms == T0
    assert store.commit("b", [firing], now_ms=T0 + LEASE, lease_ms=LEASE) == [True]
    assert _events(journal) == 1
    assert store.get("default", "s").next_ms == T0 + 5 * MINUTE


def test_an_occurrence_is_queued_once_when_its_read_is_committed_twice(store: ScheduleStore, journal: Journal) -> None:
    store.create(_spec(), now_ms=T0)
    assert store.hold_lease("a", now_ms=T0, lease_ms=LEASE)
    firing = _firing(store, "s", now_ms=T0)
    assert store.commit("a", [firing], now_ms=T0, lease_ms=LEASE) == [True]
    assert store.commit("a", [firing], now_ms=T0 + 1, lease_ms=LEASE) == [False]
    assert _events(journal) == 1


def test_racing_commits_of_one_occurrence_queue_it_once(store: ScheduleStore, journal: Journal) -> None:
    for n in range(20):
        store.create(_spec(f"s{n}"), now_ms=T0)
    assert store.hold_lease("a", now_ms=T0, lease_ms=LEASE)
    firings = [_firing(store, f"s{n}", now_ms=T0) for n in range(20)]
    results: list[list[bool]] = []
    barrier = threading.Barrier(4)

    def commit() -> None:
        barrier.wait()
        results.append(store.commit("a", firings, now_ms=T0, lease_ms=LEASE))

    threads = [threading.Thread(target=commit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [sum(column) for column in zip(*results, strict=True)] == [1] * 20
    assert _events(journal) == 20


def test_a_schedule_changed_since_it_was_read_is_not_fired(store: ScheduleStore, journal: Journal) -> None:
    store.create(_spec(), now_ms=T0)
    assert store.hold_lease("a", now_ms=T0, lease_ms=LEASE)
    stale = _firing(store, "s", now_ms=T0)
    store.update(_spec(expression="rate(1 hour)"), now_ms=T0 + 1)
    assert store.commit("a", [stale], now_ms=T0 + 2, lease_ms=LEASE) == [False]
    store.delete("default", "s")
    store.create(_spec(), now_ms=T0 + 3)  # the same name again: a new schedule, not the one read
    assert store.commit("a", [stale], now_ms=T0 + 4, lease_ms=LEASE) == [False]
    assert _events(journal) == 0


def test_due_and_next_fire_skip_disabled_and_finished_schedules(store: ScheduleStore) -> None:
    store.create(_spec("later", start_ms=T0 + 3 * MINUTE), now_ms=T0)
    store.create(_spec("off", state="DISABLED"), now_ms=T0)
    store.create(_spec("now"), now_ms=T0)
    assert [s.spec.name for s in store.due(now_ms=T0)] == ["now"]
    assert store.next_fire_ms() == T0
    assert store.hold_lease("a", now_ms=T0, lease_ms=LEASE)
    store.commit("a", [_firing(store, "now", now_ms=T0)], now_ms=T0, lease_ms=LEASE)
    assert store.due(now_ms=T0) == []
    assert store.next_fire_ms() == T0 + 3 * MINUTE


def test_after_its_last_occurrence_a_schedule_is_kept_or_deleted(store: ScheduleStore) -> None:
    at = "at(2030-03-17T17:50:00)"
    store.create(_spec("kept", at), now_ms=T0)
    store.create(_spec("gone", at, action_after_completion="DELETE"), now_ms=T0)
    store.create(_spec("ending", end_ms=T0 + 4 * MINUTE), now_ms=T0)
    now = T0 + 4 * MINUTE
    assert store.hold_lease("a", now_ms=now, lease_ms=LEASE)
    firings = [_firing(store, name, now_ms=now) for name in ("kept", "gone", "ending")]
    assert store.commit("a", firings, now_ms=now, lease_ms=LEASE) == [True, True, True]
    assert store.get("default", "kept").next_ms is None
    with pytest.raises(ScheduleNotFound):
        store.get("default", "gone")
    assert store.get("default", "ending").next_ms is None  # the next one, at +5 min, is after EndDate


def test_a_dead_letter_is_sent_in_the_firing_and_a_gone_queue_loses_only_it(
    store: ScheduleStore, journal: Journal
) -> None:
    queues = QueueStore(journal)
    queues.create_queue(ACCOUNT, "dlq", now_ms=T0)
    store.create(_spec("a"), now_ms=T0)
    store.create(_spec("b"), now_ms=T0)
    assert store.hold_lease("x", now_ms=T0, lease_ms=LEASE)
    letter = Firing(store.get("default", "a"), dead_letter=DeadLetterSend(ACCOUNT, "dlq", NewMessage("{}")))
    lost = Firing(store.get("default", "b"), dead_letter=DeadLetterSend(ACCOUNT, "missing", NewMessage("{}")))
    assert store.commit("x", [letter, lost], now_ms=T0, lease_ms=LEASE) == [True, True]
    counts = queues.get_queue_attributes(
        ACCOUNT, "dlq", ["ApproximateNumberOfMessages"], queue_arn=f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq", now_ms=T0
    )
    assert counts["ApproximateNumberOfMessages"] == "1"
    assert store.get("default", "b").next_ms == T0 + 5 * MINUTE


def test_page_orders_by_name_and_filters(store: ScheduleStore) -> None:
    for name in ("b", "a", "ab", "c"):
        store.create(_spec(name, state="DISABLED" if name == "c" else "ENABLED"), now_ms=T0)
    page, more = store.page(group=None, prefix="", state=None, limit=2)
    assert [s.spec.name for s in page] == ["a", "ab"]
    assert more == "default/ab"
    page, more = store.page(group=None, prefix="", state=None, limit=2, after=more)
    assert ([s.spec.name for s in page], more) == (["b", "c"], None)
    page, _ = store.page(group="default", prefix="a", state="ENABLED", limit=10)
    assert [s.spec.name for s in page] == ["a", "ab"]
    assert store.page(group=None, prefix="%", state=None, limit=10)[0] == []  # no LIKE wildcards


def test_the_tables_match_the_migration(journal: Journal) -> None:
    assert_tables_match_migrations(journal, (schedules, scheduler_lease))


def test_the_migration_goes_down_and_up_again(journal: Journal) -> None:
    downgrade_then_upgrade(journal, "0010", {"schedules", "scheduler_lease"})
    store = ScheduleStore(journal, events=EventStore(journal))
    assert store.create(_spec(), now_ms=T0).next_ms == T0
