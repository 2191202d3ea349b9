"""The durable store of event source mappings: what the API changes, and the leases the pollers hold.

:class:`MappingStore` keeps one row per mapping in the platform's database (table
``event_source_mappings``); every method is one transaction, time is a parameter. Two kinds of callers:

* the API (:mod:`assignment.frontend.api.event_sources`) creates, reads, lists, updates and deletes. A
  change never takes effect by itself: it sets a transitional state (``Creating``, ``Enabling``,
  ``Disabling``, ``Updating``, ``Deleting``) and bumps ``revision``; a second change while one is in
  transition is refused (:class:`MappingInUse`, AWS's ``ResourceInUseException``);
* the pollers (:mod:`assignment.frontend.event_sources.poller`), one set per frontend. Each frontend
  *claims* mappings whose lease has lapsed and *renews* its own; a frontend that dies stops renewing, so
  another claims its mappings once the lease runs out. The owner applies a transition only after its
  pollers run the new revision (or, for ``Disabled`` and deletion, after they stopped), then *settles*
  it: the state the API shows is the state the pollers are in. A lease decides who polls, not safety: two
  pollers on one queue never get the same message within its visibility timeout (the queue's rule).

One source feeds one function (name and qualifier) once: a second mapping of the pair is
:class:`MappingConflict`, naming the existing one.

Example::

    store = MappingStore(journal)
    mapping = store.create("resize", "", "arn:aws:sqs:us-east-1:000000000000:jobs", MappingSettings(), now_ms=now)
    claimed = store.claim("frontend-1", now_ms=now, lease_ms=10_000)      # the pollers of frontend-1
    store.settle(mapping.uuid, "frontend-1", mapping.revision, now_ms=now)  # Creating -> Enabled
"""

from __future__ import annotations

import contextlib
import json
import uuid as uuids
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from journal.store import Journal

__all__ = [
    "BUSY_STATES",
    "Mapping",
    "MappingConflict",
    "MappingError",
    "MappingInUse",
    "MappingNotFound",
    "MappingSettings",
    "MappingStore",
    "event_source_mappings",
]

#: The states of a change the pollers have not applied yet.
BUSY_STATES = frozenset({"Creating", "Enabling", "Disabling", "Updating", "Deleting"})
#: StateTransitionReason of a change a user asked for (AWS's word).
USER_INITIATED = "USER_INITIATED"

