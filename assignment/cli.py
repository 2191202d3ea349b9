"""The ``leasehold`` command line: one subcommand per component, each registered by its own module.

Processes: ``dev`` (everything on one machine), ``server``, ``worker``, ``frontend``. For people:
``function``, ``invoke``, ``status``, ``logs``, ``dlq`` (clients of a frontend's HTTP API). For operators:
``journal`` and ``keys`` (on the database).
"""

from __future__ import annotations

import argparse
from importlib.metadata import version

import journal.cli
import workers.certs
import workers.cli
from assignment import commands, dev, recovery, server_cli
from assignment.frontend import cli as frontend_cli
from assignment.frontend import keys_cli


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each component adds its subcommand here."""
    parser = argparse.ArgumentParser(
        prog="leasehold",
        description="Leasehold: a self-hostable serverless platform built around a fenced assignment service.",
    )
    parser.add_argument("--version", action="version", version=f"leasehold {version('leasehold')}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    dev.register(subparsers)
    server_cli.register(subparsers)
    workers.cli.register(subparsers)
    frontend_cli.register(subparsers)
    commands.register(subparsers)
    journal.cli.register(subparsers, recovery.JOURNAL_ACTIONS)
    keys_cli.register(subparsers)
    workers.certs.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``leasehold`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
