"""``python -m assignment.commands ...``: the people's commands alone, with the root parser ``leasehold`` uses.

Example::

    python -m assignment.commands status --endpoint http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse

from assignment.commands import register


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; its exit code."""
    parser = argparse.ArgumentParser(prog="leasehold", description="Leasehold's commands for people.")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
