"""How a worker makes itself known: a pluggable :class:`Registrar` called on start and every heartbeat.

- :class:`NullRegistrar` does nothing (tests, ``leasehold dev`` wires the agent in-process).
- :class:`ZooKeeperRegistrar` keeps an ephemeral node ``<root>/workers/<worker id>`` whose JSON data
  is the worker's id, address, zone, memory (``memory_mb``), free memory and sandbox ids; it vanishes with
  the session. ``<root>`` follows the assignment servers' rule (``assignment/coordination/zookeeper.py``):
  the chroot of the connect string (``host:2181/cluster-a`` → ``/cluster-a``), ``/leasehold`` without one,
  so the servers read exactly the nodes the workers write (``assignment.members.WorkerInfo.decode``).

The ``Register`` / ``Heartbeat`` calls to the assignment service belong to its API (issue 4) and plug in
here as another Registrar.

Example::

    registrar = ZooKeeperRegistrar("127.0.0.1:2181/leasehold")
    await registrar.register(WorkerInfo("w1", "10.0.0.5:7001", "zone-a", 8192), free_memory_mb=8192, sandboxes=[])
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["NullRegistrar", "Registrar", "WorkerInfo", "ZooKeeperRegistrar", "split_chroot"]


def split_chroot(hosts: str) -> tuple[str, str]:
    """``"h1:2181,h2:2181/root"`` → ``("h1:2181,h2:2181", "/root")``; the root is ``/leasehold`` if absent
    (the same rule as the assignment servers' coordinator)."""
    hosts_part, slash, chroot = hosts.partition("/")
    root = "/" + chroot.strip("/") if slash and chroot.strip("/") else "/leasehold"
    return hosts_part, root


@dataclass(frozen=True)
class WorkerInfo:
    """What identifies a worker to the cluster."""

    worker_id: str
    address: str
    zone: str
    memory_mb: int


class Registrar(Protocol):
    """Membership hooks; each must return promptly (the agent calls them from its event loop)."""

    async def register(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Announce the worker and the sandboxes it holds."""

    async def heartbeat(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Report free capacity; called every heartbeat interval."""

    async def close(self) -> None:
        """Leave the cluster."""


class NullRegistrar:
    """A registrar that records the last report and tells no one."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, int, list[str]]] = []

    async def register(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Record the registration."""
        self.reports.append(("register", free_memory_mb, sandboxes))

    async def heartbeat(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Record the heartbeat."""
        self.reports.append(("heartbeat", free_memory_mb, sandboxes))

    async def close(self) -> None:
        """Nothing to leave."""


class ZooKeeperRegistrar:
    """An ephemeral znode per worker under ``<root>/workers``, updated on every heartbeat."""

    def __init__(self, hosts: str, timeout_s: float = 10.0) -> None:
        from kazoo.client import KazooClient  # noqa: PLC0415 - only when ZooKeeper is used

        hosts_part, root = split_chroot(hosts)
        #: Where the worker nodes live (the servers' ``<root>/workers``).
        self.path = f"{root}/workers"
        self._client: Any = KazooClient(hosts=hosts_part, timeout=timeout_s)
        self._started = False

    def _data(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> bytes:
        return json.dumps({**asdict(info), "free_memory_mb": free_memory_mb, "sandboxes": sandboxes}).encode()

    async def register(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Connect and create the ephemeral node (replacing a leftover of an earlier session)."""
        data = self._data(info, free_memory_mb, sandboxes)

        def run() -> None:
            if not self._started:
                self._client.start()
                self._started = True
            path = f"{self.path}/{info.worker_id}"
            self._client.ensure_path(self.path)
            if self._client.exists(path):
                self._client.delete(path)
            self._client.create(path, data, ephemeral=True)

        await asyncio.to_thread(run)

    async def heartbeat(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Rewrite the node's data with the current free memory (recreate it after a lost session)."""
        data = self._data(info, free_memory_mb, sandboxes)
        path = f"{self.path}/{info.worker_id}"

        def run() -> None:
            if self._client.exists(path):
                self._client.set(path, data)
            else:
                self._client.create(path, data, ephemeral=True, makepath=True)

        await asyncio.to_thread(run)

    async def close(self) -> None:
        """Close the session (the node disappears)."""
        if self._started:
            await asyncio.to_thread(self._client.stop)
            await asyncio.to_thread(self._client.close)
