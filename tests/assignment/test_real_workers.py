"""End to end with real parts: ZooKeeper, a SQLite journal (also the code store), worker agent processes
that register themselves in ZooKeeper and run real function code, and an assignment server process that
creates sandboxes on them over gRPC.

Covered: cold Acquire with a template naming a code blob → Invoke on the worker with the lease token →
Release → warm Acquire on the same sandbox; reserved concurrency; provisioned sandboxes (EnsureWarm);
a SIGKILLed worker's sandboxes dropped and the next sandbox made on the other worker; bad templates; and a
server restarted over the same journal reconciling with a worker that lost a sandbox and holds an orphan.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from kazoo.client import KazooClient

from assignment.client import AssignmentClient, RpcFailed
from assignment.partitioning import partition_of
from assignment.v1 import assignment_pb2 as pb
from assignment.worker_client import sandbox_name
from journal.blobs import BlobStore
from journal.store import Journal
from journal.v1 import records_pb2
from tests.assignment.conftest import Servers
from tests.harness import tls
from tests.workers.harness import AgentProcess, start_agent
from workers.registration import split_chroot
from workers.sandbox import unmount
from workers.v1 import worker_pb2, worker_pb2_grpc

PARTITIONS = 2
APP = """
import os
import time

STARTED = time.time()


def handler(event, context):
    return {"sum": event["a"] + event["b"], "pid": os.getpid(), "started": STARTED}
"""

T = TypeVar("T")


def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", APP)
    return buffer.getvalue()


def template(sha: str, **fields: object) -> worker_pb2.CreateSandboxRequest:
    request = worker_pb2.CreateSandboxRequest(
        code=worker_pb2.CodeRef(blob_sha256=sha), handler="app.handler", runtime="python"
    )
    for key, value in fields.items():
        if key == "environment":
            request.environment.update(value)  # type: ignore[call-overload]
        else:
            setattr(request, key, value)
    return request


async def until(check: Callable[[], Awaitable[T | None]], timeout_s: float, what: str) -> T:
    """Poll an async condition until it returns a value (not None) or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def invoke(lease: pb.Lease, a: int, b: int) -> dict[str, float]:
    """Run one invocation on the lease's worker with the lease's token."""
    async with tls.aio_channel(lease.worker_address, "worker") as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        answer: worker_pb2.InvokeResponse = await stub.Invoke(
            worker_pb2.InvokeRequest(
                sandbox_id=lease.sandbox_id,
                token=lease.token,
                payload=json.dumps({"a": a, "b": b}).encode(),
                request_id=f"req-{lease.token.seq}",
            ),
            timeout=30,
        )
    assert answer.outcome == records_pb2.OUTCOME_OK, answer
    result: dict[str, float] = json.loads(answer.payload)
    return result


async def listed(agent: AgentProcess) -> set[str]:
    """The sandbox ids the worker holds."""
    async with tls.aio_channel(f"127.0.0.1:{agent.port}", "worker", as_role="server") as channel:
        answer = await worker_pb2_grpc.WorkerStub(channel).ListSandboxes(worker_pb2.ListSandboxesRequest(), timeout=5)
    return {s.sandbox_id for s in answer.sandboxes}


class Agents:
    """Worker agent processes of one test, registered in its ZooKeeper chroot; stopped at the end."""

    def __init__(self, folder: Path, zk: str, code_store: str) -> None:
        self.folder, self.zk, self.code_store = folder, zk, code_store
        self.started: list[AgentProcess] = []

    def start(
        self, worker_id: str, zone: str, memory_mb: int = 2048, *, session_s: float = 2, port: int = 0, run: int = 0
    ) -> AgentProcess:
        """Start an agent; ``port`` fixes where it listens, ``run`` > 0 gives a restart its own data dir."""
        agent = start_agent(
            self.folder / (f"{worker_id}-{run}" if run else worker_id),
            memory_mb,
            *("--zk", self.zk, "--zk-session-timeout", str(session_s), "--worker-id", worker_id, "--zone", zone),
            *("--code-store", self.code_store, "--listen", f"127.0.0.1:{port}"),
        )
        self.started.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.started:
            agent.stop(timeout=30)  # also reaps a killed one and closes its pipe
        for agent in self.started:  # a killed agent leaves its sandboxes' tmpfs mounted (bwrap took the processes)
            for tmp in (agent.data_dir / "sandboxes").glob("*/tmp"):
                unmount(tmp)


