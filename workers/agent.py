"""The worker agent: holds the sandboxes of one machine, enforces memory and lease rules, registers.

It owns the sandbox table, the memory budget, the per-sandbox users and the code cache; it knows
nothing of gRPC (``workers/service.py`` translates). Rules:

- CreateSandbox reserves the sandbox's memory first and refuses beyond the worker's (CapacityExhausted).
- Invoke refuses a lease token older than the newest it has seen for the sandbox (StaleLease) and a
  second invocation while one runs (SandboxBusy); an equal token is a retry of the same lease and runs.
- On start the agent **cleans up** whatever an earlier agent left under ``<data-dir>/sandboxes``: it
  kills their processes (by sandbox user) and removes their files, then registers with no sandboxes.
  Survivors cannot be adopted: their Runtime API endpoints lived in the dead agent, so their runtimes
  have lost the connection they block on, and an invocation that was running has no one to answer to.
  (With bubblewrap the sandboxes already died with the agent: ``--die-with-parent``.)
- With ``invocation_log`` set, every invocation that runs gets a start and an end line in that audit log
  (``workers/audit.py``); refused ones (stale token, busy) do not.

Example::

    agent = Agent(AgentConfig(data_dir=Path("/var/lib/leasehold")))
    await agent.start()
    sandbox, init = await agent.create(CreateSpec("sb-1", "hello", code=DirSource(Path("fn")), handler="app.handler"))
    result = await agent.invoke("sb-1", (1, 1), Invocation("req-1", b"{}", deadline_ms=0))
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from workers.audit import InvocationLog
from workers.blobs import CodeStore
from workers.code import CodeCache, CodeError, Source
from workers.errors import (
    CapacityExhausted,
    CredentialsExpiring,
    InvalidRequest,
    SandboxBusy,
    SandboxExists,
    SandboxNotFound,
    ShuttingDown,
    StaleLease,
)
from workers.logs import SYSTEM_LOG_LEVELS
from workers.netns import EgressPolicy, NetworkPool, resolv_conf
from workers.registration import NullRegistrar, Registrar, WorkerInfo
from workers.runtime_api import MAX_RESPONSE_BYTES, Invocation
from workers.sandbox import (
    MAX_TMP_MB,
    MIN_TMP_MB,
    RESERVED_ENV,
    InitResult,
    Isolation,
    Sandbox,
    SandboxConfig,
    SandboxCredentials,
    SandboxResult,
    kill_user_processes,
    unmount,
)
from workers.templates import ForkedSandbox, TemplateSandbox

__all__ = ["PLATFORM_ENDPOINT_VARIABLES", "Agent", "AgentConfig", "CreateSpec"]

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The longest value of an invocation field that becomes a ``Lambda-Runtime-*`` header (AWS caps the client
#: context at 3,583 bytes; the others are far shorter).
MAX_HEADER_VALUE = 8192
#: The variables naming the platform's endpoint (``--lambda-endpoint``) to functions: boto3's per-service
#: endpoint settings for the APIs the frontend serves there.
PLATFORM_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_SQS")
#: A sandbox is retired when its credentials expire less than this after an invocation's deadline.
CREDENTIALS_MARGIN_MS = 60_000


def _check_header_values(invocation: Invocation) -> None:
    """Fields the runtime receives as HTTP headers: no control characters (a newline would inject headers
    into the runtime's /next answer) and a bounded length."""
    for name in ("invoked_function_arn", "trace_id", "client_context", "cognito_identity"):
        value = getattr(invocation, name)
        if len(value) > MAX_HEADER_VALUE:
            raise InvalidRequest(f"{name} is longer than {MAX_HEADER_VALUE} characters")
        if _CONTROL.search(value):
            raise InvalidRequest(f"{name} contains control characters")


_LOG_LEVELS = frozenset({"", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"})
#: CloudWatch Logs' log group names (botocore's LogGroup: 1-512 of these).
_LOG_GROUP = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")


def default_uid_base(data_dir: Path) -> int:
    """The first sandbox uid of an agent on ``data_dir``: its own range of 1,000 uids, the same on every
    restart (so leftovers of a crashed run are found and killed by uid) and, by a hash of the folder, apart
    from other agents on the machine. An agent kills every process of a sandbox's uid when the sandbox ends;
    with one shared range, one agent's clean-up killed another's sandboxes."""
    return 1_000_000 + 1000 * (zlib.crc32(str(data_dir.resolve()).encode()) % 1_000_000)


@dataclass(frozen=True)
class AgentConfig:
    """The agent's settings (flags of ``leasehold worker``)."""

    data_dir: Path
    zone: str = "zone-a"
    memory_mb: int = 4096
    worker_id: str = ""
    address: str = ""
    heartbeat_s: float = 5.0
    isolation: Isolation = field(default_factory=Isolation)
    uid_base: int | None = None
    """Sandbox users are uid_base + slot (only when the agent runs as root); ``None``: :func:`default_uid_base`."""
    code_store: str | None = None
    """The code store's database URL (``CodeRef.blob_sha256``); ``None``: blobs are refused."""
    invocation_log: Path | None = None
    """Where to append the invocation audit log (``workers/audit.py``); ``None``: no audit."""
    lambda_endpoint: str = ""
    """The platform's Lambda API as functions reach it (``http://HOST:PORT``): allow-listed in their
    networks and given to them as ``AWS_ENDPOINT_URL_LAMBDA`` and ``AWS_ENDPOINT_URL_SQS`` (the frontend
    serves both APIs there), so ``boto3.client("lambda")`` and ``boto3.client("sqs")`` find it."""
    network: EgressPolicy | None = field(default_factory=EgressPolicy)
    """Each sandbox in a network namespace of its own with this egress policy (:mod:`workers.netns`);
    ``None``: sandboxes share the host's network (``--sandbox-network host``)."""


@dataclass(frozen=True)
class CreateSpec:
    """A CreateSandbox request in plain Python (validated by :meth:`Agent.create`)."""

    sandbox_id: str
    function_name: str
    code: Source | None
    handler: str = ""
    function_version: str = "$LATEST"
    layers: tuple[Source, ...] = ()
    memory_mb: int = 128
    timeout_ms: int = 3000
    environment: dict[str, str] = field(default_factory=dict)
    runtime: str = "python"
    log_level: str = ""
    #: "Text" ("" too) or "JSON"; the system log level (JSON only) and the log group's name.
    log_format: str = ""
    system_log_level: str = ""
    log_group: str = ""
    #: The size of /tmp in MB (0: the agent's default).
    tmp_mb: int = 0
    region: str = "us-east-1"
    snap_start: bool = False
    #: Made ahead of time (provisioned concurrency): its first invocation reports no Init Duration.
    provisioned: bool = False
    credentials: SandboxCredentials | None = None


class Agent:
    """The sandboxes of one worker and the rules around them."""

    def __init__(self, config: AgentConfig, registrar: Registrar | None = None) -> None:
        self.config = config
        self.uid_base = config.uid_base if config.uid_base is not None else default_uid_base(config.data_dir)
        self.registrar: Registrar = registrar or NullRegistrar()
        self.sandboxes: dict[str, Sandbox] = {}
        self._busy: set[str] = set()
        self._creating: set[str] = set()  # ids between CreateSandbox's checks and the sandbox table
        self._reserved_mb = 0
        self._free_slots: list[int] = []
        self._next_slot = 0
        self._closing = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._destroying: set[asyncio.Future[None]] = set()
        self.templates: dict[tuple[object, ...], TemplateSandbox | str] = {}  # str: why it was refused
        self._template_locks: dict[tuple[object, ...], asyncio.Lock] = {}
        self.sandbox_root = config.data_dir / "sandboxes"
        self.code = CodeCache(config.data_dir / "code")
        self.code_store = CodeStore(config.code_store) if config.code_store else None
        self.audit = InvocationLog.open(config.invocation_log) if config.invocation_log else None
        iso = config.isolation
        if iso.bwrap is not None and config.data_dir.resolve() not in iso.hide:
            iso = replace(iso, hide=(*iso.hide, config.data_dir.resolve()))
        if config.network is not None and iso.network is None:
            iso = replace(iso, network=NetworkPool(config.network), resolv_conf=config.data_dir / "resolv.conf")
        self.isolation = iso
        self.platform_environment: dict[str, str] = {}
        """Variables every sandbox gets unless its function sets them (the endpoints of the platform)."""
        if config.lambda_endpoint:
            self.use_lambda_endpoint(config.lambda_endpoint)
        self.info = WorkerInfo(
            config.worker_id or os.uname().nodename,
            config.address,
            config.zone,
            config.memory_mb,
            # New with every start: a restart under the same id must not pass for the same agent.
            incarnation=os.urandom(8).hex(),
        )

    def use_lambda_endpoint(self, url: str) -> None:
        """Let functions reach the platform's Lambda API at ``url`` (before the first sandbox starts);
        ValueError names what is wrong with it."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"--lambda-endpoint {url!r}: expected http(s)://HOST:PORT")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
        if self.isolation.network is not None:
            endpoint = EgressPolicy.parse([f"{host}:{port}"], []).endpoints[0]
            self.isolation.network.allow(endpoint)
            host = endpoint.host  # resolved once, here: the address the sandbox's forwarder listens on
        # The frontend serves Lambda and SQS on one endpoint: boto3 in a function finds both unchanged.
        for variable in PLATFORM_ENDPOINT_VARIABLES:
            self.platform_environment[variable] = f"{parts.scheme}://{host}:{port}"

    @property
    def free_memory_mb(self) -> int:
        """Memory not yet promised to a sandbox."""
        return self.config.memory_mb - self._reserved_mb

    async def start(self) -> list[str]:
        """Clean up an earlier agent's sandboxes (return their ids), register, start heartbeats."""
        self.sandbox_root.mkdir(parents=True, exist_ok=True)
        if self.isolation.network is not None:
            self.isolation.network.check()  # refuse to start rather than run sandboxes on the host's network
            resolv_conf(self.config.data_dir)
        cleaned = await asyncio.to_thread(self._clean_leftovers)
        for sandbox_id in cleaned:
            log.warning("event=stale_sandbox_cleaned sandbox=%s reason=agent_restarted", sandbox_id)
        await self.registrar.register(self.info, self.free_memory_mb, [])
        self._heartbeat = asyncio.ensure_future(self._heartbeats())
        return cleaned

    def _clean_leftovers(self) -> list[str]:
        cleaned = []
        for entry in sorted(self.sandbox_root.iterdir()):
            uid_file = entry / "uid"
            if uid_file.exists() and os.geteuid() == 0:
                kill_user_processes(int(uid_file.read_text()))
            pid_file = entry / "pgid"
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
                    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            if os.geteuid() == 0:
                unmount(entry / "tmp")
            shutil.rmtree(entry, ignore_errors=True)
            cleaned.append(entry.name)
        return cleaned

    async def _heartbeats(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await self.registrar.heartbeat(self.info, self.free_memory_mb, sorted(self.sandboxes))
            except Exception:
                log.exception("event=heartbeat_failed")

    # --- sandboxes ------------------------------------------------------------------------------------

    def _validate(self, spec: CreateSpec) -> None:
        if not _ID.match(spec.sandbox_id):
            raise InvalidRequest(f"sandbox_id {spec.sandbox_id!r} must be 1-128 of [A-Za-z0-9._:-]")
        if not _ID.match(spec.function_name):
            raise InvalidRequest(f"function_name {spec.function_name!r} must be 1-128 of [A-Za-z0-9._:-]")
        if not re.match(r"^(\$LATEST|[0-9]{1,10})$", spec.function_version):
            raise InvalidRequest(f"function_version {spec.function_version!r} must be $LATEST or a number")
        if not 128 <= spec.memory_mb <= 10240:
            raise InvalidRequest(f"memory_mb {spec.memory_mb} is outside 128..10240")
        if not 1000 <= spec.timeout_ms <= 900_000:
            raise InvalidRequest(f"timeout_ms {spec.timeout_ms} is outside 1000..900000")
        if spec.code is None:
            raise InvalidRequest("code is required")
        if spec.runtime not in ("provided", "python") and not re.match(r"^python3\.\d+$", spec.runtime):
            raise InvalidRequest(f"runtime {spec.runtime!r} is not python, python3.x or provided")
        if spec.runtime.startswith("python") and not re.match(
            r"^[A-Za-z0-9_./-]+\.[A-Za-z_][A-Za-z0-9_]*$", spec.handler
        ):
            raise InvalidRequest(f"handler {spec.handler!r} must be module.function")
        if spec.log_level.upper() not in _LOG_LEVELS:
            raise InvalidRequest(f"application_log_level {spec.log_level!r} is not one of {sorted(_LOG_LEVELS)}")
        if spec.log_format not in ("", "Text", "JSON"):
            raise InvalidRequest(f"log_format {spec.log_format!r} is not Text or JSON")
        if spec.system_log_level not in ("", *SYSTEM_LOG_LEVELS):
            raise InvalidRequest(f"system_log_level {spec.system_log_level!r} is not one of {list(SYSTEM_LOG_LEVELS)}")
        if spec.tmp_mb and not MIN_TMP_MB <= spec.tmp_mb <= MAX_TMP_MB:
            raise InvalidRequest(f"ephemeral_storage_mb {spec.tmp_mb} is outside {MIN_TMP_MB}..{MAX_TMP_MB}")
        if spec.log_group and not _LOG_GROUP.fullmatch(spec.log_group):
            raise InvalidRequest(f"log_group {spec.log_group[:100]!r} is not a log group name")
        for key in spec.environment:
            if not _ENV_KEY.match(key):
                raise InvalidRequest(f"environment variable name {key!r} is invalid")
            if key in RESERVED_ENV:
                raise InvalidRequest(f"environment variable {key} is reserved")
        if sum(len(k) + len(v) for k, v in spec.environment.items()) > 4096:
            raise InvalidRequest("environment variables exceed 4 KB")

    def _get(self, sandbox_id: str) -> Sandbox:
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None:
            raise SandboxNotFound(f"no sandbox {sandbox_id!r} on this worker")
        return sandbox

    def _take_uid(self) -> int | None:
        if os.geteuid() != 0:
            return None
        if self._free_slots:
            return self.uid_base + self._free_slots.pop()
        self._next_slot += 1
        return self.uid_base + self._next_slot

    def _give_uid(self, uid: int | None) -> None:
        if uid is not None:
            self._free_slots.append(uid - self.uid_base)

    async def create(self, spec: CreateSpec) -> tuple[Sandbox, InitResult]:
        """Create the sandbox and run its init; an init failure is in the InitResult, not raised."""
        if self._closing:
            raise ShuttingDown("the worker is shutting down")
        self._validate(spec)
        if spec.sandbox_id in self.sandboxes or spec.sandbox_id in self._creating:
            raise SandboxExists(f"sandbox {spec.sandbox_id!r} already exists")
        if spec.memory_mb > self.free_memory_mb:
            free, total = self.free_memory_mb, self.config.memory_mb
            raise CapacityExhausted(f"sandbox needs {spec.memory_mb} MB; the worker has {free} MB of {total} MB free")
        self._reserved_mb += spec.memory_mb
        self._creating.add(spec.sandbox_id)
        directory = self.sandbox_root / spec.sandbox_id
        uid: int | None = None
        placeholder: Sandbox | None = None
        try:
            try:
                assert spec.code is not None
                task_dir, opt_dir = await asyncio.to_thread(self.code.package, spec.code, list(spec.layers))
            except CodeError as exc:
                raise InvalidRequest(str(exc)) from None
            runtime = spec.runtime
            if runtime == "provided" and not any(
                d is not None and (d / "bootstrap").is_file() for d in (task_dir, opt_dir)
            ):
                raise InvalidRequest("runtime 'provided' needs an executable named bootstrap in the code or a layer")
            config = SandboxConfig(
                sandbox_id=spec.sandbox_id,
                function_name=spec.function_name,
                function_version=spec.function_version,
                memory_mb=spec.memory_mb,
                timeout_ms=spec.timeout_ms,
                task_dir=task_dir,
                opt_dir=opt_dir,
                runtime=runtime,
                handler=spec.handler,
                environment={**self.platform_environment, **spec.environment},
                log_level=spec.log_level.upper(),
                log_format=spec.log_format or "Text",
                system_log_level=spec.system_log_level,
                log_group=spec.log_group,
                tmp_mb=spec.tmp_mb,
                region=spec.region or "us-east-1",
                provisioned=spec.provisioned,
                credentials=spec.credentials,
            )
            if spec.sandbox_id in self.sandboxes:
                raise SandboxExists(f"sandbox {spec.sandbox_id!r} already exists")
            template, note = None, ""
            if spec.snap_start and runtime.startswith("python"):
                template, note = await self._template_for(config)
            directory.mkdir(parents=True, exist_ok=False)
            if template is not None:
                placeholder = ForkedSandbox(config, directory, template)
            else:
                uid = self._take_uid()
                if uid is not None:
                    (directory / "uid").write_text(str(uid))
                placeholder = Sandbox(config, directory, self.isolation, uid)
            self.sandboxes[spec.sandbox_id] = placeholder
            init = await placeholder.start()
            if note:
                init = InitResult(init.duration_ms, init.error, note + init.logs)
        except BaseException:
            self._reserved_mb -= spec.memory_mb
            if placeholder is not None:
                self.sandboxes.pop(spec.sandbox_id, None)
                await placeholder.stop()
            self._give_uid(uid)
            raise
        finally:
            self._creating.discard(spec.sandbox_id)
        return placeholder, init

    @staticmethod
    def _template_key(config: SandboxConfig) -> tuple[object, ...]:
        return (
            config.function_name,
            config.function_version,
            config.task_dir,
            config.opt_dir,
            config.memory_mb,
            config.timeout_ms,
            config.handler,
            tuple(sorted(config.environment.items())),
            config.log_level,
            config.log_format,
            config.system_log_level,
            config.log_group,
            config.tmp_mb,
            config.region,
        )

    async def _template_for(self, config: SandboxConfig) -> tuple[TemplateSandbox | None, str]:
        """The function version's snapshot template (started on first use) and log lines for the caller.

        None when forking is refused (threads alive after init) or init failed: the caller starts plainly.
        """
        key = self._template_key(config)
        async with self._template_locks.setdefault(key, asyncio.Lock()):
            existing = self.templates.get(key)
            if isinstance(existing, TemplateSandbox) and existing.alive:
                return existing, ""
            if isinstance(existing, str):
                return None, existing
            template_id = "template~" + hashlib.sha256(repr(key).encode()).hexdigest()[:16]
            directory = self.sandbox_root / template_id
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            uid = self._take_uid()
            if uid is not None:
                (directory / "uid").write_text(str(uid))
            template = TemplateSandbox(replace(config, sandbox_id=template_id), directory, self.isolation, uid)
            init = await template.start()
            ready = template.template_ready
            if init.error is None and ready is not None and ready.done() and ready.result():
                self.templates[key] = template
                log.info(
                    "event=snapshot_template_ready function=%s init_ms=%.2f", config.function_name, init.duration_ms
                )
                return template, init.logs
            await template.stop()
            self._give_uid(uid)
            if init.error is not None:
                return None, ""  # the plain start reports the same init error
            refusal = "".join(line for line in init.logs.splitlines(keepends=True) if "SNAPSHOT_SKIPPED" in line)
            self.templates[key] = refusal
            log.warning("event=snapshot_refused function=%s reason=%r", config.function_name, refusal.strip())
            return None, refusal

    async def destroy(self, sandbox_id: str) -> bool:
        """Stop the sandbox and free its memory; False when it was not there."""
        if not sandbox_id:
            raise InvalidRequest("sandbox_id is required")
        sandbox = self.sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return False
        # Finished even when the caller goes away (a cancelled RPC): a half-stopped sandbox would keep its
        # memory, its user and its mounts for good.
        task = asyncio.ensure_future(self._finish_destroy(sandbox_id, sandbox))
        self._destroying.add(task)
        task.add_done_callback(self._destroying.discard)
        await asyncio.shield(task)
        return True

    async def _finish_destroy(self, sandbox_id: str, sandbox: Sandbox) -> None:
        try:
            await sandbox.stop()
        finally:
            self._reserved_mb -= sandbox.config.memory_mb
            if sandbox.owns_uid:  # a forked sandbox runs as its template's user, which the template still holds
                self._give_uid(sandbox.uid)
        log.info("event=sandbox_destroyed sandbox=%s", sandbox_id)

    async def reset(self, sandbox_id: str) -> tuple[Sandbox, InitResult]:
        """Restart the sandbox from scratch (a running invocation ends as a crash)."""
        sandbox = self._get(sandbox_id)
        return sandbox, await sandbox.reset()

    async def invoke(self, sandbox_id: str, token: tuple[int, int] | None, invocation: Invocation) -> SandboxResult:
        """Run one invocation under a lease token."""
        if self._closing:
            raise ShuttingDown("the worker is shutting down")
        if not invocation.request_id:
            raise InvalidRequest("request_id is required")
        if not _ID.match(invocation.request_id):
            raise InvalidRequest("request_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        _check_header_values(invocation)
        if token is None:
            raise InvalidRequest("a lease token is required")
        if len(invocation.payload) > MAX_RESPONSE_BYTES:
            raise InvalidRequest(f"payload of {len(invocation.payload)} bytes exceeds {MAX_RESPONSE_BYTES} bytes")
        sandbox = self._get(sandbox_id)
        if sandbox.newest_token is not None and token < sandbox.newest_token:
            raise StaleLease(f"lease {token} is older than {sandbox.newest_token}, the newest seen for {sandbox_id!r}")
        if sandbox_id in self._busy:
            raise SandboxBusy(f"sandbox {sandbox_id!r} is running another invocation")
        sandbox.newest_token = token
        now_ms = int(time.time() * 1000)
        deadline = now_ms + sandbox.config.timeout_ms
        if invocation.deadline_ms:
            deadline = min(deadline, invocation.deadline_ms)
        credentials = sandbox.config.credentials
        expiring = credentials is not None and 0 < credentials.expiration_ms < deadline + CREDENTIALS_MARGIN_MS
        if expiring:
            # The function could run past its credentials: retire the sandbox (the caller releases it as
            # crashed and gets a new one, created with fresh credentials), so none outlives its credentials.
            raise CredentialsExpiring(f"the credentials of sandbox {sandbox_id!r} expire before the deadline")
        arn = invocation.invoked_function_arn or sandbox.config.arn
        invocation = Invocation(
            invocation.request_id,
            invocation.payload,
            deadline,
            arn,
            invocation.trace_id,
            invocation.client_context,
            invocation.cognito_identity,
        )
        self._busy.add(sandbox_id)
        if self.audit is not None:
            return await self._audited(sandbox_id, sandbox, token, invocation, self.audit)
        try:
            return await sandbox.invoke(invocation)
        finally:
            self._busy.discard(sandbox_id)

    async def _audited(
        self, sandbox_id: str, sandbox: Sandbox, token: tuple[int, int], invocation: Invocation, audit: InvocationLog
    ) -> SandboxResult:
        """:meth:`invoke`'s run with its start and end in the audit log (the caller marked the sandbox busy)."""
        try:
            start_ms = audit.started(sandbox_id, token, invocation.request_id)
        except BaseException:
            self._busy.discard(sandbox_id)
            raise
        outcome = "error:CancelledError"
        try:
            result = await sandbox.invoke(invocation)
            outcome = result.outcome.label
            return result
        except BaseException as exc:
            outcome = f"error:{type(exc).__name__}"
            raise
        finally:
            audit.ended(sandbox_id, token, invocation.request_id, start_ms, outcome)
            self._busy.discard(sandbox_id)

    def list(self) -> list[Sandbox]:
        """The sandboxes, by id."""
        return [self.sandboxes[k] for k in sorted(self.sandboxes)]

    async def close(self) -> None:
        """Stop heartbeats, destroy every sandbox, leave the cluster."""
        self._closing = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await asyncio.gather(*(self.destroy(k) for k in list(self.sandboxes)), return_exceptions=True)
        await asyncio.gather(*list(self._destroying), return_exceptions=True)  # those whose callers went away
        templates = [t for t in self.templates.values() if isinstance(t, TemplateSandbox)]
        await asyncio.gather(*(t.stop() for t in templates), return_exceptions=True)
        self.templates.clear()
        if self.isolation.network is not None:
            await self.isolation.network.close()
        with contextlib.suppress(Exception):
            await self.registrar.close()
        if self.code_store is not None:
            await asyncio.to_thread(self.code_store.close)
        if self.audit is not None:
            self.audit.close()
