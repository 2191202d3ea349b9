"""Running one invocation on the cluster: lease from the partition leader, Invoke on the worker, Release.

:class:`LeaseBackend` is the production :class:`Backend`; tests of the HTTP layer may pass their own.
Throttles from the assignment service become ``TooManyRequestsException`` with AWS's ``Reason``; other
failures of the service become ``ServiceException``. Function and runtime errors are results
(``function_error="Unhandled"``), as on AWS. A worker that lost the sandbox between grant and invoke
(NOT_FOUND, a stale token, ...) gets the lease released as ``crash`` and the invocation is tried once
more on a new lease.

Example::

    backend = LeaseBackend(AssignmentClient(["127.0.0.1:7100"]))
    result = await backend.run(config, b'{"x": 1}', request_id="r-1")
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import grpc

from assignment.client import AssignmentClient, RpcFailed
from assignment.frontend.auth.sessions import SessionCredentials, SessionIssuer
from assignment.frontend.types import FunctionConfig, InvokeResult, ServiceException, TooManyRequestsException
from assignment.v1 import assignment_pb2 as apb
from assignment.v1 import assignment_pb2_grpc as apb_grpc
from journal.outcomes import Outcome
from workers.tls import aio_channel
from workers.v1 import worker_pb2 as wpb
from workers.v1 import worker_pb2_grpc as wpb_grpc

__all__ = ["CREDENTIALS_REFRESH_S", "Backend", "LeaseBackend", "sandbox_template", "throttle_error"]

#: How long a version's sandbox template keeps its session credentials before new ones are issued: every
#: sandbox starts with credentials valid for nearly their whole TTL (12 h).
CREDENTIALS_REFRESH_S = 60.0

log = logging.getLogger("leasehold.frontend.backend")

#: Worker errors after which the lease is given back as broken and the invocation retried on a new one.
_LOST_SANDBOX = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNAVAILABLE,
)


class Backend(Protocol):
    """Where the frontend runs invocations and sets concurrency (the cluster, or a test double)."""

    async def run(
        self, config: FunctionConfig, payload: bytes, *, request_id: str, client_context: str = ""
    ) -> InvokeResult:
        """Run one invocation of ``config`` synchronously."""

    async def set_concurrency(self, function: str, reserved: int | None) -> None:
        """Reserve concurrency for a function (``None`` removes the reservation)."""

    async def ensure_warm(self, config: FunctionConfig, count: int) -> tuple[int, int]:
        """Keep ``count`` initialised sandboxes of a version; ``(sandboxes, created)``."""

    async def routes(self) -> list[dict[str, object]]:
        """Each partition's leader: ``{"partition", "leader_id", "leader_address"}``."""

    async def list_sandboxes(self, address: str) -> wpb.ListSandboxesResponse | None:
        """A worker's sandboxes, or ``None`` when it does not answer."""

    async def close(self) -> None:
        """Release connections."""


