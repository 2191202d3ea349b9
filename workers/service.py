"""The ``leasehold.workers.v1.Worker`` gRPC service over an :class:`~workers.agent.Agent`, plus serving.

This module is the only one that knows both the protobuf types and the agent; it maps each agent error
to one status code (see ``proto/workers/v1/worker.proto``). :func:`serve` starts a ``grpc.aio`` server
with the Worker service, the standard health service (SERVING while up) and reflection.

Example::

    server, port = await serve(agent, "127.0.0.1:0")
    ...
    await stop(server, agent, grace_s=5)
"""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from workers import errors
from workers.agent import Agent, CreateSpec
from workers.blobs import CodeStore
from workers.code import CodeError, DirSource, Source, ZipSource
from workers.errors import AgentError, InvalidRequest
from workers.runtime_api import ErrorBody, Invocation
from workers.sandbox import InitResult, Sandbox, SandboxCredentials, SandboxResult, State
from workers.tls import RoleCheck, Tls, add_port
from workers.v1 import worker_pb2, worker_pb2_grpc

__all__ = ["SERVICE_NAME", "WorkerService", "serve", "stop"]

SERVICE_NAME = worker_pb2.DESCRIPTOR.services_by_name["Worker"].full_name
_CODES: dict[type[AgentError], grpc.StatusCode] = {
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.SandboxNotFound: grpc.StatusCode.NOT_FOUND,
    errors.SandboxExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.CapacityExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.StaleLease: grpc.StatusCode.FAILED_PRECONDITION,
    errors.CredentialsExpiring: grpc.StatusCode.FAILED_PRECONDITION,
    errors.SandboxBusy: grpc.StatusCode.ABORTED,
    errors.ShuttingDown: grpc.StatusCode.UNAVAILABLE,
}
_STATES = {
    State.STARTING: worker_pb2.SANDBOX_STATE_STARTING,
    State.IDLE: worker_pb2.SANDBOX_STATE_IDLE,
    State.BUSY: worker_pb2.SANDBOX_STATE_BUSY,
    State.INIT_FAILED: worker_pb2.SANDBOX_STATE_INIT_FAILED,
    State.DEAD: worker_pb2.SANDBOX_STATE_DEAD,
}


def _source(ref: worker_pb2.CodeRef, what: str, store: CodeStore | None) -> Source:
    kind = ref.WhichOneof("source")
    if kind == "blob_sha256":
        field = f"{what}.blob_sha256"
        if store is None:
            raise InvalidRequest(f"{field}: this worker has no code store (--code-store / LEASEHOLD_CODE_STORE)")
        try:
            return store.source(ref.blob_sha256, field)
        except CodeError as exc:
            raise InvalidRequest(str(exc)) from None
    if kind == "zip_path":
        return ZipSource(path=_path(ref.zip_path, what))
    if kind == "directory":
        return DirSource(_path(ref.directory, what))
    if kind == "zip_bytes":
        return ZipSource(data=ref.zip_bytes)
    raise InvalidRequest(f"{what} needs zip_path, directory, zip_bytes or blob_sha256")


def _path(text: str, what: str) -> Path:
    if not text.startswith("/"):
        raise InvalidRequest(f"{what} path {text!r} must be absolute")
    return Path(text)


def _error(error: ErrorBody) -> worker_pb2.ErrorInfo:
    return worker_pb2.ErrorInfo(
        error_type=error.error_type, error_message=error.error_message, stack_trace=error.stack_trace
    )


def sandbox_info(sandbox: Sandbox) -> worker_pb2.SandboxInfo:
    """The proto view of a sandbox."""
    info = worker_pb2.SandboxInfo(
        sandbox_id=sandbox.config.sandbox_id,
        function_name=sandbox.config.function_name,
        function_version=sandbox.config.function_version,
        memory_mb=sandbox.config.memory_mb,
        state=_STATES[sandbox.state],
        invocations=sandbox.invocations,
        restored=sandbox.restored,
    )
    if sandbox.newest_token is not None:
        info.newest_token.epoch, info.newest_token.seq = sandbox.newest_token
    return info


