"""The provisioning loop: reserved concurrency re-asserted at start, provisioned sandboxes topped up.

The registry is real (SQLite); the backend is a recorder, since what is checked is which requests the
frontend makes of the assignment service and when (the end-to-end effect is in ``test_invoke.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from assignment.frontend.aliases import AliasStore
from assignment.frontend.provisioning import Provisioner
from assignment.frontend.registry import FunctionSpec, Registry
from assignment.frontend.types import FunctionConfig, InvokeResult, ServiceException
from journal.store import Journal
from tests.frontend.harness import make_zip
from workers.v1 import worker_pb2

CODE = make_zip({"app.py": "def handler(e, c):\n    return e\n"})


class RecordingBackend:
    """Records set_concurrency and ensure_warm calls; ensure_warm reports ``ready`` sandboxes or fails."""

    def __init__(self) -> None:
        self.reserved: list[tuple[str, int | None]] = []
        self.warm: list[tuple[str, str, int]] = []
        self.ready: int | None = None
        self.fail = False

    async def run(
        self, config: FunctionConfig, payload: bytes, *, request_id: str, client_context: str = ""
    ) -> InvokeResult:
        raise AssertionError("not used")

    async def set_concurrency(self, function: str, reserved: int | None) -> None:
        self.reserved.append((function, reserved))

    async def ensure_warm(self, config: FunctionConfig, count: int) -> tuple[int, int]:
        if self.fail:
            raise ServiceException("no capacity")
        self.warm.append((config.name, config.version, count))
        ready = count if self.ready is None else self.ready
        return ready, ready

    async def routes(self) -> list[dict[str, object]]:
        return []

    async def list_sandboxes(self, address: str) -> worker_pb2.ListSandboxesResponse | None:
        return None

    async def close(self) -> None:
        return None


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry with function ``f`` (published as version 1, reserved 5)."""
    with Journal.open(f"sqlite:///{tmp_path / 'db.sqlite'}") as journal:
        registry = Registry(journal)
        registry.create("f", FunctionSpec(runtime="python3.11", handler="app.handler"), CODE, publish=True)
        registry.set_reserved("f", 5)
        yield registry


async def until(condition: object, timeout_s: float = 10.0) -> None:
    """Poll ``condition()`` until true, with a deadline."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_start_reasserts_reserved_and_tops_up_every_interval(registry: Registry) -> None:
    backend = RecordingBackend()
    registry.set_provisioned("f", "1", 2)
    provisioner = Provisioner(registry, backend, interval_s=0.05)
    await provisioner.start()
    try:
        await until(lambda: len(backend.warm) >= 3)
    finally:
        await provisioner.stop()
    assert backend.reserved == [("f", 5)]
    assert set(backend.warm) == {("f", "1", 2)}
    assert provisioner.status("f", "1") == {"allocated": 2, "status": "READY", "reason": ""}


async def test_request_status_in_progress_ready_and_failed(registry: Registry) -> None:
    backend = RecordingBackend()
    provisioner = Provisioner(registry, backend, interval_s=3600)
    shares = registry.set_provisioned("f", "1", 3)
    backend.ready = 1
    provisioner.request("f", "1", shares)
    assert provisioner.status("f", "1")["status"] == "IN_PROGRESS"
    await until(lambda: len(backend.warm) == 1)
    await until(lambda: provisioner.status("f", "1")["allocated"] == 1)
    assert provisioner.status("f", "1")["status"] == "IN_PROGRESS"
    backend.fail = True
    provisioner.request("f", "1", shares)
    await until(lambda: provisioner.status("f", "1")["status"] == "FAILED")
    assert provisioner.status("f", "1")["reason"] == "no capacity"
    provisioner.forget("f")
    assert provisioner.status("f", "1")["status"] == "IN_PROGRESS"
    await provisioner.stop()


async def test_withdraw_unpins_the_version_and_forgets_its_status(registry: Registry) -> None:
    backend = RecordingBackend()
    provisioner = Provisioner(registry, backend, interval_s=3600)
    shares = registry.set_provisioned("f", "1", 2)
    provisioner.request("f", "1", shares)
    await until(lambda: provisioner.status("f", "1")["status"] == "READY")
    provisioner.withdraw("f", "1", shares)
    assert provisioner.status("f", "1")["status"] == "IN_PROGRESS"
    await until(lambda: len(backend.warm) == 2)
    assert backend.warm == [("f", "1", 2), ("f", "1", 0)]
    backend.fail = True
    provisioner.withdraw("f", "1", shares)  # a failed unpin is logged; the pin lapses on the leader
    await provisioner.stop()


async def test_a_failing_backend_does_not_stop_the_loop(registry: Registry) -> None:
    backend = RecordingBackend()
    backend.fail = True
    registry.set_provisioned("f", "1", 1)
    provisioner = Provisioner(registry, backend, interval_s=0.02)
    await provisioner.start()
    try:
        await until(lambda: provisioner.status("f", "1")["status"] == "FAILED")
        backend.fail = False
        await until(lambda: provisioner.status("f", "1")["status"] == "READY")
    finally:
        await provisioner.stop()


async def test_an_alias_s_config_warms_each_version_it_routes_to(registry: Registry) -> None:
    registry.update_configuration("f", {"memory_mb": 256})
    registry.publish("f")
    AliasStore(registry).create("f", "live", "1", weights={"2": 0.5})
    backend = RecordingBackend()
    provisioner = Provisioner(registry, backend, interval_s=3600)
    shares = registry.set_provisioned("f", "live", 4)
    provisioner.request("f", "live", shares)
    await until(lambda: provisioner.status("f", "live")["status"] == "READY")
    assert provisioner.status("f", "live")["allocated"] == 4
    assert sorted(backend.warm) == [("f", "1", 2), ("f", "2", 2)]
    backend.ready = 1  # each version has one sandbox of its two: the config is not READY
    await provisioner.top_up()
    expected = {"allocated": 2, "status": "IN_PROGRESS", "reason": "2 of 4 sandboxes are ready"}
    assert provisioner.status("f", "live") == expected
    provisioner.unpin_moved(shares, shares[:1])  # the alias left version 2
    await until(lambda: ("f", "2", 0) in backend.warm)
    assert ("f", "1", 0) not in backend.warm
    await provisioner.stop()
