"""The event source mapping operations through boto3's ``lambda`` client (and raw requests where the SDK
would refuse first) against the embedded platform: create, get, list (paging, by function in every
spelling, by source), update (only the members given; another function), delete; the document's members
and types; every refusal with AWS's error type and wording; malformed, mistyped, oversized and hostile
input answered as a Lambda error, never a 500; and a function's session refused every operation.

The platform runs without event source pollers, so a change stays in its transitional state until a test
settles it through the store as a poller would (:func:`settle`): what the API shows is deterministic. The
store's rules are tested on both databases in ``test_mapping_store.py``.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from assignment.dev import DevPlatform
from assignment.frontend.api.event_sources import CREATE_MEMBERS, NOT_FOR_SQS, NOT_IN_LEASEHOLD, UPDATE_MEMBERS
from tests.frontend.harness import (
    ROLE,
    LoopThread,
    error_of,
    function_session,
    lambda_client,
    make_zip,
    raw_request,
    running_platform,
)
from tests.harness.lambda_clients import sqs_client

ACCOUNT = "000000000000"
REGION = "us-east-1"
BASE = "/2015-03-31/event-source-mappings"
CODE: Any = {"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return e\n"})}
SQS_MEMBERS = {
    "UUID",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "EventSourceArn",
    "FunctionArn",
    "LastModified",
    "State",
    "StateTransitionReason",
    "FunctionResponseTypes",
    "EventSourceMappingArn",
}


@pytest.fixture(scope="module")
def platform_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevPlatform, LoopThread]]:
    """The embedded platform without event source pollers: transitions stay until a test settles them."""
    with running_platform(tmp_path_factory.mktemp("esm"), event_source_pollers=False) as running:
        yield running


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return sqs_client(endpoint)


_names = iter(range(1_000_000))


def arn_of(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


@pytest.fixture
def queue(sqs: Any) -> str:
    """A fresh standard queue's ARN (visibility timeout 30 s)."""
    name = f"esmq{next(_names)}"
    sqs.create_queue(QueueName=name)
    return arn_of(name)


@pytest.fixture
def function(lam: LambdaClient) -> str:
    """A fresh function (timeout 3 s) with one published version, 1."""
    name = f"esmfn{next(_names)}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE, Code=CODE)
    lam.publish_version(FunctionName=name)
    return name


