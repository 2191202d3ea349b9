"""Invoke over HTTP: ``RequestResponse`` (200), ``Event`` (202, through the event queue), ``DryRun`` (204).

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi`, which also asks :class:`InvokeApi` how
many invocations are in flight (a graceful stop waits for them).

Example::

    invoke = InvokeApi(context)
    app.add_routes(invoke.routes())
    await invoke.wait_idle()
"""

from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import REQUEST_ID, function_name, read_body
from assignment.frontend.invoker import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT, check_payload, decode_client_context
from assignment.frontend.types import InvalidParameterValueException, ServiceException

__all__ = ["InvokeApi"]

#: Invoke's header members Leasehold has no feature for: refused when present, never ignored.
_UNSUPPORTED_HEADERS = (
    ("X-Amz-Durable-Execution-Name", "DurableExecutionName", "durable executions are not implemented"),
    ("X-Amz-Tenant-Id", "TenantId", "functions have no tenant isolation mode"),
)


class InvokeApi:
    """The Invoke operation, counting the synchronous invocations in flight."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        #: Invocations in flight (graceful stop waits for them).
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        return [web.post("/2015-03-31/functions/{name}/invocations", self.invoke)]

    async def wait_idle(self) -> None:
        """Until no invocation is in flight."""
        await self._idle.wait()

    async def invoke(self, request: web.Request) -> web.Response:
        """Invoke: RequestResponse → 200, Event → 202, DryRun → 204."""
        name, qualifier = function_name(request)
        kind = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise InvalidParameterValueException(f"Invalid InvocationType {kind[:40]!r}")
        log_type = request.headers.get("X-Amz-Log-Type", "None")
        if log_type not in ("None", "Tail"):
            raise InvalidParameterValueException(f"Invalid LogType {log_type[:40]!r}")
        client_context = decode_client_context(request.headers.get("X-Amz-Client-Context", ""))
        for header, member, why in _UNSUPPORTED_HEADERS:
            if header in request.headers:
                raise InvalidParameterValueException(f"{member} is not supported by Leasehold: {why}")
        payload = await read_body(request, SYNC_PAYLOAD_LIMIT)
        request_id = request[REQUEST_ID]
        invoker = self.context.invoker
        if kind == "Event":
            config = await invoker.resolve(name, qualifier)
            check_payload(payload, ASYNC_PAYLOAD_LIMIT)
            if self.context.events is None:
                raise ServiceException("Asynchronous invocation is not available on this frontend")
            # An alias stays the event's qualifier: its event invoke config applies, and its weights route
            # the invocation when it runs.
            await self.context.events.enqueue(name, qualifier or config.version, payload, request_id)
            return web.Response(status=202)
        if kind == "DryRun":
            await invoker.resolve(name, qualifier)
            return web.Response(status=204)
        self.in_flight += 1
        self._idle.clear()
        try:
            result = await invoker.invoke(
                name, qualifier, payload, request_id=request_id, client_context=client_context
            )
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        headers = {
            "X-Amz-Executed-Version": result.executed_version,
            "Content-Type": "application/json",
            "X-Leasehold-Cold-Start": "1" if result.cold else "0",
        }
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if log_type == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(result.logs.encode()[-4096:]).decode()
        return web.Response(body=result.payload, status=200, headers=headers)
