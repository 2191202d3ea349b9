"""The frontend's gRPC API (``leasehold.frontend.v1.Frontend``): Lambda's Invoke for gRPC clients.

Same semantics as the HTTP Invoke API; a Lambda error becomes a gRPC status (mapped once, here) with
trailing metadata ``leasehold-error-type`` and ``leasehold-reason``.

Example::

    server = grpc.aio.server()
    add_to_server(FrontendService(invoker, events=queue), server)
"""

from __future__ import annotations

import logging
import uuid

import grpc

from assignment.frontend.api.context import EventSink
from assignment.frontend.invoker import ASYNC_PAYLOAD_LIMIT, Invoker, check_payload, decode_client_context
from assignment.frontend.types import (
    InvalidParameterValueException,
    LambdaError,
    ServiceException,
)
from assignment.frontend.validation import parse_function_name
from assignment.v1 import frontend_pb2 as pb
from assignment.v1 import frontend_pb2_grpc as pb_grpc

__all__ = ["SERVICE_NAME", "FrontendService", "add_to_server", "grpc_status"]

log = logging.getLogger("leasehold.frontend.grpc")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Frontend"].full_name

_STATUS = {
    "ResourceNotFoundException": grpc.StatusCode.NOT_FOUND,
    "InvalidRequestContentException": grpc.StatusCode.INVALID_ARGUMENT,
    "InvalidParameterValueException": grpc.StatusCode.INVALID_ARGUMENT,
    "RequestTooLargeException": grpc.StatusCode.INVALID_ARGUMENT,
    "ValidationException": grpc.StatusCode.INVALID_ARGUMENT,
    "TooManyRequestsException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ResourceConflictException": grpc.StatusCode.FAILED_PRECONDITION,
}


def grpc_status(error: LambdaError) -> grpc.StatusCode:
    """The gRPC status code of a Lambda error (INTERNAL for service errors)."""
    return _STATUS.get(error.type, grpc.StatusCode.INTERNAL)


class FrontendService(pb_grpc.FrontendServicer):
    """The Frontend servicer over the shared invoke path."""

    def __init__(self, invoker: Invoker, *, events: EventSink | None = None) -> None:
        self.invoker = invoker
        self.events = events

    async def Invoke(
        self, request: pb.InvokeRequest, context: grpc.aio.ServicerContext[pb.InvokeRequest, pb.InvokeResponse]
    ) -> pb.InvokeResponse:
        """Invoke a function: synchronously, queued (``EVENT``) or as a dry run."""
        request_id = str(uuid.uuid4())
        try:
            return await self._invoke(request, request_id)
        except LambdaError as exc:
            error = exc
        except Exception:
            log.exception("event=grpc_invoke_error request_id=%s", request_id)
            error = ServiceException("An internal error occurred")
        await context.send_initial_metadata((("x-amzn-requestid", request_id),))
        context.set_trailing_metadata((("leasehold-error-type", error.type), ("leasehold-reason", error.reason)))
        await context.abort(grpc_status(error), error.message)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    async def _invoke(self, request: pb.InvokeRequest, request_id: str) -> pb.InvokeResponse:
        home = self.invoker.registry.home
        name, qualifier = parse_function_name(request.function_name, request.qualifier or None, home=home)
        client_context = decode_client_context(request.client_context)
        kind = request.invocation_type
        if kind == pb.INVOCATION_TYPE_EVENT:
            config = await self.invoker.resolve(name, qualifier)
            check_payload(request.payload, ASYNC_PAYLOAD_LIMIT)
            if self.events is None:
                raise ServiceException("Asynchronous invocation is not available on this frontend")
            await self.events.enqueue(name, config.version, request.payload, request_id)
            return pb.InvokeResponse(status_code=202, request_id=request_id)
        if kind == pb.INVOCATION_TYPE_DRY_RUN:
            config = await self.invoker.resolve(name, qualifier)
            return pb.InvokeResponse(status_code=204, request_id=request_id, executed_version=config.version)
        if kind != pb.INVOCATION_TYPE_REQUEST_RESPONSE:
            raise InvalidParameterValueException(f"Invalid invocation type {kind}")
        result = await self.invoker.invoke(
            name, qualifier, request.payload, request_id=request_id, client_context=client_context
        )
        tail = result.logs.encode()[-4096:].decode(errors="replace") if request.log_tail else ""
        return pb.InvokeResponse(
            status_code=200,
            payload=result.payload,
            function_error=result.function_error,
            log_result=tail,
            executed_version=result.executed_version,
            request_id=request_id,
        )


def add_to_server(service: FrontendService, server: grpc.aio.Server) -> None:
    """Register the Frontend service."""
    pb_grpc.add_FrontendServicer_to_server(service, server)
