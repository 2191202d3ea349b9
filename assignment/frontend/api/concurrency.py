"""Concurrency over HTTP: Put/Get/DeleteFunctionConcurrency (reserved) and
Put/Get/Delete/ListProvisionedConcurrencyConfig(s) (provisioned, on published versions and on aliases).

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`ConcurrencyApi.routes`.

Example::

    app.add_routes(ConcurrencyApi(context).routes())
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from assignment.frontend.api import documents
from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import function_name, page, read_json, required_qualifier, single
from assignment.frontend.types import InvalidParameterValueException, ProvisionedConcurrencyConfigNotFoundException
from assignment.frontend.validation import Fields

__all__ = ["ConcurrencyApi"]

log = logging.getLogger("leasehold.frontend.http")


class ConcurrencyApi:
    """Reserved and provisioned concurrency."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.registry = context.registry

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        provisioned = "/2019-09-30/functions/{name}/provisioned-concurrency"
        return [
            web.put("/2017-10-31/functions/{name}/concurrency", self.put_concurrency),
            web.delete("/2017-10-31/functions/{name}/concurrency", self.delete_concurrency),
            web.get("/2019-09-30/functions/{name}/concurrency", self.get_concurrency),
            web.put(provisioned, self.put_provisioned),
            web.get(provisioned, self.get_provisioned),
            web.delete(provisioned, self.delete_provisioned),
        ]

    # ------------------------------------------------------------------ reserved

    async def put_concurrency(self, request: web.Request) -> web.Response:
        """PutFunctionConcurrency."""
        name, _ = function_name(request, qualified=False)
        fields = Fields(await read_json(request), allowed={"ReservedConcurrentExecutions"})
        reserved = fields.integer("ReservedConcurrentExecutions", lo=0, hi=self.context.account_limit, required=True)
        await asyncio.to_thread(self.registry.set_reserved, name, reserved)
        await self.context.invoker.backend.set_concurrency(name, reserved)
        log.info("event=reserved_concurrency function=%s reserved=%d", name, reserved)
        return web.json_response({"ReservedConcurrentExecutions": reserved})

    async def delete_concurrency(self, request: web.Request) -> web.Response:
        """DeleteFunctionConcurrency → 204."""
        name, _ = function_name(request, qualified=False)
        await asyncio.to_thread(self.registry.set_reserved, name, None)
        await self.context.invoker.backend.set_concurrency(name, None)
        return web.Response(status=204)

    async def get_concurrency(self, request: web.Request) -> web.Response:
        """GetFunctionConcurrency."""
        name, _ = function_name(request, qualified=False)
        reserved = await asyncio.to_thread(self.registry.reserved, name)
        return web.json_response({} if reserved is None else {"ReservedConcurrentExecutions": reserved})

    # ------------------------------------------------------------------ provisioned

    def _doc(self, name: str, version: str, count: int, modified_ms: int) -> dict[str, Any]:
        return documents.provisioned(self.context.provisioner.status(name, version), count, modified_ms)

    async def put_provisioned(self, request: web.Request) -> web.Response:
        """PutProvisionedConcurrencyConfig (a published version, or an alias of published versions) → 202;
        sandboxes are started in the background."""
        name, qualifier = required_qualifier(request)
        fields = Fields(await read_json(request), allowed={"ProvisionedConcurrentExecutions"})
        count = fields.integer("ProvisionedConcurrentExecutions", lo=1, hi=self.context.account_limit, required=True)
        before = await asyncio.to_thread(self.registry.provisioned_shares, name, qualifier)
        shares = await asyncio.to_thread(self.registry.set_provisioned, name, qualifier, count)
        self.context.provisioner.request(name, qualifier, shares)
        self.context.provisioner.unpin_moved(before, shares)
        return web.json_response(self._doc(name, qualifier, count, int(time.time() * 1000)), status=202)

    async def get_provisioned(self, request: web.Request) -> web.Response:
        """GetProvisionedConcurrencyConfig, or ListProvisionedConcurrencyConfigs (``?List=ALL``, same path).
        A version without a config is ProvisionedConcurrencyConfigNotFoundException (404), a missing version
        ResourceNotFoundException."""
        if "List" in request.query:
            return await self.list_provisioned(request)
        name, qualifier = required_qualifier(request)
        found = await asyncio.to_thread(self.registry.provisioned, name, qualifier)
        if found is None:
            arn = self.registry.function_arn(name, qualifier)
            raise ProvisionedConcurrencyConfigNotFoundException(
                f"No Provisioned Concurrency Config found for this function: {arn}"
            )
        return web.json_response(self._doc(name, qualifier, *found))

    async def list_provisioned(self, request: web.Request) -> web.Response:
        """ListProvisionedConcurrencyConfigs (``?List=ALL``): by version; ``Marker`` is the last version of
        the previous page."""
        marker, limit = page(request, most=50, extra={"List"})
        if single(request, "List") != "ALL":
            raise InvalidParameterValueException("List must be ALL")
        name, _ = function_name(request, qualified=False)
        found = await asyncio.to_thread(self.registry.provisioned_configs, name, marker=marker, limit=limit + 1)
        found, doc = documents.one_page(found, limit, lambda last: last[0])
        doc["ProvisionedConcurrencyConfigs"] = [
            {"FunctionArn": self.registry.function_arn(name, version), **self._doc(name, version, *rest)}
            for version, *rest in found
        ]
        return web.json_response(doc)

    async def delete_provisioned(self, request: web.Request) -> web.Response:
        """DeleteProvisionedConcurrencyConfig → 204."""
        name, qualifier = required_qualifier(request)
        shares = await asyncio.to_thread(self.registry.provisioned_shares, name, qualifier)
        await asyncio.to_thread(self.registry.delete_provisioned, name, qualifier)
        self.context.provisioner.withdraw(name, qualifier, shares)
        return web.Response(status=204)
