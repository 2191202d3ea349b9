"""The real worker client against a real worker agent process: the template on CreateSandbox, code from
the code store (fetched once), error mapping (every failure a named refusal), idempotent destroy, and the
embedded mode's path (an in-process server on local coordination with the agent registered by hand)."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from assignment.client import AssignmentClient, RpcFailed
from assignment.coordination.local import LocalCoordinator
from assignment.host import HostConfig
from assignment.members import WorkerInfo
from assignment.server import AssignmentServer, ServerConfig
from assignment.worker_client import GrpcWorkerClient, SandboxSpec, WorkerRefused, WorkerTimeouts
from journal.blobs import BlobStore
from journal.store import Journal
from tests.harness import tls
from tests.harness.cluster import free_port
from tests.workers.harness import AgentProcess, start_agent
from workers.v1 import worker_pb2, worker_pb2_grpc

APP = "import os\n\ndef handler(event, context):\n    return {'echo': event, 'pid': os.getpid()}\n"


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'journal.db'}"


@pytest.fixture(scope="module")
def blob(store_url: str) -> str:
    with Journal.open(store_url) as journal:
        return BlobStore(journal).put(zip_of(APP))


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, store_url: str, blob: str) -> Iterator[AgentProcess]:
    """One agent with 1 GB and the code store, shared by this module's tests (each uses its own names)."""
    process = start_agent(tmp_path_factory.mktemp("agent") / "data", 1024, "--code-store", store_url)
    yield process
    process.stop()


@pytest.fixture
async def client() -> AsyncIterator[GrpcWorkerClient]:
    made = GrpcWorkerClient(tls=tls.identity("server"))
    yield made
    await made.close()


def spec(name: str, sha: str, memory_mb: int = 128, **fields: object) -> SandboxSpec:
    template = worker_pb2.CreateSandboxRequest(code=worker_pb2.CodeRef(blob_sha256=sha), handler="app.handler")
    for key, value in fields.items():
        setattr(template, key, value)
    return SandboxSpec(name, "echo", "1", memory_mb, 3000, template)


def address(agent: AgentProcess) -> str:
    return f"127.0.0.1:{agent.port}"


async def test_create_list_destroy_from_the_code_store(
    agent: AgentProcess, client: GrpcWorkerClient, blob: str
) -> None:
    init_ms = await client.create_sandbox(address(agent), spec("p1-s1", blob))
    assert init_ms >= 0
    await client.create_sandbox(address(agent), spec("p1-s2", blob))
    listed = await client.list_sandboxes(address(agent))
    mine = {s.sandbox_id: s for s in listed.sandboxes if s.sandbox_id.startswith("p1-")}
    assert set(mine) == {"p1-s1", "p1-s2"}
    assert (mine["p1-s1"].function_name, mine["p1-s1"].memory_mb) == ("echo", 128)
    assert agent.log().count(f"event=blob_fetched sha={blob}") == 1  # the second create used the cache
    await client.reset_sandbox(address(agent), "p1-s1")
    for name in ("p1-s1", "p1-s2", "p1-s2", "never-there"):
        await client.destroy_sandbox(address(agent), name)  # unknown: success
    listed = await client.list_sandboxes(address(agent))
    assert not [s for s in listed.sandboxes if s.sandbox_id.startswith("p1-")]


@pytest.mark.parametrize(
    ("sha", "what"),
    [("0" * 64, "is not in the code store"), ("XYZ", "64 lower-case hex"), ("a" * 65, "64 lower-case hex")],
)
async def test_bad_blobs_are_invalid_and_name_the_field(
    agent: AgentProcess, client: GrpcWorkerClient, sha: str, what: str
) -> None:
    with pytest.raises(WorkerRefused) as info:
        await client.create_sandbox(address(agent), spec("p2-s1", sha))
    assert info.value.invalid
    assert info.value.reason == "INVALID_ARGUMENT"
    assert "code.blob_sha256" in str(info.value)
    assert what in str(info.value)


async def test_a_worker_without_code_store_refuses_blobs(tmp_path: Path, blob: str, client: GrpcWorkerClient) -> None:
    bare = start_agent(tmp_path / "bare", 512)
    try:
        with pytest.raises(WorkerRefused) as info:
            await client.create_sandbox(address(bare), spec("p3-s1", blob))
        assert info.value.invalid
        assert "code.blob_sha256" in str(info.value)
        assert "no code store" in str(info.value)
        layered = spec("p3-s2", blob)
        assert layered.template is not None
        layered.template.code.CopyFrom(worker_pb2.CodeRef(zip_bytes=zip_of(APP)))
        layered.template.layers.add(blob_sha256=blob)
        with pytest.raises(WorkerRefused) as layer:
            await client.create_sandbox(address(bare), layered)
        assert "layers[0].blob_sha256" in str(layer.value)
    finally:
        await client.close()
        bare.stop()


