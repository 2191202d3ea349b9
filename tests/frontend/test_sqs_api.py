"""The SQS API through boto3's ``sqs`` client (and raw requests where the SDK would refuse first) against the
embedded platform: queues, messages, batches, long polls, FIFO, redrive, who may call what, and every kind
of bad input answered with SQS's error document, never a 500. The store's rules are tested on both
databases in ``test_queue_store.py``; the cluster's shape (PostgreSQL, two frontends) in
``test_sqs_cluster.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from assignment.dev import DevPlatform
from assignment.frontend.queues import ERROR_SHAPES, MessageAttribute, md5_of_attributes, md5_of_body
from tests.frontend.harness import ROLE, function_session, lambda_client, make_zip, raw_request
from tests.harness.lambda_clients import long_poll_while, sqs_client

TARGET = "AmazonSQS."
JSON_10 = "application/x-amz-json-1.0"


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return sqs_client(endpoint)


_names = iter(range(1_000_000))


@pytest.fixture
def queue(sqs: Any) -> str:
    """A fresh standard queue's URL."""
    url: str = sqs.create_queue(QueueName=f"q{next(_names)}")["QueueUrl"]
    return url


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def _modeled(exc: pytest.ExceptionInfo[ClientError]) -> str:
    """The model's error name (botocore keeps it as QueryErrorCode when SQS sent a query code)."""
    error: dict[str, str] = dict(exc.value.response["Error"])  # type: ignore[arg-type]
    return error["QueryErrorCode"]


