"""A queue event source mapping across ``kill -9`` of ``leasehold dev``: every message sent is processed at
least once, none is lost, duplicates are bounded by what was in flight, and a FIFO group keeps its order.

The function records each record it processes in a FIFO *sink* queue (one message group, so the sink's
order is the order of processing), through boto3 inside the sandbox; the test reads the sink after the
restart. The restarted platform's pollers take the mapping over once the dead one's lease lapses, and
the batches the dead one held come back after the source queue's visibility timeout.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from tests.harness.dev_process import Dev, wait_for, zip_of
from tests.harness.lambda_clients import sqs_client

ROLE = "arn:aws:iam::000000000000:role/x"
SINK_WRITER = """
import json, os, time, uuid
import boto3

sqs = boto3.client("sqs")

def handler(event, context):
    for record in event["Records"]:
        body = json.loads(record["body"])
        sqs.send_message(
            QueueUrl=os.environ["SINK"], MessageGroupId="log", MessageDeduplicationId=uuid.uuid4().hex,
            MessageBody=json.dumps({"id": record["messageId"], "group": body["group"], "n": body["n"]}),
        )
    time.sleep(0.2)  # keep batches in flight long enough for the kill to catch some
    return {}
"""


def _drain(sqs: Any, url: str, expected_ids: set[str], timeout_s: float) -> list[dict[str, Any]]:
    """The sink's records, in order, until every expected id is among them."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while not expected_ids <= {entry["id"] for entry in seen}:
        missing = len(expected_ids - {entry["id"] for entry in seen})
        assert time.monotonic() < deadline, f"{missing} sent messages never processed"
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = answer.get("Messages", [])
        seen += [json.loads(m["Body"]) for m in messages]
        if messages:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    return seen


def test_kill_9_with_batches_in_flight_loses_nothing_and_keeps_fifo_order(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dev = Dev(data, tmp_path / "dev1.log")
    try:
        sqs = sqs_client(dev.http)
        source = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "5"})[
            "QueueUrl"
        ]
        sink = sqs.create_queue(QueueName="log.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        dev.client().create_function(
            FunctionName="writer", Runtime="python3.11", Handler="app.handler", Role=ROLE, Timeout=5,
            Code={"ZipFile": zip_of(SINK_WRITER)}, Environment={"Variables": {"SINK": sink}},
        )  # fmt: skip
        sent: set[str] = set()
        for n in range(20):
            entries = [
                {"Id": f"g{g}", "MessageBody": json.dumps({"group": g, "n": n}), "MessageGroupId": f"g{g}",
                 "MessageDeduplicationId": uuid.uuid4().hex}
                for g in range(5)
            ]  # fmt: skip
            answer = sqs.send_message_batch(QueueUrl=source, Entries=entries)
            assert not answer["Failed"]
            sent |= {entry["MessageId"] for entry in answer["Successful"]}
        arn = "arn:aws:sqs:us-east-1:000000000000:orders.fifo"
        dev.client().create_event_source_mapping(EventSourceArn=arn, FunctionName="writer", BatchSize=3)
        # Kill once some batches ran, so others are in flight.
        wait_for(
            lambda: int(
                sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["ApproximateNumberOfMessages"])[
                    "Attributes"
                ]["ApproximateNumberOfMessages"]
            ) >= 10,
            60, "the first batches",
        )  # fmt: skip
    finally:
        dev.stop(signal.SIGKILL)

    dev = Dev(data, tmp_path / "dev2.log")
    try:
        seen = _drain(sqs_client(dev.http), sink, sent, timeout_s=120)
    finally:
        assert dev.stop(signal.SIGINT) == 0
    ids = [entry["id"] for entry in seen]
    assert set(ids) == sent  # nothing lost, nothing invented
    assert len(ids) - len(sent) <= 5 * 3 * 2  # duplicates: at most the batches in flight (5 groups x 3), twice
    for group in range(5):
        firsts: list[int] = []
        for entry in seen:
            if entry["group"] == group and entry["n"] not in firsts:
                firsts.append(entry["n"])
        assert firsts == sorted(firsts), f"group {group} out of order: {firsts}"
