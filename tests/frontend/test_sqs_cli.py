"""``leasehold queue ...`` against the embedded platform: the people's commands are boto3's SQS client, so
they see what an SQS user sees (and its errors, as one line and exit code 2)."""

from __future__ import annotations

import json

from tests.frontend.conftest import Run


def test_queue_commands_end_to_end(leasehold: Run) -> None:
    run = leasehold
    code, out, _ = run("queue", "create", "cli-jobs", "--attribute", "VisibilityTimeout=60")
    assert code == 0
    assert out.strip().endswith("/000000000000/cli-jobs")
    code, message_id, _ = run("queue", "send", "cli-jobs", '{"id": 1}')
    assert code == 0
    assert len(message_id.strip()) == 36
    code, out, _ = run("queue", "list", "--prefix", "cli-")
    assert code == 0
    assert out.split("\n")[1].split() == ["cli-jobs", "1", "0", "0"]
    code, out, _ = run("queue", "receive", "cli-jobs", "--max", "10", "--json", "--delete")
    assert code == 0
    assert [m["Body"] for m in json.loads(out)["Messages"]] == ['{"id": 1}']
    code, out, _ = run("queue", "list", "--prefix", "cli-", "--json")
    assert json.loads(out)["Queues"][0]["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert run("queue", "send", "cli-jobs", "later", "--delay", "900")[0] == 0
    assert run("queue", "purge", "cli-jobs")[0] == 0
    assert run("queue", "delete", "cli-jobs")[0] == 0
    code, _, err = run("queue", "send", "cli-jobs", "x")
    assert code == 2
    assert err.strip() == "error: AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist."


def test_queue_command_input_is_checked(leasehold: Run) -> None:
    run = leasehold
    assert run("queue", "create", "bad", "--attribute", "novalue")[0] == 2
    assert run("queue", "send", "q", "x", "--delay", "901")[0] == 2
    assert run("queue", "receive", "q", "--max", "11")[0] == 2
    code, _, err = run("queue", "create", "bad name")
    assert code == 2
    assert err.startswith("error: InvalidParameterValue:")
    code, _, err = run("queue", "create", "fifo.fifo", "--attribute", "FifoQueue=true", "--attribute", "FifoQueue=true")
    assert (code, err.strip()) == (2, "error: InvalidParameterValue: an attribute is given twice")
