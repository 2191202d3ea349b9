"""The routing client frontends use: Acquire and Release on the right partition leader, with retries.

It computes the function's partition, keeps a cache of each partition's leader (filled from the
``Routing`` RPC of any server it knows, and corrected by the leader address that ``NOT_LEADER`` errors
carry), and retries ``NOT_LEADER``, ``UNAVAILABLE`` (including an unreachable server), an attempt's own
timeout and ``CANCELLED`` (a stopping server dropping its connections) with jittered
exponential backoff until the caller's deadline. One ``request_id`` is used for every attempt of an
Acquire, so a retry after a lost reply gets the same lease. Other errors raise :class:`RpcFailed` at once.
A server in the same process may be given as an in-process stub (``local``, see
:mod:`assignment.frontend.inproc`): the same calls and errors without the network hop.

Example::

    async with AssignmentClient(["10.0.0.7:7100", "10.0.0.8:7100"]) as client:
        lease = await client.acquire("resize", "$LATEST", 256, 3_000, deadline_s=5.0)
        ...
        await client.release(lease, "ok", duration_ms=12)
        await client.set_concurrency("resize", 10)
        sandboxes, created = await client.ensure_warm("resize", "$LATEST", 256, 3_000, 2, template)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from assignment.partitioning import partition_of
from assignment.v1 import assignment_pb2 as pb
from assignment.v1 import assignment_pb2_grpc as pb_grpc
from journal.outcomes import LABELS, Outcome
from workers.tls import Tls, aio_channel
from workers.v1 import worker_pb2

__all__ = ["AssignmentClient", "RpcFailed"]


#: An attempt that may create a sandbox waits for the worker's init (up to 10 s) and code download.
COLD_ATTEMPT_S = 25.0

# CANCELLED reaches a caller that did not cancel when a stopping server drops its connections.
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


class RpcFailed(Exception):
    """An RPC failed for good (or the deadline passed); ``error``/``reason``/``field`` come from the server."""

    def __init__(self, code: grpc.StatusCode, message: str, metadata: dict[str, str]) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.error = metadata.get("leasehold-error", "")
        self.reason = metadata.get("leasehold-reason", "")
        self.field = metadata.get("leasehold-field", "")
        self.leader = metadata.get("leasehold-leader", "")


def _metadata(error: grpc.aio.AioRpcError) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in error.trailing_metadata() or ():
        found[key] = value if isinstance(value, str) else value.decode()
    return found


class AssignmentClient:
    """A routing client over a set of assignment servers; use from one event loop."""

    def __init__(
        self,
        seeds: Sequence[str],
        *,
        partitions: int | None = None,
        base_backoff_s: float = 0.02,
        max_backoff_s: float = 0.5,
        attempt_timeout_s: float = 2.0,
        local: Mapping[str, Any] | None = None,
        tls: Tls | None = None,
    ) -> None:
        if not seeds:
            raise ValueError("at least one seed address is needed")
        self.seeds = list(seeds)
        #: The caller's identity for mTLS (``None``: plaintext channels).
        self.tls = tls
        self.partitions = partitions
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.attempt_timeout_s = attempt_timeout_s
        self.leaders: dict[int, str] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, pb_grpc.AssignmentAsyncStub] = {}
        #: In-process stubs by server address (``leasehold dev``: no gRPC hop to a server in this process).
        self._local: dict[str, Any] = dict(local or {})
        self._random = random.Random()
        #: Attempts that were retried, for tests and metrics.
        self.retries = 0

    def _stub(self, address: str) -> pb_grpc.AssignmentAsyncStub:
        stub = self._stubs.get(address)
        if stub is None:
            local: pb_grpc.AssignmentAsyncStub | None = self._local.get(address)
            if local is not None:
                self._stubs[address] = local
                return local
            channel = aio_channel(address, self.tls, "server")
            self._channels[address] = channel
            stub = self._stubs[address] = pb_grpc.AssignmentStub(channel)
        return stub

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()

    async def __aenter__(self) -> AssignmentClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ routing

    async def refresh(self, timeout_s: float = 1.0) -> bool:
        """Ask the known servers for the routing table until one answers; ``True`` if one did."""
        candidates = list(dict.fromkeys([*self.seeds, *self.leaders.values()]))
        self._random.shuffle(candidates)
        for address in candidates:
            try:
                answer: pb.RoutingResponse = await self._stub(address).Routing(pb.RoutingRequest(), timeout=timeout_s)
            except grpc.aio.AioRpcError:
                continue
            self.partitions = answer.partition_count
            self.leaders = {r.partition: r.leader_address for r in answer.routes if r.leader_address}
            for r in answer.routes:
                if r.leader_address and r.leader_address not in self.seeds:
                    self.seeds.append(r.leader_address)
            return True
        return False

    async def partition_for(self, function: str) -> int:
        """The function's partition (asks for the partition count once)."""
        if self.partitions is None and not await self.refresh():
            raise RpcFailed(grpc.StatusCode.UNAVAILABLE, "no server answered Routing", {})
        assert self.partitions is not None
        return partition_of(function, self.partitions)

    # ------------------------------------------------------------------ calls

    async def _call(
        self, partition: int, method: str, request: Any, deadline: float, *, attempt_s: float | None = None
    ) -> Any:
        loop = asyncio.get_running_loop()
        attempt_timeout = attempt_s or self.attempt_timeout_s
        attempt = 0
        last: RpcFailed | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise last or RpcFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed", {})
            address = self.leaders.get(partition)
            if address is None:
                await self.refresh(min(remaining, 1.0))
                address = self.leaders.get(partition)
            if address is not None:
                try:
                    call = getattr(self._stub(address), method)
                    return await call(request, timeout=min(remaining, attempt_timeout))
                except grpc.aio.AioRpcError as exc:
                    meta = _metadata(exc)
                    last = RpcFailed(exc.code(), exc.details() or "", meta)
                    if meta.get("leasehold-error") == "not_leader":
                        if last.leader and last.leader != address:
                            self.leaders[partition] = last.leader
                            attempt += 1
                            self.retries += 1
                            continue
                        self.leaders.pop(partition, None)
                    elif exc.code() in _RETRYABLE:
                        if meta.get("leasehold-error") != "unavailable":
                            self.leaders.pop(partition, None)  # unreachable: ask for the routes again
                    else:
                        raise last from None
            attempt += 1
            self.retries += 1
            backoff = min(self.max_backoff_s, self.base_backoff_s * 1.5 ** min(attempt, 20))
            delay = self._random.uniform(backoff / 2, backoff)
            await asyncio.sleep(max(0.0, min(delay, deadline - loop.time())))
            if partition not in self.leaders:
                with contextlib.suppress(Exception):
                    await self.refresh(min(1.0, max(0.05, deadline - loop.time())))

    async def acquire(
        self,
        function: str,
        version: str,
        memory_mb: int,
        timeout_ms: int,
        *,
        request_id: str | None = None,
        deadline_s: float = 10.0,
        sandbox: worker_pb2.CreateSandboxRequest | None = None,
    ) -> pb.Lease:
        """A lease (see ``AcquireRequest``); retried within ``deadline_s`` with one request id.

        ``sandbox`` is the template a cold start sends the worker (code, runtime, handler, environment,
        layers; the leader fills in the sandbox id, memory and timeout). With it an attempt may last as long
        as a sandbox's creation (:data:`COLD_ATTEMPT_S`).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        partition = await self.partition_for(function)
        request = pb.AcquireRequest(
            function=function,
            version=version,
            memory_mb=memory_mb,
            timeout_ms=timeout_ms,
            request_id=request_id or uuid.uuid4().hex,
            sandbox=sandbox,
        )
        attempt_s = max(self.attempt_timeout_s, COLD_ATTEMPT_S) if sandbox is not None else None
        answer: pb.AcquireResponse = await self._call(partition, "Acquire", request, deadline, attempt_s=attempt_s)
        return answer.lease

    async def set_concurrency(self, function: str, reserved: int | None, *, deadline_s: float = 10.0) -> None:
        """Set the function's reserved concurrency (``None`` removes the reservation); journaled by the
        partition's leader. :class:`RpcFailed` with ``field`` ``reserved`` when it exceeds the account limit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        partition = await self.partition_for(function)
        request = pb.SetConcurrencyRequest(function=function, reserved=reserved)
        await self._call(partition, "SetConcurrency", request, deadline)

    async def ensure_warm(  # noqa: PLR0917 - the signature frontends code against
        self,
        function: str,
        version: str,
        memory_mb: int,
        timeout_ms: int,
        count: int,
        sandbox: worker_pb2.CreateSandboxRequest,
        *,
        deadline_s: float = 60.0,
    ) -> tuple[int, int]:
        """Keep ``count`` initialised sandboxes of the version (provisioned concurrency); returns
        ``(sandboxes, created)``. One attempt may use the whole deadline (creations wait for init); only
        routing errors are retried. Call it periodically: idle reclaim, crashes and lost workers remove
        provisioned sandboxes like any other."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        partition = await self.partition_for(function)
        request = pb.EnsureWarmRequest(
            function=function,
            version=version,
            memory_mb=memory_mb,
            timeout_ms=timeout_ms,
            count=count,
            sandbox=sandbox,
        )
        answer: pb.EnsureWarmResponse = await self._call(
            partition, "EnsureWarm", request, deadline, attempt_s=max(deadline_s, self.attempt_timeout_s)
        )
        return answer.sandboxes, answer.created

    async def release(
        self,
        lease: pb.Lease,
        outcome: str = "ok",
        *,
        duration_ms: int = 0,
        max_memory_mb: int = 0,
        deadline_s: float = 10.0,
    ) -> bool:
        """Give the lease back. ``True`` when this call's release was acknowledged; ``False`` when a retry
        found the lease already gone (released by an earlier attempt whose reply was lost, or ended by the
        server, e.g. with its worker)."""
        ended = Outcome.of_label(outcome)
        if ended is None:
            raise ValueError(f"outcome must be one of {sorted(LABELS)}, not {outcome!r}")
        loop = asyncio.get_running_loop()
        request = pb.ReleaseRequest(
            partition=lease.partition,
            token=lease.token,
            outcome=ended.wire,
            duration_ms=duration_ms,
            max_memory_mb=max_memory_mb,
        )
        retries = self.retries
        try:
            await self._call(lease.partition, "Release", request, loop.time() + deadline_s)
        except RpcFailed as exc:
            if exc.error == "stale_lease" and self.retries > retries:
                return False
            raise
        return True
