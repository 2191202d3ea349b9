"""``leasehold status``, ``leasehold logs FUNCTION`` and ``leasehold dlq list FUNCTION``: the frontend's
admin JSON endpoints (``/_leasehold/v1/...``) shown as tables, or passed through with ``--json``.

Example::

    leasehold status
    leasehold logs resize --limit 20
    leasehold dlq list resize --json
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from assignment.commands.api import CliError, admin_get, admin_path
from assignment.commands.common import EXIT_OK, common_parser, guarded, positive_int
from assignment.commands.output import print_json, print_table

__all__ = ["MAX_LIMIT", "register"]

#: The most events or items one command asks for.
MAX_LIMIT = 10_000


def register(subparsers: Any) -> None:
    """Add ``status``, ``logs`` and ``dlq`` to ``subparsers``."""
    common = common_parser()
    status: argparse.ArgumentParser = subparsers.add_parser(
        "status", parents=[common], help="partitions and leaders, workers, sandboxes, queue depth"
    )
    status.set_defaults(func=guarded(_status))

    logs: argparse.ArgumentParser = subparsers.add_parser(
        "logs", parents=[common], help="a function's recent invocation logs"
    )
    logs.add_argument("function", metavar="FUNCTION")
    logs.add_argument("--limit", type=positive_int(MAX_LIMIT), default=50, help="how many invocations")
    logs.set_defaults(func=guarded(_logs))

    dlq: argparse.ArgumentParser = subparsers.add_parser("dlq", help="the dead-letter store of async invocations")
    actions = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="events that failed every attempt")
    listing.add_argument("function", metavar="FUNCTION")
    listing.add_argument("--limit", type=positive_int(MAX_LIMIT), default=50)
    listing.set_defaults(func=guarded(_dlq_list))


def _items(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise CliError("ServiceException", f"the frontend's answer has a malformed {key!r}")
    return value


def _status(args: argparse.Namespace) -> int:
    document = admin_get(args.endpoint, admin_path("status"))
    if args.json:
        print_json(document)
        return EXIT_OK
    partitions = _items(document, "partitions")
    workers = _items(document, "workers")
    functions = _items(document, "functions")
    print(f"partitions: {len(partitions)}")
    print_table(
        ["PARTITION", "LEADER", "ADDRESS"],
        [[p.get("partition"), p.get("leader_id"), p.get("leader_address")] for p in partitions],
    )
    print(f"\nworkers: {len(workers)}")
    print_table(
        ["WORKER", "ADDRESS", "ZONE", "MEMORY_MB", "FREE_MB", "SANDBOXES"],
        [
            [w.get("worker_id"), w.get("address"), w.get("zone"), w.get("memory_mb"), w.get("free_memory_mb"),
             w.get("sandboxes")]
            for w in workers
        ],
    )  # fmt: skip
    print(f"\nfunctions with sandboxes: {len(functions)}")
    print_table(
        ["FUNCTION", "VERSION", "SANDBOXES"], [[f.get("name"), f.get("version"), f.get("sandboxes")] for f in functions]
    )
    print(f"\nasync event queue depth: {document.get('queue_depth', '-')}")
    queues = _items(document, "queues")
    print(f"\nqueues: {len(queues)}")
    print_table(
        ["QUEUE", "VISIBLE", "IN_FLIGHT", "DELAYED"],
        [[q.get("name"), q.get("visible"), q.get("in_flight"), q.get("delayed")] for q in queues],
    )
    mappings = _items(document, "event_source_mappings")
    print(f"\nevent source mappings: {len(mappings)}")
    print_table(
        ["UUID", "FUNCTION", "SOURCE", "STATE", "BACKLOG", "LAST_RESULT", "POLLER"],
        [
            [m.get("uuid"), m.get("function"), str(m.get("source", "")).rsplit(":", 1)[-1], m.get("state"),
             m.get("backlog"), m.get("last_result") or "-", m.get("poller") or "-"]
            for m in mappings
        ],
    )  # fmt: skip
    return EXIT_OK


def _logs(args: argparse.Namespace) -> int:
    document = admin_get(args.endpoint, admin_path("logs", args.function, limit=args.limit))
    if args.json:
        print_json(document)
        return EXIT_OK
    for event in _items(document, "events"):
        text = str(event.get("text", ""))
        print(text if text.endswith("\n") else text + "\n", end="")
    return EXIT_OK


def _dlq_list(args: argparse.Namespace) -> int:
    document = admin_get(args.endpoint, admin_path("dlq", args.function, limit=args.limit))
    if args.json:
        print_json(document)
        return EXIT_OK
    items = _items(document, "items")
    print_table(
        ["REQUEST_ID", "QUALIFIER", "ERROR", "ATTEMPTS", "TIME", "MESSAGE"],
        [
            [i.get("request_id"), i.get("qualifier"), i.get("error_type"), i.get("attempts"), _time(i.get("time_ms")),
             i.get("error_message")]
            for i in items
        ],
    )  # fmt: skip
    return EXIT_OK


def _time(ms: Any) -> str:
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return "-"
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return "-"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
