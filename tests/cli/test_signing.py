"""The people's CLI signs every request, the Lambda API's (boto3) and the admin endpoints' (urllib with
botocore's SigV4Auth), with the standard chain's credentials: checked with the frontend's own verifier."""

from __future__ import annotations

import time

import pytest

from assignment.frontend.auth.sigv4 import HttpRequest, check_signature, read_claim
from assignment.frontend.types import InvalidSignatureException
from tests.cli.conftest import KEY, Run
from tests.cli.fake_frontend import FakeFrontend


def test_every_request_of_the_cli_is_signed_with_the_chains_key(cli: Run, fake: FakeFrontend) -> None:
    assert cli("status").code == 0
    assert cli("function", "list").code == 0
    assert cli("logs", "anything").code in (0, 2)
    assert {r.path.split("/")[1] for r in fake.requests} >= {"_leasehold", "2015-03-31"}
    for recorded in fake.requests:
        request = HttpRequest(recorded.method, recorded.target, recorded.raw_headers, recorded.body)
        claim = read_claim(request, region="us-east-1", now=time.time())
        assert claim.access_key_id == KEY[0]
        check_signature(request, claim, KEY[1])
        with pytest.raises(InvalidSignatureException):
            check_signature(request, claim, "another/secret/another/secret/another/se")


def test_without_credentials_the_cli_says_how_to_get_them(
    cli: Run, fake: FakeFrontend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    for command in (("status",), ("function", "list")):
        result = cli(*command)
        assert result.code == 2
        assert "error: NoCredentials:" in result.err
        assert "AWS_PROFILE" in result.err
    assert fake.requests == []


def test_a_profile_the_chain_cannot_find_is_one_error_line(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nowhere")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = cli("status")
    assert result.code == 2
    assert result.err.startswith("error: ProfileNotFound:")
