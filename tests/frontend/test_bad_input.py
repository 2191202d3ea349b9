"""Hostile and malformed input on every route: the documented Lambda error, never a 500 or a traceback."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mypy_boto3_lambda import LambdaClient

from tests.frontend.harness import ROLE, error_of, make_zip, raw_request

CODE = make_zip({"app.py": "def handler(e, c):\n    return e\n"})
ZIP64 = base64.b64encode(CODE).decode()

#: (method, path) of every route that reads a JSON body, on an existing function "target".
BODY_ROUTES = [
    ("POST", "/2015-03-31/functions"),
    ("PUT", "/2015-03-31/functions/target/code"),
    ("PUT", "/2015-03-31/functions/target/configuration"),
    ("POST", "/2015-03-31/functions/target/versions"),
    ("PUT", "/2017-10-31/functions/target/concurrency"),
    ("PUT", "/2019-09-30/functions/target/provisioned-concurrency?Qualifier=1"),
    ("PUT", "/2019-09-25/functions/target/event-invoke-config"),
    ("POST", "/2018-10-31/layers/lib/versions"),
]
#: Every route with a function name in its path.
NAMED_ROUTES = [
    ("GET", "/2015-03-31/functions/{}"),
    ("DELETE", "/2015-03-31/functions/{}"),
    ("GET", "/2015-03-31/functions/{}/configuration"),
    ("PUT", "/2015-03-31/functions/{}/configuration"),
    ("PUT", "/2015-03-31/functions/{}/code"),
    ("POST", "/2015-03-31/functions/{}/versions"),
    ("GET", "/2015-03-31/functions/{}/versions"),
    ("POST", "/2015-03-31/functions/{}/invocations"),
    ("PUT", "/2017-10-31/functions/{}/concurrency"),
    ("DELETE", "/2017-10-31/functions/{}/concurrency"),
    ("GET", "/2019-09-30/functions/{}/concurrency"),
    ("GET", "/2019-09-30/functions/{}/provisioned-concurrency?Qualifier=1"),
    ("GET", "/2019-09-25/functions/{}/event-invoke-config"),
    ("GET", "/_leasehold/v1/logs/{}"),
    ("GET", "/_leasehold/v1/dlq/{}"),
]
USER_ERRORS = {
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "ValidationException",
    "RequestTooLargeException",
    "ResourceNotFoundException",
    "ResourceConflictException",
}


@pytest.fixture(scope="module", autouse=True)
def target(lam: LambdaClient) -> None:
    """A function ("target", with version 1) for routes that need one."""
    lam.create_function(
        FunctionName="target", Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}
    )
    lam.publish_version(FunctionName="target")


def check_user_error(answer: tuple[int, dict[str, str], bytes], *expected: str) -> str:
    """A 4xx Lambda error document (of one of ``expected`` types, if given); returns the type."""
    status, kind, body = error_of(answer)
    assert 400 <= status < 500, (status, kind, body)
    assert kind in (expected or USER_ERRORS), (status, kind, body)
    assert isinstance(body.get("Message"), str)
    assert "Traceback" not in body["Message"]
    return kind


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2, 3]", b'"a string"', b"null", b"\xff\xfe\x00", b"[" * 100_000, b'{"a": 1e999999}'],
    ids=["malformed", "array", "string", "null", "binary", "deep", "huge-number"],
)
def test_malformed_bodies(endpoint: str, method: str, path: str, body: bytes) -> None:
    check_user_error(raw_request(endpoint, method, path, body))


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_unknown_fields_are_refused(endpoint: str, method: str, path: str) -> None:
    body = json.dumps({"Surprise": 1, "FunctionName": "x", "Code": {"ZipFile": ZIP64}}).encode()
    check_user_error(raw_request(endpoint, method, path, body), "InvalidParameterValueException")


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_huge_bodies_are_too_large(endpoint: str, method: str, path: str) -> None:
    body = b'{"Description": "' + b"x" * 70_000_000 + b'"}'
    check_user_error(raw_request(endpoint, method, path, body), "RequestTooLargeException")


@pytest.mark.parametrize(("method", "template"), NAMED_ROUTES)
@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fetc%2Fpasswd", "..", "a%00b", "x" * 65, "bad%20name", "%E2%98%83", "arn:aws:s3:::bucket", "a:b:c:d"],
)
def test_hostile_names(endpoint: str, method: str, template: str, name: str) -> None:
    answer = raw_request(endpoint, method, template.format(name), b"{}" if method in ("PUT", "POST") else None)
    check_user_error(answer)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MemorySize", "128"),
        ("MemorySize", 64),
        ("MemorySize", 10_241),
        ("MemorySize", True),
        ("Timeout", 0),
        ("Timeout", 901),
        ("Timeout", 3.5),
        ("Handler", 7),
        ("Handler", "has space"),
        ("Runtime", "nodejs20.x"),
        ("Runtime", ["python3.11"]),
        ("Environment", {"Variables": {"AWS_REGION": "x"}}),
        ("Environment", {"Variables": {"1BAD": "x"}}),
        ("Environment", {"Variables": {"OK": 1}}),
        ("Environment", {"Variables": {"BIG": "x" * 5000}}),
        ("Environment", {"Vars": {}}),
        ("Environment", "A=B"),
        ("Layers", "arn"),
        ("Layers", ["arn:aws:lambda:us-east-1:000000000000:layer:missing:1"] * 6),
        ("Layers", ["arn:aws:lambda:us-east-1:000000000000:layer:missing:1"]),
        ("Code", {"ZipFile": "not base64!"}),
        ("Code", {"ZipFile": base64.b64encode(b"not a zip").decode()}),
        ("Code", {"S3Bucket": "b", "S3Key": "k"}),
        ("Code", {"ZipFile": ZIP64, "Extra": 1}),
        ("PackageType", "Image"),
        ("ImageConfig", {"Command": ["x"]}),
        ("Publish", "yes"),
        ("FunctionName", "../../etc"),
        ("FunctionName", None),
        ("Role", None),
    ],
)
def test_create_function_rejects_bad_values(endpoint: str, field: str, value: Any) -> None:
    doc: dict[str, Any] = {
        "FunctionName": "fresh",
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": ZIP64},
    }
    if value is None:
        del doc[field]
    else:
        doc[field] = value
    answer = raw_request(endpoint, "POST", "/2015-03-31/functions", json.dumps(doc).encode())
    check_user_error(answer, "InvalidParameterValueException", "ValidationException", "RequestTooLargeException")


def test_creating_twice_is_a_conflict(endpoint: str) -> None:
    doc = {
        "FunctionName": "target",
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "a.b",
        "Code": {"ZipFile": ZIP64},
    }
    answer = raw_request(endpoint, "POST", "/2015-03-31/functions", json.dumps(doc).encode())
    check_user_error(answer, "ResourceConflictException")
    assert answer[0] == 409


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Amz-Invocation-Type": "Sometimes"}, "InvalidParameterValueException"),
        ({"X-Amz-Log-Type": "Everything"}, "InvalidParameterValueException"),
        ({"X-Amz-Client-Context": "%%%not-base64"}, "InvalidRequestContentException"),
        ({"X-Amz-Client-Context": base64.b64encode(b"x" * 4000).decode()}, "InvalidParameterValueException"),
        ({"X-Amz-Client-Context": base64.b64encode(b"[1, 2]").decode()}, "InvalidRequestContentException"),
        ({"X-Amz-Client-Context": base64.b64encode(b"{nope").decode()}, "InvalidRequestContentException"),
    ],
)
def test_invoke_rejects_bad_headers(endpoint: str, headers: dict[str, str], expected: str) -> None:
    answer = raw_request(endpoint, "POST", "/2015-03-31/functions/target/invocations", b"{}", headers)
    check_user_error(answer, expected)


@pytest.mark.parametrize(
    "query",
    ["?Qualifier=%24LATEST%2F..", "?Qualifier=1&Qualifier=2", "?Qualifier=" + "9" * 200, "?Qualifier=$LATEST"],
)
def test_invoke_rejects_bad_qualifiers(endpoint: str, query: str) -> None:
    answer = raw_request(endpoint, "POST", "/2015-03-31/functions/target:1/invocations" + query, b"{}")
    check_user_error(answer)


@pytest.mark.parametrize(
    "query", ["?MaxItems=0", "?MaxItems=abc", "?MaxItems=99999999999999999999", "?FunctionVersion=SOME", "?Extra=1"]
)
def test_list_functions_rejects_bad_queries(endpoint: str, query: str) -> None:
    check_user_error(raw_request(endpoint, "GET", "/2015-03-31/functions/" + query))


@pytest.mark.parametrize("path", ["/_leasehold/v1/logs/target?limit=-1", "/_leasehold/v1/dlq/target?limit=x"])
def test_admin_rejects_bad_limits(endpoint: str, path: str) -> None:
    check_user_error(raw_request(endpoint, "GET", path), "InvalidParameterValueException")


def test_unknown_routes_are_json_errors(endpoint: str) -> None:
    status, kind, body = error_of(raw_request(endpoint, "GET", "/2015-03-31/nothing/here"))
    assert status == 404
    assert kind == "ResourceNotFoundException"
    assert body["Message"]
    status, kind, _ = error_of(raw_request(endpoint, "PATCH", "/2015-03-31/functions/target"))
    assert status == 405
    assert kind


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["FunctionName", "Runtime", "Role", "Handler", "Code", "MemorySize", "Timeout", "Environment"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
            max_leaves=8,
        ),
    )
)
def test_fuzzed_create_bodies_never_fail_the_server(endpoint: str, doc: dict[str, Any]) -> None:
    status, headers, _ = raw_request(endpoint, "POST", "/2015-03-31/functions", json.dumps(doc).encode())
    assert status < 500, (status, headers.get("x-amzn-errortype"), doc)