@pytest.fixture
def code_store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def agents(tmp_path: Path, zk_hosts: str, code_store: str) -> Iterator[Agents]:
    made = Agents(tmp_path / "agents", zk_hosts, code_store)
    yield made
    made.close()


@pytest.fixture
def blob(code_store: str) -> str:
    """The function zip, stored in the code store (the journal's database)."""
    with Journal.open(code_store) as journal:
        return BlobStore(journal).put(function_zip())


async def acquire_when_ready(
    client: AssignmentClient, function: str, sandbox: worker_pb2.CreateSandboxRequest
) -> pb.Lease:
    """The first cold Acquire, once the leader knows a worker (until then: no_capacity)."""

    async def attempt() -> pb.Lease | None:
        try:
            return await client.acquire(function, "1", 128, 3000, sandbox=sandbox, deadline_s=30)
        except RpcFailed as exc:
            if exc.reason == "no_capacity":
                return None
            raise

    return await until(attempt, 30, "a leader that knows a worker")


def worker_node_gone(zk: str, worker_id: str) -> Callable[[], Awaitable[bool | None]]:
    hosts, root = split_chroot(zk)

    async def check() -> bool | None:
        client = KazooClient(hosts=hosts)
        await asyncio.to_thread(client.start, 10)
        try:
            exists = await asyncio.to_thread(client.exists, f"{root}/workers/{worker_id}")
        finally:
            await asyncio.to_thread(client.stop)
            await asyncio.to_thread(client.close)
        return True if exists is None else None

    return check


async def test_leases_on_real_workers(servers: Servers, agents: Agents, blob: str, zk_hosts: str) -> None:
    first = agents.start("w1", "zone-a")
    second = agents.start("w2", "zone-b")
    by_address = {f"127.0.0.1:{a.port}": a for a in (first, second)}
    server = servers.start("s1", partitions=PARTITIONS, workers="grpc")
    await asyncio.to_thread(server.wait_serving)
    sandbox = template(blob)
    async with AssignmentClient([server.address], tls=tls.identity("frontend")) as client:
        # cold: the worker fetches the code from the code store and runs init
        lease = await acquire_when_ready(client, "hello", sandbox)
        assert lease.cold
        assert lease.sandbox_id == sandbox_name(partition_of("hello", PARTITIONS), int(lease.sandbox_id.split("-s")[1]))
        one = await invoke(lease, 2, 3)
        assert one["sum"] == 5
        assert await client.release(lease, "ok")
        # warm: the same sandbox, the same process
        again = await client.acquire("hello", "1", 128, 3000, sandbox=sandbox)
        assert not again.cold
        assert (again.sandbox_id, again.worker_address) == (lease.sandbox_id, lease.worker_address)
        two = await invoke(again, 10, 20)
        assert (two["sum"], two["pid"], two["started"]) == (30, one["pid"], one["started"])
        # an older token is refused by the worker
        with pytest.raises(grpc.aio.AioRpcError) as stale:
            await invoke(lease, 1, 1)
        assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert await client.release(again, "ok")

        # reserved concurrency 1: of two concurrent acquires one is throttled
        await client.set_concurrency("hello", 1)
        results = await asyncio.gather(
            *(client.acquire("hello", "1", 128, 3000, sandbox=sandbox) for _ in range(2)), return_exceptions=True
        )
        granted = [r for r in results if isinstance(r, pb.Lease)]
        refused = [r for r in results if isinstance(r, RpcFailed)]
        assert len(granted) == 1, results
        assert len(refused) == 1, results
        assert refused[0].code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused[0].reason == "reserved_limit"
        assert await client.release(granted[0], "ok")
        with pytest.raises(RpcFailed) as too_many:
            await client.set_concurrency("hello", 5000)
        assert too_many.value.field == "reserved"
        await client.set_concurrency("hello", None)

        # provisioned: two initialised sandboxes, spread over both workers; two acquires are both warm
        assert await client.ensure_warm("hello", "1", 128, 3000, 2, sandbox) == (2, 1)
        assert await client.ensure_warm("hello", "1", 128, 3000, 2, sandbox) == (2, 0)
        names = await listed(first) | await listed(second)
        assert len(names) == 2
        assert lease.sandbox_id in names
        pair = await asyncio.gather(*(client.acquire("hello", "1", 128, 3000, sandbox=sandbox) for _ in range(2)))
        assert not any(p.cold for p in pair)
        assert {p.worker_address for p in pair} == set(by_address)
        for held in pair:
            assert (await invoke(held, 1, 1))["sum"] == 2

        # SIGKILL the first sandbox's worker while a lease on it is held: its node vanishes, the leader drops
        # the worker with its sandboxes, and the held lease fails
        dead = by_address[lease.worker_address]
        survivor = next(a for a in (first, second) if a is not dead)
        survivor_address = f"127.0.0.1:{survivor.port}"
        doomed = next(p for p in pair if p.worker_address == lease.worker_address)
        assert await client.release(next(p for p in pair if p is not doomed), "ok")
        log_offset = len(server.log_path.read_text(errors="replace"))
        dead.proc.send_signal(signal.SIGKILL)
        dead.proc.wait(10)
        dead_id = "w1" if dead is first else "w2"
        await until(worker_node_gone(zk_hosts, dead_id), 20, "the dead worker's node to vanish")
        synced = f"event=workers_synced partition={partition_of('hello', PARTITIONS)} workers=1 "

        async def dropped() -> bool | None:
            return True if synced in server.log_path.read_text(errors="replace")[log_offset:] else None

        await until(dropped, 20, "the leader to drop the dead worker")
        with pytest.raises(RpcFailed) as failed:
            await client.release(doomed, "ok")
        assert failed.value.error == "stale_lease"
        warm = await client.acquire("hello", "1", 128, 3000, sandbox=sandbox)
        assert not warm.cold
        assert warm.worker_address == survivor_address
        fresh = await client.acquire("hello", "1", 128, 3000, sandbox=sandbox)
        assert fresh.cold
        assert fresh.worker_address == survivor_address
        assert (await invoke(fresh, 4, 4))["sum"] == 8
        for held in (warm, fresh):
            assert await client.release(held, "ok")
        assert await listed(survivor) == {warm.sandbox_id, fresh.sandbox_id}


