"""``leasehold dev``: the whole platform on one machine, in one process tree (DESIGN §1, the embedded default).

One Python process runs an assignment server that leads every partition through in-process coordination
(no ZooKeeper), one worker agent (its sandboxes are child processes), and the frontend (the Lambda HTTP
API and the gRPC API). The frontend calls the server and the worker through in-process stubs (their
servicers, without the gRPC hop); both also serve gRPC for the CLI and for frontends elsewhere.
State lives in a SQLite database in the data directory: the journal, the function
registry, code blobs and the event queue. Starting again on the same directory recovers all of it; the
sandboxes of the previous run died with it, and the assignment server drops them when it reconciles with
the worker (the next invoke of each function is cold).

Every HTTP request must be signed (SigV4), as on AWS: the first start creates an access key in the data
directory's database (the same key on every later start), prints it with the ready line and writes an
AWS CLI-style profile ``leasehold`` (``credentials`` and ``config``, with the region and the endpoint) into
the data directory, so three environment variables make boto3 and the AWS CLI work. ``--auth none`` runs
open instead, LocalStack-like, and says so in the ready line.

Example::

    leasehold dev --data-dir .leasehold --http-port 9000 --grpc-port 9001 --sample
    # ready http=http://127.0.0.1:9000 grpc=127.0.0.1:9001 data=.leasehold auth=sigv4 sandbox-network=isolated \
    #       grpc-tls=/abs/path/.leasehold/tls/client
    # export AWS_SHARED_CREDENTIALS_FILE=... AWS_CONFIG_FILE=... AWS_PROFILE=leasehold

Every gRPC port it opens (the frontend's, the assignment server's, the worker's) uses mTLS with a cluster
CA of its own, made on the first start in ``DATA/tls`` (:mod:`workers.certs`); a gRPC client takes the
identity ``DATA/tls/client`` (printed as ``grpc-tls=`` in the ready line). Its in-process calls need none.

Each sandbox has a network namespace of its own (:mod:`workers.netns`): it reaches the public internet
and this platform's Lambda HTTP endpoint (allow-listed here, and named by ``AWS_ENDPOINT_URL_LAMBDA``),
and nothing else of the host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import signal
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assignment.client import AssignmentClient
from assignment.coordination.local import LocalCoordinator
from assignment.frontend.auth.keys import AccessKey, KeyStore
from assignment.frontend.auth.profile import Profile, write_profile
from assignment.frontend.backend import LeaseBackend
from assignment.frontend.inproc import LocalStub
from assignment.frontend.server import Frontend, FrontendConfig
from assignment.host import HostConfig
from assignment.leader import LeaderConfig
from assignment.members import WorkerInfo
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT
from assignment.server import AssignmentServer, ServerConfig
from assignment.service import AssignmentService
from assignment.service import handlers as assignment_handlers
from assignment.worker_client import GrpcWorkerClient
from workers.agent import Agent, AgentConfig
from workers.certs import ROLES
from workers.certs import init as init_certs
from workers.cli import add_network_flags, network_policy
from workers.flags import Flags
from workers.netns import EgressPolicy
from workers.registration import NullRegistrar
from workers.service import WorkerService
from workers.service import serve as serve_worker
from workers.service import stop as stop_worker
from workers.tls import Tls

__all__ = ["DevConfig", "DevPlatform", "main", "register", "sample_zip"]

log = logging.getLogger("leasehold.dev")

#: The description of the access key ``leasehold dev`` creates, and finds again on a restart.
DEV_KEY_DESCRIPTION = "leasehold dev"

#: The sample function `make run` deploys.
SAMPLE_NAME = "hello"
SAMPLE_SOURCE = '''"""A sample Lambda function: greets the caller and says where it runs."""

import os
import time

STARTED = time.time()  # init runs once per sandbox; warm invocations reuse it


def handler(event, context):
    name = (event or {}).get("name", "world") if isinstance(event, dict) else "world"
    print(f"greeting {name}")
    return {
        "message": f"Hello, {name}!",
        "function": context.function_name,
        "version": context.function_version,
        "request_id": context.aws_request_id,
        "sandbox_age_s": round(time.time() - STARTED, 3),
        "pid": os.getpid(),
    }
'''


def sample_zip() -> bytes:
    """The sample function's code package: ``app.py`` with ``app.handler``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", SAMPLE_SOURCE)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class DevConfig:
    """What ``leasehold dev`` is told; ports 0 pick free ones."""

    data_dir: Path = Path(".leasehold")
    host: str = "127.0.0.1"
    http_port: int = 9000
    grpc_port: int = 9001
    #: The assignment server's and the worker's gRPC ports (0: any free port).
    assignment_port: int = 0
    worker_port: int = 0
    worker_memory_mb: int = 4096
    partitions: int = 16
    idle_keepalive_s: float = 600.0
    account_limit: int = DEFAULT_ACCOUNT_LIMIT
    #: Sandboxes' egress (``None``: the host's network); dev adds its own HTTP endpoint to the allow-list.
    network: EgressPolicy | None = field(default_factory=EgressPolicy)
    #: ``sigv4``: signed requests only, with the data dir's key; ``none``: open.
    auth: Literal["sigv4", "none"] = "sigv4"
    #: Extra settings of the frontend (e.g. async retry intervals in tests).
    frontend: dict[str, Any] = field(default_factory=dict)


