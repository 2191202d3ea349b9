"""Fixtures for the deployment tests: the compose topology as local processes, logs on failure."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.harness.platform import Platform
from tests.harness.postgres import PostgresServer

_PLATFORM_KEY = pytest.StashKey[Platform]()

#: Shorter than the compose defaults so a killed server's partitions move within seconds.
FAST_FAILOVER = {
    "server": ["--session-timeout", "3", "--settle", "1"],
    "worker": ["--zk-session-timeout", "3", "--heartbeat", "1"],
}


@pytest.fixture(scope="module")
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[Platform]:
    """ZooKeeper + PostgreSQL + 3 servers + 2 workers + 1 frontend, as docker-compose.yml runs them; the
    people's CLI (in-process here) finds the frontend's admin key in its environment, as an operator's would."""
    root: Path = tmp_path_factory.mktemp("platform")
    with Platform.start(root, postgres, extra=FAST_FAILOVER) as started, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", started.key[0])
        env.setenv("AWS_SECRET_ACCESS_KEY", started.key[1])
        env.delenv("AWS_PROFILE", raising=False)
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        request.config.stash[_PLATFORM_KEY] = started
        yield started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach every platform log to the report of a failed test that used the platform."""
    report = yield
    started = item.config.stash.get(_PLATFORM_KEY, None)
    if report.failed and started is not None and "platform" in getattr(item, "fixturenames", ()):
        report.sections.append(("platform logs (tail)", started.log_tail()))
    return report