def journaled(url: str, partition: int, kind: str, after_seq: int) -> Callable[[], Awaitable[bool | None]]:
    """Whether the partition's journal holds a record of ``kind`` after ``after_seq``."""

    async def check() -> bool | None:
        def read() -> bool:
            with Journal.open(url, migrate=False) as journal:
                entries = journal.read(partition, after_seq=after_seq)
                return any(records_pb2.Record.FromString(e.payload).WhichOneof("kind") == kind for e in entries)

        return True if await asyncio.to_thread(read) else None

    return check


async def test_a_worker_restarted_faster_than_its_session_expires_is_not_trusted_with_old_sandboxes(
    servers: Servers, agents: Agents, blob: str
) -> None:
    # A long session: the killed agent's node outlives the restart, which takes the same id and port, so
    # only the agent's new incarnation tells the leader that its sandboxes are gone.
    first = agents.start("w1", "zone-a", session_s=60)
    server = servers.start("s1", partitions=PARTITIONS, workers="grpc")
    await asyncio.to_thread(server.wait_serving)
    sandbox = template(blob)
    partition = partition_of("hello", PARTITIONS)
    async with AssignmentClient([server.address], tls=tls.identity("frontend")) as client:
        lease = await acquire_when_ready(client, "hello", sandbox)
        assert (await invoke(lease, 1, 2))["sum"] == 3
        assert await client.release(lease, "ok")
        with Journal.open(servers.journal, migrate=False) as journal:
            seq = journal.info(partition).last_seq
        first.proc.kill()
        first.proc.wait(30)
        agents.start("w1", "zone-a", session_s=60, port=first.port, run=2)
        await until(journaled(servers.journal, partition, "worker_left", seq), 30, "the leader to drop w1's sandboxes")
        again = await client.acquire("hello", "1", 128, 3000, sandbox=sandbox, deadline_s=30)
        assert again.cold, "the old sandbox died with the old agent"
        assert again.worker_address == lease.worker_address
        assert (await invoke(again, 2, 3))["sum"] == 5
        assert await client.release(again, "ok")


