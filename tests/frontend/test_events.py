"""The event queue and its pollers on SQLite and PostgreSQL, with an in-process fake of the sync invoke path:
retries and their timing, destination records, dead letters, throttle backoff, deduplication, several
pollers on one queue, graceful stop, expired claims, and malformed, oversized and hostile input.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from assignment.frontend.event_store import MAX_EVENT_PAYLOAD_BYTES, Settle
from assignment.frontend.events import (
    EventPoller,
    EventQueue,
    destination_function,
    destination_request_id,
)
from assignment.frontend.types import (
    EventInvokeConfig,
    InvalidParameterValueException,
    RequestTooLargeException,
    ServiceException,
    TooManyRequestsException,
)
from journal.store import Journal
from tests.frontend import events_fixtures
from tests.frontend.events_fixtures import FakeFunctions, function_error, raising, wait_for

# The fixtures (both database backends), used by name.
backend = events_fixtures.backend
events_url = events_fixtures.events_url
events_journal = events_fixtures.events_journal


@pytest.fixture
def sqlite_journal(tmp_path: Path) -> Iterator[Journal]:
    """A SQLite journal, for input checks that happen before any database work."""
    with Journal.open(f"sqlite:///{tmp_path / 'events.db'}") as journal:
        yield journal


FAST: dict[str, Any] = {
    "retry_intervals_s": (0.1, 0.2),
    "poll_interval_s": 0.02,
    "throttle_backoff_s": (0.05, 0.2),
    "claim_timeout_s": 5.0,
    "stop_grace_s": 2.0,
}


def rid() -> str:
    return str(uuid.uuid4())


@asynccontextmanager
async def polling(queue: EventQueue, fake: FakeFunctions, **options: Any) -> AsyncIterator[EventPoller]:
    poller = EventPoller(queue, fake.invoke, fake.config_of, **{**FAST, **options})
    await poller.start()
    try:
        yield poller
    finally:
        await poller.stop()


async def settled(queue: EventQueue, *request_ids: str) -> None:
    async def done() -> bool:
        states = [await queue.state_of(r) for r in request_ids]
        return all(s in ("done", "failed") for s in states)

    await wait_for(done, 15.0, f"events {request_ids} to finish")


# ---------------------------------------------------------------------------------------------- basics


async def test_event_runs_once_and_is_remembered(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    request_id = rid()
    assert await queue.enqueue("echo", "$LATEST", b'{"a": 1}', request_id) is True
    assert await queue.depth() == 1
    assert await queue.depth("echo") == 1
    assert await queue.depth("other") == 0
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert [(r.function, r.qualifier, r.payload, r.request_id) for r in fake.runs] == [
        ("echo", "$LATEST", b'{"a": 1}', request_id)
    ]
    assert await queue.depth() == 0
    assert await queue.state_of(request_id) == "done"
    # A duplicate of a finished event (within the dedupe window) is refused and never runs again.
    assert await queue.enqueue("echo", "$LATEST", b'{"a": 1}', request_id) is False
    assert await queue.depth() == 0


async def test_duplicate_request_ids_are_queued_once(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    request_id = rid()
    results = await asyncio.gather(*(queue.enqueue("echo", "", b"x", request_id) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]
    assert await queue.enqueue("other", "", b"y", request_id) is False  # the id is the key, whatever the function
    assert await queue.depth() == 1
    fake = FakeFunctions()
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert fake.count(request_id) == 1


async def test_concurrent_enqueues_share_transactions_and_all_run(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    ids = [rid() for _ in range(60)]
    assert all(await asyncio.gather(*(queue.enqueue("echo", "$LATEST", i.encode(), i) for i in ids)))
    assert await queue.depth("echo") == 60
    fake = FakeFunctions()
    async with polling(queue, fake, concurrency=8):
        await settled(queue, *ids)
    assert sorted(r.request_id for r in fake.runs) == sorted(ids)


# ---------------------------------------------------------------------------------------------- retries


async def test_failing_function_ends_in_the_destination_after_three_attempts(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    fake.behaviours["bad"] = function_error("ValueError", "boom")
    fake.configs["bad"] = EventInvokeConfig(on_failure="arn:aws:lambda:us-east-2:123456789012:function:sink")
    request_id = rid()
    event = {"order": 42, "items": ["a", "b"]}
    assert await queue.enqueue("bad", "$LATEST", json.dumps(event).encode(), request_id)
    async with polling(queue, fake, region="us-east-2", account_id="123456789012"):
        await wait_for(lambda: _true(len(fake.of("sink")) == 1), 15.0, "the destination to run")
        await settled(queue, request_id)
    runs = fake.of("bad")
    assert len(runs) == 3
    assert all(r.request_id == request_id for r in runs)
    # Retries wait the configured intervals (0.1 s, then 0.2 s).
    assert runs[1].at - runs[0].at >= 0.1 - 0.005
    assert runs[2].at - runs[1].at >= 0.2 - 0.005
    [delivery] = fake.of("sink")
    assert delivery.qualifier == "$LATEST"
    assert delivery.request_id == destination_request_id(request_id, "Failure")
    record = json.loads(delivery.payload)
    assert set(record) == {
        "version", "timestamp", "requestContext", "requestPayload", "responseContext", "responsePayload",
    }  # fmt: skip
    assert record["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:bad:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == event
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "boom"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert isinstance(record["responsePayload"]["stackTrace"], list)
    assert await queue.state_of(request_id) == "failed"
    assert await queue.dead_letters("bad") == []
    assert await queue.depth() == 0


async def test_zero_retries_dead_letters_after_one_attempt_with_1kb_of_message(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    message = "é" * 700 + "tail"  # 1404 bytes of UTF-8: cut at 1 KB on a character boundary
    fake.behaviours["bad"] = function_error("KeyError", message)
    fake.configs["bad"] = EventInvokeConfig(maximum_retry_attempts=0)
    text_id, binary_id = rid(), rid()
    assert await queue.enqueue("bad", "7", b'{"k": "v"}', text_id)
    assert await queue.enqueue("bad", "7", b"\xff\x00\xfe", binary_id)
    async with polling(queue, fake):
        await settled(queue, text_id, binary_id)
    assert fake.count(text_id) == 1
    assert fake.count(binary_id) == 1
    letters = {letter["request_id"]: letter for letter in await queue.dead_letters("bad")}
    assert set(letters) == {text_id, binary_id}
    letter = letters[text_id]
    json.dumps(letter)  # JSON-able
    assert letter["function"] == "bad"
    assert letter["qualifier"] == "7"
    assert letter["error_type"] == "KeyError"
    assert letter["error_message"] == "é" * 512
    assert len(str(letter["error_message"]).encode()) == 1024
    assert letter["attempts"] == 1
    assert letter["condition"] == "RetriesExhausted"
    assert letter["payload"] == '{"k": "v"}'
    assert letter["payload_encoding"] == "utf-8"
    assert isinstance(letter["time_ms"], int)
    assert abs(letter["time_ms"] - time.time() * 1000) < 60_000
    assert letters[binary_id]["payload"] == "/wD+"
    assert letters[binary_id]["payload_encoding"] == "base64"
    assert await queue.dead_letters("other") == []
    assert len(await queue.dead_letters("bad", limit=1)) == 1


async def test_function_error_then_success_is_done_without_destination(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    failing = function_error("Flaky", "first time")

    async def flaky(payload: bytes, count: int) -> Any:
        return await failing(payload, count) if count == 1 else None

    fake.behaviours["flaky"] = flaky
    fake.configs["flaky"] = EventInvokeConfig(on_failure="sink")
    request_id = rid()
    assert await queue.enqueue("flaky", "$LATEST", b"{}", request_id)
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert fake.count(request_id) == 2
    assert fake.of("sink") == []
    assert await queue.state_of(request_id) == "done"


async def test_success_destination_gets_a_success_record(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    fake.configs["echo"] = EventInvokeConfig(on_success="audit:live")
    request_id = rid()
    assert await queue.enqueue("echo", "$LATEST", b'{"x": true}', request_id)
    async with polling(queue, fake):
        await wait_for(lambda: _true(len(fake.of("audit")) == 1), 10.0, "the success destination")
    [delivery] = fake.of("audit")
    assert delivery.qualifier == "live"
    record = json.loads(delivery.payload)
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"] == {"x": True}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"x": True}


async def test_throttles_back_off_until_the_event_is_too_old(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    fake.behaviours["busy"] = raising(
        TooManyRequestsException("Rate exceeded", reason="ConcurrentInvocationLimitExceeded")
    )
    fake.configs["busy"] = EventInvokeConfig(maximum_event_age_s=1)
    request_id = rid()
    started = time.monotonic()
    assert await queue.enqueue("busy", "$LATEST", b"{}", request_id)
    async with polling(queue, fake, throttle_backoff_s=(0.05, 0.2)):
        await settled(queue, request_id)
    elapsed = time.monotonic() - started
    runs = fake.of("busy")
    gaps = [b.at - a.at for a, b in itertools.pairwise(runs)]
    # 0.05, 0.1, 0.2, 0.2, ... until the next try would be past the event's age of 1 s (at most 7 tries fit;
    # a loaded machine may fit fewer).
    assert 3 <= len(runs) <= 7, gaps
    assert gaps[0] >= 0.05 - 0.005
    assert gaps[1] >= 0.1 - 0.005
    assert all(g >= 0.2 - 0.005 for g in gaps[2:])
    assert 0.75 <= elapsed < 10.0  # gives up only when the next try would come after the age limit
    [letter] = await queue.dead_letters("busy")
    assert letter["condition"] == "EventAgeExceeded"
    assert letter["error_type"] == "TooManyRequestsException"
    assert letter["error_message"] == "Rate exceeded"
    assert letter["attempts"] == 0  # throttled tries never reached the function


async def test_service_errors_are_retried_with_backoff(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    fake.behaviours["shaky"] = raising(ServiceException("worker lost"), times=2)
    request_id = rid()
    assert await queue.enqueue("shaky", "$LATEST", b"{}", request_id)
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert fake.count(request_id) == 3
    assert await queue.state_of(request_id) == "done"


async def test_deleted_function_is_dead_lettered_at_once(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    request_id = rid()
    assert await queue.enqueue("gone-fn", "$LATEST", b"{}", request_id)
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert fake.runs == []
    [letter] = await queue.dead_letters("gone-fn")
    assert letter["error_type"] == "ResourceNotFoundException"
    assert letter["attempts"] == 0


async def test_unusable_destination_falls_back_to_the_dead_letter_store(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    fake.behaviours["bad"] = function_error("E", "m")
    fake.configs["bad"] = EventInvokeConfig(
        maximum_retry_attempts=0, on_failure="arn:aws:sqs:us-east-1:123456789012:some-queue"
    )
    request_id = rid()
    assert await queue.enqueue("bad", "$LATEST", b"{}", request_id)
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert [letter["request_id"] for letter in await queue.dead_letters("bad")] == [request_id]


async def test_event_too_old_before_its_retry_is_not_retried(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions()
    fake.behaviours["bad"] = function_error("E", "m")
    fake.configs["bad"] = EventInvokeConfig(maximum_event_age_s=1)
    request_id = rid()
    assert await queue.enqueue("bad", "$LATEST", b"{}", request_id)
    async with polling(queue, fake, retry_intervals_s=(5.0,)):
        await settled(queue, request_id)
    assert fake.count(request_id) == 1
    [letter] = await queue.dead_letters("bad")
    assert letter["condition"] == "EventAgeExceeded"
    assert letter["error_type"] == "E"


# ---------------------------------------------------------------------------------------------- pollers


async def test_two_pollers_never_run_one_event_at_the_same_time(events_url: str) -> None:
    with Journal.open(events_url) as first_db, Journal.open(events_url) as second_db:
        first, second = EventQueue(first_db), EventQueue(second_db)
        fake = FakeFunctions(hold_s=0.01)
        ids = [rid() for _ in range(80)]
        for chunk in range(0, len(ids), 20):
            assert all(await asyncio.gather(*(first.enqueue("echo", "", b"{}", i) for i in ids[chunk : chunk + 20])))
        async with polling(first, fake, concurrency=6), polling(second, fake, concurrency=6):
            await settled(first, *ids)
        assert fake.max_overlap == 1
        assert sorted(r.request_id for r in fake.runs) == sorted(ids)  # each ran exactly once


async def test_a_long_run_keeps_its_claim_past_the_claim_timeout(events_url: str) -> None:
    with Journal.open(events_url) as first_db, Journal.open(events_url) as second_db:
        first, second = EventQueue(first_db), EventQueue(second_db)
        fake = FakeFunctions(hold_s=1.2)  # four claim timeouts: the claim must be renewed meanwhile
        request_id = rid()
        assert await first.enqueue("echo", "$LATEST", b"{}", request_id)
        async with polling(first, fake, claim_timeout_s=0.3):
            await wait_for(lambda: _true(fake.count(request_id) == 1), 10.0, "the event to start")
            async with polling(second, fake, claim_timeout_s=0.3):
                await settled(first, request_id)
        assert fake.count(request_id) == 1
        assert fake.max_overlap == 1


async def test_stop_gives_claims_back_for_another_poller(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    release = asyncio.Event()
    slow = FakeFunctions()

    async def hang(payload: bytes, count: int) -> None:
        await release.wait()

    slow.behaviours["echo"] = hang
    request_id = rid()
    assert await queue.enqueue("echo", "$LATEST", b"{}", request_id)
    poller = EventPoller(queue, slow.invoke, slow.config_of, **{**FAST, "claim_timeout_s": 60.0, "stop_grace_s": 0.05})
    await poller.start()
    await wait_for(lambda: _true(slow.count(request_id) == 1), 10.0, "the first poller to start the event")
    await poller.stop()
    fast = FakeFunctions()
    started = time.monotonic()
    async with polling(queue, fast, claim_timeout_s=60.0):
        await settled(queue, request_id)
    assert time.monotonic() - started < 5.0  # not after the 60 s claim timeout
    assert fast.count(request_id) == 1


async def test_stop_lets_running_events_finish(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    fake = FakeFunctions(hold_s=0.2)
    request_id = rid()
    assert await queue.enqueue("echo", "$LATEST", b"{}", request_id)
    poller = EventPoller(queue, fake.invoke, fake.config_of, **FAST)
    await poller.start()
    await wait_for(lambda: _true(fake.count(request_id) == 1), 10.0, "the event to start")
    await poller.stop()
    assert await queue.state_of(request_id) == "done"


async def test_an_expired_claim_is_taken_over_and_the_old_claimant_writes_nothing(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    request_id = rid()
    assert await queue.enqueue("echo", "$LATEST", b"{}", request_id)
    now = queue.clock()
    # A poller that died: claimed with a short lease and never came back.
    [dead], _ = queue.store.claim("dead-poller", limit=8, lease_ms=100, now_ms=now)
    assert queue.store.claim("other", limit=8, lease_ms=100, now_ms=now + 50)[0] == []  # still held
    fake = FakeFunctions()
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert fake.count(request_id) == 1
    # The dead poller's late settle is refused.
    assert not queue.store.settle(dead, Settle("failed", 9, 9, 9, now, now))
    assert await queue.state_of(request_id) == "done"


async def test_dead_letters_are_purged_after_their_retention(events_journal: Journal) -> None:
    day_ms = 86_400_000
    now = [int(time.time() * 1000)]
    queue = EventQueue(events_journal, clock=lambda: now[0])
    fake = FakeFunctions()
    fake.behaviours["bad"] = function_error("KeyError", "boom")
    fake.configs["bad"] = EventInvokeConfig(maximum_retry_attempts=0)
    old, new = rid(), rid()
    assert await queue.enqueue("bad", "$LATEST", b"{}", old)
    async with polling(queue, fake):
        await settled(queue, old)
    now[0] += 2 * day_ms
    assert await queue.enqueue("bad", "$LATEST", b"{}", new)
    async with polling(queue, fake):
        await settled(queue, new)
    assert {letter["request_id"] for letter in await queue.dead_letters("bad")} == {old, new}
    # A poller keeping letters 1.5 days purges the one stored two days ago and keeps today's.
    async with polling(queue, fake, dead_letter_retention_s=1.5 * 86_400, purge_interval_s=0.05):

        async def only_new() -> bool:
            return [letter["request_id"] for letter in await queue.dead_letters("bad")] == [new]

        await wait_for(only_new, 10.0, "the old dead letter to be purged")
    assert queue.store.purge_dead_letters(before_ms=now[0] - day_ms) == 0


async def test_finished_events_are_forgotten_after_the_dedupe_window(events_journal: Journal) -> None:
    queue = EventQueue(events_journal, dedupe_window_s=0.0)
    fake = FakeFunctions()
    request_id = rid()
    assert await queue.enqueue("echo", "$LATEST", b"{}", request_id)
    async with polling(queue, fake):
        await settled(queue, request_id)
    assert queue.store.purge(before_ms=queue.clock() + 1) == 1
    assert await queue.state_of(request_id) is None
    assert await queue.enqueue("echo", "$LATEST", b"{}", request_id) is True


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "function",
    ["", "x" * 65, "../etc", "a b", "fn;DROP TABLE event_queue", "ünï", "fn\n", "arn:aws:lambda:x", "a/b", "%00"],
)
async def test_bad_function_names_are_refused(sqlite_journal: Journal, function: str) -> None:
    queue = EventQueue(sqlite_journal)
    with pytest.raises(InvalidParameterValueException):
        await queue.enqueue(function, "$LATEST", b"{}", rid())
    assert await queue.depth() == 0


@pytest.mark.parametrize("request_id", ["", "x" * 65, "a b", "id\n", "' OR 1=1 --", "ü", "a/b", "\x00"])
async def test_bad_request_ids_are_refused(sqlite_journal: Journal, request_id: str) -> None:
    queue = EventQueue(sqlite_journal)
    with pytest.raises(InvalidParameterValueException):
        await queue.enqueue("echo", "$LATEST", b"{}", request_id)
    assert await queue.depth() == 0


@pytest.mark.parametrize("qualifier", ["$latest", "x" * 129, "a:b", " ", "$LATEST\n"])
async def test_bad_qualifiers_are_refused(sqlite_journal: Journal, qualifier: str) -> None:
    queue = EventQueue(sqlite_journal)
    with pytest.raises(InvalidParameterValueException):
        await queue.enqueue("echo", qualifier, b"{}", rid())


async def test_payload_limit_is_1_mib(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    assert MAX_EVENT_PAYLOAD_BYTES == 1_048_576
    with pytest.raises(RequestTooLargeException):
        await queue.enqueue("echo", "$LATEST", b"x" * (MAX_EVENT_PAYLOAD_BYTES + 1), rid())
    with pytest.raises(RequestTooLargeException):
        await queue.enqueue("echo", "$LATEST", b"x" * (64 * 1024 * 1024), rid())
    request_id = rid()
    assert await queue.enqueue("echo", "$LATEST", b"x" * MAX_EVENT_PAYLOAD_BYTES, request_id)
    assert await queue.enqueue("echo", "$LATEST", b"", rid())  # an empty event is valid
    assert await queue.depth() == 2


@pytest.mark.parametrize(
    "args",
    [
        (None, "$LATEST", b"{}", "id"),
        ("echo", None, b"{}", "id"),
        ("echo", "$LATEST", "text", "id"),
        ("echo", "$LATEST", bytearray(b"{}"), "id"),
        ("echo", "$LATEST", b"{}", 5),
    ],
)
async def test_wrong_types_are_refused(sqlite_journal: Journal, args: tuple[Any, ...]) -> None:
    queue = EventQueue(sqlite_journal)
    with pytest.raises(TypeError):
        await queue.enqueue(*args)


@pytest.mark.parametrize("limit", [0, -1, 10_001, True, 1.5])
async def test_dead_letters_bad_limit(sqlite_journal: Journal, limit: Any) -> None:
    queue = EventQueue(sqlite_journal)
    with pytest.raises(ValueError, match="limit"):
        await queue.dead_letters("echo", limit=limit)


async def test_dead_letters_of_a_hostile_name_are_empty(events_journal: Journal) -> None:
    queue = EventQueue(events_journal)
    assert await queue.dead_letters("' OR '1'='1") == []
    assert await queue.dead_letters("x" * 100_000) == []


def test_destination_names() -> None:
    assert destination_function("sink") == ("sink", "$LATEST")
    assert destination_function("sink:3") == ("sink", "3")
    assert destination_function("arn:aws:lambda:eu-west-1:123456789012:function:sink") == ("sink", "$LATEST")
    assert destination_function("arn:aws:lambda:eu-west-1:123456789012:function:sink:prod") == ("sink", "prod")
    for bad in ("", "arn:aws:sqs:eu-west-1:123456789012:q", "arn:aws:sns:x", "a b", "x" * 65, "sink:a:b"):
        assert destination_function(bad) is None
    assert destination_request_id("r1", "Failure") == destination_request_id("r1", "Failure")
    assert destination_request_id("r1", "Failure") != destination_request_id("r1", "Success")


@pytest.mark.parametrize(
    "options",
    [
        {"concurrency": 0},
        {"retry_intervals_s": ()},
        {"retry_intervals_s": (-1.0,)},
        {"poll_interval_s": 0},
        {"claim_timeout_s": 0},
        {"throttle_backoff_s": (2.0, 1.0)},
        {"dead_letter_retention_s": 0},
        {"dead_letter_retention_s": float("nan")},
        {"dead_letter_retention_s": float("inf")},
    ],
)
def test_bad_poller_options(sqlite_journal: Journal, options: dict[str, Any]) -> None:
    fake = FakeFunctions()
    with pytest.raises(ValueError, match="must be"):
        EventPoller(EventQueue(sqlite_journal), fake.invoke, fake.config_of, **options)


async def _true(value: bool) -> bool:
    return value
