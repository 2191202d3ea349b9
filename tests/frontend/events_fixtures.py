"""Fixtures and fakes for the event queue tests: both database backends and an in-process fake of the
frontend's synchronous invoke path that records every run.

Example (in a test module)::

    from tests.frontend import events_fixtures
    from tests.frontend.events_fixtures import FakeFunctions

    backend = events_fixtures.backend  # the fixtures, by name
    events_url = events_fixtures.events_url
    events_journal = events_fixtures.events_journal

    async def test_x(events_journal: Journal) -> None:
        fake = FakeFunctions()
        ...
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from assignment.frontend.types import EventInvokeConfig, InvokeResult, LambdaError, ResourceNotFoundException
from journal.store import Journal
from tests.harness.postgres import PostgresServer, schema_name

__all__ = ["FakeFunctions", "Run", "backend", "events_journal", "events_url", "wait_for"]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database behind the queue under test."""
    return str(request.param)


@pytest.fixture
def events_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a PostgreSQL schema of the test's own."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = schema_name("ev_", request.node.name)
    url = server.create_schema(schema)
    yield url
    server.drop_schema(schema)


@pytest.fixture
def events_journal(events_url: str) -> Iterator[Journal]:
    """An open journal (so the events tables) on an empty database."""
    with Journal.open(events_url) as journal:
        yield journal


@dataclass(frozen=True, slots=True)
class Run:
    """One call of the fake invoke path."""

    function: str
    qualifier: str
    payload: bytes
    request_id: str
    at: float


Behaviour = Callable[[bytes, int], Awaitable[InvokeResult | LambdaError | None]]


@dataclass
class FakeFunctions:
    """A fake synchronous invoke path: per function a behaviour; records every run, and the most runs of
    one request id seen at the same time (which must never exceed 1).
    """

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    configs: dict[str, EventInvokeConfig] = field(default_factory=dict)
    #: DeadLetterConfig TargetArn by function (none unless set).
    dead_letter_targets: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    max_overlap: int = 0
    hold_s: float = 0.0

    async def invoke(self, function: str, qualifier: str, payload: bytes, request_id: str) -> InvokeResult:
        """The fake sync path: runs the function's behaviour (default: echo)."""
        self.runs.append(Run(function, qualifier, payload, request_id, time.monotonic()))
        self.running[request_id] = self.running.get(request_id, 0) + 1
        self.max_overlap = max(self.max_overlap, self.running[request_id])
        try:
            if self.hold_s:
                await asyncio.sleep(self.hold_s)
            behaviour = self.behaviours.get(function)
            if behaviour is None:
                return InvokeResult(request_id, payload, "$LATEST")
            outcome = await behaviour(payload, self.count(request_id))
            if isinstance(outcome, LambdaError):
                raise outcome
            return outcome if outcome is not None else InvokeResult(request_id, payload, "$LATEST")
        finally:
            self.running[request_id] -= 1

    async def config_of(self, function: str, qualifier: str) -> EventInvokeConfig:
        """The event invoke configuration of a function (defaults unless set; gone functions raise)."""
        if function.startswith("gone"):
            raise ResourceNotFoundException(f"Function not found: {function}")
        return self.configs.get(function, EventInvokeConfig())

    async def dead_letter_of(self, function: str, qualifier: str) -> str:
        """The function's dead-letter queue ARN ("" unless set; gone functions raise)."""
        if function.startswith("gone"):
            raise ResourceNotFoundException(f"Function not found: {function}")
        return self.dead_letter_targets.get(function, "")

    def count(self, request_id: str) -> int:
        """How many times ``request_id`` was run."""
        return sum(1 for run in self.runs if run.request_id == request_id)

    def of(self, function: str) -> list[Run]:
        """The runs of ``function``, in order."""
        return [run for run in self.runs if run.function == function]


def function_error(error_type: str, message: str) -> Behaviour:
    """A behaviour that always fails with an unhandled error."""

    async def behaviour(payload: bytes, _count: int) -> InvokeResult:
        document = {"errorMessage": message, "errorType": error_type, "stackTrace": ["  File x, line 1"]}
        return InvokeResult("", json.dumps(document).encode(), "$LATEST", function_error="Unhandled")

    return behaviour


def raising(error: LambdaError, *, times: int = 1_000_000) -> Behaviour:
    """A behaviour that raises ``error`` for its first ``times`` runs, then echoes."""

    async def behaviour(payload: bytes, count: int) -> LambdaError | None:
        return error if count <= times else None

    return behaviour


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        await asyncio.sleep(0.01)
