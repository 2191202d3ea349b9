"""SigV4 on the real frontend: boto3, botocore (the AWS CLI's signing path), urllib signed by botocore's
signer and curl's own ``--aws-sigv4`` pass; every way a signature can be missing, wrong, stale, mis-scoped,
malformed or hostile gets AWS's error (status, ``x-amzn-ErrorType``, message). Admin routes and unknown
routes are covered like the Lambda API."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from unittest import mock

import botocore.session
import pytest
from botocore.config import Config
from mypy_boto3_lambda import LambdaClient

from assignment.dev import DevPlatform
from assignment.frontend.auth.sigv4 import SIGNATURE_MISMATCH
from tests.frontend.harness import ROLE, error_of, lambda_client, make_zip, new_key, raw_request
from tests.harness.lambda_clients import KeyPair, credentials_for, signed_headers

INVALID_TOKEN = "The security token included in the request is invalid."
LIST = "/2015-03-31/functions/"


@pytest.fixture(scope="module")
def target(lam: LambdaClient) -> str:
    """A function to call."""
    lam.create_function(
        FunctionName="signed", Runtime="python3.11", Handler="app.handler", Role=ROLE,
        Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return {'got': e}\n"})},
    )  # fmt: skip
    return "signed"


@contextlib.contextmanager
def clock_shifted(seconds: float) -> Iterator[None]:
    """botocore signs as if its clock were ``seconds`` off."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(seconds=seconds)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now):
        yield


def refused(answer: tuple[int, dict[str, str], bytes], kind: str, message: str | re.Pattern[str]) -> None:
    status, error_type, body = error_of(answer)
    assert (status, error_type) == (403, kind), body
    assert body["Type"] == "User"
    if isinstance(message, str):
        assert body["message"] == message
    else:
        assert message.fullmatch(body["message"]), body["message"]


def signed(
    endpoint: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    **sign: object,
) -> dict[str, str]:
    return signed_headers(method, endpoint + path, headers, body, **sign)  # type: ignore[arg-type]


