"""The pollers' rules without a sandbox: how a partial batch response is read (every case AWS documents),
the SQS event record's shape, and throttle back-off with a function that refuses at first."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from assignment.frontend.event_sources.mappings import MappingSettings, MappingStore
from assignment.frontend.event_sources.poller import EventSourcePollers, PollerConfig
from assignment.frontend.event_sources.sqs_event import ALL, failed_items, sqs_record
from assignment.frontend.queues import Message, MessageAttribute, NewMessage, QueueStore
from assignment.frontend.queues.waiting import QueueWaiters
from assignment.frontend.types import InvokeResult, TooManyRequestsException
from journal.store import Journal

IDS = {"a", "b", "c"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", frozenset()),
        (b"null", frozenset()),
        (b"{}", frozenset()),
        (b'{"batchItemFailures": null}', frozenset()),
        (b'{"batchItemFailures": []}', frozenset()),
        (b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', frozenset({"b"})),
        (b'{"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}', frozenset({"a", "c"})),
        (b'{"statusCode": 200}', frozenset()),
        (b"not json", ALL),
        (b'"a string"', ALL),
        (b"[1, 2]", ALL),
        (b'{"batchItemFailures": {"itemIdentifier": "a"}}', ALL),
        (b'{"batchItemFailures": ["a"]}', ALL),
        (b'{"batchItemFailures": [{"itemIdentifier": null}]}', ALL),
        (b'{"batchItemFailures": [{"itemIdentifier": ""}]}', ALL),
        (b'{"batchItemFailures": [{"itemIdentifier": "zzz"}]}', ALL),
        (b'{"batchItemFailures": [{"itemId": "a"}]}', ALL),
        (b'{"batchItemFailures": [{"itemIdentifier": 5}]}', ALL),
        (b"\xff\xfe", ALL),
    ],
)
def test_partial_batch_responses_as_aws_documents(payload: bytes, expected: object) -> None:
    assert failed_items(payload, IDS, report=True) == expected


def test_without_report_batch_item_failures_any_answer_is_success() -> None:
    assert failed_items(b'{"batchItemFailures": [{"itemIdentifier": "zzz"}]}', IDS, report=False) == frozenset()
    assert failed_items(b"not json", IDS, report=False) == frozenset()


def test_the_record_is_aws_s_sqs_event_record() -> None:
    message = Message(
        message_id="m1", receipt_handle="h1", body="hi", md5_of_body="49f68a5c8493ec2c0bf489821c21fc3b",
        md5_of_attributes="md5a",
        message_attributes={"s": MessageAttribute("String", "v"), "b": MessageAttribute("Binary", None, b"\x01")},
        attributes={"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "AKIA",
                    "ApproximateFirstReceiveTimestamp": "2"},
    )  # fmt: skip
    record = sqs_record(message, source_arn="arn:aws:sqs:us-east-1:000000000000:q", region="us-east-1")
    assert list(record) == [
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    ]  # fmt: skip
    assert record["messageAttributes"] == {
        "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "b": {"binaryValue": "AQ==", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert record["eventSource"] == "aws:sqs"
    plain = sqs_record(
        Message("m2", "h2", "x", "md5", "", {}, {}), source_arn="arn:aws:sqs:us-east-1:000000000000:q", region="r"
    )
    assert "md5OfMessageAttributes" not in plain


async def test_throttles_back_off_and_every_message_gets_through(tmp_path: Path) -> None:
    with Journal.open(f"sqlite:///{tmp_path / 'q.db'}") as journal:
        queues, mappings = QueueStore(journal), MappingStore(journal)
        now = time.time_ns() // 1_000_000
        queues.create_queue("000000000000", "jobs", {"VisibilityTimeout": "1"}, now_ms=now)
        for n in range(12):
            queues.send_message("000000000000", "jobs", NewMessage(f"m{n}"), sender_id="s", now_ms=now)
        calls = {"throttled": 0, "ok": 0}
        done: set[str] = set()

        async def invoke(function: str, qualifier: str, payload: bytes, request_id: str) -> InvokeResult:
            if calls["throttled"] < 6:
                calls["throttled"] += 1
                raise TooManyRequestsException(
                    "Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded"
                )
            calls["ok"] += 1
            done.update(r["body"] for r in json.loads(payload)["Records"])
            return InvokeResult(request_id, b"{}", "$LATEST")

        pollers = EventSourcePollers(
            mappings, queues, QueueWaiters(), invoke, region="us-east-1", account_id="000000000000",
            config=PollerConfig(refresh_s=0.05, idle_wait_s=0.2, backoff_s=(0.05, 0.2)),
        )  # fmt: skip
        mapping = mappings.create("f", "", "arn:aws:sqs:us-east-1:000000000000:jobs", MappingSettings(batch_size=1),
                                  now_ms=now)  # fmt: skip
        await pollers.start()
        try:
            deadline = time.monotonic() + 30
            while done != {f"m{n}" for n in range(12)}:
                assert time.monotonic() < deadline, (calls, sorted(done))
                await asyncio.sleep(0.05)  # pacing the check; the pollers do the work
            runner = pollers.runners[mapping.uuid]
            assert runner.lanes >= 1
        finally:
            await pollers.stop()
        assert calls["throttled"] == 6
        assert mappings.get(mapping.uuid).last_result == "OK"
        counts = queues.get_queue_attributes(
            "000000000000", "jobs", ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            queue_arn="arn:aws:sqs:us-east-1:000000000000:jobs", now_ms=time.time_ns() // 1_000_000,
        )  # fmt: skip
        assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
