"""Provisioned concurrency on a partition leader: keep N initialised sandboxes of a version, and pin them
against idle reclaim through the journal.

``EnsureWarm`` creates the sandboxes a version lacks (each a cold acquire with the frontend's template,
then an ``ok`` release, so it ends idle and initialised) and journals a pin (``VersionProvisioned``: N
until now + ``provisioned_hold_s``), which idle reclaim honours on this leader and on any that replays
the journal. Frontends renew it with every top-up; a pin nobody renews lapses.

Imported by :mod:`assignment.leader`, which delegates :meth:`~assignment.leader.PartitionLeader.ensure_warm`
here.

Example::

    sandboxes, created = await ensure_warm(leader, AcquireArgs("resize", "1", 256, 3_000, sandbox=template), 2)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from assignment.errors import BadArgument, LeaseGone, NotLeader, Recovering, Throttled, UnknownLeaseToken
from assignment.grants import AcquireArgs, Grant
from assignment.leader_port import LeaderPort
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT, InvalidArgument, service_error

__all__ = ["ensure_warm", "pin"]

log = logging.getLogger("leasehold.leader")


async def pin(leader: LeaderPort, function: str, version: str, count: int) -> None:
    """Journal the version's provisioned count (``count`` 0 unpins) so idle reclaim — on this leader
    and on any later one — leaves that many sandboxes, until ``config.provisioned_hold_s`` from now.
    A pin already in place is renewed only once half its hold has passed (one record per version
    every few top-ups, not one per top-up)."""
    core = leader.check_serving()
    now = leader.now()
    hold_ms = round(leader.config.provisioned_hold_s * 1000)
    current = core.provisioned_pin(function, version)
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
            raise service_error(exc, leader.partition) from None
    await leader.busy_change(records)
    log.info(
        "event=provisioned_pin partition=%d function=%s version=%s count=%d",
        leader.partition,
        function,
        version,
        count,
    )


async def ensure_warm(leader: LeaderPort, args: AcquireArgs, count: int) -> tuple[int, int]:
    """Create the sandboxes the version lacks to have ``count``; ``(sandboxes, created)``.

    Idle sandboxes are leased for the duration so that the acquires go cold; at most
    ``config.warm_parallel`` creations run at once. When nothing could be created the first error is
    raised (:class:`Throttled`, :class:`BadArgument`, ...).
    """
    leader.check_serving()
    limit = leader.config.account_limit if leader.config.account_limit is not None else DEFAULT_ACCOUNT_LIMIT
    if not 0 <= count <= limit:
        raise BadArgument("count", f"must be in 0..{limit} (the account limit)")
    if args.sandbox is None and count > 0:
        raise BadArgument("sandbox", "provisioned sandboxes need the sandbox template")
    await pin(leader, args.function, args.version, count)
    total, idle = leader.sandboxes_of(args.function, args.version, args.memory_mb)
    if total >= count:
        return total, 0
    attempts = min(count, count - total + idle)
    parallel = asyncio.Semaphore(max(1, leader.config.warm_parallel))
    held: list[Grant] = []
    errors: list[Exception] = []
    plain = AcquireArgs(args.function, args.version, args.memory_mb, args.timeout_ms, "", args.sandbox)

    async def one() -> None:
        async with parallel:
            if errors:
                return
            try:
                held.append(await leader.acquire(plain))
            except (Throttled, BadArgument, LeaseGone) as exc:
                errors.append(exc)

    try:
        await asyncio.gather(*(one() for _ in range(attempts)))
    finally:
        for grant in held:
            with contextlib.suppress(LeaseGone, UnknownLeaseToken, Recovering, NotLeader):
                await leader.release(grant.token, "ok")
    created = sum(1 for grant in held if grant.cold)
    total = leader.sandboxes_of(args.function, args.version, args.memory_mb)[0]
    log.info(
        "event=ensure_warm partition=%d function=%s version=%s count=%d sandboxes=%d created=%d errors=%d",
        leader.partition,
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