class DevPlatform:
    """The embedded platform: assignment server, worker agent and frontend in this process."""

    def __init__(self, config: DevConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.journal_url = f"sqlite:///{self.data_dir / 'leasehold.db'}"
        self.coordinator = LocalCoordinator()
        self._agent: Agent | None = None
        self._worker_server: Any = None
        self.server: AssignmentServer | None = None
        self.frontend: Frontend | None = None
        self.http_endpoint = ""
        self.grpc_endpoint = ""
        self.worker_address = ""
        #: The cluster CA of this data dir (``DATA/tls``) and the identities its ports and calls use.
        self.tls_dir = self.data_dir / "tls"
        self._tls: dict[str, Tls] = {}
        #: The admin key of this data dir (None with ``auth="none"``) and the profile written for it.
        self.key: AccessKey | None = None
        self.profile: Profile | None = None

    async def start(self) -> None:
        """Start the worker, then the assignment server, then the frontend; stop what started on failure."""
        cfg = self.config
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._tls = await asyncio.to_thread(_identities, self.tls_dir)
        try:
            await self._start_worker()
            self.server = AssignmentServer(
                ServerConfig(
                    server_id="dev",
                    listen=f"{cfg.host}:{cfg.assignment_port}",
                    journal=self.journal_url,
                    zone="dev",
                    grace_s=2.0,
                    leader=LeaderConfig(
                        account_limit=cfg.account_limit, idle_keepalive_ms=int(cfg.idle_keepalive_s * 1000)
                    ),
                    host=HostConfig(partitions=cfg.partitions, settle_s=0.0, grace_s=2.0),
                    tls=self._tls["server"],
                ),
                coordinator=self.coordinator,
                workers=GrpcWorkerClient(tls=self._tls["server"]),
            )
            await self.server.start()
            frontend_config = FrontendConfig(
                http=f"{cfg.host}:{cfg.http_port}",
                grpc=f"{cfg.host}:{cfg.grpc_port}",
                journal=self.journal_url,
                assignment=[self.server.address],
                tls=self._tls["frontend"],
                **{"auth": cfg.auth, **cfg.frontend},
            )
            self.frontend = Frontend(frontend_config, coordinator=self.coordinator, backend=self._backend())
            await self.frontend.start()
            self.http_endpoint = f"http://{cfg.host}:{self.frontend.http_port}"
            self.grpc_endpoint = f"{cfg.host}:{self.frontend.grpc_port}"
            if frontend_config.auth == "sigv4":
                assert self.frontend.keys is not None
                self.key = await asyncio.to_thread(_dev_key, self.frontend.keys)
                self.profile = write_profile(
                    self.data_dir, self.key, region=frontend_config.region, endpoint=self.http_endpoint
                )
        except BaseException:
            await self.stop()
            raise
        assert self._agent is not None
        # Functions may call the platform's Lambda API (with their own credentials), nothing else of it.
        host = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
        self._agent.use_lambda_endpoint(f"http://{host}:{self.frontend.http_port}")

    def _backend(self) -> LeaseBackend:
        """The frontend's backend: the server and the worker are in this process, so the frontend calls
        their servicers directly (in-process stubs: same validation, errors and commit rule, no gRPC hop).
        Both still serve gRPC for everyone else (CLI, other frontends)."""
        assert self.server is not None
        assert self.server.host is not None
        assert self._agent is not None
        server = LocalStub(assignment_handlers(AssignmentService(self.server.host)))
        worker = WorkerService(self._agent)
        workers = {self.worker_address: LocalStub({"Invoke": worker.Invoke, "ListSandboxes": worker.ListSandboxes})}
        client = AssignmentClient([self.server.address], local={self.server.address: server}, tls=self._tls["frontend"])
        return LeaseBackend(client, region=self.config.frontend.get("region", "us-east-1"), local_workers=workers)

    async def _start_worker(self) -> None:
        cfg = self.config
        agent = Agent(
            AgentConfig(
                data_dir=self.data_dir / "worker",
                zone="dev",
                memory_mb=cfg.worker_memory_mb,
                worker_id="dev-worker",
                code_store=self.journal_url,
                network=cfg.network,
            ),
            NullRegistrar(),
        )
        server, port = await serve_worker(agent, f"{cfg.host}:{cfg.worker_port}", self._tls["worker"])
        self._agent, self._worker_server = agent, server
        self.worker_address = f"{cfg.host}:{port}"
        agent.info = type(agent.info)("dev-worker", self.worker_address, "dev", cfg.worker_memory_mb)
        await agent.start()
        await self.coordinator.register_worker(
            WorkerInfo("dev-worker", self.worker_address, "dev", cfg.worker_memory_mb)
        )

    async def stop(self) -> None:
        """Stop the frontend (in-flight invokes finish), the server (journal closed), then the worker."""
        if self.frontend is not None:
            with contextlib.suppress(Exception):
                await self.frontend.stop()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.stop()
            with contextlib.suppress(Exception):
                await self.server.workers.close()  # type: ignore[attr-defined]
        if self._agent is not None and self._worker_server is not None:
            await stop_worker(self._worker_server, self._agent, grace_s=2.0)


def _dev_key(keys: KeyStore) -> AccessKey:
    """The data dir's own key: created on the first start, found again on every later one."""
    return keys.first_with_description(DEV_KEY_DESCRIPTION) or keys.create(DEV_KEY_DESCRIPTION)


def _deploy_sample(endpoint: str, key: AccessKey | None) -> dict[str, Any]:
    """Create the sample function through the Lambda API (unless it exists) and invoke it once, signed
    with the dev key."""
    from assignment.commands.api import lambda_client  # noqa: PLC0415 - boto3 only for --sample

    credentials = (key.access_key_id, key.secret) if key is not None else ("anonymous", "anonymous")
    client = lambda_client(endpoint, retries=0, credentials=credentials)
    try:
        try:
            client.get_function(FunctionName=SAMPLE_NAME)
        except client.exceptions.ResourceNotFoundException:
            client.create_function(
                FunctionName=SAMPLE_NAME,
                Runtime="python3.11",
                Handler="app.handler",
                Role="arn:aws:iam::000000000000:role/leasehold",
                Code={"ZipFile": sample_zip()},
                MemorySize=128,
                Timeout=3,
            )
        answer = client.invoke(FunctionName=SAMPLE_NAME, Payload=json.dumps({"name": "Leasehold"}).encode())
        result: dict[str, Any] = json.loads(answer["Payload"].read())
        return result
    finally:
        client.close()  # its pooled connection, now rather than at garbage collection


def _how_to_invoke(endpoint: str, key: AccessKey | None) -> str:
    curl = "curl -s"
    if key is not None:
        curl += f" --aws-sigv4 aws:amz:us-east-1:lambda --user '{key.access_key_id}:{key.secret}'"
    first = "After the export line above (it selects the profile 'leasehold'), invoke" if key else "Invoke"
    return f"""
{first} the sample function '{SAMPLE_NAME}':
  with the CLI:   .venv/bin/leasehold invoke {SAMPLE_NAME} --payload '{{"name": "you"}}' --log
  with boto3:     boto3.client("lambda").invoke(FunctionName="{SAMPLE_NAME}")
  with the AWS CLI: aws lambda invoke --function-name {SAMPLE_NAME} out.json
  with curl:      {curl} -X POST {endpoint}/2015-03-31/functions/{SAMPLE_NAME}/invocations -d '{{"name": "you"}}'
Status: .venv/bin/leasehold status    Stop: Ctrl-C
"""


def _identities(directory: Path) -> dict[str, Tls]:
    """The CA of ``directory`` (made on the first start) and its identities by role."""
    init_certs(directory, exist_ok=True)
    return {role: Tls.load(directory / role) for role in ROLES}


def ready_lines(platform: DevPlatform, config: DevConfig) -> list[str]:
    """What ``leasehold dev`` prints once it serves: the ready line, then the key and the profile."""
    auth = "sigv4" if platform.key is not None else "none"
    network = "host" if config.network is None else "isolated"
    lines = [
        f"ready http={platform.http_endpoint} grpc={platform.grpc_endpoint} data={config.data_dir} auth={auth} "
        f"sandbox-network={network} grpc-tls={platform.tls_dir / 'client'}"
    ]
    if platform.key is not None and platform.profile is not None:
        lines.append(
            f"access key: aws_access_key_id={platform.key.access_key_id} "
            f"aws_secret_access_key={platform.key.secret} (profile '{platform.profile.name}' in "
            f"{platform.profile.credentials_file}; endpoint and region in {platform.profile.config_file})"
        )
        lines.append(platform.profile.export_line())
    else:
        lines.append("auth=none: every HTTP request is answered unsigned; use only on a machine you trust")
    return lines


async def _run(config: DevConfig, sample: bool) -> int:
    platform = DevPlatform(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await platform.start()
    try:
        print("\n".join(ready_lines(platform, config)), flush=True)
        if sample:
            result = await asyncio.to_thread(_deploy_sample, platform.http_endpoint, platform.key)
            print(f"sample {SAMPLE_NAME} invoked: {json.dumps(result)}", flush=True)
            print(_how_to_invoke(platform.http_endpoint, platform.key), flush=True)
        await stopping.wait()
    finally:
        print("stopping", flush=True)
        await platform.stop()
    print("stopped", flush=True)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dev`` subcommand to ``subparsers``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev", help="run the whole platform on this machine (embedded mode)", description=__doc__.splitlines()[0]
    )
    flag = Flags("dev", parser).add
    flag("--data-dir", type=Path, default=".leasehold", help="state folder")
    flag("--host", default="127.0.0.1", help="address to bind (default loopback)")
    flag("--http-port", type=int, default=9000, help="Lambda HTTP API")
    flag("--grpc-port", type=int, default=9001, help="gRPC API")
    flag("--memory", type=int, default=4096, help="worker memory in MB")
    flag("--idle-keepalive", type=float, default=600.0, metavar="S")
    flag("--auth", choices=("sigv4", "none"), default="sigv4", help="sigv4: signed requests only; none: open")
    parser.add_argument("--sample", action="store_true", help="deploy and invoke the sample function 'hello'")
    flag("--log-level", default="WARNING")
    add_network_flags(flag)
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    """Run until Ctrl-C / SIGTERM."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name, value in (("--http-port", args.http_port), ("--grpc-port", args.grpc_port)):
        if not 0 <= value <= 65535:
            print(f"leasehold dev: {name} must be in 0..65535, got {value}")
            return 2
    if args.memory < 128:
        print(f"leasehold dev: --memory must be at least 128 MB, got {args.memory}")
        return 2
    try:
        network = network_policy(args)
    except ValueError as exc:
        print(f"leasehold dev: {exc}")
        return 2
    config = DevConfig(
        data_dir=args.data_dir,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        worker_memory_mb=args.memory,
        idle_keepalive_s=args.idle_keepalive,
        network=network,
        auth=args.auth,
    )
    return asyncio.run(_run(config, args.sample))
