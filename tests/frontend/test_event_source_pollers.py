"""Queue event source mappings running for real on the embedded platform: a real function in a real sandbox
is fed batches by the frontend's pollers, and records what it saw in a *sink* queue (through boto3 inside
the function, signed with its own session), which the test reads. Partial batch responses, whole-batch
failures, redrive to a dead-letter queue, filters, batching windows, disable/update/delete and scaling.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from mypy_boto3_lambda import LambdaClient

from assignment.dev import DevPlatform
from assignment.frontend.event_sources.mappings import Mapping, MappingNotFound, MappingStore
from tests.frontend.harness import ROLE, make_zip, raw_request
from tests.harness.lambda_clients import sqs_client

ACCOUNT = "000000000000"

#: Records every record it gets in the sink (one message per record: id, body, receive count, batch size);
#: fails the records whose body says ``fail`` (reported, or raised with ``"raise"`` in the body).
RECORDER = """
import json, os, time
import boto3

sqs = boto3.client("sqs")

def handler(event, context):
    records = event["Records"]
    failed = []
    for record in records:
        entry = {"id": record["messageId"], "body": record["body"], "size": len(records),
                 "count": int(record["attributes"]["ApproximateReceiveCount"]), "source": record["eventSourceARN"],
                 "keys": sorted(record)}
        sqs.send_message(QueueUrl=os.environ["SINK"], MessageBody=json.dumps(entry))
        if "fail" in record["body"]:
            failed.append({"itemIdentifier": record["messageId"]})
    if any("raise" in record["body"] for record in records):
        raise RuntimeError("this batch fails")
    time.sleep(float(os.environ.get("PAUSE", "0")))
    return {"batchItemFailures": failed}
"""

_names = iter(range(1_000_000))


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return sqs_client(endpoint)


@pytest.fixture(scope="module")
def mappings(platform: DevPlatform) -> MappingStore:
    assert platform.frontend is not None
    assert platform.frontend.mappings is not None
    return platform.frontend.mappings


class Setup:
    """A source queue, a sink queue and a recording function of a test's own."""

    def __init__(self, sqs: Any, lam: LambdaClient, mappings: MappingStore, **queue: str) -> None:
        n = next(_names)
        self.sqs = sqs
        self.lam = lam
        self.mappings = mappings
        self.name = f"src{n}{'.fifo' if queue.get('FifoQueue') == 'true' else ''}"
        self.source = sqs.create_queue(QueueName=self.name, Attributes={"VisibilityTimeout": "4", **queue})["QueueUrl"]
        self.arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{self.name}"
        self.sink = sqs.create_queue(QueueName=f"sink{n}")["QueueUrl"]
        self.function = f"rec{n}"
        lam.create_function(
            FunctionName=self.function, Runtime="python3.11", Handler="app.handler", Role=ROLE, Timeout=3,
            Code={"ZipFile": make_zip({"app.py": RECORDER})}, Environment={"Variables": {"SINK": self.sink}},
        )  # fmt: skip
        self.seen: list[dict[str, Any]] = []

    def map(self, **params: Any) -> Mapping:
        """A mapping of the source to the function made with boto3 (``params`` are the API's), waited for
        until its pollers run it."""
        answer = self.lam.create_event_source_mapping(EventSourceArn=self.arn, FunctionName=self.function, **params)
        assert answer["State"] == "Creating"
        return self.wait_state(answer["UUID"], "Enabled" if params.get("Enabled", True) else "Disabled")

    def wait_state(self, uuid: str, state: str, timeout_s: float = 20) -> Mapping:
        deadline = time.monotonic() + timeout_s
        while True:
            mapping = self.mappings.get(uuid)
            if mapping.state == state:
                return mapping
            assert time.monotonic() < deadline, f"still {mapping.state}, not {state}"
            time.sleep(0.05)  # pacing the polls; the deadline decides

    def send(self, bodies: list[str]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(chunk)]
            if self.name.endswith(".fifo"):
                entries = [
                    {**e, "MessageGroupId": "g", "MessageDeduplicationId": f"{start}-{e['Id']}"} for e in entries
                ]
            answer = self.sqs.send_message_batch(QueueUrl=self.source, Entries=entries)
            assert not answer["Failed"], answer
            ids += [entry["MessageId"] for entry in answer["Successful"]]
        return ids

    def collect(self, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 40) -> list[dict[str, Any]]:
        """Sink entries read so far, reading until ``until(entries)`` holds."""
        deadline = time.monotonic() + timeout_s
        while not until(self.seen):
            assert time.monotonic() < deadline, f"sink has {len(self.seen)}: {self.seen[-3:]}"
            answer = self.sqs.receive_message(QueueUrl=self.sink, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.sink, ReceiptHandle=message["ReceiptHandle"])
        return self.seen

    def depth(self) -> tuple[int, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.source, AttributeNames=names)["Attributes"]
        return int(attributes[names[0]]), int(attributes[names[1]])


