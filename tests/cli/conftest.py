"""Fixtures for the people's CLI tests: a fake frontend and a runner that parses like ``leasehold`` does."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from assignment.commands import register
from tests.cli.fake_frontend import FakeFrontend


@dataclass
class Result:
    """Exit code and captured output of one command."""

    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def fake() -> Iterator[FakeFrontend]:
    """A fresh fake frontend per test."""
    with FakeFrontend.start(page_size=2) as server:
        yield server


#: The key the CLI finds in its environment in these tests (the standard chain's first link).
KEY = ("AKIAEXAMPLECLITESTS0", "cli/test/secret/cli/test/secret/cli/test")


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The CLI's credentials: :data:`KEY` in the environment, and no profile files of the machine's."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/leasehold-tests/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/leasehold-tests/credentials")
    return KEY


@pytest.fixture
def cli(fake: FakeFrontend, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``leasehold ARGS... --endpoint <fake>`` in-process, as ``assignment/cli.py`` wires the commands."""

    def run(*argv: str, endpoint: str | None = None) -> Result:
        parser = argparse.ArgumentParser(prog="leasehold")
        register(parser.add_subparsers(required=True))
        capsys.readouterr()
        try:
            args = parser.parse_args([*argv, "--endpoint", endpoint or fake.url])
            code = args.func(args)
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
