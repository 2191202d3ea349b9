"""The one rule of every process's flags: ``leasehold COMMAND --some-flag`` defaults to the environment
variable ``LEASEHOLD_COMMAND_SOME_FLAG`` (``leasehold server --listen`` ← ``LEASEHOLD_SERVER_LISTEN``,
``leasehold worker --worker-id`` ← ``LEASEHOLD_WORKER_WORKER_ID``, ``leasehold dev --data-dir`` ←
``LEASEHOLD_DEV_DATA_DIR``), so two processes never read each other's variables and a flag's variable is
never chosen by hand. The flag's help names its variable, and a value the flag's type refuses is a
usage error naming the flag (argparse converts a string default like a command-line value).

It lives in ``workers``, the lowest package with a process, so that the worker's command and the
commands of ``assignment`` (server, frontend, dev) share it; it imports only the standard library.

Example::

    flags = Flags("worker", parser)
    flags.add("--memory", type=int, default=4096, metavar="MB")   # LEASEHOLD_WORKER_MEMORY=8192 -> 8192
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Protocol

__all__ = ["Flags", "variable"]


class _Adds(Protocol):
    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action: ...


def variable(command: str, option: str) -> str:
    """The environment variable of ``option`` (``--zk-session-timeout``) of ``command`` (``worker``)."""
    return "LEASEHOLD_" + "_".join(part.upper().replace("-", "_") for part in (command, option.lstrip("-")))


class Flags:
    """Adds one command's flags, each defaulting to its environment variable."""

    def __init__(self, command: str, parser: _Adds) -> None:
        self.command = command
        self.parser = parser

    def add(
        self, option: str, *, default: Any = None, group: _Adds | None = None, help: str | None = None, **kwargs: Any
    ) -> argparse.Action:
        """``parser.add_argument(option, ...)`` whose default the environment may override; ``group``
        adds it to an argument group (e.g. a mutually exclusive one) instead."""
        name = variable(self.command, option)
        value = os.environ.get(name, default)
        text = f"{help} [{name}]" if help else f"[{name}]"
        return (group or self.parser).add_argument(option, default=value, help=text, **kwargs)
