"""How a worker makes itself known: a pluggable :class:`Registrar` called on start and every heartbeat.

- :class:`NullRegistrar` does nothing (tests, ``leasehold dev`` wires the agent in-process).
- :class:`ZooKeeperRegistrar` keeps an ephemeral node ``<root>/workers/<worker id>`` whose JSON data
  is the worker's id, address, zone, memory (``memory_mb``), free memory and sandbox ids; it vanishes with
  the session. ``<root>`` follows the assignment servers' rule (``assignment/coordination/zookeeper.py``):
  the chroot of the connect string (``host:2181/cluster-a`` → ``/cluster-a``), ``/leasehold`` without one,
  so the servers read exactly the nodes the workers write (:meth:`WorkerInfo.decode`). The chroot rule
  (:func:`split_chroot`) and :class:`WorkerInfo` are defined here once, for the workers that write the
  nodes and for the servers (``assignment.members``, ``assignment.coordination``) that read them.

The ZooKeeper registrar survives its connection: ``register`` and ``heartbeat`` only record what the node
should say and wake a keeper task, which (re)writes the node whenever it is connected — after a cut, a
flapping server, or a lost session (the ephemeral node is created again for the new session). Meanwhile
the agent keeps serving its sandboxes; nothing ZooKeeper raises reaches it.

The ``Register`` / ``Heartbeat`` calls to the assignment service belong to its API (issue 4) and plug in
here as another Registrar.

Example::

    registrar = ZooKeeperRegistrar("127.0.0.1:2181/leasehold")
    await registrar.register(WorkerInfo("w1", "10.0.0.5:7001", "zone-a", 8192), free_memory_mb=8192, sandboxes=[])
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["NullRegistrar", "Registrar", "WorkerInfo", "ZooKeeperRegistrar", "split_chroot"]

log = logging.getLogger("leasehold.registration")

#: Longest wait of ``register`` for the first write (the keeper task goes on trying after it).
_FIRST_WRITE_WAIT_S = 2.0
#: Back-off of the keeper after a failed write (doubling up to the maximum).
_RETRY_MIN_S, _RETRY_MAX_S = 0.05, 1.0


def split_chroot(hosts: str) -> tuple[str, str]:
    """``"h1:2181,h2:2181/root"`` → ``("h1:2181,h2:2181", "/root")``; the root is ``/leasehold`` if absent
    (the same rule as the assignment servers' coordinator)."""
    hosts_part, slash, chroot = hosts.partition("/")
    root = "/" + chroot.strip("/") if slash and chroot.strip("/") else "/leasehold"
    return hosts_part, root


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker agent as the cluster knows it: where it listens, its zone and the memory it offers for
    sandboxes (``capacity_mb``).

    ``incarnation`` is new with every start of the agent ("" when unknown): a worker that restarted
    under the same id, faster than its ZooKeeper node disappeared, has lost its sandboxes all the same.
    """

    worker_id: str
    address: str
    zone: str
    capacity_mb: int
    incarnation: str = ""

    def encode(self, *, free_memory_mb: int | None = None, sandboxes: list[str] | None = None) -> bytes:
        """The JSON of the worker's node (the capacity under ``memory_mb``), with the agent's report of
        free memory and sandboxes when given."""
        node: dict[str, object] = {
            "worker_id": self.worker_id,
            "address": self.address,
            "zone": self.zone,
            "memory_mb": self.capacity_mb,
            "incarnation": self.incarnation,
        }
        if free_memory_mb is not None:
            node["free_memory_mb"] = free_memory_mb
        if sandboxes is not None:
            node["sandboxes"] = sandboxes
        return json.dumps(node).encode()

    @staticmethod
    def decode(data: bytes) -> WorkerInfo:
        """The inverse of :meth:`encode` (extra fields ignored; ``capacity_mb`` is read too, as servers
        that registered workers themselves wrote it); ``ValueError``/``KeyError`` on malformed data."""
        raw = json.loads(data.decode())
        capacity = raw["capacity_mb"] if "capacity_mb" in raw else raw["memory_mb"]
        incarnation = str(raw.get("incarnation", ""))
        return WorkerInfo(str(raw["worker_id"]), str(raw["address"]), str(raw["zone"]), int(capacity), incarnation)


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
    """An ephemeral znode per worker under ``<root>/workers``, kept written by a background keeper task."""

    def __init__(self, hosts: str, timeout_s: float = 10.0) -> None:
        from kazoo.client import KazooClient  # noqa: PLC0415 - only when ZooKeeper is used
        from kazoo.retry import KazooRetry  # noqa: PLC0415

        hosts_part, root = split_chroot(hosts)
        #: Where the worker nodes live (the servers' ``<root>/workers``).
        self.path = f"{root}/workers"
        self._client: Any = KazooClient(
            hosts=hosts_part,
            timeout=timeout_s,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=1.0),
            command_retry=KazooRetry(max_tries=3, delay=0.05, max_delay=0.5),
        )
        self._node: tuple[str, bytes] | None = None  # what the node should be: path and data
        self._version = 0  # bumped by every register/heartbeat
        self._written: tuple[int, int] | None = None  # (version, session) of the last successful write
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._first_write = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False

    def _data(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> bytes:
        return info.encode(free_memory_mb=free_memory_mb, sandboxes=sandboxes)

    def _want(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        self._node = (f"{self.path}/{info.worker_id}", self._data(info, free_memory_mb, sandboxes))
        self._version += 1
        self._wake.set()

    async def register(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Connect and create the ephemeral node (replacing a leftover of an earlier session).

        Waits a short while for the first write; when ZooKeeper is unreachable it returns anyway and the
        keeper task registers the worker as soon as the connection is there.
        """
        self._want(info, free_memory_mb, sandboxes)
        if self._keeper is None:
            self._loop = asyncio.get_running_loop()
            self._client.add_listener(self._listener)
            self._client.start_async()  # kazoo keeps reconnecting (connection_retry has no limit)
            self._keeper = self._loop.create_task(self._keep(), name="zk-registrar")
        try:
            await asyncio.wait_for(self._first_write.wait(), _FIRST_WRITE_WAIT_S)
        except TimeoutError:
            log.warning("event=registration_pending worker=%s reason=zookeeper_unreachable", info.worker_id)

    async def heartbeat(self, info: WorkerInfo, free_memory_mb: int, sandboxes: list[str]) -> None:
        """Rewrite the node's data with the current free memory (recreate it after a lost session)."""
        self._want(info, free_memory_mb, sandboxes)

    def _listener(self, _state: str) -> None:
        """Kazoo's thread: wake the keeper (never blocks)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake.set)

    def _session(self) -> int | None:
        client_id = self._client.client_id
        return int(client_id[0]) if client_id else None

    async def _keep(self) -> None:
        """Write the node whenever it is out of date for the current session; retry with back-off."""
        from kazoo.exceptions import KazooException  # noqa: PLC0415
        from kazoo.handlers.threading import KazooTimeoutError  # noqa: PLC0415

        backoff = 0.0
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff or 1.0)
            self._wake.clear()
            node, version, session = self._node, self._version, self._session()
            if node is None or not self._client.connected or session is None:
                continue
            if self._written == (version, session):
                continue
            try:
                await asyncio.to_thread(self._client.retry, self._write, node[0], node[1])
            except (KazooException, KazooTimeoutError) as exc:
                backoff = min(max(backoff * 2, _RETRY_MIN_S), _RETRY_MAX_S)
                log.info("event=registration_retry path=%s error=%r retry_in_s=%.2f", node[0], exc, backoff)
                continue
            backoff = 0.0
            if self._written is None or self._written[1] != session:
                log.info("event=worker_registered path=%s session=%#x", node[0], session)
            self._written = (version, session)
            self._first_write.set()

    def _write(self, path: str, data: bytes) -> None:
        """Set the node if this session owns it, else (re)create it (idempotent: safe to retry)."""
        from kazoo.exceptions import NodeExistsError, NoNodeError  # noqa: PLC0415

        self._client.ensure_path(self.path)
        stat = self._client.exists(path)
        if stat is not None and stat.ephemeralOwner == self._session():
            self._client.set(path, data)
            return
        if stat is not None:  # a leftover of an earlier session
            with contextlib.suppress(NoNodeError):
                self._client.delete(path)
        try:
            self._client.create(path, data, ephemeral=True)
        except NodeExistsError:  # our create went through but its reply was lost: write again
            self._client.set(path, data)

    async def close(self) -> None:
        """Stop the keeper and close the session (the node disappears)."""
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            await asyncio.to_thread(self._client.stop)
            await asyncio.to_thread(self._client.close)
