"""Coordination: server and worker membership, one leader election per partition, leader addresses.

Two implementations behind :class:`~assignment.coordination.base.Coordinator`: ZooKeeper through kazoo
(:mod:`assignment.coordination.zookeeper`) and an in-process one for the embedded single-node mode
(:mod:`assignment.coordination.local`).

Example::

    coordinator = connect("127.0.0.1:2181/leasehold", session_timeout_s=2.0)   # or connect(None): local
    await coordinator.start(ServerInfo("s1", "127.0.0.1:7000"), on_change=wake_up)
    if await coordinator.try_lead(3):
        ...
"""

from __future__ import annotations

from assignment.coordination.base import Connection, Coordinator
from assignment.coordination.local import LocalCoordinator

__all__ = ["Connection", "Coordinator", "LocalCoordinator", "connect"]


def connect(hosts: str | None, *, partitions: int = 16, session_timeout_s: float = 10.0) -> Coordinator:
    """A ZooKeeper coordinator for ``hosts`` (``host:port,...[/chroot]``), or the local one for ``None``."""
    if not hosts or hosts == "local":
        return LocalCoordinator()
    from assignment.coordination.zookeeper import ZooKeeperCoordinator  # noqa: PLC0415 (kazoo only when used)

    return ZooKeeperCoordinator(hosts, partitions=partitions, session_timeout_s=session_timeout_s)