def test_boto3_botocore_urllib_and_curl_all_pass(endpoint: str, target: str) -> None:
    key = credentials_for(endpoint)
    boto = lambda_client(endpoint)
    assert json.loads(boto.invoke(FunctionName=target, Payload=b'{"a": 1}')["Payload"].read()) == {"got": {"a": 1}}
    # The AWS CLI builds a plain botocore client and signs through it.
    session = botocore.session.get_session()
    cli: LambdaClient = session.create_client(  # type: ignore[assignment]
        "lambda", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id=key[0],
        aws_secret_access_key=key[1], config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    try:
        arn = f"arn:aws:lambda:us-east-1:000000000000:function:{target}"
        assert cli.get_function(FunctionName=arn, Qualifier="$LATEST")["Configuration"]["FunctionName"] == target
        assert cli.list_versions_by_function(FunctionName=target, MaxItems=1)["Versions"]
    finally:
        cli.close()
    status, _, body = raw_request(endpoint, "POST", f"/2015-03-31/functions/{target}/invocations", b'{"b": 2}')
    assert (status, json.loads(body)) == (200, {"got": {"b": 2}})
    # curl signs on its own (an implementation that shares nothing with botocore).
    answer = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:lambda",
         "--user", f"{key[0]}:{key[1]}", "-X", "POST", "-H", "Content-Type: application/json",
         "--data-binary", '{"c": 3}', f"{endpoint}/2015-03-31/functions/{target}/invocations"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    out, _, code = answer.stdout.rpartition("\n")
    assert (code, json.loads(out)) == ("200", {"got": {"c": 3}}), answer.stdout


def test_an_unsigned_request_is_missing_its_token_on_every_route(endpoint: str) -> None:
    for method, path in (
        ("GET", LIST),
        ("POST", "/2015-03-31/functions/signed/invocations"),
        ("GET", "/_leasehold/v1/status"),
        ("GET", "/_leasehold/v1/logs/signed"),
        ("GET", "/2015-03-31/no/such/route"),
    ):
        refused(
            raw_request(endpoint, method, path, b"{}" if method == "POST" else None, sign=False),
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )


def test_a_signed_request_to_an_unknown_route_is_not_found(endpoint: str) -> None:
    status, kind, _ = error_of(raw_request(endpoint, "GET", "/2015-03-31/no/such/route"))
    assert (status, kind) == (404, "ResourceNotFoundException")


def test_a_wrong_secret_is_an_invalid_signature(endpoint: str) -> None:
    key_id = credentials_for(endpoint)[0]
    headers = signed(endpoint, "GET", LIST, credentials=(key_id, "x" * 40))
    refused(
        raw_request(endpoint, "GET", LIST, headers=headers, sign=False), "InvalidSignatureException", SIGNATURE_MISMATCH
    )
    wrong = lambda_client(endpoint, credentials=(key_id, "y" * 40))
    with pytest.raises(wrong.exceptions.ClientError) as error:
        wrong.list_functions()
    assert error.value.response["Error"] == {"Code": "InvalidSignatureException", "Message": SIGNATURE_MISMATCH}


def test_an_unknown_key_or_a_session_token_on_a_key_is_unrecognized(endpoint: str) -> None:
    refused(
        raw_request(endpoint, "GET", LIST, headers=signed(endpoint, "GET", LIST, credentials=new_key()), sign=False),
        "UnrecognizedClientException",
        INVALID_TOKEN,
    )
    key = credentials_for(endpoint)
    with_token = signed(endpoint, "GET", LIST, credentials=(key[0], key[1], "made-up-token"))
    refused(
        raw_request(endpoint, "GET", LIST, headers=with_token, sign=False), "UnrecognizedClientException", INVALID_TOKEN
    )


def test_a_tampered_body_or_signed_header_is_an_invalid_signature(endpoint: str, target: str) -> None:
    path = f"/2015-03-31/functions/{target}/invocations"
    headers = signed(endpoint, "POST", path, b'{"n": 1}', {"X-Amz-Invocation-Type": "DryRun"})
    refused(
        raw_request(endpoint, "POST", path, b'{"n": 2}', headers, sign=False),
        "InvalidSignatureException",
        SIGNATURE_MISMATCH,
    )
    tampered = {**headers, "X-Amz-Invocation-Type": "Event"}
    refused(
        raw_request(endpoint, "POST", path, b'{"n": 1}', tampered, sign=False),
        "InvalidSignatureException",
        SIGNATURE_MISMATCH,
    )
    # A signed x-amz-content-sha256 must be the body's: a hash that matches the signature but not the body fails.
    claimed = signed(endpoint, "POST", path, b'{"n": 1}', {"X-Amz-Content-SHA256": "0" * 64})
    refused(
        raw_request(endpoint, "POST", path, b'{"n": 1}', claimed, sign=False),
        "InvalidSignatureException",
        SIGNATURE_MISMATCH,
    )
    status, _, _ = raw_request(endpoint, "POST", path, b'{"n": 1}', headers, sign=False)
    assert status == 204  # the untampered request (a DryRun) passes


@pytest.mark.parametrize(
    ("shift_s", "pattern"),
    [
        (-400, r"Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)"),
        (400, r"Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 5 min\.\)"),
    ],
)
def test_a_stale_date_is_refused_both_ways(endpoint: str, shift_s: float, pattern: str) -> None:
    with clock_shifted(shift_s):
        headers = signed(endpoint, "GET", LIST)
    refused(
        raw_request(endpoint, "GET", LIST, headers=headers, sign=False),
        "InvalidSignatureException",
        re.compile(pattern),
    )
    with clock_shifted(shift_s / 2):  # inside the window: fine
        assert raw_request(endpoint, "GET", LIST, headers=signed(endpoint, "GET", LIST), sign=False)[0] == 200


def test_another_region_or_service_in_the_scope_is_refused(endpoint: str) -> None:
    in_eu = signed(endpoint, "GET", LIST, region="eu-west-1")
    refused(
        raw_request(endpoint, "GET", LIST, headers=in_eu, sign=False),
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'.",
    )
    for_s3 = signed(endpoint, "GET", LIST, service="s3")
    refused(
        raw_request(endpoint, "GET", LIST, headers=for_s3, sign=False),
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'lambda'.",
    )
    session = botocore.session.get_session()
    key = credentials_for(endpoint)
    other: LambdaClient = session.create_client(  # type: ignore[assignment]
        "lambda", region_name="eu-west-1", endpoint_url=endpoint, aws_access_key_id=key[0],
        aws_secret_access_key=key[1], config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    try:
        with pytest.raises(other.exceptions.ClientError) as error:
            other.list_functions()
        assert error.value.response["Error"]["Code"] == "InvalidSignatureException"
    finally:
        other.close()


def _without(authorization: str, part: str) -> str:
    algorithm, _, rest = authorization.partition(" ")
    kept = [p for p in rest.split(", ") if not p.startswith(part + "=")]
    return f"{algorithm} {', '.join(kept)}"


@pytest.mark.parametrize("part", ["Credential", "SignedHeaders", "Signature"])
def test_an_authorization_header_without_a_part_names_it(endpoint: str, part: str) -> None:
    headers = signed(endpoint, "GET", LIST)
    headers["Authorization"] = _without(headers["Authorization"], part)
    status, kind, body = error_of(raw_request(endpoint, "GET", LIST, headers=headers, sign=False))
    assert (status, kind) == (403, "IncompleteSignatureException")
    assert body["message"].startswith(f"Authorization header requires '{part}' parameter.")
    assert body["message"].count("requires") == 1


def test_other_malformed_authorization_headers_are_incomplete(endpoint: str) -> None:
    good = signed(endpoint, "GET", LIST)
    date = good["X-Amz-Date"]
    key_id = credentials_for(endpoint)[0]
    auth = good["Authorization"]
    four = re.sub(r"Credential=[^,]+", f"Credential={key_id}/{date[:8]}/us-east-1/lambda", auth)
    cases = {
        "no date": (
            {k: v for k, v in good.items() if k != "X-Amz-Date"},
            "requires existence of either a 'X-Amz-Date'",
        ),
        "no equal sign": ({**good, "Authorization": auth + ", Junk"}, "not a valid key=value pair"),
        "four elements": ({**good, "Authorization": four}, "Credential must have exactly 5 slash-delimited elements"),
        "host unsigned": (
            {**good, "Authorization": auth.replace("SignedHeaders=host;", "SignedHeaders=")},
            "'Host' or ':authority' must be a 'SignedHeader'",
        ),
        "date unsigned": (
            {**good, "Authorization": auth.replace(";x-amz-date", "")},
            "'X-Amz-Date' must be a 'SignedHeader'",
        ),
        "bad date": ({**good, "X-Amz-Date": "2024-01-01T00:00:00Z"}, "Date must be in ISO-8601 'basic format'"),
        "another scheme": (
            {**good, "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9"},
            "Authorization header requires 'Credential'",
        ),
    }
    for name, (headers, expected) in cases.items():
        status, kind, body = error_of(raw_request(endpoint, "GET", LIST, headers=headers, sign=False))
        assert (status, kind) == (403, "IncompleteSignatureException"), (name, body)
        assert expected in body["message"], (name, body["message"])


def test_a_presigned_get_passes_until_it_expires(endpoint: str, target: str) -> None:
    lam = lambda_client(endpoint)
    url = lam.generate_presigned_url("get_function", Params={"FunctionName": target}, ExpiresIn=120)
    parts = urllib.parse.urlsplit(url)
    path = parts.path + "?" + parts.query
    status, _, body = raw_request(endpoint, "GET", path, sign=False)
    assert (status, json.loads(body)["Configuration"]["FunctionName"]) == (200, target)
    tampered = path.replace(f"/functions/{target}", "/functions/other")
    refused(raw_request(endpoint, "GET", tampered, sign=False), "InvalidSignatureException", SIGNATURE_MISMATCH)
    with clock_shifted(-200):  # signed 200 s ago, valid for 120 s
        old = lam.generate_presigned_url("get_function", Params={"FunctionName": target}, ExpiresIn=120)
    parts = urllib.parse.urlsplit(old)
    refused(
        raw_request(endpoint, "GET", parts.path + "?" + parts.query, sign=False),
        "InvalidSignatureException",
        re.compile(r"Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 120 sec\.\)"),
    )
    for missing in ("X-Amz-Signature", "X-Amz-Credential"):
        query = "&".join(p for p in parts.query.split("&") if not p.startswith(missing + "="))
        status, kind, document = error_of(raw_request(endpoint, "GET", parts.path + "?" + query, sign=False))
        assert (status, kind) == (403, "IncompleteSignatureException"), document
        assert document["message"].startswith("AWS query-string parameters must include")


def _send(endpoint: str, method: str, path: str, headers: list[tuple[str, str | bytes]]) -> tuple[int, str]:
    """A request with exactly these headers, repeated or not ASCII as given: (status, x-amzn-ErrorType)."""
    parts = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("x-amzn-ErrorType") or ""
    finally:
        connection.close()


def test_hostile_authorization_headers_are_refused_and_the_frontend_keeps_serving(endpoint: str) -> None:
    good = signed(endpoint, "GET", LIST)
    base = [(k, v) for k, v in good.items() if k != "Authorization"]
    auth = good["Authorization"]
    assert _send(endpoint, "GET", LIST, [*base, ("Authorization", auth)])[0] == 200
    # Repeated headers: which one would the signature be about?
    assert _send(endpoint, "GET", LIST, [*base, ("Authorization", auth), ("Authorization", auth)]) == (
        403,
        "IncompleteSignatureException",
    )
    assert _send(endpoint, "GET", LIST, [*base, ("X-Amz-Date", good["X-Amz-Date"]), ("Authorization", auth)]) == (
        403,
        "IncompleteSignatureException",
    )
    # Garbage just under aiohttp's header limit, and over it (refused by the HTTP parser itself).
    assert _send(endpoint, "GET", LIST, [*base, ("Authorization", "AWS4-HMAC-SHA256 " + "A=" * 4000)]) == (
        403,
        "IncompleteSignatureException",
    )
    assert _send(endpoint, "GET", LIST, [*base, ("Authorization", "x" * 20_000)])[0] in (400, 431)
    # Not ASCII: in the key id, in the signature, in a signed header's value.
    for bad in (
        auth.replace("Credential=AKIA", "Credential=ÄKIA"),
        re.sub(r"Signature=\w+", "Signature=zürich", auth),
    ):
        status, kind = _send(endpoint, "GET", LIST, [*base, ("Authorization", bad.encode())])
        assert status == 403, kind
        assert kind in ("UnrecognizedClientException", "InvalidSignatureException")
    with_header = signed(endpoint, "GET", LIST, headers={"X-Odd": "plain"})
    assert "x-odd" in with_header["Authorization"]
    assert _send(endpoint, "GET", LIST, list(with_header.items()))[0] == 200
    sent: list[tuple[str, str | bytes]] = [(k, v) for k, v in with_header.items() if k != "X-Odd"]
    sent.append(("X-Odd", "pläin".encode()))
    assert _send(endpoint, "GET", LIST, sent) == (403, "InvalidSignatureException")
    assert raw_request(endpoint, "GET", LIST)[0] == 200


def test_a_new_key_works_and_a_deleted_key_is_refused_within_the_cache_ttl(platform: DevPlatform) -> None:
    assert platform.frontend is not None
    keys, ttl = platform.frontend.keys, platform.frontend.config.key_cache_ttl_s
    assert keys is not None
    key = keys.create("short-lived")
    pair: KeyPair = (key.access_key_id, key.secret)
    endpoint = platform.http_endpoint
    assert (
        raw_request(endpoint, "GET", LIST, headers=signed(endpoint, "GET", LIST, credentials=pair), sign=False)[0]
        == 200
    )
    assert keys.delete(key.access_key_id)
    deleted_at = time.monotonic()
    while True:
        answer = raw_request(endpoint, "GET", LIST, headers=signed(endpoint, "GET", LIST, credentials=pair), sign=False)
        if answer[0] == 403:
            break
        assert time.monotonic() - deleted_at <= ttl + 0.5, "a deleted key still works past the cache TTL"
        time.sleep(0.05)  # pacing the polls, not waiting for an outcome: the deadline above decides
    elapsed = time.monotonic() - deleted_at
    refused(answer, "UnrecognizedClientException", INVALID_TOKEN)
    assert elapsed <= ttl + 0.5
