"""In-process stubs (``leasehold dev``'s frontend → server/worker calls) raise what a grpc.aio stub raises.

The servicers are the real ones (the assignment service with its error mapping, over a partition table
with no leader); the routing client is the real one, so its retry and error handling see these errors
exactly as they see the network's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from assignment.client import AssignmentClient, RpcFailed
from assignment.errors import NotLeader
from assignment.frontend.inproc import LocalContext, LocalStub
from assignment.leader import PartitionLeader
from assignment.members import ServerInfo
from assignment.service import AssignmentService, handlers
from assignment.v1 import assignment_pb2 as pb
from journal.v1 import records_pb2
from workers.v1 import worker_pb2

ADDRESS = "127.0.0.1:1"


class _NoLeader:
    """Sixteen partitions, none led anywhere."""

    partition_count = 16

    def leader_for(self, partition: int) -> PartitionLeader:
        raise NotLeader(partition, None)

    def routes(self) -> list[tuple[int, ServerInfo | None]]:
        return [(p, None) for p in range(self.partition_count)]


def _client(**kwargs: Any) -> AssignmentClient:
    stub = LocalStub(handlers(AssignmentService(_NoLeader())))
    client = AssignmentClient([ADDRESS], partitions=16, local={ADDRESS: stub}, **kwargs)
    client.leaders = dict.fromkeys(range(16), ADDRESS)  # as if Routing had named this server
    return client


def _template() -> worker_pb2.CreateSandboxRequest:
    return worker_pb2.CreateSandboxRequest(code=worker_pb2.CodeRef(blob_sha256="ab" * 32))


async def test_a_servicer_error_arrives_with_its_code_and_metadata() -> None:
    client = _client()
    with pytest.raises(RpcFailed) as caught:
        await client.acquire("", "$LATEST", 128, 3000, deadline_s=1.0)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.error, caught.value.field) == ("invalid_argument", "function")
    await client.close()


@pytest.mark.parametrize(
    ("function", "version", "memory_mb", "timeout_ms", "field"),
    [
        ("f" * 141, "$LATEST", 128, 3000, "function"),
        ("f", "v" * 65, 128, 3000, "version"),
        ("f", "$LATEST", 127, 3000, "memory_mb"),
        ("f", "$LATEST", 10241, 3000, "memory_mb"),
        ("f", "$LATEST", 128, 0, "timeout_ms"),
        ("f", "$LATEST", 128, 900_001, "timeout_ms"),
        ("é" * 71, "$LATEST", 128, 3000, "function"),  # 142 bytes in 71 characters
    ],
)
async def test_malformed_and_oversized_acquires_are_refused_by_field(
    function: str, version: str, memory_mb: int, timeout_ms: int, field: str
) -> None:
    stub = LocalStub(handlers(AssignmentService(_NoLeader())))
    request = pb.AcquireRequest(function=function, version=version, memory_mb=memory_mb, timeout_ms=timeout_ms)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Acquire(request, timeout=1.0)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    meta = dict(caught.value.trailing_metadata() or ())
    assert meta["leasehold-error"] == "invalid_argument"
    assert meta["leasehold-field"] == field


async def test_a_hostile_template_is_refused() -> None:
    stub = LocalStub(handlers(AssignmentService(_NoLeader())))
    for template in (
        worker_pb2.CreateSandboxRequest(sandbox_id="p0-s1", code=worker_pb2.CodeRef(blob_sha256="ab" * 32)),
        worker_pb2.CreateSandboxRequest(function_name="other", code=worker_pb2.CodeRef(blob_sha256="ab" * 32)),
        worker_pb2.CreateSandboxRequest(),
    ):
        request = pb.AcquireRequest(function="f", version="$LATEST", memory_mb=128, timeout_ms=3000, sandbox=template)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Acquire(request, timeout=1.0)
        assert dict(caught.value.trailing_metadata() or ())["leasehold-field"] == "sandbox"


async def test_the_routing_client_retries_not_leader_until_its_deadline() -> None:
    client = _client(base_backoff_s=0.001, max_backoff_s=0.005)
    with pytest.raises(RpcFailed) as caught:
        await client.acquire("f", "$LATEST", 128, 3000, deadline_s=0.2, sandbox=_template())
    assert caught.value.error == "not_leader"
    assert client.retries > 1
    await client.close()


async def test_a_release_of_a_missing_token_is_invalid() -> None:
    client = _client()
    lease = pb.Lease(partition=3)
    with pytest.raises(RpcFailed) as caught:
        await client.release(lease, "ok", deadline_s=1.0)
    assert (caught.value.error, caught.value.field) == ("invalid_argument", "token")
    client.leaders[99] = ADDRESS  # a hostile partition number still reaches the server
    lease = pb.Lease(partition=99, token=records_pb2.LeaseToken(epoch=1, seq=1))
    with pytest.raises(RpcFailed) as caught:
        await client.release(lease, "ok", deadline_s=1.0)
    assert caught.value.field == "partition"
    await client.close()


async def test_a_timeout_cancels_the_servicer_and_is_deadline_exceeded() -> None:
    cancelled = asyncio.Event()

    async def slow(request: Any, context: LocalContext) -> bytes:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    stub = LocalStub({"Slow": slow})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Slow(b"", timeout=0.01)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert cancelled.is_set()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Slow(b"", timeout=0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_a_servicer_that_raises_gives_unknown_and_abort_gives_its_code() -> None:
    async def broken(request: Any, context: LocalContext) -> bytes:
        raise KeyError("x")

    async def refusing(request: Any, context: LocalContext) -> bytes:
        context.set_trailing_metadata((("leasehold-error", "busy"),))
        await context.abort(grpc.StatusCode.ABORTED, "busy")

    async def answering(request: bytes, context: LocalContext) -> bytes:
        return request[::-1]

    stub = LocalStub({"Broken": broken, "Refusing": refusing, "Answering": answering})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Broken(b"")
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Refusing(b"")
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.ABORTED, "busy")
    assert tuple(caught.value.trailing_metadata() or ()) == (("leasehold-error", "busy"),)
    assert await stub.Answering(b"abc", timeout=1.0) == b"cba"
    with pytest.raises(AttributeError):
        stub.Missing  # noqa: B018 - the attribute access is the test
