"""An external *sink* for event-source crash tests: the function under test records every record it
processes in a FIFO queue (one message group, so the sink's order is the order of processing), and the
test reads the sink back after the crash.

:data:`SINK_WRITER` is the function's source: it sends through boto3 inside the sandbox, to the platform
endpoint its worker names (``AWS_ENDPOINT_URL_SQS``), so that process must outlive the crash.

Example::

    create_function(..., Code={"ZipFile": zip_of(SINK_WRITER)}, Environment={"Variables": {"SINK": sink_url}})
    seen = drain(sqs, sink_url, sent_ids, timeout_s=120)
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["SINK_WRITER", "assert_fifo_per_group", "drain"]

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


def drain(sqs: Any, url: str, expected_ids: set[str], timeout_s: float) -> list[dict[str, Any]]:
    """The sink's records, in order, until every expected id is among them (fails naming how many never came)."""
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


def assert_fifo_per_group(seen: list[dict[str, Any]], groups: int) -> None:
    """Each group's records were first processed in the order they were sent."""
    for group in range(groups):
        firsts: list[int] = []
        for entry in seen:
            if entry["group"] == group and entry["n"] not in firsts:
                firsts.append(entry["n"])
        assert firsts == sorted(firsts), f"group {group} out of order: {firsts}"
