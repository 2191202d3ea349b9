"""A queue event source mapping in the cluster's shape, across ``kill -9`` of the frontend polling it.

The compose topology (PostgreSQL, ZooKeeper, 3 servers, 2 workers, the frontend) plus a second frontend
process of the same command, as ``docker compose up --scale frontend=2`` would run. Both frontends run
pollers sharing the mappings through leases in PostgreSQL. The test kills -9 the second frontend while
it holds the mapping's lease and its batches are in flight (the first one stays: it is the endpoint the
workers give functions, which the sink writes through): the first takes the mapping over once the lease
lapses,
the batches the dead one held come back after the queue's visibility timeout, and every message sent
is processed at least once (counted in a sink queue, ``tests/harness/sink.py``), with duplicates bounded
by what was in flight and each FIFO group in order.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.deploy.conftest import FAST_FAILOVER
from tests.harness.dev_process import wait_for, zip_of
from tests.harness.lambda_clients import lambda_client, remember, sqs_client
from tests.harness.platform import Platform, ServiceProcess
from tests.harness.postgres import PostgresServer
from tests.harness.sink import SINK_WRITER, assert_fifo_per_group, drain

pytestmark = pytest.mark.slow  # ZooKeeper, PostgreSQL and seven Leasehold processes

ROLE = "arn:aws:iam::000000000000:role/x"
#: Short enough that the survivor takes the dead frontend's mapping within seconds.
LEASE = ["--mapping-lease", "3"]
GROUPS, ROUNDS, BATCH = 5, 20, 3


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Platform]:
    """The compose topology with a second frontend (``frontend2``); both poll with a 3 s mapping lease."""
    extra = {**FAST_FAILOVER, "frontend": LEASE}
    with Platform.start(tmp_path_factory.mktemp("platform"), postgres, extra=extra) as started:
        second = started.add_copy("frontend2", of="frontend", extra=LEASE)
        remember(f"http://{second.address(9000)}", started.key)
        yield started


def _lease_owner(platform: Platform, mapping_uuid: str) -> str:
    engine = sa.create_engine(platform.database)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT owner, lease_until_ms FROM event_source_mappings WHERE uuid = :uuid"),
                {"uuid": mapping_uuid},
            ).one()
    finally:
        engine.dispose()
    return str(row.owner) if row.lease_until_ms > time.time() * 1000 else ""


def _pid(service: ServiceProcess) -> int:
    assert service.process is not None
    return service.process.pid


def _depth(sqs: Any, url: str) -> int:
    answer = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(answer["Attributes"]["ApproximateNumberOfMessages"])


def test_kill_9_of_the_polling_frontend_loses_nothing_and_keeps_fifo_order(platform: Platform) -> None:
    endpoints = {name: f"http://{platform.services[name].address(9000)}" for name in ("frontend", "frontend2")}
    sqs = sqs_client(endpoints["frontend"])
    source = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "5"})
    sink = sqs.create_queue(QueueName="log.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    lambda_client(endpoints["frontend"]).create_function(
        FunctionName="writer", Runtime="python3.11", Handler="app.handler", Role=ROLE, Timeout=5,
        Code={"ZipFile": zip_of(SINK_WRITER)},
        Environment={"Variables": {"SINK": sink}},
    )  # fmt: skip
    sent: set[str] = set()
    for n in range(ROUNDS):
        entries = [
            {"Id": f"g{g}", "MessageBody": json.dumps({"group": g, "n": n}), "MessageGroupId": f"g{g}",
             "MessageDeduplicationId": uuid.uuid4().hex}
            for g in range(GROUPS)
        ]  # fmt: skip
        answer = sqs.send_message_batch(QueueUrl=source["QueueUrl"], Entries=entries)
        assert not answer.get("Failed")
        sent |= {entry["MessageId"] for entry in answer["Successful"]}
    arn = "arn:aws:sqs:us-east-1:000000000000:orders.fifo"
    first, second = platform.services["frontend"], platform.services["frontend2"]
    first.signal(signal.SIGSTOP)  # so the second frontend's pollers claim the new mapping
    try:
        mapping = lambda_client(endpoints["frontend2"]).create_event_source_mapping(
            EventSourceArn=arn, FunctionName="writer", BatchSize=BATCH
        )["UUID"]
        owner = wait_for(lambda: _lease_owner(platform, mapping), 30, "a lease on the mapping")
    finally:
        first.signal(signal.SIGCONT)
    assert f":{_pid(second)}:" in owner
    wait_for(lambda: _depth(sqs, sink) >= 10, 90, "the first batches in the sink")
    platform.kill("frontend2")  # batches in flight: collected, invoking, or about to be deleted

    taken = wait_for(lambda: (o := _lease_owner(platform, mapping)) != owner and o, 30, "the first frontend's lease")
    assert f":{_pid(first)}:" in taken
    seen = drain(sqs, sink, sent, timeout_s=120)
    ids = [entry["id"] for entry in seen]
    assert set(ids) == sent  # nothing lost, nothing invented
    assert len(ids) - len(sent) <= GROUPS * BATCH * 2  # duplicates: at most the batches in flight, twice
    assert_fifo_per_group(seen, groups=GROUPS)
