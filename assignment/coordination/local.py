"""In-process coordination for the embedded single-node mode: one server leads every partition.

Several servers in one process may share a :class:`LocalHub` (tests): membership and leadership are then
shared between them, without sessions that can be lost.

Example::

    coordinator = LocalCoordinator()
    await coordinator.start(ServerInfo("dev", "127.0.0.1:7000"), on_change=lambda: None)
    assert await coordinator.try_lead(0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from assignment.coordination.base import Connection, Coordinator
from assignment.members import ServerInfo, WorkerInfo

__all__ = ["LocalCoordinator", "LocalHub"]


@dataclass
class LocalHub:
    """The shared state of local coordinators."""

    servers: dict[str, ServerInfo] = field(default_factory=dict)
    workers: dict[str, WorkerInfo] = field(default_factory=dict)
    leaders: dict[int, ServerInfo] = field(default_factory=dict)
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def changed(self) -> None:
        """Tell every coordinator of the hub."""
        for listener in list(self.listeners):
            listener()


class LocalCoordinator(Coordinator):
    """Coordination inside one process."""

    def __init__(self, hub: LocalHub | None = None) -> None:
        self.hub = hub or LocalHub()
        self._me: ServerInfo | None = None
        self._on_change: Callable[[], None] | None = None

    @property
    def connection(self) -> Connection:
        """Always connected."""
        return "connected"

    @property
    def generation(self) -> int:
        """Never changes: a local session cannot be lost."""
        return 0

    async def start(self, me: ServerInfo | None, on_change: Callable[[], None]) -> None:
        """Join the hub."""
        self._me = me
        self._on_change = on_change
        self.hub.listeners.append(on_change)
        if me is not None:
            self.hub.servers[me.server_id] = me
        self.hub.changed()

    async def stop(self) -> None:
        """Leave the hub, dropping this server's leaderships."""
        if self._on_change in self.hub.listeners:
            self.hub.listeners.remove(self._on_change)
        if self._me is not None:
            self.hub.servers.pop(self._me.server_id, None)
            for partition, leader in list(self.hub.leaders.items()):
                if leader.server_id == self._me.server_id:
                    del self.hub.leaders[partition]
        self.hub.changed()

    async def withdraw(self) -> None:
        """Leave the live servers."""
        if self._me is not None:
            self.hub.servers.pop(self._me.server_id, None)
            self.hub.changed()

    async def republish(self) -> None:
        """Nothing to do: a local session is never lost."""

    def servers(self) -> dict[str, ServerInfo]:
        """The live servers."""
        return dict(self.hub.servers)

    def workers(self) -> dict[str, WorkerInfo]:
        """The live workers."""
        return dict(self.hub.workers)

    def leader_of(self, partition: int) -> ServerInfo | None:
        """The partition's leader."""
        return self.hub.leaders.get(partition)

    async def try_lead(self, partition: int) -> bool:
        """Take the partition when it has no leader."""
        if self._me is None:
            return False
        current = self.hub.leaders.get(partition)
        if current is None:
            self.hub.leaders[partition] = self._me
            self.hub.changed()
            return True
        return current.server_id == self._me.server_id

    async def holds(self, partition: int) -> bool:
        """Whether this server leads the partition."""
        current = self.hub.leaders.get(partition)
        return self._me is not None and current is not None and current.server_id == self._me.server_id

    async def resign(self, partition: int) -> None:
        """Give the partition up."""
        if await self.holds(partition):
            del self.hub.leaders[partition]
            self.hub.changed()

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Publish a worker."""
        self.hub.workers[worker.worker_id] = worker
        self.hub.changed()

    async def unregister_worker(self, worker_id: str) -> None:
        """Withdraw a worker."""
        if self.hub.workers.pop(worker_id, None) is not None:
            self.hub.changed()
