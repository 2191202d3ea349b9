"""The docker-compose topology as local processes, driven through boto3 and the people's CLI.

Needs the real frontend and real-worker wiring (other parts of issue #6): create a function, invoke it
synchronously and asynchronously, see 3 servers leading partitions and 2 workers in ``status``, kill -9
the server leading the function's partition and invoke again.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from assignment.commands import register
from assignment.commands.api import admin_get, admin_path
from assignment.partitioning import partition_of
from tests.deploy.compose import load_compose
from tests.harness.lambda_clients import lambda_client
from tests.harness.platform import Platform, local_command, service_ports

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

pytestmark = pytest.mark.slow  # about a minute: ZooKeeper, PostgreSQL and six Leasehold processes

T = TypeVar("T")

HANDLER = """
import os

def lambda_handler(event, context):
    print("handling", event)
    return {"echo": event, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "stage": os.environ.get("STAGE")}
"""


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", HANDLER)
    return buffer.getvalue()


def _eventually(check: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # the answer may be an error until the cluster settles
            last = exc
        else:
            last = value
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout_s}s; last: {last!r}")


def _client(platform: Platform) -> LambdaClient:
    return lambda_client(platform.endpoint)


def test_local_commands_are_the_compose_commands_on_loopback() -> None:
    """Fast, no processes: only addresses differ between the compose file and the local platform."""
    compose = load_compose()
    ports = service_ports(compose)
    for name in compose.leasehold_services():
        original = compose.command(name)
        local = local_command(
            compose, name, ports, zk="127.0.0.1:1", database="postgresql://x@127.0.0.1/db", data_root=Path("/tmp/p")
        )
        assert len(local) == len(original)
        assert [a for a in local if a.startswith("--")] == [a for a in original if a.startswith("--")]
        for flag, before, after in zip(original, original[1:], local[1:], strict=False):
            if flag in ("--zk", "--journal", "--code-store", "--data-dir", "--tls-dir", "init") or ":" in before:
                continue
            if before.startswith("/run/secrets/"):
                assert after == f"/tmp/p/secrets/{before.rpartition('/')[2]}", (name, after)
                continue
            assert before == after, (name, flag)
        text = " ".join(local)
        for service in compose.services:
            assert f"{service}:" not in text, (name, service)
    listening = list(ports.values())
    assert len(listening) == len(set(listening))


@pytest.fixture(scope="module")
def function(platform: Platform) -> str:
    client = _client(platform)
    client.create_function(
        FunctionName="echo",
        Runtime="python3.12",
        Role="arn:aws:iam::000000000000:role/leasehold",
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": _zip()},
        Environment={"Variables": {"STAGE": "compose"}},
        Timeout=30,
    )
    return "echo"


def _status(platform: Platform) -> dict[str, Any]:
    return admin_get(platform.endpoint, admin_path("status"))


def test_status_shows_three_servers_leading_and_two_workers(platform: Platform) -> None:
    def settled() -> dict[str, Any] | None:
        status = _status(platform)
        partitions = status["partitions"]
        leaders = {p.get("leader_id") for p in partitions}
        workers = {w["worker_id"] for w in status["workers"]}
        # every partition led (none caught between a hand-over's resign and the next leader's start)
        led = all(p.get("leader_id") and p.get("leader_address") for p in partitions)
        if led and leaders == {"server1", "server2", "server3"} and workers == {"worker1", "worker2"}:
            return status
        return None

    status = _eventually(settled, "every partition led, by all 3 servers, and 2 workers")
    assert {w["zone"] for w in status["workers"]} == {"zone-a", "zone-b"}


def test_the_compose_healthchecks_pass_against_the_local_processes(platform: Platform) -> None:
    """Each service's healthcheck command from docker-compose.yml, its port rewritten like the command's."""
    compose = platform.compose
    for name, service in platform.services.items():
        test = compose.services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        argv = [sys.executable if part == "python" else part for part in test[1:]]
        for container, local in service.ports.items():
            argv = [part.replace(f"127.0.0.1:{container}", f"127.0.0.1:{local}") for part in argv]
        argv = [str(platform.root / "certs" / service.subcommand) if part == "/tls" else part for part in argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, (name, argv, done.stderr)


def test_sync_and_async_invocations(platform: Platform, function: str) -> None:
    client = _client(platform)
    answer = client.invoke(FunctionName=function, Payload=b'{"n": 1}', LogType="Tail")
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"echo": {"n": 1}, "version": "$LATEST", "stage": "compose"}
    queued = client.invoke(FunctionName=function, Payload=b'{"n": 2}', InvocationType="Event")
    assert queued["StatusCode"] == 202
    request_id = queued["ResponseMetadata"]["RequestId"]

    def ran() -> bool:
        events = admin_get(platform.endpoint, admin_path("logs", function, limit=50))["events"]
        return any(e["request_id"] == request_id for e in events)

    _eventually(ran, f"the async invocation {request_id} in the function's logs")


def test_an_invoke_succeeds_after_the_partition_leader_is_killed(platform: Platform, function: str) -> None:
    client = _client(platform)
    status = _status(platform)
    partition = partition_of(function, len(status["partitions"]))
    leader = next(p["leader_id"] for p in status["partitions"] if p["partition"] == partition)
    platform.kill(leader)

    def invoked() -> dict[str, Any] | None:
        answer = client.invoke(FunctionName=function, Payload=b'{"after": "kill"}')
        body = json.loads(answer["Payload"].read())
        return body if answer["StatusCode"] == 200 and "FunctionError" not in answer else None

    assert _eventually(invoked, "an invocation after the leader was killed")["echo"] == {"after": "kill"}

    def moved() -> bool:
        current = _status(platform)
        now = next(p for p in current["partitions"] if p["partition"] == partition)
        return bool(now["leader_id"]) and now["leader_id"] != leader

    _eventually(moved, f"partition {partition} led by a server other than {leader}")


def _leasehold(*argv: str) -> tuple[int, str]:
    """Run one of the people's commands in-process, as ``leasehold ARGV`` would; exit code and stdout."""
    parser = argparse.ArgumentParser(prog="leasehold")
    register(parser.add_subparsers(required=True))
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")  # with a .buffer, as sys.stdout has
    args = parser.parse_args(list(argv))
    with contextlib.redirect_stdout(out):
        code = args.func(args)
    out.flush()
    return code, raw.getvalue().decode()