def settle(platform: DevPlatform, uuid: str) -> None:
    """Do what the pollers do once they run a change: settle the mapping's current revision."""
    assert platform.frontend is not None
    store = platform.frontend.mappings
    assert store is not None
    store.release("test-poller", [uuid])
    store.claim("test-poller", now_ms=0, lease_ms=2**62, limit=100_000)  # a lease that never lapses
    store.settle(uuid, "test-poller", store.get(uuid).revision, now_ms=store.get(uuid).modified_ms)


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def raw(method: str, endpoint: str, path: str, body: object = None) -> tuple[int, str, dict[str, Any]]:
    """A raw request (bytes as given, other bodies as JSON): ``(status, error type, JSON body)``."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    answer = raw_request(endpoint, method, path, data, {"Content-Type": "application/json"})
    status, kind, doc = error_of(answer)
    return status, kind, doc


# ---------------------------------------------------------------------------------------------- create


def test_create_answers_202_with_the_sqs_document(lam: LambdaClient, function: str, queue: str) -> None:
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert set(made) - {"ResponseMetadata"} == SQS_MEMBERS
    uuid = made["UUID"]
    assert len(uuid) == 36
    assert made["BatchSize"] == 10
    assert made["MaximumBatchingWindowInSeconds"] == 0
    assert made["EventSourceArn"] == queue
    assert made["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    assert made["EventSourceMappingArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"
    assert (made["State"], made["StateTransitionReason"]) == ("Creating", "USER_INITIATED")
    assert made["FunctionResponseTypes"] == []
    assert isinstance(made["LastModified"], datetime)
    got = lam.get_event_source_mapping(UUID=uuid)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == {
        k: v for k, v in made.items() if k != "ResponseMetadata"
    }


def test_last_modified_is_epoch_seconds_as_a_number(endpoint: str, function: str, queue: str) -> None:
    status, _, doc = raw("POST", endpoint, BASE, {"FunctionName": function, "EventSourceArn": queue})
    assert status == 202
    assert isinstance(doc["LastModified"], float)
    assert 1.6e9 < doc["LastModified"] < 4e9


def test_every_sqs_setting_is_kept_and_returned(lam: LambdaClient, function: str, queue: str) -> None:
    pattern = json.dumps({"body": {"kind": ["order"]}})
    made = lam.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=queue,
        BatchSize=500,
        MaximumBatchingWindowInSeconds=5,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": 5},
        FilterCriteria={"Filters": [{"Pattern": pattern}]},
        Enabled=False,
    )
    got = lam.get_event_source_mapping(UUID=made["UUID"])
    assert (got["BatchSize"], got["MaximumBatchingWindowInSeconds"]) == (500, 5)
    assert got["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert got["ScalingConfig"] == {"MaximumConcurrency": 5}
    assert got["FilterCriteria"] == {"Filters": [{"Pattern": pattern}]}
    assert got["State"] == "Creating"


@pytest.mark.parametrize(
    ("spelling", "qualified"),
    [
        ("{f}", False),
        ("{f}:1", True),
        ("{f}:$LATEST", False),  # $LATEST is the unqualified function
        ("000000000000:function:{f}", False),
        ("arn:aws:lambda:us-east-1:000000000000:function:{f}:1", True),
    ],
)
def test_the_function_is_named_by_name_or_arn_with_a_qualifier(
    lam: LambdaClient, function: str, queue: str, spelling: str, qualified: bool
) -> None:
    made = lam.create_event_source_mapping(FunctionName=spelling.format(f=function), EventSourceArn=queue)
    expected = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}" + (":1" if qualified else "")
    assert made["FunctionArn"] == expected


def test_create_takes_the_path_with_a_trailing_slash(endpoint: str, function: str, queue: str) -> None:
    status, _, doc = raw("POST", endpoint, BASE + "/", {"FunctionName": function, "EventSourceArn": queue})
    assert (status, doc["State"]) == (202, "Creating")
    status, _, listed = raw("GET", endpoint, BASE + "/?EventSourceArn=" + urllib.parse.quote(queue, safe=""))
    assert status == 200
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [doc["UUID"]]


def test_a_source_feeds_a_function_once(lam: LambdaClient, function: str, queue: str) -> None:
    first = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    with pytest.raises(ClientError) as caught:
        lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue, BatchSize=3)
    assert error(caught) == (
        409,
        "ResourceConflictException",
        f'The event source arn (" {queue} ") and function (" {function} ") provided mapping already exists. '
        f"Please update or delete the existing mapping with UUID {first['UUID']}",
    )
    # Its version is another function.
    lam.create_event_source_mapping(FunctionName=f"{function}:1", EventSourceArn=queue)


# ---------------------------------------------------------------------------------------------- refusals


def _refused(lam: LambdaClient, **request: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        lam.create_event_source_mapping(**request)
    return error(caught)


def test_the_function_and_its_version_must_exist(lam: LambdaClient, function: str, queue: str) -> None:
    status, kind, _ = _refused(lam, FunctionName="no-such-function", EventSourceArn=queue)
    assert (status, kind) == (404, "ResourceNotFoundException")
    status, kind, message = _refused(lam, FunctionName=f"{function}:7", EventSourceArn=queue)
    assert (status, kind, message) == (404, "ResourceNotFoundException", f"Function not found: {function}:7")


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("arn:aws:kinesis:us-east-1:000000000000:stream/s", "Leasehold supports Amazon SQS event sources only"),
        ("arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x", "not dynamodb"),
        ("arn:aws:sqs:eu-west-1:000000000000:q", "of account 000000000000 in us-east-1"),
        ("arn:aws:sqs:us-east-1:123456789012:q", "of account 000000000000 in us-east-1"),
        ("arn:aws:sqs:us-east-1:000000000000:missing", "AWS.SimpleQueueService.NonExistentQueue"),
    ],
)
def test_the_source_must_be_an_existing_queue_of_this_account_and_region(
    lam: LambdaClient, function: str, source: str, words: str
) -> None:
    status, kind, message = _refused(lam, FunctionName=function, EventSourceArn=source)
    assert (status, kind) == (400, "InvalidParameterValueException")
    assert words in message


def test_a_source_is_required(endpoint: str, function: str) -> None:
    status, kind, doc = raw("POST", endpoint, BASE, {"FunctionName": function})
    assert (status, kind) == (400, "ValidationException")
    assert "EventSourceArn" in doc["Message"]


@pytest.mark.parametrize(
    ("settings", "kind", "words"),
    [
        (
            {"BatchSize": 11},
            "InvalidParameterValueException",
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ),
        ({"BatchSize": 10_001}, "ValidationException", "between 1 and 10000"),
        ({"MaximumBatchingWindowInSeconds": 301}, "ValidationException", "between 0 and 300"),
        ({"FunctionResponseTypes": ["Everything"]}, "ValidationException", "ReportBatchItemFailures"),
        ({"ScalingConfig": {"MaximumConcurrency": 1001}}, "ValidationException", "between 2 and 1000"),
        ({"FilterCriteria": {"Filters": [{"Pattern": "[1]"}]}}, "InvalidParameterValueException", "filter pattern"),
        ({"FilterCriteria": {"Filters": [{"Pattern": "{"}]}}, "InvalidParameterValueException", "not JSON"),
    ],
)
def test_settings_out_of_bounds_are_refused(
    lam: LambdaClient, function: str, queue: str, settings: dict[str, Any], kind: str, words: str
) -> None:
    status, got_kind, message = _refused(lam, FunctionName=function, EventSourceArn=queue, **settings)
    assert (status, got_kind) == (400, kind)
    assert words in message


@pytest.mark.parametrize(
    "settings",
    [{"BatchSize": 0}, {"MaximumBatchingWindowInSeconds": -1}, {"ScalingConfig": {"MaximumConcurrency": 1}}],
)
def test_settings_below_their_minimum_are_refused(
    endpoint: str, function: str, queue: str, settings: dict[str, Any]
) -> None:
    # boto3 checks minimums itself; a raw request reaches the frontend.
    status, kind, _ = raw("POST", endpoint, BASE, {"FunctionName": function, "EventSourceArn": queue, **settings})
    assert (status, kind) == (400, "ValidationException")


def test_a_larger_batch_with_a_window_is_accepted(lam: LambdaClient, function: str, queue: str) -> None:
    made = lam.create_event_source_mapping(
        FunctionName=function, EventSourceArn=queue, BatchSize=10_000, MaximumBatchingWindowInSeconds=1
    )
    assert made["BatchSize"] == 10_000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"BatchSize": 11, "MaximumBatchingWindowInSeconds": 1},
            "BatchSize must be at most 10 for FIFO queues, not 11",
        ),
        ({"MaximumBatchingWindowInSeconds": 1}, "Batching window is not supported for FIFO queues"),
    ],
)
def test_fifo_queues_take_batches_of_ten_without_a_window(
    lam: LambdaClient, sqs: Any, function: str, settings: dict[str, Any], message: str
) -> None:
    name = f"esmf{next(_names)}.fifo"
    sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})
    assert _refused(lam, FunctionName=function, EventSourceArn=arn_of(name), **settings) == (
        400,
        "InvalidParameterValueException",
        message,
    )
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=arn_of(name), BatchSize=10)
    assert made["BatchSize"] == 10


def test_the_queue_must_hide_a_message_as_long_as_the_function_may_run(
    lam: LambdaClient, sqs: Any, function: str
) -> None:
    name = f"esmv{next(_names)}"
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "2"})
    assert _refused(lam, FunctionName=function, EventSourceArn=arn_of(name)) == (
        400,
        "InvalidParameterValueException",
        "Queue visibility timeout: 2 seconds is less than Function timeout: 3 seconds",
    )
    sqs.set_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"], Attributes={"VisibilityTimeout": "3"}
    )
    lam.create_event_source_mapping(FunctionName=function, EventSourceArn=arn_of(name))


_OTHER_SOURCES: dict[str, Any] = {
    "StartingPosition": "LATEST",
    "StartingPositionTimestamp": 1_700_000_000,
    "ParallelizationFactor": 2,
    "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq"}},
    "MaximumRecordAgeInSeconds": 60,
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": 1,
    "TumblingWindowInSeconds": 10,
    "Topics": ["t"],
    "Queues": ["q"],
    "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": "u"}],
    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["h:9092"]}},
    "AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g"},
    "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g"},
    "DocumentDBEventSourceConfig": {"DatabaseName": "d"},
    "KMSKeyArn": "arn:aws:kms:us-east-1:000000000000:key/k",
    "MetricsConfig": {"Metrics": ["EventCount"]},
    "LoggingConfig": {"SystemLogLevel": "INFO"},
    "ProvisionedPollerConfig": {"MinimumPollers": 2},
    "Tags": {"team": "a"},
}


@pytest.mark.parametrize("member", sorted(_OTHER_SOURCES))
def test_members_of_other_sources_or_without_effect_here_are_refused_by_name(
    lam: LambdaClient, function: str, queue: str, member: str
) -> None:
    status, kind, message = _refused(
        lam, FunctionName=function, EventSourceArn=queue, **{member: _OTHER_SOURCES[member]}
    )
    assert (status, kind) == (400, "InvalidParameterValueException")
    reason = (
        "is not supported for Amazon SQS event sources" if member in NOT_FOR_SQS else "is not supported by Leasehold"
    )
    assert message.startswith(f"{member} {reason}")
    assert lam.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"] == []


def test_the_members_are_botocores() -> None:
    model = botocore.session.get_session().get_service_model("lambda")
    create_shape = model.operation_model("CreateEventSourceMapping").input_shape
    update_shape = model.operation_model("UpdateEventSourceMapping").input_shape
    assert create_shape is not None
    assert update_shape is not None
    create, update = set(create_shape.members), set(update_shape.members)
    assert create == CREATE_MEMBERS
    assert update == UPDATE_MEMBERS | {"UUID"}
    assert set(NOT_FOR_SQS) | set(NOT_IN_LEASEHOLD) == set(_OTHER_SOURCES)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "InvalidRequestContentException"),
        (b"[1, 2]", "InvalidParameterValueException"),
        (b"[" * 100_000, "InvalidRequestContentException"),
        (
            {"FunctionName": 7, "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q"},
            "InvalidParameterValueException",
        ),
        ({"FunctionName": "f", "EventSourceArn": ["x"]}, "InvalidParameterValueException"),
        ({"FunctionName": "f", "EventSourceArn": "not-an-arn"}, "ValidationException"),
        (
            {"FunctionName": "f", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:" + "q" * 20_000},
            "ValidationException",
        ),
        ({"FunctionName": "f" * 1000, "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q"}, "ValidationException"),
        (
            {"FunctionName": "f\u0000; DROP TABLE", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q"},
            "ValidationException",
        ),
        ({"FunctionName": "f", "Unknown": 1}, "InvalidParameterValueException"),
    ],
)
def test_malformed_requests_are_lambda_errors(endpoint: str, body: object, kind: str) -> None:
    status, got, doc = raw("POST", endpoint, BASE, body)
    assert (status, got) == (400, kind)
    assert doc["Message"]


@pytest.mark.parametrize(
    "settings",
    [
        {"BatchSize": "10"},
        {"BatchSize": 1.5},
        {"BatchSize": True},
        {"Enabled": "yes"},
        {"FunctionResponseTypes": "ReportBatchItemFailures"},
        {"FunctionResponseTypes": ["ReportBatchItemFailures", "ReportBatchItemFailures"]},
        {"ScalingConfig": [5]},
        {"ScalingConfig": {"MaximumConcurrency": 5, "Other": 1}},
        {"FilterCriteria": "body=1"},
        {"FilterCriteria": {"Filters": [{"Pattern": "{}"}] * 6}},
        {"FilterCriteria": {"Filters": [{"Pattern": json.dumps({"k": ["v" * 5000]})}]}},
        {"FilterCriteria": {"Filters": [{"Pattern": "{" * 2000 + "}" * 2000}]}},
        {"FilterCriteria": {"Filters": [{"Pattern": 5}]}},
    ],
)
def test_mistyped_oversized_and_hostile_settings_are_refused(
    endpoint: str, function: str, queue: str, settings: dict[str, Any]
) -> None:
    status, kind, doc = raw("POST", endpoint, BASE, {"FunctionName": function, "EventSourceArn": queue, **settings})
    assert status == 400
    assert kind in {"InvalidParameterValueException", "ValidationException"}
    assert doc["Message"]


# ---------------------------------------------------------------------------------------------- list


def test_list_pages_through_every_mapping_by_uuid(lam: LambdaClient, function: str, sqs: Any) -> None:
    made = []
    for _ in range(5):
        name = f"esml{next(_names)}"
        sqs.create_queue(QueueName=name)
        made.append(lam.create_event_source_mapping(FunctionName=function, EventSourceArn=arn_of(name))["UUID"])
    seen: list[str] = []
    kwargs: dict[str, Any] = {"FunctionName": function, "MaxItems": 2}
    while True:
        answer = lam.list_event_source_mappings(**kwargs)
        seen += [m["UUID"] for m in answer["EventSourceMappings"]]
        if "NextMarker" not in answer:
            break
        assert len(answer["EventSourceMappings"]) == 2
        kwargs["Marker"] = answer["NextMarker"]
    assert seen == sorted(made)
    paginated = lam.get_paginator("list_event_source_mappings").paginate(FunctionName=function)
    assert [m["UUID"] for p in paginated for m in p["EventSourceMappings"]] == sorted(made)


def test_list_filters_by_function_in_every_spelling_and_by_source(
    lam: LambdaClient, function: str, queue: str, sqs: Any
) -> None:
    plain = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)["UUID"]
    version = lam.create_event_source_mapping(FunctionName=f"{function}:1", EventSourceArn=queue)["UUID"]
    other_queue = arn_of(f"esmo{next(_names)}")
    sqs.create_queue(QueueName=other_queue.rpartition(":")[2])
    other = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=other_queue)["UUID"]

    def listed(**kwargs: Any) -> set[str]:
        return {m["UUID"] for m in lam.list_event_source_mappings(**kwargs)["EventSourceMappings"]}

    full = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    assert listed(FunctionName=function) == {plain, version, other}
    assert listed(FunctionName=f"{ACCOUNT}:function:{function}") == {plain, version, other}
    assert listed(FunctionName=full) == {plain, version, other}
    assert listed(FunctionName=f"{full}:1") == {version}
    assert listed(FunctionName=f"{function}:$LATEST") == {plain, other}
    assert listed(EventSourceArn=queue) == {plain, version}
    assert listed(EventSourceArn=other_queue, FunctionName=function) == {other}
    assert listed(FunctionName="no-such-function") == set()
    assert listed(EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/s") == set()


@pytest.mark.parametrize(
    "query",
    ["MaxItems=0", "MaxItems=10001", "MaxItems=ten", "Marker=" + "m" * 2000, "Other=1", "FunctionName=bad%20name"],
)
def test_list_refuses_bad_queries(endpoint: str, query: str) -> None:
    status, kind, _ = raw("GET", endpoint, f"{BASE}?{query}")
    assert (status, kind) in {(400, "InvalidParameterValueException"), (400, "ValidationException")}


# ---------------------------------------------------------------------------------------------- update


def test_update_changes_only_the_members_given(
    lam: LambdaClient, platform: DevPlatform, function: str, queue: str
) -> None:
    made = lam.create_event_source_mapping(
        FunctionName=function, EventSourceArn=queue, BatchSize=50, MaximumBatchingWindowInSeconds=3,
        ScalingConfig={"MaximumConcurrency": 4}, FunctionResponseTypes=["ReportBatchItemFailures"],
    )  # fmt: skip
    settle(platform, made["UUID"])
    assert lam.get_event_source_mapping(UUID=made["UUID"])["State"] == "Enabled"
    updated = lam.update_event_source_mapping(UUID=made["UUID"], BatchSize=20)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (updated["State"], updated["BatchSize"], updated["MaximumBatchingWindowInSeconds"]) == ("Updating", 20, 3)
    assert updated["ScalingConfig"] == {"MaximumConcurrency": 4}
    assert updated["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert updated["LastModified"] >= made["LastModified"]
    settle(platform, made["UUID"])
    # Empty values remove what they stand for.
    cleared = lam.update_event_source_mapping(
        UUID=made["UUID"], ScalingConfig={}, FunctionResponseTypes=[], FilterCriteria={}
    )
    assert "ScalingConfig" not in cleared
    assert "FilterCriteria" not in cleared
    assert cleared["FunctionResponseTypes"] == []
    assert cleared["BatchSize"] == 20


def test_update_checks_the_result_as_a_whole(
    lam: LambdaClient, platform: DevPlatform, function: str, queue: str
) -> None:
    made = lam.create_event_source_mapping(
        FunctionName=function, EventSourceArn=queue, BatchSize=50, MaximumBatchingWindowInSeconds=3
    )
    settle(platform, made["UUID"])
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=made["UUID"], MaximumBatchingWindowInSeconds=0)
    assert error(caught)[1:] == (
        "InvalidParameterValueException",
        "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
    )
    assert lam.get_event_source_mapping(UUID=made["UUID"])["State"] == "Enabled"  # nothing changed
    for member in ("StartingPosition", "Tags"):
        status, kind, _ = raw("PUT", platform.http_endpoint, f"{BASE}/{made['UUID']}", {member: "LATEST"})
        assert (status, kind) == (400, "InvalidParameterValueException")
    status, kind, _ = raw("PUT", platform.http_endpoint, f"{BASE}/{made['UUID']}", {"ParallelizationFactor": 2})
    assert (status, kind) == (400, "InvalidParameterValueException")


def test_a_change_in_transition_refuses_another(
    lam: LambdaClient, platform: DevPlatform, function: str, queue: str
) -> None:
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=made["UUID"], BatchSize=5)
    status, kind, message = error(caught)
    assert (status, kind) == (400, "ResourceInUseException")
    assert made["UUID"] in message
    assert "Creating" in message
    settle(platform, made["UUID"])
    assert lam.update_event_source_mapping(UUID=made["UUID"], BatchSize=5)["State"] == "Updating"
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=made["UUID"], BatchSize=6)
    assert error(caught)[1] == "ResourceInUseException"
    assert lam.get_event_source_mapping(UUID=made["UUID"])["BatchSize"] == 5


def test_enabled_changes_are_enabling_and_disabling(
    lam: LambdaClient, platform: DevPlatform, function: str, queue: str
) -> None:
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    settle(platform, made["UUID"])
    assert lam.update_event_source_mapping(UUID=made["UUID"], Enabled=False)["State"] == "Disabling"
    settle(platform, made["UUID"])
    assert lam.get_event_source_mapping(UUID=made["UUID"])["State"] == "Disabled"
    assert lam.update_event_source_mapping(UUID=made["UUID"], Enabled=True)["State"] == "Enabling"


def test_update_moves_a_mapping_to_another_function(
    lam: LambdaClient, platform: DevPlatform, function: str, queue: str
) -> None:
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    taken = lam.create_event_source_mapping(FunctionName=f"{function}:1", EventSourceArn=queue)
    settle(platform, made["UUID"])
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=made["UUID"], FunctionName=f"{function}:1")
    status, kind, message = error(caught)
    assert (status, kind) == (409, "ResourceConflictException")
    assert message.endswith(f"with UUID {taken['UUID']}")
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=made["UUID"], FunctionName="no-such-function")
    assert error(caught)[:2] == (404, "ResourceNotFoundException")
    other = f"esmfn{next(_names)}"
    lam.create_function(
        FunctionName=other, Runtime="python3.11", Handler="app.handler", Role=ROLE, Code=CODE, Timeout=60
    )
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=made["UUID"], FunctionName=other)
    assert error(caught)[2] == "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds"
    lam.update_function_configuration(FunctionName=other, Timeout=30)
    moved = lam.update_event_source_mapping(UUID=made["UUID"], FunctionName=other)
    assert moved["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{other}"
    assert [m["UUID"] for m in lam.list_event_source_mappings(FunctionName=other)["EventSourceMappings"]] == [
        made["UUID"]
    ]


# ---------------------------------------------------------------------------------------------- delete


def test_delete_answers_deleting_once(lam: LambdaClient, function: str, queue: str) -> None:
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    deleted = lam.delete_event_source_mapping(UUID=made["UUID"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert set(deleted) - {"ResponseMetadata"} == SQS_MEMBERS
    assert deleted["State"] == "Deleting"
    assert lam.get_event_source_mapping(UUID=made["UUID"])["State"] == "Deleting"
    for call in (lam.delete_event_source_mapping, lam.update_event_source_mapping):
        with pytest.raises(ClientError) as caught:
            call(UUID=made["UUID"])
        assert error(caught)[:2] == (400, "ResourceInUseException")


def test_a_settled_deletion_removes_the_mapping(
    lam: LambdaClient, platform: DevPlatform, function: str, queue: str
) -> None:
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    lam.delete_event_source_mapping(UUID=made["UUID"])
    settle(platform, made["UUID"])
    with pytest.raises(ClientError) as caught:
        lam.get_event_source_mapping(UUID=made["UUID"])
    assert error(caught) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)  # the pair is free again


def test_unknown_and_malformed_uuids(lam: LambdaClient, endpoint: str) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    for call in (lam.get_event_source_mapping, lam.update_event_source_mapping, lam.delete_event_source_mapping):
        with pytest.raises(ClientError) as caught:
            call(UUID=missing)
        assert error(caught) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    for method in ("GET", "PUT", "DELETE"):
        status, kind, _ = raw(method, endpoint, f"{BASE}/short", {} if method == "PUT" else None)
        assert (status, kind) == (400, "ValidationException")


# ---------------------------------------------------------------------------------------------- who may call


def test_a_function_session_may_not_manage_mappings(
    platform: DevPlatform, lam: LambdaClient, function: str, queue: str
) -> None:
    made = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue)
    session = lambda_client(platform.http_endpoint, credentials=function_session(platform))
    for call in (
        lambda: session.create_event_source_mapping(FunctionName=function, EventSourceArn=queue),
        session.list_event_source_mappings,
        lambda: session.get_event_source_mapping(UUID=made["UUID"]),
        lambda: session.update_event_source_mapping(UUID=made["UUID"], BatchSize=1),
        lambda: session.delete_event_source_mapping(UUID=made["UUID"]),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        status, kind, message = error(caught)
        assert (status, kind) == (403, "AccessDeniedException")
        assert "EventSourceMapping" in message
    assert lam.get_event_source_mapping(UUID=made["UUID"])["State"] == "Creating"
