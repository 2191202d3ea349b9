"""Function settings that used to be accepted and ignored, through boto3 on the embedded platform: each now
works or is refused by name. EphemeralStorage sizes the sandbox's /tmp; RevisionId makes
UpdateFunctionConfiguration, UpdateFunctionCode and PublishVersion conditional (PreconditionFailedException);
TracingConfig PassThrough is kept and Active refused; VpcConfig and KMSKeyArn are accepted only empty;
PublishTo and RuntimeConfig are refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from tests.frontend.harness import ROLE, error_of, make_zip, raw_request

TMP_SIZE = """
import os
def handler(event, context):
    st = os.statvfs("/tmp")
    return st.f_blocks * st.f_frsize
"""
CODE = make_zip({"app.py": TMP_SIZE})
MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def _create(lam: LambdaClient, name: str, **extra: object) -> dict[str, object]:
    return dict(
        lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE},
            **extra,  # type: ignore[arg-type]
        )
    )  # fmt: skip


def _error(exc: object) -> tuple[int, str, str]:
    assert isinstance(exc, ClientError)
    return (
        exc.response["ResponseMetadata"]["HTTPStatusCode"],
        exc.response["Error"]["Code"],
        exc.response["Error"]["Message"],
    )


def _invoke(lam: LambdaClient, name: str) -> object:
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer
    return json.loads(answer["Payload"].read())


def test_ephemeral_storage_sizes_tmp_and_is_echoed(lam: LambdaClient) -> None:
    created = _create(lam, "roomy", EphemeralStorage={"Size": 2048})
    assert created["EphemeralStorage"] == {"Size": 2048}
    assert _invoke(lam, "roomy") == 2048 * 1024 * 1024
    lam.update_function_configuration(FunctionName="roomy", EphemeralStorage={"Size": 10_240})
    assert lam.get_function_configuration(FunctionName="roomy")["EphemeralStorage"] == {"Size": 10_240}
    assert _invoke(lam, "roomy") == 10_240 * 1024 * 1024  # the update reached a new sandbox
    _create(lam, "default-tmp")
    assert _invoke(lam, "default-tmp") == 512 * 1024 * 1024


@pytest.mark.parametrize(
    ("size", "code"),
    [(511, "ValidationException"), (10_241, "InvalidParameterValueException"), (32_769, "ValidationException")],
)
def test_ephemeral_storage_outside_awss_range_is_refused(
    lam: LambdaClient, endpoint: str, size: int, code: str
) -> None:
    """The model's range (512 to 32,768) is a ValidationException; past AWS's 10,240 for a function is an
    InvalidParameterValueException."""
    body: dict[str, Any] = {"FunctionName": "cramped", "Runtime": "python3.12", "Role": ROLE, "Handler": "app.handler",
            "Code": {"ZipFile": base64.b64encode(CODE).decode()}, "EphemeralStorage": {"Size": size}}  # fmt: skip
    status, kind, answer = error_of(raw_request(endpoint, "POST", "/2015-03-31/functions", json.dumps(body).encode()))
    assert (status, kind) == (400, code), answer
    assert "Size" in answer["message"]
    assert str(size) in answer["message"]
    bad_values: list[object] = [{"Size": "big"}, {}, {"Size": 1024, "Extra": 1}, []]
    for bad in bad_values:
        body["EphemeralStorage"] = bad
        refused = error_of(raw_request(endpoint, "POST", "/2015-03-31/functions", json.dumps(body).encode()))
        assert refused[0] == 400, (bad, refused)
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="cramped")


def test_revision_id_makes_the_writes_conditional(lam: LambdaClient) -> None:
    first = str(_create(lam, "guarded")["RevisionId"])
    updated = lam.update_function_configuration(FunctionName="guarded", Description="one", RevisionId=first)
    second = updated["RevisionId"]
    assert second != first
    calls: dict[str, Callable[[], object]] = {
        "UpdateFunctionConfiguration": lambda: lam.update_function_configuration(
            FunctionName="guarded", Description="stale", RevisionId=first),
        "UpdateFunctionCode": lambda: lam.update_function_code(
            FunctionName="guarded", ZipFile=CODE, RevisionId=first),
        "PublishVersion": lambda: lam.publish_version(FunctionName="guarded", RevisionId=first),
    }  # fmt: skip
    for operation, call in calls.items():
        with pytest.raises(ClientError) as stale:
            call()
        assert _error(stale.value) == (412, "PreconditionFailedException", MISMATCH), operation
    assert lam.get_function_configuration(FunctionName="guarded")["Description"] == "one"  # nothing changed
    assert lam.list_versions_by_function(FunctionName="guarded")["Versions"][-1]["Version"] == "$LATEST"
    third = lam.update_function_code(FunctionName="guarded", ZipFile=CODE, RevisionId=second)["RevisionId"]
    assert lam.publish_version(FunctionName="guarded", RevisionId=third)["Version"] == "1"


def test_tracing_vpc_and_kms_work_or_are_refused_by_name(lam: LambdaClient) -> None:
    created = _create(
        lam, "plainly", TracingConfig={"Mode": "PassThrough"}, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []},
        KMSKeyArn="",
    )  # fmt: skip
    assert created["TracingConfig"] == {"Mode": "PassThrough"}
    refusals: dict[str, tuple[dict[str, Any], str]] = {
        "TracingConfig": ({"TracingConfig": {"Mode": "Active"}}, "X-Ray"),
        "VpcConfig": ({"VpcConfig": {"SubnetIds": ["subnet-0abc"], "SecurityGroupIds": ["sg-1"]}}, "network"),
        "KMSKeyArn": ({"KMSKeyArn": "arn:aws:kms:us-east-1:000000000000:key/1234"}, "customer managed key"),
    }
    for name, (setting, why) in refusals.items():
        with pytest.raises(ClientError) as refused:
            lam.update_function_configuration(FunctionName="plainly", **setting)
        status, code, message = _error(refused.value)
        assert (status, code) == (400, "InvalidParameterValueException"), name
        assert name in message, message
        assert why in message, message
        with pytest.raises(ClientError):
            _create(lam, "never", **setting)
    with pytest.raises(ClientError) as bad_mode:
        lam.update_function_configuration(FunctionName="plainly", TracingConfig={"Mode": "Sometimes"})  # type: ignore[typeddict-item]
    assert _error(bad_mode.value)[0] == 400
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="never")


def test_publish_to_and_runtime_config_are_refused(lam: LambdaClient, endpoint: str) -> None:
    _create(lam, "fixed")
    path = "/2015-03-31/functions/fixed"
    requests = [
        ("POST", path + "/versions", {"PublishTo": "LATEST_PUBLISHED"}, "PublishTo"),
        ("PUT", path + "/code", {"ZipFile": base64.b64encode(CODE).decode(), "PublishTo": "LATEST_PUBLISHED"},
         "PublishTo"),
        ("PUT", path + "/configuration", {"RuntimeConfig": {}}, "RuntimeConfig"),
        ("PUT", path + "/code", {"ZipFile": base64.b64encode(CODE).decode(), "Architectures": ["arm64"]},
         "arm64"),
        ("PUT", path + "/code", {"ZipFile": base64.b64encode(CODE).decode(), "Architectures": ["sparc"]},
         "Architectures"),
        ("PUT", path + "/code", {"ZipFile": base64.b64encode(CODE).decode(), "SourceKMSKeyArn": "arn:aws:kms:x"},
         "SourceKMSKeyArn"),
        ("POST", "/2015-03-31/functions", {"FunctionName": "other", "Runtime": "python3.12", "Role": ROLE,
         "Handler": "app.handler", "Code": {"ZipFile": base64.b64encode(CODE).decode(), "S3ObjectStorageMode": "COPY"}},
         "S3ObjectStorageMode"),
    ]  # fmt: skip
    for method, where, body, named in requests:
        status, kind, answer = error_of(raw_request(endpoint, method, where, json.dumps(body).encode()))
        expected = "ValidationException" if "sparc" in json.dumps(body) else "InvalidParameterValueException"
        assert (status, kind) == (400, expected), (where, body, answer)
        assert named in answer["message"], answer
    assert lam.list_versions_by_function(FunctionName="fixed")["Versions"][-1]["Version"] == "$LATEST"
