"""The ``leasehold`` command line. Subcommands arrive with the components they drive."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import journal.cli
import workers.cli
from assignment import server_cli


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each component adds its subcommand here."""
    parser = argparse.ArgumentParser(
        prog="leasehold",
        description="Leasehold: a self-hostable serverless platform built around a fenced assignment service.",
    )
    parser.add_argument("--version", action="version", version=f"leasehold {version('leasehold')}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    server_cli.register(subparsers)
    journal.cli.register(subparsers)
    workers.cli.register(subparsers)
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
