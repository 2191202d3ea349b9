"""Function tags through boto3 and raw HTTP on the embedded platform: TagResource, UntagResource, ListTags,
Tags on CreateFunction returned by GetFunction, and what is refused (AWS's limit of 50, bad keys and values,
the reserved ``aws:`` prefix, qualified and foreign ARNs, other resource kinds, unknown functions)."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from tests.frontend.harness import ROLE, error_of, make_zip, raw_request

CODE = make_zip({"app.py": "def handler(event, context):\n    return 1\n"})
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def _create(lam: LambdaClient, name: str, **extra: object) -> None:
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE},
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def _code(call: object) -> tuple[int, str, str]:
    assert isinstance(call, ClientError)
    error = call.response["Error"]
    return call.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


def _tags_path(arn: str) -> str:
    return "/2017-03-31/tags/" + urllib.parse.quote(arn, safe="")


def test_tags_on_create_are_returned_and_changed_by_tag_and_untag(lam: LambdaClient) -> None:
    _create(lam, "tagged", Tags={"team": "media", "env": "prod"})
    assert lam.get_function(FunctionName="tagged")["Tags"] == {"team": "media", "env": "prod"}
    assert lam.list_tags(Resource=ARN + "tagged")["Tags"] == {"team": "media", "env": "prod"}
    revision = lam.get_function_configuration(FunctionName="tagged")["RevisionId"]
    lam.tag_resource(Resource=ARN + "tagged", Tags={"env": "staging", "owner": "ana@example.com", "empty": ""})
    assert lam.list_tags(Resource=ARN + "tagged")["Tags"] == {
        "team": "media", "env": "staging", "owner": "ana@example.com", "empty": ""}  # fmt: skip
    lam.untag_resource(Resource=ARN + "tagged", TagKeys=["team", "not-there"])
    assert lam.list_tags(Resource=ARN + "tagged")["Tags"] == {"env": "staging", "owner": "ana@example.com", "empty": ""}
    # Tags belong to the function: the configuration (and its RevisionId) is unchanged.
    assert lam.get_function_configuration(FunctionName="tagged")["RevisionId"] == revision
    lam.untag_resource(Resource=ARN + "tagged", TagKeys=["env", "owner", "empty"])
    assert lam.list_tags(Resource=ARN + "tagged")["Tags"] == {}
    assert "Tags" not in lam.get_function(FunctionName="tagged")


def test_a_function_created_again_starts_without_the_old_tags(lam: LambdaClient) -> None:
    _create(lam, "reborn", Tags={"gen": "1"})
    lam.delete_function(FunctionName="reborn")
    with pytest.raises(ClientError) as gone:
        lam.list_tags(Resource=ARN + "reborn")
    assert _code(gone.value)[:2] == (404, "ResourceNotFoundException")
    assert _code(gone.value)[2].startswith("Function not found: ")
    _create(lam, "reborn")
    assert lam.list_tags(Resource=ARN + "reborn")["Tags"] == {}


def test_more_than_fifty_tags_are_refused_and_change_nothing(lam: LambdaClient) -> None:
    fifty = {f"k{i}": str(i) for i in range(50)}
    with pytest.raises(ClientError) as too_many:
        _create(lam, "crowded", Tags={**fifty, "one-more": "x"})
    assert _code(too_many.value)[:2] == (400, "InvalidParameterValueException")
    assert "at most 50 tags" in _code(too_many.value)[2]
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="crowded")  # nothing was created
    _create(lam, "crowded", Tags=fifty)
    with pytest.raises(ClientError) as over:
        lam.tag_resource(Resource=ARN + "crowded", Tags={"k50": "x"})
    assert _code(over.value)[:2] == (400, "InvalidParameterValueException")
    assert "50" in _code(over.value)[2]
    lam.tag_resource(Resource=ARN + "crowded", Tags={"k0": "replaced"})  # replacing a value adds no tag
    assert lam.list_tags(Resource=ARN + "crowded")["Tags"] == {**fifty, "k0": "replaced"}


@pytest.fixture(scope="module")
def victim(lam: LambdaClient) -> str:
    """A tagged function the hostile requests aim at."""
    _create(lam, "victim", Tags={"keep": "me"})
    return "victim"


@pytest.mark.parametrize(
    ("tags", "code", "names"),
    [
        ({"aws:cloudformation:stack-name": "x"}, "InvalidParameterValueException", "aws:"),
        ({"AWS:Owner": "x"}, "InvalidParameterValueException", "aws:"),
        ({"k" * 129: "x"}, "ValidationException", "tags"),
        ({"": "x"}, "ValidationException", "tags"),
        ({"semi;colon": "x"}, "ValidationException", "tags"),
        ({"ok": "v" * 257}, "ValidationException", "ok"),
        ({"ok": "<script>"}, "ValidationException", "ok"),
        ({"ok": 7}, "ValidationException", "ok"),
        ({"ok": None}, "ValidationException", "ok"),
    ],
)
def test_hostile_tags_are_refused_by_name(
    lam: LambdaClient, endpoint: str, victim: str, tags: object, code: str, names: str
) -> None:
    body = json.dumps({"Tags": tags}).encode()
    status, kind, answer = error_of(raw_request(endpoint, "POST", _tags_path(ARN + victim), body))
    assert (status, kind) == (400, code), answer
    assert names in answer["message"]
    create = {"FunctionName": "hostile", "Runtime": "python3.12", "Role": ROLE, "Handler": "app.handler",
              "Code": {"ZipFile": base64.b64encode(CODE).decode()}, "Tags": tags}  # fmt: skip
    created = error_of(raw_request(endpoint, "POST", "/2015-03-31/functions", json.dumps(create).encode()))
    assert created[:2] == (400, code), created  # the same check on CreateFunction, which creates nothing
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="hostile")
    assert lam.list_tags(Resource=ARN + victim)["Tags"] == {"keep": "me"}


def test_bad_resources_and_bodies_are_refused(lam: LambdaClient, endpoint: str) -> None:
    _create(lam, "plain")
    cases = {
        ARN + "plain:1": (400, "InvalidParameterValueException", "unqualified"),
        ARN + "plain:$LATEST": (400, "InvalidParameterValueException", "unqualified"),
        "arn:aws:lambda:eu-west-1:000000000000:function:plain": (404, "ResourceNotFoundException", "not found"),
        "arn:aws:lambda:us-east-1:111111111111:function:plain": (404, "ResourceNotFoundException", "not found"),
        ARN + "nobody": (404, "ResourceNotFoundException", "not found"),
        "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:0a1b2c3d-0000-0000-0000-000000000000": (
            400, "InvalidParameterValueException", "functions only"),
        "plain": (400, "ValidationException", "Lambda function ARN"),
        "arn:aws:s3:::bucket": (400, "ValidationException", "Lambda function ARN"),
    }  # fmt: skip
    for arn, (status, code, words) in cases.items():
        answer = error_of(raw_request(endpoint, "GET", _tags_path(arn)))
        assert answer[:2] == (status, code), (arn, answer)
        assert words in answer[2]["message"], (arn, answer)
    path = _tags_path(ARN + "plain")
    assert error_of(raw_request(endpoint, "POST", path, b"{}"))[:2] == (400, "ValidationException")
    assert error_of(raw_request(endpoint, "POST", path, b"{not json"))[:2] == (400, "InvalidRequestContentException")
    not_a_map = error_of(raw_request(endpoint, "POST", path, b'{"Tags": ["a"]}'))
    assert not_a_map[:2] == (400, "InvalidParameterValueException")
    assert "Tags" in not_a_map[2]["message"]
    assert error_of(raw_request(endpoint, "POST", path, b'{"Tags": {}, "Extra": 1}'))[0] == 400
    assert error_of(raw_request(endpoint, "DELETE", path))[:2] == (400, "ValidationException")  # no tagKeys
    assert error_of(raw_request(endpoint, "DELETE", path + "?tagKeys=aws%3Ax"))[:2] == (
        400, "InvalidParameterValueException")  # fmt: skip
    assert error_of(raw_request(endpoint, "DELETE", path + "?tagKeys=a&other=1"))[:2] == (
        400, "InvalidParameterValueException")  # fmt: skip
    many = "&".join(f"tagKeys=k{i}" for i in range(51))
    assert error_of(raw_request(endpoint, "DELETE", path + "?" + many))[:2] == (400, "InvalidParameterValueException")
    assert error_of(raw_request(endpoint, "GET", path + "?x=1"))[:2] == (400, "InvalidParameterValueException")
    assert lam.list_tags(Resource=ARN + "plain")["Tags"] == {}
