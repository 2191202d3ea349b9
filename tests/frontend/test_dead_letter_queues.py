"""Dead-letter queues and queue destinations of async events, on SQLite and PostgreSQL, with the event
poller over a fake invoke path and the real queue store: what a dead-letter queue receives (the payload and
AWS's three attributes), destination records as queue messages, both at once, the fallback to the built-in
dead-letter store when a queue is gone or refuses the message, and that a settle which loses its claim
sends nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from assignment.frontend.event_store import QueueSend, Settle
from assignment.frontend.events import EventPoller, EventQueue
from assignment.frontend.queue_targets import dead_letter_message
from assignment.frontend.queues import Message, QueueStore
from assignment.frontend.types import EventInvokeConfig, TooManyRequestsException
from journal.store import Journal
from tests.frontend import events_fixtures
from tests.frontend.events_fixtures import FakeFunctions, function_error, raising, wait_for

backend = events_fixtures.backend
events_url = events_fixtures.events_url
events_journal = events_fixtures.events_journal

ACCOUNT = "000000000000"
ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:"
FAST: dict[str, Any] = {
    "retry_intervals_s": (0.05,),
    "poll_interval_s": 0.02,
    "throttle_backoff_s": (0.05, 0.1),
    "claim_timeout_s": 5.0,
    "stop_grace_s": 2.0,
}


def rid() -> str:
    return str(uuid.uuid4())


def now_ms() -> int:
    return int(time.time() * 1000)


@asynccontextmanager
async def polling(queue: EventQueue, fake: FakeFunctions) -> AsyncIterator[EventPoller]:
    poller = EventPoller(queue, fake.invoke, fake.config_of, dead_letter_of=fake.dead_letter_of, **FAST)
    await poller.start()
    try:
        yield poller
    finally:
        await poller.stop()


async def finished(queue: EventQueue, request_id: str) -> None:
    async def done() -> bool:
        return await queue.state_of(request_id) in ("done", "failed")

    await wait_for(done, 15.0, f"event {request_id} to finish")


def failing(function: str, dead_letter: str = "", *, message: str = "m", **config: Any) -> FakeFunctions:
    """A fake whose ``function`` always fails with ``message``; its async settings ``config`` (no retries
    unless given) and its dead-letter queue ARN."""
    fake = FakeFunctions()
    fake.behaviours[function] = function_error("E", message)
    fake.configs[function] = EventInvokeConfig(**{"maximum_retry_attempts": 0, **config})
    if dead_letter:
        fake.dead_letter_targets[function] = dead_letter
    return fake


async def run(queue: EventQueue, fake: FakeFunctions, events: list[tuple[str, bytes]]) -> list[str]:
    """Queue ``(function, payload)`` events, poll until every one finished; their request ids."""
    request_ids = [rid() for _ in events]
    for request_id, (function, payload) in zip(request_ids, events, strict=True):
        assert await queue.enqueue(function, "$LATEST", payload, request_id)
    async with polling(queue, fake):
        for request_id in request_ids:
            await finished(queue, request_id)
    return request_ids


def received(store: QueueStore, name: str, at_ms: int | None = None) -> list[Message]:
    """Every message of the queue (received once each), at ``at_ms`` (now by default)."""
    return store.receive_messages(ACCOUNT, name, max_messages=10, now_ms=at_ms or now_ms()).messages


async def test_a_failed_event_reaches_its_dead_letter_queue_with_awss_attributes(events_journal: Journal) -> None:
    store = QueueStore(events_journal)
    store.create_queue(ACCOUNT, "dlq", now_ms=now_ms())
    queue = EventQueue(events_journal, queues=store)
    # 1400 bytes of message: cut at 1 KB.
    fake = failing("bad", ARN + "dlq", message="é" * 700, maximum_retry_attempts=1)
    [request_id] = await run(queue, fake, [("bad", b'{"order": 7}')])
    assert fake.count(request_id) == 2
    [message] = received(store, "dlq")
    assert message.body == '{"order": 7}'  # the payload, unchanged
    attributes = message.message_attributes
    assert set(attributes) == {"RequestID", "ErrorCode", "ErrorMessage"}
    assert (attributes["RequestID"].data_type, attributes["RequestID"].string_value) == ("String", request_id)
    # A function error is answered with HTTP 200, the code AWS puts in ErrorCode.
    assert (attributes["ErrorCode"].data_type, attributes["ErrorCode"].string_value) == ("Number", "200")
    assert attributes["ErrorMessage"].data_type == "String"
    assert attributes["ErrorMessage"].string_value == "é" * 512
    assert message.attributes["SenderId"] == "arn:aws:lambda:us-east-1:000000000000:function:bad:$LATEST"
    assert await queue.dead_letters("bad") == []  # the queue took it: not also in the built-in store


async def test_a_throttled_event_ages_out_into_the_queue_with_429(events_journal: Journal) -> None:
    store = QueueStore(events_journal)
    store.create_queue(ACCOUNT, "dlq", now_ms=now_ms())
    queue = EventQueue(events_journal, queues=store)
    fake = FakeFunctions()
    fake.behaviours["busy"] = raising(TooManyRequestsException("Rate Exceeded."))
    fake.dead_letter_targets["busy"] = ARN + "dlq"
    request_id = rid()
    assert await queue.enqueue("busy", "", b"{}", request_id)
    clock_offset = [0]
    queue.clock = lambda: now_ms() + clock_offset[0]
    async with polling(queue, fake):
        await wait_for(lambda: _async(fake.count(request_id) >= 1), 10.0, "the first run")
        clock_offset[0] = 7 * 3600 * 1000  # past the default 6 hours of MaximumEventAgeInSeconds
        await finished(queue, request_id)
    [message] = received(store, "dlq", queue.clock())  # sent at the poller's (moved) time
    assert message.message_attributes["ErrorCode"].string_value == "429"
    assert message.message_attributes["ErrorMessage"].string_value == "Rate Exceeded."


async def test_queue_destinations_get_the_record_and_the_dead_letter_queue_the_event(events_journal: Journal) -> None:
    """An on-failure queue and a dead-letter queue together both receive the event, as on AWS."""
    store = QueueStore(events_journal)
    for name in ("failures", "successes", "dlq"):
        store.create_queue(ACCOUNT, name, now_ms=now_ms())
    queue = EventQueue(events_journal, queues=store)
    fake = failing("bad", ARN + "dlq", message="boom", on_failure=ARN + "failures")
    fake.configs["good"] = EventInvokeConfig(on_success=ARN + "successes")
    failed, succeeded = await run(queue, fake, [("bad", b'{"n": 1}'), ("good", b'{"n": 2}')])
    [failure] = received(store, "failures")
    record = json.loads(failure.body)
    assert record["requestContext"] == {
        "requestId": failed,
        "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:bad:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responsePayload"]["errorMessage"] == "boom"
    assert failure.message_attributes == {}
    [dead] = received(store, "dlq")
    assert dead.body == '{"n": 1}'
    [success] = received(store, "successes")
    record = json.loads(success.body)
    assert (record["requestContext"]["requestId"], record["requestContext"]["condition"]) == (succeeded, "Success")
    assert record["responsePayload"] == {"n": 2}  # the fake echoes
    assert await queue.dead_letters("bad") == []


async def test_a_deleted_queue_sends_the_event_to_the_built_in_dead_letter_store(events_journal: Journal) -> None:
    store = QueueStore(events_journal)
    for name in ("gone-dlq", "gone-failures"):
        store.create_queue(ACCOUNT, name, now_ms=now_ms())
        store.delete_queue(ACCOUNT, name, now_ms=now_ms())
    queue = EventQueue(events_journal, queues=store)
    fake = failing("dlq-gone", ARN + "gone-dlq")
    fake.behaviours["failures-gone"] = fake.behaviours["dlq-gone"]
    fake.configs["failures-gone"] = EventInvokeConfig(maximum_retry_attempts=0, on_failure=ARN + "gone-failures")
    first, second = await run(queue, fake, [("dlq-gone", b"{}"), ("failures-gone", b"{}")])
    assert [letter["request_id"] for letter in await queue.dead_letters("dlq-gone")] == [first]
    assert [letter["request_id"] for letter in await queue.dead_letters("failures-gone")] == [second]


async def test_a_payload_no_queue_can_hold_stays_in_the_built_in_store(events_journal: Journal) -> None:
    """Bytes that are not UTF-8, and a message over the queue's MaximumMessageSize, are refused by SQS."""
    store = QueueStore(events_journal)
    store.create_queue(ACCOUNT, "small", {"MaximumMessageSize": "1024"}, now_ms=now_ms())
    queue = EventQueue(events_journal, queues=store)
    fake = failing("bad", ARN + "small")
    large = json.dumps({"pad": "x" * 2000}).encode()
    binary, too_large = await run(queue, fake, [("bad", b"\xff\xfe"), ("bad", large)])
    assert {letter["request_id"] for letter in await queue.dead_letters("bad")} == {binary, too_large}
    assert received(store, "small") == []


