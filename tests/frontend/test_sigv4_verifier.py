"""The SigV4 verifier alone (pure, a fixed clock): requests signed by botocore verify, whatever their path,
query or repeated headers; presigned URLs in both payload forms; every change of a signed part fails."""

from __future__ import annotations

import datetime
import urllib.parse
from unittest import mock

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from assignment.frontend.auth.sigv4 import CLOCK_SKEW_S, Claim, HttpRequest, check_signature, read_claim
from assignment.frontend.types import InvalidSignatureException, LambdaError

KEY = Credentials("AKIAABCDEFGHIJKLMNOP", "s" * 40)
NOW = datetime.datetime(2025, 6, 1, 12, 0, 0)
NOW_S = NOW.replace(tzinfo=datetime.UTC).timestamp()
HOST = "127.0.0.1:9000"


def _signed(method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None) -> HttpRequest:
    """What the frontend receives when botocore signs ``method target`` at NOW."""
    request = AWSRequest(method=method, url=f"http://{HOST}{target}", data=body, headers=headers or {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(KEY, "lambda", "us-east-1").add_auth(request)
    return HttpRequest(method, target, (("Host", HOST), *request.headers.items()), body)


def _verify(request: HttpRequest, now: float = NOW_S, secret: str = KEY.secret_key) -> Claim:
    claim = read_claim(request, region="us-east-1", now=now)
    check_signature(request, claim, secret)
    return claim


@pytest.mark.parametrize(
    "target",
    [
        "/2015-03-31/functions/",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations",
        "/2015-03-31/functions/f/versions?Marker=2&MaxItems=10",
        "/2015-03-31/functions/f?Qualifier=%24LATEST",
        "/2015-03-31/functions/a/../f//configuration",
        "/_leasehold/v1/logs/f?limit=5",
        "/2015-03-31/functions/?b=2&a=1&a=0",
    ],
)
def test_botocore_signed_requests_verify(target: str) -> None:
    claim = _verify(_signed("GET", target))
    assert claim.access_key_id == KEY.access_key


def test_a_changed_path_query_or_method_fails() -> None:
    good = _signed("GET", "/2015-03-31/functions/f?Qualifier=1")
    for target in ("/2015-03-31/functions/g?Qualifier=1", "/2015-03-31/functions/f?Qualifier=2"):
        changed = HttpRequest("GET", target, good.headers, b"")
        with pytest.raises(InvalidSignatureException):
            _verify(changed)
    with pytest.raises(InvalidSignatureException):
        _verify(HttpRequest("DELETE", good.target, good.headers, b""))
    with pytest.raises(InvalidSignatureException):
        _verify(good, secret="t" * 40)


def test_repeated_signed_header_values_are_joined_as_aws_does() -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/2015-03-31/functions/")
    request.headers["X-Multi"] = "a"
    request.headers["X-Multi"] = "b"  # HTTPHeaders appends: two values of one header
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(KEY, "lambda", "us-east-1").add_auth(request)
    headers = (("Host", HOST), *request.headers.items())
    _verify(HttpRequest("GET", "/2015-03-31/functions/", headers, b""))
    reordered = (*(h for h in headers if h != ("X-Multi", "a")), ("X-Multi", "a"))
    with pytest.raises(InvalidSignatureException):
        _verify(HttpRequest("GET", "/2015-03-31/functions/", reordered, b""))


def test_the_clock_window_is_five_minutes_each_way() -> None:
    request = _signed("GET", "/2015-03-31/functions/")
    _verify(request, now=NOW_S + CLOCK_SKEW_S)
    _verify(request, now=NOW_S - CLOCK_SKEW_S)
    for now in (NOW_S + CLOCK_SKEW_S + 1, NOW_S - CLOCK_SKEW_S - 1):
        with pytest.raises(InvalidSignatureException, match=r"Signature (expired|not yet current)"):
            _verify(request, now=now)


@pytest.mark.parametrize("unsigned_payload", [False, True])
def test_presigned_urls_verify_in_either_payload_form(unsigned_payload: bool) -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/2015-03-31/functions/f?Qualifier=1")
    signer = SigV4QueryAuth(KEY, "lambda", "us-east-1", expires=60)
    if unsigned_payload:
        signer.payload = lambda request: "UNSIGNED-PAYLOAD"  # type: ignore[method-assign]
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        signer.add_auth(request)
    parts = urllib.parse.urlsplit(str(request.url))
    target = f"{parts.path}?{parts.query}"
    presigned = HttpRequest("GET", target, (("Host", HOST),), b"")
    assert _verify(presigned, now=NOW_S + 60).presigned
    with pytest.raises(InvalidSignatureException, match="Signature expired"):
        _verify(presigned, now=NOW_S + 61)
    with pytest.raises(LambdaError, match="Only one auth mechanism allowed"):
        _verify(HttpRequest("GET", target, (("Host", HOST), ("Authorization", "AWS4-HMAC-SHA256 x=y")), b""))


def test_a_body_is_covered_by_its_hash() -> None:
    request = _signed("POST", "/2015-03-31/functions/f/invocations", b'{"a": 1}')
    _verify(request)
    with pytest.raises(InvalidSignatureException):
        _verify(HttpRequest(request.method, request.target, request.headers, b'{"a": 2}'))
