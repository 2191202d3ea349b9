"""One partition's leader: the partition core, the journal (fenced, group-committed) and the grants.

A leader takes over the partition's journal epoch, rebuilds the core from the newest snapshot and the
records after it, journals ``EpochStarted``, brings the core's workers in line with the live ones,
reconciles with what the workers report (orphans destroyed, vanished sandboxes dropped with their leases),
and then serves. Every change follows one rule: decide and apply in the core at once (so the next decision sees
it), append the records through the group committer, and answer only after the commit. If an append
fails — :class:`~journal.errors.Fenced` or anything else — the leader drops its core, stops answering and
tells its owner (``on_failed``), which steps down and contends again.

Background work: lease expiry (the worker resets the sandbox before it is reused), idle reclaim, and a
snapshot every ``snapshot_every`` records, taken when no applied record awaits its commit.

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
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from assignment.errors import BadArgument, LeaseGone, NotLeader, Recovering, Throttled, UnknownLeaseToken
from assignment.members import WorkerInfo
from assignment.partition_core import (
    CoreError,
    InvalidArgument,
    InvalidState,
    NoCapacity,
    PartitionCore,
    Record,
    StaleLease,
    UnknownLease,
)
from assignment.worker_client import SandboxSpec, WorkerClient, WorkerRefused, parse_sandbox_name, sandbox_name
from journal.errors import UnknownPartition
from journal.group_commit import GroupCommitter
from journal.store import Entry, Journal, Snapshot
from journal.tail import Tail, tail
from journal.v1 import records_pb2
from workers.v1 import worker_pb2

__all__ = ["AcquireArgs", "Grant", "LeaderConfig", "PartitionLeader"]

log = logging.getLogger("leasehold.leader")

Outcome = Literal["ok", "function_error", "timeout", "crash", "out_of_memory"]
OUTCOMES: frozenset[str] = frozenset({"ok", "function_error", "timeout", "crash", "out_of_memory"})
_REUSABLE = frozenset({"ok", "function_error"})


@dataclass(frozen=True, slots=True)
class LeaderConfig:
    """Tunables of a partition leader; ``None`` takes the core's default."""

    account_limit: int | None = None
    scale_up_per_window: int | None = None
    scale_up_window_ms: int | None = None
    lease_margin_ms: int | None = None
    idle_keepalive_ms: int | None = None
    #: Write a snapshot after this many records.
    snapshot_every: int = 2000
    #: How often lease expiry and idle reclaim run.
    expiry_interval_s: float = 0.25
    #: How many request ids are remembered for idempotent Acquire.
    request_cache: int = 100_000
    #: How many sandboxes one EnsureWarm creates at the same time.
    warm_parallel: int = 4
    #: How long a lazy commit (a frontend's Release: nobody waits for its answer to serve a user) may wait
    #: for other records to share its transaction, typically the next Acquire of the same client. Any
    #: other commit ends the wait at once. 0 commits at once.
    release_linger_s: float = 0.005
    #: How long an EnsureWarm keeps its version's sandboxes out of idle reclaim (provisioned concurrency).
    #: Frontends renew it with every top-up (every 30 s by default), so it lapses only when its config
    #: is gone or no frontend is left to renew it; keep it well above the frontends' top-up interval.
    provisioned_hold_s: float = 180.0

    def core_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`PartitionCore`."""
        return {
            "account_limit": self.account_limit,
            "scale_up_per_window": self.scale_up_per_window,
            "scale_up_window_ms": self.scale_up_window_ms,
            "lease_margin_ms": self.lease_margin_ms,
            "idle_keepalive_ms": self.idle_keepalive_ms,
        }


@dataclass(frozen=True, slots=True)
class AcquireArgs:
    """An Acquire request, as the leader sees it."""

    function: str
    version: str
    memory_mb: int
    timeout_ms: int
    request_id: str = ""
    #: What a cold start asks the worker to create (the frontend's template; ``None`` with worker doubles).
    sandbox: worker_pb2.CreateSandboxRequest | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A granted lease, answered only after its records were committed."""

    partition: int
    token: tuple[int, int]
    sandbox_id: int
    worker_id: str
    worker_address: str
    cold: bool
    init_ms: int
    expiry_ms: int
    function: str
    version: str

    @property
    def sandbox_name(self) -> str:
        """The sandbox's name on its worker."""
        return sandbox_name(self.partition, self.sandbox_id)


