"""Schedules through boto3's ``scheduler`` client on the embedded platform: the operations' documents, a
one-time schedule that invokes its function once with the context attributes filled in (and deletes
itself with ActionAfterCompletion DELETE), a schedule whose function is gone going to its dead-letter
queue with AWS's attributes, a disabled schedule that never fires, and every refusal (malformed, oversized
and hostile input, what Leasehold cannot honour, conflicts, unknown groups and names)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from assignment.dev import DevPlatform
from assignment.frontend.schedules.runner import execution_id
from tests.frontend.harness import ROLE, error_of, function_session, make_zip, raw_request
from tests.harness.lambda_clients import scheduler_client, sqs_client

ACCOUNT = "000000000000"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
SCHEDULE_ARN = f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/"
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
CODE = make_zip(
    {
        "app.py": "import json, time\n"
        "def handler(event, context):\n"
        "    print('FIRED', json.dumps({'event': event, 'request_id': context.aws_request_id,"
        " 'ms': int(time.time() * 1000)}))\n"
        "    return event\n"
    }
)


@pytest.fixture(scope="module")
def scheduler(endpoint: str) -> Any:
    """A boto3 scheduler client for the platform."""
    return scheduler_client(endpoint)


@pytest.fixture(scope="module")
def target(lam: LambdaClient) -> str:
    """A function that prints what it got."""
    lam.create_function(FunctionName="ticker", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": CODE})  # fmt: skip
    return FUNCTION_ARN + "ticker"


def _at(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


def _code(call: object) -> tuple[int, str, str]:
    assert isinstance(call, ClientError)
    error = call.response["Error"]
    return call.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


def _wait(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def _fired(endpoint: str, function: str) -> list[dict[str, Any]]:
    status, _, body = raw_request(endpoint, "GET", f"/_leasehold/v1/logs/{function}?limit=200")
    assert status == 200
    lines: list[dict[str, Any]] = []
    for entry in json.loads(body)["events"]:
        for line in str(entry["text"]).splitlines():
            if "FIRED " in line:
                lines.append(json.loads(line.split("FIRED ", 1)[1]))
    return lines


def _create(scheduler: Any, name: str, target_arn: str, **extra: Any) -> str:
    arguments: dict[str, Any] = {
        "Name": name,
        "ScheduleExpression": "rate(1 hour)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": target_arn, "RoleArn": SCHEDULER_ROLE},
        **extra,
    }
    return str(scheduler.create_schedule(**arguments)["ScheduleArn"])


# ---------------------------------------------------------------------------------------- documents


def test_create_get_list_update_and_delete(scheduler: Any, target: str) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    arn = _create(
        scheduler, "nightly", target, ScheduleExpression="cron(0 3 * * ? *)",
        ScheduleExpressionTimezone="Europe/Paris", Description="warm the cache", StartDate=start,
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
    )  # fmt: skip
    assert arn == SCHEDULE_ARN + "nightly"
    got = scheduler.get_schedule(Name="nightly")
    assert got["Arn"] == arn
    assert got["GroupName"] == "default"
    assert got["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert got["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert got["State"] == "ENABLED"
    assert got["Description"] == "warm the cache"
    assert got["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert got["ActionAfterCompletion"] == "NONE"
    assert abs(got["StartDate"].timestamp() - start.timestamp()) < 0.01
    assert "EndDate" not in got
    assert got["Target"] == {
        "Arn": target, "RoleArn": SCHEDULER_ROLE,
        "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
    }  # fmt: skip
    assert got["CreationDate"] <= got["LastModificationDate"]

    listed = scheduler.list_schedules()["Schedules"]
    mine = [s for s in listed if s["Name"] == "nightly"]
    assert mine == [{"Arn": arn, "Name": "nightly", "GroupName": "default", "State": "ENABLED",
                     "CreationDate": got["CreationDate"], "LastModificationDate": got["LastModificationDate"],
                     "Target": {"Arn": target}}]  # fmt: skip

    # UpdateSchedule replaces everything: what it leaves out takes its default.
    scheduler.update_schedule(
        Name="nightly", ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow={"Mode": "OFF"}, State="DISABLED",
        Target={"Arn": target + ":$LATEST", "RoleArn": SCHEDULER_ROLE, "Input": '{"warm": true}',
                "RetryPolicy": {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}},
    )  # fmt: skip
    got = scheduler.get_schedule(Name="nightly", GroupName="default")
    assert got["ScheduleExpression"] == "rate(5 minutes)"
    assert got["ScheduleExpressionTimezone"] == "UTC"
    assert got["State"] == "DISABLED"
    assert got["Description"] == ""
    assert "StartDate" not in got
    assert got["Target"]["Input"] == '{"warm": true}'
    assert got["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}
    assert [s["State"] for s in scheduler.list_schedules(State="DISABLED")["Schedules"] if s["Name"] == "nightly"] == [
        "DISABLED"
    ]
    scheduler.delete_schedule(Name="nightly")
    with pytest.raises(ClientError) as gone:
        scheduler.get_schedule(Name="nightly")
    assert _code(gone.value) == (404, "ResourceNotFoundException", "Schedule nightly does not exist.")
    with pytest.raises(ClientError) as again:
        scheduler.delete_schedule(Name="nightly")
    assert _code(again.value)[:2] == (404, "ResourceNotFoundException")


def test_list_pages_by_name_prefix_and_state(scheduler: Any, target: str) -> None:
    for n in range(5):
        _create(scheduler, f"page-{n}", target, State="DISABLED" if n % 2 else "ENABLED")
    first = scheduler.list_schedules(NamePrefix="page-", MaxResults=2)
    assert [s["Name"] for s in first["Schedules"]] == ["page-0", "page-1"]
    second = scheduler.list_schedules(NamePrefix="page-", MaxResults=2, NextToken=first["NextToken"])
    assert [s["Name"] for s in second["Schedules"]] == ["page-2", "page-3"]
    third = scheduler.list_schedules(NamePrefix="page-", MaxResults=2, NextToken=second["NextToken"])
    assert [s["Name"] for s in third["Schedules"]] == ["page-4"]
    assert "NextToken" not in third
    enabled = scheduler.list_schedules(NamePrefix="page-", State="ENABLED")["Schedules"]
    assert [s["Name"] for s in enabled] == ["page-0", "page-2", "page-4"]
    paginated = scheduler.get_paginator("list_schedules").paginate(NamePrefix="page-", PaginationConfig={"PageSize": 1})
    assert [s["Name"] for page in paginated for s in page["Schedules"]] == [f"page-{n}" for n in range(5)]
    for n in range(5):
        scheduler.delete_schedule(Name=f"page-{n}")


def test_a_retried_create_with_its_client_token_returns_the_schedule(scheduler: Any, target: str) -> None:
    token = uuid.uuid4().hex
    first = _create(scheduler, "retried", target, ClientToken=token)
    assert _create(scheduler, "retried", target, ClientToken=token) == first
    with pytest.raises(ClientError) as taken:
        _create(scheduler, "retried", target, ClientToken=uuid.uuid4().hex)
    assert _code(taken.value) == (409, "ConflictException", "Schedule retried already exists.")
    scheduler.delete_schedule(Name="retried")


# ----------------------------------------------------------------------------------------- firing


def test_a_one_time_schedule_invokes_once_with_the_context_attributes(
    scheduler: Any, target: str, endpoint: str, platform: DevPlatform
) -> None:
    expression = _at(2)
    _create(
        scheduler, "once", target, ScheduleExpression=expression, ActionAfterCompletion="DELETE",
        Target={"Arn": target, "RoleArn": SCHEDULER_ROLE, "Input": json.dumps({
            "arn": "<aws.scheduler.schedule-arn>", "at": "<aws.scheduler.scheduled-time>",
            "id": "<aws.scheduler.execution-id>", "attempt": "<aws.scheduler.attempt-number>"})},
    )  # fmt: skip
    assert platform.frontend is not None
    assert platform.frontend.schedules is not None
    schedule = platform.frontend.schedules.get("default", "once")
    fired = _wait(lambda: [f for f in _fired(endpoint, "ticker") if f["event"].get("arn") == SCHEDULE_ARN + "once"])
    scheduled = expression[3:-1] + "Z"
    assert fired[0]["event"] == {"arn": SCHEDULE_ARN + "once", "at": scheduled, "id": execution_id(schedule),
                                 "attempt": "1"}  # fmt: skip
    assert fired[0]["request_id"] == execution_id(schedule)
    lateness_ms = fired[0]["ms"] - datetime.fromisoformat(scheduled).timestamp() * 1000
    assert 0 <= lateness_ms < 5000
    # ActionAfterCompletion DELETE: the schedule is gone once its one occurrence fired.
    with pytest.raises(ClientError) as gone:
        scheduler.get_schedule(Name="once")
    assert _code(gone.value)[:2] == (404, "ResourceNotFoundException")
    time.sleep(1.0)  # nothing else is due: a second run would be a second FIRED line by now
    assert len([f for f in _fired(endpoint, "ticker") if f["event"].get("arn") == SCHEDULE_ARN + "once"]) == 1


def test_a_completed_one_time_schedule_stays_without_a_next_occurrence(
    scheduler: Any, target: str, endpoint: str, platform: DevPlatform
) -> None:
    _create(scheduler, "kept", target, ScheduleExpression=_at(1),
            Target={"Arn": target, "RoleArn": SCHEDULER_ROLE, "Input": '{"kept": true}'})  # fmt: skip
    _wait(lambda: [f for f in _fired(endpoint, "ticker") if f["event"] == {"kept": True}])
    assert platform.frontend is not None
    assert platform.frontend.schedules is not None
    stored = platform.frontend.schedules.get("default", "kept")
    assert stored.next_ms is None
    assert scheduler.get_schedule(Name="kept")["State"] == "ENABLED"
    scheduler.delete_schedule(Name="kept")


def test_a_disabled_schedule_never_fires(scheduler: Any, target: str, endpoint: str) -> None:
    _create(scheduler, "off", target, ScheduleExpression=_at(1), State="DISABLED",
            Target={"Arn": target, "RoleArn": SCHEDULER_ROLE, "Input": '{"off": true}'})  # fmt: skip
    _create(scheduler, "after-off", target, ScheduleExpression=_at(2),
            Target={"Arn": target, "RoleArn": SCHEDULER_ROLE, "Input": '{"after": true}'})  # fmt: skip
    _wait(lambda: [f for f in _fired(endpoint, "ticker") if f["event"] == {"after": True}])
    assert not [f for f in _fired(endpoint, "ticker") if f["event"] == {"off": True}]
    scheduler.delete_schedule(Name="off")
    scheduler.delete_schedule(Name="after-off")


def test_a_missing_function_goes_to_the_dead_letter_queue(scheduler: Any, endpoint: str) -> None:
    sqs = sqs_client(endpoint)
    url = sqs.create_queue(QueueName="schedule-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    missing = FUNCTION_ARN + "no-such-function"
    _create(scheduler, "orphan", missing, ScheduleExpression=_at(1),
            Target={"Arn": missing, "RoleArn": SCHEDULER_ROLE, "Input": '{"lost": 1}',
                    "DeadLetterConfig": {"Arn": queue_arn}})  # fmt: skip
    message = _wait(
        lambda: sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages")
    )[0]
    assert message["Body"] == '{"lost": 1}'
    attributes = {key: value["StringValue"] for key, value in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "ResourceNotFoundException"
    assert attributes["SCHEDULE_ARN"] == SCHEDULE_ARN + "orphan"
    assert attributes["TARGET_ARN"] == missing
    assert attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes
    scheduler.delete_schedule(Name="orphan")


# --------------------------------------------------------------------------------------- refusals

BAD_EXPRESSIONS = [
    "rate(0 minutes)",
    "rate(5 weeks)",
    "rate(-1 hours)",
    "rate(5minutes)",
    "cron(0 3 * * * *)",  # day-of-month and day-of-week both set
    "cron(0 3 ? * ? *)",
    "cron(0 3 * *)",
    "cron(61 3 * * ? *)",
    "cron(0 24 * * ? *)",
    "cron(0 3 32 * ? *)",
    "cron(0 3 ? * 8 *)",
    "cron(0 3 * * ? 2200)",
    "cron(0 3 * FOO ? *)",
    "cron(5-1 3 * * ? *)",
    "at(2030-02-30T00:00:00)",
    "at(2030-01-01 00:00:00)",
    "every day",
    "cron(0 3 * * ? *)" + " " * 300,
]


@pytest.mark.parametrize("expression", BAD_EXPRESSIONS)
def test_bad_expressions_are_refused(scheduler: Any, target: str, expression: str) -> None:
    with pytest.raises(ClientError) as refused:
        _create(scheduler, "bad-expression", target, ScheduleExpression=expression)
    assert _code(refused.value)[:2] == (400, "ValidationException")


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"ScheduleExpressionTimezone": "Mars/Olympus"}, "Invalid time zone"),
        ({"ScheduleExpressionTimezone": "../../etc/passwd"}, "Invalid time zone"),
        ({"KmsKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/abc"}, "KmsKeyArn is not supported"),
        ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE"}}, "MaximumWindowInMinutes is required"),
        ({"FlexibleTimeWindow": {"Mode": "OFF", "MaximumWindowInMinutes": 5}}, "must not be set"),
        ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1441}}, "less than or equal to 1440"),
        ({"StartDate": datetime.now(UTC) - timedelta(hours=1)}, "StartDate"),
        ({"EndDate": datetime.now(UTC) - timedelta(hours=1)}, "EndDate"),
        ({"StartDate": datetime.now(UTC) + timedelta(days=2), "EndDate": datetime.now(UTC) + timedelta(days=1)},
         "before the EndDate"),
        ({"Description": "x" * 513}, "less than or equal to 512"),
        ({"State": "PAUSED"}, "enum value set"),
        ({"ActionAfterCompletion": "ARCHIVE"}, "enum value set"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_by_name(scheduler: Any, target: str, extra: dict[str, Any], says: str) -> None:
    with pytest.raises(ClientError) as refused:
        _create(scheduler, "bad-setting", target, **extra)
    status, code, message = _code(refused.value)
    assert (status, code) == (400, "ValidationException")
    assert says in message


@pytest.mark.parametrize(
    ("target_doc", "says"),
    [
        ({"Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs"}, "Lambda function ARN"),
        ({"Arn": "ticker"}, "Lambda function ARN"),
        ({"Arn": "arn:aws:lambda:eu-west-1:000000000000:function:ticker"}, "not a function of account"),
        ({"Arn": "arn:aws:lambda:us-east-1:111111111111:function:ticker"}, "not a function of account"),
        ({"Input": "not json"}, "must be JSON"),
        ({"Input": '{"n": <aws.scheduler.unknown>}'}, "must be JSON"),
        ({"Input": json.dumps({"x": "y" * (1024 * 1024)})}, "at most"),
        ({"SqsParameters": {"MessageGroupId": "g"}}, "Target.SqsParameters is not supported"),
        ({"RoleArn": "not-a-role"}, "regular expression pattern"),
        ({"RetryPolicy": {"MaximumRetryAttempts": 186}}, "less than or equal to 185"),
        ({"DeadLetterConfig": {"Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:no-such-queue"}}, "names no queue"),
    ],
)
def test_bad_targets_are_refused_by_name(scheduler: Any, target: str, target_doc: dict[str, Any], says: str) -> None:
    with pytest.raises(ClientError) as refused:
        _create(scheduler, "bad-target", target, Target={"Arn": target, "RoleArn": SCHEDULER_ROLE, **target_doc})
    status, code, message = _code(refused.value)
    assert (status, code) == (400, "ValidationException")
    assert says in message


def test_other_groups_do_not_exist(scheduler: Any, target: str) -> None:
    with pytest.raises(ClientError) as create:
        _create(scheduler, "grouped", target, GroupName="team-a")
    assert _code(create.value)[:2] == (404, "ResourceNotFoundException")
    assert "Schedule group team-a does not exist" in _code(create.value)[2]
    with pytest.raises(ClientError) as listing:
        scheduler.list_schedules(GroupName="team-a")
    assert _code(listing.value)[:2] == (404, "ResourceNotFoundException")


def test_updating_or_getting_an_unknown_schedule_is_not_found(scheduler: Any, target: str) -> None:
    with pytest.raises(ClientError) as update:
        scheduler.update_schedule(Name="ghost", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
                                  Target={"Arn": target, "RoleArn": SCHEDULER_ROLE})  # fmt: skip
    assert _code(update.value) == (404, "ResourceNotFoundException", "Schedule ghost does not exist.")


@pytest.mark.parametrize(
    ("method", "path", "body", "says"),
    [
        ("POST", "/schedules/bad%20name", b"{}", "regular expression pattern"),
        ("POST", "/schedules/" + "n" * 65, b"{}", "less than or equal to 64"),
        ("POST", "/schedules/raw", b"not json", "not valid JSON"),
        ("POST", "/schedules/raw", b"[1, 2]", "must be a JSON object"),
        ("POST", "/schedules/raw", b'{"ScheduleExpression": "rate(1 hour)"}', "must not be null"),
        ("POST", "/schedules/raw", json.dumps({
            "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": "x", "RoleArn": SCHEDULER_ROLE}, "Surprise": 1}).encode(), "Unknown parameter Surprise"),
        ("POST", "/schedules/raw", json.dumps({
            "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF", "MaximumWindowInMinutes": "5"},
            "Target": {"Arn": "x", "RoleArn": SCHEDULER_ROLE}}).encode(), "must be an integer"),
        ("POST", "/schedules/raw", json.dumps({
            "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}, "StartDate": "tomorrow",
            "Target": {"Arn": "x", "RoleArn": SCHEDULER_ROLE}}).encode(), "timestamp"),
        ("POST", "/schedules/raw", json.dumps({
            "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": "x", "RoleArn": SCHEDULER_ROLE, "RetryPolicy": {"MaximumEventAgeInSeconds": 59}},
        }).encode(), "greater than or equal to 60"),
        ("POST", "/schedules/raw", b'{"Name": "other"}', "belongs in the URI"),
        ("POST", "/schedules/raw", b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        ("GET", "/schedules?MaxResults=0", b"", "greater than or equal to 1"),
        ("GET", "/schedules?MaxResults=101", b"", "less than or equal to 100"),
        ("GET", "/schedules?MaxResults=ten", b"", "must be an integer"),
        ("GET", "/schedules?Evil=1", b"", "Unknown query parameter"),
        ("GET", "/schedules?NextToken=garbage", b"", "NextToken"),
    ],
)  # fmt: skip
def test_malformed_and_hostile_requests_are_refused(
    endpoint: str, method: str, path: str, body: bytes, says: str
) -> None:
    status, kind, document = error_of(raw_request(endpoint, method, path, body, service="scheduler"))
    assert (status, kind) == (400, "ValidationException")
    assert says in document["Message"]


def test_an_oversized_body_is_refused(endpoint: str) -> None:
    status, kind, _ = error_of(raw_request(endpoint, "POST", "/schedules/big", b" " * (2 * 1024 * 1024),
                                           service="scheduler"))  # fmt: skip
    assert (status, kind) == (413, "RequestTooLargeException")


def test_schedules_are_signed_for_the_scheduler_service_and_only_admins_manage_them(
    endpoint: str, platform: DevPlatform
) -> None:
    unsigned = error_of(raw_request(endpoint, "GET", "/schedules", sign=False))
    assert unsigned[:2] == (403, "MissingAuthenticationTokenException")
    wrong_service = error_of(raw_request(endpoint, "GET", "/schedules", service="lambda"))
    assert wrong_service[0] == 403
    session = function_session(platform)
    denied = error_of(raw_request(endpoint, "GET", "/schedules", credentials=session, service="scheduler"))
    assert denied[:2] == (403, "AccessDeniedException")
    assert "scheduler:ListSchedules" in denied[2]["Message"]
