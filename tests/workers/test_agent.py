"""The agent's gRPC surface and lifecycle: capacity, bad input, health, restart, graceful stop."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from journal.v1 import records_pb2
from tests.workers.harness import AgentProcess, code_of, create, function_dir, invoke, processes_of, wait_for
from workers.agent import Agent, AgentConfig, CreateSpec
from workers.code import DirSource
from workers.registration import NullRegistrar
from workers.v1 import worker_pb2

HELLO = "import os\ndef handler(e, c):\n    return os.getuid()\n"


def test_create_beyond_memory_is_resource_exhausted(new_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    agent = new_agent(512)
    code = function_dir(tmp_path / "fn", HELLO)
    create(agent.stub, "cap-1", code, memory_mb=256)
    create(agent.stub, "cap-2", code, memory_mb=128)
    assert code_of(lambda: create(agent.stub, "cap-3", code, memory_mb=256)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    listed = agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest())
    assert (listed.memory_mb, listed.free_memory_mb, listed.zone) == (512, 128, "zone-a")
    create(agent.stub, "cap-3", code, memory_mb=128)
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="cap-1"))
    create(agent.stub, "cap-4", code, memory_mb=256)
    assert agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest()).free_memory_mb == 0
    # A failed create gives its memory back.
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="cap-4"))
    assert code_of(lambda: create(agent.stub, "cap-5", worker_pb2.CodeRef(zip_bytes=b"x"), memory_mb=256)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest()).free_memory_mb == 256


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"sandbox_id": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"sandbox_id": "../escape"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"function_name": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"function_version": "latest"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"memory_mb": 64}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"memory_mb": 10241}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"timeout_ms": 900_001}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"timeout_ms": 500}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"runtime": "nodejs20.x"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"handler": "nodot"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"handler": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"environment": {"AWS_REGION": "x"}}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"environment": {"1BAD": "x"}}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"environment": {"BIG": "x" * 5000}}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"application_log_level": "LOUD"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"memory_mb": 20000}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_bad_create_requests(agent: AgentProcess, tmp_path: Path, fields: dict[str, Any], status: object) -> None:
    code = function_dir(tmp_path / "fn", HELLO)
    request = {"sandbox_id": "badreq-1", "handler": "app.handler", **fields}
    sandbox_id, handler = request.pop("sandbox_id"), request.pop("handler")
    assert code_of(lambda: create(agent.stub, str(sandbox_id), code, handler=str(handler), **request)) == status
    assert "badreq-1" not in [
        s.sandbox_id for s in agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest()).sandboxes
    ]


def test_bad_requests_on_the_other_calls(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", HELLO)
    create(agent.stub, "other-1", code)
    assert code_of(lambda: create(agent.stub, "other-1", code)) == grpc.StatusCode.ALREADY_EXISTS
    assert code_of(lambda: invoke(agent.stub, "nope")) == grpc.StatusCode.NOT_FOUND
    no_token = worker_pb2.InvokeRequest(sandbox_id="other-1", request_id="r", payload=b"{}")
    assert code_of(lambda: agent.stub.Invoke(no_token)) == grpc.StatusCode.INVALID_ARGUMENT
    no_id = worker_pb2.InvokeRequest(sandbox_id="other-1", token=records_pb2.LeaseToken(epoch=9, seq=1))
    assert code_of(lambda: agent.stub.Invoke(no_id)) == grpc.StatusCode.INVALID_ARGUMENT
    too_big = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
    assert code_of(lambda: invoke(agent.stub, "other-1", too_big)) == grpc.StatusCode.INVALID_ARGUMENT
    # Fields the runtime gets as HTTP headers: a newline would inject headers (it used to crash the sandbox).
    token = records_pb2.LeaseToken(epoch=9, seq=1)
    hostile_requests = [
        worker_pb2.InvokeRequest(request_id="r\nX-Injected: 1"),
        worker_pb2.InvokeRequest(request_id="r" * 129),
        worker_pb2.InvokeRequest(request_id="r", trace_id="Root=1\r\nX: y"),
        worker_pb2.InvokeRequest(request_id="r", client_context="x" * 9000),
        worker_pb2.InvokeRequest(request_id="r", invoked_function_arn="arn\x00"),
    ]
    for hostile in hostile_requests:
        hostile.MergeFrom(worker_pb2.InvokeRequest(sandbox_id="other-1", token=token, payload=b"{}"))
        assert code_of(lambda: agent.stub.Invoke(hostile)) == grpc.StatusCode.INVALID_ARGUMENT, hostile  # noqa: B023
    assert code_of(lambda: agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest())) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert not agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="nope")).existed
    assert code_of(lambda: agent.stub.ResetSandbox(worker_pb2.ResetSandboxRequest(sandbox_id="nope"))) == (
        grpc.StatusCode.NOT_FOUND
    )
    # None of that hurt the sandbox.
    assert invoke(agent.stub, "other-1").outcome == records_pb2.OUTCOME_OK
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="other-1"))


def test_health_and_reflection(agent: AgentProcess) -> None:
    health: Any = health_pb2_grpc.HealthStub(agent.channel)  # (the stubs ship without types)
    for service in ("", "leasehold.workers.v1.Worker"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection: Any = reflection_pb2_grpc.ServerReflectionStub(agent.channel)
    replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"leasehold.workers.v1.Worker", "grpc.health.v1.Health"} <= names


def test_agent_restart_cleans_up_the_sandboxes_it_left(new_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    data_dir = tmp_path / "restart"
    first = new_agent(1024, data_dir=data_dir)
    code = function_dir(tmp_path / "fn", HELLO)
    uids = []
    for sandbox_id in ("keep-1", "keep-2"):
        create(first.stub, sandbox_id, code)
        uids.append(int(invoke(first.stub, sandbox_id).payload))
    assert all(processes_of(uid) for uid in uids)
    first.stop(signal.SIGKILL)
    second = new_agent(1024, data_dir=data_dir)
    listed = second.stub.ListSandboxes(worker_pb2.ListSandboxesRequest())
    assert list(listed.sandboxes) == []
    assert listed.free_memory_mb == 1024
    for uid in uids:
        wait_for(lambda: not processes_of(uid), what=f"processes of uid {uid} to be gone")  # noqa: B023
    assert list((data_dir / "sandboxes").iterdir()) == []
    log = second.log()
    assert "event=stale_sandbox_cleaned sandbox=keep-1 reason=agent_restarted" in log
    assert "event=stale_sandbox_cleaned sandbox=keep-2 reason=agent_restarted" in log
    # The same ids can be created again.
    create(second.stub, "keep-1", code)
    assert invoke(second.stub, "keep-1").outcome == records_pb2.OUTCOME_OK


def test_graceful_stop_lets_in_flight_invocations_finish(
    new_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    agent = new_agent(1024)
    code = function_dir(
        tmp_path / "fn",
        """
        import os, time
        def handler(event, context):
            open("/tmp/started", "w").close()
            time.sleep(1)
            return "finished"
        """,
    )
    create(agent.stub, "grace-1", code, timeout_ms=10000)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(invoke(agent.stub, "grace-1").payload))
    thread.start()
    started = agent.data_dir / "sandboxes" / "grace-1" / "tmp" / "started"
    wait_for(started.exists, what="the invocation to start")
    agent.proc.send_signal(signal.SIGTERM)
    thread.join(30)
    assert results == [b'"finished"']
    assert agent.proc.wait(30) == 0
    assert not (agent.data_dir / "sandboxes" / "grace-1").exists()


def test_init_timeout_is_reported(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", "import time\ntime.sleep(60)\ndef handler(e, c):\n    return 1\n")
    created = create(agent.stub, "inittimeout-1", code, timeout_ms=1000)
    assert created.init_error.error_type == "Runtime.InitError"
    assert created.init_error.error_message == "Init timed out after 10.00 seconds"
    assert "Status: timeout" in created.init_logs
    assert 10_000 <= created.init_duration_ms < 15_000
    # The retry at the first invoke runs under the function timeout.
    response = invoke(agent.stub, "inittimeout-1")
    assert response.outcome == records_pb2.OUTCOME_CRASH
    assert "timed out" in response.runtime_error.error_message
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="inittimeout-1"))


test_init_timeout_is_reported = pytest.mark.slow(test_init_timeout_is_reported)


def test_registrar_sees_capacity(tmp_path: Path) -> None:
    async def main() -> list[tuple[str, int, list[str]]]:
        registrar = NullRegistrar()
        agent = Agent(AgentConfig(data_dir=tmp_path / "data", memory_mb=1024, heartbeat_s=0.01), registrar)
        await agent.start()
        await agent.create(CreateSpec("reg-1", "fn", DirSource(function_dir(tmp_path / "fn", HELLO)), "app.handler"))
        wait = asyncio.get_running_loop().time() + 20
        while not any(r[2] == ["reg-1"] for r in registrar.reports):
            assert asyncio.get_running_loop().time() < wait
            await asyncio.sleep(0.01)
        await agent.close()
        return registrar.reports

    reports = asyncio.run(main())
    assert reports[0] == ("register", 1024, [])
    assert ("heartbeat", 896, ["reg-1"]) in reports
    assert json.dumps(reports)  # plain data


def test_concurrent_creates_of_one_id_make_one_sandbox(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", HELLO)
    outcomes: list[object] = []

    def attempt() -> None:
        try:
            outcomes.append(create(agent.stub, "race-1", code).sandbox.state)
        except grpc.RpcError as exc:
            outcomes.append(exc.code())

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(map(str, outcomes)) == sorted(
        [str(grpc.StatusCode.ALREADY_EXISTS)] * 3 + [str(worker_pb2.SANDBOX_STATE_IDLE)]
    )
    assert invoke(agent.stub, "race-1").outcome == records_pb2.OUTCOME_OK
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="race-1"))
