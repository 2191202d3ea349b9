"""Function credentials through the real stack: a function reads its own ASIA credentials from its
environment and, with boto3 and ``AWS_ENDPOINT_URL``, invokes another function; managing or reading
functions and the admin routes are AccessDenied in AWS's words; an expired, tampered, revoked or
deleted function's token is UnrecognizedClientException. The credentials appear neither in GetFunction,
nor in the database, nor in any log line."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy_boto3_lambda import LambdaClient

from assignment.dev import DevPlatform
from assignment.frontend.auth.sessions import (
    STATE_TTL_S,
    SessionCredentials,
    SessionIssuer,
    cluster_secret,
    revoke_sessions,
)
from tests.frontend.harness import ROLE, error_of, lambda_client, make_zip, raw_request
from tests.harness.lambda_clients import KeyPair

INVALID_TOKEN = "The security token included in the request is invalid."

CALLER = """
import json, os
import boto3
from botocore.config import Config

def handler(event, context):
    lam = boto3.client("lambda", config=Config(retries={"max_attempts": 1}))  # env: endpoint, region, keys
    answer = {
        "credentials": [os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")],
        "invoked": json.loads(lam.invoke(FunctionName=event["target"], Payload=b'{"a": 1}')["Payload"].read()),
        "denied": {},
    }
    calls = {
        "GetFunction": lambda: lam.get_function(FunctionName=event["target"]),
        "ListFunctions": lambda: lam.list_functions(),
        "CreateFunction": lambda: lam.create_function(
            FunctionName="intruder", Runtime="python3.11", Handler="app.handler", Role="arn:aws:iam::0:role/x",
            Code={"ZipFile": b"PK"}),
    }
    for name, call in calls.items():
        try:
            call()
            answer["denied"][name] = None
        except lam.exceptions.ClientError as exc:
            answer["denied"][name] = [exc.response["Error"]["Code"], exc.response["Error"]["Message"]]
    return answer
"""
CALLEE = "def handler(event, context):\n    return {'callee': event}\n"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def log_lines() -> Iterator[list[str]]:
    """Every log line of the in-process platform while these tests run."""
    handler = _Lines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _create(lam: LambdaClient, name: str, code: str, endpoint: str) -> None:
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE, Timeout=30,
        Code={"ZipFile": make_zip({"app.py": code})}, Environment={"Variables": {"AWS_ENDPOINT_URL": endpoint}},
    )  # fmt: skip


def _run(lam: LambdaClient, name: str, target: str) -> dict[str, object]:
    answer = lam.invoke(FunctionName=name, Payload=json.dumps({"target": target}).encode())
    body = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, body
    return dict(body)


@pytest.fixture(scope="module")
def caller(lam: LambdaClient, endpoint: str, log_lines: list[str]) -> dict[str, object]:
    """What the function ``caller`` did with its own credentials."""
    _create(lam, "callee", CALLEE, endpoint)
    _create(lam, "caller", CALLER, endpoint)
    return _run(lam, "caller", "callee")


def _credentials(answer: dict[str, object]) -> tuple[str, str, str]:
    """The (key id, secret, token) a function returned."""
    key, secret, token = (str(part) for part in answer["credentials"])  # type: ignore[attr-defined]
    return key, secret, token


def _pair(credentials: SessionCredentials) -> KeyPair:
    return credentials.access_key_id, credentials.secret_access_key, credentials.session_token


def _status(endpoint: str, credentials: KeyPair) -> tuple[int, str, dict[str, object]]:
    return error_of(raw_request(endpoint, "GET", "/2015-03-31/functions/callee", credentials=credentials))


def test_a_function_invokes_another_with_its_own_credentials_and_may_do_nothing_else(
    caller: dict[str, object],
) -> None:
    key, secret, token = _credentials(caller)
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", key)
    assert len(secret) == 40
    assert token
    assert caller["invoked"] == {"callee": {"a": 1}}
    role = "arn:aws:sts::000000000000:assumed-role/test/caller"
    denied = caller["denied"]
    assert isinstance(denied, dict)
    for operation, resource in (
        ("GetFunction", "arn:aws:lambda:us-east-1:000000000000:function:callee"),
        ("ListFunctions", "arn:aws:lambda:us-east-1:000000000000:function:*"),
        ("CreateFunction", "arn:aws:lambda:us-east-1:000000000000:function:*"),
    ):
        assert denied[operation] == [
            "AccessDeniedException",
            f"User: {role} is not authorized to perform: lambda:{operation} on resource: {resource} "
            f"because no identity-based policy allows the lambda:{operation} action",
        ]


def test_the_credentials_stay_out_of_getfunction_the_database_and_the_logs(
    caller: dict[str, object], lam: LambdaClient, platform: DevPlatform, log_lines: list[str]
) -> None:
    _, secret, token = _credentials(caller)
    variables = lam.get_function(FunctionName="caller")["Configuration"]["Environment"]["Variables"]
    assert set(variables) == {"AWS_ENDPOINT_URL"}
    for path in Path(platform.data_dir).glob("leasehold.db*"):
        data = path.read_bytes()
        assert token.encode() not in data, path
        assert secret.encode() not in data, path
    assert log_lines  # the platform did log while the function ran
    assert not [line for line in log_lines if token in line or secret in line]


def test_sessions_may_not_use_the_admin_routes(caller: dict[str, object], endpoint: str) -> None:
    credentials: KeyPair = _credentials(caller)
    status, kind, body = error_of(raw_request(endpoint, "GET", "/_leasehold/v1/status", credentials=credentials))
    assert (status, kind) == (403, "AccessDeniedException")
    assert "leasehold:Status" in str(body["message"])
    path = "/2015-03-31/functions/callee/invocations"
    assert raw_request(endpoint, "POST", path, b"{}", credentials=credentials)[0] == 200


def test_tampered_expired_or_foreign_tokens_are_unrecognized(
    caller: dict[str, object], endpoint: str, platform: DevPlatform
) -> None:
    key, secret, token = _credentials(caller)
    head, body, mac = token.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in (
        (key, secret, f"{head}.{flipped}.{mac}"),
        (key, secret, token + "x"),
        ("ASIA" + "A" * 16, secret, token),
    ):
        assert _status(endpoint, bad) == (403, "UnrecognizedClientException", {
            "Type": "User", "Message": INVALID_TOKEN, "message": INVALID_TOKEN})  # fmt: skip
    assert platform.frontend is not None
    assert platform.frontend.journal is not None
    issuer = SessionIssuer(cluster_secret(platform.frontend.journal))
    incarnation = lam_incarnation(platform, "caller")
    arn = "arn:aws:lambda:us-east-1:000000000000:function:caller"
    now = int(time.time() * 1000)
    fresh = issuer.issue(name="caller", arn=arn, incarnation=incarnation, role="test", now_ms=now)
    expired = issuer.issue(name="caller", arn=arn, incarnation=incarnation, role="test", now_ms=now, ttl_s=-1)
    assert (
        raw_request(endpoint, "POST", "/2015-03-31/functions/callee/invocations", b"{}", credentials=_pair(fresh))[0]
        == 200
    )
    assert _status(endpoint, _pair(expired))[:2] == (403, "UnrecognizedClientException")
    other = SessionIssuer(b"another cluster").issue(
        name="caller", arn=arn, incarnation=incarnation, role="test", now_ms=now
    )
    assert _status(endpoint, _pair(other))[:2] == (403, "UnrecognizedClientException")


def lam_incarnation(platform: DevPlatform, name: str) -> str:
    assert platform.frontend is not None
    assert platform.frontend.registry is not None
    return platform.frontend.registry.get(name).incarnation


def _refused_within(endpoint: str, credentials: KeyPair, bound_s: float) -> float:
    started = time.monotonic()
    path = "/2015-03-31/functions/callee/invocations"
    while raw_request(endpoint, "POST", path, b"{}", credentials=credentials)[0] != 403:
        assert time.monotonic() - started <= bound_s, "the session still works past the bound"
        time.sleep(0.05)  # pacing the polls; the deadline above decides
    return time.monotonic() - started


def test_a_deleted_recreated_or_revoked_functions_token_is_refused(
    lam: LambdaClient, endpoint: str, platform: DevPlatform
) -> None:
    _create(lam, "doomed", CALLER, endpoint)
    first: KeyPair = _credentials(_run(lam, "doomed", "callee"))
    lam.delete_function(FunctionName="doomed")
    _refused_within(endpoint, first, STATE_TTL_S + 0.5)
    _create(lam, "doomed", CALLER, endpoint)  # the same name, another incarnation
    second: KeyPair = _credentials(_run(lam, "doomed", "callee"))
    assert _status(endpoint, first)[:2] == (403, "UnrecognizedClientException")
    assert (
        raw_request(endpoint, "POST", "/2015-03-31/functions/callee/invocations", b"{}", credentials=second)[0] == 200
    )
    assert platform.frontend is not None
    assert platform.frontend.journal is not None
    revoke_sessions(platform.frontend.journal, "doomed")
    _refused_within(endpoint, second, STATE_TTL_S + 0.5)
    assert _status(endpoint, second) == (403, "UnrecognizedClientException", {
        "Type": "User", "Message": INVALID_TOKEN, "message": INVALID_TOKEN})  # fmt: skip
    admin = lambda_client(endpoint)
    assert admin.get_function(FunctionName="doomed")["Configuration"]["FunctionName"] == "doomed"
