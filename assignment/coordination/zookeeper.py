"""Coordination through ZooKeeper (kazoo).

Layout under the root (the chroot of ``hosts``, e.g. ``127.0.0.1:2181/leasehold``)::

    /servers/<id>                 ephemeral, ServerInfo JSON: the live assignment servers
    /workers/<id>                 ephemeral, WorkerInfo JSON: the live worker agents
    /partitions/<p>/leader        ephemeral, ServerInfo JSON: the partition's leader (one election each)

An election is "create the leader node": whoever creates it leads until its session ends or it deletes
the node. The leader's address is the node's data, which is what routing reads.

Kazoo facts (DESIGN §4): the connection listener runs on kazoo's thread and only sets the state and
wakes the event loop; it never blocks. Watches are one-shot; each wakes a refresher task on the event
loop, which re-reads the views (in a thread) and re-arms the watches, so a missed event only delays.

Surviving the connection (a drop may come at any moment, even inside :meth:`start`): no ZooKeeper call
lets a connection error escape to the caller. Each sync runs under kazoo's bounded command retry; when
that gives up, the refresher tries again on the next state change or after a short back-off. The
refresher owns the *desired* state — the root paths exist, this server's node exists for the current
session — so a server started while ZooKeeper is down, or whose republish was cut, publishes itself as
soon as the connection is back. Leadership is never touched here: the owner still re-checks each
leadership and the journal epoch after a reconnect.

Example::

    coordinator = ZooKeeperCoordinator("127.0.0.1:2181/leasehold", partitions=16, session_timeout_s=2.0)
    await coordinator.start(ServerInfo("s1", "127.0.0.1:7000"), on_change=wake)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from assignment.coordination.base import Connection, Coordinator
from assignment.members import ServerInfo, WorkerInfo
from workers.registration import split_chroot

__all__ = ["ZooKeeperCoordinator", "split_chroot"]

log = logging.getLogger("leasehold.coordination")

#: What a ZooKeeper call raises when the connection or session is in doubt (kazoo's retry gave up included).
ZK_ERRORS: tuple[type[Exception], ...] = (KazooException, KazooTimeoutError)
#: Back-off of the refresher after a failed sync (doubles up to the maximum; reset by a successful sync).
_RETRY_MIN_S, _RETRY_MAX_S = 0.05, 1.0


class ZooKeeperCoordinator(Coordinator):
    """Membership and per-partition leadership in ZooKeeper."""

    def __init__(self, hosts: str, *, partitions: int = 16, session_timeout_s: float = 10.0) -> None:
        self.hosts, self.root = split_chroot(hosts)
        self.partitions = partitions
        self.session_timeout_s = session_timeout_s
        retry = KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5, ignore_expire=False)
        self.client = KazooClient(
            hosts=self.hosts,
            timeout=session_timeout_s,
            connection_retry=retry,
            command_retry=KazooRetry(max_tries=3, delay=0.05, max_delay=0.5),
        )
        self._connection: Connection = "suspended"
        self._generation = 0
        self._me: ServerInfo | None = None
        self._on_change: Callable[[], None] = lambda: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._refresher: asyncio.Task[None] | None = None
        self._servers: dict[str, ServerInfo] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._leaders: dict[int, ServerInfo] = {}
        self._stopped = False
        self._paths_session: int | None = None  # the session for which the root paths were last ensured
        self._published_session: int | None = None  # the session that owns this server's node
        self._publish_lock = asyncio.Lock()

    # ------------------------------------------------------------------ paths

    def _servers_path(self) -> str:
        return f"{self.root}/servers"

    def _workers_path(self) -> str:
        return f"{self.root}/workers"

    def _leader_path(self, partition: int) -> str:
        return f"{self.root}/partitions/{partition}/leader"

    # ------------------------------------------------------------------ state (kazoo thread: set and wake only)

    def _listener(self, state: str) -> None:
        if state == KazooState.SUSPENDED:
            self._connection = "suspended"
        elif state == KazooState.LOST:
            self._connection = "lost"
            self._generation += 1
        else:
            self._connection = "connected"
        self._kick()

    def _watch(self, *_event: Any) -> None:
        self._kick()

    def _kick(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake.set)

    @property
    def connection(self) -> Connection:
        """The kazoo connection state, as last reported."""
        return self._connection

    @property
    def generation(self) -> int:
        """Incremented on every lost session."""
        return self._generation

    # ------------------------------------------------------------------ lifecycle

    async def start(self, me: ServerInfo | None, on_change: Callable[[], None]) -> None:
        """Connect (waiting up to the session timeout), publish ``me``, start the refresher.

        Never fails on ZooKeeper's account: when it is down or the connection drops meanwhile, the
        coordinator stays ``suspended`` and the refresher connects, publishes and reads once it can.
        """
        self._loop = asyncio.get_running_loop()
        self._me = me
        self._on_change = on_change
        self.client.add_listener(self._listener)
        live = self.client.start_async()  # kazoo keeps reconnecting (connection_retry has no limit)
        connected = await asyncio.to_thread(live.wait, max(self.session_timeout_s, 5.0))
        if connected and self.client.connected:
            self._connection = "connected"
            await self._sync()
        else:
            log.warning("event=zk_unavailable hosts=%s action=keep_trying", self.hosts)
        self._refresher = self._loop.create_task(self._refresh_loop(), name="zk-refresh")

    def _ensure_paths(self) -> None:
        for path in (self._servers_path(), self._workers_path(), f"{self.root}/partitions"):
            self.client.ensure_path(path)

    def _session(self) -> int | None:
        client_id = self.client.client_id
        return int(client_id[0]) if client_id else None

    async def _sync(self) -> bool:
        """Ensure the paths and this server's node, then read the views; ``False`` when ZooKeeper failed."""
        try:
            async with self._publish_lock:
                await asyncio.to_thread(self.client.retry, self._sync_blocking)
        except ZK_ERRORS as exc:
            log.info("event=zk_sync_failed connection=%s error=%r", self._connection, exc)
            return False
        return True

    def _sync_blocking(self) -> None:
        session = self._session()
        if self._paths_session is None or self._paths_session != session:
            self._ensure_paths()
            self._paths_session = session
        me = self._me
        if me is not None and (self._published_session != session or me.server_id not in self._servers):
            self._publish(me)
            self._published_session = session
        self._read_all()

    async def stop(self) -> None:
        """Close the session (ephemeral nodes vanish at once)."""
        self._stopped = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop()
        with contextlib.suppress(Exception):
            self.client.close()

    async def withdraw(self) -> None:
        """Delete this server's membership node (and stop republishing it)."""
        me, self._me = self._me, None
        if me is not None:
            async with self._publish_lock:
                with contextlib.suppress(NoNodeError, *ZK_ERRORS):
                    await asyncio.to_thread(self.client.retry, self._delete_own, self._server_path(me))
            self._servers.pop(me.server_id, None)

    def _server_path(self, me: ServerInfo) -> str:
        return f"{self._servers_path()}/{me.server_id}"

    def _delete_own(self, path: str) -> None:
        stat = self.client.exists(path)
        if stat is not None and stat.ephemeralOwner == self._session():
            self.client.delete(path, version=stat.version)

    async def republish(self) -> None:
        """Create this server's membership node for the current session (replacing a stale one).

        Idempotent and safe at any moment: when the connection fails meanwhile, the refresher publishes
        again once it is back (the error is logged, not raised).
        """
        if self._me is None:
            return
        self._published_session = None
        if self._connection == "connected":
            await self._sync()
        self._kick()

    def _publish(self, me: ServerInfo) -> None:
        """Create the node (kazoo thread-pool side; idempotent, so a retry after a lost reply is harmless)."""
        path = self._server_path(me)
        try:
            self.client.create(path, me.encode(), ephemeral=True, makepath=True)
        except NodeExistsError:
            stat = self.client.exists(path)
            if stat is not None and stat.ephemeralOwner != self._session():
                with contextlib.suppress(NoNodeError):
                    self.client.delete(path)
                self.client.create(path, me.encode(), ephemeral=True, makepath=True)
        log.info("event=server_published server=%s session=%s", me.server_id, self._session())

    # ------------------------------------------------------------------ views

    async def _refresh_loop(self) -> None:
        backoff = 0.0
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff or 1.0)
            self._wake.clear()
            if self._connection == "connected":
                ok = await self._sync()
                backoff = 0.0 if ok else min(max(backoff * 2, _RETRY_MIN_S), _RETRY_MAX_S)
            try:
                self._on_change()
            except Exception:
                log.exception("event=on_change_failed")

    def _read_all(self) -> None:
        servers: dict[str, ServerInfo] = {}
        for child in self.client.get_children(self._servers_path(), watch=self._watch):
            info = self._read(f"{self._servers_path()}/{child}", ServerInfo.decode, watch=False)
            if info is not None:
                servers[info.server_id] = info
        workers: dict[str, WorkerInfo] = {}
        for child in self.client.get_children(self._workers_path(), watch=self._watch):
            winfo = self._read(f"{self._workers_path()}/{child}", WorkerInfo.decode, watch=False)
            if winfo is not None:
                workers[winfo.worker_id] = winfo
        leaders: dict[int, ServerInfo] = {}
        for partition in range(self.partitions):
            leader = self._read(self._leader_path(partition), ServerInfo.decode, watch=True)
            if leader is not None:
                leaders[partition] = leader
        self._servers, self._workers, self._leaders = servers, workers, leaders

    def _read(self, path: str, decode: Callable[[bytes], Any], *, watch: bool) -> Any:
        try:
            if watch:
                if self.client.exists(path, watch=self._watch) is None:
                    return None
                data, _ = self.client.get(path, watch=self._watch)
            else:
                data, _ = self.client.get(path)
        except NoNodeError:
            return None
        try:
            return decode(data)
        except (ValueError, KeyError):
            log.warning("event=bad_node path=%s", path)
            return None

    def servers(self) -> dict[str, ServerInfo]:
        """The live servers, as last read."""
        return dict(self._servers)

    def workers(self) -> dict[str, WorkerInfo]:
        """The live workers, as last read."""
        return dict(self._workers)

    def leader_of(self, partition: int) -> ServerInfo | None:
        """The partition's leader, as last read."""
        return self._leaders.get(partition)

    # ------------------------------------------------------------------ leadership

    async def try_lead(self, partition: int) -> bool:
        """Create the partition's leader node; ``True`` when this session holds it."""
        me = self._me
        if me is None or self._connection != "connected":
            return False
        path = self._leader_path(partition)
        try:
            await asyncio.to_thread(self.client.create, path, me.encode(), ephemeral=True, makepath=True)
        except NodeExistsError:
            return await self.holds(partition)
        except ZK_ERRORS as exc:
            log.info("event=try_lead_failed partition=%d error=%r", partition, exc)
            return await self.holds(partition)
        self._leaders[partition] = me
        return True

    async def holds(self, partition: int) -> bool:
        """Whether the leader node exists and belongs to this session."""
        if self._connection != "connected":
            return False
        try:
            stat = await asyncio.to_thread(self.client.retry, self.client.exists, self._leader_path(partition))
            session = self._session()
        except ZK_ERRORS:
            return False
        return stat is not None and session is not None and stat.ephemeralOwner == session

    async def resign(self, partition: int) -> None:
        """Delete the leader node if this session owns it."""
        path = self._leader_path(partition)

        with contextlib.suppress(NoNodeError, *ZK_ERRORS):
            await asyncio.to_thread(self.client.retry, self._delete_own, path)
        me = self._me
        current = self._leaders.get(partition)
        if current is not None and (me is None or current.server_id == me.server_id):
            del self._leaders[partition]

    # ------------------------------------------------------------------ workers

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Create the worker's ephemeral membership node."""
        path = f"{self._workers_path()}/{worker.worker_id}"

        def create() -> None:
            try:
                self.client.create(path, worker.encode(), ephemeral=True, makepath=True)
            except NodeExistsError:
                stat = self.client.exists(path)
                if stat is None or stat.ephemeralOwner != self._session():
                    raise

        await asyncio.to_thread(self.client.retry, create)

    async def unregister_worker(self, worker_id: str) -> None:
        """Delete the worker's membership node."""
        with contextlib.suppress(NoNodeError):
            await asyncio.to_thread(self.client.retry, self.client.delete, f"{self._workers_path()}/{worker_id}")
