"""The ``leasehold frontend`` subcommand: run one frontend process (Lambda HTTP API + gRPC API).

Each flag defaults to its environment variable ``LEASEHOLD_FRONTEND_<FLAG>`` (``--http`` ←
``LEASEHOLD_FRONTEND_HTTP``: the rule of :mod:`workers.flags`). The effective configuration is logged
at start-up (the bootstrap key's secret left out); SIGTERM stops it gracefully.

Authentication: ``--auth sigv4`` (the default) answers only requests signed with an access key kept in
the database (``leasehold keys``); ``--bootstrap-key ACCESS_KEY_ID:SECRET`` (better: its variable
``LEASEHOLD_FRONTEND_BOOTSTRAP_KEY``, or ``--bootstrap-key-file PATH`` holding the same) adds a first admin
key if absent. ``--auth none`` answers everyone, for throwaway use only.

Example::

    leasehold frontend --http 0.0.0.0:9000 --grpc 0.0.0.0:9001 --zk 127.0.0.1:2181/leasehold \\
        --journal postgresql://db/leasehold
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from assignment.frontend.auth.keys import parse_key
from assignment.frontend.auth.resolver import DEFAULT_KEY_TTL_S
from assignment.frontend.event_sources.poller import DEFAULT_LEASE_S
from assignment.frontend.schedules.runner import DEFAULT_LEASE_S as SCHEDULER_LEASE_S
from assignment.frontend.server import Frontend, FrontendConfig
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT
from workers.flags import Flags, read_secret_flag
from workers.tls import add_tls_flags, tls_from_args

__all__ = ["config_from_args", "main", "register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``frontend`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "frontend", help="run a frontend (Lambda HTTP + gRPC API)", description=__doc__.splitlines()[0]
    )
    flags = Flags("frontend", parser)
    flag = flags.add
    flag("--http", default="127.0.0.1:9000", help="HOST:PORT of the Lambda HTTP API")
    flag("--grpc", default="127.0.0.1:9001", help="HOST:PORT of the gRPC API")
    flag("--zk", help="ZooKeeper hosts[/chroot] (membership)")
    flags.add_with_file("--journal", default="sqlite:///leasehold-journal.db", help="database URL")
    flag(
        "--assignment",
        default="",
        help="assignment servers ADDR[,ADDR] (default: from --zk membership, else 127.0.0.1:7100)",
    )
    flag("--region", default="us-east-1")
    flag("--account-id", default="000000000000")
    flag("--account-limit", type=int, default=DEFAULT_ACCOUNT_LIMIT)
    flag(
        "--provision-interval",
        type=_positive,
        default="30",
        help="seconds between provisioned-concurrency top-ups; each renews the servers' pin (held 180 s)",
    )
    flag(
        "--dead-letter-retention-days",
        type=_positive,
        default="14",
        help="how long the dead-letter store keeps a failed event (default 14, as SQS at most)",
    )
    flag("--grace", type=float, default=10.0)
    flag(
        "--mapping-lease",
        type=_positive,
        default=str(DEFAULT_LEASE_S),
        metavar="S",
        help="seconds an event source mapping's poller lease lasts unrenewed: a dead frontend's mappings move "
        "to another after this",
    )
    flag(
        "--scheduler-lease",
        type=_positive,
        default=str(SCHEDULER_LEASE_S),
        metavar="S",
        help="seconds the scheduler's lease lasts unrenewed: a dead frontend's schedules fire from another "
        "after this (late, once)",
    )
    flag("--auth", choices=("sigv4", "none"), default="sigv4", help="sigv4: signed requests only; none: open")
    bootstrap = parser.add_mutually_exclusive_group()
    flag(
        "--bootstrap-key",
        group=bootstrap,
        metavar="ACCESS_KEY_ID:SECRET",
        help="an admin key added to the database if absent (prefer the variable: argv is visible to all)",
    )
    flag("--bootstrap-key-file", group=bootstrap, type=Path, metavar="PATH", help="a file holding ACCESS_KEY_ID:SECRET")
    flag(
        "--key-cache-ttl",
        type=_positive,
        default=str(DEFAULT_KEY_TTL_S),
        metavar="S",
        help="seconds a key is trusted from the cache: a deleted key is refused after at most this",
    )
    add_tls_flags(flag, parser)
    flag("--log-level", default="INFO")
    parser.set_defaults(func=main)
    return parser


def bootstrap_key(args: argparse.Namespace) -> str | None:
    """The bootstrap key of ``--bootstrap-key`` or ``--bootstrap-key-file``, checked; ``ValueError`` says
    what is wrong (never the secret)."""
    text: str | None = args.bootstrap_key
    if args.bootstrap_key_file is not None:
        try:
            text = Path(args.bootstrap_key_file).read_text()
        except OSError as exc:
            raise ValueError(f"--bootstrap-key-file {args.bootstrap_key_file}: {exc.strerror}") from None
    if not text:
        return None
    parse_key(text)
    return text.strip()


def config_from_args(args: argparse.Namespace) -> FrontendConfig:
    """The frontend configuration the flags describe; ``ValueError`` for a bad bootstrap key."""
    return FrontendConfig(
        http=args.http,
        grpc=args.grpc,
        journal=read_secret_flag(args, "--journal"),
        assignment=[a.strip() for a in (args.assignment or "").split(",") if a.strip()],
        zk=args.zk or None,
        region=args.region,
        account_id=args.account_id,
        account_limit=args.account_limit,
        provision_interval_s=args.provision_interval,
        grace_s=args.grace,
        dead_letter_retention_s=args.dead_letter_retention_days * 86400,
        auth=args.auth,
        bootstrap_key=bootstrap_key(args),
        key_cache_ttl_s=args.key_cache_ttl,
        mapping_lease_s=args.mapping_lease,
        scheduler_lease_s=args.scheduler_lease,
        tls=tls_from_args(args, "frontend"),
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
    print(f"ready http={frontend.http_port} grpc={frontend.grpc_port} auth={config.auth}", flush=True)
    try:
        await stop.wait()
    finally:
        await frontend.stop()


def main(args: argparse.Namespace) -> int:
    """Entry point of ``leasehold frontend``."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"leasehold frontend: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("leasehold.frontend").info("event=config %s", config)
    asyncio.run(run(config))
    return 0
