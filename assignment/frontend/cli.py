"""The ``leasehold frontend`` subcommand: run one frontend process (Lambda HTTP API + gRPC API).

Flags default to ``LEASEHOLD_*`` environment variables (``LEASEHOLD_HTTP``, ``LEASEHOLD_GRPC``,
``LEASEHOLD_ZK``, ``LEASEHOLD_JOURNAL``, ``LEASEHOLD_ASSIGNMENT``, ``LEASEHOLD_REGION``,
``LEASEHOLD_ACCOUNT_ID``). The effective configuration is logged at start-up; SIGTERM stops it gracefully.

Example::

    leasehold frontend --http 0.0.0.0:9000 --grpc 0.0.0.0:9001 --zk 127.0.0.1:2181/leasehold \\
        --journal postgresql://db/leasehold
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

from assignment.frontend.server import Frontend, FrontendConfig

__all__ = ["config_from_args", "main", "register", "run"]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"LEASEHOLD_{name}", default)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``frontend`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "frontend", help="run a frontend (Lambda HTTP + gRPC API)", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--http", default=_env("HTTP", "127.0.0.1:9000"), help="HOST:PORT of the Lambda HTTP API")
    parser.add_argument("--grpc", default=_env("GRPC", "127.0.0.1:9001"), help="HOST:PORT of the gRPC API")
    parser.add_argument("--zk", default=_env("ZK"), help="ZooKeeper hosts[/chroot] (membership)")
    parser.add_argument("--journal", default=_env("JOURNAL", "sqlite:///leasehold-journal.db"), help="database URL")
    parser.add_argument(
        "--assignment",
        default=_env("ASSIGNMENT", ""),
        help="assignment servers ADDR[,ADDR] (default: from --zk membership, else 127.0.0.1:7100)",
    )
    parser.add_argument("--region", default=_env("REGION", "us-east-1"))
    parser.add_argument("--account-id", default=_env("ACCOUNT_ID", "000000000000"))
    parser.add_argument("--account-limit", type=int, default=int(_env("ACCOUNT_LIMIT", "1000") or 1000))
    parser.add_argument(
        "--provision-interval",
        type=_positive,
        default=_positive(_env("PROVISION_INTERVAL", "30") or "30"),
        help="seconds between provisioned-concurrency top-ups; each renews the servers' pin (held 180 s)",
    )
    parser.add_argument(
        "--dead-letter-retention-days",
        type=_positive,
        default=_positive(_env("DEAD_LETTER_RETENTION_DAYS", "14") or "14"),
        help="how long the dead-letter store keeps a failed event (default 14, as SQS at most)",
    )
    parser.add_argument("--grace", type=float, default=float(_env("GRACE", "10") or 10))
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    parser.set_defaults(func=main)
    return parser


def config_from_args(args: argparse.Namespace) -> FrontendConfig:
    """The frontend configuration the flags describe."""
    return FrontendConfig(
        http=args.http,
        grpc=args.grpc,
        journal=args.journal,
        assignment=[a.strip() for a in (args.assignment or "").split(",") if a.strip()],
        zk=args.zk or None,
        region=args.region,
        account_id=args.account_id,
        account_limit=args.account_limit,
        provision_interval_s=args.provision_interval,
        grace_s=args.grace,
        dead_letter_retention_s=args.dead_letter_retention_days * 86400,
    )


def _positive(text: str) -> float:
    """A number > 0 (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}")
    return value


async def run(config: FrontendConfig) -> None:
    """Run a frontend until SIGTERM or SIGINT."""
    frontend = Frontend(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await frontend.start()
    print(f"ready http={frontend.http_port} grpc={frontend.grpc_port}", flush=True)
    try:
        await stop.wait()
    finally:
        await frontend.stop()


def main(args: argparse.Namespace) -> int:
    """Entry point of ``leasehold frontend``."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = config_from_args(args)
    logging.getLogger("leasehold.frontend").info("event=config %s", config)
    asyncio.run(run(config))
    return 0
