"""The gRPC servicer of ``leasehold.assignment.v1.Assignment``; errors are mapped to gRPC here, once.

Mapping (trailing metadata ``leasehold-error`` names the error for clients):

==========================  ======================  =============================================
error                       gRPC code               metadata
==========================  ======================  =============================================
NotLeader                   FAILED_PRECONDITION     ``not_leader``, ``leasehold-leader`` (address)
Recovering                  UNAVAILABLE             ``unavailable``
Throttled                   RESOURCE_EXHAUSTED      ``throttled``, ``leasehold-reason``
BadArgument                 INVALID_ARGUMENT        ``invalid_argument``, ``leasehold-field``
UnknownLeaseToken           NOT_FOUND               ``unknown_lease``
LeaseGone                   FAILED_PRECONDITION     ``stale_lease``
==========================  ======================  =============================================

Requests that are not valid protobuf get INVALID_ARGUMENT (field ``request``) rather than INTERNAL.
A sandbox template (``AcquireRequest.sandbox``, ``EnsureWarmRequest.sandbox``) that names a sandbox id,
another function, or no code is INVALID_ARGUMENT with field ``sandbox``, as is one a worker refuses as
malformed (e.g. an unknown code blob).

Example::

    server = grpc.aio.server()
    add_to_server(AssignmentService(host), server)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from assignment.errors import (
    AssignmentError,
    BadArgument,
    LeaseGone,
    NotLeader,
    Recovering,
    Throttled,
    UnknownLeaseToken,
)
from assignment.leader import AcquireArgs, Grant, PartitionLeader
from assignment.members import ServerInfo
from assignment.partitioning import partition_of
from assignment.v1 import assignment_pb2 as pb
from journal.outcomes import Outcome
from journal.v1 import records_pb2
from workers.v1 import worker_pb2

__all__ = ["SERVICE_NAME", "AssignmentService", "Partitions", "add_to_server", "error_metadata", "handlers"]

log = logging.getLogger("leasehold.service")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Assignment"].full_name

_LIMITS = {"function": 140, "version": 64, "request_id": 128}


class Partitions(Protocol):
    """What the servicer needs from the server: the leader of a partition and the routing table."""

    @property
    def partition_count(self) -> int:
        """The fixed number of partitions."""
        ...

    def leader_for(self, partition: int) -> PartitionLeader:
        """The serving leader, or raise :class:`NotLeader` / :class:`Recovering`."""
        ...

    def routes(self) -> list[tuple[int, ServerInfo | None]]:
        """Each partition's current leader."""
        ...


def error_metadata(exc: AssignmentError) -> tuple[grpc.StatusCode, tuple[tuple[str, str], ...]]:
    """The status code and trailing metadata of an error."""
    if isinstance(exc, NotLeader):
        meta: tuple[tuple[str, str], ...] = (("leasehold-error", "not_leader"),)
        if exc.leader_address:
            meta += (("leasehold-leader", exc.leader_address),)
        return grpc.StatusCode.FAILED_PRECONDITION, meta
    if isinstance(exc, Recovering):
        return grpc.StatusCode.UNAVAILABLE, (("leasehold-error", "unavailable"),)
    if isinstance(exc, Throttled):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, (("leasehold-error", "throttled"), ("leasehold-reason", exc.reason))
    if isinstance(exc, BadArgument):
        return grpc.StatusCode.INVALID_ARGUMENT, (
            ("leasehold-error", "invalid_argument"),
            ("leasehold-field", exc.field),
        )
    if isinstance(exc, UnknownLeaseToken):
        return grpc.StatusCode.NOT_FOUND, (("leasehold-error", "unknown_lease"),)
    if isinstance(exc, LeaseGone):
        return grpc.StatusCode.FAILED_PRECONDITION, (("leasehold-error", "stale_lease"),)
    return grpc.StatusCode.INTERNAL, (("leasehold-error", "internal"),)


def _check_name(field: str, value: str, *, required: bool = True) -> None:
    if required and not value:
        raise BadArgument(field, "must not be empty")
    if len(value.encode("utf-8", "surrogatepass")) > _LIMITS[field]:
        raise BadArgument(field, f"longer than {_LIMITS[field]} bytes")


def _template(request: pb.AcquireRequest | pb.EnsureWarmRequest) -> worker_pb2.CreateSandboxRequest | None:
    """The request's sandbox template, checked, with ``function_name`` filled in; ``None`` when absent."""
    if not request.HasField("sandbox"):
        return None
    template = request.sandbox
    if template.sandbox_id:
        raise BadArgument("sandbox", "sandbox_id is chosen by the leader and must be empty")
    if template.function_name and template.function_name != request.function:
        raise BadArgument("sandbox", f"function_name {template.function_name!r:.160} is not the request's function")
    if not template.HasField("code") or template.code.WhichOneof("source") is None:
        raise BadArgument("sandbox", "code is required")
    checked = worker_pb2.CreateSandboxRequest()
    checked.CopyFrom(template)
    checked.function_name = request.function
    return checked


def _check_function_version(request: pb.AcquireRequest | pb.EnsureWarmRequest) -> None:
    _check_name("function", request.function)
    _check_name("version", request.version)
    if not 128 <= request.memory_mb <= 10240:
        raise BadArgument("memory_mb", "must be in 128..10240")
    if not 1 <= request.timeout_ms <= 900_000:
        raise BadArgument("timeout_ms", "must be in 1..900000")