def throttle_error(exc: RpcFailed) -> TooManyRequestsException | ServiceException:
    """The Lambda error for a failed Acquire."""
    if exc.error == "throttled" or exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if exc.reason == "reserved_limit":
            return TooManyRequestsException(
                "Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        return TooManyRequestsException("Rate Exceeded.", reason="ConcurrentInvocationLimitExceeded")
    return ServiceException(f"The assignment service failed: {exc.code.name} {exc.error}".strip())


def _provisioned(template: wpb.CreateSandboxRequest) -> wpb.CreateSandboxRequest:
    """``template`` for sandboxes made ahead of time (their first REPORT has no Init Duration, as AWS's)."""
    template.provisioned = True
    return template


def sandbox_template(
    config: FunctionConfig, region: str, credentials: SessionCredentials | None = None
) -> wpb.CreateSandboxRequest:
    """The CreateSandbox request the leader sends to a worker for a cold start of ``config``, with the
    function's session ``credentials`` when given (they travel to the worker only, never into the journal)."""
    given = None
    if credentials is not None:
        given = wpb.SandboxCredentials(
            access_key_id=credentials.access_key_id,
            secret_access_key=credentials.secret_access_key,
            session_token=credentials.session_token,
            expiration_ms=credentials.expiration_ms,
        )
    return wpb.CreateSandboxRequest(
        function_name=config.name,
        function_version=config.version,
        code=wpb.CodeRef(blob_sha256=config.code_sha256),
        layers=[wpb.CodeRef(blob_sha256=sha) for sha in config.layers],
        memory_mb=config.memory_mb,
        timeout_ms=config.timeout_s * 1000,
        environment=config.environment,
        runtime=config.runtime,
        handler=config.handler,
        snap_start=config.snap_start,
        region=region,
        credentials=given,
        log_format=config.logging.log_format,
        # AWS sets the levels for JSON only (Text keeps the runtime's defaults).
        application_log_level=config.logging.application_log_level if config.logging.log_format == "JSON" else "",
        system_log_level=config.logging.system_log_level if config.logging.log_format == "JSON" else "",
        log_group=config.logging.group_of(config.name),
        ephemeral_storage_mb=config.ephemeral_storage_mb,
    )


def _error_document(info: wpb.ErrorInfo, request_id: str) -> bytes:
    doc: dict[str, object] = {"errorMessage": info.error_message}
    if info.error_type:
        doc["errorType"] = info.error_type
    doc["requestId"] = request_id
    doc["stackTrace"] = list(info.stack_trace)
    return json.dumps(doc).encode()


class LeaseBackend:
    """Runs invocations through the routing client and the workers' Invoke RPC (one channel per worker)."""

    def __init__(
        self,
        client: AssignmentClient,
        *,
        region: str = "us-east-1",
        acquire_deadline_s: float = 10.0,
        local_workers: Mapping[str, Any] | None = None,
        issuer: SessionIssuer | None = None,
    ) -> None:
        self.client = client
        #: Issues the functions' session credentials for their sandboxes (None: sandboxes get none).
        self.issuer = issuer
        self.region = region
        self.acquire_deadline_s = acquire_deadline_s
        #: In-process Worker stubs by address (``leasehold dev``; see :mod:`assignment.frontend.inproc`).
        self._workers: dict[str, wpb_grpc.WorkerAsyncStub] = dict(local_workers or {})
        self._templates: dict[tuple[str, str], tuple[FunctionConfig, wpb.CreateSandboxRequest, float]] = {}
        self._channels: list[grpc.aio.Channel] = []
        self._releases: set[asyncio.Task[None]] = set()
        self._runs: set[asyncio.Task[InvokeResult]] = set()

    def _worker(self, address: str) -> wpb_grpc.WorkerAsyncStub:
        stub = self._workers.get(address)
        if stub is None:
            channel = aio_channel(address, self.client.tls, "worker")
            self._channels.append(channel)
            stub = self._workers[address] = wpb_grpc.WorkerStub(channel)
        return stub

    def _template(self, config: FunctionConfig) -> wpb.CreateSandboxRequest:
        """The version's sandbox template, built once per configuration (the Acquire of every invoke sends it;
        the leader copies it before use, so one message can be shared)."""
        key = (config.name, config.pool_version)
        hit = self._templates.get(key)
        now = time.monotonic()
        fresh = hit is not None and (self.issuer is None or now - hit[2] < CREDENTIALS_REFRESH_S)
        if hit is not None and fresh and (hit[0] is config or hit[0] == config):
            return hit[1]
        if len(self._templates) >= 10_000:
            self._templates.clear()
        template = sandbox_template(config, self.region, self._credentials(config))
        self._templates[key] = (config, template, now)
        return template

    def _credentials(self, config: FunctionConfig) -> SessionCredentials | None:
        """New session credentials for sandboxes of ``config`` (None without an issuer)."""
        if self.issuer is None:
            return None
        unqualified = config.arn.rsplit(":", 1)[0] if config.arn.count(":") > 6 else config.arn
        return self.issuer.issue(
            name=config.name,
            arn=unqualified,
            incarnation=config.incarnation,
            role=config.role,
            now_ms=int(time.time() * 1000),
        )

    async def run(
        self, config: FunctionConfig, payload: bytes, *, request_id: str, client_context: str = ""
    ) -> InvokeResult:
        """Acquire, invoke and release; one retry on a new lease when the worker lost the sandbox.

        The work is shielded: a caller that goes away (an HTTP client hanging up) does not leave a lease
        behind; the invocation completes and its lease is released.
        """
        task = asyncio.get_running_loop().create_task(self._run(config, payload, request_id, client_context))
        self._runs.add(task)
        task.add_done_callback(self._run_done)
        return await asyncio.shield(task)

    def _run_done(self, task: asyncio.Task[InvokeResult]) -> None:
        self._runs.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned caller's error is not "never retrieved"

    async def _run(self, config: FunctionConfig, payload: bytes, request_id: str, client_context: str) -> InvokeResult:
        for _attempt in range(2):
            # Acquire is idempotent by its id, and the routing client reuses one id across the retries of one
            # Acquire. Each run of an invocation needs a lease of its own, though: an async event retried
            # with the same invocation request id (or a retry after a lost sandbox) must not be handed the
            # ended lease of an earlier run, so every attempt gets a fresh acquire id.
            acquire_id = f"{request_id[:64]}.{uuid.uuid4().hex[:16]}"
            try:
                lease = await self.client.acquire(
                    config.name,
                    config.pool_version,
                    config.memory_mb,
                    config.timeout_s * 1000,
                    request_id=acquire_id,
                    deadline_s=self.acquire_deadline_s,
                    sandbox=self._template(config),
                )
            except RpcFailed as exc:
                log.info("event=acquire_failed request_id=%s function=%s error=%s", request_id, config.name, exc)
                raise throttle_error(exc) from None
            try:
                return await self._invoke(config, lease, payload, request_id, client_context)
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "event=worker_invoke_failed request_id=%s function=%s worker=%s code=%s",
                    request_id,
                    config.name,
                    lease.worker_address,
                    exc.code().name,
                )
                await self._release(lease, "crash", 0, 0, request_id)
                if exc.code() not in _LOST_SANDBOX:
                    raise ServiceException(f"The worker failed: {exc.code().name}") from None
        raise ServiceException("The sandbox was lost twice; try again")

    async def _invoke(
        self, config: FunctionConfig, lease: apb.Lease, payload: bytes, request_id: str, client_context: str
    ) -> InvokeResult:
        started = time.perf_counter()
        answer: wpb.InvokeResponse = await self._worker(lease.worker_address).Invoke(
            wpb.InvokeRequest(
                sandbox_id=lease.sandbox_id,
                token=lease.token,
                payload=payload,
                request_id=request_id,
                invoked_function_arn=config.arn,
                client_context=client_context,
            ),
            timeout=config.timeout_s + 15.0,
        )
        which = answer.WhichOneof("result")
        function_error = ""
        if which == "function_error":
            body, function_error = _error_document(answer.function_error, request_id), "Unhandled"
        elif which == "runtime_error":
            body, function_error = _error_document(answer.runtime_error, request_id), "Unhandled"
        else:
            body = answer.payload
        outcome = (Outcome.of_wire(answer.outcome) or Outcome.OK).label
        # The caller gets its answer without waiting for the Release commit (DESIGN §2: return the result,
        # then release). The Release is sent now, so the leader frees the sandbox before it decides a
        # following Acquire of this client; close() waits for releases still in flight.
        task = asyncio.get_running_loop().create_task(
            self._release(lease, outcome, int(answer.duration_ms), answer.max_memory_used_mb, request_id)
        )
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        await asyncio.sleep(0)  # let the Release go out on the channel before the answer
        return InvokeResult(
            request_id=request_id,
            payload=body,
            executed_version=config.version,
            function_error="Unhandled" if function_error else "",
            logs=answer.logs,
            outcome=outcome,
            duration_ms=answer.duration_ms or (time.perf_counter() - started) * 1000,
            cold=lease.cold,
        )

    async def _release(self, lease: apb.Lease, outcome: str, duration_ms: int, memory_mb: int, request_id: str) -> None:
        try:
            await self.client.release(lease, outcome, duration_ms=duration_ms, max_memory_mb=memory_mb)
        except (RpcFailed, grpc.aio.AioRpcError) as exc:  # the lease expires on its own; the result stands
            log.warning("event=release_failed request_id=%s outcome=%s error=%s", request_id, outcome, exc)

    async def set_concurrency(self, function: str, reserved: int | None) -> None:
        """Tell the function's partition leader its reserved concurrency."""
        try:
            await self.client.set_concurrency(function, reserved)
        except RpcFailed as exc:
            raise ServiceException(f"Could not set the concurrency: {exc.code.name}") from None

    async def ensure_warm(self, config: FunctionConfig, count: int) -> tuple[int, int]:
        """Ask the leader to keep ``count`` sandboxes of the version warm."""
        try:
            sandboxes, created = await self.client.ensure_warm(
                config.name,
                config.pool_version,
                config.memory_mb,
                config.timeout_s * 1000,
                count,
                _provisioned(sandbox_template(config, self.region, self._credentials(config))),
            )
        except RpcFailed as exc:
            raise ServiceException(f"Could not provision sandboxes: {exc.code.name} {exc.reason}") from None
        return int(sandboxes), int(created)

    async def routes(self) -> list[dict[str, object]]:
        """The routing table from the first server that answers."""
        for address in list(self.client.seeds):
            channel = aio_channel(address, self.client.tls, "server")
            try:
                answer: apb.RoutingResponse = await apb_grpc.AssignmentStub(channel).Routing(
                    apb.RoutingRequest(), timeout=2.0
                )
            except grpc.aio.AioRpcError:
                continue
            finally:
                await channel.close()
            return [
                {"partition": r.partition, "leader_id": r.leader_id, "leader_address": r.leader_address}
                for r in answer.routes
            ]
        return []

    async def list_sandboxes(self, address: str) -> wpb.ListSandboxesResponse | None:
        """A worker's sandboxes, or ``None`` when it does not answer."""
        try:
            answer: wpb.ListSandboxesResponse = await self._worker(address).ListSandboxes(
                wpb.ListSandboxesRequest(), timeout=2.0
            )
        except grpc.aio.AioRpcError:
            return None
        return answer

    async def close(self) -> None:
        """Wait for releases in flight (up to 10 s), then close the worker channels and the routing client."""
        if self._runs:
            await asyncio.wait(list(self._runs), timeout=10.0)
        if self._releases:
            await asyncio.wait(list(self._releases), timeout=10.0)
        await asyncio.gather(*(channel.close() for channel in self._channels), return_exceptions=True)
        self._channels.clear()
        self._workers.clear()
        await self.client.close()
