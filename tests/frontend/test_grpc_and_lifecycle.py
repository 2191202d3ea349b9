"""The gRPC Invoke API, health, a second frontend process (``leasehold frontend``) on the same database,
and graceful stop with invocations in flight."""

from __future__ import annotations

import json
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mypy_boto3_lambda import LambdaClient

from assignment.dev import DevPlatform
from assignment.v1 import frontend_pb2 as pb
from assignment.v1 import frontend_pb2_grpc as pb_grpc
from tests.frontend.conftest import HANDLERS
from tests.frontend.harness import (
    ROLE,
    frontend_process,
    lambda_client,
    make_zip,
    new_key,
    raw_request,
    running_platform,
)
from workers.tls import Tls, channel

CODE = make_zip({"app.py": HANDLERS})


@pytest.fixture(scope="module")
def functions(lam: LambdaClient) -> None:
    """``g-echo``, ``g-fail`` (and version 1 of ``g-echo``)."""
    for name, handler in (("g-echo", "app.echo"), ("g-fail", "app.fail")):
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler, Code={"ZipFile": CODE})
    lam.publish_version(FunctionName="g-echo")


@pytest.fixture(scope="module")
def stub(platform: DevPlatform) -> pb_grpc.FrontendStub:
    """A blocking gRPC stub of the Frontend service."""
    client = Tls.load(platform.tls_dir / "client")  # the identity the ready line names
    return pb_grpc.FrontendStub(channel(platform.grpc_endpoint, client, "frontend"))


def error_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, str]:
    """``(code, leasehold-error-type, leasehold-reason)`` of a failed call."""
    assert isinstance(error, grpc.Call)
    meta: dict[str, str] = {str(k): str(v) for k, v in error.trailing_metadata() or ()}
    return error.code(), meta.get("leasehold-error-type", ""), meta.get("leasehold-reason", "")


def test_grpc_invoke(functions: None, stub: pb_grpc.FrontendStub) -> None:
    answer = stub.Invoke(pb.InvokeRequest(function_name="g-echo", payload=b'{"k": 2}', log_tail=True))
    assert answer.status_code == 200
    assert answer.function_error == ""
    assert json.loads(answer.payload)["event"] == {"k": 2}
    assert answer.executed_version == "$LATEST"
    assert answer.request_id
    assert "REPORT RequestId: " + answer.request_id in answer.log_result
    answer = stub.Invoke(pb.InvokeRequest(function_name="g-echo:1", payload=b"{}"))
    assert answer.executed_version == "1"
    assert answer.log_result == ""
    answer = stub.Invoke(pb.InvokeRequest(function_name="g-fail", payload=b"{}"))
    assert answer.function_error == "Unhandled"
    assert json.loads(answer.payload)["errorType"] == "ValueError"
    answer = stub.Invoke(pb.InvokeRequest(function_name="g-echo", invocation_type=pb.INVOCATION_TYPE_DRY_RUN))
    assert answer.status_code == 204
    answer = stub.Invoke(pb.InvokeRequest(function_name="g-echo", invocation_type=pb.INVOCATION_TYPE_EVENT))
    assert answer.status_code == 202
    assert answer.request_id