class WorkerService(worker_pb2_grpc.WorkerServicer):
    """The Worker servicer: proto in, agent call, proto out; AgentError → status code."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def _abort(self, context: grpc.aio.ServicerContext[object, object], exc: AgentError) -> None:
        code = next((c for t, c in _CODES.items() if isinstance(exc, t)), grpc.StatusCode.INTERNAL)
        await context.abort(code, str(exc))

    async def CreateSandbox(
        self, request: worker_pb2.CreateSandboxRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> worker_pb2.CreateSandboxResponse:
        """Create a sandbox and run its init."""
        try:
            if not request.HasField("code"):
                raise InvalidRequest("code is required")
            spec = CreateSpec(
                sandbox_id=request.sandbox_id,
                function_name=request.function_name,
                function_version=request.function_version or "$LATEST",
                code=_source(request.code, "code", self.agent.code_store),
                layers=tuple(
                    _source(layer, f"layers[{i}]", self.agent.code_store) for i, layer in enumerate(request.layers)
                ),
                handler=request.handler,
                memory_mb=request.memory_mb,
                timeout_ms=request.timeout_ms or 3000,
                environment=dict(request.environment),
                runtime=request.runtime or "python",
                log_level=request.application_log_level,
                log_format=request.log_format,
                system_log_level=request.system_log_level,
                log_group=request.log_group,
                tmp_mb=request.ephemeral_storage_mb,
                region=request.region,
                snap_start=request.snap_start,
                provisioned=request.provisioned,
                credentials=_credentials(request),
            )
            sandbox, init = await self.agent.create(spec)
        except AgentError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from exc
        return _created(sandbox, init)

    async def DestroySandbox(
        self, request: worker_pb2.DestroySandboxRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> worker_pb2.DestroySandboxResponse:
        """Destroy a sandbox (idempotent)."""
        try:
            existed = await self.agent.destroy(request.sandbox_id)
        except AgentError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from exc
        return worker_pb2.DestroySandboxResponse(existed=existed)

    async def ResetSandbox(
        self, request: worker_pb2.ResetSandboxRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> worker_pb2.ResetSandboxResponse:
        """Restart a sandbox from scratch."""
        try:
            sandbox, init = await self.agent.reset(request.sandbox_id)
        except AgentError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from exc
        return worker_pb2.ResetSandboxResponse(
            sandbox=sandbox_info(sandbox), init_error=_error(init.error) if init.error else None
        )

    async def Invoke(
        self, request: worker_pb2.InvokeRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> worker_pb2.InvokeResponse:
        """Run one invocation."""
        token = (request.token.epoch, request.token.seq) if request.HasField("token") else None
        invocation = Invocation(
            request_id=request.request_id,
            payload=request.payload,
            deadline_ms=request.deadline_ms,
            invoked_function_arn=request.invoked_function_arn,
            trace_id=request.trace_id,
            client_context=request.client_context,
            cognito_identity=request.cognito_identity,
        )
        try:
            result = await self.agent.invoke(request.sandbox_id, token, invocation)
        except AgentError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from exc
        return invoke_response(result)

    async def ListSandboxes(
        self, request: worker_pb2.ListSandboxesRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> worker_pb2.ListSandboxesResponse:
        """Every sandbox on this worker with the worker's capacity."""
        return worker_pb2.ListSandboxesResponse(
            sandboxes=[sandbox_info(s) for s in self.agent.list()],
            memory_mb=self.agent.config.memory_mb,
            free_memory_mb=self.agent.free_memory_mb,
            zone=self.agent.config.zone,
        )


def _credentials(request: worker_pb2.CreateSandboxRequest) -> SandboxCredentials | None:
    if not request.HasField("credentials"):
        return None
    given = request.credentials
    return SandboxCredentials(given.access_key_id, given.secret_access_key, given.session_token, given.expiration_ms)


def _created(sandbox: Sandbox, init: InitResult) -> worker_pb2.CreateSandboxResponse:
    return worker_pb2.CreateSandboxResponse(
        sandbox=sandbox_info(sandbox),
        init_duration_ms=init.duration_ms,
        init_error=_error(init.error) if init.error else None,
        init_logs=init.logs,
    )


def invoke_response(result: SandboxResult) -> worker_pb2.InvokeResponse:
    """The proto view of an invocation's result."""
    response = worker_pb2.InvokeResponse(
        outcome=result.outcome.wire,
        logs=result.logs,
        duration_ms=result.duration_ms,
        billed_duration_ms=max(1, int(-(-result.duration_ms // 1))),
        max_memory_used_mb=result.max_memory_mb,
        init_duration_ms=result.init_ms or 0.0,
        restore_duration_ms=result.restore_ms or 0.0,
    )
    if result.runtime_error is not None:
        response.runtime_error.CopyFrom(_error(result.runtime_error))
    elif result.function_error is not None:
        response.function_error.CopyFrom(_error(result.function_error))
    else:
        response.payload = result.payload
    return response


#: Who may call the worker (mTLS roles): sandboxes are made and removed by assignment servers only; invocations
#: come from frontends; both list them (reconciliation, the frontend's admin view).
POLICY = {
    f"/{SERVICE_NAME}/CreateSandbox": frozenset({"server"}),
    f"/{SERVICE_NAME}/DestroySandbox": frozenset({"server"}),
    f"/{SERVICE_NAME}/ResetSandbox": frozenset({"server"}),
    f"/{SERVICE_NAME}/Invoke": frozenset({"frontend"}),
    f"/{SERVICE_NAME}/ListSandboxes": frozenset({"server", "frontend"}),
}


async def serve(agent: Agent, listen: str, tls: Tls | None) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server (Worker + health + reflection) on ``listen``; return it and its port.

    With ``tls`` callers need a cluster certificate and the role :data:`POLICY` names for the method;
    ``None`` serves plaintext to anyone (``--insecure``)."""
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)],
        interceptors=[RoleCheck(POLICY)] if tls else None,
    )
    worker_pb2_grpc.add_WorkerServicer_to_server(WorkerService(agent), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = add_port(server, listen, tls)
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.health = health_servicer  # type: ignore[attr-defined]
    return server, port


async def stop(server: grpc.aio.Server, agent: Agent, grace_s: float = 5.0) -> None:
    """Graceful stop: NOT_SERVING, let in-flight calls finish (up to ``grace_s``), destroy sandboxes."""
    health_servicer = getattr(server, "health", None)
    if health_servicer is not None:
        await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_s)
    await agent.close()
