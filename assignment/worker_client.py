"""How a partition leader talks to worker agents: create, reset, destroy and list sandboxes.

The leader depends only on the :class:`WorkerClient` protocol. :class:`GrpcWorkerClient` is the real one,
over the worker agent's ``leasehold.workers.v1.Worker`` gRPC API (one cached channel per address, a
deadline on every call, every failure a :class:`WorkerRefused` naming its reason). :class:`AcceptingWorkers`
accepts every request without contacting anyone (for servers run against worker doubles that register in
coordination only).

A cold start sends the worker the template the frontend built (``AcquireRequest.sandbox``, a
``CreateSandboxRequest`` with code, runtime, handler, environment and layers) with the sandbox's name,
memory and timeout filled in by the leader.

Example::

    client = GrpcWorkerClient()
    spec = SandboxSpec("p3-s17", "resize", "$LATEST", 256, 3_000, template)
    init_ms = await client.create_sandbox("10.0.0.5:7001", spec)
    listed = await client.list_sandboxes("10.0.0.5:7001")
    await client.close()
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Protocol

import grpc

from workers.tls import Tls, aio_channel
from workers.v1 import worker_pb2, worker_pb2_grpc

__all__ = [
    "AcceptingWorkers",
    "GrpcWorkerClient",
    "NoTemplate",
    "SandboxSpec",
    "WorkerClient",
    "WorkerRefused",
    "WorkerTimeouts",
    "parse_sandbox_name",
    "sandbox_name",
]

log = logging.getLogger("leasehold.worker_client")

_NAME = re.compile(r"p(\d{1,10})-s(\d{1,20})")
#: The worker's smallest function timeout (AWS: 1 s); shorter leases still get a sandbox.
_MIN_TIMEOUT_MS = 1000


def sandbox_name(partition: int, sandbox_id: int) -> str:
    """The name of a partition's sandbox on its worker: ``p<partition>-s<id>``."""
    return f"p{partition}-s{sandbox_id}"


def parse_sandbox_name(name: str) -> tuple[int, int] | None:
    """``"p3-s17"`` → ``(3, 17)``; ``None`` for a name no partition leader chose."""
    match = _NAME.fullmatch(name)
    return (int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True, slots=True, eq=False)
class SandboxSpec:
    """A sandbox to create: its name (chosen by the leader), the function version it runs, and the
    frontend's ``CreateSandboxRequest`` template (``None`` only with worker doubles)."""

    name: str
    function: str
    version: str
    memory_mb: int
    timeout_ms: int = 3000
    template: worker_pb2.CreateSandboxRequest | None = None

    def request(self) -> worker_pb2.CreateSandboxRequest:
        """The CreateSandbox request: the template with name, function, memory and timeout filled in."""
        if self.template is None:
            raise NoTemplate(f"sandbox {self.name} of {self.function!r} has no template")
        request = worker_pb2.CreateSandboxRequest()
        request.CopyFrom(self.template)
        request.sandbox_id = self.name
        request.function_name = self.function
        request.memory_mb = self.memory_mb
        request.timeout_ms = max(self.timeout_ms, _MIN_TIMEOUT_MS)
        return request


