"""What every people's-CLI command shares: the ``--endpoint``/``--json`` flags and the error contract.

A command is a function ``(args) -> int``; :func:`guarded` turns a :class:`~assignment.commands.api.CliError`
into one ``error: <Type>: <Message>`` line on stderr and exit code 2.

Example::

    parser = subparsers.add_parser("status", parents=[common_parser()])
    parser.set_defaults(func=guarded(show_status))
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from assignment.commands.api import DEFAULT_ENDPOINT, ENDPOINT_ENV, CliError

__all__ = ["EXIT_ERROR", "EXIT_FUNCTION_ERROR", "EXIT_OK", "Command", "common_parser", "guarded", "positive_int"]

EXIT_OK = 0
#: The invoked function failed (its error document is printed as the result).
EXIT_FUNCTION_ERROR = 1
#: The command failed: bad input, an API error, or the frontend could not be reached.
EXIT_ERROR = 2

Command = Callable[[argparse.Namespace], int]


def common_parser() -> argparse.ArgumentParser:
    """A parent parser with ``--endpoint`` (env ``LEASEHOLD_ENDPOINT``) and ``--json``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--endpoint",
        default=os.environ.get(ENDPOINT_ENV, DEFAULT_ENDPOINT),
        metavar="URL",
        help=f"the frontend's HTTP address (env {ENDPOINT_ENV}, default {DEFAULT_ENDPOINT})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    return parser


def guarded(command: Command) -> Command:
    """``command`` with :class:`CliError` printed as one line to stderr and exit code 2."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CliError as exc:
            print(exc.line(), file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("error: Interrupted: stopped by the user", file=sys.stderr)
            return 130

    return run


def positive_int(limit: int) -> Callable[[str], int]:
    """An argparse type: an integer from 1 to ``limit``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} is not between 1 and {limit}")
        return value

    return parse
