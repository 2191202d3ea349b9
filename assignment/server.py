"""An assignment server process: gRPC (Assignment + health + reflection), coordination, partition leaders.

Lifecycle: :meth:`AssignmentServer.start` opens the journal, joins coordination, binds the port and
reports SERVING; :meth:`AssignmentServer.stop` (SIGTERM) reports NOT_SERVING, hands every partition over
(each leader finishes its in-flight calls, then resigns), stops gRPC with a grace period, and closes the
session and the journal.

Example::

    server = AssignmentServer(ServerConfig(server_id="s1", listen="127.0.0.1:0", journal="sqlite:///j.db"))
    await server.start()
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from assignment.coordination import Coordinator, connect
from assignment.host import HostConfig, PartitionHost
from assignment.leader import LeaderConfig
from assignment.members import ServerInfo
from assignment.service import SERVICE_NAME, AssignmentService, add_to_server
from assignment.worker_client import AcceptingWorkers, GrpcWorkerClient, WorkerClient
from journal.store import Journal
from workers.tls import RoleCheck, Tls, add_port

__all__ = ["WORKER_CLIENTS", "AssignmentServer", "ServerConfig", "run"]

#: The choices of ``ServerConfig.workers``: real worker agents over gRPC, or a double that accepts everything.
WORKER_CLIENTS = ("grpc", "accept")

log = logging.getLogger("leasehold.server")

#: Who may call an assignment server (mTLS roles): its whole API serves frontends.
POLICY = {
    f"/{SERVICE_NAME}/{method}": frozenset({"frontend"})
    for method in ("Acquire", "Release", "Routing", "SetConcurrency", "EnsureWarm")
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a server process is told (flags, or ``LEASEHOLD_*`` environment variables)."""

    server_id: str
    listen: str = "127.0.0.1:7100"
    journal: str = "sqlite:///leasehold-journal.db"
    #: ZooKeeper ``host:port,...[/chroot]``; ``None`` or ``local``: in-process coordination (embedded mode).
    zk: str | None = None
    zone: str = ""
    #: The address clients should use; defaults to ``listen`` with the bound port.
    advertise: str | None = None
    session_timeout_s: float = 10.0
    grace_s: float = 5.0
    #: How sandboxes are made: ``grpc`` (real worker agents) or ``accept`` (a double that contacts nobody).
    workers: str = "grpc"
    host: HostConfig = field(default_factory=HostConfig)
    leader: LeaderConfig = field(default_factory=LeaderConfig)
    #: This server's identity for mTLS (serving, and calling workers); ``None``: plaintext (``--insecure``).
    tls: Tls | None = None


class AssignmentServer:
    """One assignment server; use from one event loop."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        coordinator: Coordinator | None = None,
        workers: WorkerClient | None = None,
    ) -> None:
        self.config = config
        self.coordinator = coordinator or connect(
            config.zk, partitions=config.host.partitions, session_timeout_s=config.session_timeout_s
        )
        if config.workers not in WORKER_CLIENTS:
            raise ValueError(f"workers must be one of {WORKER_CLIENTS}, not {config.workers!r}")
        self._own_workers: GrpcWorkerClient | None = None
        if workers is None:
            if config.workers == "accept":
                workers = AcceptingWorkers()
            else:
                workers = self._own_workers = GrpcWorkerClient(tls=config.tls)
        self.workers: WorkerClient = workers
        self.journal: Journal | None = None
        self.host: PartitionHost | None = None
        self.grpc: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        self.port = 0
        self.address = ""

    async def start(self) -> None:
        """Open the journal, bind, join coordination, report SERVING."""
        cfg = self.config
        self.journal = await asyncio.to_thread(Journal.open, cfg.journal)
        self.grpc = grpc.aio.server(
            options=[("grpc.so_reuseport", 0)], interceptors=[RoleCheck(POLICY)] if cfg.tls else None
        )
        host_part = cfg.listen.rsplit(":", 1)[0]
        self.port = add_port(self.grpc, cfg.listen, cfg.tls)
        self.address = cfg.advertise or f"{host_part}:{self.port}"
        me = ServerInfo(cfg.server_id, self.address, cfg.zone)
        self.host = PartitionHost(
            self.coordinator, self.journal, self.workers, me, config=cfg.host, leader_config=cfg.leader
        )
        add_to_server(AssignmentService(self.host), self.grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.grpc)
        await self.grpc.start()
        await self.host.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "event=server_started id=%s address=%s zk=%s journal=%s workers=%s",
            cfg.server_id,
            self.address,
            cfg.zk,
            cfg.journal,
            cfg.workers,
        )

    async def _set_health(self, status: int) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def stop(self) -> None:
        """Graceful stop: hand partitions over, finish in-flight calls, leave coordination."""
        with contextlib.suppress(Exception):
            await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.host is not None:
            await self.host.stop()
        if self.grpc is not None:
            await self.grpc.stop(self.config.grace_s)
        if self._own_workers is not None:
            await self._own_workers.close()
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)
        log.info("event=server_stopped id=%s", self.config.server_id)


async def run(config: ServerConfig) -> None:
    """Run a server until SIGTERM or SIGINT, then stop it gracefully."""
    server = AssignmentServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"leasehold server {config.server_id} listening on {server.address}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
