"""The gRPC API in-process (grpc.aio on port 0, local coordination, SQLite journal): calls, errors, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from assignment.client import AssignmentClient, RpcFailed
from assignment.coordination.local import LocalCoordinator, LocalHub
from assignment.host import HostConfig
from assignment.members import WorkerInfo
from assignment.partitioning import partition_of
from assignment.server import AssignmentServer, ServerConfig
from assignment.v1 import assignment_pb2 as pb
from assignment.v1 import assignment_pb2_grpc as pb_grpc
from journal.v1 import records_pb2
from tests.assignment.doubles import FakeWorkers
from workers.v1 import worker_pb2

PARTITIONS = 4


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.hub = LocalHub()
        self.workers = FakeWorkers()
        self.servers: list[AssignmentServer] = []

    async def add(self, name: str) -> AssignmentServer:
        config = ServerConfig(
            server_id=name,
            listen="127.0.0.1:0",
            journal=f"sqlite:///{self.tmp_path / 'journal.db'}",
            grace_s=5.0,
            host=HostConfig(partitions=PARTITIONS, balance=False, tick_s=0.1),
        )
        server = AssignmentServer(config, coordinator=LocalCoordinator(self.hub), workers=self.workers)
        await server.start()
        self.servers.append(server)
        return server

    def all_led(self) -> bool:
        return all(
            p in self.hub.leaders
            and any(s.host is not None and p in s.host.leaders and s.host.leaders[p].serving for s in self.servers)
            for p in range(PARTITIONS)
        )


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    made = Cluster(tmp_path)
    made.hub.workers["w1"] = WorkerInfo("w1", "127.0.0.1:9", "zone-a", 8192)
    made.hub.workers["w2"] = WorkerInfo("w2", "127.0.0.1:10", "zone-b", 8192)
    await made.add("s1")
    await _until(made.all_led)
    yield made
    for server in made.servers:
        await server.stop()


@pytest.fixture
async def stub(cluster: Cluster) -> AsyncIterator[pb_grpc.AssignmentAsyncStub]:
    async with grpc.aio.insecure_channel(cluster.servers[0].address) as channel:
        yield pb_grpc.AssignmentStub(channel)


def acquire(function: str = "resize", **kw: object) -> pb.AcquireRequest:
    fields: dict[str, object] = {"function": function, "version": "1", "memory_mb": 256, "timeout_ms": 3000}
    fields.update(kw)
    return pb.AcquireRequest(**fields)  # type: ignore[arg-type]


async def expect_error(call: object, code: grpc.StatusCode) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    return {k: str(v) for k, v in info.value.trailing_metadata() or ()}


async def test_health_and_reflection(cluster: Cluster) -> None:
    async with grpc.aio.insecure_channel(cluster.servers[0].address) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # the typeshed stub declares no methods
        answer = await health.Check(health_pb2.HealthCheckRequest(service="leasehold.assignment.v1.Assignment"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        refl: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
        names: list[str] = []
        async for reply in refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])):
            names += [s.name for s in reply.list_services_response.service]
        assert "leasehold.assignment.v1.Assignment" in names
        assert "grpc.health.v1.Health" in names


async def test_acquire_release_routing(cluster: Cluster, stub: pb_grpc.AssignmentAsyncStub) -> None:
    routing = await stub.Routing(pb.RoutingRequest())
    assert routing.partition_count == PARTITIONS
    assert {r.leader_address for r in routing.routes} == {cluster.servers[0].address}
    first = (await stub.Acquire(acquire(request_id="r1"))).lease
    assert first.cold
    assert first.init_ms == 7
    assert first.partition == partition_of("resize", PARTITIONS)
    assert first.sandbox_id.startswith(f"p{first.partition}-s")
    assert (await stub.Acquire(acquire(request_id="r1"))).lease == first  # idempotent
    await stub.Release(pb.ReleaseRequest(partition=first.partition, token=first.token, outcome=records_pb2.OUTCOME_OK))
    second = (await stub.Acquire(acquire(request_id="r2"))).lease
    assert not second.cold
    assert second.sandbox_id == first.sandbox_id


async def test_bad_input_on_every_rpc(stub: pb_grpc.AssignmentAsyncStub) -> None:
    cases = [
        (acquire(""), "function"),
        (acquire("f" * 141), "function"),
        (acquire(version=""), "version"),
        (acquire(version="v" * 65), "version"),
        (acquire(memory_mb=0), "memory_mb"),
        (acquire(memory_mb=4_000_000_000), "memory_mb"),
        (acquire(timeout_ms=0), "timeout_ms"),
        (acquire(request_id="r" * 129), "request_id"),
        (acquire("bad\x00name"), "function"),
        (acquire(deadline_ms=1), "deadline_ms"),
    ]
    for request, field in cases:
        meta = await expect_error(stub.Acquire(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert meta["leasehold-field"] == field, (request, meta)
    lease = (await stub.Acquire(acquire())).lease
    p = lease.partition
    release_cases: list[tuple[pb.ReleaseRequest, str]] = [
        (pb.ReleaseRequest(partition=PARTITIONS, token=lease.token, outcome=records_pb2.OUTCOME_OK), "partition"),
        (pb.ReleaseRequest(partition=p, outcome=records_pb2.OUTCOME_OK), "token"),
        (pb.ReleaseRequest(partition=p, token=lease.token), "outcome"),
        (pb.ReleaseRequest(partition=p, token=lease.token, outcome=99), "outcome"),  # type: ignore[arg-type]
    ]
    for release, field in release_cases:
        meta = await expect_error(stub.Release(release), grpc.StatusCode.INVALID_ARGUMENT)
        assert meta["leasehold-field"] == field
    unknown = records_pb2.LeaseToken(epoch=lease.token.epoch, seq=10_000)
    meta = await expect_error(
        stub.Release(pb.ReleaseRequest(partition=p, token=unknown, outcome=records_pb2.OUTCOME_OK)),
        grpc.StatusCode.NOT_FOUND,
    )
    assert meta["leasehold-error"] == "unknown_lease"
    stale = records_pb2.LeaseToken(epoch=lease.token.epoch + 5, seq=lease.token.seq)
    meta = await expect_error(
        stub.Release(pb.ReleaseRequest(partition=p, token=stale, outcome=records_pb2.OUTCOME_OK)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert meta["leasehold-error"] == "stale_lease"
    await stub.Release(pb.ReleaseRequest(partition=p, token=lease.token, outcome=records_pb2.OUTCOME_OK))
    meta = await expect_error(
        stub.Release(pb.ReleaseRequest(partition=p, token=lease.token, outcome=records_pb2.OUTCOME_OK)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert meta["leasehold-error"] == "stale_lease"


async def test_garbage_bytes_on_the_wire(cluster: Cluster) -> None:
    async with grpc.aio.insecure_channel(cluster.servers[0].address) as channel:
        for method in ("Acquire", "Release", "Routing"):
            call: Any = channel.unary_unary(f"/leasehold.assignment.v1.Assignment/{method}")
            meta = await expect_error(call(b"\xff\xff\xff\xff\x0f\x00garbage"), grpc.StatusCode.INVALID_ARGUMENT)
            assert meta["leasehold-field"] == "request"
        # a negative memory size, encoded as a 64-bit varint in the uint32 field, is still out of range
        negative = pb.AcquireRequest(function="f", version="1", timeout_ms=1000).SerializeToString()
        negative += b"\x18" + b"\xff" * 9 + b"\x01"
        call = channel.unary_unary("/leasehold.assignment.v1.Assignment/Acquire")
        meta = await expect_error(call(negative), grpc.StatusCode.INVALID_ARGUMENT)
        assert meta["leasehold-field"] == "memory_mb"


async def test_throttle_reason_is_machine_readable(cluster: Cluster, stub: pb_grpc.AssignmentAsyncStub) -> None:
    cluster.hub.workers.clear()
    cluster.hub.changed()
    await _until(lambda: all(leader.core.worker_count == 0 for leader in cluster.servers[0].host.leaders.values()))  # type: ignore[union-attr]
    meta = await expect_error(stub.Acquire(acquire()), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert meta == {"leasehold-error": "throttled", "leasehold-reason": "no_capacity"}


async def test_not_leader_names_the_leader_and_the_client_follows(cluster: Cluster) -> None:
    second = await cluster.add("s2")
    async with grpc.aio.insecure_channel(second.address) as channel:
        meta = await expect_error(
            pb_grpc.AssignmentStub(channel).Acquire(acquire()), grpc.StatusCode.FAILED_PRECONDITION
        )
    assert meta["leasehold-error"] == "not_leader"
    assert meta["leasehold-leader"] == cluster.servers[0].address
    async with AssignmentClient([second.address], partitions=PARTITIONS) as client:
        lease = await client.acquire("resize", "1", 256, 3000, deadline_s=5)
        await client.release(lease, "ok")
        with pytest.raises(RpcFailed) as info:
            await client.acquire("", "1", 256, 3000, deadline_s=5)
        assert info.value.field == "function"


async def test_graceful_stop_finishes_in_flight_calls(cluster: Cluster) -> None:
    cluster.workers.delay_s = 0.3
    server = cluster.servers[0]
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.AssignmentStub(channel)
        calls = [asyncio.ensure_future(stub.Acquire(acquire(f"fn{i}"))) for i in range(8)]
        await _until(lambda: len(cluster.workers.calls) == 8)
        await server.stop()
        cluster.servers.remove(server)
        leases = [(await call).lease for call in calls]
    assert len({(lease.partition, lease.token.seq) for lease in leases}) == 8
    assert not cluster.hub.leaders  # every partition was handed back


TEMPLATE = worker_pb2.CreateSandboxRequest(code=worker_pb2.CodeRef(blob_sha256="ab" * 32), handler="app.handler")


def warm(function: str = "resize", **kw: object) -> pb.EnsureWarmRequest:
    fields: dict[str, object] = {
        "function": function,
        "version": "1",
        "memory_mb": 256,
        "timeout_ms": 3000,
        "count": 2,
        "sandbox": TEMPLATE,
    }
    fields.update(kw)
    return pb.EnsureWarmRequest(**fields)  # type: ignore[arg-type]


async def test_templates_concurrency_and_provisioning(cluster: Cluster, stub: pb_grpc.AssignmentAsyncStub) -> None:
    lease = (await stub.Acquire(acquire("tpl", sandbox=TEMPLATE))).lease
    assert lease.cold
    sent = cluster.workers.specs[-1].request()
    assert (sent.sandbox_id, sent.function_name, sent.memory_mb) == (lease.sandbox_id, "tpl", 256)
    bad_templates = [
        worker_pb2.CreateSandboxRequest(sandbox_id="p0-s1", code=TEMPLATE.code),
        worker_pb2.CreateSandboxRequest(function_name="other", code=TEMPLATE.code),
        worker_pb2.CreateSandboxRequest(handler="app.handler"),
        worker_pb2.CreateSandboxRequest(code=worker_pb2.CodeRef()),
        worker_pb2.CreateSandboxRequest(function_name="x" * 100_000, code=TEMPLATE.code),
    ]
    for template in bad_templates:
        for call in (stub.Acquire(acquire("tpl", sandbox=template)), stub.EnsureWarm(warm("tpl", sandbox=template))):
            meta = await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT)
            assert meta["leasehold-field"] == "sandbox"
    warm_cases = [
        (warm(""), "function"),
        (warm("f" * 141), "function"),
        (warm(version=""), "version"),
        (warm(memory_mb=64), "memory_mb"),
        (warm(timeout_ms=900_001), "timeout_ms"),
        (warm(count=1001), "count"),
        (warm(count=4_000_000_000), "count"),
        (pb.EnsureWarmRequest(function="f", version="1", memory_mb=256, timeout_ms=3000, count=1), "sandbox"),
    ]
    for request, field in warm_cases:
        meta = await expect_error(stub.EnsureWarm(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert meta["leasehold-field"] == field, (request, meta)
    for bad in (pb.SetConcurrencyRequest(function=""), pb.SetConcurrencyRequest(function="a\x00b", reserved=1)):
        meta = await expect_error(stub.SetConcurrency(bad), grpc.StatusCode.INVALID_ARGUMENT)
        assert meta["leasehold-field"] == "function"
    meta = await expect_error(
        stub.SetConcurrency(pb.SetConcurrencyRequest(function="f", reserved=1001)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert meta["leasehold-field"] == "reserved"
    async with grpc.aio.insecure_channel(cluster.servers[0].address) as channel:
        for method in ("SetConcurrency", "EnsureWarm"):
            garbage: Any = channel.unary_unary(f"/leasehold.assignment.v1.Assignment/{method}")
            meta = await expect_error(garbage(b"\xff\xff\xff\xff\x0f\x00garbage"), grpc.StatusCode.INVALID_ARGUMENT)
            assert meta["leasehold-field"] == "request"

    await stub.SetConcurrency(pb.SetConcurrencyRequest(function="tpl", reserved=1))
    meta = await expect_error(stub.Acquire(acquire("tpl", sandbox=TEMPLATE)), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert meta["leasehold-reason"] == "reserved_limit"
    await stub.SetConcurrency(pb.SetConcurrencyRequest(function="tpl"))
    await stub.Release(pb.ReleaseRequest(partition=lease.partition, token=lease.token, outcome=records_pb2.OUTCOME_OK))
    answer = await stub.EnsureWarm(warm("tpl", count=3))
    assert (answer.sandboxes, answer.created) == (3, 2)
    answer = await stub.EnsureWarm(warm("tpl", count=3))
    assert (answer.sandboxes, answer.created) == (3, 0)
