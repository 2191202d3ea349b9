"""``leasehold dev`` as a real process: ready line, boto3 against it, Ctrl-C, restart on the same data dir;
its key and profile (the same key after a restart, boto3 and the CLI in one step) and ``--auth none``.

The process is the README's first command minus the sample; it is stopped with real signals (SIGINT as
Ctrl-C, SIGKILL as a crash) and started again on the same data directory. Clients sign with the profile
the process wrote, read the way boto3 reads it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness.dev_process import ROOT, Dev, wait_for, zip_of

SLOW_ECHO = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    print("ran", event.get("n"))
    return {"n": event.get("n"), "version": context.function_version}
"""


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_ctrl_c_stops_cleanly_and_a_restart_keeps_functions_and_versions(dev_dir: Path, tmp_path: Path) -> None:
    dev = Dev(dev_dir, tmp_path / "dev1.log")
    try:
        client = dev.client()
        client.create_function(
            FunctionName="echo", Runtime="python3.11", Handler="app.handler", Role="arn:aws:iam::000000000000:role/x",
            Code={"ZipFile": zip_of(SLOW_ECHO)}, Timeout=10,
        )  # fmt: skip
        first = json.loads(client.invoke(FunctionName="echo", Payload=b'{"n": 1}')["Payload"].read())
        assert first == {"n": 1, "version": "$LATEST"}
        published = client.publish_version(FunctionName="echo")["Version"]
    finally:
        code = dev.stop(signal.SIGINT)
    assert code == 0, dev.log_path.read_text()[-4000:]
    assert any(line.startswith("stopped") for line in dev.lines)

    dev = Dev(dev_dir, tmp_path / "dev2.log")
    try:
        client = dev.client()
        names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
        assert names == ["echo"]
        answer = client.invoke(FunctionName="echo", Qualifier=published, Payload=b'{"n": 2}')
        assert answer["ExecutedVersion"] == published
        assert json.loads(answer["Payload"].read()) == {"n": 2, "version": published}
    finally:
        assert dev.stop(signal.SIGINT) == 0


def test_events_accepted_before_a_crash_run_after_the_restart(dev_dir: Path, tmp_path: Path) -> None:
    dev = Dev(dev_dir, tmp_path / "dev1.log")
    try:
        client = dev.client()
        client.create_function(
            FunctionName="slow", Runtime="python3.11", Handler="app.handler", Role="arn:aws:iam::000000000000:role/x",
            Code={"ZipFile": zip_of(SLOW_ECHO)}, Timeout=30,
        )  # fmt: skip
        accepted = []
        for n in range(6):
            answer = client.invoke(
                FunctionName="slow", InvocationType="Event", Payload=json.dumps({"n": n, "sleep": 2})
            )
            assert answer["StatusCode"] == 202
            accepted.append(answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    finally:
        dev.stop(signal.SIGKILL)  # a crash: events are queued, some are running

    dev = Dev(dev_dir, tmp_path / "dev2.log")
    try:
        wait_for(lambda: dev.admin("status")["queue_depth"] == 0, 90, "the queue to drain")
        ran = {event["request_id"] for event in dev.admin("logs/slow?limit=100")["events"]}
        assert set(accepted) <= ran | {item["request_id"] for item in dev.admin("dlq/slow")["items"]}
    finally:
        assert dev.stop(signal.SIGINT) == 0


def test_the_key_and_profile_survive_a_restart_and_boto3_and_the_cli_work_in_one_step(
    dev_dir: Path, tmp_path: Path
) -> None:
    dev = Dev(dev_dir, tmp_path / "dev1.log")
    try:
        first = dev.credentials()
        assert re.fullmatch(r"AKIA[A-Z0-9]{16}", first[0])
        assert len(first[1]) == 40
        assert any(first[0] in line and first[1] in line for line in dev.lines)  # printed with the ready line
        assert dev.session().region_name == "us-east-1"
        assert (Path(dev.profile["AWS_SHARED_CREDENTIALS_FILE"]).stat().st_mode & 0o777) == 0o600
    finally:
        assert dev.stop(signal.SIGINT) == 0
    dev = Dev(dev_dir, tmp_path / "dev2.log")
    try:
        assert dev.credentials() == first
        # One step: the three variables and nothing else; the endpoint comes from the profile's config.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | dev.profile
        script = "import boto3; print(len(boto3.client('lambda').list_functions()['Functions']))"
        boto = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert (boto.returncode, boto.stdout.strip()) == (0, "0"), boto.stderr[-2000:]
        cli = subprocess.run(
            [sys.executable, "-m", "assignment.cli", "status", "--endpoint", dev.http, "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr[-2000:]
        assert "partitions" in json.loads(cli.stdout)
        unsigned = subprocess.run(
            [sys.executable, "-m", "assignment.cli", "status", "--endpoint", dev.http],
            cwd=ROOT, env={k: v for k, v in env.items() if not k.startswith("AWS_")}, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert unsigned.returncode == 2
        assert "NoCredentials" in unsigned.stderr
    finally:
        assert dev.stop(signal.SIGINT) == 0


def test_auth_none_is_open_and_says_so(dev_dir: Path, tmp_path: Path) -> None:
    dev = Dev(dev_dir, tmp_path / "dev.log", "--auth", "none")
    try:
        assert dev.auth == "none"
        with urllib.request.urlopen(f"{dev.http}/_leasehold/v1/status", timeout=10) as answer:
            assert answer.status == 200
        assert not (dev_dir / "credentials").exists()
    finally:
        assert dev.stop(signal.SIGINT) == 0


def test_an_unsigned_request_to_dev_is_refused(dev_dir: Path, tmp_path: Path) -> None:
    dev = Dev(dev_dir, tmp_path / "dev.log")
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{dev.http}/2015-03-31/functions/", timeout=10)
        with refused.value as answer:
            assert answer.code == 403
            assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
            assert json.loads(answer.read())["message"] == "Missing Authentication Token"
    finally:
        assert dev.stop(signal.SIGINT) == 0
