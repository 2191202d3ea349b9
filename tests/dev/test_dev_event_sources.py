"""A queue event source mapping across ``kill -9`` of ``leasehold dev``: every message sent is processed at
least once, none is lost, duplicates are bounded by what was in flight, and a FIFO group keeps its order.

The function records each record it processes in a FIFO *sink* queue (``tests/harness/sink.py``); the
test reads the sink after the restart. The restarted platform's pollers take the mapping over once the
dead one's lease lapses, and the batches the dead one held come back after the source queue's visibility
timeout.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

from tests.harness.dev_process import Dev, wait_for, zip_of
from tests.harness.lambda_clients import sqs_client
from tests.harness.sink import SINK_WRITER, assert_fifo_per_group, drain

ROLE = "arn:aws:iam::000000000000:role/x"


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
        seen = drain(sqs_client(dev.http), sink, sent, timeout_s=120)
    finally:
        assert dev.stop(signal.SIGINT) == 0
    ids = [entry["id"] for entry in seen]
    assert set(ids) == sent  # nothing lost, nothing invented
    assert len(ids) - len(sent) <= 5 * 3 * 2  # duplicates: at most the batches in flight (5 groups x 3), twice
    assert_fifo_per_group(seen, groups=5)
