"""Fixtures for the worker tests: one shared agent process, and fresh ones for lifecycle tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.workers.harness import AgentProcess, start_agent
from workers.sandbox import unmount


def _unmount_leftovers(root: Path) -> None:
    """Sandboxes of an agent a test SIGKILLed keep their tmpfs mounted (a restarted agent would clean
    them up); left there, a later pytest session cannot delete the old temporary folder."""
    if os.geteuid() == 0:
        for tmp in root.glob("**/sandboxes/*/tmp"):
            unmount(tmp)


@pytest.fixture(scope="session")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """A worker agent shared by the tests of the session (each test uses its own sandbox ids)."""
    process = start_agent(tmp_path_factory.mktemp("shared") / "data", 16384)
    yield process
    process.stop()


@pytest.fixture
def new_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """A factory of agents private to the test; stopped at its end."""
    started: list[AgentProcess] = []

    def make(memory_mb: int = 8192, *extra: str, data_dir: Path | None = None) -> AgentProcess:
        process = start_agent(data_dir or tmp_path / f"agent{len(started)}", memory_mb, *extra)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()
    _unmount_leftovers(tmp_path)
