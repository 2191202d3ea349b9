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
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Flags", "read_secret_flag", "variable"]


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

    def add_with_file(self, option: str, *, default: Any = None, help: str | None = None, **kwargs: Any) -> None:
        """``option`` and its twin ``option-file`` (one or the other) that reads the value from a file, so a
        secret such as a database password stays out of argv (Docker secrets, ``/run/secrets/...``)."""
        group = self.parser.add_mutually_exclusive_group()  # type: ignore[attr-defined]
        self.add(option, default=default, group=group, help=help, **kwargs)
        self.add(f"{option}-file", group=group, type=Path, metavar="FILE", help=f"read {option} from FILE")


def read_secret_flag(args: argparse.Namespace, option: str) -> Any:
    """The value of ``option`` (``--journal``), read from its ``option-file`` twin when that is given;
    ValueError names an unreadable or empty file."""
    attribute = option.lstrip("-").replace("-", "_")
    path = getattr(args, f"{attribute}_file", None)
    if path is None:
        return getattr(args, attribute)
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{option}-file {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"{option}-file {path}: empty")
    return value