async def test_refusals_are_named(agent: AgentProcess, client: GrpcWorkerClient, blob: str) -> None:
    with pytest.raises(WorkerRefused) as full:
        await client.create_sandbox(address(agent), spec("p4-s1", blob, memory_mb=10240))
    assert full.value.reason == "RESOURCE_EXHAUSTED"
    assert not full.value.invalid
    with pytest.raises(WorkerRefused) as bad:
        await client.create_sandbox(address(agent), spec("p4-s2", blob, handler="not a handler"))
    assert (bad.value.reason, bad.value.invalid) == ("INVALID_ARGUMENT", True)
    with pytest.raises(WorkerRefused) as missing:
        await client.reset_sandbox(address(agent), "p4-none")
    assert missing.value.reason == "NOT_FOUND"
    await client.create_sandbox(address(agent), spec("p4-s3", blob))
    with pytest.raises(WorkerRefused) as twice:
        await client.create_sandbox(address(agent), spec("p4-s3", blob))
    assert twice.value.reason == "ALREADY_EXISTS"
    await client.destroy_sandbox(address(agent), "p4-s3")
    nobody = f"127.0.0.1:{free_port()}"
    for call in (
        client.create_sandbox(nobody, spec("p4-s4", blob)),
        client.list_sandboxes(nobody),
        client.destroy_sandbox(nobody, "p4-s4"),
    ):
        with pytest.raises(WorkerRefused) as down:
            await call
        assert down.value.reason in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


async def test_deadlines_apply_per_call(agent: AgentProcess, blob: str) -> None:
    hasty = GrpcWorkerClient(WorkerTimeouts(create_s=0.001, list_s=0.001), tls=tls.identity("server"))
    try:
        with pytest.raises(WorkerRefused) as slow:
            await hasty.create_sandbox(address(agent), spec("p5-s1", blob))
        assert slow.value.reason == "DEADLINE_EXCEEDED"
    finally:
        await hasty.close()
        async with tls.aio_channel(
            address(agent), "worker", as_role="server"
        ) as channel:  # it may have been created after all
            stub = worker_pb2_grpc.WorkerStub(channel)
            await stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="p5-s1"), timeout=10)


async def test_one_channel_per_address_closed_on_close(agent: AgentProcess) -> None:
    client = GrpcWorkerClient(tls=tls.identity("server"))
    for _ in range(3):
        await client.list_sandboxes(address(agent))
    assert len(client._channels) == 1
    await client.close()
    assert not client._channels
    await client.list_sandboxes(address(agent))  # usable again: a new channel
    await client.close()


async def test_embedded_mode_with_a_registered_real_agent(agent: AgentProcess, blob: str, tmp_path: Path) -> None:
    coordinator = LocalCoordinator()
    config = ServerConfig(
        server_id="dev",
        listen="127.0.0.1:0",
        journal=f"sqlite:///{tmp_path / 'journal.db'}",
        host=HostConfig(partitions=2, settle_s=0.0, tick_s=0.05),
        tls=tls.identity("server"),
    )
    server = AssignmentServer(config, coordinator=coordinator)
    assert isinstance(server.workers, GrpcWorkerClient)  # the default: real workers
    await server.start()
    try:
        await coordinator.register_worker(WorkerInfo("w-local", address(agent), "zone-a", 1024))
        template = spec("", blob).template
        assert template is not None
        async with AssignmentClient([server.address], tls=tls.identity("frontend")) as client:
            lease = None
            for _ in range(200):  # until the leaders have started and synced the worker
                try:
                    lease = await client.acquire("echo", "1", 128, 3000, sandbox=template)
                    break
                except RpcFailed:
                    await asyncio.sleep(0.05)
            assert lease is not None
            assert lease.cold
            assert lease.worker_address == address(agent)
            async with tls.aio_channel(address(agent), "worker") as channel:
                answer = await worker_pb2_grpc.WorkerStub(channel).Invoke(
                    worker_pb2.InvokeRequest(
                        sandbox_id=lease.sandbox_id, token=lease.token, payload=b'{"x": 1}', request_id="r1"
                    ),
                    timeout=30,
                )
            assert json.loads(answer.payload)["echo"] == {"x": 1}
            assert await client.release(lease, "crash")  # broken: the leader destroys it on the worker
            async with tls.aio_channel(address(agent), "worker", as_role="server") as channel:
                stub = worker_pb2_grpc.WorkerStub(channel)
                for _ in range(200):
                    listed = await stub.ListSandboxes(worker_pb2.ListSandboxesRequest(), timeout=5)
                    if lease.sandbox_id not in {s.sandbox_id for s in listed.sandboxes}:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the crashed sandbox was not destroyed")
    finally:
        await server.stop()
    assert server._own_workers is not None
    assert not server._own_workers._channels  # closed with the server