def call(endpoint: str, operation: str, body: bytes, **kwargs: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A raw SQS request: ``(status, headers, JSON body)``."""
    headers = {"X-Amz-Target": TARGET + operation, "Content-Type": JSON_10}
    status, answer_headers, answer = raw_request(endpoint, "POST", "/", body, headers, service="sqs", **kwargs)
    return status, answer_headers, json.loads(answer) if answer else {}


def sqs_error(answer: tuple[int, dict[str, str], dict[str, Any]]) -> tuple[int, str, str]:
    """``(status, __type without namespace, x-amzn-query-error)`` of an SQS error answer."""
    status, headers, body = answer
    assert headers["content-type"].startswith(JSON_10), headers
    assert "message" in body, body
    return status, body["__type"].rpartition("#")[2], headers.get("x-amzn-query-error", "")


# ------------------------------------------------------------------------------------------------ queues


def test_queue_lifecycle(sqs: Any, endpoint: str) -> None:
    url = sqs.create_queue(QueueName="life", Attributes={"VisibilityTimeout": "7"}, tags={"team": "a"})["QueueUrl"]
    assert url == f"{endpoint}/000000000000/life"
    assert sqs.create_queue(QueueName="life", Attributes={"VisibilityTimeout": "7"})["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName="life", Attributes={"VisibilityTimeout": "8"})
    assert sqs.get_queue_url(QueueName="life")["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.get_queue_url(QueueName="life", QueueOwnerAWSAccountId="111111111111")
    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "7"
    assert attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:life"
    assert attributes["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"] == {
        "DelaySeconds": "3"
    }
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url)

    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "dev"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev"}

    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="life")
    with pytest.raises(sqs.exceptions.QueueDeletedRecently):
        sqs.create_queue(QueueName="life")


def test_list_queues_by_prefix_in_pages(sqs: Any, endpoint: str) -> None:
    for n in range(5):
        sqs.create_queue(QueueName=f"page-{n}")
    everything = sqs.list_queues(QueueNamePrefix="page-")["QueueUrls"]
    assert everything == [f"{endpoint}/000000000000/page-{n}" for n in range(5)]
    first = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2)
    assert len(first["QueueUrls"]) == 2
    assert first["NextToken"]
    seen = list(first["QueueUrls"])
    token = first["NextToken"]
    while token:
        page = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2, NextToken=token)
        seen += page["QueueUrls"]
        token = page.get("NextToken")
    assert seen == everything
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="no-such-prefix")
    paginator = sqs.get_paginator("list_queues")
    assert [u for p in paginator.paginate(QueueNamePrefix="page-", MaxResults=2) for u in p["QueueUrls"]] == everything


def test_purge_then_a_second_purge_within_a_minute_is_refused(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    sqs.purge_queue(QueueUrl=queue)
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=queue)


# ---------------------------------------------------------------------------------------------- messages


def test_send_receive_delete_with_attributes_and_their_md5s(sqs: Any, queue: str) -> None:
    attributes = {
        "order.id": {"DataType": "Number", "StringValue": "42"},
        "order.kind": {"DataType": "String", "StringValue": "book"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    sent = sqs.send_message(QueueUrl=queue, MessageBody="héllo", MessageAttributes=attributes)
    stored = {
        "order.id": MessageAttribute("Number", "42"),
        "order.kind": MessageAttribute("String", "book"),
        "raw": MessageAttribute("Binary", binary_value=b"\x00\xff"),
    }
    assert sent["MD5OfMessageBody"] == md5_of_body("héllo")
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(stored)

    got = sqs.receive_message(
        QueueUrl=queue, MessageAttributeNames=["order.*"], MessageSystemAttributeNames=["SenderId", "SentTimestamp"]
    )["Messages"]
    assert len(got) == 1
    message = got[0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "héllo"
    assert set(message["MessageAttributes"]) == {"order.id", "order.kind"}
    # The MD5 covers what was returned, so an SDK checking it agrees.
    assert message["MD5OfMessageAttributes"] == md5_of_attributes({k: stored[k] for k in ("order.id", "order.kind")})
    assert set(message["Attributes"]) == {"SenderId", "SentTimestamp"}
    assert message["Attributes"]["SenderId"].startswith("AKIA")
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])[
        "Attributes"
    ] == {"ApproximateNumberOfMessagesNotVisible": "0"}


def test_every_attribute_and_binary_values_come_back(sqs: Any, queue: str) -> None:
    sqs.send_message(
        QueueUrl=queue,
        MessageBody="b",
        MessageAttributes={"raw": {"DataType": "Binary.gz", "BinaryValue": b"\x01\x02"}},
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}},
    )
    message = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"][0]
    assert message["MessageAttributes"] == {"raw": {"DataType": "Binary.gz", "BinaryValue": b"\x01\x02"}}
    assert message["Attributes"]["AWSTraceHeader"] == "Root=1-abc"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"


def test_visibility_timeout_and_change_visibility(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="v")
    first = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=300)["Messages"][0]
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=queue, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    with pytest.raises(ClientError) as caught:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle="not-a-handle", VisibilityTimeout=1)
    assert _modeled(caught) == "ReceiptHandleIsInvalid"


def test_batches_answer_per_entry(sqs: Any, queue: str) -> None:
    sent = sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "a", "MessageBody": "1"},
            {"Id": "b", "MessageBody": "2", "DelaySeconds": 901},
            {"Id": "c", "MessageBody": "3", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        ],
    )
    assert [entry["Id"] for entry in sent["Successful"]] == ["a", "c"]
    assert "MD5OfMessageAttributes" in sent["Successful"][1]
    assert "MD5OfMessageAttributes" not in sent["Successful"][0]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in sent["Failed"]] == [("b", "InvalidParameterValue", True)]
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=300)["Messages"]
    assert sorted(m["Body"] for m in received) == ["1", "3"]
    entries = [{"Id": f"m{n}", "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received)]
    bad = {"Id": "bad", "ReceiptHandle": "junk"}
    deleted = sqs.delete_message_batch(QueueUrl=queue, Entries=[*entries, bad])
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["m0", "m1"]
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=queue, Entries=[{"Id": "x", "ReceiptHandle": "junk", "VisibilityTimeout": 5}]
    )
    assert changed["Successful"] == []
    assert changed["Failed"][0]["Id"] == "x"


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([{"Id": str(n), "MessageBody": "x"} for n in range(11)], "TooManyEntriesInBatchRequest"),
        ([{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}], "BatchEntryIdsNotDistinct"),
        ([{"Id": "bad id!", "MessageBody": "x"}], "InvalidBatchEntryId"),
        ([], "EmptyBatchRequest"),
    ],
)
def test_bad_batches_are_refused_whole(sqs: Any, queue: str, entries: list[dict[str, str]], code: str) -> None:
    with pytest.raises(ClientError) as caught:
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    assert _modeled(caught) == code
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None


def test_a_long_poll_is_woken_by_a_send(sqs: Any, endpoint: str, queue: str) -> None:
    answer, took_s = long_poll_while(
        sqs_client(endpoint), queue, lambda: sqs.send_message(QueueUrl=queue, MessageBody="wake")
    )
    assert [m["Body"] for m in answer["Messages"]] == ["wake"]
    assert took_s < 15  # answered by the send, not by the 20 s running out


def test_a_long_poll_returns_a_delayed_message_when_it_becomes_visible(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=1)
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)
    assert [m["Body"] for m in got["Messages"]] == ["later"]


def test_a_long_poll_with_nothing_to_give_waits_its_time(sqs: Any, queue: str) -> None:
    begun = time.monotonic()
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages") is None
    assert time.monotonic() - begun >= 1.0


def test_the_queue_s_receive_wait_is_the_default_long_poll(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="waits", Attributes={"ReceiveMessageWaitTimeSeconds": "1"})["QueueUrl"]
    begun = time.monotonic()
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None
    assert time.monotonic() - begun >= 1.0
    begun = time.monotonic()
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert time.monotonic() - begun < 1.0


def test_fifo_order_groups_and_deduplication(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="orders.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a")
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a")
    assert duplicate["MessageId"] == first["MessageId"]
    assert first["SequenceNumber"]
    sqs.send_message(QueueUrl=url, MessageBody="a2", MessageGroupId="a")
    sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="b")
    batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in batch if m["Attributes"]["MessageGroupId"] == "a"] == ["a1", "a2"]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") is None  # groups in flight
    with pytest.raises(ClientError) as caught:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert _modeled(caught) == "MissingParameter"


def test_a_fifo_receive_retried_with_its_attempt_id_gets_the_same_batch(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="retried.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}")
    receive = {"QueueUrl": url, "MaxNumberOfMessages": 10, "ReceiveRequestAttemptId": "lost-response-1"}
    first = sqs.receive_message(**receive)["Messages"]
    assert [m["Body"] for m in first] == ["m0", "m1", "m2"]
    again = sqs.receive_message(**receive)["Messages"]
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in again] == [
        (m["MessageId"], m["ReceiptHandle"]) for m in first
    ]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") is None  # still in flight
    for message in again:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sqs.receive_message(**receive).get("Messages") is None  # deleted: afresh, and nothing is left


def test_a_poison_message_moves_to_the_dead_letter_queue(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="poison-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    source = sqs.create_queue(QueueName="poison", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    sqs.send_message(QueueUrl=source, MessageBody="poison")
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"][0]["Body"] == "poison"
    assert sqs.receive_message(QueueUrl=source).get("Messages") is None
    moved = sqs.receive_message(QueueUrl=dlq, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]


# ---------------------------------------------------------------------------------------- who may call


def test_a_function_session_produces_and_consumes_but_does_not_manage(
    platform: DevPlatform, endpoint: str, queue: str
) -> None:
    session = sqs_client(endpoint, credentials=function_session(platform))
    session.send_message(QueueUrl=queue, MessageBody="from a function")
    got = session.receive_message(QueueUrl=queue, AttributeNames=["SenderId"])["Messages"][0]
    assert got["Attributes"]["SenderId"].startswith("ASIA")
    session.delete_message(QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"])
    calls: tuple[Callable[[], object], ...] = (
        lambda: session.create_queue(QueueName="intruder"),
        lambda: session.delete_queue(QueueUrl=queue),
        lambda: session.purge_queue(QueueUrl=queue),
        lambda: session.set_queue_attributes(QueueUrl=queue, Attributes={"DelaySeconds": "1"}),
    )
    for call_it in calls:
        with pytest.raises(ClientError) as caught:
            call_it()
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "sqs:" in caught.value.response["Error"]["Message"]


def test_unsigned_and_wrongly_scoped_requests_get_sqs_errors(endpoint: str) -> None:
    body = json.dumps({"QueueName": "x"}).encode()
    assert sqs_error(call(endpoint, "GetQueueUrl", body, sign=False)) == (
        403, "MissingAuthenticationToken", "MissingAuthenticationToken;Sender",
    )  # fmt: skip
    headers = {"X-Amz-Target": TARGET + "GetQueueUrl", "Content-Type": JSON_10}
    answer = raw_request(endpoint, "POST", "/", body, headers, service="lambda")
    status, _, raw = answer
    assert (status, json.loads(raw)["__type"].rpartition("#")[2]) == (403, "SignatureDoesNotMatch")


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("operation", "body", "expected"),
    [
        ("GetQueueUrl", b"{not json", "InvalidParameterValue"),
        ("GetQueueUrl", b"[1, 2]", "InvalidParameterValue"),
        ("GetQueueUrl", b"\xff\xfe", "InvalidParameterValue"),
        ("GetQueueUrl", b"{}", "MissingParameter"),
        ("GetQueueUrl", b'{"QueueName": 5}', "InvalidParameterValue"),
        ("GetQueueUrl", b'{"QueueName": "x", "Extra": 1}', "InvalidParameterValue"),
        (
            "ReceiveMessage",
            b'{"QueueUrl": "http://h/000000000000/x", "MaxNumberOfMessages": "3"}',
            "InvalidParameterValue",
        ),
        (
            "ReceiveMessage",
            b'{"QueueUrl": "http://h/000000000000/x", "MaxNumberOfMessages": true}',
            "InvalidParameterValue",
        ),
        (
            "SendMessageBatch",
            b'{"QueueUrl": "http://h/000000000000/x", "Entries": {"Id": "a"}}',
            "InvalidParameterValue",
        ),
        ("SendMessageBatch", b'{"QueueUrl": "http://h/000000000000/x", "Entries": [{"Id": "a"}]}', "MissingParameter"),
        (
            "SendMessage",
            b'{"QueueUrl": "http://h/000000000000/x", "MessageBody": "b", "MessageAttributes": '
            b'{"a": {"DataType": "Binary", "BinaryValue": "***"}}}',
            "InvalidParameterValue",
        ),
        ("SendMessage", b'{"QueueUrl": "not a url", "MessageBody": "b"}', "InvalidAddress"),
        ("SendMessage", b'{"QueueUrl": "http://h/000000000000/a/b", "MessageBody": "b"}', "InvalidAddress"),
        ("SendMessage", b'{"QueueUrl": "ftp://h/000000000000/x", "MessageBody": "b"}', "InvalidAddress"),
        ("SendMessage", b'{"QueueUrl": "http://h/111111111111/x", "MessageBody": "b"}', "QueueDoesNotExist"),
        ("SendMessage", b'{"QueueUrl": "http://h/000000000000/..", "MessageBody": "b"}', "QueueDoesNotExist"),
        ("CreateQueue", b'{"QueueName": "../../etc/passwd"}', "InvalidParameterValue"),
        ("CreateQueue", json.dumps({"QueueName": "q" * 81}).encode(), "InvalidParameterValue"),
        ("CreateQueue", json.dumps({"QueueName": "caf\u00e9"}).encode(), "InvalidParameterValue"),
        ("CreateQueue", b'{"QueueName": "x", "Attributes": {"NoSuch": "1"}}', "InvalidAttributeName"),
        ("CreateQueue", b'{"QueueName": "x", "Attributes": {"VisibilityTimeout": "-1"}}', "InvalidAttributeValue"),
        ("DeleteQueue", b'{"QueueUrl": "http://h/000000000000/nope"}', "QueueDoesNotExist"),
        ("NoSuchOperation", b"{}", "InvalidAction"),
        (
            "AddPermission",
            b'{"QueueUrl": "http://h/000000000000/x", "Label": "l", "AWSAccountIds": ["1"], '
            b'"Actions": ["SendMessage"]}',
            "UnsupportedOperation",
        ),
        ("StartMessageMoveTask", b'{"SourceArn": "arn:aws:sqs:us-east-1:000000000000:x"}', "UnsupportedOperation"),
    ],
)
def test_bad_requests_get_the_sqs_error(endpoint: str, operation: str, body: bytes, expected: str) -> None:
    status, code, query = sqs_error(call(endpoint, operation, body))
    assert (status, code) == (ERROR_SHAPES[expected].http_status, expected)
    assert query.endswith(";Sender")
    assert query


def test_deep_nesting_and_huge_bodies_are_refused(endpoint: str, queue: str) -> None:
    nested: Any = "x"
    for _ in range(50):
        nested = {"a": nested}
    deep = json.dumps({"QueueName": "x", "Attributes": nested}).encode()
    assert sqs_error(call(endpoint, "CreateQueue", deep))[:2] == (400, "InvalidParameterValue")
    body = json.dumps({"QueueUrl": queue, "MessageBody": "x" * (1_048_576 + 1)}).encode()
    assert sqs_error(call(endpoint, "SendMessage", body))[:2] == (400, "InvalidParameterValue")
    bad_chars = json.dumps({"QueueUrl": queue, "MessageBody": "nul \u0000 here"}).encode()
    assert sqs_error(call(endpoint, "SendMessage", bad_chars))[:2] == (400, "InvalidMessageContents")


def test_receive_parameters_out_of_range(sqs: Any, queue: str, endpoint: str) -> None:
    for params, code in (
        ({"MaxNumberOfMessages": 11}, "InvalidParameterValue"),
        ({"MaxNumberOfMessages": 0}, "InvalidParameterValue"),
        ({"WaitTimeSeconds": 21}, "InvalidParameterValue"),
        ({"VisibilityTimeout": 43_201}, "InvalidParameterValue"),
        ({"MessageSystemAttributeNames": ["NoSuch"]}, "InvalidParameterValue"),
        ({"ReceiveRequestAttemptId": "a"}, "InvalidParameterValue"),  # a standard queue's
        ({"ReceiveRequestAttemptId": "x" * 129}, "InvalidParameterValue"),
    ):
        body = json.dumps({"QueueUrl": queue, **params}).encode()
        assert sqs_error(call(endpoint, "ReceiveMessage", body))[:2] == (400, code), params


def test_the_query_protocol_is_refused_by_name(endpoint: str) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = raw_request(endpoint, "POST", "/", b"Action=ListQueues&Version=2012-11-05", headers,
                                  service="sqs")  # fmt: skip
    document = json.loads(body)
    assert status == 400
    assert document["__type"].endswith("#UnsupportedOperation")
    assert "JSON protocol" in document["message"]


def test_the_lambda_api_still_answers_beside_it(endpoint: str) -> None:
    assert "Functions" in lambda_client(endpoint).list_functions()


PRODUCER = """
import boto3
from botocore.config import Config

def handler(event, context):
    sqs = boto3.client("sqs", config=Config(retries={"max_attempts": 1}))  # env: endpoint, region, keys
    url = sqs.get_queue_url(QueueName=event["queue"])["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody=event["body"])
    return {"id": sent["MessageId"]}
"""


def test_a_function_sends_to_a_queue_with_unchanged_boto3_code(sqs: Any, endpoint: str, queue: str) -> None:
    lam = lambda_client(endpoint)
    lam.create_function(
        FunctionName="producer", Runtime="python3.11", Handler="app.handler", Role=ROLE, Timeout=30,
        Code={"ZipFile": make_zip({"app.py": PRODUCER})},
    )  # fmt: skip
    payload = json.dumps({"queue": queue.rsplit("/", 1)[1], "body": "made inside"}).encode()
    answer = lam.invoke(FunctionName="producer", Payload=payload)
    result = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result
    got = sqs.receive_message(QueueUrl=queue, AttributeNames=["SenderId"])["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in got] == [(result["id"], "made inside")]
    assert got[0]["Attributes"]["SenderId"].startswith("ASIA")  # the function's own session signed it
