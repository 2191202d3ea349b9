"""SQS in the cluster's shape: ``leasehold frontend`` processes sharing one database (PostgreSQL, and a
SQLite file for comparison), boto3 against each, a long poll on one frontend answered by a send on another,
and ``kill -9`` of a frontend while it acknowledges sends: every acknowledged message is still there.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.frontend.harness import frontend_child, frontend_process
from tests.harness.lambda_clients import long_poll_while, sqs_client


@pytest.fixture(params=["postgresql", "sqlite"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cluster.db'}"
    url: str = request.getfixturevalue("database")
    return url


def test_two_frontends_share_queues_and_a_long_poll_sees_the_other_s_send(journal_url: str, tmp_path: Path) -> None:
    with (
        frontend_process(tmp_path / "a.log", "--journal", journal_url) as a_endpoint,
        frontend_process(tmp_path / "b.log", "--journal", journal_url) as b_endpoint,
    ):
        a, b = sqs_client(a_endpoint), sqs_client(b_endpoint)
        a_url = a.create_queue(QueueName="shared")["QueueUrl"]
        b_url = b.get_queue_url(QueueName="shared")["QueueUrl"]
        assert a_url.rsplit("/", 2)[1:] == b_url.rsplit("/", 2)[1:]
        answer, took_s = long_poll_while(b, b_url, lambda: a.send_message(QueueUrl=a_url, MessageBody="across"))
        messages = answer["Messages"]
        assert [m["Body"] for m in messages] == ["across"]
        assert took_s < 15  # seen by B's next look, not when the 20 s ran out
        a.delete_message(QueueUrl=a_url, ReceiptHandle=messages[0]["ReceiptHandle"])  # a handle works anywhere
        counts = b.get_queue_attributes(QueueUrl=b_url, AttributeNames=["All"])["Attributes"]
        assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_kill_9_while_sending_loses_no_acknowledged_message(journal_url: str, tmp_path: Path) -> None:
    with frontend_child(tmp_path / "doomed.log", "--journal", journal_url) as (endpoint, process):
        doomed = sqs_client(endpoint)
        url = doomed.create_queue(QueueName="durable")["QueueUrl"]
        acknowledged: list[str] = []
        stop = threading.Event()

        def send(worker: int) -> None:
            client = sqs_client(endpoint)
            n = 0
            while not stop.is_set():
                try:
                    answer = client.send_message_batch(
                        QueueUrl=url, Entries=[{"Id": f"e{k}", "MessageBody": f"{worker}-{n}-{k}"} for k in range(5)]
                    )
                except (BotoCoreError, ClientError):
                    return  # the frontend died under this call: not acknowledged, nothing promised
                acknowledged.extend(entry["MessageId"] for entry in answer["Successful"])
                n += 1

        senders = [threading.Thread(target=send, args=(w,)) for w in range(4)]
        for sender in senders:
            sender.start()
        while len(acknowledged) < 200:
            time.sleep(0.01)  # pacing the check; the kill is what the test is about
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        stop.set()
        for sender in senders:
            sender.join(60)
    assert len(acknowledged) >= 200
    with frontend_process(tmp_path / "after.log", "--journal", journal_url) as endpoint:
        after = sqs_client(endpoint)
        url = after.get_queue_url(QueueName="durable")["QueueUrl"]
        received: set[str] = set()
        while True:
            batch = after.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)
            if "Messages" not in batch:
                break
            received.update(m["MessageId"] for m in batch["Messages"])
    missing = set(acknowledged) - received
    assert not missing, f"{len(missing)} acknowledged messages lost"
