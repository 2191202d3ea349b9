"""Fixtures shared by the whole suite: real servers from ``tests/harness``."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.harness.lambda_clients import close_all
from tests.harness.postgres import PostgresServer, postgres_server

_PG_KEY = pytest.StashKey[PostgresServer]()


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (``LEASEHOLD_TEST_POSTGRES_URL`` or a temporary one).

    Raises when PostgreSQL cannot be had: tests that need it fail, they never skip.
    """
    with postgres_server() as server:
        request.config.stash[_PG_KEY] = server
        yield server


@pytest.fixture(scope="module", autouse=True)
def _close_lambda_clients() -> Iterator[None]:
    """Close the module's boto3 clients (see ``tests/harness/lambda_clients.py``) after its last test."""
    yield
    close_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the PostgreSQL server log to the report of a failed test that used the server."""
    report = yield
    server = item.config.stash.get(_PG_KEY, None)
    if report.failed and server is not None and "postgres" in getattr(item, "fixturenames", ()):
        report.sections.append(("postgresql log (tail)", server.log_tail()))
    return report
