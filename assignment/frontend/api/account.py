"""GetAccountSettings over HTTP: the account's limits and what it uses of them, as Lambda reports them.

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`AccountApi.routes`. The
limits are the ones this frontend enforces: the concurrency limit it was started with (``--account-limit``)
and what stays unreserved of it, the zip and unzipped code sizes of a request, and the code storage the
registry refuses to pass (CodeStorageExceededException).

Example::

    app.add_routes(AccountApi(context).routes())
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import MAX_UNZIPPED_BYTES, MAX_ZIP_BYTES
from assignment.frontend.types import InvalidParameterValueException

__all__ = ["AccountApi"]


class AccountApi:
    """The account operation."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        return [web.get("/2016-08-19/account-settings", self.get_account_settings)]

    async def get_account_settings(self, request: web.Request) -> web.Response:
        """GetAccountSettings: AccountLimit and AccountUsage."""
        if request.query:
            raise InvalidParameterValueException("GetAccountSettings takes no parameters")
        registry = self.context.registry
        code, functions, reserved = await asyncio.to_thread(registry.account_usage)
        limit = self.context.account_limit
        return web.json_response(
            {
                "AccountLimit": {
                    "TotalCodeSize": registry.code_storage_limit,
                    "CodeSizeUnzipped": MAX_UNZIPPED_BYTES,
                    "CodeSizeZipped": MAX_ZIP_BYTES,
                    "ConcurrentExecutions": limit,
                    "UnreservedConcurrentExecutions": limit - reserved,
                },
                "AccountUsage": {"TotalCodeSize": code, "FunctionCount": functions},
            }
        )
