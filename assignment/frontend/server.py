"""The frontend process: the Lambda HTTP API (aiohttp) and the gRPC API in one event loop.

Start opens the journal's database (the registry's tables and the event queue live there), connects the
routing client to the assignment servers, binds HTTP and gRPC (port 0 is allowed: see :attr:`http_port`
and :attr:`grpc_port`), reports SERVING on the health service, re-asserts reserved concurrency and starts
the provisioned-concurrency top-up loop and the event poller. With ``auth="sigv4"`` (the default) every
HTTP request must be signed by an access key of the database or a function's session (which the
sandboxes started through this frontend carry in their environment); a bootstrap key (``bootstrap_key``,
``ACCESS_KEY_ID:SECRET``) is added first if absent, so a new cluster has a first admin. Stop reports
NOT_SERVING, stops taking new requests, lets in-flight invocations finish (up to ``grace_s``), then closes everything.

Example::

    frontend = Frontend(FrontendConfig(http="127.0.0.1:0", grpc="127.0.0.1:0",
                                       journal="sqlite:///data/leasehold.db", assignment=["127.0.0.1:7100"]))
    await frontend.start()
    ...
    await frontend.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Literal

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from assignment.client import AssignmentClient
from assignment.coordination import connect
from assignment.coordination.base import Coordinator
from assignment.frontend.api import LambdaHttpApi
from assignment.frontend.api.auth import Authenticator
from assignment.frontend.api.event_sources import EventSourceStores
from assignment.frontend.auth.keys import KeyStore, parse_key
from assignment.frontend.auth.resolver import DEFAULT_KEY_TTL_S, FunctionStates, KeyCache, Resolver
from assignment.frontend.auth.sessions import SessionIssuer, cluster_secret
from assignment.frontend.backend import Backend, LeaseBackend
from assignment.frontend.event_sources.mappings import MappingStore
from assignment.frontend.event_sources.poller import DEFAULT_LEASE_S, EventSourcePollers, PollerConfig
from assignment.frontend.event_sources.status import SourcesOverview
from assignment.frontend.events import DEAD_LETTER_RETENTION_S, EventPoller, EventQueue
from assignment.frontend.grpc_api import SERVICE_NAME, FrontendService, add_to_server
from assignment.frontend.invoker import Invoker
from assignment.frontend.logbuffer import LogBuffer
from assignment.frontend.provisioning import Provisioner
from assignment.frontend.queue_targets import QueueTargets
from assignment.frontend.queues import QueueStore
from assignment.frontend.queues.operations import SqsOperations
from assignment.frontend.queues.retention import DEFAULT_SWEEP_INTERVAL_S, RetentionSweeper
from assignment.frontend.queues.waiting import QueueWaiters
from assignment.frontend.registry import Registry
from assignment.frontend.schedules.runner import DEFAULT_LEASE_S as SCHEDULER_LEASE_S
from assignment.frontend.schedules.runner import ScheduleRunner
from assignment.frontend.schedules.store import ScheduleStore
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT
from journal.store import Journal
from workers.tls import RoleCheck, Tls, add_port

__all__ = ["Frontend", "FrontendConfig"]

log = logging.getLogger("leasehold.frontend")


@dataclass(frozen=True, slots=True)
class FrontendConfig:
    """Everything a frontend is told (flags, or ``LEASEHOLD_*`` environment variables)."""

    http: str = "127.0.0.1:9000"
    grpc: str = "127.0.0.1:9001"
    journal: str = "sqlite:///leasehold.db"
    #: Assignment server addresses (seeds of the routing client); empty: from ZooKeeper membership.
    assignment: list[str] = field(default_factory=list)
    #: ZooKeeper ``host:port,...[/chroot]``: worker and server membership (status, seeds).
    zk: str | None = None
    region: str = "us-east-1"
    account_id: str = "000000000000"
    account_limit: int = DEFAULT_ACCOUNT_LIMIT
    #: How often provisioned concurrency is topped up.
    provision_interval_s: float = 30.0
    #: How long a resolved function version may be served from this frontend's cache.
    cache_ttl_s: float = 1.0
    #: How long stop waits for in-flight invocations.
    grace_s: float = 10.0
    #: Run the async event poller in this frontend.
    event_poller: bool = True
    event_retry_intervals_s: tuple[float, ...] = (60.0, 120.0)
    event_concurrency: int = 8
    event_poll_interval_s: float = 1.0
    #: How long ``leasehold dlq list`` can show a dead letter before it is purged.
    dead_letter_retention_s: float = DEAD_LETTER_RETENTION_S
    #: Recent invocation logs kept per function for ``leasehold logs``.
    logs_per_function: int = 200
    #: ``sigv4``: every HTTP request signed by a known key; ``none``: open (throwaway use only).
    auth: Literal["sigv4", "none"] = "sigv4"
    #: ``ACCESS_KEY_ID:SECRET`` added to the database at start unless there (kept out of logs).
    bootstrap_key: str | None = field(default=None, repr=False)
    #: How long a key (or its absence) is trusted from the cache: a deleted key is refused after this.
    key_cache_ttl_s: float = DEFAULT_KEY_TTL_S
    #: This frontend's identity for mTLS: its gRPC port (clients need a ``client`` certificate) and its calls
    #: to servers and workers. ``None``: plaintext (``--insecure``).
    tls: Tls | None = None
    #: How often expired queue messages are deleted (a receive never returns them anyway).
    queue_sweep_interval_s: float = DEFAULT_SWEEP_INTERVAL_S
    #: Run the event source mappings' pollers in this frontend.
    event_source_pollers: bool = True
    #: How long a mapping's poller lease lasts unrenewed (a dead frontend's mappings move after this).
    mapping_lease_s: float = DEFAULT_LEASE_S
    #: Run a scheduler in this frontend (it fires schedules while it holds the scheduler's lease).
    scheduler: bool = True
    #: How long the scheduler's lease lasts unrenewed (a dead frontend's firings move after this).
    scheduler_lease_s: float = SCHEDULER_LEASE_S


#: Longest HTTP request line (method, path and query) the frontend reads. aiohttp's default (8,190) is
#: shorter than the Lambda model allows (a tagged resource's ARN may be 10,000 characters, three times
#: that percent-encoded), and aiohttp refuses a longer line with a bare 400 before any route can answer
#: with the error that names the member.
MAX_REQUEST_LINE_BYTES = 32 * 1024
#: Who may call the frontend's gRPC API (mTLS roles): users, with a ``client`` certificate.
POLICY = {f"/{SERVICE_NAME}/Invoke": frozenset({"client"})}


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be HOST:PORT, not {address!r}")
    return host.strip("[]"), int(port)


class Frontend:
    """One frontend; use from one event loop."""

    def __init__(
        self, config: FrontendConfig, *, coordinator: Coordinator | None = None, backend: Backend | None = None
    ) -> None:
        self.config = config
        self._own_coordinator = coordinator is None and bool(config.zk)
        self.coordinator = coordinator if coordinator is not None else (connect(config.zk) if config.zk else None)
        self._backend = backend
        self.backend: Backend | None = None
        self.journal: Journal | None = None
        self.registry: Registry | None = None
        self.events: EventQueue | None = None
        self.poller: EventPoller | None = None
        self.provisioner: Provisioner | None = None
        self.invoker: Invoker | None = None
        self.http_api: LambdaHttpApi | None = None
        self.keys: KeyStore | None = None
        self.queues: QueueStore | None = None
        self.mappings: MappingStore | None = None
        self.pollers: EventSourcePollers | None = None
        self.sweeper: RetentionSweeper | None = None
        self.schedules: ScheduleStore | None = None
        self.scheduler: ScheduleRunner | None = None
        self.health = health.aio.HealthServicer()
        self._runner: web.AppRunner | None = None
        self._grpc: grpc.aio.Server | None = None
        self.http_port = 0
        self.grpc_port = 0

    async def _seeds(self) -> list[str]:
        if self.config.assignment:
            return list(self.config.assignment)
        if self.coordinator is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10.0
            while loop.time() < deadline:
                servers = [info.address for info in self.coordinator.servers().values()]
                if servers:
                    return servers
                await asyncio.sleep(0.1)
        return ["127.0.0.1:7100"]

    async def start(self) -> None:
        """Open the database, bind HTTP and gRPC, start the background loops, report SERVING."""
        cfg = self.config
        try:
            await self._start(cfg)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, cfg: FrontendConfig) -> None:
        self.journal = await asyncio.to_thread(Journal.open, cfg.journal)
        self.registry = Registry(
            self.journal, region=cfg.region, account=cfg.account_id, account_limit=cfg.account_limit
        )
        if self._own_coordinator and self.coordinator is not None:
            await self.coordinator.start(None, lambda: None)
        if self._backend is None:
            self._backend = LeaseBackend(AssignmentClient(await self._seeds(), tls=cfg.tls), region=cfg.region)
        self.backend = self._backend
        logs = LogBuffer(per_function=cfg.logs_per_function)
        self.invoker = Invoker(self.registry, self.backend, logs, cache_ttl_s=cfg.cache_ttl_s)
        # One queue store for the SQS API, the mappings, the event queue's dead-letter queues and destinations.
        self.queues = QueueStore(self.journal)
        self.events = EventQueue(self.journal, queues=self.queues)
        self.provisioner = Provisioner(self.registry, self.backend, interval_s=cfg.provision_interval_s)
        self.keys = KeyStore(self.journal)
        auth = await self._authenticator(cfg, self.keys)
        self.mappings = MappingStore(self.journal)
        self.schedules = ScheduleStore(self.journal, events=self.events.store, queues=self.queues)
        if cfg.scheduler:
            self.scheduler = ScheduleRunner(
                self.schedules, self.events, self.invoker.resolve, owner=f"frontend-{uuid.uuid4()}",
                region=cfg.region, account_id=cfg.account_id, lease_s=cfg.scheduler_lease_s,
            )  # fmt: skip
        waiters = QueueWaiters()  # one per frontend: the API's sends wake the API's and the pollers' receives
        sqs = SqsOperations(self.queues, account_id=cfg.account_id, region=cfg.region, waiters=waiters)
        self.http_api = LambdaHttpApi(
            self.registry,
            self.invoker,
            self.provisioner,
            events=self.events,
            coordinator=self.coordinator,
            account_limit=cfg.account_limit,
            auth=auth,
            queues=sqs,
            sources=SourcesOverview(self.queues, self.mappings, account_id=cfg.account_id, region=cfg.region),
            event_sources=EventSourceStores(self.mappings, self.queues),
            queue_targets=QueueTargets(self.queues, account_id=cfg.account_id, region=cfg.region),
            schedules=self.schedules,
            schedule_changed=self.scheduler.wake if self.scheduler is not None else lambda: None,
        )
        self._runner = web.AppRunner(
            self.http_api.app(), access_log=None, handle_signals=False, max_line_size=MAX_REQUEST_LINE_BYTES
        )
        await self._runner.setup()
        host, port = _split(cfg.http)
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else port

        self._grpc = grpc.aio.server(
            options=[("grpc.so_reuseport", 0)], interceptors=[RoleCheck(POLICY)] if cfg.tls else None
        )
        self.grpc_port = add_port(self._grpc, cfg.grpc, cfg.tls)
        add_to_server(FrontendService(self.invoker, events=self.events), self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        await self._grpc.start()

        await self.provisioner.start()
        self.sweeper = RetentionSweeper(self.queues, interval_s=cfg.queue_sweep_interval_s)
        await self.sweeper.start()
        if cfg.event_source_pollers:
            self.pollers = EventSourcePollers(
                self.mappings, self.queues, waiters, self.invoker, region=cfg.region, account_id=cfg.account_id,
                config=PollerConfig(lease_s=cfg.mapping_lease_s), reserved_of=self.registry.all_reserved,
            )  # fmt: skip
            await self.pollers.start()
        if cfg.event_poller:
            self.poller = EventPoller(
                self.events,
                self.invoker,
                self.invoker.event_config,
                dead_letter_of=self.invoker.dead_letter_target,
                retry_intervals_s=cfg.event_retry_intervals_s,
                concurrency=cfg.event_concurrency,
                poll_interval_s=cfg.event_poll_interval_s,
                dead_letter_retention_s=cfg.dead_letter_retention_s,
                region=cfg.region,
                account_id=cfg.account_id,
            )
            await self.poller.start()
        if self.scheduler is not None:
            await self.scheduler.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "event=frontend_started http=%s:%d grpc=%s:%d journal=%s zk=%s region=%s account=%s auth=%s",
            host,
            self.http_port,
            cfg.grpc.rpartition(":")[0],
            self.grpc_port,
            cfg.journal,
            cfg.zk,
            cfg.region,
            cfg.account_id,
            cfg.auth,
        )

    async def _authenticator(self, cfg: FrontendConfig, keys: KeyStore) -> Authenticator | None:
        """The SigV4 middleware (None with ``auth="none"``), after adding the bootstrap key if absent."""
        if cfg.auth == "none":
            log.warning("event=auth_disabled why=--auth_none every HTTP request is answered unsigned")
            return None
        if cfg.bootstrap_key:
            key = parse_key(cfg.bootstrap_key, "bootstrap")
            added = await asyncio.to_thread(keys.ensure, key)
            log.info("event=bootstrap_key access_key_id=%s added=%s", key.access_key_id, added)
        cache = KeyCache(keys, ttl_s=cfg.key_cache_ttl_s)
        # Function sessions: the sandboxes this frontend starts get credentials its peers can check too.
        issuer = SessionIssuer(await asyncio.to_thread(cluster_secret, keys.journal))
        if isinstance(self.backend, LeaseBackend):
            self.backend.issuer = issuer
        states = FunctionStates(keys.journal, ttl_s=cfg.key_cache_ttl_s)
        resolver = Resolver(cache, account=cfg.account_id, sessions=issuer, functions=states)
        return Authenticator(resolver, region=cfg.region)

    async def stop(self) -> None:
        """Stop taking requests, finish in-flight invocations (up to ``grace_s``), close everything."""
        grace = self.config.grace_s
        with contextlib.suppress(Exception):
            for name in ("", SERVICE_NAME):
                await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                await self.scheduler.stop()
            self.scheduler = None
        if self.poller is not None:
            with contextlib.suppress(Exception):
                await self.poller.stop()
            self.poller = None
        if self.pollers is not None:
            with contextlib.suppress(Exception):
                await self.pollers.stop(grace)
            self.pollers = None
        if self.provisioner is not None:
            await self.provisioner.stop()
        if self.sweeper is not None:
            await self.sweeper.stop()
            self.sweeper = None
        stops: list[asyncio.Future[object] | asyncio.Task[object]] = []
        if self._grpc is not None:
            stops.append(asyncio.ensure_future(self._grpc.stop(grace)))
        if self._runner is not None:
            runner = self._runner
            stops.append(asyncio.ensure_future(self._stop_http(runner, grace)))
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)
        self._grpc = None
        self._runner = None
        if self.backend is not None:
            with contextlib.suppress(Exception):
                await self.backend.close()
            self.backend = None
            self._backend = None
        if self._own_coordinator and self.coordinator is not None:
            with contextlib.suppress(Exception):
                await self.coordinator.stop()
        if self.journal is not None:
            journal, self.journal = self.journal, None
            await asyncio.to_thread(journal.close)
        log.info("event=frontend_stopped")

    async def _stop_http(self, runner: web.AppRunner, grace: float) -> None:
        # Close the listening sockets first, then wait for in-flight invocations, then drop connections.
        for site in list(runner.sites):
            await site.stop()
        if self.http_api is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.http_api.wait_idle(), grace)
        await runner.cleanup()
