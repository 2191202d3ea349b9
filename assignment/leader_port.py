"""A partition leader's configuration, and the face it shows the modules cut out of it.

:mod:`assignment.cold_start`, :mod:`assignment.provisioned` and :mod:`assignment.upkeep` are parts of the
leader kept in modules of their own for reading; each takes the leader as an argument. :class:`LeaderPort`
is the leader as they see it — what they may call, nothing more — so they import nothing above them;
:class:`~assignment.leader.PartitionLeader` implements it, and mypy checks that wherever the leader hands
itself over.

Example::

    async def expire_once(leader: LeaderPort) -> int:
        records = leader.check_serving().expire(leader.now())
        ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from assignment.grants import AcquireArgs, Grant
from assignment.partition_core import PartitionCore, Record, WorkerView
from assignment.worker_client import WorkerClient
from journal.store import Journal

__all__ = ["LeaderConfig", "LeaderPort", "State", "WorkerOp"]

#: A leader's life: new → (following →) starting → serving → stopping → stopped, or failed.
State = Literal["new", "following", "starting", "serving", "stopping", "stopped", "failed"]
#: What a worker is told to do with one of the partition's sandboxes.
WorkerOp = Literal["destroy", "reset"]


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
    #: in the group committer for other records to share its transaction, typically the next Acquire of
    #: the same client. Any other commit ends the wait at once. 0 commits at once.
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


class LeaderPort(Protocol):
    """What the leader's helper modules use of it (see the module's docstring)."""

    @property
    def partition(self) -> int: ...
    @property
    def config(self) -> LeaderConfig: ...
    @property
    def state(self) -> State: ...
    @property
    def journal(self) -> Journal: ...
    @property
    def workers(self) -> WorkerClient: ...
    @property
    def core(self) -> PartitionCore: ...
    @property
    def live_core(self) -> PartitionCore | None: ...
    @property
    def last_seq(self) -> int: ...

    #: The seq of the newest snapshot (upkeep writes snapshots and sets it).
    snapshot_seq: int

    def check_serving(self) -> PartitionCore: ...
    def now(self) -> int: ...
    async def change(self, records: list[Record]) -> int: ...
    async def busy_change(self, records: list[Record]) -> None: ...
    def tell_worker(self, op: WorkerOp, worker_id: str, sandbox_id: int) -> None: ...
    def worker(self, worker_id: str) -> WorkerView | None: ...
    def all_committed(self) -> bool: ...
    def sandboxes_of(self, function: str, version: str, memory_mb: int) -> tuple[int, int]: ...
    async def acquire(self, args: AcquireArgs) -> Grant: ...
    async def release(self, token: tuple[int, int], outcome: str, *, lazy: bool = False) -> None: ...
