"""The admin JSON API for the ``leasehold`` CLI: ``/_leasehold/v1/status`` (the cluster at a glance),
``/_leasehold/v1/logs/{function}`` (recent invocation logs), ``/_leasehold/v1/dlq/{function}`` (dead letters).

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`AdminApi.routes`; read by
``assignment/commands/`` through the CLI's client.

Example::

    app.add_routes(AdminApi(context).routes())
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from assignment.frontend.api.context import ApiContext
from assignment.frontend.registry import LATEST
from assignment.frontend.types import InvalidParameterValueException
from assignment.frontend.validation import check_name

__all__ = ["AdminApi"]


def _limit(request: web.Request, default: int = 100) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise InvalidParameterValueException("limit must be an integer between 1 and 10000")
    return int(raw)


class AdminApi:
    """Leasehold's own read-only operations."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        return [
            web.get("/_leasehold/v1/status", self.status),
            web.get("/_leasehold/v1/logs/{name}", self.recent_logs),
            web.get("/_leasehold/v1/dlq/{name}", self.dead_letters),
        ]

    async def status(self, request: web.Request) -> web.Response:
        """The cluster at a glance: partitions, workers, warm sandboxes per function, the async event queue's
        depth, and the SQS queues' depths and event source mappings' states."""
        backend = self.context.invoker.backend
        coordinator, events = self.context.coordinator, self.context.events
        partitions = await backend.routes()
        workers: list[dict[str, Any]] = []
        functions: dict[tuple[str, str], int] = {}
        members = coordinator.workers() if coordinator is not None else {}
        listings = await asyncio.gather(*(backend.list_sandboxes(info.address) for info in members.values()))
        for info, listing in zip(members.values(), listings, strict=True):
            entry: dict[str, Any] = {
                "worker_id": info.worker_id,
                "address": info.address,
                "zone": info.zone,
                "memory_mb": info.capacity_mb,
                "free_memory_mb": None,
                "sandboxes": None,
            }
            if listing is not None:
                entry.update(
                    memory_mb=listing.memory_mb or info.capacity_mb,
                    free_memory_mb=listing.free_memory_mb,
                    sandboxes=len(listing.sandboxes),
                )
                for sandbox in listing.sandboxes:
                    key = (sandbox.function_name, sandbox.function_version or LATEST)
                    functions[key] = functions.get(key, 0) + 1
            workers.append(entry)
        depth = await events.depth() if events is not None else 0
        sources = await self.context.sources.read() if self.context.sources is not None else {}
        return web.json_response(
            {
                **sources,
                "partitions": partitions,
                "workers": workers,
                "functions": [
                    {"name": name, "version": version, "sandboxes": count}
                    for (name, version), count in sorted(functions.items())
                ],
                "queue_depth": depth,
            }
        )

    async def recent_logs(self, request: web.Request) -> web.Response:
        """Recent invocation logs of a function (this frontend's)."""
        name = check_name(request.match_info["name"])
        return web.json_response({"events": self.context.invoker.logs.recent(name, _limit(request))})

    async def dead_letters(self, request: web.Request) -> web.Response:
        """Async events of a function that ran out of retries."""
        name = check_name(request.match_info["name"])
        if self.context.events is None:
            return web.json_response({"items": []})
        return web.json_response({"items": await self.context.events.dead_letters(name, _limit(request))})
