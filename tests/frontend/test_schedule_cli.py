"""``leasehold schedule ...`` against the embedded platform: the commands are boto3's EventBridge Scheduler
client, so a schedule made with them is the API's, and its errors are the API's (one line, exit code 2)."""

from __future__ import annotations

import json
import time

from mypy_boto3_lambda import LambdaClient

from tests.frontend.conftest import Run
from tests.frontend.harness import ROLE, make_zip, raw_request

ARN = "arn:aws:lambda:us-east-1:000000000000:function:cli-tick"
CODE = make_zip({"app.py": "import json\n\ndef handler(event, context):\n    print('FIRED', json.dumps(event))\n"})


def _fired(endpoint: str) -> list[object]:
    status, _, body = raw_request(endpoint, "GET", "/_leasehold/v1/logs/cli-tick?limit=200")
    assert status == 200
    return [
        json.loads(line.split("FIRED ", 1)[1])
        for entry in json.loads(body)["events"]
        for line in str(entry["text"]).splitlines()
        if "FIRED " in line
    ]


def test_schedule_commands_end_to_end(leasehold: Run, lam: LambdaClient, endpoint: str) -> None:
    run = leasehold
    lam.create_function(FunctionName="cli-tick", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": CODE})  # fmt: skip
    options = ("--timezone", "Europe/Berlin", "--retries", "2", "--max-age", "600", "--window", "15")
    code, out, err = run("schedule", "create", "cli-nightly", "cron(0 3 * * ? *)", "--function", "cli-tick", *options)
    assert (code, err) == (0, "")
    assert out.strip() == "arn:aws:scheduler:us-east-1:000000000000:schedule/default/cli-nightly"
    shown = json.loads(run("schedule", "show", "cli-nightly")[1])
    assert shown["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert shown["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert shown["Target"]["Arn"] == ARN
    assert shown["Target"]["RoleArn"] == "arn:aws:iam::000000000000:role/leasehold-scheduler"
    assert shown["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 600}

    # disable and enable rewrite the schedule whole with the other state, and nothing else of it changes.
    assert run("schedule", "disable", "cli-nightly")[0] == 0
    disabled = json.loads(run("schedule", "show", "cli-nightly")[1])
    assert disabled["State"] == "DISABLED"
    assert {k: v for k, v in disabled.items() if k not in ("State", "LastModificationDate", "RequestId")} == {
        k: v for k, v in shown.items() if k not in ("State", "LastModificationDate", "RequestId")
    }
    assert run("schedule", "enable", "cli-nightly")[0] == 0
    assert json.loads(run("schedule", "show", "cli-nightly")[1])["State"] == "ENABLED"

    # A rate schedule without a start fires at once, with the --input event.
    code, _, err = run("schedule", "create", "cli-now", "rate(1 hour)", "--function", ARN, "--input", '{"n": 7}')
    assert (code, err) == (0, "")
    deadline = time.monotonic() + 20
    while {"n": 7} not in _fired(endpoint) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {"n": 7} in _fired(endpoint)

    code, out, _ = run("schedule", "list", "--prefix", "cli-")
    assert code == 0
    assert [line.split() for line in out.splitlines()[1:]] == [
        ["cli-nightly", "ENABLED", ARN],
        ["cli-now", "ENABLED", ARN],
    ]
    code, out, _ = run("schedule", "list", "--prefix", "cli-", "--state", "DISABLED", "--json")
    assert json.loads(out) == {"Schedules": []}
    for name in ("cli-nightly", "cli-now"):
        assert run("schedule", "delete", name)[0] == 0
    code, _, err = run("schedule", "show", "cli-nightly")
    assert (code, err.strip()) == (2, "error: ResourceNotFoundException: Schedule cli-nightly does not exist.")


def test_schedule_command_input_is_checked(leasehold: Run) -> None:
    run = leasehold
    code, _, err = run("schedule", "create", "cli-ghost", "rate(1 hour)", "--function", "cli-no-such-function")
    assert code == 2
    assert err.startswith("error: ResourceNotFoundException:")
    code, _, err = run("schedule", "create", "cli-bad", "cron(0 3 * * *)", "--function", ARN)
    assert code == 2
    assert err.startswith("error: ValidationException: Invalid cron expression")
    code, _, err = run("schedule", "create", "cli-bad", "rate(1 hour)", "--function", ARN, "--input", "{nope")
    assert code == 2
    assert err.startswith("error: ValidationException: --input is not JSON")
    assert run("schedule", "create", "cli-bad", "rate(1 hour)", "--function", ARN, "--window", "0")[0] == 2
    assert run("schedule", "create", "cli-bad", "rate(1 hour)", "--function", ARN, "--retries", "186")[0] == 2
    assert run("schedule", "create", "cli-bad", "rate(1 hour)", "--function", ARN, "--max-age", "59")[0] == 2
    assert run("schedule", "list", "--state", "PAUSED")[0] == 2
    code, _, err = run("schedule", "create", "bad name", "rate(1 hour)", "--function", ARN)
    assert code == 2
    assert err.startswith("error: ValidationException:")
