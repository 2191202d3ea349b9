"""The ``leasehold server`` subcommand: run one assignment server process.

Flags default to ``LEASEHOLD_*`` environment variables (``LEASEHOLD_ZK``, ``LEASEHOLD_JOURNAL``,
``LEASEHOLD_LISTEN``, ``LEASEHOLD_ID``, ``LEASEHOLD_ZONE``, ``LEASEHOLD_WORKERS``, ...). The effective
configuration is logged at start-up. Sandboxes are created on real worker agents over gRPC unless
``--workers accept`` picks the double that contacts nobody (for tests with worker doubles).

Example::

    leasehold server --zk 127.0.0.1:2181/leasehold --journal postgresql://db/leasehold \\
        --listen 0.0.0.0:7100 --advertise 10.0.0.7:7100 --id s1 --zone a
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from typing import Any

from assignment.host import HostConfig
from assignment.leader import LeaderConfig
from assignment.server import ServerConfig, run

__all__ = ["config_from_args", "main", "register"]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"LEASEHOLD_{name}", default)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``server`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "server", help="run an assignment server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--zk", default=_env("ZK"), help="ZooKeeper hosts[/chroot]; omit (or 'local') for embedded")
    parser.add_argument("--journal", default=_env("JOURNAL", "sqlite:///leasehold-journal.db"), help="journal URL")
    parser.add_argument("--listen", default=_env("LISTEN", "127.0.0.1:7100"), help="HOST:PORT to serve gRPC on")
    parser.add_argument("--advertise", default=_env("ADVERTISE"), help="address clients use (default: --listen)")
    parser.add_argument("--id", default=_env("ID", socket.gethostname()), help="this server's id")
    parser.add_argument("--zone", default=_env("ZONE", ""), help="this server's zone")
    parser.add_argument("--partitions", type=int, default=int(_env("PARTITIONS", "16") or 16))
    parser.add_argument("--session-timeout", type=float, default=float(_env("SESSION_TIMEOUT", "10") or 10))
    parser.add_argument(
        "--grace", type=float, default=float(_env("GRACE", "5") or 5), help="seconds for in-flight calls"
    )
    parser.add_argument(
        "--settle", type=float, default=float(_env("SETTLE", "2") or 2), help="seconds before balancing"
    )
    parser.add_argument("--idle-keepalive", type=float, default=float(_env("IDLE_KEEPALIVE", "600") or 600))
    parser.add_argument("--account-limit", type=int, default=int(_env("ACCOUNT_LIMIT", "1000") or 1000))
    parser.add_argument("--snapshot-every", type=int, default=int(_env("SNAPSHOT_EVERY", "2000") or 2000))
    parser.add_argument(
        "--workers",
        choices=("grpc", "accept"),
        default=_env("WORKERS", "grpc"),
        help="grpc: create sandboxes on real worker agents; accept: a double that contacts nobody (tests)",
    )
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    parser.set_defaults(func=main)
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The server configuration the flags describe."""
    return ServerConfig(
        server_id=args.id,
        listen=args.listen,
        journal=args.journal,
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
    config = config_from_args(args)
    logging.getLogger("leasehold.server").info("event=config %s", config)
    asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="leasehold")
    register(_parser.add_subparsers(required=True))
    _args = _parser.parse_args()
    raise SystemExit(_args.func(_args))