@pytest.fixture
def setup(sqs: Any, lam: LambdaClient, mappings: MappingStore) -> Setup:
    return Setup(sqs, lam, mappings)


def test_the_customer_batch_of_50_where_record_30_fails(setup: Setup) -> None:
    ids = setup.send([json.dumps({"n": n, **({"fail": True} if n == 30 else {})}) for n in range(50)])
    setup.map(BatchSize=50, MaximumBatchingWindowInSeconds=2, FunctionResponseTypes=["ReportBatchItemFailures"])
    seen = setup.collect(lambda s: len(s) >= 51)
    first = [entry for entry in seen if entry["count"] == 1]
    assert sorted(entry["id"] for entry in first) == sorted(ids)
    assert {entry["size"] for entry in first} == {50}  # one batch of 50
    again = [entry for entry in seen if entry["count"] > 1]
    assert [(entry["id"], entry["count"]) for entry in again] == [(ids[30], 2)]  # only record 30 came back
    assert set(seen[0]["keys"]) >= {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody", "eventSource",
        "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert seen[0]["source"] == setup.arn


def test_without_report_batch_item_failures_the_whole_batch_comes_back(setup: Setup) -> None:
    ids = setup.send([json.dumps({"n": n, "raise": n == 3}) if n == 3 else json.dumps({"n": n}) for n in range(5)])
    setup.map(BatchSize=5, MaximumBatchingWindowInSeconds=1)
    seen = setup.collect(lambda s: len([e for e in s if e["count"] == 2]) >= 5)
    assert sorted(e["id"] for e in seen if e["count"] == 2) == sorted(ids)


def test_a_poison_message_ends_in_the_dead_letter_queue(sqs: Any, lam: LambdaClient, mappings: MappingStore) -> None:
    dlq = sqs.create_queue(QueueName=f"dlq{next(_names)}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    setup = Setup(sqs, lam, mappings, RedrivePolicy=policy)
    (poison,) = setup.send([json.dumps({"raise": True})])
    setup.map(BatchSize=1)
    setup.collect(lambda s: len(s) >= 2)
    deadline = time.monotonic() + 30
    while True:
        moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
        if moved:
            break
        assert time.monotonic() < deadline, "the poison message never reached the dead-letter queue"
    assert [m["MessageId"] for m in moved] == [poison]
    assert [e["count"] for e in setup.seen] == [1, 2]  # invoked maxReceiveCount times, then moved


def test_filters_invoke_only_matching_messages_and_delete_the_rest(setup: Setup) -> None:
    pattern = json.dumps({"body": {"kind": ["order"], "amount": [{"numeric": [">", 10]}]}})
    setup.map(BatchSize=10, FilterCriteria={"Filters": [{"Pattern": pattern}]})
    ids = setup.send(
        [json.dumps({"kind": "order", "amount": 50}), json.dumps({"kind": "order", "amount": 5}),
         json.dumps({"kind": "refund", "amount": 50}), "plain text", json.dumps({"kind": "order", "amount": 11})]
    )  # fmt: skip
    seen = setup.collect(lambda s: len(s) >= 2)
    assert sorted(e["id"] for e in seen) == sorted([ids[0], ids[4]])
    deadline = time.monotonic() + 20
    while setup.depth() != (0, 0):  # the three others were deleted, not left to come back
        assert time.monotonic() < deadline, setup.depth()
        time.sleep(0.1)  # pacing the polls


def test_a_disabled_mapping_never_invokes_and_picks_up_again_when_enabled(setup: Setup) -> None:
    mapping = setup.map(BatchSize=10)
    assert setup.lam.update_event_source_mapping(UUID=mapping.uuid, Enabled=False)["State"] == "Disabling"
    disabled = setup.wait_state(mapping.uuid, "Disabled")
    ids = setup.send([json.dumps({"n": n}) for n in range(3)])
    for _ in range(3):  # three poller refreshes: none may take the messages
        time.sleep(1.0)  # the absence being tested needs time to pass; nothing else is waited for here
        assert setup.depth() == (3, 0)
    assert setup.lam.update_event_source_mapping(UUID=disabled.uuid, Enabled=True)["State"] == "Enabling"
    setup.wait_state(mapping.uuid, "Enabled")
    seen = setup.collect(lambda s: len(s) >= 3)
    assert sorted(e["id"] for e in seen) == sorted(ids)


def test_an_update_takes_effect_and_a_deleted_mapping_stops(setup: Setup) -> None:
    mapping = setup.map(BatchSize=1)
    setup.send([json.dumps({"n": n}) for n in range(3)])
    seen = setup.collect(lambda s: len(s) >= 3)
    assert {e["size"] for e in seen} == {1}
    updated = setup.lam.update_event_source_mapping(UUID=mapping.uuid, BatchSize=5, MaximumBatchingWindowInSeconds=2)
    assert updated["State"] == "Updating"
    setup.wait_state(mapping.uuid, "Enabled")
    setup.send([json.dumps({"n": n}) for n in range(5)])
    seen = setup.collect(lambda s: len(s) >= 8)
    assert [e["size"] for e in seen[3:]] == [5] * 5
    assert setup.lam.delete_event_source_mapping(UUID=mapping.uuid)["State"] == "Deleting"
    deadline = time.monotonic() + 20
    while True:
        try:
            setup.mappings.get(mapping.uuid)
        except MappingNotFound:
            break
        assert time.monotonic() < deadline, "the mapping was never removed"
        time.sleep(0.05)  # pacing the polls
    setup.send(["after delete"])
    time.sleep(2.0)  # two poller refreshes: a deleted mapping must not take it
    assert setup.depth() == (1, 0)


def test_lanes_scale_up_with_the_backlog_to_the_maximum_concurrency(
    setup: Setup, platform: DevPlatform, lam: LambdaClient
) -> None:
    lam.update_function_configuration(
        FunctionName=setup.function, Environment={"Variables": {"SINK": setup.sink, "PAUSE": "0.5"}}
    )
    setup.send([json.dumps({"n": n}) for n in range(60)])
    mapping = setup.map(BatchSize=2, ScalingConfig={"MaximumConcurrency": 3})
    assert platform.frontend is not None
    assert platform.frontend.pollers is not None
    runner = platform.frontend.pollers.runners[mapping.uuid]
    most = 0
    deadline = time.monotonic() + 40
    while setup.depth() != (0, 0):
        most = max(most, runner.lanes)
        assert runner.lanes <= 3
        assert time.monotonic() < deadline, setup.depth()
        time.sleep(0.02)  # sampling the lane count
    assert most == 3


def test_lanes_stay_within_the_function_s_reserved_concurrency(
    setup: Setup, platform: DevPlatform, lam: LambdaClient
) -> None:
    lam.update_function_configuration(
        FunctionName=setup.function, Environment={"Variables": {"SINK": setup.sink, "PAUSE": "0.5"}}
    )
    lam.put_function_concurrency(FunctionName=setup.function, ReservedConcurrentExecutions=0)
    setup.send([json.dumps({"n": n}) for n in range(40)])
    mapping = setup.map(BatchSize=2, ScalingConfig={"MaximumConcurrency": 5})
    assert platform.frontend is not None
    assert platform.frontend.pollers is not None
    pollers = platform.frontend.pollers
    runner = pollers.runners[mapping.uuid]
    # Reserved 0 was read in the tick that took the mapping: no lane, nothing received to be throttled.
    assert pollers.reserved[setup.function] == 0
    assert (runner.lanes, setup.depth()) == (0, (40, 0))

    lam.put_function_concurrency(FunctionName=setup.function, ReservedConcurrentExecutions=2)
    most = 0
    deadline = time.monotonic() + 60
    while setup.depth() != (0, 0):
        most = max(most, runner.lanes)
        assert runner.lanes <= 2
        assert time.monotonic() < deadline, setup.depth()
        time.sleep(0.02)  # sampling the lane count
    assert most == 2


def test_status_shows_queue_depths_and_each_mapping(setup: Setup, endpoint: str) -> None:
    mapping = setup.map(BatchSize=10)
    setup.send(["one"])
    setup.collect(lambda s: len(s) >= 1)
    deadline = time.monotonic() + 20
    while True:
        status, _, body = raw_request(endpoint, "GET", "/_leasehold/v1/status")
        assert status == 200
        document = json.loads(body)
        (entry,) = [m for m in document["event_source_mappings"] if m["uuid"] == mapping.uuid]
        if entry["last_result"] == "OK" and entry["backlog"] == 0:
            break
        assert time.monotonic() < deadline, entry
        time.sleep(0.1)  # pacing the polls
    assert entry["state"] == "Enabled"
    assert entry["function"] == setup.function
    assert entry["poller"]
    (queue,) = [q for q in document["queues"] if q["name"] == setup.name]
    assert queue == {"name": setup.name, "visible": 0, "in_flight": 0, "delayed": 0}
