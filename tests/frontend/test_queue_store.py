"""The SQS queue store on SQLite and PostgreSQL: queues and their attributes, tags and listing; sends,
batches and their MD5s; receives, visibility, receipt handles and deletes; redrive to a dead-letter queue;
retention; FIFO groups and deduplication; concurrent pollers; and malformed, oversized and hostile input.

Time is passed in (``now_ms``): nothing here sleeps.
"""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from assignment.frontend.queues import (
    DEDUP_WINDOW_MS,
    BatchEntryIdsNotDistinct,
    BatchError,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    Message,
    MessageAttribute,
    MessageNotInflight,
    MissingParameter,
    NewMessage,
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueDoesNotExist,
    QueueError,
    QueueNameExists,
    QueueStore,
    ReceiptHandleIsInvalid,
    SendResult,
    TooManyEntriesInBatchRequest,
    md5_of_attributes,
    md5_of_body,
    sqs_dedup,
    sqs_deleted_queues,
    sqs_messages,
    sqs_queues,
    sqs_receive_attempts,
)
from journal.store import Journal
from tests.harness.migrations import assert_tables_match_migrations, downgrade_then_upgrade

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
SENDER = "AIDAEXAMPLE"
T0 = 1_700_000_000_000
MIB = 1_048_576


def arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:sqs:us-east-1:{account}:{name}"


def redrive(target: str, count: int | str = 2) -> str:
    return json.dumps({"deadLetterTargetArn": arn(target), "maxReceiveCount": count})


@pytest.fixture
def store(journal: Journal) -> QueueStore:
    return QueueStore(journal)


def send(store: QueueStore, name: str, body: str = "hello", now_ms: int = T0, **kwargs: object) -> SendResult:
    return store.send_message(ACCOUNT, name, NewMessage(body, **kwargs), sender_id=SENDER, now_ms=now_ms)  # type: ignore[arg-type]


def receive(store: QueueStore, name: str, now_ms: int = T0, n: int = 10, vt: int | None = None) -> list[Message]:
    return store.receive_messages(ACCOUNT, name, max_messages=n, visibility_timeout=vt, now_ms=now_ms).messages


def counts(store: QueueStore, name: str, now_ms: int = T0) -> tuple[int, int, int]:
    values = store.get_queue_attributes(
        ACCOUNT,
        name,
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        queue_arn=arn(name),
        now_ms=now_ms,
    )
    return (
        int(values["ApproximateNumberOfMessages"]),
        int(values["ApproximateNumberOfMessagesNotVisible"]),
        int(values["ApproximateNumberOfMessagesDelayed"]),
    )


def fifo(store: QueueStore, name: str = "jobs.fifo", **attributes: str) -> None:
    store.create_queue(ACCOUNT, name, {"FifoQueue": "true", **attributes}, now_ms=T0)


# ---------------------------------------------------------------------------------------------- MD5s


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        # Amazon's samples (as the YDB/YMQ unit tests quote them), one with a Binary value.
        (
            {
                "test_attribute_name_2": MessageAttribute("String", "test_attribute_value_2"),
                "test_attribute_name_1": MessageAttribute("String", "test_attribute_value_1"),
            },
            "d53f3b558fe951154770f25cb63dbba9",
        ),
        (
            {"test_attribute_name": MessageAttribute("Binary", binary_value=b"test_attribute_value")},
            "23f6bd27ea87aab7dfeadcc9aebee495",
        ),
        # The vectors of aws-sdk-js's checksum tests and of sqslite (checked against real SQS by its author).
        ({"SellerName": MessageAttribute("String", "Example Store")}, "cd28f3b68aeee4b2eac9c66f2f694b58"),
        (
            {"ordinal": MessageAttribute("Number", "1"), "category": MessageAttribute("String", "test")},
            "d21ae90c49061e927f57df5f5d72be1f",
        ),
    ],
)
def test_md5_of_message_attributes_matches_known_vectors(
    attributes: dict[str, MessageAttribute], expected: str
) -> None:
    assert md5_of_attributes(attributes) == expected


def test_md5_of_body_and_of_no_attributes() -> None:
    assert md5_of_body("hello") == hashlib.md5(b"hello").hexdigest()
    assert md5_of_body("ü") == hashlib.md5("ü".encode()).hexdigest()
    assert md5_of_attributes({}) == ""


def test_send_and_receive_give_the_md5s(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    attributes = {"SellerName": MessageAttribute("String", "Example Store")}
    trace = {"AWSTraceHeader": MessageAttribute("String", "Root=1-5759e988-bd862e3fe1be46a994272793")}
    sent = send(store, "jobs", "hello", attributes=attributes, system_attributes=trace)
    assert sent.md5_of_body == md5_of_body("hello")
    assert sent.md5_of_attributes == "cd28f3b68aeee4b2eac9c66f2f694b58"
    assert sent.md5_of_system_attributes == md5_of_attributes(trace)
    [message] = receive(store, "jobs")
    assert (message.md5_of_body, message.md5_of_attributes) == (sent.md5_of_body, sent.md5_of_attributes)
    assert message.message_attributes == attributes
    assert message.attributes["AWSTraceHeader"] == "Root=1-5759e988-bd862e3fe1be46a994272793"


# -------------------------------------------------------------------------------------------- queues


def test_create_is_idempotent_with_equal_attributes_and_refuses_different_ones(store: QueueStore) -> None:
    first = store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "60"}, now_ms=T0)
    assert store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "60"}, now_ms=T0 + 5).queue_id == first.queue_id
    assert store.create_queue(ACCOUNT, "jobs", now_ms=T0 + 5).queue_id == first.queue_id  # none given: none differ
    with pytest.raises(QueueNameExists) as info:
        store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "61"}, now_ms=T0 + 5)
    assert (info.value.code, info.value.query_code) == ("QueueNameExists", "QueueAlreadyExists")
    # The same name in another account is another queue.
    assert store.create_queue(OTHER_ACCOUNT, "jobs", now_ms=T0).queue_id != first.queue_id


