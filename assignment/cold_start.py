"""The cold start of a granted lease: the sandbox is created on the chosen worker, or on the next-best.

The core's cold decision journals ``SandboxCreating`` + ``LeaseGranted`` on a chosen worker with ranked
alternatives. :func:`create` asks the chosen worker to create the sandbox (with the frontend's template)
and, when it refuses, journals ``SandboxRelocated`` to the next alternative and asks that one. The first
worker that creates it is journaled (``SandboxCreated``) and answered; when every one refuses the sandbox
is destroyed and the Acquire is throttled (``no_capacity``), or refused as malformed when a worker says
no worker could ever create it.

Imported by :mod:`assignment.leader` only, which calls it while a cold Acquire is in flight.

Example::

    grant = await create(leader, grant, args, decision.alternatives)
"""

from __future__ import annotations

import contextlib
import logging

from assignment.errors import BadArgument, Recovering, Throttled
from assignment.grants import AcquireArgs, Grant
from assignment.leader_port import LeaderPort
from assignment.partition_core import CoreError
from assignment.worker_client import SandboxSpec, WorkerRefused, sandbox_name

__all__ = ["create"]

log = logging.getLogger("leasehold.leader")


async def create(leader: LeaderPort, grant: Grant, args: AcquireArgs, alternatives: list[str]) -> Grant:
    """Ask the chosen worker, then the alternatives, to create the granted sandbox; the grant as created."""
    sid = grant.sandbox_id
    spec = SandboxSpec(
        sandbox_name(leader.partition, sid),
        args.function,
        args.version,
        args.memory_mb,
        args.timeout_ms,
        args.sandbox,
    )
    candidates = [grant.worker_id, *alternatives]
    malformed: WorkerRefused | None = None
    for index, worker_id in enumerate(candidates):
        worker = leader.worker(worker_id)
        if index > 0:
            try:
                await leader.change(leader.core.relocate(sid, worker_id))
            except CoreError:
                continue
        if worker is None:
            continue
        try:
            init_ms = await leader.workers.create_sandbox(worker.address, spec)
        except WorkerRefused as exc:
            log.info(
                "event=create_refused partition=%d sandbox=%s worker=%s reason=%s why=%s",
                leader.partition,
                spec.name,
                worker_id,
                exc.reason,
                exc,
            )
            if exc.invalid:  # every worker would refuse the same request
                malformed = exc
                break
            if leader.state != "serving":
                break
            continue
        try:
            await leader.change(leader.core.created(sid, leader.now()))
        except CoreError as exc:  # the sandbox vanished meanwhile (its worker left): a retry decides afresh
            raise Recovering(leader.partition, f"sandbox {spec.name} vanished while it was created: {exc}") from None
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
    if leader.core.sandbox(sid) is None:
        # The chosen worker left while the sandbox was being created (its sandboxes went with it), so
        # there was no chance to place it elsewhere: not a capacity verdict. A retry decides afresh.
        raise Recovering(leader.partition, f"the worker chosen for sandbox {spec.name} left during its cold start")
    with contextlib.suppress(CoreError):
        await leader.change(leader.core.destroy(sid, "create_failed", leader.now()))
    if malformed is not None:
        raise BadArgument("sandbox", str(malformed))
    raise Throttled("no_capacity")
