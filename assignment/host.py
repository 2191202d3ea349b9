"""The partitions a server leads: contend, start leaders, step down, hand over, keep workers in sync.

One reconcile pass runs whenever coordination reports a change (and every ``tick_s``):

* Connection not ``connected``: every leader is paused at once (its gate also checks the state, so grants
  stop even before this pass runs). A new session (``generation`` changed): every leader is dropped —
  its leadership died with the old session — and the server publishes itself again.
* After a reconnect within the same session, each paused leader is re-checked — the leader node still
  ours, the journal epoch still its own — before it serves again; otherwise it is dropped.
* A partition without a leader is contended for by its preferred leader (balanced rendezvous, see
  :func:`~assignment.partitioning.preferred_leaders`) at once and its other replicas after
  ``rank * contend_delay_s``.
* A leader whose partition prefers another live server (seen for ``settle_s``) hands over: it stops
  granting, finishes in-flight calls, then deletes its leader node, and the preferred server takes over.
* A leader whose append failed (fenced) is dropped and resigns; it contends again like anyone.
* Replicas that do not lead follow the partition's journal (``follow``); the one that wins an election is
  promoted and replays only the records appended since it last read.

Example::

    host = PartitionHost(coordinator, journal, workers, me, partitions=16)
    await host.start()
    leader = host.leader_for(partition)      # or NotLeader / Recovering
    await host.stop()                         # hands every partition over
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from assignment.coordination.base import Coordinator
from assignment.errors import NotLeader, Recovering
from assignment.leader import LeaderConfig, PartitionLeader
from assignment.members import ServerInfo
from assignment.partitioning import DEFAULT_PARTITIONS, DEFAULT_REPLICAS, preferred_leaders, rank_servers
from assignment.worker_client import WorkerClient
from journal.group_commit import GroupCommitter
from journal.store import Journal

__all__ = ["HostConfig", "PartitionHost"]

log = logging.getLogger("leasehold.host")


@dataclass(frozen=True, slots=True)
class HostConfig:
    """How a server manages its partitions."""

    partitions: int = DEFAULT_PARTITIONS
    replicas: int = DEFAULT_REPLICAS
    #: A non-preferred replica waits ``rank`` times this before contending for a leaderless partition.
    contend_delay_s: float = 0.15
    #: A preferred server must be live this long before a leader hands its partition over.
    settle_s: float = 2.0
    #: Hand leadership to the preferred server (balance); off: first come, first served.
    balance: bool = True
    tick_s: float = 0.5
    #: Replicas that do not lead follow the journal, so a promotion replays only the newest records.
    follow: bool = True
    #: How long a stopping leader waits for in-flight calls.
    grace_s: float = 5.0


class PartitionHost:
    """Leaders of the partitions this server holds; use from one event loop."""

    def __init__(
        self,
        coordinator: Coordinator,
        journal: Journal,
        workers: WorkerClient,
        me: ServerInfo,
        *,
        config: HostConfig | None = None,
        leader_config: LeaderConfig | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.journal = journal
        self.workers = workers
        self.me = me
        self.config = config or HostConfig()
        self.leader_config = leader_config or LeaderConfig()
        self.committer = GroupCommitter(journal)
        self.leaders: dict[int, PartitionLeader] = {}
        self.followers: dict[int, PartitionLeader] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._contending: dict[int, asyncio.Task[None]] = {}
        self._jobs: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._first_seen: dict[str, float] = {}
        self._draining = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Join coordination and start reconciling."""
        await self.coordinator.start(self.me, self.wake)
        self._generation = self.coordinator.generation
        self._task = asyncio.get_running_loop().create_task(self._run(), name="partition-host")
        self.wake()

    def wake(self) -> None:
        """Ask for a reconcile pass (coordination's on_change)."""
        self._wake.set()

    async def stop(self) -> None:
        """Hand every partition over (stop granting, finish in-flight calls, resign), then leave."""
        self._draining = True
        with contextlib.suppress(Exception):
            await self.coordinator.withdraw()
        for task in self._contending.values():
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(self._drop(p, resign=True) for p in list(self.leaders)), return_exceptions=True)
        await asyncio.gather(*(f.stop(0) for f in self.followers.values()), return_exceptions=True)
        self.followers.clear()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, *self._contending.values(), return_exceptions=True)
        await self.committer.close()
        await self.coordinator.stop()

    # ------------------------------------------------------------------ serving

    @property
    def partition_count(self) -> int:
        """The fixed number of partitions."""
        return self.config.partitions

    def leader_for(self, partition: int) -> PartitionLeader:
        """This server's serving leader of ``partition``; :class:`NotLeader` or :class:`Recovering`."""
        leader = self.leaders.get(partition)
        if leader is None:
            current = self.coordinator.leader_of(partition)
            if current is not None and current.server_id != self.me.server_id:
                raise NotLeader(partition, current.address)
            if self.coordinator.connection != "connected":
                raise Recovering(partition, "coordination is not connected")
            raise NotLeader(partition, None)
        return leader

    def routes(self) -> list[tuple[int, ServerInfo | None]]:
        """Each partition's published leader."""
        return [(p, self.coordinator.leader_of(p)) for p in range(self.config.partitions)]

    # ------------------------------------------------------------------ reconcile

    async def _run(self) -> None:
        # Checks the flag too: Python 3.11's wait_for can swallow a cancel that races with a wake-up.
        while not self._draining:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.tick_s)
            self._wake.clear()
            try:
                await self._reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=reconcile_failed server=%s", self.me.server_id)

    def _gate(self) -> bool:
        return self.coordinator.connection == "connected" and not self._draining

    async def _reconcile(self) -> None:
        coord = self.coordinator
        if coord.generation != self._generation:
            log.warning("event=session_lost server=%s leaders=%s", self.me.server_id, sorted(self.leaders))
            await asyncio.gather(*(self._drop(p, resign=False) for p in list(self.leaders)))
            if coord.connection != "connected":
                return
            self._generation = coord.generation
            if not self._draining:
                await coord.republish()
        if coord.connection != "connected":
            for leader in self.leaders.values():
                leader.paused = True
            return
        for partition, leader in list(self.leaders.items()):
            if leader.paused:
                await self._verify(partition, leader)
        if self._draining:
            return
        now = time.monotonic()
        servers = coord.servers()
        for sid in servers:
            self._first_seen.setdefault(sid, now)
        for sid in list(self._first_seen):
            if sid not in servers:
                del self._first_seen[sid]
        workers = coord.workers()
        for leader in self.leaders.values():
            if leader.state == "serving" and leader.synced_workers != workers:
                self._spawn(self._sync(leader))
        if self.me.server_id not in servers:
            return
        preferred_of = preferred_leaders(self.config.partitions, servers)
        for partition in range(self.config.partitions):
            preferred = preferred_of.get(partition)
            ranked = rank_servers(partition, servers)[: self.config.replicas]
            if preferred is not None:
                ranked = [preferred, *(s for s in ranked if s != preferred)]
            current = coord.leader_of(partition)
            mine = self.leaders.get(partition)
            if mine is not None:
                if mine.state in ("failed", "stopped"):
                    continue
                if (
                    self.config.balance
                    and mine.state == "serving"
                    and preferred is not None
                    and preferred != self.me.server_id
                    and now - self._first_seen.get(preferred, now) >= self.config.settle_s
                ):
                    log.info("event=hand_over partition=%d to=%s", partition, preferred)
                    self._spawn(self._drop(partition, resign=True))
                continue
            follower = self.followers.get(partition)
            if self.config.follow and self.me.server_id in ranked and follower is None:
                follower = self._new_leader(partition)
                self.followers[partition] = follower
                await follower.follow()
            elif follower is not None and self.me.server_id not in ranked:
                del self.followers[partition]
                self._spawn(follower.stop(0))
            if current is None and self.me.server_id in ranked and partition not in self._contending:
                rank = ranked.index(self.me.server_id)
                task = asyncio.get_running_loop().create_task(self._contend(partition, rank))
                self._contending[partition] = task

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _sync(self, leader: PartitionLeader) -> None:
        with contextlib.suppress(Recovering):
            await leader.sync_workers(self.coordinator.workers())

    async def _verify(self, partition: int, leader: PartitionLeader) -> None:
        """After a reconnect: serve again only if the node is still ours and the epoch still current."""
        holds = await self.coordinator.holds(partition)
        epoch_ok = False
        if holds:
            try:
                info = await asyncio.to_thread(self.journal.info, partition)
                epoch_ok = info.epoch == leader.epoch
            except Exception:
                epoch_ok = False
        if holds and epoch_ok and leader.state == "serving":
            leader.paused = False
            log.info("event=leader_resumed partition=%d epoch=%d", partition, leader.epoch)
        else:
            log.warning(
                "event=leader_dropped_after_reconnect partition=%d holds=%s epoch_ok=%s", partition, holds, epoch_ok
            )
            await self._drop(partition, resign=holds)

    async def _contend(self, partition: int, rank: int) -> None:
        try:
            if rank:
                await asyncio.sleep(rank * self.config.contend_delay_s)
                if self.coordinator.leader_of(partition) is not None:
                    return
            if self._draining or partition in self.leaders:
                return
            if not await self.coordinator.try_lead(partition):
                return
            leader = self.followers.pop(partition, None) or self._new_leader(partition)
            self.leaders[partition] = leader
            try:
                await leader.start(self.coordinator.workers())
            except Exception as exc:
                log.warning("event=leader_start_failed partition=%d error=%r", partition, exc)
                await self._drop(partition, resign=True)
        finally:
            self._contending.pop(partition, None)
            self.wake()

    def _new_leader(self, partition: int) -> PartitionLeader:
        return PartitionLeader(
            partition,
            self.journal,
            self.committer,
            self.workers,
            self.leader_config,
            on_failed=self._on_failed,
            gate=self._gate,
        )

    def _on_failed(self, partition: int, exc: BaseException) -> None:
        self._spawn(self._drop(partition, resign=True))

    async def _drop(self, partition: int, *, resign: bool) -> None:
        leader = self.leaders.get(partition)
        if leader is not None:
            await leader.stop(self.config.grace_s if resign else 0.0)
            if self.leaders.get(partition) is leader:
                del self.leaders[partition]
        if resign:
            await self.coordinator.resign(partition)
        self.wake()