_metadata = MetaData()
event_source_mappings = Table(
    "event_source_mappings",
    _metadata,
    Column("uuid", String(36), primary_key=True),
    Column("function_name", String(64), nullable=False),
    Column("qualifier", String(128), nullable=False),
    Column("source_arn", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("state_reason", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("batching_window_s", Integer, nullable=False),
    Column("max_concurrency", Integer, nullable=False),
    Column("response_types", Text, nullable=False),
    Column("filter_criteria", Text, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    Column("last_result", String(128), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("lease_until_ms", BigInteger, nullable=False),
    UniqueConstraint("source_arn", "function_name", "qualifier", name="event_source_mappings_pair"),
)


class MappingError(Exception):
    """A refused mapping operation (data, no prose: the API words it)."""

    def __init__(self, uuid: str) -> None:
        super().__init__(uuid)
        self.uuid = uuid


class MappingNotFound(MappingError):
    """No mapping has this UUID."""


class MappingConflict(MappingError):
    """The source already feeds this function: ``uuid`` is the existing mapping's, ``source_arn``,
    ``function_name`` and ``qualifier`` the pair asked for."""

    def __init__(self, uuid: str, source_arn: str = "", function_name: str = "", qualifier: str = "") -> None:
        super().__init__(uuid)
        self.source_arn = source_arn
        self.function_name = function_name
        self.qualifier = qualifier


class MappingInUse(MappingError):
    """The mapping is in the middle of a change (``state``)."""

    def __init__(self, uuid: str, state: str) -> None:
        super().__init__(uuid)
        self.state = state


@dataclass(frozen=True, slots=True)
class MappingSettings:
    """What a user sets on a mapping (checked by the API before they get here)."""

    batch_size: int = 10
    batching_window_s: int = 0
    #: ScalingConfig.MaximumConcurrency; ``None`` when not set.
    max_concurrency: int | None = None
    #: FunctionResponseTypes (``ReportBatchItemFailures``).
    response_types: tuple[str, ...] = ()
    #: The FilterCriteria document, as JSON text (``""``: none).
    filter_criteria: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Mapping:
    """A stored mapping."""

    uuid: str
    function_name: str
    #: The function's qualifier (``""``: unqualified, i.e. ``$LATEST``).
    qualifier: str
    source_arn: str
    state: str
    state_reason: str
    settings: MappingSettings
    revision: int
    created_ms: int
    modified_ms: int
    #: LastProcessingResult (``""`` until a batch ran).
    last_result: str
    owner: str = field(default="", compare=False)
    lease_until_ms: int = field(default=0, compare=False)


def _mapping(row: Row[Any]) -> Mapping:
    settings = MappingSettings(
        batch_size=int(row.batch_size),
        batching_window_s=int(row.batching_window_s),
        max_concurrency=int(row.max_concurrency) or None,
        response_types=tuple(json.loads(row.response_types)),
        filter_criteria=str(row.filter_criteria),
        enabled=bool(row.enabled),
    )
    return Mapping(
        uuid=str(row.uuid),
        function_name=str(row.function_name),
        qualifier=str(row.qualifier),
        source_arn=str(row.source_arn),
        state=str(row.state),
        state_reason=str(row.state_reason),
        settings=settings,
        revision=int(row.revision),
        created_ms=int(row.created_ms),
        modified_ms=int(row.modified_ms),
        last_result=str(row.last_result),
        owner=str(row.owner),
        lease_until_ms=int(row.lease_until_ms),
    )


def _settings_columns(settings: MappingSettings) -> dict[str, object]:
    return {
        "enabled": settings.enabled,
        "batch_size": settings.batch_size,
        "batching_window_s": settings.batching_window_s,
        "max_concurrency": settings.max_concurrency or 0,
        "response_types": json.dumps(list(settings.response_types)),
        "filter_criteria": settings.filter_criteria,
    }


class MappingStore:
    """Event source mappings on a journal's database; thread-safe (one transaction per call)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._postgres = journal.backend == "postgresql"

    def _writing(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction (SQLite ``BEGIN IMMEDIATE``, this process's writers in turn)."""
        return self._journal.writing()

    @staticmethod
    def _row(conn: Connection, uuid: str, *, lock: bool = False) -> Mapping:
        stmt = select(event_source_mappings).where(event_source_mappings.c.uuid == uuid)
        if lock:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise MappingNotFound(uuid)
        return _mapping(row)

    @staticmethod
    def _conflict(
        conn: Connection, source_arn: str, function_name: str, qualifier: str, *, other_than: str = ""
    ) -> MappingConflict | None:
        """The conflict of a mapping of this pair other than ``other_than``, if one exists."""
        c = event_source_mappings.c
        existing = conn.execute(
            select(c.uuid).where(
                c.source_arn == source_arn,
                c.function_name == function_name,
                c.qualifier == qualifier,
                c.uuid != other_than,
            )
        ).scalar()
        return None if existing is None else MappingConflict(str(existing), source_arn, function_name, qualifier)

    # --------------------------------------------------------------------------------------- the API

    def create(
        self, function_name: str, qualifier: str, source_arn: str, settings: MappingSettings, *, now_ms: int
    ) -> Mapping:
        """A new mapping in state ``Creating`` (its pollers start it); :class:`MappingConflict` when the
        source already feeds the function."""
        new_uuid = str(uuids.uuid4())
        values = {
            "uuid": new_uuid,
            "function_name": function_name,
            "qualifier": qualifier,
            "source_arn": source_arn,
            "state": "Creating",
            "state_reason": USER_INITIATED,
            **_settings_columns(settings),
            "revision": 1,
            "created_ms": now_ms,
            "modified_ms": now_ms,
            "last_result": "",
            "owner": "",
            "lease_until_ms": 0,
        }
        try:
            with self._writing() as conn:
                conn.execute(insert(event_source_mappings).values(**values))
                return self._row(conn, new_uuid)
        except IntegrityError:
            with self._journal.reader.connect() as conn:
                conflict = self._conflict(conn, source_arn, function_name, qualifier)
            if conflict is None:
                raise  # not the pair's constraint (a UUID collision): let it be seen
            raise conflict from None

    def get(self, uuid: str) -> Mapping:
        """The mapping; :class:`MappingNotFound` when there is none."""
        with self._journal.reader.connect() as conn:
            return self._row(conn, uuid)

    def page(
        self,
        *,
        function_name: str | None = None,
        qualifier: str | None = None,
        source_arn: str | None = None,
        marker: str | None = None,
        limit: int = 100,
    ) -> tuple[list[Mapping], str | None]:
        """Mappings by UUID, optionally of one function (and qualifier) and one source, after ``marker``;
        a page of ``limit`` and the marker of the next (``None`` at the end)."""
        c = event_source_mappings.c
        stmt = select(event_source_mappings)
        if function_name is not None:
            stmt = stmt.where(c.function_name == function_name)
        if qualifier is not None:
            stmt = stmt.where(c.qualifier == qualifier)
        if source_arn is not None:
            stmt = stmt.where(c.source_arn == source_arn)
        if marker is not None:
            stmt = stmt.where(c.uuid > marker)
        with self._journal.reader.connect() as conn:
            rows = [_mapping(row) for row in conn.execute(stmt.order_by(c.uuid).limit(limit + 1))]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, rows[-1].uuid if more else None

    def update(
        self,
        uuid: str,
        settings: MappingSettings,
        *,
        now_ms: int,
        function_name: str | None = None,
        qualifier: str | None = None,
    ) -> Mapping:
        """New settings (the whole set) and, when ``function_name`` is given, a new function (``qualifier``
        ``None`` or ``""``: unqualified): ``Enabling``/``Disabling`` when ``enabled`` changes, else
        ``Updating``. :class:`MappingInUse` while another change is in transition; :class:`MappingConflict`
        when the source already feeds the new function through another mapping."""
        if function_name is None and qualifier is not None:
            raise ValueError("a qualifier names a version of function_name: give both")
        try:
            with self._writing() as conn:
                current = self._row(conn, uuid, lock=self._postgres)
                if current.state in BUSY_STATES:
                    raise MappingInUse(uuid, current.state)
                target = (current.function_name, current.qualifier)
                if function_name is not None:
                    target = (function_name, qualifier or "")
                conflict = self._conflict(conn, current.source_arn, *target, other_than=uuid)
                if conflict is not None:
                    raise conflict
                state = "Updating"
                if settings.enabled != current.settings.enabled:
                    state = "Enabling" if settings.enabled else "Disabling"
                conn.execute(
                    update(event_source_mappings)
                    .where(event_source_mappings.c.uuid == uuid)
                    .values(
                        function_name=target[0],
                        qualifier=target[1],
                        state=state,
                        state_reason=USER_INITIATED,
                        revision=current.revision + 1,
                        modified_ms=now_ms,
                        **_settings_columns(settings),
                    )
                )
                return self._row(conn, uuid)
        except IntegrityError:
            # Another transaction moved a mapping onto the same pair between the check and the write.
            with self._journal.reader.connect() as conn:
                current = self._row(conn, uuid)
                conflict = self._conflict(conn, current.source_arn, *target, other_than=uuid)
            if conflict is None:
                raise
            raise conflict from None

    def delete(self, uuid: str, *, now_ms: int) -> Mapping:
        """Mark the mapping ``Deleting`` (its pollers stop, then remove it); :class:`MappingInUse` when it
        is already being deleted."""
        with self._writing() as conn:
            current = self._row(conn, uuid, lock=self._postgres)
            if current.state == "Deleting":
                raise MappingInUse(uuid, current.state)
            conn.execute(
                update(event_source_mappings)
                .where(event_source_mappings.c.uuid == uuid)
                .values(state="Deleting", state_reason=USER_INITIATED, revision=current.revision + 1,
                        modified_ms=now_ms)
            )  # fmt: skip
            return replace(current, state="Deleting", revision=current.revision + 1, modified_ms=now_ms)

    # ----------------------------------------------------------------------------------- the pollers

    def claim(self, owner: str, *, now_ms: int, lease_ms: int, limit: int = 64) -> list[Mapping]:
        """Take up to ``limit`` mappings nobody holds (their lease lapsed) for ``owner``, until
        ``now_ms + lease_ms``; the mappings taken."""
        c = event_source_mappings.c
        free = c.lease_until_ms <= now_ms
        with self._writing() as conn:
            stmt = select(c.uuid).where(free).order_by(c.lease_until_ms, c.uuid).limit(limit)
            if self._postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            chosen = [str(u) for u in conn.execute(stmt).scalars()]
            if not chosen:
                return []
            conn.execute(
                update(event_source_mappings)
                .where(c.uuid.in_(chosen), free)
                .values(owner=owner, lease_until_ms=now_ms + lease_ms)
            )
            rows = conn.execute(
                select(event_source_mappings).where(c.uuid.in_(chosen), c.owner == owner).order_by(c.uuid)
            )
            return [_mapping(row) for row in rows]

    def renew(self, owner: str, *, now_ms: int, lease_ms: int) -> list[Mapping]:
        """Extend every lease ``owner`` still holds (not lapsed) to ``now_ms + lease_ms``; those mappings,
        with their current settings and state."""
        c = event_source_mappings.c
        held = and_(c.owner == owner, c.lease_until_ms > now_ms)
        with self._writing() as conn:
            conn.execute(update(event_source_mappings).where(held).values(lease_until_ms=now_ms + lease_ms))
            rows = conn.execute(select(event_source_mappings).where(c.owner == owner, c.lease_until_ms > now_ms))
            return [_mapping(row) for row in rows]

    def release(self, owner: str, uuids_: Sequence[str]) -> None:
        """Give up ``owner``'s leases of ``uuids_`` now (a frontend stopping hands over at once)."""
        if not uuids_:
            return
        c = event_source_mappings.c
        with self._writing() as conn:
            conn.execute(
                update(event_source_mappings).where(c.owner == owner, c.uuid.in_(list(uuids_))).values(lease_until_ms=0)
            )

    def settle(self, uuid: str, owner: str, revision: int, *, now_ms: int) -> Mapping | None:
        """Finish the transition of ``revision``, which ``owner``'s pollers now run (or, for ``Deleting``,
        stopped running): the state becomes ``Enabled``/``Disabled``, or the row is removed. Nothing when
        the lease or the revision moved on meanwhile. The mapping afterwards (``None`` when removed)."""
        c = event_source_mappings.c
        with self._writing() as conn:
            try:
                current = self._row(conn, uuid, lock=self._postgres)
            except MappingNotFound:
                return None
            if current.owner != owner or current.revision != revision or current.state not in BUSY_STATES:
                return current
            if current.state == "Deleting":
                conn.execute(delete(event_source_mappings).where(c.uuid == uuid))
                return None
            state = "Enabled" if current.settings.enabled else "Disabled"
            conn.execute(update(event_source_mappings).where(c.uuid == uuid).values(state=state, modified_ms=now_ms))
            return replace(current, state=state, modified_ms=now_ms)

    def record_result(self, uuid: str, owner: str, result: str) -> None:
        """Set LastProcessingResult, if ``owner`` still holds the mapping."""
        c = event_source_mappings.c
        with self._writing() as conn:
            conn.execute(
                update(event_source_mappings)
                .where(c.uuid == uuid, c.owner == owner, c.last_result != result)
                .values(last_result=result[:128])
            )
