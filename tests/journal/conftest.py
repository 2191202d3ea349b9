"""Journal fixtures: every test that takes ``journal_url`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from journal.store import Journal
from tests.harness.postgres import PostgresServer, schema_name


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database behind the journal under test."""
    return str(request.param)


@pytest.fixture
def journal_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty journal database: a SQLite file, or a PostgreSQL schema of the test's own."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = schema_name("t_", request.node.name)
    url = server.create_schema(schema)
    yield url
    server.drop_schema(schema)


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    """An open journal on an empty database."""
    with Journal.open(journal_url) as opened:
        yield opened