def test_defaults_and_stored_timestamps(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    values = store.get_queue_attributes(ACCOUNT, "jobs", queue_arn=arn("jobs"), now_ms=T0)
    assert values == {
        "SqsManagedSseEnabled": "false",
        "VisibilityTimeout": "30",
        "MessageRetentionPeriod": "345600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        "MaximumMessageSize": str(MIB),
        "CreatedTimestamp": str(T0 // 1000),
        "LastModifiedTimestamp": str(T0 // 1000),
        "QueueArn": arn("jobs"),
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
    }
    store.set_queue_attributes(ACCOUNT, "jobs", {"DelaySeconds": "5"}, now_ms=T0 + 10_000)
    values = store.get_queue_attributes(
        ACCOUNT, "jobs", ["DelaySeconds", "LastModifiedTimestamp"], queue_arn="", now_ms=T0
    )
    assert values == {"DelaySeconds": "5", "LastModifiedTimestamp": str(T0 // 1000 + 10)}


def test_fifo_attributes(store: QueueStore) -> None:
    fifo(store, ContentBasedDeduplication="true")
    values = store.get_queue_attributes(ACCOUNT, "jobs.fifo", ["All"], queue_arn="", now_ms=T0)
    assert (values["FifoQueue"], values["ContentBasedDeduplication"]) == ("true", "true")
    with pytest.raises(InvalidAttributeName):
        store.set_queue_attributes(ACCOUNT, "jobs.fifo", {"FifoQueue": "false"}, now_ms=T0)
    store.create_queue(ACCOUNT, "plain", {"FifoQueue": "false"}, now_ms=T0)
    assert "FifoQueue" not in store.get_queue_attributes(ACCOUNT, "plain", queue_arn="", now_ms=T0)
    with pytest.raises(InvalidAttributeName):
        store.create_queue(ACCOUNT, "other", {"ContentBasedDeduplication": "true"}, now_ms=T0)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 81,
        "a b",
        "a/b",
        "a.b",
        "ü",
        "q\n",
        "x'; DROP TABLE sqs_queues; --",
        "%",
        "jobs.fifo",  # a FIFO name without FifoQueue=true
        ".fifo",
    ],
)
def test_bad_queue_names_are_refused(store: QueueStore, name: str) -> None:
    with pytest.raises(InvalidParameterValue):
        store.create_queue(ACCOUNT, name, now_ms=T0)
    with pytest.raises(QueueDoesNotExist) as info:
        store.get_queue(ACCOUNT, name)
    assert info.value.query_code == "AWS.SimpleQueueService.NonExistentQueue"


@pytest.mark.parametrize("name", ["jobs", "x" * 76 + ".fifo", "a.fifo.fifo"])
def test_fifo_queue_names_must_end_in_fifo(store: QueueStore, name: str) -> None:
    with pytest.raises(InvalidParameterValue):
        store.create_queue(ACCOUNT, name, {"FifoQueue": "true"}, now_ms=T0)


def test_longest_names(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "x" * 80, now_ms=T0)
    fifo(store, "y" * 75 + ".fifo")
    assert store.list_queues(ACCOUNT).names == ["x" * 80, "y" * 75 + ".fifo"]


@pytest.mark.parametrize("account", ["", "12345678901", "1234567890123", "abcdefghijkl", "12345678901\n"])
def test_bad_account_ids_are_refused(store: QueueStore, account: str) -> None:
    with pytest.raises(InvalidParameterValue):
        store.create_queue(account, "jobs", now_ms=T0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VisibilityTimeout", "-1"),
        ("VisibilityTimeout", "43201"),
        ("VisibilityTimeout", "1.5"),
        ("VisibilityTimeout", ""),
        ("VisibilityTimeout", "thirty"),
        ("MessageRetentionPeriod", "59"),
        ("MessageRetentionPeriod", "1209601"),
        ("DelaySeconds", "901"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
        ("MaximumMessageSize", "1023"),
        ("MaximumMessageSize", str(MIB + 1)),
        ("MaximumMessageSize", "9" * 40),
        ("FifoQueue", "yes"),
    ],
)
def test_out_of_range_attributes_are_refused(store: QueueStore, name: str, value: str) -> None:
    with pytest.raises(InvalidAttributeValue):
        store.create_queue(ACCOUNT, "jobs", {name: value}, now_ms=T0)
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    if name != "FifoQueue":
        with pytest.raises(InvalidAttributeValue):
            store.set_queue_attributes(ACCOUNT, "jobs", {name: value}, now_ms=T0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VisibilityTimeout", "0"),
        ("VisibilityTimeout", "43200"),
        ("MessageRetentionPeriod", "60"),
        ("MessageRetentionPeriod", "1209600"),
        ("DelaySeconds", "900"),
        ("ReceiveMessageWaitTimeSeconds", "20"),
        ("MaximumMessageSize", "1024"),
    ],
)
def test_attribute_bounds_are_accepted(store: QueueStore, name: str, value: str) -> None:
    store.create_queue(ACCOUNT, "jobs", {name: value}, now_ms=T0)
    assert store.get_queue_attributes(ACCOUNT, "jobs", [name], queue_arn="", now_ms=T0) == {name: value}


def test_unknown_attribute_names_are_refused(store: QueueStore) -> None:
    with pytest.raises(InvalidAttributeName):
        store.create_queue(ACCOUNT, "jobs", {"Visibility": "3"}, now_ms=T0)
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(InvalidAttributeName):
        store.get_queue_attributes(ACCOUNT, "jobs", ["NotAnAttribute"], queue_arn="", now_ms=T0)


def test_delete_queue_then_the_name_waits_60_seconds(store: QueueStore) -> None:
    first = store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    send(store, "jobs")
    store.delete_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(QueueDoesNotExist):
        send(store, "jobs")
    with pytest.raises(QueueDeletedRecently):
        store.create_queue(ACCOUNT, "jobs", now_ms=T0 + 59_999)
    second = store.create_queue(ACCOUNT, "jobs", now_ms=T0 + 60_000)
    assert second.queue_id != first.queue_id
    assert receive(store, "jobs", T0 + 60_000) == []  # the old queue's message went with it
    with pytest.raises(QueueDoesNotExist):
        store.delete_queue(ACCOUNT, "nope", now_ms=T0)


def test_tags(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", tags={"team": "a"}, now_ms=T0)
    store.tag_queue(ACCOUNT, "jobs", {"env": "prod", "team": "b"})
    assert store.list_queue_tags(ACCOUNT, "jobs") == {"team": "b", "env": "prod"}
    store.untag_queue(ACCOUNT, "jobs", ["team", "absent"])
    assert store.list_queue_tags(ACCOUNT, "jobs") == {"env": "prod"}
    with pytest.raises(InvalidParameterValue):
        store.tag_queue(ACCOUNT, "jobs", {f"k{i}": "v" for i in range(50)})  # 51 with "env"
    for bad in ({"": "v"}, {"k" * 129: "v"}, {"aws:x": "v"}, {"k": "v" * 257}, {"k": "\x00"}):
        with pytest.raises(InvalidParameterValue):
            store.tag_queue(ACCOUNT, "jobs", bad)
    assert store.list_queue_tags(ACCOUNT, "jobs") == {"env": "prod"}


def test_list_queues_by_prefix_with_pages(store: QueueStore) -> None:
    for name in ("b-3", "a-1", "b-1", "b-2", "c_1", "B-4"):
        store.create_queue(ACCOUNT, name, now_ms=T0)
    store.create_queue(OTHER_ACCOUNT, "b-9", now_ms=T0)
    assert store.list_queues(ACCOUNT).names == ["B-4", "a-1", "b-1", "b-2", "b-3", "c_1"]
    assert store.list_queues(ACCOUNT).next_token is None  # no token without MaxResults
    assert store.list_queues(ACCOUNT, "b").names == ["b-1", "b-2", "b-3"]  # case-sensitive
    first = store.list_queues(ACCOUNT, "b", max_results=2)
    assert first.names == ["b-1", "b-2"]
    assert first.next_token is not None
    second = store.list_queues(ACCOUNT, "b", max_results=2, next_token=first.next_token)
    assert (second.names, second.next_token) == (["b-3"], None)
    assert store.list_queues(ACCOUNT, "%").names == []  # LIKE's wildcards are literal
    assert store.list_queues(ACCOUNT, "_").names == []
    assert store.list_queues(ACCOUNT, "' OR 1=1 --").names == []
    for bad in (0, 1001, -1):
        with pytest.raises(InvalidParameterValue):
            store.list_queues(ACCOUNT, max_results=bad)
    for token in ("garbage", "", "e30=", "!!!"):
        with pytest.raises(InvalidParameterValue):
            store.list_queues(ACCOUNT, next_token=token)


def test_list_queues_pages_through_many(store: QueueStore) -> None:
    names = [f"q{i:04d}" for i in range(25)]
    for name in names:
        store.create_queue(ACCOUNT, name, now_ms=T0)
    seen: list[str] = []
    token = None
    while True:
        page = store.list_queues(ACCOUNT, max_results=7, next_token=token)
        seen += page.names
        if page.next_token is None:
            break
        token = page.next_token
    assert seen == names


def test_purge(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    for _ in range(3):
        send(store, "jobs")
    receive(store, "jobs", n=1)
    assert store.purge_queue(ACCOUNT, "jobs", now_ms=T0) == 3
    assert counts(store, "jobs") == (0, 0, 0)
    send(store, "jobs")
    with pytest.raises(PurgeQueueInProgress):
        store.purge_queue(ACCOUNT, "jobs", now_ms=T0 + 59_999)
    assert store.purge_queue(ACCOUNT, "jobs", now_ms=T0 + 60_000) == 1


# ----------------------------------------------------------------------------------- send and receive


def test_send_receive_delete(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    sent = send(store, "jobs", "hello", now_ms=T0)
    assert sent.sequence_number == ""
    assert counts(store, "jobs") == (1, 0, 0)
    [message] = receive(store, "jobs", T0 + 100)
    assert message.message_id == sent.message_id
    assert message.body == "hello"
    assert message.attributes == {
        "SenderId": SENDER,
        "SentTimestamp": str(T0),
        "ApproximateReceiveCount": "1",
        "ApproximateFirstReceiveTimestamp": str(T0 + 100),
    }
    assert counts(store, "jobs", T0 + 100) == (0, 1, 0)
    assert receive(store, "jobs", T0 + 200) == []
    assert store.delete_message(ACCOUNT, "jobs", message.receipt_handle)
    assert counts(store, "jobs", T0 + 200) == (0, 0, 0)
    assert not store.delete_message(ACCOUNT, "jobs", message.receipt_handle)  # again: succeeds, nothing left


def test_a_send_is_durable_before_it_returns(url: str) -> None:
    with Journal.open(url) as journal:
        store = QueueStore(journal)
        store.create_queue(ACCOUNT, "jobs", now_ms=T0)
        sent = send(store, "jobs", "kept")
    with Journal.open(url) as journal:
        [message] = receive(QueueStore(journal), "jobs")
    assert (message.message_id, message.body) == (sent.message_id, "kept")


def test_visibility_timeout_then_redelivery_with_a_new_handle(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "10"}, now_ms=T0)
    send(store, "jobs")
    received = store.receive_messages(ACCOUNT, "jobs", now_ms=T0)
    [first] = received.messages
    assert received.next_visible_ms is None  # only an empty receive says when to look again
    empty = store.receive_messages(ACCOUNT, "jobs", now_ms=T0 + 9_999)
    assert (empty.messages, empty.next_visible_ms) == ([], T0 + 10_000)
    [second] = receive(store, "jobs", T0 + 10_000, vt=100)
    assert second.receipt_handle != first.receipt_handle
    assert second.attributes["ApproximateReceiveCount"] == "2"
    assert second.attributes["ApproximateFirstReceiveTimestamp"] == str(T0)
    assert receive(store, "jobs", T0 + 109_999) == []  # the override held
    assert len(receive(store, "jobs", T0 + 110_000)) == 1


def test_receive_takes_up_to_max_in_send_order(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    bodies = [f"m{i}" for i in range(15)]
    for i, body in enumerate(bodies):
        send(store, "jobs", body, now_ms=T0 + i)
    assert [m.body for m in receive(store, "jobs", T0 + 100, n=10)] == bodies[:10]
    assert [m.body for m in receive(store, "jobs", T0 + 100, n=10)] == bodies[10:]


@pytest.mark.parametrize("n", [0, 11, -1, True])
def test_max_number_of_messages_is_1_to_10(store: QueueStore, n: int) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(InvalidParameterValue):
        store.receive_messages(ACCOUNT, "jobs", max_messages=n, now_ms=T0)


@pytest.mark.parametrize("vt", [-1, 43_201, True])
def test_receive_visibility_override_is_0_to_43200(store: QueueStore, vt: int) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(InvalidParameterValue):
        store.receive_messages(ACCOUNT, "jobs", visibility_timeout=vt, now_ms=T0)


def test_delays_per_message_and_per_queue(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", {"DelaySeconds": "20"}, now_ms=T0)
    send(store, "jobs", "queue-delay")
    send(store, "jobs", "no-delay", delay_seconds=0)
    send(store, "jobs", "own-delay", delay_seconds=5)
    assert counts(store, "jobs") == (1, 0, 2)
    assert [m.body for m in receive(store, "jobs", T0)] == ["no-delay"]
    received = store.receive_messages(ACCOUNT, "jobs", now_ms=T0 + 1)
    assert (received.messages, received.next_visible_ms) == ([], T0 + 5_000)
    assert [m.body for m in receive(store, "jobs", T0 + 5_000)] == ["own-delay"]
    assert [m.body for m in receive(store, "jobs", T0 + 20_000)] == ["queue-delay"]
    for bad in (-1, 901, True):
        with pytest.raises(InvalidParameterValue):
            send(store, "jobs", delay_seconds=bad)


@pytest.mark.parametrize("char", ["\x00", "\x08", "\x0b", "\x1f", "\ud800", "\ufffe", "\uffff"])
def test_bodies_with_characters_outside_the_allowed_set_are_refused(store: QueueStore, char: str) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(InvalidMessageContents) as info:
        send(store, "jobs", f"ok{char}ok")
    assert info.value.code == "InvalidMessageContents"
    assert counts(store, "jobs") == (0, 0, 0)


def test_every_allowed_kind_of_character_goes_through(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    body = "\t\n\r \ud7ff\ue000\ufffd\U00010000\U0010ffff<xml>{'json': 1}</xml> ü 日本"
    send(store, "jobs", body)
    [message] = receive(store, "jobs")
    assert message.body == body
    assert message.md5_of_body == md5_of_body(body)


def test_body_size_limits(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    store.create_queue(ACCOUNT, "small", {"MaximumMessageSize": "1024"}, now_ms=T0)
    send(store, "jobs", "x" * MIB)
    with pytest.raises(InvalidParameterValue):
        send(store, "jobs", "x" * (MIB + 1))
    with pytest.raises(InvalidParameterValue):
        send(store, "jobs", "ü" * (MIB // 2 + 1))  # the limit is in UTF-8 bytes
    send(store, "small", "x" * 1024)
    with pytest.raises(InvalidParameterValue):
        send(store, "small", "x" * 1025)
    # Attributes count towards the size: name + type + value.
    with pytest.raises(InvalidParameterValue):
        send(store, "small", "x" * 1000, attributes={"abcd": MessageAttribute("String", "y" * 15)})
    send(store, "small", "x" * 1000, attributes={"abcd": MessageAttribute("String", "y" * 14)})
    with pytest.raises(MissingParameter):
        send(store, "jobs", "")


def test_message_attributes(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    attributes = {
        "s": MessageAttribute("String", "text ü"),
        "n": MessageAttribute("Number", "-1.5e3"),
        "b": MessageAttribute("Binary", binary_value=b"\x00\xff"),
        "custom": MessageAttribute("Number.int", "7"),
        "custom2": MessageAttribute("String.x-y_z", "v"),
        "custom3": MessageAttribute("Binary.gif", binary_value=b"GIF"),
        "a.b-c_d": MessageAttribute("String", "v"),
        **{f"x{i}": MessageAttribute("String", "v") for i in range(3)},
    }
    assert len(attributes) == 10
    sent = send(store, "jobs", attributes=attributes)
    [message] = receive(store, "jobs")
    assert message.message_attributes == attributes
    assert message.md5_of_attributes == sent.md5_of_attributes == md5_of_attributes(attributes)


@pytest.mark.parametrize(
    "attributes",
    [
        {f"a{i}": MessageAttribute("String", "v") for i in range(11)},
        {"": MessageAttribute("String", "v")},
        {"x" * 257: MessageAttribute("String", "v")},
        {"AWS.x": MessageAttribute("String", "v")},
        {"amazon.x": MessageAttribute("String", "v")},
        {".x": MessageAttribute("String", "v")},
        {"x.": MessageAttribute("String", "v")},
        {"a..b": MessageAttribute("String", "v")},
        {"a b": MessageAttribute("String", "v")},
        {"a'--": MessageAttribute("String", "v")},
        {"a": MessageAttribute("string", "v")},
        {"a": MessageAttribute("Integer", "1")},
        {"a": MessageAttribute("String.", "v")},
        {"a": MessageAttribute("String" + ".x" * 130, "v")},
        {"a": MessageAttribute("String", "")},
        {"a": MessageAttribute("String", None)},
        {"a": MessageAttribute("String", "v", b"v")},
        {"a": MessageAttribute("Binary", "v")},
        {"a": MessageAttribute("Binary", binary_value=b"")},
        {"a": MessageAttribute("Number", "one")},
        {"a": MessageAttribute("Number", "1" * 39)},
        {"a": MessageAttribute("Number", "1e127")},
        {"a": MessageAttribute("Number", "NaN")},
        {"a": MessageAttribute("String", "bad\x00")},
    ],
)
def test_bad_message_attributes_are_refused(store: QueueStore, attributes: dict[str, MessageAttribute]) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises((InvalidParameterValue, InvalidMessageContents)):
        send(store, "jobs", attributes=attributes)
    assert counts(store, "jobs") == (0, 0, 0)


@pytest.mark.parametrize(
    "system",
    [
        {"Other": MessageAttribute("String", "v")},
        {"AWSTraceHeader": MessageAttribute("Binary", binary_value=b"v")},
        {"AWSTraceHeader": MessageAttribute("String", "")},
    ],
)
def test_bad_system_attributes_are_refused(store: QueueStore, system: dict[str, MessageAttribute]) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(InvalidParameterValue):
        send(store, "jobs", system_attributes=system)


def test_send_to_a_queue_that_does_not_exist(store: QueueStore) -> None:
    with pytest.raises(QueueDoesNotExist):
        send(store, "nope")
    store.create_queue(OTHER_ACCOUNT, "theirs", now_ms=T0)
    with pytest.raises(QueueDoesNotExist):
        send(store, "theirs")


def test_standard_queues_take_a_group_id_but_no_deduplication_id(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    send(store, "jobs", group_id="tenant-1")  # fair queues
    [message] = receive(store, "jobs")
    assert message.attributes["MessageGroupId"] == "tenant-1"
    with pytest.raises(InvalidParameterValue):
        send(store, "jobs", deduplication_id="d")


# ------------------------------------------------------------------------------------------- batches


def entries(*bodies: str) -> list[tuple[str, NewMessage]]:
    return [(f"e{i}", NewMessage(body)) for i, body in enumerate(bodies)]


def test_send_batch_reports_per_entry(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    batch = [("ok-1", NewMessage("a")), ("bad", NewMessage("bad\x00")), ("ok_2", NewMessage("b", delay_seconds=3))]
    results = store.send_message_batch(ACCOUNT, "jobs", batch, sender_id=SENDER, now_ms=T0)
    assert isinstance(results[0], SendResult)
    assert isinstance(results[1], BatchError)
    assert (results[1].id, results[1].code, results[1].sender_fault) == ("bad", "InvalidMessageContents", True)
    assert isinstance(results[2], SendResult)
    assert counts(store, "jobs") == (1, 0, 1)


@pytest.mark.parametrize(
    ("batch", "error"),
    [
        ([], EmptyBatchRequest),
        (entries(*["x"] * 11), TooManyEntriesInBatchRequest),
        ([("a", NewMessage("x")), ("a", NewMessage("y"))], BatchEntryIdsNotDistinct),
        ([("a b", NewMessage("x"))], InvalidBatchEntryId),
        ([("x" * 81, NewMessage("x"))], InvalidBatchEntryId),
        ([("", NewMessage("x"))], InvalidBatchEntryId),
        ([("a';--", NewMessage("x"))], InvalidBatchEntryId),
        (entries("x" * (MIB // 2), "y" * (MIB // 2 + 1)), BatchRequestTooLong),
    ],
)
def test_bad_send_batches_are_refused_whole(
    store: QueueStore, batch: list[tuple[str, NewMessage]], error: type[QueueError]
) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(error):
        store.send_message_batch(ACCOUNT, "jobs", batch, sender_id=SENDER, now_ms=T0)
    assert counts(store, "jobs") == (0, 0, 0)


def test_a_batch_of_10_up_to_1_mib_goes_in(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    results = store.send_message_batch(ACCOUNT, "jobs", entries(*["x" * (MIB // 10)] * 10), sender_id=SENDER, now_ms=T0)
    assert all(isinstance(r, SendResult) for r in results)
    assert counts(store, "jobs") == (10, 0, 0)


def test_delete_and_change_visibility_batches(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    for body in "abc":
        send(store, "jobs", body)
    a, b, c = receive(store, "jobs")
    changed = store.change_message_visibility_batch(
        ACCOUNT, "jobs", [("1", a.receipt_handle, 0), ("2", "garbage", 0), ("3", b.receipt_handle, 43_201)], now_ms=T0
    )
    assert changed[0] == "1"
    assert isinstance(changed[1], BatchError)
    assert changed[1].code == "ReceiptHandleIsInvalid"
    assert isinstance(changed[2], BatchError)
    assert changed[2].code == "InvalidParameterValue"
    assert counts(store, "jobs") == (1, 2, 0)
    deleted = store.delete_message_batch(
        ACCOUNT, "jobs", [("x", b.receipt_handle), ("y", "nope"), ("z", c.receipt_handle)]
    )
    assert deleted[0] == "x"
    assert deleted[2] == "z"
    assert isinstance(deleted[1], BatchError)
    assert deleted[1].code == "ReceiptHandleIsInvalid"
    assert counts(store, "jobs") == (1, 0, 0)
    with pytest.raises(EmptyBatchRequest):
        store.delete_message_batch(ACCOUNT, "jobs", [])
    with pytest.raises(TooManyEntriesInBatchRequest):
        store.delete_message_batch(ACCOUNT, "jobs", [(str(i), a.receipt_handle) for i in range(11)])
    with pytest.raises(BatchEntryIdsNotDistinct):
        store.change_message_visibility_batch(ACCOUNT, "jobs", [("1", "h", 0), ("1", "h", 0)], now_ms=T0)


def test_delete_received_counts_only_the_handles_that_still_delete(store: QueueStore) -> None:
    # The pollers' delete of a processed batch: one statement per handle in one transaction, its count the
    # sum over them (on both drivers); a superseded handle (received again since) deletes nothing.
    store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "0"}, now_ms=T0)
    store.create_queue(ACCOUNT, "other", now_ms=T0)
    for body in "abcde":
        send(store, "jobs", body)
    first = receive(store, "jobs")
    again = receive(store, "jobs", now_ms=T0 + 1)  # visibility 0: all five come back with new handles
    assert {m.message_id for m in again} == {m.message_id for m in first}
    stale = [m.receipt_handle for m in first[:2]]
    fresh = [m.receipt_handle for m in again[2:]]
    assert store.delete_received(ACCOUNT, "jobs", stale + fresh) == 3
    assert store.delete_received(ACCOUNT, "jobs", fresh) == 0  # already gone
    assert store.delete_received(ACCOUNT, "jobs", []) == 0
    send(store, "other")
    [theirs] = receive(store, "other")
    with pytest.raises(ReceiptHandleIsInvalid):  # one bad handle refuses the whole delete
        store.delete_received(ACCOUNT, "jobs", [again[0].receipt_handle, theirs.receipt_handle])
    assert counts(store, "jobs", now_ms=T0 + 2) == (2, 0, 0)


# ------------------------------------------------------------------------------- handles, visibility


@pytest.mark.parametrize(
    "handle",
    ["", "garbage", "A" * 66, "A" * 65, "A" * 67, "' OR 1=1 --", "\x00" * 66, "ü" * 66, "A" * 10_000],
)
def test_malformed_receipt_handles_are_invalid(store: QueueStore, handle: str) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    send(store, "jobs")
    with pytest.raises(ReceiptHandleIsInvalid):
        store.delete_message(ACCOUNT, "jobs", handle)
    with pytest.raises(ReceiptHandleIsInvalid):
        store.change_message_visibility(ACCOUNT, "jobs", handle, 10, now_ms=T0)


def test_a_handle_of_another_queue_is_invalid(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "one", now_ms=T0)
    store.create_queue(ACCOUNT, "two", now_ms=T0)
    send(store, "one")
    [message] = receive(store, "one")
    with pytest.raises(ReceiptHandleIsInvalid):
        store.delete_message(ACCOUNT, "two", message.receipt_handle)
    # ...also of an earlier queue of the same name.
    store.delete_queue(ACCOUNT, "one", now_ms=T0)
    store.create_queue(ACCOUNT, "one", now_ms=T0 + 60_000)
    with pytest.raises(ReceiptHandleIsInvalid):
        store.delete_message(ACCOUNT, "one", message.receipt_handle)


def test_an_old_handle_deletes_nothing_once_the_message_was_received_again(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "10"}, now_ms=T0)
    send(store, "jobs")
    [first] = receive(store, "jobs", T0)
    [second] = receive(store, "jobs", T0 + 10_000)
    assert not store.delete_message(ACCOUNT, "jobs", first.receipt_handle)  # succeeds, deletes nothing
    with pytest.raises(ReceiptHandleIsInvalid):
        store.change_message_visibility(ACCOUNT, "jobs", first.receipt_handle, 10, now_ms=T0 + 10_000)
    assert counts(store, "jobs", T0 + 10_000) == (0, 1, 0)
    assert store.delete_message(ACCOUNT, "jobs", second.receipt_handle)


def test_the_latest_handle_deletes_after_the_timeout_if_nobody_received_it_since(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "10"}, now_ms=T0)
    send(store, "jobs")
    [message] = receive(store, "jobs", T0)
    assert counts(store, "jobs", T0 + 20_000) == (1, 0, 0)
    assert store.delete_message(ACCOUNT, "jobs", message.receipt_handle)
    assert counts(store, "jobs", T0 + 20_000) == (0, 0, 0)


def test_change_message_visibility(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "10"}, now_ms=T0)
    send(store, "jobs")
    [message] = receive(store, "jobs", T0)
    store.change_message_visibility(ACCOUNT, "jobs", message.receipt_handle, 100, now_ms=T0 + 5_000)
    assert receive(store, "jobs", T0 + 104_999) == []
    store.change_message_visibility(ACCOUNT, "jobs", message.receipt_handle, 0, now_ms=T0 + 6_000)
    assert counts(store, "jobs", T0 + 6_000) == (1, 0, 0)
    with pytest.raises(MessageNotInflight) as info:
        store.change_message_visibility(ACCOUNT, "jobs", message.receipt_handle, 10, now_ms=T0 + 6_000)
    assert info.value.query_code == "AWS.SimpleQueueService.MessageNotInflight"
    [again] = receive(store, "jobs", T0 + 6_000)
    for bad in (-1, 43_201):
        with pytest.raises(InvalidParameterValue):
            store.change_message_visibility(ACCOUNT, "jobs", again.receipt_handle, bad, now_ms=T0 + 6_000)
    store.delete_message(ACCOUNT, "jobs", again.receipt_handle)
    with pytest.raises(InvalidParameterValue):  # SQS: "Message does not exist or is not available..."
        store.change_message_visibility(ACCOUNT, "jobs", again.receipt_handle, 10, now_ms=T0 + 6_000)


# ------------------------------------------------------------------------------------------- redrive


def test_redrive_moves_a_message_past_max_receive_count(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "dlq", now_ms=T0)
    store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "10", "RedrivePolicy": redrive("dlq", "2")}, now_ms=T0)
    attributes = {"k": MessageAttribute("String", "v")}
    sent = send(store, "jobs", "poison", now_ms=T0, attributes=attributes)
    assert len(receive(store, "jobs", T0)) == 1
    assert len(receive(store, "jobs", T0 + 10_000)) == 1
    assert receive(store, "jobs", T0 + 20_000) == []  # the third receive moves it instead
    assert counts(store, "jobs", T0 + 20_000) == (0, 0, 0)
    assert counts(store, "dlq", T0 + 20_000) == (1, 0, 0)
    [moved] = receive(store, "dlq", T0 + 20_000)
    assert (moved.message_id, moved.body, moved.message_attributes) == (sent.message_id, "poison", attributes)
    assert moved.md5_of_attributes == sent.md5_of_attributes
    assert moved.attributes["SentTimestamp"] == str(T0)  # the original send's
    assert store.list_dead_letter_source_queues(ACCOUNT, "dlq").names == ["jobs"]
    values = store.get_queue_attributes(ACCOUNT, "jobs", ["RedrivePolicy"], queue_arn="", now_ms=T0)
    assert json.loads(values["RedrivePolicy"]) == {"deadLetterTargetArn": arn("dlq"), "maxReceiveCount": 2}


def test_redrive_in_a_batch_returns_the_others(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "dlq", now_ms=T0)
    store.create_queue(ACCOUNT, "jobs", {"VisibilityTimeout": "0", "RedrivePolicy": redrive("dlq", 1)}, now_ms=T0)
    send(store, "jobs", "first", now_ms=T0)
    assert len(receive(store, "jobs", T0)) == 1
    send(store, "jobs", "second", now_ms=T0 + 1)
    assert [m.body for m in receive(store, "jobs", T0 + 1)] == ["second"]
    assert [m.body for m in receive(store, "dlq", T0 + 1)] == ["first"]


def test_redrive_policy_rules(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "dlq", now_ms=T0)
    fifo(store, "dlq.fifo")
    store.create_queue(ACCOUNT, "closed", {"RedriveAllowPolicy": '{"redrivePermission":"denyAll"}'}, now_ms=T0)
    only_a = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn("a")]})
    store.create_queue(ACCOUNT, "only-a", {"RedriveAllowPolicy": only_a}, now_ms=T0)
    store.create_queue(OTHER_ACCOUNT, "theirs", now_ms=T0)
    bad = [
        redrive("missing"),
        redrive("dlq.fifo"),  # a standard queue's DLQ is standard
        redrive("closed"),
        redrive("only-a"),  # "b" is not in its sourceQueueArns
        redrive("dlq", 0),
        redrive("dlq", 1001),
        redrive("dlq", "x"),
        json.dumps({"deadLetterTargetArn": arn("theirs", OTHER_ACCOUNT), "maxReceiveCount": 1}),
        json.dumps({"deadLetterTargetArn": "not-an-arn", "maxReceiveCount": 1}),
        json.dumps({"deadLetterTargetArn": arn("dlq"), "maxReceiveCount": 1, "extra": 1}),
        "not json",
        "[]",
        redrive("b"),  # itself
    ]
    for policy in bad:
        with pytest.raises(InvalidParameterValue):
            store.create_queue(ACCOUNT, "b", {"RedrivePolicy": policy}, now_ms=T0)
    store.create_queue(ACCOUNT, "a", {"RedrivePolicy": redrive("only-a")}, now_ms=T0)
    store.create_queue(ACCOUNT, "b", {"RedrivePolicy": redrive("dlq")}, now_ms=T0)
    store.set_queue_attributes(ACCOUNT, "b", {"RedrivePolicy": ""}, now_ms=T0)
    assert "RedrivePolicy" not in store.get_queue_attributes(ACCOUNT, "b", queue_arn="", now_ms=T0)
    eleven = [arn(f"q{i}") for i in range(11)]
    for allow in (
        '{"redrivePermission":"sometimes"}',
        '{"redrivePermission":"allowAll","sourceQueueArns":[]}',
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": eleven}),
    ):
        with pytest.raises(InvalidParameterValue):
            store.set_queue_attributes(ACCOUNT, "dlq", {"RedriveAllowPolicy": allow}, now_ms=T0)


def test_list_dead_letter_source_queues_pages(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "dlq", now_ms=T0)
    for name in ("s3", "s1", "s2"):
        store.create_queue(ACCOUNT, name, {"RedrivePolicy": redrive("dlq")}, now_ms=T0)
    store.create_queue(ACCOUNT, "unrelated", now_ms=T0)
    page = store.list_dead_letter_source_queues(ACCOUNT, "dlq", max_results=2)
    assert page.names == ["s1", "s2"]
    assert page.next_token is not None
    assert store.list_dead_letter_source_queues(ACCOUNT, "dlq", next_token=page.next_token).names == ["s3"]
    with pytest.raises(QueueDoesNotExist):
        store.list_dead_letter_source_queues(ACCOUNT, "nope")


def test_fifo_redrive_goes_to_a_fifo_dlq_and_restarts_retention(store: QueueStore) -> None:
    fifo(store, "dlq.fifo")
    fifo(store, "jobs.fifo", RedrivePolicy=redrive("dlq.fifo", 1), VisibilityTimeout="0", MessageRetentionPeriod="60")
    store.set_queue_attributes(ACCOUNT, "dlq.fifo", {"MessageRetentionPeriod": "60"}, now_ms=T0)
    send(store, "jobs.fifo", "x", group_id="g", deduplication_id="d")
    assert len(receive(store, "jobs.fifo", T0)) == 1
    assert receive(store, "jobs.fifo", T0 + 30_000) == []
    [moved] = receive(store, "dlq.fifo", T0 + 61_000, vt=0)  # past the first queue's retention: it restarted
    assert moved.attributes["MessageGroupId"] == "g"
    assert receive(store, "dlq.fifo", T0 + 90_000) == []


def test_standard_redrive_keeps_the_original_retention(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "dlq", {"MessageRetentionPeriod": "60"}, now_ms=T0)
    store.create_queue(ACCOUNT, "jobs", {"RedrivePolicy": redrive("dlq", 1), "VisibilityTimeout": "0"}, now_ms=T0)
    send(store, "jobs")
    assert len(receive(store, "jobs", T0)) == 1
    assert receive(store, "jobs", T0 + 30_000) == []  # moved
    assert counts(store, "dlq", T0 + 30_000) == (1, 0, 0)
    assert receive(store, "dlq", T0 + 60_000) == []  # 60 s after it was first sent


# ----------------------------------------------------------------------------------------- retention


def test_retention_hides_then_expire_deletes(store: QueueStore, journal: Journal) -> None:
    store.create_queue(ACCOUNT, "jobs", {"MessageRetentionPeriod": "60"}, now_ms=T0)
    store.create_queue(ACCOUNT, "long", now_ms=T0)
    send(store, "jobs", "old", now_ms=T0)
    send(store, "jobs", "new", now_ms=T0 + 30_000)
    send(store, "long", "kept", now_ms=T0)
    assert counts(store, "jobs", T0 + 60_000) == (1, 0, 0)
    assert store.expire(T0 + 60_000) == 1
    assert store.expire(T0 + 60_000) == 0
    assert [m.body for m in receive(store, "jobs", T0 + 60_000)] == ["new"]
    assert counts(store, "long", T0 + 60_000) == (1, 0, 0)


def test_receive_deletes_expired_messages_lazily(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", {"MessageRetentionPeriod": "60"}, now_ms=T0)
    send(store, "jobs", "old", now_ms=T0)
    send(store, "jobs", "new", now_ms=T0 + 59_000)
    assert [m.body for m in receive(store, "jobs", T0 + 60_000)] == ["new"]
    assert store.expire(T0 + 60_000) == 0  # the receive already deleted "old"


def test_a_shorter_retention_applies_to_messages_already_there(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    send(store, "jobs", now_ms=T0)
    store.set_queue_attributes(ACCOUNT, "jobs", {"MessageRetentionPeriod": "60"}, now_ms=T0 + 1)
    assert receive(store, "jobs", T0 + 60_000) == []


def test_an_in_flight_message_expires_too(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", {"MessageRetentionPeriod": "60", "VisibilityTimeout": "43200"}, now_ms=T0)
    send(store, "jobs", now_ms=T0)
    [message] = receive(store, "jobs", T0)
    assert counts(store, "jobs", T0 + 59_999) == (0, 1, 0)
    assert counts(store, "jobs", T0 + 60_000) == (0, 0, 0)
    assert store.expire(T0 + 60_000) == 1
    assert not store.delete_message(ACCOUNT, "jobs", message.receipt_handle)


# ---------------------------------------------------------------------------------------------- FIFO


def test_fifo_orders_each_group_and_holds_a_group_while_in_flight(store: QueueStore) -> None:
    fifo(store, VisibilityTimeout="30")
    for i in range(3):
        send(store, "jobs.fifo", f"a{i}", group_id="a", deduplication_id=f"a{i}")
        send(store, "jobs.fifo", f"b{i}", group_id="b", deduplication_id=f"b{i}")
    first = receive(store, "jobs.fifo", T0, n=2)
    assert [m.body for m in first] == ["a0", "b0"]
    # Both groups have a message in flight: nothing more of either until those are done.
    assert receive(store, "jobs.fifo", T0) == []
    store.delete_message(ACCOUNT, "jobs.fifo", first[0].receipt_handle)
    assert [m.body for m in receive(store, "jobs.fifo", T0)] == ["a1", "a2"]  # several of one group, in order
    assert receive(store, "jobs.fifo", T0) == []
    # b0's visibility runs out: b0 comes again before b1.
    assert [m.body for m in receive(store, "jobs.fifo", T0 + 30_000, n=1)] == ["b0"]


def attempt(store: QueueStore, attempt_id: str, now_ms: int = T0, n: int = 10) -> list[Message]:
    return store.receive_messages(ACCOUNT, "jobs.fifo", max_messages=n, attempt_id=attempt_id, now_ms=now_ms).messages


def attempts_kept(journal: Journal) -> int:
    with journal.writer.connect() as conn:
        return len(conn.execute(sqs_receive_attempts.select()).all())


def test_a_retried_receive_attempt_gets_the_same_messages_and_handles(store: QueueStore) -> None:
    fifo(store, VisibilityTimeout="30")
    for i in range(3):
        send(store, "jobs.fifo", f"a{i}", group_id="a", deduplication_id=f"a{i}")
    first = attempt(store, "try-1")
    assert [m.body for m in first] == ["a0", "a1", "a2"]
    # The response was lost; the retry 10 s later returns the same batch, and restarts its visibility.
    again = attempt(store, "try-1", T0 + 10_000)
    assert again == first
    assert [m.attributes["ApproximateReceiveCount"] for m in again] == ["1"] * 3
    assert counts(store, "jobs.fifo", T0 + 35_000) == (0, 3, 0)  # 30 s from the retry, not from the first
    assert counts(store, "jobs.fifo", T0 + 40_000) == (3, 0, 0)
    # Another attempt id is another receive: the group is in flight, so nothing.
    assert attempt(store, "try-2", T0 + 10_000) == []
    store.delete_message(ACCOUNT, "jobs.fifo", again[0].receipt_handle)
    assert receive(store, "jobs.fifo", T0 + 40_000) != []  # the rest, received afresh


@pytest.mark.parametrize("change", ["delete", "visibility", "received again"])
def test_a_receive_attempt_whose_messages_changed_receives_afresh(store: QueueStore, change: str) -> None:
    fifo(store, VisibilityTimeout="30")
    for i in range(2):
        send(store, "jobs.fifo", f"a{i}", group_id="a", deduplication_id=f"a{i}")
    first = attempt(store, "try-1")
    retry_ms = T0 + 10_000
    if change == "delete":
        store.delete_message(ACCOUNT, "jobs.fifo", first[0].receipt_handle)
    elif change == "visibility":
        store.change_message_visibility(ACCOUNT, "jobs.fifo", first[1].receipt_handle, 0, now_ms=T0)
    else:
        assert [m.body for m in receive(store, "jobs.fifo", T0 + 30_000)] == ["a0", "a1"]
        retry_ms = T0 + 30_001
    # Afresh: a message of the group is still in flight (the one left, or the other receive's), so none.
    assert attempt(store, "try-1", retry_ms) == []


def test_a_receive_attempt_is_honoured_for_five_minutes(store: QueueStore, journal: Journal) -> None:
    fifo(store, VisibilityTimeout="300")
    send(store, "jobs.fifo", "a0", group_id="a", deduplication_id="a0")
    [first] = attempt(store, "try-1")
    assert attempt(store, "try-1", T0 + 299_999) == [first]  # within five minutes of the first receive
    assert attempts_kept(journal) == 1
    [later] = attempt(store, "try-1", T0 + 300_000 + 299_999)  # past them, though the retry reset visibility
    assert later.message_id == first.message_id
    assert later.receipt_handle != first.receipt_handle
    assert later.attributes["ApproximateReceiveCount"] == "2"
    store.expire(T0 + 300_000 + 299_999 + 300_000)
    assert attempts_kept(journal) == 0


def test_an_empty_receive_attempt_is_not_kept(store: QueueStore, journal: Journal) -> None:
    fifo(store)
    assert attempt(store, "try-1") == []
    assert attempts_kept(journal) == 0
    send(store, "jobs.fifo", "a0", group_id="a", deduplication_id="a0")
    assert [m.body for m in attempt(store, "try-1")] == ["a0"]  # the retry receives what came since
    store.delete_queue(ACCOUNT, "jobs.fifo", now_ms=T0)
    assert attempts_kept(journal) == 0


@pytest.mark.parametrize("attempt_id", ["", "a b", "x" * 129, "ü", "\x00", "tab\t"])
def test_malformed_receive_attempt_ids_are_invalid(store: QueueStore, attempt_id: str) -> None:
    fifo(store)
    with pytest.raises(InvalidParameterValue, match="ReceiveRequestAttemptId"):
        attempt(store, attempt_id)


def test_a_standard_queue_refuses_a_receive_attempt_id(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    send(store, "jobs")
    with pytest.raises(InvalidParameterValue, match="not valid for this queue type"):
        store.receive_messages(ACCOUNT, "jobs", attempt_id="try-1", now_ms=T0)
    assert counts(store, "jobs") == (1, 0, 0)


def test_fifo_sequence_numbers_and_attributes(store: QueueStore) -> None:
    fifo(store)
    sent = [send(store, "jobs.fifo", f"m{i}", group_id="g", deduplication_id=f"d{i}") for i in range(3)]
    numbers = [s.sequence_number for s in sent]
    assert all(len(n) >= 20 and n.isdigit() for n in numbers)
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3
    [message, *_] = receive(store, "jobs.fifo")
    assert message.attributes["MessageGroupId"] == "g"
    assert message.attributes["MessageDeduplicationId"] == "d0"
    assert message.attributes["SequenceNumber"] == numbers[0]


def test_fifo_deduplication_window(store: QueueStore) -> None:
    fifo(store)
    first = send(store, "jobs.fifo", "x", now_ms=T0, group_id="g", deduplication_id="d")
    again = send(store, "jobs.fifo", "other body", now_ms=T0 + DEDUP_WINDOW_MS - 1, group_id="g", deduplication_id="d")
    assert (again.message_id, again.sequence_number, again.duplicate) == (first.message_id, first.sequence_number, True)
    assert counts(store, "jobs.fifo") == (1, 0, 0)
    # Also after the first was received and deleted: the id holds for five minutes.
    [message] = receive(store, "jobs.fifo")
    store.delete_message(ACCOUNT, "jobs.fifo", message.receipt_handle)
    assert send(store, "jobs.fifo", "x", now_ms=T0 + 1, group_id="g", deduplication_id="d").duplicate
    later = send(store, "jobs.fifo", "x", now_ms=T0 + DEDUP_WINDOW_MS, group_id="g", deduplication_id="d")
    assert not later.duplicate
    assert later.message_id != first.message_id
    assert later.sequence_number > first.sequence_number


def test_fifo_content_based_deduplication(store: QueueStore) -> None:
    fifo(store, ContentBasedDeduplication="true")
    first = send(store, "jobs.fifo", "same", group_id="g")
    assert send(store, "jobs.fifo", "same", group_id="other-group").message_id == first.message_id
    assert send(store, "jobs.fifo", "different", group_id="g").message_id != first.message_id
    # An explicit id wins over the content's hash.
    assert send(store, "jobs.fifo", "same", group_id="g", deduplication_id="explicit").message_id != first.message_id
    [message, *_] = receive(store, "jobs.fifo")
    assert message.attributes["MessageDeduplicationId"] == hashlib.sha256(b"same").hexdigest()


def test_fifo_batch_deduplicates_within_itself_and_keeps_order(store: QueueStore) -> None:
    fifo(store)
    batch = [(f"e{i}", NewMessage(f"m{i}", group_id="g", deduplication_id=f"d{i % 3}")) for i in range(5)]
    results = store.send_message_batch(ACCOUNT, "jobs.fifo", batch, sender_id=SENDER, now_ms=T0)
    assert all(isinstance(r, SendResult) for r in results)
    ids = [r.message_id for r in results if isinstance(r, SendResult)]
    assert ids[3] == ids[0]
    assert ids[4] == ids[1]
    assert [m.body for m in receive(store, "jobs.fifo")] == ["m0", "m1", "m2"]


def test_a_fifo_send_without_a_group_misses_a_parameter(store: QueueStore) -> None:
    fifo(store)
    with pytest.raises(MissingParameter, match="MessageGroupId"):
        store.send_message(ACCOUNT, "jobs.fifo", NewMessage("x", deduplication_id="d"), sender_id="s", now_ms=T0)


@pytest.mark.parametrize(
    ("message", "attributes"),
    [
        (NewMessage("x", group_id="g"), {}),  # no dedup id, no content-based dedup
        (NewMessage("x", group_id="g", deduplication_id="d", delay_seconds=0), {}),  # no per-message delay
        (NewMessage("x", group_id="g" * 129, deduplication_id="d"), {}),
        (NewMessage("x", group_id="g", deduplication_id="d" * 129), {}),
        (NewMessage("x", group_id="a b", deduplication_id="d"), {}),
        (NewMessage("x", group_id="", deduplication_id="d"), {}),
        (NewMessage("x", group_id="ü", deduplication_id="d"), {}),
        (NewMessage("x", group_id="g", deduplication_id="\n"), {"ContentBasedDeduplication": "true"}),
    ],
)
def test_bad_fifo_sends_are_refused(store: QueueStore, message: NewMessage, attributes: dict[str, str]) -> None:
    fifo(store, **attributes)
    with pytest.raises(InvalidParameterValue):
        store.send_message(ACCOUNT, "jobs.fifo", message, sender_id=SENDER, now_ms=T0)


def test_fifo_queue_delay_holds_the_rest_of_the_group(store: QueueStore) -> None:
    fifo(store, DelaySeconds="10")
    send(store, "jobs.fifo", "first", group_id="g", deduplication_id="1")
    store.set_queue_attributes(ACCOUNT, "jobs.fifo", {"DelaySeconds": "0"}, now_ms=T0)
    send(store, "jobs.fifo", "second", group_id="g", deduplication_id="2")
    assert receive(store, "jobs.fifo", T0) == []  # "second" must not overtake the delayed "first"
    assert [m.body for m in receive(store, "jobs.fifo", T0 + 10_000)] == ["first", "second"]


# ----------------------------------------------------------------------------------------- concurrency


def _drain(store: QueueStore, name: str, got: list[str], start: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        start.wait()
        while True:
            messages = receive(store, name, T0, n=3)
            if not messages:
                return
            got += [m.message_id for m in messages]
    except BaseException as exc:  # reported by the test
        errors.append(exc)


@pytest.mark.parametrize("separate_connections", [False, True])
def test_concurrent_pollers_never_get_the_same_message(url: str, separate_connections: bool) -> None:
    """Four threads poll one queue at one instant (nothing becomes visible again), through one journal or
    through two (two engines: separate connections, as two processes would have)."""
    with Journal.open(url) as first, Journal.open(url) as second:
        stores = [QueueStore(first), QueueStore(second) if separate_connections else QueueStore(first)]
        stores[0].create_queue(ACCOUNT, "jobs", now_ms=T0)
        sent = [
            r.message_id
            for _ in range(6)
            for r in stores[0].send_message_batch(ACCOUNT, "jobs", entries(*["x"] * 10), sender_id=SENDER, now_ms=T0)
            if isinstance(r, SendResult)
        ]
        got: list[list[str]] = [[] for _ in range(4)]
        errors: list[BaseException] = []
        start = threading.Barrier(4)
        threads = [
            threading.Thread(target=_drain, args=(stores[i % 2], "jobs", got[i], start, errors)) for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        everything = [message_id for ids in got for message_id in ids]
        assert len(everything) == len(set(everything))  # nobody got a message twice
        assert sorted(everything) == sorted(sent)  # and every message went to somebody


def test_concurrent_fifo_pollers_never_split_a_group(url: str) -> None:
    with Journal.open(url) as first, Journal.open(url) as second:
        stores = [QueueStore(first), QueueStore(second)]
        fifo(stores[0])
        for group in range(6):
            batch = [
                (f"e{i}", NewMessage(f"{group}:{i}", group_id=f"g{group}", deduplication_id=f"{group}-{i}"))
                for i in range(5)
            ]
            stores[0].send_message_batch(ACCOUNT, "jobs.fifo", batch, sender_id=SENDER, now_ms=T0)
        batches: list[list[str]] = []
        lock = threading.Lock()
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def poll(store: QueueStore) -> None:
            try:
                start.wait()
                while messages := receive(store, "jobs.fifo", T0, n=4):
                    with lock:
                        batches.append([m.body for m in messages])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=poll, args=(stores[i % 2],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        # With nothing deleted, a group's first receive holds it: each group went to one batch, in order.
        groups: dict[str, list[list[str]]] = {}
        for bodies in batches:
            for key in {body.split(":")[0] for body in bodies}:
                groups.setdefault(key, []).append([b for b in bodies if b.startswith(f"{key}:")])
        assert sorted(groups) == [str(g) for g in range(6)]
        for key, parts in groups.items():
            assert len(parts) == 1
            assert parts[0] == [f"{key}:{i}" for i in range(len(parts[0]))]


# ------------------------------------------------------------------------------------------- schema


def test_the_tables_match_the_migration(journal: Journal) -> None:
    assert_tables_match_migrations(
        journal, (sqs_queues, sqs_messages, sqs_dedup, sqs_deleted_queues, sqs_receive_attempts)
    )


def test_the_migration_goes_down_and_up_again(journal: Journal) -> None:
    downgrade_then_upgrade(journal, "0006", {"sqs_queues", "sqs_messages", "sqs_receive_attempts"})
    store = QueueStore(journal)
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    assert send(store, "jobs").message_id


def test_an_entry_too_large_alone_makes_the_batch_too_long(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    with pytest.raises(BatchRequestTooLong):
        store.send_message_batch(ACCOUNT, "jobs", entries("x", "y" * MIB), sender_id=SENDER, now_ms=T0)
    assert counts(store, "jobs") == (0, 0, 0)


# ------------------------------------------------------------------ attributes Leasehold cannot honour


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("Policy", json.dumps({"Version": "2012-10-17", "Statement": []}), "SigV4"),
        ("Policy", "not json", "SigV4"),
        ("KmsMasterKeyId", "alias/aws/sqs", "no KMS"),
        ("KmsDataKeyReusePeriodSeconds", "300", "no KMS"),
        ("KmsDataKeyReusePeriodSeconds", "", "no KMS"),
        ("SqsManagedSseEnabled", "true", "not encrypt"),
        ("SqsManagedSseEnabled", "TRUE", "not encrypt"),
    ],
)
def test_attributes_that_need_what_leasehold_has_not_are_refused(
    store: QueueStore, name: str, value: str, why: str
) -> None:
    def create() -> object:
        return store.create_queue(ACCOUNT, "jobs", {name: value}, now_ms=T0)

    def change() -> object:
        return store.set_queue_attributes(ACCOUNT, "jobs", {name: value}, now_ms=T0 + 1000)

    for attempt in (create, change):
        with pytest.raises(InvalidAttributeValue) as info:
            attempt()
        assert (info.value.code, info.value.attribute) == ("InvalidAttributeValue", name)
        assert why in info.value.reason
        assert name in info.value.message
        if attempt is create:
            store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    # Nothing of the refused change stuck.
    queue = store.get_queue(ACCOUNT, "jobs")
    assert queue.modified_ms == T0
    assert store.get_queue_attributes(ACCOUNT, "jobs", [name], queue_arn="", now_ms=T0) == (
        {"SqsManagedSseEnabled": "false"} if name == "SqsManagedSseEnabled" else {}
    )


def test_values_that_state_what_every_queue_is_are_taken(store: QueueStore) -> None:
    # No policy, no KMS key, no SSE: true of every queue here, so a client that says so is not refused.
    given = {"Policy": "", "KmsMasterKeyId": "", "SqsManagedSseEnabled": "False"}
    first = store.create_queue(ACCOUNT, "jobs", given, now_ms=T0)
    assert store.create_queue(ACCOUNT, "jobs", given, now_ms=T0).queue_id == first.queue_id
    store.set_queue_attributes(ACCOUNT, "jobs", given, now_ms=T0)
    names = ["Policy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"]
    assert store.get_queue_attributes(ACCOUNT, "jobs", names, queue_arn="", now_ms=T0) == {
        "SqsManagedSseEnabled": "false"
    }


def test_sqs_managed_sse_is_reported_false_on_every_queue(store: QueueStore) -> None:
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    fifo(store)
    for name in ("jobs", "jobs.fifo"):
        assert store.get_queue_attributes(ACCOUNT, name, queue_arn="", now_ms=T0)["SqsManagedSseEnabled"] == "false"


def test_attributes_once_kept_without_effect_are_not_read_back(store: QueueStore, journal: Journal) -> None:
    # The store used to keep Policy and the SSE settings as given; a row written then reads as it behaves.
    store.create_queue(ACCOUNT, "jobs", now_ms=T0)
    fifo(store)
    old = {"Policy": "{}", "SqsManagedSseEnabled": "true", "KmsDataKeyReusePeriodSeconds": "300"}
    with journal.writer.begin() as conn:
        conn.execute(sqs_queues.update().where(sqs_queues.c.name == "jobs").values(extra=json.dumps(old)))
        conn.execute(sqs_queues.update().where(sqs_queues.c.name == "jobs.fifo").values(extra=json.dumps(old)))
    assert store.get_queue(ACCOUNT, "jobs").extra == {}
    assert store.get_queue(ACCOUNT, "jobs.fifo").extra == {
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }
    values = store.get_queue_attributes(ACCOUNT, "jobs", queue_arn="", now_ms=T0)
    assert "Policy" not in values
    assert "KmsDataKeyReusePeriodSeconds" not in values
    assert values["SqsManagedSseEnabled"] == "false"


# ------------------------------------------------------------------------------ FIFO throughput settings


_THROUGHPUT_VALUES = {
    "DeduplicationScope": ("queue", "messageGroup"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}


def test_fifo_throughput_settings_default_to_sqs_defaults(store: QueueStore) -> None:
    first = store.create_queue(ACCOUNT, "jobs.fifo", {"FifoQueue": "true"}, now_ms=T0)
    names = ["DeduplicationScope", "FifoThroughputLimit"]
    assert store.get_queue_attributes(ACCOUNT, "jobs.fifo", names, queue_arn="", now_ms=T0) == {
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }
    # Giving the defaults again is giving the same attributes.
    again = store.create_queue(ACCOUNT, "jobs.fifo", {"FifoQueue": "true", "DeduplicationScope": "queue"}, now_ms=T0)
    assert again.queue_id == first.queue_id
    with pytest.raises(QueueNameExists):
        store.create_queue(ACCOUNT, "jobs.fifo", {"FifoQueue": "true", "DeduplicationScope": "messageGroup"}, now_ms=T0)
    store.create_queue(ACCOUNT, "plain", now_ms=T0)
    assert not set(names) & set(store.get_queue_attributes(ACCOUNT, "plain", queue_arn="", now_ms=T0))
    for name in names:  # FIFO only
        with pytest.raises(InvalidAttributeName):
            store.set_queue_attributes(ACCOUNT, "plain", {name: _THROUGHPUT_VALUES[name][0]}, now_ms=T0)
        with pytest.raises(InvalidAttributeName):
            store.create_queue(ACCOUNT, "other", {name: _THROUGHPUT_VALUES[name][0]}, now_ms=T0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("DeduplicationScope", "group"), ("FifoThroughputLimit", "perGroup"), ("FifoThroughputLimit", "")],
)
def test_fifo_throughput_values_are_checked(store: QueueStore, name: str, value: str) -> None:
    with pytest.raises(InvalidAttributeValue) as info:
        fifo(store, **{name: value})
    assert info.value.attribute == name
    fifo(store)
    with pytest.raises(InvalidAttributeValue):
        store.set_queue_attributes(ACCOUNT, "jobs.fifo", {name: value}, now_ms=T0)


def test_per_message_group_throughput_needs_message_group_deduplication(store: QueueStore) -> None:
    with pytest.raises(InvalidAttributeValue) as info:
        fifo(store, FifoThroughputLimit="perMessageGroupId")
    assert (info.value.attribute, "DeduplicationScope is messageGroup" in info.value.reason) == (
        "FifoThroughputLimit",
        True,
    )
    with pytest.raises(InvalidAttributeValue):
        fifo(store, FifoThroughputLimit="perMessageGroupId", DeduplicationScope="queue")
    fifo(store)
    with pytest.raises(InvalidAttributeValue):
        store.set_queue_attributes(ACCOUNT, "jobs.fifo", {"FifoThroughputLimit": "perMessageGroupId"}, now_ms=T0)
    # Both at once is high throughput mode, as SQS documents it.
    high = {"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"}
    store.set_queue_attributes(ACCOUNT, "jobs.fifo", high, now_ms=T0)
    # Taking DeduplicationScope back alone would leave perMessageGroupId without it.
    with pytest.raises(InvalidAttributeValue) as info:
        store.set_queue_attributes(ACCOUNT, "jobs.fifo", {"DeduplicationScope": "queue"}, now_ms=T0)
    assert info.value.attribute == "DeduplicationScope"
    names = list(high)
    assert store.get_queue_attributes(ACCOUNT, "jobs.fifo", names, queue_arn="", now_ms=T0) == high
    # messageGroup deduplication with a per-queue limit is allowed; so is going back to the defaults together.
    store.set_queue_attributes(ACCOUNT, "jobs.fifo", {"FifoThroughputLimit": "perQueue"}, now_ms=T0)
    store.set_queue_attributes(ACCOUNT, "jobs.fifo", {"DeduplicationScope": "queue"}, now_ms=T0)


def test_fifo_throughput_limit_changes_no_delivery(store: QueueStore) -> None:
    # Leasehold enforces no throughput ceiling: both limits deliver the same messages in the same order.
    delivered = []
    for name, limit in (("a.fifo", "perQueue"), ("b.fifo", "perMessageGroupId")):
        fifo(store, name, DeduplicationScope="messageGroup", FifoThroughputLimit=limit)
        for i in range(4):
            send(store, name, f"m{i}", group_id=f"g{i % 2}", deduplication_id=str(i))
        delivered.append([m.body for m in receive(store, name)])
    assert delivered[0] == delivered[1] == ["m0", "m1", "m2", "m3"]


def test_deduplication_scope_message_group(store: QueueStore) -> None:
    fifo(store, DeduplicationScope="messageGroup")
    first = send(store, "jobs.fifo", group_id="a", deduplication_id="d")
    assert send(store, "jobs.fifo", group_id="a", deduplication_id="d").duplicate
    other = send(store, "jobs.fifo", group_id="b", deduplication_id="d")  # another group: not a duplicate
    assert not other.duplicate
    assert other.message_id != first.message_id
    assert [m.attributes["MessageDeduplicationId"] for m in receive(store, "jobs.fifo")] == ["d", "d"]
