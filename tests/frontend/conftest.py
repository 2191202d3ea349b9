"""Fixtures for frontend tests: one embedded platform per module, boto3 clients, code packages, and an
empty database on SQLite and on PostgreSQL for the stores' tests (``url``, ``journal``), and ``leasehold``, which
runs one CLI command in-process against the platform."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mypy_boto3_lambda import LambdaClient

from assignment.commands import register
from assignment.dev import DevPlatform
from journal.store import Journal
from tests.frontend.harness import LoopThread, lambda_client, running_platform
from tests.harness.postgres import PostgresServer, schema_name

#: ``leasehold(*argv)``: the exit code, stdout and stderr of one in-process ``leasehold`` command.
Run = Callable[..., tuple[int, str, str]]

HANDLERS = """
import json, os, time

SANDBOX = os.urandom(8).hex()  # tells sandboxes apart (pids repeat across pid namespaces)

def echo(event, context):
    print("echo", json.dumps(event))
    return {"event": event, "version": context.function_version, "env": os.environ.get("GREETING", "")}

def fail(event, context):
    print("about to fail")
    raise ValueError("boom: " + str(event.get("why", "")))

def handled(event, context):
    return {"errorMessage": "handled", "errorType": "Handled"}

def slow(event, context):
    time.sleep(float(event.get("sleep", 1.0)))
    return {"slept": event.get("sleep", 1.0), "sandbox": SANDBOX}

def ctx(event, context):
    return {"client_context": context.client_context, "arn": context.invoked_function_arn}

def noop(event, context):
    return None
"""


@pytest.fixture(scope="module")
def platform_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevPlatform, LoopThread]]:
    """The embedded platform (real worker, real assignment server, the frontend) for a module."""
    with running_platform(tmp_path_factory.mktemp("platform"), event_retry_intervals_s=(0.2,)) as running:
        yield running


@pytest.fixture(scope="module")
def platform(platform_loop: tuple[DevPlatform, LoopThread]) -> DevPlatform:
    """The running platform."""
    return platform_loop[0]


@pytest.fixture(scope="module")
def endpoint(platform: DevPlatform) -> str:
    """The frontend's HTTP endpoint."""
    return platform.http_endpoint


@pytest.fixture(scope="module")
def lam(endpoint: str) -> LambdaClient:
    """A boto3 Lambda client for the platform."""
    return lambda_client(endpoint)


@pytest.fixture
def database(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL schema of the test's own."""
    schema = schema_name("fc_", request.node.name)
    url = postgres.create_schema(schema)
    yield url
    postgres.drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a PostgreSQL schema of the test's own (named after its module,
    so two modules' tests of one name never share one)."""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / (module + '.db')}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = schema_name(module[:12] + "_", request.node.name)
    yield server.create_schema(schema)
    server.drop_schema(schema)


@pytest.fixture
def journal(url: str) -> Iterator[Journal]:
    """The platform's journal (migrated) on ``url``."""
    with Journal.open(url) as journal:
        yield journal


@pytest.fixture
def leasehold(platform: DevPlatform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``leasehold ARGS... --endpoint <platform>`` in-process with the platform's admin key."""
    assert platform.key is not None
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", platform.key.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", platform.key.secret)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/leasehold-tests/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/leasehold-tests/credentials")

    def run(*argv: str) -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="leasehold")
        register(parser.add_subparsers(required=True))
        capsys.readouterr()
        try:
            args = parser.parse_args([*argv, "--endpoint", platform.http_endpoint])
            code = int(args.func(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
