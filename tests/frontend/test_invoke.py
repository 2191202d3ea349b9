"""Invoking through the Lambda HTTP API with boto3, on the real embedded platform.

Results, handled and unhandled errors, Tail logs, versions, DryRun, async events, reserved and
provisioned concurrency, and the admin endpoints.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from tests.frontend.conftest import HANDLERS
from tests.frontend.harness import ROLE, make_zip, raw_request

CODE = make_zip({"app.py": HANDLERS})


def create(lam: LambdaClient, name: str, handler: str = "app.echo", **extra: Any) -> None:
    """Create a Python function from :data:`HANDLERS`."""
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler, Code={"ZipFile": CODE}, **extra
    )


def invoke(lam: LambdaClient, name: str, event: object, **extra: Any) -> tuple[dict[str, Any], Any]:
    """Invoke synchronously; ``(response, decoded payload)``."""
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **extra)
    body = answer["Payload"].read()
    return dict(answer), json.loads(body) if body else None


def headers(answer: Mapping[str, Any]) -> dict[str, str]:
    """The raw HTTP headers of a boto3 answer."""
    return dict(answer["ResponseMetadata"]["HTTPHeaders"])


def test_invoke_returns_the_result_and_the_executed_version(lam: LambdaClient) -> None:
    create(lam, "echo", Environment={"Variables": {"GREETING": "hello"}})
    answer, body = invoke(lam, "echo", {"n": 1})
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert answer["ExecutedVersion"] == "$LATEST"
    assert body == {"event": {"n": 1}, "version": "$LATEST", "env": "hello"}
    assert headers(answer)["x-amzn-requestid"]


def test_unhandled_error_sets_function_error_and_the_error_document(lam: LambdaClient) -> None:
    create(lam, "failing", "app.fail")
    answer, body = invoke(lam, "failing", {"why": "test"}, LogType="Tail")
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom: test"
    assert isinstance(body["stackTrace"], list)
    logs = base64.b64decode(answer["LogResult"]).decode()
    assert "about to fail" in logs
    assert "REPORT RequestId:" in logs


def test_handled_error_is_a_normal_result(lam: LambdaClient) -> None:
    """A function that returns an error-shaped document succeeded, as on AWS."""
    create(lam, "handled", "app.handled")
    answer, body = invoke(lam, "handled", {})
    assert "FunctionError" not in answer
    assert body == {"errorMessage": "handled", "errorType": "Handled"}


def test_tail_returns_at_most_4kb_of_this_invocations_log(lam: LambdaClient) -> None:
    create(lam, "tail", "app.echo")
    answer, _ = invoke(lam, "tail", {"pad": "x" * 10_000}, LogType="Tail")
    logs = base64.b64decode(answer["LogResult"])
    assert len(logs) <= 4096
    assert logs.decode(errors="replace").rstrip().splitlines()[-1].startswith("REPORT RequestId: ")
    answer, _ = invoke(lam, "tail", {})
    assert "LogResult" not in answer


def test_publish_version_then_invoke_it_while_latest_changes(lam: LambdaClient) -> None:
    create(lam, "versioned", Environment={"Variables": {"GREETING": "one"}})
    v1 = lam.publish_version(FunctionName="versioned")
    assert v1["Version"] == "1"
    lam.update_function_configuration(FunctionName="versioned", Environment={"Variables": {"GREETING": "two"}})
    answer, body = invoke(lam, "versioned", {}, Qualifier="1")
    assert answer["ExecutedVersion"] == "1"
    assert body["env"] == "one"
    assert body["version"] == "1"
    _, body = invoke(lam, "versioned", {})
    assert body["env"] == "two"
    assert body["version"] == "$LATEST"
    answer, body = invoke(lam, "versioned:1", {})
    assert answer["ExecutedVersion"] == "1"
    arn = "arn:aws:lambda:us-east-1:000000000000:function:versioned"
    answer, body = invoke(lam, arn, {}, Qualifier="1")
    assert body["env"] == "one"
    with pytest.raises(ClientError) as caught:
        invoke(lam, "versioned", {}, Qualifier="7")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_update_code_reaches_the_next_invoke(lam: LambdaClient) -> None:
    create(lam, "recode")
    lam.update_function_code(
        FunctionName="recode", ZipFile=make_zip({"app.py": "def echo(e, c):\n    return 'new code'\n"})
    )
    _, body = invoke(lam, "recode", {})
    assert body == "new code"


def test_dry_run_and_unknown_function(lam: LambdaClient) -> None:
    create(lam, "dry")
    answer = lam.invoke(FunctionName="dry", InvocationType="DryRun")
    assert answer["StatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="nope", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_invalid_json_payload_is_invalid_request_content(lam: LambdaClient) -> None:
    create(lam, "json")
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="json", Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_payload_limits_sync_6mb_async_1mb(lam: LambdaClient, endpoint: str) -> None:
    create(lam, "big")
    big = json.dumps({"x": "y" * (6 * 1024 * 1024)}).encode()
    status, hdrs, _ = raw_request(endpoint, "POST", "/2015-03-31/functions/big/invocations", big)
    assert (status, hdrs["x-amzn-errortype"]) == (413, "RequestTooLargeException")
    medium = json.dumps({"x": "y" * (1024 * 1024)}).encode()
    status, hdrs, _ = raw_request(
        endpoint, "POST", "/2015-03-31/functions/big/invocations", medium, {"X-Amz-Invocation-Type": "Event"}
    )
    assert (status, hdrs["x-amzn-errortype"]) == (413, "RequestTooLargeException")


def test_async_invoke_is_queued_and_runs(lam: LambdaClient, endpoint: str) -> None:
    create(lam, "later")
    answer = lam.invoke(FunctionName="later", InvocationType="Event", Payload=b'{"async": true}')
    assert answer["StatusCode"] == 202
    request_id = headers(answer)["x-amzn-requestid"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = raw_request(endpoint, "GET", "/_leasehold/v1/logs/later?limit=10")
        assert status == 200
        events = json.loads(body)["events"]
        if any(e["request_id"] == request_id for e in events):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the queued event did not run within 30 s")
    [event] = [e for e in events if e["request_id"] == request_id]
    assert '"async": true' in event["text"]
    assert event["version"] == "$LATEST"


def test_failed_async_events_reach_the_dead_letters(lam: LambdaClient, endpoint: str) -> None:
    create(lam, "async-fail", "app.fail")
    lam.put_function_event_invoke_config(FunctionName="async-fail", MaximumRetryAttempts=0)
    answer = lam.invoke(FunctionName="async-fail", InvocationType="Event", Payload=b"{}")
    request_id = headers(answer)["x-amzn-requestid"]
    deadline = time.monotonic() + 30
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, _, body = raw_request(endpoint, "GET", "/_leasehold/v1/dlq/async-fail?limit=5")
        assert status == 200
        items = json.loads(body)["items"]
        if items:
            break
        time.sleep(0.05)
    assert items, "the failed event never reached the dead letters"
    assert json.dumps(items).count(request_id) >= 1


def test_reserved_concurrency_throttles_the_extra_concurrent_invoke(lam: LambdaClient) -> None:
    create(lam, "reserved", "app.slow", Timeout=10)
    lam.put_function_concurrency(FunctionName="reserved", ReservedConcurrentExecutions=2)
    assert lam.get_function_concurrency(FunctionName="reserved")["ReservedConcurrentExecutions"] == 2

    def call(_: int) -> tuple[str, str]:
        try:
            lam.invoke(FunctionName="reserved", Payload=b'{"sleep": 2.0}')
        except ClientError as exc:
            return exc.response["Error"]["Code"], json.loads(exc.response["Error"].get("Message", "{}") and "{}")
        return "ok", ""

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(o for o, _ in pool.map(call, range(3)))
    assert outcomes == ["TooManyRequestsException", "ok", "ok"]
    lam.delete_function_concurrency(FunctionName="reserved")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="reserved")


def test_throttle_carries_the_reason(lam: LambdaClient, endpoint: str) -> None:
    create(lam, "zero")
    lam.put_function_concurrency(FunctionName="zero", ReservedConcurrentExecutions=0)
    status, hdrs, body = raw_request(endpoint, "POST", "/2015-03-31/functions/zero/invocations", b"{}")
    assert status == 429
    assert hdrs["x-amzn-errortype"] == "TooManyRequestsException"
    assert json.loads(body)["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_provisioned_concurrency_keeps_n_sandboxes_warm(lam: LambdaClient) -> None:
    create(lam, "provisioned", "app.slow", Timeout=10)
    lam.publish_version(FunctionName="provisioned")
    with pytest.raises(ClientError) as caught:
        lam.put_provisioned_concurrency_config(
            FunctionName="provisioned", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    answer = lam.put_provisioned_concurrency_config(
        FunctionName="provisioned", Qualifier="1", ProvisionedConcurrentExecutions=3
    )
    assert answer["RequestedProvisionedConcurrentExecutions"] == 3
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        config = lam.get_provisioned_concurrency_config(FunctionName="provisioned", Qualifier="1")
        if config["Status"] == "READY":
            break
        assert config["Status"] == "IN_PROGRESS"
        time.sleep(0.05)
    else:
        raise AssertionError("provisioned concurrency never became READY")
    assert config["AllocatedProvisionedConcurrentExecutions"] == 3

    together = threading.Barrier(3)

    def call(_: int) -> tuple[str, str, str]:
        together.wait(30)  # the three start at once and each holds its sandbox a second: they overlap
        answer = lam.invoke(FunctionName="provisioned", Qualifier="1", Payload=b'{"sleep": 1.0}', LogType="Tail")
        report = base64.b64decode(answer["LogResult"]).decode().splitlines()[-1]
        cold = headers(dict(answer))["x-leasehold-cold-start"]
        return cold, json.loads(answer["Payload"].read())["sandbox"], report

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(call, range(3)))
    assert [cold for cold, _, _ in results] == ["0", "0", "0"]
    assert len({sandbox for _, sandbox, _ in results}) == 3
    # Each is its sandbox's first invocation, initialised ahead of time: AWS reports no Init Duration.
    assert all(report.startswith("REPORT") and "Init Duration" not in report for _, _, report in results), results
    lam.delete_provisioned_concurrency_config(FunctionName="provisioned", Qualifier="1")
    with pytest.raises(ClientError):
        lam.get_provisioned_concurrency_config(FunctionName="provisioned", Qualifier="1")


def test_status_reports_partitions_workers_and_warm_functions(lam: LambdaClient, endpoint: str) -> None:
    create(lam, "status-fn")
    invoke(lam, "status-fn", {})
    status, _, body = raw_request(endpoint, "GET", "/_leasehold/v1/status")
    assert status == 200
    doc = json.loads(body)
    assert set(doc) == {"partitions", "workers", "functions", "queue_depth", "queues", "event_source_mappings"}
    assert doc["partitions"]
    assert all(p["leader_address"] for p in doc["partitions"])
    [worker] = doc["workers"]
    assert set(worker) == {"worker_id", "address", "zone", "memory_mb", "free_memory_mb", "sandboxes"}
    assert worker["sandboxes"] >= 1
    assert any(f["name"] == "status-fn" for f in doc["functions"])
    assert isinstance(doc["queue_depth"], int)


def test_delete_function_then_invoke_is_not_found(lam: LambdaClient) -> None:
    create(lam, "doomed")
    invoke(lam, "doomed", {})
    lam.delete_function(FunctionName="doomed")
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="doomed", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_sequential_invokes_at_reserved_one_are_never_throttled(lam: LambdaClient) -> None:
    """The lease is released after the answer, yet before the caller's next request reaches the leader."""
    create(lam, "one-at-a-time", "app.noop")
    lam.put_function_concurrency(FunctionName="one-at-a-time", ReservedConcurrentExecutions=1)
    cold = []
    for _ in range(30):
        answer = lam.invoke(FunctionName="one-at-a-time", Payload=b"{}")
        cold.append(headers(answer)["x-leasehold-cold-start"])
    assert cold.count("1") <= 1


def test_client_context_reaches_the_function(lam: LambdaClient) -> None:
    create(lam, "ctx", "app.ctx")
    context = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}}).encode()).decode()
    _, body = invoke(lam, "ctx", {}, ClientContext=context)
    assert body["client_context"] == {"custom": {"tenant": "t1"}}
    assert body["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:ctx"
    _, body = invoke(lam, "ctx", {}, Qualifier="$LATEST")
    assert body["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:ctx:$LATEST"
