"""Provisioned and reserved concurrency kept true on the cluster: requests, status and a top-up loop.

``PutProvisionedConcurrencyConfig`` stores the count (registry) and calls :meth:`Provisioner.request`,
which asks the leader (``ensure_warm``) in the background; ``GetProvisionedConcurrencyConfig`` reads
:meth:`Provisioner.status`. Every ``interval_s`` the loop re-asks for every stored config (sandboxes lost
with a worker come back) and, at start, re-asserts every function's reserved concurrency. A config is on
a version or on an alias; an alias's is shared between the versions it routes to by weight
(:class:`~assignment.frontend.registry.ProvisionedShare`), and follows the alias when it moves.

Each ``ensure_warm`` also pins the version's sandboxes against idle reclaim for the leader's
``provisioned_hold_s``; the loop's re-asking renews the pin, so ``interval_s`` must stay well below that
hold. ``DeleteProvisionedConcurrencyConfig`` unpins at once (:meth:`Provisioner.withdraw`); a deleted
function's pins lapse when nobody renews them.

Example::

    provisioner = Provisioner(registry, backend, interval_s=30.0)
    await provisioner.start()
    provisioner.request("resize", "1", registry.set_provisioned("resize", "1", 4))
    status = provisioner.status("resize", "1")  # {"allocated": 4, "status": "READY", "reason": ""}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from assignment.frontend.backend import Backend
from assignment.frontend.registry import FunctionVersion, ProvisionedShare, Registry
from assignment.frontend.types import LambdaError

__all__ = ["Provisioner"]

log = logging.getLogger("leasehold.frontend.provisioning")


class Provisioner:
    """Keeps provisioned sandboxes topped up and reserved concurrency asserted."""

    def __init__(self, registry: Registry, backend: Backend, *, interval_s: float = 30.0) -> None:
        self.registry = registry
        self.backend = backend
        self.interval_s = interval_s
        self._status: dict[tuple[str, str], dict[str, object]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def status(self, name: str, qualifier: str) -> dict[str, object]:
        """``{"allocated", "status" (IN_PROGRESS | READY | FAILED), "reason"}`` of the config on a version or
        alias, as last seen here."""
        return dict(self._status.get((name, qualifier), {"allocated": 0, "status": "IN_PROGRESS", "reason": ""}))

    def forget(self, name: str, qualifier: str | None = None) -> None:
        """Drop the status of a deleted config or function."""
        for key in [k for k in self._status if k[0] == name and (qualifier is None or k[1] == qualifier)]:
            del self._status[key]

    def request(self, name: str, qualifier: str, shares: Sequence[ProvisionedShare]) -> None:
        """Ask for the warm sandboxes of the config on ``name:qualifier`` (its ``shares``: one version, or an
        alias's versions) in the background."""
        self._status[(name, qualifier)] = {"allocated": 0, "status": "IN_PROGRESS", "reason": ""}
        self._spawn(self._ensure(name, qualifier, shares))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def withdraw(self, name: str, qualifier: str, shares: Sequence[ProvisionedShare]) -> None:
        """The config on ``name:qualifier`` is gone (or no longer warms ``shares``' versions): unpin them
        (in the background; were the call to fail, the pin lapses by itself) and forget its status. They
        stay warm until idle reclaim takes them."""
        self.forget(name, qualifier)
        for share in shares:
            self._spawn(self._unpin(share.version))

    def unpin_moved(self, before: Sequence[ProvisionedShare], after: Sequence[ProvisionedShare]) -> None:
        """A config now warms ``after`` instead of ``before`` (its alias moved): unpin the versions it left."""
        kept = {share.version.version for share in after}
        for share in before:
            if share.version.version not in kept:
                self._spawn(self._unpin(share.version))

    async def _unpin(self, version: FunctionVersion) -> None:
        config = version.config(self.registry.function_arn(version.name, version.version))
        try:
            await self.backend.ensure_warm(config, 0)
        except LambdaError as exc:
            log.warning("event=unpin_failed function=%s version=%s error=%s", config.name, config.version, exc.message)

    async def _ensure(self, name: str, qualifier: str, shares: Sequence[ProvisionedShare]) -> None:
        key = (name, qualifier)
        allocated, wanted = 0, 0
        for share in shares:
            version = share.version
            config = version.config(self.registry.function_arn(version.name, version.version))
            try:
                sandboxes, created = await self.backend.ensure_warm(config, share.count)
            except LambdaError as exc:
                log.warning("event=provision_failed function=%s qualifier=%s error=%s", *key, exc.message)
                self._status[key] = {"allocated": 0, "status": "FAILED", "reason": exc.message[:200]}
                return
            allocated += min(sandboxes, share.count)
            wanted += share.count
            log.info(
                "event=provisioned function=%s qualifier=%s version=%s count=%d sandboxes=%d created=%d",
                *key,
                version.version,
                share.count,
                sandboxes,
                created,
            )
        ready = allocated >= wanted
        self._status[key] = {
            "allocated": allocated,
            "status": "READY" if ready else "IN_PROGRESS",
            "reason": "" if ready else f"{allocated} of {wanted} sandboxes are ready",
        }

    async def top_up(self) -> None:
        """Re-ask for every stored provisioned concurrency config once."""
        configs: dict[tuple[str, str], list[ProvisionedShare]] = {}
        for share in await asyncio.to_thread(self.registry.all_provisioned):
            configs.setdefault((share.version.name, share.qualifier), []).append(share)
        for (name, qualifier), shares in configs.items():
            await self._ensure(name, qualifier, shares)

    async def assert_reserved(self) -> None:
        """Tell the leaders every function's reserved concurrency."""
        for name, reserved in (await asyncio.to_thread(self.registry.all_reserved)).items():
            try:
                await self.backend.set_concurrency(name, reserved)
            except LambdaError as exc:
                log.warning("event=reserve_failed function=%s error=%s", name, exc.message)

    async def _run(self) -> None:
        await self.assert_reserved()
        while True:
            try:
                await self.top_up()
            except Exception:  # keep the loop alive; the next round retries
                log.exception("event=top_up_failed")
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        """Start the loop (reserved concurrency first, then provisioned top-ups)."""
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the loop and any request in flight."""
        tasks = [*self._tasks, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop_task = None