def _lease(grant: Grant) -> pb.Lease:
    return pb.Lease(
        partition=grant.partition,
        token=records_pb2.LeaseToken(epoch=grant.token[0], seq=grant.token[1]),
        sandbox_id=grant.sandbox_name,
        worker_id=grant.worker_id,
        worker_address=grant.worker_address,
        cold=grant.cold,
        init_ms=grant.init_ms,
        expiry_ms=grant.expiry_ms,
    )


class AssignmentService:
    """Acquire, Release, Routing, SetConcurrency and EnsureWarm over the partitions of one server."""

    def __init__(self, partitions: Partitions) -> None:
        self.partitions = partitions

    async def Acquire(
        self, request: pb.AcquireRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AcquireResponse:
        """A lease on a sandbox of the function version (see the proto)."""
        _check_function_version(request)
        _check_name("request_id", request.request_id, required=False)
        if request.deadline_ms and request.deadline_ms < time.time() * 1000:
            raise BadArgument("deadline_ms", "already passed")
        template = _template(request)
        partition = partition_of(request.function, self.partitions.partition_count)
        leader = self.partitions.leader_for(partition)
        args = AcquireArgs(
            request.function, request.version, request.memory_mb, request.timeout_ms, request.request_id, template
        )
        grant = await leader.acquire(args)
        return pb.AcquireResponse(lease=_lease(grant))

    async def SetConcurrency(
        self, request: pb.SetConcurrencyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SetConcurrencyResponse:
        """Set (or, with ``reserved`` unset, remove) the function's reserved concurrency."""
        _check_name("function", request.function)
        reserved = request.reserved if request.HasField("reserved") else None
        leader = self.partitions.leader_for(partition_of(request.function, self.partitions.partition_count))
        await leader.set_concurrency(request.function, reserved)
        return pb.SetConcurrencyResponse()

    async def EnsureWarm(
        self, request: pb.EnsureWarmRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.EnsureWarmResponse:
        """Keep ``count`` initialised sandboxes of the function version (provisioned concurrency)."""
        _check_function_version(request)
        template = _template(request)
        if template is None:
            raise BadArgument("sandbox", "the sandbox template is required")
        leader = self.partitions.leader_for(partition_of(request.function, self.partitions.partition_count))
        args = AcquireArgs(request.function, request.version, request.memory_mb, request.timeout_ms, "", template)
        sandboxes, created = await leader.ensure_warm(args, request.count)
        return pb.EnsureWarmResponse(sandboxes=sandboxes, created=created)

    async def Release(
        self, request: pb.ReleaseRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ReleaseResponse:
        """Give a lease back with the invocation's outcome."""
        if request.partition >= self.partitions.partition_count:
            raise BadArgument("partition", f"must be below {self.partitions.partition_count}")
        if not request.HasField("token") or request.token.seq == 0:
            raise BadArgument("token", "missing")
        outcome = Outcome.of_wire(request.outcome)
        if outcome is None:
            raise BadArgument("outcome", "unspecified or unknown")
        leader = self.partitions.leader_for(request.partition)
        # Lazy: the caller (a frontend) answered its client already; the commit may share the next one's.
        await leader.release((request.token.epoch, request.token.seq), outcome.label, lazy=True)
        return pb.ReleaseResponse()

    async def Routing(
        self, request: pb.RoutingRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RoutingResponse:
        """The partition count and each partition's leader."""
        routes = [
            pb.PartitionRoute(
                partition=p,
                leader_id=info.server_id if info else "",
                leader_address=info.address if info else "",
            )
            for p, info in self.partitions.routes()
        ]
        return pb.RoutingResponse(partition_count=self.partitions.partition_count, routes=routes)


class _Garbage:
    """Stands for a request that could not be parsed."""


Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


def _parser(cls: type[Req]) -> Callable[[bytes], Req | _Garbage]:
    def parse(data: bytes) -> Req | _Garbage:
        try:
            return cls.FromString(data)
        except (DecodeError, ValueError):
            return _Garbage()

    return parse


def _wrap(
    method: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]],
) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Resp:
        try:
            if isinstance(request, _Garbage):
                raise BadArgument("request", "not a valid protobuf message")
            return await method(request, context)
        except AssignmentError as exc:
            code, meta = error_metadata(exc)
            context.set_trailing_metadata(meta)
            await context.abort(code, str(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    return handler


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def handlers(service: AssignmentService) -> dict[str, Callable[[Any, Any], Awaitable[Any]]]:
    """The service's methods by name, with errors mapped as on the server (``context.abort`` with the
    status and trailing metadata): what an in-process stub calls (``leasehold dev``)."""
    return {
        "Acquire": _wrap(service.Acquire),
        "Release": _wrap(service.Release),
        "Routing": _wrap(service.Routing),
        "SetConcurrency": _wrap(service.SetConcurrency),
        "EnsureWarm": _wrap(service.EnsureWarm),
    }


def add_to_server(service: AssignmentService, server: grpc.aio.Server) -> None:
    """Register the service on a ``grpc.aio`` server (with parse errors mapped to INVALID_ARGUMENT)."""

    def handler(
        method: Callable[[Any, Any], Awaitable[Any]], request: type[Message]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(
            _wrap(method), request_deserializer=_parser(request), response_serializer=_serialize
        )

    handlers = {
        "Acquire": handler(service.Acquire, pb.AcquireRequest),
        "Release": handler(service.Release, pb.ReleaseRequest),
        "Routing": handler(service.Routing, pb.RoutingRequest),
        "SetConcurrency": handler(service.SetConcurrency, pb.SetConcurrencyRequest),
        "EnsureWarm": handler(service.EnsureWarm, pb.EnsureWarmRequest),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
