"""DeadLetterConfig and queue destinations through boto3 against the embedded platform (real worker): the
configuration is stored, echoed and kept by published versions, removed by an empty TargetArn; targets
that are no existing standard queue of the account and region are refused; and a failed async event of a
real function arrives in its dead-letter queue, read back with boto3's SQS client.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from tests.frontend.conftest import HANDLERS
from tests.frontend.harness import ROLE, make_zip
from tests.harness.lambda_clients import sqs_client

CODE = make_zip({"app.py": HANDLERS})
QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:"


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    """A boto3 SQS client for the platform, with the queues these tests use."""
    client = sqs_client(endpoint)
    for name in ("dl-one", "dl-two", "dl-e2e", "dl-records"):
        client.create_queue(QueueName=name)
    client.create_queue(QueueName="dl-fifo.fifo", Attributes={"FifoQueue": "true"})
    return client


def create(lam: LambdaClient, name: str, handler: str = "app.echo", **extra: Any) -> dict[str, Any]:
    answer: Any = lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler, Code={"ZipFile": CODE}, **extra
    )
    return dict(answer)


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def test_dead_letter_config_is_stored_echoed_and_kept_by_versions(lam: LambdaClient, sqs: Any) -> None:
    one, two = QUEUE_ARN + "dl-one", QUEUE_ARN + "dl-two"
    created = create(lam, "dl-echo", DeadLetterConfig={"TargetArn": one}, Publish=True)
    assert created["DeadLetterConfig"] == {"TargetArn": one}
    assert lam.get_function(FunctionName="dl-echo")["Configuration"]["DeadLetterConfig"] == {"TargetArn": one}
    updated = lam.update_function_configuration(FunctionName="dl-echo", DeadLetterConfig={"TargetArn": two})
    assert updated["DeadLetterConfig"] == {"TargetArn": two}
    assert lam.get_function_configuration(FunctionName="dl-echo")["DeadLetterConfig"] == {"TargetArn": two}
    # Version 1 was published with the first queue and keeps it.
    assert lam.get_function_configuration(FunctionName="dl-echo", Qualifier="1")["DeadLetterConfig"] == {
        "TargetArn": one
    }
    versions = {v["Version"]: v for v in lam.list_versions_by_function(FunctionName="dl-echo")["Versions"]}
    assert (versions["$LATEST"]["DeadLetterConfig"], versions["1"]["DeadLetterConfig"]) == (
        {"TargetArn": two},
        {"TargetArn": one},
    )
    [listed] = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == "dl-echo"]
    assert listed["DeadLetterConfig"] == {"TargetArn": two}
    # Another change leaves it alone; an empty TargetArn removes it.
    assert lam.update_function_configuration(FunctionName="dl-echo", Timeout=5)["DeadLetterConfig"] == {
        "TargetArn": two
    }
    removed = lam.update_function_configuration(FunctionName="dl-echo", DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in removed
    assert "DeadLetterConfig" not in lam.get_function_configuration(FunctionName="dl-echo")


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [
        (QUEUE_ARN + "dl-missing", "InvalidParameterValueException", "does not exist"),
        ("arn:aws:sqs:us-east-1:111111111111:dl-one", "InvalidParameterValueException", "account 000000000000"),
        ("arn:aws:sqs:eu-west-1:000000000000:dl-one", "InvalidParameterValueException", "region us-east-1"),
        ("arn:aws:sns:us-east-1:000000000000:topic", "InvalidParameterValueException", "no SNS"),
        ("arn:aws:s3:::bucket", "InvalidParameterValueException", "not an SQS queue ARN"),
        (QUEUE_ARN + "dl-fifo.fifo", "InvalidParameterValueException", "FIFO"),
        ("dl-one", "ValidationException", "regular expression"),
    ],
)
def test_bad_dead_letter_targets_are_refused(lam: LambdaClient, sqs: Any, target: str, code: str, words: str) -> None:
    with pytest.raises(ClientError) as caught:
        create(lam, "dl-refused", DeadLetterConfig={"TargetArn": target})
    assert error_of(caught)[0] == code
    assert words in error_of(caught)[1]
    if code == "InvalidParameterValueException":
        assert target in error_of(caught)[1]
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="dl-refused")  # nothing was created


def test_queue_destinations_are_checked_when_configured(lam: LambdaClient, sqs: Any) -> None:
    create(lam, "dl-destined")
    records = QUEUE_ARN + "dl-records"
    put = lam.put_function_event_invoke_config(
        FunctionName="dl-destined", DestinationConfig={"OnFailure": {"Destination": records}}
    )
    assert put["DestinationConfig"] == {"OnFailure": {"Destination": records}}
    for bad in (QUEUE_ARN + "dl-missing", "arn:aws:sns:us-east-1:000000000000:topic"):
        with pytest.raises(ClientError) as caught:
            lam.update_function_event_invoke_config(
                FunctionName="dl-destined", DestinationConfig={"OnSuccess": {"Destination": bad}}
            )
        assert error_of(caught)[0] == "InvalidParameterValueException"
        assert "DestinationConfig.OnSuccess.Destination" in error_of(caught)[1]
    got = lam.get_function_event_invoke_config(FunctionName="dl-destined")
    assert got["DestinationConfig"] == {"OnFailure": {"Destination": records}}


def test_a_failed_async_event_arrives_in_the_dead_letter_queue(lam: LambdaClient, sqs: Any) -> None:
    create(lam, "dl-fails", "app.fail", DeadLetterConfig={"TargetArn": QUEUE_ARN + "dl-e2e"})
    lam.put_function_event_invoke_config(FunctionName="dl-fails", MaximumRetryAttempts=0)
    answer = lam.invoke(FunctionName="dl-fails", InvocationType="Event", Payload=b'{"why": "e2e"}')
    request_id = answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    url = sqs.get_queue_url(QueueName="dl-e2e")["QueueUrl"]
    deadline = time.monotonic() + 60
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MessageAttributeNames=["All"])
        messages = got.get("Messages", [])
    assert messages, "the failed event never reached its dead-letter queue"
    [message] = messages
    assert message["Body"] == '{"why": "e2e"}'
    attributes = message["MessageAttributes"]
    assert attributes["RequestID"] == {"StringValue": request_id, "DataType": "String"}
    assert attributes["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attributes["ErrorMessage"]["DataType"] == "String"
    assert "boom: e2e" in attributes["ErrorMessage"]["StringValue"]