@pytest.mark.parametrize(
    ("request_", "code", "kind"),
    [
        (pb.InvokeRequest(function_name="missing"), grpc.StatusCode.NOT_FOUND, "ResourceNotFoundException"),
        (pb.InvokeRequest(function_name=""), grpc.StatusCode.INVALID_ARGUMENT, "ValidationException"),
        (pb.InvokeRequest(function_name="../etc"), grpc.StatusCode.INVALID_ARGUMENT, "ValidationException"),
        (
            pb.InvokeRequest(function_name="g-echo:1", qualifier="2"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidParameterValueException",
        ),
        (
            pb.InvokeRequest(function_name="g-echo", payload=b"{oops"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidRequestContentException",
        ),
        (
            pb.InvokeRequest(
                function_name="g-echo",
                payload=b'"' + b"x" * (1024 * 1024) + b'"',
                invocation_type=pb.INVOCATION_TYPE_EVENT,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "RequestTooLargeException",
        ),
        (
            pb.InvokeRequest(function_name="g-echo", invocation_type=pb.InvocationType.ValueType(42)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidParameterValueException",
        ),
        (
            pb.InvokeRequest(function_name="g-echo", client_context="***"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidRequestContentException",
        ),
    ],
)
def test_grpc_errors(
    functions: None, stub: pb_grpc.FrontendStub, request_: pb.InvokeRequest, code: grpc.StatusCode, kind: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Invoke(request_)
    assert error_of(caught.value)[:2] == (code, kind)


def test_grpc_throttle_carries_the_reason(lam: LambdaClient, stub: pb_grpc.FrontendStub) -> None:
    lam.create_function(
        FunctionName="g-zero", Runtime="python3.11", Role=ROLE, Handler="app.echo", Code={"ZipFile": CODE}
    )
    lam.put_function_concurrency(FunctionName="g-zero", ReservedConcurrentExecutions=0)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Invoke(pb.InvokeRequest(function_name="g-zero", payload=b"{}"))
    assert error_of(caught.value) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TooManyRequestsException",
        "ReservedFunctionConcurrentInvocationLimitExceeded",
    )


def test_a_caller_that_goes_away_does_not_keep_the_lease(lam: LambdaClient, stub: pb_grpc.FrontendStub) -> None:
    """With reserved concurrency 1, an invocation abandoned by its caller still releases its lease when it
    ends, instead of holding the function's only slot until the lease expires (timeout + margin)."""
    lam.create_function(
        FunctionName="g-abandoned", Runtime="python3.11", Role=ROLE, Handler="app.slow", Code={"ZipFile": CODE}
    )
    lam.update_function_configuration(FunctionName="g-abandoned", Timeout=30)
    lam.put_function_concurrency(FunctionName="g-abandoned", ReservedConcurrentExecutions=1)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Invoke(pb.InvokeRequest(function_name="g-abandoned", payload=b'{"sleep": 1.0}'), timeout=0.3)
    assert error_of(caught.value)[0] == grpc.StatusCode.DEADLINE_EXCEEDED

    def attempt() -> str:
        try:
            stub.Invoke(pb.InvokeRequest(function_name="g-abandoned", payload=b'{"sleep": 0}'))
        except grpc.RpcError as exc:
            return error_of(exc)[1]
        return "ok"

    deadline = time.monotonic() + 10
    while (outcome := attempt()) != "ok":
        assert outcome == "TooManyRequestsException"
        assert time.monotonic() < deadline, "the abandoned invocation kept its lease"
        time.sleep(0.05)


def test_health_is_serving(platform: DevPlatform) -> None:
    dial = channel(platform.grpc_endpoint, Tls.load(platform.tls_dir / "client"), "frontend")
    check = health_pb2_grpc.HealthStub(dial).Check  # type: ignore[attr-defined]
    answer: health_pb2.HealthCheckResponse = check(health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    dial.close()


def test_second_frontend_process_on_the_same_database(
    functions: None, platform: DevPlatform, lam: LambdaClient, tmp_path: Path
) -> None:
    assert platform.server is not None
    args = ["--journal", platform.journal_url, "--assignment", platform.server.address]
    args += ["--tls-dir", str(platform.tls_dir / "frontend")]  # dev's server and worker trust dev's CA
    with frontend_process(tmp_path / "frontend.log", *args) as endpoint:
        other = lambda_client(endpoint)
        answer = other.invoke(FunctionName="g-echo", Qualifier="1", Payload=b'{"from": "second"}')
        assert json.loads(answer["Payload"].read())["event"] == {"from": "second"}
        # A change through the first frontend is seen by the second within its cache TTL.
        lam.update_function_configuration(FunctionName="g-echo", Environment={"Variables": {"GREETING": "new"}})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            body = json.loads(other.invoke(FunctionName="g-echo", Payload=b"{}")["Payload"].read())
            if body["env"] == "new":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the second frontend never saw the new configuration")


def test_stop_finishes_invocations_in_flight(tmp_path: Path) -> None:
    with running_platform(tmp_path / "p") as (platform, loop):
        client = lambda_client(platform.http_endpoint)
        client.create_function(
            FunctionName="slow", Runtime="python3.11", Role=ROLE, Handler="app.slow", Code={"ZipFile": CODE}, Timeout=10
        )
        client.invoke(FunctionName="slow", Payload=b'{"sleep": 0}')  # warm
        assert platform.frontend is not None
        assert platform.frontend.http_api is not None
        api = platform.frontend.http_api
        with ThreadPoolExecutor(2) as pool:
            pending = [pool.submit(client.invoke, FunctionName="slow", Payload=b'{"sleep": 1.5}') for _ in range(2)]
            deadline = time.monotonic() + 20
            while api.in_flight < 2:
                assert time.monotonic() < deadline, "the invocations never started"
                time.sleep(0.01)
            loop.run(platform.frontend.stop())
            for future in pending:
                answer = future.result(30)
                assert answer["StatusCode"] == 200
                assert json.loads(answer["Payload"].read())["slept"] == 1.5
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            raw_request(platform.http_endpoint, "GET", "/_leasehold/v1/status")


def test_a_frontend_process_bootstraps_its_key_from_a_file_and_auth_none_is_open(
    platform: DevPlatform, tmp_path: Path
) -> None:
    assert platform.server is not None
    args = ["--journal", platform.journal_url, "--assignment", platform.server.address]
    key = new_key()
    path = tmp_path / "admin.key"
    path.write_text(f"{key[0]}:{key[1]}\n")
    with frontend_process(tmp_path / "file.log", *args, "--bootstrap-key-file", str(path), key=key) as endpoint:
        assert raw_request(endpoint, "GET", "/_leasehold/v1/status")[0] == 200
        assert raw_request(endpoint, "GET", "/_leasehold/v1/status", sign=False)[0] == 403
    assert key[1] not in (tmp_path / "file.log").read_text()  # the secret is never logged
    # The first platform's frontend shares the database: the bootstrapped key is valid there too.
    assert raw_request(platform.http_endpoint, "GET", "/_leasehold/v1/status", credentials=key)[0] == 200
    with frontend_process(tmp_path / "open.log", *args, "--auth", "none") as endpoint:
        status, _, body = raw_request(endpoint, "GET", "/_leasehold/v1/status", sign=False)
        assert status == 200
        assert "partitions" in json.loads(body)
    assert "event=auth_disabled" in (tmp_path / "open.log").read_text()
