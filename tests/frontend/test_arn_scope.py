"""What names a function or a runtime is held to the model and to this platform's one account and region:
an ARN of another region or account names nothing here (AWS's ResourceNotFoundException words), a
destination must be an ARN Leasehold can deliver to, and runtime lists hold the model's runtimes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient
from mypy_boto3_lambda.type_defs import DestinationConfigTypeDef

from tests.frontend.harness import ROLE, make_zip

CODE = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
HOME_ARN = "arn:aws:lambda:us-east-1:000000000000:function:scope"
COBOL: Any = "cobol"  # no runtime of the model (typed Any: the stubs know the enum)


def _error(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


@pytest.fixture(scope="module")
def function(lam: LambdaClient) -> str:
    lam.create_function(FunctionName="scope", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": CODE})  # fmt: skip
    return "scope"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("111111111111:function:scope", "Function not found: arn:aws:lambda:us-east-1:111111111111:function:scope"),
        ("arn:aws:lambda:us-east-1:111111111111:function:scope",
         "Function not found: arn:aws:lambda:us-east-1:111111111111:function:scope"),
        ("arn:aws:lambda:eu-west-1:000000000000:function:scope",
         "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"),
    ],
)  # fmt: skip
def test_another_account_or_region_names_no_function_here(lam: LambdaClient, function: str, name: str,
                                                          message: str) -> None:  # fmt: skip
    for call in (
        lambda: lam.get_function(FunctionName=name),
        lambda: lam.invoke(FunctionName=name, Payload=b"{}"),
        lambda: lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1),
        lambda: lam.create_alias(FunctionName=name, Name="live", FunctionVersion="$LATEST"),
    ):
        assert _error(call) == (404, "ResourceNotFoundException", message)
    # The same names in this account and region do name it, in each of the model's forms.
    for same in ("scope", "000000000000:function:scope", "function:scope", HOME_ARN):
        assert lam.get_function(FunctionName=same)["Configuration"]["FunctionArn"] == HOME_ARN


@pytest.mark.parametrize(
    ("destination", "status", "code", "words"),
    [
        ("scope", 400, "ValidationException", "Member must satisfy regular expression pattern"),
        ("not an arn", 400, "ValidationException", "Member must satisfy regular expression pattern"),
        ("kafka://broker-1", 400, "InvalidParameterValueException", "Leasehold has no Kafka"),
        ("arn:aws:lambda:us-east-1:111111111111:function:scope", 400, "InvalidParameterValueException",
         "is a function of another account or region"),
        ("arn:aws:lambda:eu-west-1:000000000000:function:scope", 400, "InvalidParameterValueException",
         "is a function of another account or region"),
    ],
)  # fmt: skip
def test_a_destination_is_an_arn_leasehold_can_deliver_to(
    lam: LambdaClient, function: str, destination: str, status: int, code: str, words: str
) -> None:
    config: DestinationConfigTypeDef = {"OnFailure": {"Destination": destination}}
    got = _error(lambda: lam.put_function_event_invoke_config(FunctionName=function, DestinationConfig=config))
    assert got[:2] == (status, code)
    assert words in got[2]
    assert "DestinationConfig.OnFailure.Destination" in got[2]
    config = {"OnFailure": {"Destination": HOME_ARN}}  # a function of this account and region is fine
    put = lam.put_function_event_invoke_config(FunctionName=function, DestinationConfig=config)
    assert put["DestinationConfig"] == config
    lam.delete_function_event_invoke_config(FunctionName=function)


def test_runtime_lists_hold_the_model_s_runtimes(lam: LambdaClient, function: str) -> None:
    status, code, message = _error(lambda: lam.publish_layer_version(
        LayerName="scope-layer", Content={"ZipFile": CODE}, CompatibleRuntimes=["python3.12", COBOL]))  # fmt: skip
    assert (status, code) == (400, "ValidationException")
    assert "Value 'cobol' at 'CompatibleRuntimes'" in message
    # Any runtime of the model may be declared (a layer's label), even one Leasehold does not run.
    published = lam.publish_layer_version(
        LayerName="scope-layer", Content={"ZipFile": CODE}, CompatibleRuntimes=["python3.12", "nodejs20.x"]
    )
    assert published["CompatibleRuntimes"] == ["python3.12", "nodejs20.x"]
    assert _error(lambda: lam.list_layers(CompatibleRuntime=COBOL))[:2] == (400, "InvalidParameterValueException")
    listed = lam.list_layers(CompatibleRuntime="nodejs20.x")["Layers"]
    assert [layer["LayerName"] for layer in listed] == ["scope-layer"]