class WorkerRefused(Exception):
    """The worker refused or could not be reached; the leader tries the next candidate.

    ``reason`` is the gRPC code's name (``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, ...) or ``refused``;
    ``invalid`` is set when the worker found the request itself malformed (INVALID_ARGUMENT: another worker
    would refuse it too).
    """

    def __init__(self, message: str, *, reason: str = "refused", invalid: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.invalid = invalid


class NoTemplate(WorkerRefused):
    """A cold start without the sandbox template: a real worker has nothing to run."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="no_template", invalid=True)


class WorkerClient(Protocol):
    """The worker operations a leader needs."""

    async def create_sandbox(self, address: str, spec: SandboxSpec) -> int:
        """Create and initialise the sandbox; return the init time in ms, or raise :class:`WorkerRefused`."""
        ...

    async def reset_sandbox(self, address: str, name: str) -> None:
        """Bring the sandbox back to a clean idle state, or raise :class:`WorkerRefused`."""
        ...

    async def destroy_sandbox(self, address: str, name: str) -> None:
        """Destroy the sandbox (a missing one counts as destroyed), or raise :class:`WorkerRefused`."""
        ...

    async def list_sandboxes(self, address: str) -> worker_pb2.ListSandboxesResponse:
        """Every sandbox the worker holds, or raise :class:`WorkerRefused` (unreachable, or it cannot say)."""
        ...


class AcceptingWorkers:
    """A :class:`WorkerClient` that accepts every request and contacts nobody."""

    async def create_sandbox(self, address: str, spec: SandboxSpec) -> int:
        """Accept: report an init time of 0 ms."""
        return 0

    async def reset_sandbox(self, address: str, name: str) -> None:
        """Accept."""

    async def destroy_sandbox(self, address: str, name: str) -> None:
        """Accept."""

    async def list_sandboxes(self, address: str) -> worker_pb2.ListSandboxesResponse:
        """Refuse: a double that contacts nobody cannot say what a worker holds (reconcile skips it)."""
        raise WorkerRefused("accepting double: no sandbox list", reason="UNAVAILABLE")


@dataclass(frozen=True, slots=True)
class WorkerTimeouts:
    """Per-call deadlines of :class:`GrpcWorkerClient`, in seconds."""

    #: The worker's init is limited to 10 s; code download and unpacking come on top.
    create_s: float = 20.0
    reset_s: float = 20.0
    destroy_s: float = 10.0
    list_s: float = 5.0


class GrpcWorkerClient:
    """A :class:`WorkerClient` over ``workers.v1`` gRPC; use from one event loop, then :meth:`close`."""

    def __init__(self, timeouts: WorkerTimeouts | None = None, *, tls: Tls | None = None) -> None:
        self.timeouts = timeouts or WorkerTimeouts()
        #: The caller's identity for mTLS (``None``: plaintext channels).
        self.tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, worker_pb2_grpc.WorkerAsyncStub] = {}

    def _stub(self, address: str) -> worker_pb2_grpc.WorkerAsyncStub:
        stub = self._stubs.get(address)
        if stub is None:
            options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 16 << 20)]
            channel = aio_channel(address, self.tls, "worker", options)
            self._channels[address] = channel
            stub = self._stubs[address] = worker_pb2_grpc.WorkerStub(channel)
        return stub

    async def close(self) -> None:
        """Close every channel."""
        channels, self._channels, self._stubs = self._channels, {}, {}
        for channel in channels.values():
            await channel.close()

    @staticmethod
    def _refused(op: str, address: str, exc: grpc.aio.AioRpcError) -> WorkerRefused:
        code = exc.code()
        return WorkerRefused(
            f"{op} on {address}: {code.name}: {exc.details() or ''}",
            reason=code.name,
            invalid=code == grpc.StatusCode.INVALID_ARGUMENT,
        )

    async def create_sandbox(self, address: str, spec: SandboxSpec) -> int:
        """CreateSandbox with the template; the init time in ms (an init error still creates the sandbox)."""
        request = spec.request()
        try:
            answer: worker_pb2.CreateSandboxResponse = await self._stub(address).CreateSandbox(
                request, timeout=self.timeouts.create_s
            )
        except grpc.aio.AioRpcError as exc:
            raise self._refused("CreateSandbox", address, exc) from None
        if answer.HasField("init_error"):
            log.info(
                "event=sandbox_init_failed sandbox=%s worker=%s error_type=%s",
                spec.name,
                address,
                answer.init_error.error_type,
            )
        return max(0, round(answer.init_duration_ms))

    async def reset_sandbox(self, address: str, name: str) -> None:
        """ResetSandbox (NOT_FOUND is a refusal: the leader then destroys the sandbox)."""
        try:
            await self._stub(address).ResetSandbox(
                worker_pb2.ResetSandboxRequest(sandbox_id=name), timeout=self.timeouts.reset_s
            )
        except grpc.aio.AioRpcError as exc:
            raise self._refused("ResetSandbox", address, exc) from None

    async def destroy_sandbox(self, address: str, name: str) -> None:
        """DestroySandbox; an unknown sandbox (``existed=false`` or NOT_FOUND) is success."""
        try:
            await self._stub(address).DestroySandbox(
                worker_pb2.DestroySandboxRequest(sandbox_id=name), timeout=self.timeouts.destroy_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return
            raise self._refused("DestroySandbox", address, exc) from None

    async def list_sandboxes(self, address: str) -> worker_pb2.ListSandboxesResponse:
        """ListSandboxes."""
        try:
            answer: worker_pb2.ListSandboxesResponse = await self._stub(address).ListSandboxes(
                worker_pb2.ListSandboxesRequest(), timeout=self.timeouts.list_s
            )
        except grpc.aio.AioRpcError as exc:
            raise self._refused("ListSandboxes", address, exc) from None
        return answer