async def test_without_a_queue_store_a_queue_target_falls_back(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    [request_id] = await run(queue, failing("bad", ARN + "dlq"), [("bad", b"{}")])
    assert [letter["request_id"] for letter in await queue.dead_letters("bad")] == [request_id]


async def test_a_settle_whose_claim_was_lost_sends_nothing(events_journal: Journal) -> None:
    """The message is written in the settle's transaction: a settle that writes nothing sends nothing."""
    store = QueueStore(events_journal)
    store.create_queue(ACCOUNT, "dlq", now_ms=now_ms())
    queue = EventQueue(events_journal, queues=store)
    request_id = rid()
    assert await queue.enqueue("f", "$LATEST", b"{}", request_id)
    start = now_ms()
    [claim], _ = queue.store.claim("p1", limit=1, lease_ms=1_000, now_ms=start)
    # Past the first lease, another poller takes the event over.
    [_taken], _ = queue.store.claim("p2", limit=1, lease_ms=60_000, now_ms=start + 2_000)
    send = QueueSend(ACCOUNT, "dlq", dead_letter_message(request_id, 200, "m", b"{}"), "sender", "dead_letter_queue")
    outcome = Settle("failed", 1, 1, 0, now_ms(), now_ms(), sends=(send,))
    assert not queue.store.settle(claim, outcome)
    assert received(store, "dlq") == []


async def _async(value: bool) -> bool:
    return value
