"""``leasehold schedule create|list|show|enable|disable|delete``: schedules that invoke functions.

The commands are boto3's EventBridge Scheduler client against the frontend (which serves the Scheduler API
on its Lambda endpoint), so they behave as that API does and its errors are its own (``error:
ResourceNotFoundException: Schedule nightly does not exist.``). ``create`` takes a function name (or ARN,
optionally ``NAME:ALIAS``) and looks its ARN up with Lambda's GetFunction; the schedule's RoleArn, which
the API requires and Leasehold stores but does not assume, defaults to ``role/leasehold-scheduler`` of the
function's account. ``enable`` and ``disable`` read the schedule and write it back with the other State
(UpdateSchedule replaces a schedule whole, so nothing else of it changes; like AWS's, the API refuses a
rewrite whose StartDate is more than five minutes past).

Example::

    leasehold schedule create nightly 'cron(0 3 * * ? *)' --function report --timezone Europe/Berlin
    leasehold schedule create every-5 'rate(5 minutes)' --function poll:live --input '{"source": "timer"}'
    leasehold schedule list --prefix night
    leasehold schedule disable nightly
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from assignment.commands.api import CliError, call, lambda_client, scheduler_client
from assignment.commands.common import EXIT_OK, common_parser, guarded, positive_int
from assignment.commands.output import print_json, print_table

__all__ = ["register"]

#: GetSchedule's members that UpdateSchedule does not take (``enable``/``disable`` drop them).
_READ_ONLY = ("Arn", "CreationDate", "LastModificationDate", "RequestId")
#: The RoleArn ``create`` gives when none is named: the API requires one; Leasehold does not assume it.
_DEFAULT_ROLE = "arn:aws:iam::{account}:role/leasehold-scheduler"


def register(subparsers: Any) -> None:
    """Add ``schedule`` and its actions to ``subparsers``."""
    common = common_parser()
    schedule: argparse.ArgumentParser = subparsers.add_parser(
        "schedule", help="schedules that invoke functions", description=__doc__
    )
    actions = schedule.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[common], help="create a schedule for a function")
    create.add_argument("name", metavar="NAME")
    create.add_argument("expression", metavar="EXPRESSION", help="rate(...), cron(...) or at(...)")
    create.add_argument("--function", required=True, help="the function: NAME, NAME:QUALIFIER or its ARN")
    create.add_argument("--input", help="the event, a JSON document (default: an empty object)")
    create.add_argument("--timezone", help="the IANA time zone cron() and at() are read in (default UTC)")
    create.add_argument("--window", type=positive_int(1440), help="a flexible window of this many minutes")
    create.add_argument("--start", help="StartDate, ISO 8601 (rate() counts from it)")
    create.add_argument("--end", help="EndDate, ISO 8601")
    create.add_argument("--description", help="a description")
    create.add_argument("--disabled", action="store_true", help="create it DISABLED")
    create.add_argument("--delete-after", action="store_true", help="delete it after its last occurrence")
    create.add_argument("--retries", type=_whole(185), help="MaximumRetryAttempts, 0-185 (default 185)")
    create.add_argument("--max-age", type=_whole(86_400, 60), help="MaximumEventAgeInSeconds, 60-86400")
    create.add_argument("--dead-letter", metavar="QUEUE_ARN", help="an SQS queue for what cannot be delivered")
    create.add_argument("--role-arn", help="the RoleArn to store (default role/leasehold-scheduler)")
    create.set_defaults(func=guarded(_create))

    listing = actions.add_parser("list", parents=[common], help="schedules, by name")
    listing.add_argument("--prefix", default="", help="only names starting with this")
    listing.add_argument("--state", choices=("ENABLED", "DISABLED"), help="only schedules in this state")
    listing.set_defaults(func=guarded(_list))

    for action, text, handler in (
        ("show", "one schedule, whole (JSON)", _show),
        ("enable", "set State ENABLED", _enable),
        ("disable", "set State DISABLED", _disable),
        ("delete", "delete the schedule", _delete),
    ):
        parser = actions.add_parser(action, parents=[common], help=text)
        parser.add_argument("name", metavar="NAME")
        parser.set_defaults(func=guarded(handler))


def _whole(most: int, least: int = 0) -> Any:
    def parse(text: str) -> int:
        if not text.isdigit() or not least <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {least} to {most}")
        return int(text)

    return parse


def _function_arn(endpoint: str, function: str) -> str:
    """``function`` as an ARN: an ARN is kept; ``NAME[:QUALIFIER]`` is looked up (so it must exist)."""
    if function.startswith("arn:"):
        return function
    name, _, qualifier = function.partition(":")
    params: dict[str, Any] = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
    arn: str = call(lambda_client(endpoint).get_function, **params)["Configuration"]["FunctionArn"]
    return arn


def _create(args: argparse.Namespace) -> int:
    if args.input is not None:
        try:
            json.loads(args.input)
        except ValueError as exc:
            raise CliError("ValidationException", f"--input is not JSON: {exc}") from None
    arn = _function_arn(args.endpoint, args.function)
    account = arn.split(":")[4] if arn.count(":") >= 6 else ""
    target: dict[str, Any] = {"Arn": arn, "RoleArn": args.role_arn or _DEFAULT_ROLE.format(account=account)}
    if args.input is not None:
        target["Input"] = args.input
    limits = (("MaximumRetryAttempts", args.retries), ("MaximumEventAgeInSeconds", args.max_age))
    retry = {key: value for key, value in limits if value is not None}
    if retry:
        target["RetryPolicy"] = retry
    if args.dead_letter:
        target["DeadLetterConfig"] = {"Arn": args.dead_letter}
    params: dict[str, Any] = {
        "Name": args.name,
        "ScheduleExpression": args.expression,
        "Target": target,
        "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": args.window}
        if args.window
        else {"Mode": "OFF"},
        "State": "DISABLED" if args.disabled else "ENABLED",
    }
    for key, value in (("ScheduleExpressionTimezone", args.timezone), ("StartDate", args.start),
                       ("EndDate", args.end), ("Description", args.description)):  # fmt: skip
        if value is not None:
            params[key] = value
    if args.delete_after:
        params["ActionAfterCompletion"] = "DELETE"
    answer = call(scheduler_client(args.endpoint).create_schedule, **params)
    print_json(answer) if args.json else print(answer["ScheduleArn"])
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    client = scheduler_client(args.endpoint)
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"MaxResults": 100, **({"NamePrefix": args.prefix} if args.prefix else {})}
        params.update({"State": args.state} if args.state else {})
        page = call(client.list_schedules, **params, **({"NextToken": token} if token else {}))
        found += page.get("Schedules", [])
        token = page.get("NextToken")
        if not token:
            break
    if args.json:
        print_json({"Schedules": found})
        return EXIT_OK
    print_table(
        ["NAME", "STATE", "TARGET"],
        [[item["Name"], item["State"], item.get("Target", {}).get("Arn", "")] for item in found],
    )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    print_json(call(scheduler_client(args.endpoint).get_schedule, Name=args.name))
    return EXIT_OK


def _set_state(args: argparse.Namespace, state: str) -> int:
    client = scheduler_client(args.endpoint)
    current = call(client.get_schedule, Name=args.name)
    if current.get("State") != state:
        replacement = {key: value for key, value in current.items() if key not in _READ_ONLY}
        call(client.update_schedule, **{**replacement, "State": state})
    return EXIT_OK


def _enable(args: argparse.Namespace) -> int:
    return _set_state(args, "ENABLED")


def _disable(args: argparse.Namespace) -> int:
    return _set_state(args, "DISABLED")


def _delete(args: argparse.Namespace) -> int:
    call(scheduler_client(args.endpoint).delete_schedule, Name=args.name)
    return EXIT_OK
