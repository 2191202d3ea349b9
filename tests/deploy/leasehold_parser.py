"""The real ``leasehold`` argument parser, for checking deployment commands without running them.

It is ``assignment.cli.build_parser()``, the parser of the ``leasehold`` console script.

Example::

    args = parse_command(["server", "--zk", "zookeeper:2181", "--listen", "0.0.0.0:7100"])
    args.listen
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys

from assignment import cli

__all__ = ["CommandError", "build_parser", "main", "parse_command"]


class CommandError(ValueError):
    """The command does not parse; the message is argparse's."""


def build_parser() -> argparse.ArgumentParser:
    """``leasehold``'s parser."""
    return cli.build_parser()


def parse_command(argv: list[str]) -> argparse.Namespace:
    """Parse ``leasehold ARGV`` exactly as the entry point would; a bad command raises :class:`CommandError`."""
    parser = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        raise CommandError(err.getvalue().strip() or f"argparse exit {exc.code}") from None
    if getattr(args, "func", None) is None:
        raise CommandError(f"{argv[:1]} names no runnable subcommand")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run ``leasehold ARGV`` with every subcommand (what the local platform starts its processes with)."""
    args = parse_command(list(sys.argv[1:] if argv is None else argv))
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
