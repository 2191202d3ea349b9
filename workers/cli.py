"""``leasehold worker``: run the worker agent (gRPC on ``--listen``) until SIGTERM or SIGINT.

    leasehold worker --listen 0.0.0.0:7001 --zone zone-a --memory 8192 --zk 127.0.0.1:2181 \\
        --data-dir /var/lib/leasehold/worker

Each flag defaults to its environment variable ``LEASEHOLD_WORKER_<FLAG>`` (``LEASEHOLD_WORKER_MEMORY=8192``,
``--worker-id`` ← ``LEASEHOLD_WORKER_WORKER_ID``: the rule of :mod:`workers.flags`). On start
the agent cleans up sandboxes an earlier agent left in the data folder, prints its configuration as one
``event=worker_config`` line and ``event=worker_listening port=N``. Sandboxes get a network namespace each
(``--sandbox-network isolated``, the default; :mod:`workers.netns`) and reach the public internet, the
``--sandbox-allow`` endpoints and networks, and nothing of the host or the platform. Wire it into a
top-level parser with :func:`register`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from workers.agent import Agent, AgentConfig
from workers.flags import Flags, read_secret_flag
from workers.netns import EgressPolicy
from workers.registration import NullRegistrar, Registrar, ZooKeeperRegistrar
from workers.sandbox import Isolation
from workers.service import serve, stop
from workers.tls import Tls, add_tls_flags, tls_from_args

__all__ = ["add_network_flags", "main", "network_policy", "register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the ``worker`` subcommand; ``args.func(args)`` runs it and returns the exit code."""
    parser = subparsers.add_parser("worker", help="run a worker agent", description=__doc__)
    _add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    flags = Flags("worker", parser)
    flag = flags.add
    flag("--listen", default="127.0.0.1:7001", metavar="HOST:PORT")
    flag("--zone", default="zone-a")
    flag("--memory", type=int, default=4096, metavar="MB")
    coordination = parser.add_mutually_exclusive_group()
    flag("--zk", group=coordination, metavar="HOSTS", help="register in ZooKeeper")
    flag(
        "--assignment",
        group=coordination,
        metavar="ADDR",
        help="assignment service address (Register/Heartbeat arrive with the assignment API; logged for now)",
    )
    flag("--data-dir", type=Path, default="./leasehold-worker")
    flag("--worker-id", default="", help="default: host name + port")
    flag("--advertise", default="", help="address others use (default: --listen)")
    parser.add_argument("--no-bwrap", action="store_true", help="do not use bubblewrap even when installed")
    add_network_flags(flag)
    flag(
        "--lambda-endpoint",
        default="",
        metavar="URL",
        help="the Lambda API as functions reach it: allow-listed in their networks and set as "
        "AWS_ENDPOINT_URL_LAMBDA and AWS_ENDPOINT_URL_SQS in their environment",
    )
    add_tls_flags(flag, parser)
    flag("--heartbeat", type=float, default=5.0, metavar="S")
    flags.add_with_file("--code-store", metavar="URL", help="database URL of the code store, for CodeRef.blob_sha256")
    flag(
        "--invocation-log",
        type=Path,
        metavar="FILE",
        help="append one JSON line per invocation start and end to FILE (the audit log; default: none)",
    )
    flag(
        "--uid-base",
        type=int,
        metavar="UID",
        help="sandbox users are UID+1, UID+2... (as root); default: a range of its own from a hash of --data-dir",
    )
    flag(
        "--zk-session-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="ZooKeeper session timeout: how soon a dead worker's node vanishes",
    )


def add_network_flags(flag: Callable[..., argparse.Action]) -> None:
    """The sandbox network flags, shared by ``leasehold worker`` and ``leasehold dev``."""
    flag(
        "--sandbox-network",
        choices=("isolated", "host"),
        default="isolated",
        help="isolated: a network namespace per sandbox with filtered egress (needs root and slirp4netns); "
        "host: sandboxes share the host's network and reach every local port",
    )
    flag(
        "--sandbox-allow",
        default="",
        metavar="LIST",
        help="comma-separated: HOST:PORT endpoints (forwarded) and IPV4[/LEN] networks sandboxes may reach "
        "besides the public internet",
    )
    flag("--sandbox-deny", default="", metavar="LIST", help="comma-separated IPV4[/LEN] sandboxes may not reach")


def network_policy(args: argparse.Namespace) -> EgressPolicy | None:
    """The egress policy the flags ask for (``None``: the host's network); ValueError names a bad entry."""
    policy = EgressPolicy.parse(args.sandbox_allow.split(","), args.sandbox_deny.split(","))
    if args.sandbox_network == "host":
        if policy != EgressPolicy():
            raise ValueError("--sandbox-allow/--sandbox-deny need --sandbox-network isolated")
        return None
    return policy


async def _main(args: argparse.Namespace, network: EgressPolicy | None, tls: Tls | None, code_store: str | None) -> int:
    isolation = Isolation(bwrap=None) if args.no_bwrap else Isolation()
    registrar: Registrar = ZooKeeperRegistrar(args.zk, args.zk_session_timeout) if args.zk else NullRegistrar()
    host = args.listen.rpartition(":")[0]
    config = AgentConfig(
        data_dir=args.data_dir.resolve(),
        zone=args.zone,
        memory_mb=args.memory,
        worker_id=args.worker_id,
        address=args.advertise or args.listen,
        heartbeat_s=args.heartbeat,
        isolation=isolation,
        code_store=code_store,
        invocation_log=args.invocation_log.resolve() if args.invocation_log else None,
        uid_base=args.uid_base,
        network=network,
        lambda_endpoint=args.lambda_endpoint,
    )
    try:
        agent = Agent(config, registrar)
    except ValueError as exc:
        print(exc, flush=True)
        return 2
    server, port = await serve(agent, args.listen, tls)
    if not args.advertise:
        worker_id = agent.info.worker_id or f"{os.uname().nodename}:{port}"
        agent.info = dataclasses.replace(agent.info, worker_id=worker_id, address=f"{host}:{port}")
    cleaned = await agent.start()
    logging.info(
        "event=worker_config listen=%s zone=%s memory_mb=%d data_dir=%s bwrap=%s zk=%s assignment=%s cleaned=%d "
        "code_store=%s invocation_log=%s uid_base=%d sandbox_network=%s grpc_tls=%s",
        args.listen, args.zone, args.memory, config.data_dir, agent.isolation.bwrap, args.zk, args.assignment,
        len(cleaned), "yes" if code_store else "no", config.invocation_log, agent.uid_base,
        args.sandbox_network, f"{tls.role}/{tls.name}" if tls else "off",
    )  # fmt: skip
    print(f"event=worker_listening port={port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await stop(server, agent, grace_s=5.0)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the agent until a signal; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.memory < 128:
        print("--memory must be at least 128 MB")
        return 2
    if args.uid_base is not None and not 1000 <= args.uid_base <= 2**31 - 2**20:
        print("--uid-base must be between 1000 and 2147483648 - 1048576")
        return 2
    try:
        network = network_policy(args)
        tls = tls_from_args(args, "worker")
        code_store = read_secret_flag(args, "--code-store")
    except ValueError as exc:
        print(exc)
        return 2
    return asyncio.run(_main(args, network, tls, code_store))


def main(argv: list[str] | None = None) -> int:
    """``python -m workers.cli`` runs the agent alone."""
    parser = argparse.ArgumentParser(prog="leasehold worker", description=__doc__)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