async def test_bad_templates_and_reconcile_after_restart(
    servers: Servers, agents: Agents, blob: str, tmp_path: Path
) -> None:
    worker = agents.start("w1", "zone-a")
    server = servers.start("s1", partitions=PARTITIONS, workers="grpc")
    await asyncio.to_thread(server.wait_serving)
    sandbox = template(blob)
    async with AssignmentClient([server.address], tls=tls.identity("frontend")) as client:
        kept = await acquire_when_ready(client, "hello", sandbox)
        lost = await client.acquire("hello", "1", 128, 3000, sandbox=sandbox)
        assert lost.cold
        assert lost.sandbox_id != kept.sandbox_id
        assert await client.release(kept, "ok")

        bad = {
            "sandbox id set": template(blob, sandbox_id="p0-s1"),
            "another function": template(blob, function_name="other"),
            "no code": worker_pb2.CreateSandboxRequest(handler="app.handler"),
            "unknown blob": template("0" * 64),
            "malformed hash": template("not-a-hash"),
            "bad handler": template(blob, handler="no handler"),
            "oversized environment": template(blob, environment={f"K{i}": "v" * 100 for i in range(100)}),
            "reserved environment": template(blob, environment={"AWS_LAMBDA_RUNTIME_API": "evil:1"}),
        }
        for case, request in bad.items():
            with pytest.raises(RpcFailed) as info:
                await client.acquire("hello", f"bad-{len(case)}", 128, 3000, sandbox=request)
            assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, case
            assert info.value.field == "sandbox", case
        with pytest.raises(RpcFailed) as unknown:
            await client.acquire("hello", "9", 128, 3000, sandbox=template("f" * 64))
        assert "code.blob_sha256" in unknown.value.message
        with pytest.raises(RpcFailed) as bare:  # a real worker cannot start a sandbox without the template
            await client.acquire("hello", "8", 128, 3000)
        assert bare.value.field == "sandbox"
        with pytest.raises(RpcFailed) as missing:
            await client.ensure_warm("hello", "1", 128, 3000, 2, worker_pb2.CreateSandboxRequest())
        assert missing.value.field == "sandbox"
        with pytest.raises(RpcFailed) as count:
            await client.ensure_warm("hello", "1", 128, 3000, 1_000_000, sandbox)
        assert count.value.field == "count"
        assert await listed(worker) == {kept.sandbox_id, lost.sandbox_id}  # no leftovers of the bad requests

    # the server stops; meanwhile the worker loses a sandbox and gains an orphan of the partition
    assert server.terminate() == 0
    partition = partition_of("hello", PARTITIONS)
    orphan = sandbox_name(partition, 999)
    async with tls.aio_channel(f"127.0.0.1:{worker.port}", "worker", as_role="server") as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        await stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=lost.sandbox_id), timeout=10)
        request = template(blob, sandbox_id=orphan, function_name="hello", memory_mb=128)
        await stub.CreateSandbox(request, timeout=30)
    assert await listed(worker) == {kept.sandbox_id, orphan}
    server.launch()
    await asyncio.to_thread(server.wait_serving)
    async with AssignmentClient([server.address], tls=tls.identity("frontend")) as client:
        warm = await until(lambda: _acquire_or_none(client, sandbox), 20, "the restarted leader")
        assert not warm.cold
        assert warm.sandbox_id == kept.sandbox_id
        with pytest.raises(RpcFailed) as gone:  # the lost sandbox's lease failed with it
            await client.release(lost, "ok")
        assert gone.value.error == "stale_lease"
        assert await listed(worker) == {kept.sandbox_id}  # the orphan was destroyed
        fresh = await client.acquire("hello", "1", 128, 3000, sandbox=sandbox)
        assert fresh.cold
        assert fresh.sandbox_id not in (kept.sandbox_id, lost.sandbox_id, orphan)
        for held in (warm, fresh):
            assert await client.release(held, "ok")


async def _acquire_or_none(client: AssignmentClient, sandbox: worker_pb2.CreateSandboxRequest) -> pb.Lease | None:
    try:
        return await client.acquire("hello", "1", 128, 3000, sandbox=sandbox, deadline_s=5)
    except RpcFailed as exc:
        if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return None
        raise
