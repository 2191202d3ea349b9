"""One partition's leader: the loop that owns the partition core and the journal writer, and answers.

**The commit rule**, the one thing to know here: every change is decided and applied in the core at
once (so the next decision sees it), handed to the journal's group committer in the same step (so the
journal's order is the order of application), and answered only after its commit. If a commit fails —
:class:`~journal.errors.Fenced` or anything else — the leader drops its core, stops answering and
tells its owner (``on_failed``), which steps down and contends again. :meth:`PartitionLeader.change`
and :meth:`PartitionLeader._commit` are that rule; every other method calls them.

Life of a leader: ``follow`` (optional: a :class:`~assignment.following.CoreReplica` tails the journal),
``start`` (take over the epoch, recover or catch up, journal ``EpochStarted``, sync workers, destroy
sandboxes never confirmed, reconcile with the workers' listings), serve, ``stop`` (graceful) or fail.
The rest lives beside it: :mod:`assignment.following` (replaying the journal into a core),
:mod:`assignment.reconcile` (which workers join or leave, what to destroy or drop: pure functions),
:mod:`assignment.cold_start` (creating a granted sandbox on a worker), :mod:`assignment.provisioned`
(EnsureWarm and pins), :mod:`assignment.upkeep` (expiry, idle reclaim, snapshots),
:mod:`assignment.grants` (what is granted; the request-id cache) and :mod:`assignment.leader_port`
(the configuration, and the Protocol through which the cut-out modules call back into the leader).
The leader asks its core narrow questions (``core.sandbox(id)``, ``core.lease_sandbox(seq)``, ...) and
keeps no copy of its state.

Example::

    leader = PartitionLeader(3, journal, committer, AcceptingWorkers(), LeaderConfig())
    await leader.start(live_workers)
    grant = await leader.acquire(AcquireArgs("resize", "$LATEST", 256, 3_000, "req-1"))
    await leader.release(grant.token, "ok")
    await leader.set_concurrency("resize", 10)
    sandboxes, created = await leader.ensure_warm(AcquireArgs("resize", "$LATEST", 256, 3_000, sandbox=template), 2)
    await leader.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from assignment import cold_start, provisioned, reconcile, upkeep
from assignment.errors import BadArgument, LeaseGone, NotLeader, Recovering, Throttled
from assignment.following import CoreReplica
from assignment.grants import AcquireArgs, Grant, RequestCache
from assignment.leader_port import LeaderConfig, State, WorkerOp
from assignment.members import WorkerInfo
from assignment.partition_core import CoreError, InvalidArgument, PartitionCore, Record, WorkerView, service_error
from assignment.worker_client import WorkerClient, WorkerRefused, sandbox_name
from journal.errors import UnknownPartition
from journal.group_commit import GroupCommitter
from journal.outcomes import LABELS, Outcome
from journal.store import Entry, Journal, Snapshot
from journal.tail import Tail, tail
from workers.v1 import worker_pb2

__all__ = ["AcquireArgs", "Grant", "LeaderConfig", "PartitionLeader"]

log = logging.getLogger("leasehold.leader")


class PartitionLeader:
    """The leader of one partition; use from one event loop."""

    def __init__(
        self,
        partition: int,
        journal: Journal,
        committer: GroupCommitter,
        workers: WorkerClient,
        config: LeaderConfig | None = None,
        *,
        on_failed: Callable[[int, BaseException], None] | None = None,
        clock: Callable[[], float] = time.time,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.partition = partition
        self.journal = journal
        self.committer = committer
        self.workers = workers
        self.config = config or LeaderConfig()
        self.on_failed = on_failed
        self.clock = clock
        #: Checked before every grant (e.g. "coordination is connected"); set by the owner.
        self.gate = gate
        self.state: State = "new"
        #: Set while coordination is suspended: no grants until it clears.
        self.paused = False
        self.epoch = 0
        #: The seq of the last record committed (or replayed), and of the newest snapshot.
        self.last_seq = 0
        self.snapshot_seq = 0
        self.failure: BaseException | None = None
        self._core: PartitionCore | None = None
        self._replica: CoreReplica | None = None  # while following and starting
        self._last_now = 0
        #: Commits handed to the committer and not yet settled (their records are applied to the core).
        self._commits: set[asyncio.Future[int]] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._requests = RequestCache(self.config.request_cache)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._follow_task: asyncio.Task[None] | None = None
        self._tail: Tail | None = None
        self._sync_lock = asyncio.Lock()
        #: The live workers of the last :meth:`sync_workers` call.
        self.synced_workers: dict[str, WorkerInfo] = {}
        #: Each live worker's incarnation as this leader last saw it (in memory only).
        self._incarnations: dict[str, str] = {}
        #: Names of the sandboxes dropped with each worker that left, destroyed there if it comes back.
        self._dropped: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def serving(self) -> bool:
        """Whether grants are answered now."""
        return self.state == "serving" and not self.paused and (self.gate is None or self.gate())

    @property
    def core(self) -> PartitionCore:
        """The live core; ``Recovering`` when there is none."""
        if self._core is None:
            raise Recovering(self.partition, f"leader is {self.state}")
        return self._core

    @property
    def live_core(self) -> PartitionCore | None:
        """The live core, or ``None``."""
        return self._core

    async def follow(self) -> None:
        """Follow the partition's journal into a core (state ``following``) until :meth:`start` promotes it,
        so that promotion replays only the records appended since."""
        if self.state != "new":
            raise RuntimeError(f"leader already {self.state}")
        self.state = "following"
        self._follow_task = asyncio.get_running_loop().create_task(self._follow(), name=f"follower-{self.partition}")

    async def _follow(self) -> None:
        while self.state == "following":
            try:
                if self._core is None:
                    recovery = await asyncio.to_thread(self.journal.recover, self.partition)
                    self._core = self._rebuild(recovery.snapshot, recovery.entries)
                self._tail = tail(self.journal, self.partition, after_seq=self.last_seq)
                async with self._tail as entries:
                    async for entry in entries:
                        if self.state != "following":  # promoted or stopped: the core is not ours to change
                            return
                        self._replay([entry])
            except asyncio.CancelledError:
                raise
            except UnknownPartition:
                await asyncio.sleep(0.5)  # nobody has led it yet
            except Exception as exc:
                if self.state != "following":
                    return
                log.warning("event=follower_rebuild partition=%d error=%r", self.partition, exc)
                self._core = None
                await asyncio.sleep(0.5)

    async def _stop_following(self) -> None:
        """End the follow task for sure (the state is no longer ``following``, so it applies nothing more)."""
        task, self._follow_task = self._follow_task, None
        if task is None:
            return
        if self._tail is not None:
            await self._tail.aclose()
        task.cancel()
        await asyncio.wait({task}, timeout=5.0)

    def _rebuild(self, snapshot: Snapshot | None, entries: Iterable[Entry]) -> PartitionCore:
        """A fresh core from a snapshot and the records after it; the request ids of the grants replayed
        are remembered again."""
        self._requests.clear()
        self._replica = CoreReplica(self.partition, self.config.core_kwargs(), remember=self._requests.remember)
        self.last_seq = self.snapshot_seq = 0
        try:
            return self._replica.recover(snapshot, entries)
        finally:
            self.last_seq, self.snapshot_seq = self._replica.last_seq, self._replica.snapshot_seq

    def _replay(self, entries: Iterable[Entry]) -> int:
        assert self._replica is not None
        try:
            return self._replica.apply(entries)
        finally:
            self.last_seq = self._replica.last_seq

    async def start(self, workers: Mapping[str, WorkerInfo]) -> None:
        """Take over the epoch, recover (or catch a follower up), journal ``EpochStarted``, sync workers,
        destroy sandboxes never confirmed, then serve."""
        if self.state not in ("new", "following"):
            raise RuntimeError(f"leader already {self.state}")
        followed = self._core if self.state == "following" else None
        self.state = "starting"
        await self._stop_following()
        started = time.monotonic()
        try:
            self.epoch = await asyncio.to_thread(self.journal.take_over, self.partition)
            core: PartitionCore | None = None
            replayed = 0
            if followed is not None:
                try:
                    entries = await asyncio.to_thread(self._entries_after, self.last_seq)
                    self._replay(entries)
                    core, replayed = followed, len(entries)
                except Exception as exc:
                    log.warning("event=follower_catch_up_failed partition=%d error=%r", self.partition, exc)
            if core is None:
                recovery = await asyncio.to_thread(self.journal.recover, self.partition)
                core = self._rebuild(recovery.snapshot, recovery.entries)
                replayed = len(recovery.entries)
            self._core, self._replica = core, None  # from here on the leader alone changes the core
            await self.change(core.start_epoch(self.epoch))
            await self.sync_workers(workers)
            await self._drop_unconfirmed(core)
            await self._reconcile_workers(core)
        except BaseException as exc:
            self._fail(exc)
            raise
        self.state = "serving"
        self._loop_task = asyncio.get_running_loop().create_task(self._background(), name=f"leader-{self.partition}")
        log.info(
            "event=leader_started partition=%d epoch=%d last_seq=%d replayed=%d followed=%s ms=%.1f",
            self.partition,
            self.epoch,
            self.last_seq,
            replayed,
            followed is not None,
            (time.monotonic() - started) * 1000,
        )

    def _entries_after(self, seq: int) -> list[Entry]:
        return list(self.journal.iter_entries(self.partition, after_seq=seq))

    async def _drop_unconfirmed(self, core: PartitionCore) -> None:
        """Sandboxes a previous leader asked for but never saw created: destroy them (and their leases)."""
        creating = [(box.id, box.worker_id) for sid in core.creating() if (box := core.sandbox(sid)) is not None]
        if not creating:
            return
        now = self.now()
        records = [r for sid, _ in creating for r in core.destroy(sid, "create_failed", now)]
        await self.change(records)
        for sid, worker_id in creating:
            self.tell_worker("destroy", worker_id, sid)
        log.info("event=unconfirmed_dropped partition=%d sandboxes=%d", self.partition, len(creating))

    async def _list(self, address: str) -> worker_pb2.ListSandboxesResponse | None:
        try:
            return await self.workers.list_sandboxes(address)
        except WorkerRefused as exc:
            log.info("event=reconcile_skipped partition=%d worker=%s why=%s", self.partition, address, exc)
            return None

    async def _reconcile_workers(self, core: PartitionCore) -> None:
        """Destroy the orphans the reachable workers hold and drop the sandboxes they lost
        (:func:`assignment.reconcile.plan`)."""
        workers = core.workers()
        if not workers:
            return
        listed = await asyncio.gather(*(self._list(w.address) for w in workers))
        listings = {
            w.id: None if listing is None else (w.address, [s.sandbox_id for s in listing.sandboxes])
            for w, listing in zip(workers, listed, strict=True)
        }
        todo = reconcile.plan(self.partition, {w.id: core.sandboxes_on(w.id) for w in workers}, listings)
        if todo.vanished:
            now = self.now()
            await self.change([r for sid in todo.vanished for r in core.destroy(sid, "vanished", now)])
        await self._destroy_all(todo.orphans)
        if todo.vanished or todo.orphans:
            log.info(
                "event=workers_reconciled partition=%d vanished=%d orphans_destroyed=%d",
                self.partition,
                len(todo.vanished),
                len(todo.orphans),
            )

    async def _destroy_all(self, sandboxes: list[tuple[str, str]]) -> None:
        for address, name in sandboxes:
            with contextlib.suppress(WorkerRefused):
                await self.workers.destroy_sandbox(address, name)

    async def _clean_joined(self, joined: Mapping[str, WorkerInfo]) -> None:
        """Destroy what workers that joined again while this leader serves still hold of the sandboxes it
        dropped when they left (:func:`assignment.reconcile.returned`)."""
        listings = await asyncio.gather(*(self._list(info.address) for info in joined.values()))
        orphans: list[tuple[str, str]] = []
        for (worker_id, info), listing in zip(joined.items(), listings, strict=True):
            dropped = self._dropped.pop(worker_id, set())
            if listing is not None:
                orphans += reconcile.returned(info.address, dropped, [s.sandbox_id for s in listing.sandboxes])
        await self._destroy_all(orphans)
        if orphans:
            log.info("event=joined_workers_cleaned partition=%d orphans_destroyed=%d", self.partition, len(orphans))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop granting, let in-flight operations finish (up to ``grace_s``), stop background work."""
        if self.state in ("stopped", "failed"):
            await self._cancel_tasks()
            return
        self.state = "stopping"
        self.committer.hurry(self.partition)  # what is queued is committed now, not after the linger
        await self._stop_following()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_s)
        if self._commits:  # what was applied is appended before the leader lets go
            await asyncio.wait(set(self._commits), timeout=max(grace_s, 1.0))
        if self._tasks and grace_s > 0:  # destroys and resets already asked of workers
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        await self._cancel_tasks()
        if self.state == "stopping":
            self.state = "stopped"
        if self._commits:  # still queued after the grace: withdrawn, the core that applied them goes
            self.committer.fail_epoch(self.partition, self.epoch, Recovering(self.partition, "the leader stopped"))
        self._core = None

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in (self._loop_task, self._follow_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop_task = self._follow_task = None
        self._tasks.clear()

    def _fail(self, exc: BaseException) -> None:
        if self.state in ("failed", "stopped"):
            return
        self.state = "failed"
        self.failure = exc
        self._core = None
        # Records applied to the dropped core and still queued are withdrawn, failing their callers now.
        self.committer.fail_epoch(self.partition, self.epoch, Recovering(self.partition, "leader is failed"))
        self._requests.fail_pending(Recovering(self.partition, "the leader failed"))
        log.warning("event=leader_failed partition=%d epoch=%d error=%r", self.partition, self.epoch, exc)
        if self.loop_task_running():
            assert self._loop_task is not None
            self._loop_task.cancel()
        if self.on_failed is not None:
            self.on_failed(self.partition, exc)

    def loop_task_running(self) -> bool:
        """Whether the background loop is running (tests)."""
        return self._loop_task is not None and not self._loop_task.done()

    def check_serving(self) -> PartitionCore:
        """The core, when grants may be answered; else :class:`Recovering` or :class:`NotLeader`."""
        if self.paused or (self.gate is not None and not self.gate()):
            raise Recovering(self.partition, "coordination is suspended")
        if self.state in ("stopping", "stopped"):  # handing over: the caller should look the leader up again
            raise NotLeader(self.partition, None)
        if self.state != "serving" or self._core is None:
            raise Recovering(self.partition, f"leader is {self.state}")
        return self._core

    # ------------------------------------------------------------------ the commit rule

    def now(self) -> int:
        """Milliseconds since the epoch, never going back (decisions take time as an argument)."""
        now = max(int(self.clock() * 1000), self._last_now)
        self._last_now = now
        return now

    async def change(self, records: list[Record]) -> int:
        """Apply records to the live core, then commit them; the seq of the last one."""
        self.core.apply_all(records)
        return await self._commit([record.encode() for record in records])

    async def busy_change(self, records: list[Record]) -> None:
        """:meth:`change` as a request's work, which a graceful stop waits for."""
        self._enter()
        try:
            await self.change(records)
        finally:
            self._leave()

    async def _commit(self, payloads: list[bytes], *, lazy: bool = False) -> int:
        """Append records already applied to the core; the seq of the last one once committed.

        The records are handed to the group committer before this first suspends (so the journal's order
        is the order of application); a caller that is cancelled does not withdraw them — withdrawing
        records already applied would leave a gap that the next leader could not replay. A ``lazy`` commit
        may linger up to ``config.release_linger_s`` for other records to share its transaction (one fsync
        for a Release and the Acquire that follows it); it is still answered only after its commit.
        """
        if not payloads:
            return self.last_seq
        if self._core is None:
            raise Recovering(self.partition, f"leader is {self.state}")
        linger_s = self.config.release_linger_s if lazy and self.state == "serving" else 0.0
        try:
            future = self.committer.submit(self.partition, self.epoch, payloads, linger_s=linger_s)
        except Exception as exc:
            self._fail(exc)
            raise Recovering(self.partition, "journal append failed; the leader steps down") from exc
        self._commits.add(future)
        future.add_done_callback(self._committed)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.cancelled():
                raise  # the caller was cancelled; the commit goes on
            raise Recovering(self.partition, "journal append failed; the leader steps down") from None
        except Recovering:
            raise
        except Exception as exc:
            raise Recovering(self.partition, "journal append failed; the leader steps down") from exc

    def _committed(self, future: asyncio.Future[int]) -> None:
        """Bookkeeping of one commit, whoever still waits for it: a failure fails the leader."""
        self._commits.discard(future)
        if future.cancelled():
            self._fail(Recovering(self.partition, "the journal's flusher was cancelled"))
        elif (exc := future.exception()) is not None:
            self._fail(exc)
        else:
            self.last_seq = max(self.last_seq, future.result())

    # ------------------------------------------------------------------ Acquire and Release

    async def acquire(self, args: AcquireArgs) -> Grant:
        """A lease for one invocation: warm, or cold after the worker created the sandbox.

        Idempotent by ``request_id``: a retry gets the grant of the first call (or waits for it).
        Raises :class:`Throttled`, :class:`BadArgument`, :class:`Recovering`, :class:`NotLeader` (handing over).
        """
        core = self.check_serving()
        if args.request_id:
            known = self._requests.get(args.request_id)
            if known is not None:
                grant = await asyncio.shield(known) if isinstance(known, asyncio.Future) else known
                if (grant.function, grant.version) != (args.function, args.version):
                    raise BadArgument("request_id", "already used for another function version")
                if self.core.lease_sandbox(grant.token[1]) != grant.sandbox_id:
                    raise LeaseGone(f"the lease of request {args.request_id!r} has already ended")
                return grant
        now = self.now()
        try:
            decision = core.acquire(
                args.function, args.version, args.memory_mb, args.timeout_ms, now, args.request_id or None, apply=True
            )
        except CoreError as exc:
            raise service_error(exc, self.partition) from None
        if decision.outcome == "throttled":
            raise Throttled(decision.reason or "no_capacity")
        payloads = [record.encode() for record in decision.records]
        future: asyncio.Future[Grant] | None = None
        if args.request_id:
            future = asyncio.get_running_loop().create_future()
            self._requests.remember(args.request_id, future)
        self._enter()
        try:
            await self._commit(payloads)
            assert decision.token is not None
            assert decision.sandbox_id is not None
            assert decision.worker_id is not None
            assert decision.worker_address is not None
            assert decision.expiry_ms is not None
            grant = Grant(
                self.partition,
                decision.token,
                decision.sandbox_id,
                decision.worker_id,
                decision.worker_address,
                decision.outcome == "cold",
                0,
                decision.expiry_ms,
                args.function,
                args.version,
            )
            if decision.outcome == "cold":
                grant = await cold_start.create(self, grant, args, decision.alternatives)
        except BaseException as exc:
            if future is not None:
                error = exc if isinstance(exc, Exception) else Recovering(self.partition, "cancelled")
                self._requests.abandon(args.request_id, future, error)
            raise
        finally:
            self._leave()
        if future is not None:
            self._requests.settle(args.request_id, future, grant)
        return grant

    def worker(self, worker_id: str) -> WorkerView | None:
        """The worker as the live core knows it (``None``: unknown, or no live core)."""
        return self._core.worker(worker_id) if self._core is not None else None

    async def release(self, token: tuple[int, int], outcome: str, *, lazy: bool = False) -> None:
        """Give a lease back; a broken outcome destroys the sandbox (the worker is told in the background).

        ``lazy``: the commit may wait a little to share a transaction (see :meth:`_commit`); for callers
        that do not wait on the answer to serve anyone (a frontend's Release after the invocation answered).

        Raises :class:`UnknownLeaseToken`, :class:`LeaseGone`, :class:`BadArgument`, :class:`Recovering`.
        """
        core = self.check_serving()
        ended = Outcome.of_label(outcome)
        if ended is None:
            raise BadArgument("outcome", f"must be one of {sorted(LABELS)}")
        try:
            holder = core.lease_sandbox(token[1])
            box = core.sandbox(holder) if holder is not None else None
            records = core.release(token, ended.label, self.now(), apply=True)
        except CoreError as exc:
            raise service_error(exc, self.partition, of_lease=True) from None
        self._enter()
        try:
            await self._commit([record.encode() for record in records], lazy=lazy)
        finally:
            self._leave()
        if not ended.keeps_sandbox and box is not None:
            self.tell_worker("destroy", box.worker_id, box.id)

    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()

    # ------------------------------------------------------------------ concurrency and provisioned sandboxes

    async def set_concurrency(self, function: str, reserved: int | None) -> None:
        """Journal the function's reserved concurrency (``None`` removes it); answered after the commit, so
        it survives failover. Raises :class:`BadArgument` (``reserved`` beyond the account limit)."""
        core = self.check_serving()
        try:
            records = core.set_reserved(function, reserved)
        except InvalidArgument as exc:
            raise service_error(exc, self.partition) from None
        await self.busy_change(records)
        log.info("event=concurrency_set partition=%d function=%s reserved=%s", self.partition, function, reserved)

    def sandboxes_of(self, function: str, version: str, memory_mb: int) -> tuple[int, int]:
        """(all, idle) sandboxes of a function version with that memory."""
        return self.core.version_sandboxes(function, version, memory_mb)

    async def ensure_warm(self, args: AcquireArgs, count: int) -> tuple[int, int]:
        """Provisioned concurrency: see :func:`assignment.provisioned.ensure_warm`."""
        return await provisioned.ensure_warm(self, args, count)

    # ------------------------------------------------------------------ workers

    async def sync_workers(self, live: Mapping[str, WorkerInfo]) -> None:
        """Bring the core's workers in line with the live ones: join, update, and drop (failing leases).

        A worker that moved (address, zone) or restarted (another incarnation than this leader saw) is
        dropped and joined again: its sandboxes are gone. Incarnations are not journaled; a new leader
        adopts what it first sees, and its reconcile with each worker finds what a restart before it lost.
        """
        self.synced_workers = dict(live)
        async with self._sync_lock:
            core = self.core
            current = {w.id: (w.address, w.zone, w.capacity_mb) for w in core.workers()}
            changes = reconcile.worker_changes(current, live, self._incarnations)
            for wid in changes.restarted:
                log.warning("event=worker_restarted partition=%d worker=%s", self.partition, wid)
            records: list[Record] = []
            for wid in changes.leave:
                self._dropped.setdefault(wid, set()).update(
                    sandbox_name(self.partition, sid) for sid in core.sandboxes_on(wid)
                )
                records += self._apply_now(core, core.leave_worker(wid))
            self._incarnations = {wid: info.incarnation for wid, info in live.items() if info.incarnation}
            joined = {wid: live[wid] for wid in changes.join}
            for wid, info in joined.items():
                records += self._apply_now(core, core.join_worker(wid, info.zone, info.address, info.capacity_mb))
            for wid in changes.update:
                records += self._apply_now(core, core.update_worker(wid, live[wid].capacity_mb, True))
            if records:
                await self._commit([record.encode() for record in records])
                log.info(
                    "event=workers_synced partition=%d workers=%d records=%d", self.partition, len(live), len(records)
                )
            if joined and self.state == "serving":  # at start, the reconcile before serving does this
                self._spawn(self._clean_joined(joined))

    @staticmethod
    def _apply_now(core: PartitionCore, records: list[Record]) -> list[Record]:
        """Apply at once, so that the next decision of the same batch sees it; the records, to commit."""
        core.apply_all(records)
        return records

    def tell_worker(self, op: WorkerOp, worker_id: str, sandbox_id: int) -> None:
        """In the background, destroy a sandbox on its worker, or reset it (then journal the outcome)."""
        worker = self.worker(worker_id)
        if worker is None:
            return
        address, name = worker.address, sandbox_name(self.partition, sandbox_id)

        async def run() -> None:
            if op == "destroy":
                with contextlib.suppress(WorkerRefused):
                    await self.workers.destroy_sandbox(address, name)
                return
            try:
                await self.workers.reset_sandbox(address, name)
                ok = True
            except WorkerRefused:
                ok = False
            if self.state != "serving" or self._core is None:
                return
            try:
                if ok:
                    records = self._core.reset_done(sandbox_id, self.now())
                else:
                    records = self._core.destroy(sandbox_id, "reset_failed", self.now())
            except CoreError:
                return  # the sandbox went away meanwhile (its worker left)
            with contextlib.suppress(Recovering):
                await self.change(records)
            if not ok:
                with contextlib.suppress(WorkerRefused):
                    await self.workers.destroy_sandbox(address, name)

        self._spawn(run())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; stop waits for it (within its grace), then cancels it."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ background: expiry, idle, snapshots

    async def _background(self) -> None:
        while self.state == "serving":
            await asyncio.sleep(self.config.expiry_interval_s)
            if self.paused or self._core is None:
                continue
            try:
                await self.expire_once()
                await self.maybe_snapshot()
            except Recovering:
                return
            except Exception as exc:
                log.exception("event=background_error partition=%d", self.partition)
                self._fail(exc)
                return

    async def expire_once(self) -> int:
        """Expire leases and reclaim idle sandboxes: see :func:`assignment.upkeep.expire_once`."""
        return await upkeep.expire_once(self)

    def all_committed(self) -> bool:
        """Whether every record applied to the core is committed."""
        return not self._commits

    async def maybe_snapshot(self, *, force: bool = False) -> bool:
        """Write a snapshot when due: see :func:`assignment.upkeep.maybe_snapshot`."""
        return await upkeep.maybe_snapshot(self, force=force)

    def leases(self) -> Iterable[tuple[int, int]]:
        """Tokens of the active leases (tests)."""
        core = self.core
        boxes = [core.sandbox(sid) for w in core.workers() for sid in core.sandboxes_on(w.id)]
        return [(box.lease[0], box.lease[1]) for box in boxes if box is not None and box.lease is not None]