def test_the_peoples_cli_against_the_real_frontend(platform: Platform, function: str, tmp_path: Path) -> None:
    endpoint = ("--endpoint", platform.endpoint)
    code, out = _leasehold("status", *endpoint)
    assert code == 0
    assert out.startswith("partitions: ")
    assert "workers: 2" in out.splitlines()
    code, out = _leasehold("function", "list", *endpoint, "--json")
    assert code == 0
    assert function in [f["FunctionName"] for f in json.loads(out)["Functions"]]
    code, out = _leasehold("invoke", function, "--payload", '{"cli": true}', *endpoint)
    assert code == 0
    assert json.loads(out)["echo"] == {"cli": True}
    folder = tmp_path / "failing"
    folder.mkdir()
    (folder / "app.py").write_text("def handler(event, context):\n    raise ValueError('no')\n")
    code, out = _leasehold("function", "create", "failing", "--dir", str(folder), "--handler", "app.handler", *endpoint)
    assert code == 0
    code, out = _leasehold("invoke", "failing", *endpoint)
    assert code == 1
    assert json.loads(out)["errorType"] == "ValueError"
    code, out = _leasehold("logs", function, *endpoint)
    assert code == 0
    assert "START RequestId: " in out
    code, out = _leasehold("dlq", "list", function, *endpoint, "--json")
    assert code == 0
    assert json.loads(out)["items"] == []
    code, _ = _leasehold("function", "get", "ghost", *endpoint)
    assert code == 2
