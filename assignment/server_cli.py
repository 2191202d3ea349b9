"""The ``leasehold server`` subcommand: run one assignment server process.

Each flag defaults to its environment variable ``LEASEHOLD_SERVER_<FLAG>`` (``--listen`` ←
``LEASEHOLD_SERVER_LISTEN``, ``--id`` ← ``LEASEHOLD_SERVER_ID``: the rule of :mod:`workers.flags`). The
effective configuration is logged at start-up. Sandboxes are created on real worker agents over gRPC unless
``--workers accept`` picks the double that contacts nobody (for tests with worker doubles).

Example::

    leasehold server --zk 127.0.0.1:2181/leasehold --journal postgresql://db/leasehold \\
        --listen 0.0.0.0:7100 --advertise 10.0.0.7:7100 --id s1 --zone a
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from typing import Any

from assignment.host import HostConfig
from assignment.leader import LeaderConfig
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT
from assignment.server import ServerConfig, run
from workers.flags import Flags, read_secret_flag
from workers.tls import add_tls_flags, tls_from_args

__all__ = ["config_from_args", "main", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``server`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "server", help="run an assignment server", description=__doc__.splitlines()[0]
    )
    flags = Flags("server", parser)
    flag = flags.add
    flag("--zk", help="ZooKeeper hosts[/chroot]; omit (or 'local') for embedded")
    flags.add_with_file("--journal", default="sqlite:///leasehold-journal.db", help="journal URL")
    flag("--listen", default="127.0.0.1:7100", help="HOST:PORT to serve gRPC on")
    flag("--advertise", help="address clients use (default: --listen)")
    flag("--id", default=socket.gethostname(), help="this server's id")
    flag("--zone", default="", help="this server's zone")
    flag("--partitions", type=int, default=16)
    flag("--session-timeout", type=float, default=10.0)
    flag("--grace", type=float, default=5.0, help="seconds for in-flight calls")
    flag("--settle", type=float, default=2.0, help="seconds before balancing")
    flag("--idle-keepalive", type=float, default=600.0)
    flag("--account-limit", type=int, default=DEFAULT_ACCOUNT_LIMIT)
    flag("--snapshot-every", type=int, default=2000)
    flag(
        "--workers",
        choices=("grpc", "accept"),
        default="grpc",
        help="grpc: create sandboxes on real worker agents; accept: a double that contacts nobody (tests)",
    )
    add_tls_flags(flag, parser)
    flag("--log-level", default="INFO")
    parser.set_defaults(func=main)
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The server configuration the flags describe; ValueError when the TLS flags are wrong."""
    return ServerConfig(
        tls=tls_from_args(args, "server"),
        server_id=args.id,
        listen=args.listen,
        journal=read_secret_flag(args, "--journal"),
        zk=args.zk,
        zone=args.zone,
        advertise=args.advertise,
        session_timeout_s=args.session_timeout,
        grace_s=args.grace,
        workers=args.workers,
        host=HostConfig(partitions=args.partitions, settle_s=args.settle, grace_s=args.grace),
        leader=LeaderConfig(
            account_limit=args.account_limit,
            idle_keepalive_ms=int(args.idle_keepalive * 1000),
            snapshot_every=args.snapshot_every,
        ),
    )


def main(args: argparse.Namespace) -> int:
    """Run the server until SIGTERM."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"leasehold server: {exc}")
        return 2
    logging.getLogger("leasehold.server").info("event=config %s", config)
    asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="leasehold")
    register(_parser.add_subparsers(required=True))
    _args = _parser.parse_args()
    raise SystemExit(_args.func(_args))