@dataclass(slots=True)
class _Sandbox:
    worker_id: str
    function: str
    version: str


State = Literal["new", "following", "starting", "serving", "stopping", "stopped", "failed"]


def _field_of(exc: InvalidArgument) -> str:
    """The core names the argument first in its message (``memory_mb must be ...``)."""
    word = str(exc).split(" ", 1)[0]
    return word if word.replace("_", "").isalnum() else "request"


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
        self.last_seq = 0
        self.snapshot_seq = 0
        self.failure: BaseException | None = None
        self._core: PartitionCore | None = None
        self._last_now = 0
        self._inflight_records = 0
        self._pending: list[tuple[list[bytes], asyncio.Future[int]]] = []
        self._urgent = 0  # queued commits that are not lazy
        self._linger: asyncio.Future[None] | None = None  # set while the flusher waits for company
        self._flusher: asyncio.Task[None] | None = None
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: dict[str, WorkerInfo] = {}
        self._sandboxes: dict[int, _Sandbox] = {}
        self._leases: dict[int, int] = {}  # lease seq -> sandbox id
        self._fresh: set[int] = set()  # replay only: created sandboxes not leased yet (their first grant was cold)
        self._requests: OrderedDict[str, Grant | asyncio.Future[Grant]] = OrderedDict()
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
        """The live core (for tests and inspection); ``Recovering`` when there is none."""
        if self._core is None:
            raise Recovering(self.partition, f"leader is {self.state}")
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
                    self._core = self._recover(recovery.snapshot, recovery.entries)
                self._tail = tail(self.journal, self.partition, after_seq=self.last_seq)
                async with self._tail as entries:
                    async for entry in entries:
                        if self.state != "following":  # promoted or stopped: the core is not ours to change
                            return
                        self._apply_entry(self._core, entry)
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

    def _recover(self, snapshot: Snapshot | None, entries: Iterable[Entry]) -> PartitionCore:
        """A fresh core (and fresh tracking) from a snapshot and the records after it."""
        self._sandboxes, self._leases, self._workers, self._fresh = {}, {}, {}, set()
        self._requests.clear()
        core = PartitionCore(**self.config.core_kwargs())
        self.last_seq = self.snapshot_seq = 0
        if snapshot is not None:
            core.restore(snapshot.data)
            self._load_state(core)
            self.last_seq = self.snapshot_seq = snapshot.seq
        for entry in entries:
            self._apply_entry(core, entry)
        return core

    def _apply_entry(self, core: PartitionCore, entry: Entry) -> None:
        core.apply(Record.decode(entry.payload))
        self._track(entry.payload, recovered=True)
        self.last_seq = entry.seq

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
                    for entry in entries:
                        self._apply_entry(followed, entry)
                    core, replayed = followed, len(entries)
                except Exception as exc:
                    log.warning("event=follower_catch_up_failed partition=%d error=%r", self.partition, exc)
            if core is None:
                recovery = await asyncio.to_thread(self.journal.recover, self.partition)
                core = self._recover(recovery.snapshot, recovery.entries)
                replayed = len(recovery.entries)
            self._core = core
            self._fresh.clear()
            await self._change(core.start_epoch(self.epoch))
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
        creating = [(sid, box[0]) for sid, box in core.state()["sandboxes"].items() if box[4] == "creating"]
        if not creating:
            return
        now = self._now()
        records = [r for sid, _ in creating for r in core.destroy(sid, "create_failed", now)]
        await self._change(records)
        for sid, worker_id in creating:
            self._worker_call("destroy", worker_id, sid)
        log.info("event=unconfirmed_dropped partition=%d sandboxes=%d", self.partition, len(creating))

    async def _list(self, address: str) -> worker_pb2.ListSandboxesResponse | None:
        try:
            return await self.workers.list_sandboxes(address)
        except WorkerRefused as exc:
            log.info("event=reconcile_skipped partition=%d worker=%s why=%s", self.partition, address, exc)
            return None

    async def _reconcile_workers(self, core: PartitionCore) -> None:
        """Compare the core with what each reachable worker holds: destroy the worker's sandboxes of this
        partition that the core does not know there (orphans), and drop from the core the sandboxes the worker
        no longer has (``vanished``: their leases fail). An unreachable worker is left to the membership rules."""
        workers = dict(self._workers)
        if not workers:
            return
        listings = await asyncio.gather(*(self._list(info.address) for info in workers.values()))
        boxes: dict[int, tuple[Any, ...]] = core.state()["sandboxes"]
        vanished: list[int] = []
        orphans: list[tuple[str, str]] = []
        for (worker_id, info), listing in zip(workers.items(), listings, strict=True):
            if listing is None:
                continue
            names = {s.sandbox_id for s in listing.sandboxes}
            orphans += self._orphans(worker_id, info.address, names, boxes)
            vanished += [
                sid
                for sid, box in boxes.items()
                if box[0] == worker_id and sandbox_name(self.partition, sid) not in names
            ]
        if vanished:
            now = self._now()
            await self._change([r for sid in sorted(vanished) for r in core.destroy(sid, "vanished", now)])
        await self._destroy_all(orphans)
        if vanished or orphans:
            log.info(
                "event=workers_reconciled partition=%d vanished=%d orphans_destroyed=%d",
                self.partition,
                len(vanished),
                len(orphans),
            )

    def _orphans(
        self, worker_id: str, address: str, names: set[str], boxes: Mapping[int, tuple[Any, ...]]
    ) -> list[tuple[str, str]]:
        """``(address, name)`` of the listed sandboxes of this partition the core does not have there."""
        found = []
        for name in sorted(names):
            parsed = parse_sandbox_name(name)
            if parsed is None or parsed[0] != self.partition:
                continue
            box = boxes.get(parsed[1])
            if box is None or box[0] != worker_id:
                found.append((address, name))
        return found

    async def _destroy_all(self, sandboxes: list[tuple[str, str]]) -> None:
        for address, name in sandboxes:
            with contextlib.suppress(WorkerRefused):
                await self.workers.destroy_sandbox(address, name)

    async def _clean_joined(self, joined: Mapping[str, WorkerInfo]) -> None:
        """Destroy what workers that joined again while this leader serves still hold of the sandboxes it
        dropped when they left (a session that expired while the agent lived on): nothing would ever reuse
        or reclaim them. Only those: what the worker lists is matched against this leader's own record of
        what it dropped, never against its view of the partition, which a newer leader may have outgrown."""
        listings = await asyncio.gather(*(self._list(info.address) for info in joined.values()))
        orphans: list[tuple[str, str]] = []
        for (worker_id, info), listing in zip(joined.items(), listings, strict=True):
            dropped = self._dropped.pop(worker_id, set())
            if listing is not None:
                orphans += [(info.address, s.sandbox_id) for s in listing.sandboxes if s.sandbox_id in dropped]
        await self._destroy_all(orphans)
        if orphans:
            log.info("event=joined_workers_cleaned partition=%d orphans_destroyed=%d", self.partition, len(orphans))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop granting, let in-flight operations finish (up to ``grace_s``), stop background work."""
        if self.state in ("stopped", "failed"):
            await self._cancel_tasks()
            return
        self.state = "stopping"
        self._end_linger()  # what is queued is committed now, not after the linger
        await self._stop_following()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_s)
        if self._flusher is not None:  # what was applied is appended before the leader lets go
            await asyncio.wait({self._flusher}, timeout=max(grace_s, 1.0))
        if self._tasks and grace_s > 0:  # destroys and resets already asked of workers
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        await self._cancel_tasks()
        if self.state == "stopping":
            self.state = "stopped"
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
        self._end_linger()  # queued commits fail now rather than after the linger
        for value in self._requests.values():
            if isinstance(value, asyncio.Future) and not value.done():
                value.set_exception(Recovering(self.partition, "the leader failed"))
                value.exception()  # retrieved: nobody may be waiting
        log.warning("event=leader_failed partition=%d epoch=%d error=%r", self.partition, self.epoch, exc)
        if self.loop_task_running():
            assert self._loop_task is not None
            self._loop_task.cancel()
        if self.on_failed is not None:
            self.on_failed(self.partition, exc)

    def loop_task_running(self) -> bool:
        """Whether the background loop is running (tests)."""
        return self._loop_task is not None and not self._loop_task.done()

    def _check_serving(self) -> PartitionCore:
        if self.paused or (self.gate is not None and not self.gate()):
            raise Recovering(self.partition, "coordination is suspended")
        if self.state in ("stopping", "stopped"):  # handing over: the caller should look the leader up again
            raise NotLeader(self.partition, None)
        if self.state != "serving" or self._core is None:
            raise Recovering(self.partition, f"leader is {self.state}")
        return self._core

    # ------------------------------------------------------------------ the commit rule

    def _now(self) -> int:
        now = max(int(self.clock() * 1000), self._last_now)
        self._last_now = now
        return now

    def _apply(self, core: PartitionCore, records: list[Record]) -> None:
        core.apply_all(records)
        for record in records:
            self._track(record.encode())

    async def _commit(self, records: list[Record] | list[bytes], *, lazy: bool = False) -> int:
        """Append records already applied to the core; the seq of the last one once committed.

        The records are queued at once (so the journal's order is the order of application) and appended
        by the leader's one flusher; a caller that is cancelled does not withdraw them — withdrawing
        records already applied would leave a gap that the next leader could not replay. A ``lazy`` commit
        may wait up to ``config.release_linger_s`` for other records to share its transaction (one fsync
        for a Release and the Acquire that follows it); it is still answered only after its commit.
        """
        if not records:
            return self.last_seq
        if self._core is None:
            raise Recovering(self.partition, f"leader is {self.state}")
        payloads = [r if isinstance(r, bytes) else r.encode() for r in records]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((payloads, future))
        self._inflight_records += len(payloads)
        if not lazy:
            self._urgent += 1
            self._end_linger()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name=f"flush-{self.partition}")
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        """Append everything queued, batch after batch, in order; a failure fails the leader."""
        while self._pending and self._core is not None:
            if not self._urgent and self.config.release_linger_s > 0 and self.state == "serving":
                try:
                    await self._wait_for_company(self.config.release_linger_s)
                except asyncio.CancelledError:  # the loop is shutting down: nobody will commit these
                    for _, future in self._pending:
                        if not future.done():
                            future.set_exception(Recovering(self.partition, "the leader's flusher was cancelled"))
                            future.exception()
                    self._inflight_records -= sum(len(group) for group, _ in self._pending)
                    self._pending, self._urgent = [], 0
                    raise
                if self._core is None:
                    break
            batch, self._pending, self._urgent = self._pending, [], 0
            payloads = [payload for group, _ in batch for payload in group]
            try:
                last = await self.committer.append(self.partition, self.epoch, payloads)
            except BaseException as exc:
                failed = [*batch, *self._pending]
                self._pending, self._urgent = [], 0
                self._inflight_records -= sum(len(group) for group, _ in failed)
                error = Recovering(self.partition, "journal append failed; the leader steps down")
                error.__cause__ = exc
                for _, future in failed:
                    if not future.done():
                        future.set_exception(error)
                        future.exception()  # the caller may be gone
                self._fail(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            seq = last - len(payloads)
            self._inflight_records -= len(payloads)
            self.last_seq = max(self.last_seq, last)
            for group, future in batch:
                seq += len(group)
                if not future.done():
                    future.set_result(seq)
        for _, future in self._pending:  # the leader failed meanwhile
            if not future.done():
                future.set_exception(Recovering(self.partition, f"leader is {self.state}"))
                future.exception()
        self._pending, self._urgent = [], 0

    def _end_linger(self) -> None:
        if self._linger is not None and not self._linger.done():
            self._linger.set_result(None)

    async def _wait_for_company(self, linger_s: float) -> None:
        """Until a commit that is not lazy is queued, or ``linger_s`` passed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(linger_s, _settle, waiter)
        self._linger = waiter
        try:
            await waiter
        finally:
            timer.cancel()
            self._linger = None

    async def _change(self, records: list[Record]) -> int:
        """Apply records to the live core, then commit them."""
        core = self.core
        self._apply(core, records)
        return await self._commit(records)

    # ------------------------------------------------------------------ tracking sandboxes and leases

    def _load_state(self, core: PartitionCore) -> None:
        state = core.state()
        self._sandboxes = {sid: _Sandbox(s[0], s[1], s[2]) for sid, s in state["sandboxes"].items()}
        self._leases = {s[6][1]: sid for sid, s in state["sandboxes"].items() if s[6] is not None}
        self._workers = {
            wid: WorkerInfo(wid, addr, zone, cap) for wid, (zone, addr, cap, _used, _h) in state["workers"].items()
        }

    def _track(self, payload: bytes, *, recovered: bool = False) -> None:
        record = records_pb2.Record.FromString(payload)
        kind = record.WhichOneof("kind")
        if kind == "sandbox_creating":
            c = record.sandbox_creating
            self._sandboxes[c.sandbox_id] = _Sandbox(c.worker_id, c.function, c.version)
            if recovered:
                self._fresh.add(c.sandbox_id)
        elif kind == "sandbox_relocated":
            box = self._sandboxes.get(record.sandbox_relocated.sandbox_id)
            if box is not None:
                box.worker_id = record.sandbox_relocated.worker_id
        elif kind == "sandbox_destroyed":
            self._sandboxes.pop(record.sandbox_destroyed.sandbox_id, None)
        elif kind == "worker_joined":
            j = record.worker_joined
            self._workers[j.worker_id] = WorkerInfo(j.worker_id, j.address, j.zone, j.capacity_mb)
        elif kind == "worker_left":
            wid = record.worker_left.worker_id
            self._workers.pop(wid, None)
            for sid in [sid for sid, box in self._sandboxes.items() if box.worker_id == wid]:
                del self._sandboxes[sid]
        elif kind == "lease_granted":
            g = record.lease_granted
            self._leases[g.token.seq] = g.sandbox_id
            cold = g.sandbox_id in self._fresh
            self._fresh.discard(g.sandbox_id)
            if recovered and g.request_id:
                box = self._sandboxes.get(g.sandbox_id)
                worker = self._workers.get(box.worker_id) if box is not None else None
                if box is not None and worker is not None:
                    grant = Grant(
                        self.partition,
                        (g.token.epoch, g.token.seq),
                        g.sandbox_id,
                        box.worker_id,
                        worker.address,
                        cold,
                        0,
                        g.expiry_ms,
                        box.function,
                        box.version,
                    )
                    self._remember(g.request_id, grant)
        elif kind == "lease_released":
            self._leases.pop(record.lease_released.token.seq, None)

    def _remember(self, request_id: str, value: Grant | asyncio.Future[Grant]) -> None:
        self._requests[request_id] = value
        self._requests.move_to_end(request_id)
        while len(self._requests) > self.config.request_cache:
            self._requests.popitem(last=False)

    # ------------------------------------------------------------------ Acquire and Release

    async def acquire(self, args: AcquireArgs) -> Grant:
        """A lease for one invocation: warm, or cold after the worker created the sandbox.

        Idempotent by ``request_id``: a retry gets the grant of the first call (or waits for it).
        Raises :class:`Throttled`, :class:`BadArgument`, :class:`Recovering`, :class:`NotLeader` (handing over).
        """
        core = self._check_serving()
        if args.request_id:
            known = self._requests.get(args.request_id)
            if known is not None:
                grant = await asyncio.shield(known) if isinstance(known, asyncio.Future) else known
                if (grant.function, grant.version) != (args.function, args.version):
                    raise BadArgument("request_id", "already used for another function version")
                if self._leases.get(grant.token[1]) != grant.sandbox_id or grant.sandbox_id not in self._sandboxes:
                    raise LeaseGone(f"the lease of request {args.request_id!r} has already ended")
                return grant
        now = self._now()
        try:
            decision = core.acquire(
                args.function, args.version, args.memory_mb, args.timeout_ms, now, args.request_id or None, apply=True
            )
        except InvalidArgument as exc:
            raise BadArgument(_field_of(exc), str(exc)) from None
        except InvalidState as exc:
            raise Recovering(self.partition, str(exc)) from None
        if decision.outcome == "throttled":
            raise Throttled(decision.reason or "no_capacity")
        records = [record.encode() for record in decision.records]  # encoded once: tracked, then journaled
        for payload in records:
            self._track(payload)
        future: asyncio.Future[Grant] | None = None
        if args.request_id:
            future = asyncio.get_running_loop().create_future()
            self._remember(args.request_id, future)
        self._enter()
        try:
            await self._commit(records)
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
                grant = await self._create(grant, args, decision.alternatives)
        except BaseException as exc:
            if future is not None:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else Recovering(self.partition, "cancelled"))
                    future.exception()
                if self._requests.get(args.request_id) is future:
                    del self._requests[args.request_id]
            raise
        finally:
            self._leave()
        if future is not None:
            if not future.done():
                future.set_result(grant)
            if self._requests.get(args.request_id) is future:
                self._requests[args.request_id] = grant
        return grant

    async def _create(self, grant: Grant, args: AcquireArgs, alternatives: list[str]) -> Grant:
        """Cold path: ask the chosen worker, then the alternatives, to create the sandbox."""
        sid = grant.sandbox_id
        spec = SandboxSpec(
            sandbox_name(self.partition, sid),
            args.function,
            args.version,
            args.memory_mb,
            args.timeout_ms,
            args.sandbox,
        )
        candidates = [grant.worker_id, *alternatives]
        malformed: WorkerRefused | None = None
        for index, worker_id in enumerate(candidates):
            worker = self._workers.get(worker_id)
            if index > 0:
                try:
                    await self._change(self.core.relocate(sid, worker_id))
                except (NoCapacity, InvalidArgument, InvalidState, CoreError):
                    continue
            if worker is None:
                continue
            try:
                init_ms = await self.workers.create_sandbox(worker.address, spec)
            except WorkerRefused as exc:
                log.info(
                    "event=create_refused partition=%d sandbox=%s worker=%s reason=%s why=%s",
                    self.partition,
                    spec.name,
                    worker_id,
                    exc.reason,
                    exc,
                )
                if exc.invalid:  # every worker would refuse the same request
                    malformed = exc
                    break
                if self.state != "serving":
                    break
                continue
            try:
                await self._change(self.core.created(sid, self._now()))
            except CoreError as exc:  # the sandbox vanished meanwhile (its worker left): a retry decides afresh
                raise Recovering(self.partition, f"sandbox {spec.name} vanished while it was created: {exc}") from None
            return Grant(
                grant.partition,
                grant.token,
                sid,
                worker_id,
                worker.address,
                True,
                int(init_ms),
                grant.expiry_ms,
                grant.function,
                grant.version,
            )
        if sid not in self._sandboxes:
            # The chosen worker left while the sandbox was being created (its sandboxes went with it), so
            # there was no chance to place it elsewhere: not a capacity verdict. A retry decides afresh.
            raise Recovering(self.partition, f"the worker chosen for sandbox {spec.name} left during its cold start")
        with contextlib.suppress(CoreError):
            await self._change(self.core.destroy(sid, "create_failed", self._now()))
        if malformed is not None:
            raise BadArgument("sandbox", str(malformed))
        raise Throttled("no_capacity")

    # ------------------------------------------------------------------ concurrency and provisioned sandboxes

    async def set_concurrency(self, function: str, reserved: int | None) -> None:
        """Journal the function's reserved concurrency (``None`` removes it); answered after the commit, so
        it survives failover. Raises :class:`BadArgument` (``reserved`` beyond the account limit)."""
        core = self._check_serving()
        try:
            records = core.set_reserved(function, reserved)
        except InvalidArgument as exc:
            field = _field_of(exc)
            raise BadArgument(field if field in ("function", "reserved") else "reserved", str(exc)) from None
        await self._busy_change(records)
        log.info("event=concurrency_set partition=%d function=%s reserved=%s", self.partition, function, reserved)

    async def _pin(self, function: str, version: str, count: int) -> None:
        """Journal the version's provisioned count (``count`` 0 unpins) so idle reclaim — on this leader
        and on any later one — leaves that many sandboxes, until ``config.provisioned_hold_s`` from now.
        A pin already in place is renewed only once half its hold has passed (one record per version
        every few top-ups, not one per top-up)."""
        core = self._check_serving()
        now = self._now()
        hold_ms = round(self.config.provisioned_hold_s * 1000)
        current = core.state()["provisioned"].get((function, version))
        if count == 0:
            if current is None:
                return
            records = core.set_provisioned(function, version, 0, 0)
        else:
            if current is not None and current[0] == count and current[1] - now > hold_ms // 2:
                return
            try:
                records = core.set_provisioned(function, version, count, now + hold_ms)
            except InvalidArgument as exc:
                raise BadArgument(_field_of(exc) or "count", str(exc)) from None
        await self._busy_change(records)
        log.info(
            "event=provisioned_pin partition=%d function=%s version=%s count=%d",
            self.partition,
            function,
            version,
            count,
        )

    def sandboxes_of(self, function: str, version: str, memory_mb: int) -> tuple[int, int]:
        """(all, idle) sandboxes of a function version with that memory."""
        boxes = self.core.state()["sandboxes"].values()
        mine = [b for b in boxes if (b[1], b[2], b[3]) == (function, version, memory_mb)]
        return len(mine), sum(1 for b in mine if b[4] == "idle")

    async def ensure_warm(self, args: AcquireArgs, count: int) -> tuple[int, int]:
        """Provisioned concurrency: create the sandboxes the version lacks to have ``count`` (each a cold
        acquire with the template, then an ``ok`` release, so it ends idle and initialised).

        Idle sandboxes are leased for the duration so that the acquires go cold; at most
        ``config.warm_parallel`` creations run at once. Returns ``(sandboxes, created)``; when nothing could
        be created the first error is raised (:class:`Throttled`, :class:`BadArgument`, ...).
        """
        self._check_serving()
        limit = self.config.account_limit if self.config.account_limit is not None else 1000
        if not 0 <= count <= limit:
            raise BadArgument("count", f"must be in 0..{limit} (the account limit)")
        if args.sandbox is None and count > 0:
            raise BadArgument("sandbox", "provisioned sandboxes need the sandbox template")
        await self._pin(args.function, args.version, count)
        total, idle = self.sandboxes_of(args.function, args.version, args.memory_mb)
        if total >= count:
            return total, 0
        attempts = min(count, count - total + idle)
        parallel = asyncio.Semaphore(max(1, self.config.warm_parallel))
        held: list[Grant] = []
        errors: list[Exception] = []
        plain = AcquireArgs(args.function, args.version, args.memory_mb, args.timeout_ms, "", args.sandbox)

        async def one() -> None:
            async with parallel:
                if errors:
                    return
                try:
                    held.append(await self.acquire(plain))
                except (Throttled, BadArgument, LeaseGone) as exc:
                    errors.append(exc)

        try:
            await asyncio.gather(*(one() for _ in range(attempts)))
        finally:
            for grant in held:
                with contextlib.suppress(LeaseGone, UnknownLeaseToken, Recovering, NotLeader):
                    await self.release(grant.token, "ok")
        created = sum(1 for grant in held if grant.cold)
        total = self.sandboxes_of(args.function, args.version, args.memory_mb)[0]
        log.info(
            "event=ensure_warm partition=%d function=%s version=%s count=%d sandboxes=%d created=%d errors=%d",
            self.partition,
            args.function,
            args.version,
            count,
            total,
            created,
            len(errors),
        )
        if errors and created == 0 and total < count:
            raise errors[0]
        return total, created

    async def release(self, token: tuple[int, int], outcome: str, *, lazy: bool = False) -> None:
        """Give a lease back; a broken outcome destroys the sandbox (the worker is told in the background).

        ``lazy``: the commit may wait a little to share a transaction (see :meth:`_commit`); for callers
        that do not wait on the answer to serve anyone (a frontend's Release after the invocation answered).

        Raises :class:`UnknownLeaseToken`, :class:`LeaseGone`, :class:`BadArgument`, :class:`Recovering`.
        """
        core = self._check_serving()
        if outcome not in OUTCOMES:
            raise BadArgument("outcome", f"must be one of {sorted(OUTCOMES)}")
        oc = cast(Outcome, outcome)  # checked against OUTCOMES above
        sandbox = self._leases.get(token[1])
        box = self._sandboxes.get(sandbox) if sandbox is not None else None
        try:
            records = core.release(token, oc, self._now(), apply=True)
        except UnknownLease as exc:
            raise UnknownLeaseToken(str(exc)) from None
        except (StaleLease, InvalidState) as exc:
            raise LeaseGone(str(exc)) from None
        except InvalidArgument as exc:
            raise BadArgument("token", str(exc)) from None
        payloads = [record.encode() for record in records]  # encoded once: tracked, then journaled
        for payload in payloads:
            self._track(payload)
        if outcome not in _REUSABLE and sandbox is not None:
            self._sandboxes.pop(sandbox, None)
        self._enter()
        try:
            await self._commit(payloads, lazy=lazy)
        finally:
            self._leave()
        if outcome not in _REUSABLE and sandbox is not None and box is not None:
            self._worker_call("destroy", box.worker_id, sandbox)

    async def _busy_change(self, records: list[Record]) -> None:
        """:meth:`_change` as a request's work, which a graceful stop waits for."""
        self._enter()
        try:
            await self._change(records)
        finally:
            self._leave()

    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()

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
            records: list[Record] = []
            current = dict(self._workers)

            def replaced(wid: str, old: WorkerInfo) -> bool:
                new = live.get(wid)
                if new is None or (new.address, new.zone) != (old.address, old.zone):
                    return True
                seen = self._incarnations.get(wid, "")
                if seen and new.incarnation and new.incarnation != seen:
                    log.warning("event=worker_restarted partition=%d worker=%s", self.partition, wid)
                    return True
                return False

            gone = {wid for wid, info in current.items() if replaced(wid, info)}
            for wid in sorted(gone):
                names = {
                    sandbox_name(self.partition, sid) for sid, box in self._sandboxes.items() if box.worker_id == wid
                }
                self._dropped.setdefault(wid, set()).update(names)
                records += core.leave_worker(wid)
                core.apply_all(records[-1:])
                self._track(records[-1].encode())
            self._incarnations = {wid: info.incarnation for wid, info in live.items() if info.incarnation}
            joined: dict[str, WorkerInfo] = {}
            for wid, new in live.items():
                old = current.get(wid)
                if old is None or wid in gone:
                    rec = core.join_worker(wid, new.zone, new.address, new.capacity_mb)
                    joined[wid] = new
                elif new.capacity_mb != old.capacity_mb:
                    rec = core.update_worker(wid, new.capacity_mb, True)
                else:
                    continue
                core.apply_all(rec)
                for r in rec:
                    self._track(r.encode())
                records += rec
            if records:
                await self._commit(records)
                log.info(
                    "event=workers_synced partition=%d workers=%d records=%d", self.partition, len(live), len(records)
                )
            if joined and self.state == "serving":  # at start, the reconcile before serving does this
                self._spawn(self._clean_joined(joined))

    def _worker_call(self, op: Literal["destroy", "reset"], worker_id: str, sandbox_id: int) -> None:
        worker = self._workers.get(worker_id)
        if worker is None:
            return
        name = sandbox_name(self.partition, sandbox_id)

        async def run() -> None:
            if op == "destroy":
                with contextlib.suppress(WorkerRefused):
                    await self.workers.destroy_sandbox(worker.address, name)
                return
            try:
                await self.workers.reset_sandbox(worker.address, name)
                ok = True
            except WorkerRefused:
                ok = False
            if self.state != "serving" or self._core is None:
                return
            try:
                if ok:
                    records = self._core.reset_done(sandbox_id, self._now())
                else:
                    records = self._core.destroy(sandbox_id, "reset_failed", self._now())
            except CoreError:
                return  # the sandbox went away meanwhile (its worker left)
            with contextlib.suppress(Recovering):
                await self._change(records)
            if not ok:
                with contextlib.suppress(WorkerRefused):
                    await self.workers.destroy_sandbox(worker.address, name)

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
        """Expire leases past their time (their sandboxes are reset) and reclaim idle sandboxes."""
        core = self._check_serving()
        records = core.expire(self._now())
        if not records:
            return 0
        targets: list[tuple[Literal["destroy", "reset"], str, int]] = []
        for record in records:
            decoded = records_pb2.Record.FromString(record.encode())
            kind = decoded.WhichOneof("kind")
            if kind == "lease_expired":
                sid = self._leases.pop(decoded.lease_expired.token.seq, None)
                if sid is not None and sid in self._sandboxes:
                    targets.append(("reset", self._sandboxes[sid].worker_id, sid))
            elif kind == "sandbox_destroyed":
                box = self._sandboxes.get(decoded.sandbox_destroyed.sandbox_id)
                if box is not None:
                    targets.append(("destroy", box.worker_id, decoded.sandbox_destroyed.sandbox_id))
        await self._change(records)
        for op, worker_id, sid in targets:
            self._worker_call(op, worker_id, sid)
        return len(records)

    def all_committed(self) -> bool:
        """Whether every applied record is committed (tests)."""
        return self._inflight_records == 0 and not self._pending

    async def maybe_snapshot(self, *, force: bool = False) -> bool:
        """Write a snapshot when enough records were committed and none is awaiting its commit."""
        if self._core is None or self._inflight_records or self.last_seq == 0:
            return False
        if not force and self.last_seq - self.snapshot_seq < self.config.snapshot_every:
            return False
        data, seq = self._core.snapshot(), self.last_seq
        await asyncio.to_thread(self.journal.write_snapshot, self.partition, seq, data)
        self.snapshot_seq = seq
        log.info("event=snapshot partition=%d seq=%d bytes=%d", self.partition, seq, len(data))
        return True

    def leases(self) -> Iterable[tuple[int, int]]:
        """Tokens of the active leases (tests)."""
        state = self.core.state()
        return [(s[6][0], s[6][1]) for s in state["sandboxes"].values() if s[6] is not None]
