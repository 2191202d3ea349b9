"""The ``leasehold`` commands for people: functions, invocations, cluster status, logs, the DLQ, queues and
schedules.

They talk to a frontend over HTTP (``--endpoint``, env ``LEASEHOLD_ENDPOINT``, default
``http://127.0.0.1:9000``): boto3's Lambda, SQS and EventBridge Scheduler clients for those APIs, plain
``urllib`` for the admin JSON endpoints. Tables for people by default, ``--json`` for scripts. Exit codes:
0 ok, 1 the invoked function failed, 2 the command failed (one ``error: <Type>: <Message>`` line on stderr).

Example (the way ``assignment/cli.py`` wires it)::

    parser = argparse.ArgumentParser(prog="leasehold")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(["invoke", "resize", "--payload", '{"width": 64}'])
    exit_code = args.func(args)
"""

from __future__ import annotations

from typing import Any

from assignment.commands import cluster, functions, invoke, queues, schedules

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``function``, ``invoke``, ``status``, ``logs``, ``dlq``, ``queue`` and ``schedule`` to ``subparsers``."""
    functions.register(subparsers)
    invoke.register(subparsers)
    cluster.register(subparsers)
    queues.register(subparsers)
    schedules.register(subparsers)
