"""A partition leader's background upkeep: lease expiry, idle reclaim and snapshots.

Every ``expiry_interval_s`` the leader asks its core what has expired at ``now``: leases past their
time (their sandboxes are reset on the worker before reuse) and idle sandboxes past their keep-alive
(destroyed). A snapshot is written every ``snapshot_every`` records, only when no applied record
awaits its commit (so the snapshot's seq covers exactly the state it holds).

Imported by :mod:`assignment.leader`, which delegates to it.

Example::

    expired = await expire_once(leader)
    await maybe_snapshot(leader)
"""

from __future__ import annotations

import asyncio
import logging

from assignment.leader_port import LeaderPort, WorkerOp
from assignment.partition_core import PartitionCore, Record
from journal.v1 import records_pb2

__all__ = ["WorkerCall", "expire_once", "expiry_calls", "maybe_snapshot"]

log = logging.getLogger("leasehold.leader")

#: What a worker is told about one of its sandboxes: ``(op, worker_id, sandbox_id)``.
WorkerCall = tuple[WorkerOp, str, int]


def expiry_calls(core: PartitionCore, records: list[Record]) -> list[WorkerCall]:
    """What the workers must do for expiry records not yet applied: reset a sandbox whose lease expired,
    destroy a reclaimed idle one."""
    calls: list[WorkerCall] = []
    for record in records:
        decoded = records_pb2.Record.FromString(record.encode())
        kind = decoded.WhichOneof("kind")
        if kind == "lease_expired":
            sid = core.lease_sandbox(decoded.lease_expired.token.seq)
            box = core.sandbox(sid) if sid is not None else None
            if box is not None:
                calls.append(("reset", box.worker_id, box.id))
        elif kind == "sandbox_destroyed":
            box = core.sandbox(decoded.sandbox_destroyed.sandbox_id)
            if box is not None:
                calls.append(("destroy", box.worker_id, box.id))
    return calls


async def expire_once(leader: LeaderPort) -> int:
    """Expire leases past their time (their sandboxes are reset) and reclaim idle sandboxes; how many
    records that took."""
    core = leader.check_serving()
    records = core.expire(leader.now())
    if not records:
        return 0
    calls = expiry_calls(core, records)
    await leader.change(records)
    for op, worker_id, sid in calls:
        leader.tell_worker(op, worker_id, sid)
    return len(records)


async def maybe_snapshot(leader: LeaderPort, *, force: bool = False) -> bool:
    """Write a snapshot when enough records were committed and none is awaiting its commit."""
    core = leader.live_core
    if core is None or not leader.all_committed() or leader.last_seq == 0:
        return False
    if not force and leader.last_seq - leader.snapshot_seq < leader.config.snapshot_every:
        return False
    data, seq = core.snapshot(), leader.last_seq
    await asyncio.to_thread(leader.journal.write_snapshot, leader.partition, seq, data)
    leader.snapshot_seq = seq
    log.info("event=snapshot partition=%d seq=%d bytes=%d", leader.partition, seq, len(data))
    return True
