"""The durable store of schedules, and the transaction that fires them.

:class:`ScheduleStore` keeps one row per schedule in the platform's database (table ``schedules``, created by
migration ``0011``); every method is one transaction and time is a parameter. Two kinds of callers:

* the Scheduler API (:mod:`assignment.frontend.api.scheduler`) creates, reads, lists, replaces and deletes.
  Each write computes the schedule's next occurrence from the time of the write (:mod:`.model`);
* the scheduler (:mod:`.runner`), in the frontend that holds the one ``scheduler_lease`` row. It reads the
  due schedules and :meth:`ScheduleStore.commit` fires them: in one transaction it checks that its lease
  still holds, queues each occurrence's asynchronous invocation (the event queue's row, with a request id
  derived from the schedule and the occurrence) or sends its dead-letter message, and moves the schedule
  to its next occurrence *only where the row still has the occurrence it read*. So an occurrence is queued
  exactly once: a scheduler that lost its lease writes nothing, two that raced cannot both advance the
  row, and one that died before its commit left the occurrence due for the next holder, which fires it
  late, once.

Example::

    store = ScheduleStore(journal, events=queue.store, queues=queues)
    schedule = store.create(spec, now_ms=now)
    if store.hold_lease("frontend-1", now_ms=now, lease_ms=10_000):
        due = store.due(now_ms=now)
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from assignment.frontend.event_store import EventStore, NewEvent
from assignment.frontend.queues import NewMessage, QueueError, QueueStore
from assignment.frontend.schedules.model import Schedule, ScheduleSpec, Target, fire_time, first_occurrence, following
from journal.sql import dialect_insert
from journal.store import Journal

__all__ = [
    "DeadLetterSend",
    "Firing",
    "LeaseLost",
    "ScheduleConflict",
    "ScheduleNotFound",
    "ScheduleStore",
    "metadata",
    "scheduler_lease",
    "schedules",
]

metadata = MetaData()
schedules = Table(
    "schedules",
    metadata,
    Column("group_name", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("expression", String(256), nullable=False),
    Column("timezone", String(50), nullable=False),
    Column("start_ms", BigInteger, nullable=True),
    Column("end_ms", BigInteger, nullable=True),
    Column("state", String(8), nullable=False),
    Column("description", Text, nullable=False),
    Column("flex_mode", String(8), nullable=False),
    Column("flex_window_min", Integer, nullable=True),
    Column("action_after_completion", String(8), nullable=False),
    Column("target", Text, nullable=False),
    Column("client_token", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    Column("next_ms", BigInteger, nullable=True),
    Column("fire_ms", BigInteger, nullable=True),
    PrimaryKeyConstraint("group_name", "name", name="schedules_pk"),
    Index("schedules_due", "state", "fire_ms"),
)
scheduler_lease = Table(
    "scheduler_lease",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
_LEASE_ID = "scheduler"
log = logging.getLogger("leasehold.schedules")


class ScheduleNotFound(LookupError):
    """No schedule of that group and name."""

    def __init__(self, group: str, name: str) -> None:
        super().__init__(f"Schedule {name} does not exist.")
        self.group = group
        self.name = name


class ScheduleConflict(Exception):
    """A schedule of that group and name exists already."""

    def __init__(self, group: str, name: str) -> None:
        super().__init__(f"Schedule {name} already exists.")
        self.group = group
        self.name = name


class LeaseLost(Exception):
    """The scheduler's lease is no longer this holder's: it must not fire."""


@dataclass(frozen=True, slots=True)
class DeadLetterSend:
    """A firing that could not be delivered, for the schedule's dead-letter queue."""

    account_id: str
    queue: str
    message: NewMessage


@dataclass(frozen=True, slots=True)
class Firing:
    """What the scheduler decided for one due schedule's occurrence: queue ``event``, or dead-letter it
    (``dead_letter``; ``None`` with no event either: dropped, there is no queue to send it to)."""

    schedule: Schedule
    event: NewEvent | None = None
    dead_letter: DeadLetterSend | None = None


def _target_json(target: Target) -> str:
    return json.dumps(
        {
            "arn": target.arn,
            "role_arn": target.role_arn,
            "input": target.input,
            "max_event_age_s": target.max_event_age_s,
            "max_retry_attempts": target.max_retry_attempts,
            "dead_letter_arn": target.dead_letter_arn,
        },
        separators=(",", ":"),
    )


def _schedule(row: Row[Any]) -> Schedule:
    target = json.loads(row.target)
    spec = ScheduleSpec(
        group=row.group_name,
        name=row.name,
        expression=row.expression,
        target=Target(**target),
        timezone=row.timezone,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
        state=row.state,
        description=row.description,
        flex_mode=row.flex_mode,
        flex_window_min=row.flex_window_min,
        action_after_completion=row.action_after_completion,
        client_token=row.client_token,
    )
    return Schedule(spec, row.created_ms, row.modified_ms, row.next_ms, row.fire_ms)


def _columns(spec: ScheduleSpec, *, created_ms: int, now_ms: int) -> dict[str, object]:
    """The row of ``spec`` written at ``now_ms``: its next occurrence counted from then."""
    occurrence = first_occurrence(spec, created_ms=created_ms, now_ms=now_ms)
    fire = None if occurrence is None else fire_time(spec, created_ms=created_ms, occurrence_ms=occurrence)
    return {
        "group_name": spec.group,
        "name": spec.name,
        "expression": spec.expression,
        "timezone": spec.timezone,
        "start_ms": spec.start_ms,
        "end_ms": spec.end_ms,
        "state": spec.state,
        "description": spec.description,
        "flex_mode": spec.flex_mode,
        "flex_window_min": spec.flex_window_min,
        "action_after_completion": spec.action_after_completion,
        "target": _target_json(spec.target),
        "client_token": spec.client_token,
        "modified_ms": now_ms,
        "next_ms": occurrence,
        "fire_ms": fire,
    }


class ScheduleStore:
    """Schedules on a journal's database; thread-safe (one transaction per call)."""

    def __init__(self, journal: Journal, *, events: EventStore, queues: QueueStore | None = None) -> None:
        """``events``: the event queue a firing's invocation goes to; ``queues``: the SQS queues of the
        dead-letter queues (without them a firing that cannot be delivered is dropped, and logged)."""
        self._journal = journal
        self._events = events
        self._queues = queues
        self._postgres = journal.backend == "postgresql"

    def _writing(self) -> contextlib.AbstractContextManager[Connection]:
        return self._journal.writing()

    @staticmethod
    def _row(conn: Connection, group: str, name: str) -> Schedule:
        c = schedules.c
        row = conn.execute(select(schedules).where(c.group_name == group, c.name == name)).first()
        if row is None:
            raise ScheduleNotFound(group, name)
        return _schedule(row)

    # --------------------------------------------------------------------------------------- the API

    def create(self, spec: ScheduleSpec, *, now_ms: int) -> Schedule:
        """A new schedule; :class:`ScheduleConflict` when the name is taken, unless by a create with the
        same ClientToken (a retried request), which returns that schedule."""
        values = {**_columns(spec, created_ms=now_ms, now_ms=now_ms), "created_ms": now_ms}
        try:
            with self._writing() as conn:
                conn.execute(insert(schedules).values(**values))
                return self._row(conn, spec.group, spec.name)
        except IntegrityError:
            with self._journal.reader.connect() as conn:
                existing = self._row(conn, spec.group, spec.name)
            if spec.client_token and existing.spec.client_token == spec.client_token:
                return existing
            raise ScheduleConflict(spec.group, spec.name) from None

    def get(self, group: str, name: str) -> Schedule:
        """The schedule; :class:`ScheduleNotFound` when there is none."""
        with self._journal.reader.connect() as conn:
            return self._row(conn, group, name)

    def update(self, spec: ScheduleSpec, *, now_ms: int) -> Schedule:
        """Replace the schedule's every setting with ``spec`` (UpdateSchedule's rule: what is left out takes
        its default); its next occurrence is counted again from ``now_ms``."""
        c = schedules.c
        with self._writing() as conn:
            current = self._row(conn, spec.group, spec.name)
            values = _columns(spec, created_ms=current.created_ms, now_ms=now_ms)
            values["client_token"] = current.spec.client_token  # the create's token stays the create's
            conn.execute(update(schedules).where(c.group_name == spec.group, c.name == spec.name).values(**values))
            return self._row(conn, spec.group, spec.name)

    def delete(self, group: str, name: str) -> None:
        """Delete the schedule; :class:`ScheduleNotFound` when there is none."""
        c = schedules.c
        with self._writing() as conn:
            if conn.execute(delete(schedules).where(c.group_name == group, c.name == name)).rowcount == 0:
                raise ScheduleNotFound(group, name)

    def page(
        self, *, group: str | None, prefix: str, state: str | None, limit: int, after: str = ""
    ) -> tuple[list[Schedule], str | None]:
        """Up to ``limit`` schedules ordered by group and name, after the key ``after`` (``group/name``);
        the page and the key to continue from (``None`` at the end)."""
        c = schedules.c
        key = c.group_name + "/" + c.name
        stmt = select(schedules).where(key > after).order_by(c.group_name, c.name).limit(limit + 1)
        if group is not None:
            stmt = stmt.where(c.group_name == group)
        if prefix:
            stmt = stmt.where(func.substr(c.name, 1, len(prefix)) == prefix)
        if state is not None:
            stmt = stmt.where(c.state == state)
        with self._journal.reader.connect() as conn:
            found = [_schedule(row) for row in conn.execute(stmt)]
        more = len(found) > limit
        found = found[:limit]
        return found, (f"{found[-1].spec.group}/{found[-1].spec.name}" if more else None)

    # --------------------------------------------------------------------------------- the scheduler

    def hold_lease(self, owner: str, *, now_ms: int, lease_ms: int) -> bool:
        """Renew ``owner``'s scheduler lease, or take it when it lapsed; whether ``owner`` holds it now."""
        c = scheduler_lease.c
        until = now_ms + lease_ms
        with self._writing() as conn:
            taken = conn.execute(
                update(scheduler_lease)
                .where(c.id == _LEASE_ID, (c.holder == owner) | (c.expires_ms <= now_ms))
                .values(holder=owner, expires_ms=until)
            ).rowcount
            if taken:
                return True
            # The first holder creates the row; a live lease of another holder keeps it (no error, no log spam).
            first = dialect_insert(conn, scheduler_lease).values(id=_LEASE_ID, holder=owner, expires_ms=until)
            # RETURNING, not rowcount: PostgreSQL's driver reports -1 for an INSERT that did nothing.
            return conn.execute(first.on_conflict_do_nothing().returning(c.id)).first() is not None

    def release_lease(self, owner: str) -> None:
        """Give the lease up now, if ``owner`` holds it (a frontend stopping hands over at once)."""
        c = scheduler_lease.c
        with self._writing() as conn:
            conn.execute(update(scheduler_lease).where(c.id == _LEASE_ID, c.holder == owner).values(expires_ms=0))

    def lease_holder(self, *, now_ms: int) -> str | None:
        """Who holds the scheduler's lease at ``now_ms`` (``None``: nobody)."""
        c = scheduler_lease.c
        with self._journal.reader.connect() as conn:
            row = conn.execute(select(c.holder, c.expires_ms).where(c.id == _LEASE_ID)).first()
        return None if row is None or row.expires_ms <= now_ms else str(row.holder)

    def due(self, *, now_ms: int, limit: int = 100) -> list[Schedule]:
        """Enabled schedules whose occurrence fires at or before ``now_ms``, the earliest first."""
        c = schedules.c
        stmt = (
            select(schedules)
            .where(c.state == "ENABLED", c.fire_ms.is_not(None), c.fire_ms <= now_ms)
            .order_by(c.fire_ms)
            .limit(limit)
        )
        with self._journal.reader.connect() as conn:
            return [_schedule(row) for row in conn.execute(stmt)]

    def next_fire_ms(self) -> int | None:
        """When the earliest enabled schedule fires next (``None``: none will)."""
        c = schedules.c
        with self._journal.reader.connect() as conn:
            value = conn.execute(select(func.min(c.fire_ms)).where(c.state == "ENABLED")).scalar()
        return None if value is None else int(value)

    def commit(self, owner: str, firings: Sequence[Firing], *, now_ms: int, lease_ms: int) -> list[bool]:
        """Fire ``firings`` in one transaction while ``owner`` holds the lease (else :class:`LeaseLost`,
        nothing written); per firing, whether it fired (``False``: its schedule changed since it was read,
        so it is left to be read again)."""
        c = schedules.c
        lease = scheduler_lease.c
        fired: list[bool] = []
        with self._writing() as conn:
            held = conn.execute(
                update(scheduler_lease)
                .where(lease.id == _LEASE_ID, lease.holder == owner, lease.expires_ms > now_ms)
                .values(expires_ms=now_ms + lease_ms)
            ).rowcount
            if not held:
                raise LeaseLost(owner)
            for firing in firings:
                schedule = firing.schedule
                spec = schedule.spec
                assert schedule.next_ms is not None
                occurrence = following(spec, schedule.next_ms)
                row = (c.group_name == spec.group, c.name == spec.name)
                read_as = (c.created_ms == schedule.created_ms, c.modified_ms == schedule.modified_ms)
                if occurrence is None and spec.action_after_completion == "DELETE":
                    moved = conn.execute(delete(schedules).where(*row, *read_as, c.next_ms == schedule.next_ms))
                else:
                    fire = None if occurrence is None else fire_time(
                        spec, created_ms=schedule.created_ms, occurrence_ms=occurrence
                    )  # fmt: skip
                    moved = conn.execute(
                        update(schedules)
                        .where(*row, *read_as, c.next_ms == schedule.next_ms)
                        .values(next_ms=occurrence, fire_ms=fire)
                    )
                if moved.rowcount == 0:
                    fired.append(False)
                    continue
                if firing.event is not None:
                    self._events.insert_in(conn, [firing.event])
                elif firing.dead_letter is not None:
                    self._dead_letter(conn, firing.dead_letter, now_ms)
                fired.append(True)
        return fired

    def _dead_letter(self, conn: Connection, send: DeadLetterSend, now_ms: int) -> None:
        """Send to the dead-letter queue in ``conn``; a queue that refuses (gone since) loses the letter
        alone, not the transaction (the send checks before it writes)."""
        if self._queues is None:
            log.warning("event=schedule_dead_letter_lost queue=%s why=no_queues", send.queue)
            return
        try:
            self._queues.send_message_in(
                conn, send.account_id, send.queue, send.message, sender_id="scheduler", now_ms=now_ms
            )
        except QueueError as exc:
            log.warning("event=schedule_dead_letter_lost queue=%s why=%s", send.queue, exc.code)
