"""Invocations through a real agent: init once, warm invokes, errors, timeouts, crashes, memory, logs."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

import grpc
import pytest

from journal.v1 import records_pb2
from tests.workers.harness import AgentProcess, code_of, create, function_dir, invoke, wait_for
from workers.v1 import worker_pb2


def test_init_runs_once_then_many_warm_invokes(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        print("init ran")
        calls = 0
        def handler(event, context):
            global calls
            calls += 1
            print("call", calls, event["n"])
            return {"calls": calls, "n": event["n"]}
        """,
    )
    created = create(agent.stub, "warm-1", code)
    assert not created.HasField("init_error")
    assert "init ran" in created.init_logs
    assert created.sandbox.state == worker_pb2.SANDBOX_STATE_IDLE
    for n in range(1, 31):
        response = invoke(agent.stub, "warm-1", json.dumps({"n": n}).encode())
        assert response.outcome == records_pb2.OUTCOME_OK
        assert json.loads(response.payload) == {"calls": n, "n": n}
        lines = response.logs.splitlines()
        assert lines[0].startswith("START RequestId: req-")
        assert lines[0].endswith("Version: $LATEST")
        assert lines[1] == f"call {n} {n}"
        assert lines[-2].startswith("END RequestId: req-")
        report = lines[-1]
        assert re.match(
            r"REPORT RequestId: req-\S+\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t"
            r"Max Memory Used: \d+ MB",
            report,
        ), report
        assert ("Init Duration" in report) == (n == 1)
        assert (response.init_duration_ms > 0) == (n == 1)
        assert "init ran" not in response.logs
        assert response.billed_duration_ms >= response.duration_ms
    listed = {s.sandbox_id: s for s in agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest()).sandboxes}
    assert listed["warm-1"].invocations == 30
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="warm-1"))


def test_a_provisioned_sandbox_reports_its_init_when_made_not_on_its_first_invoke(
    agent: AgentProcess, tmp_path: Path
) -> None:
    code = function_dir(tmp_path / "fn", 'print("init ran")\ndef handler(event, context):\n    return 1\n')
    created = create(agent.stub, "prov-1", code, provisioned=True)
    assert created.init_duration_ms > 0  # the init is reported where it happened: made ahead of time
    assert "init ran" in created.init_logs
    for _ in range(2):
        response = invoke(agent.stub, "prov-1")
        assert response.outcome == records_pb2.OUTCOME_OK
        assert "Init Duration" not in response.logs.splitlines()[-1]  # as AWS, for provisioned concurrency
        assert response.init_duration_ms == 0
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="prov-1"))
    on_demand = create(agent.stub, "prov-2", code)
    assert "Init Duration" in invoke(agent.stub, "prov-2").logs.splitlines()[-1]  # the flag is what differs
    assert on_demand.init_duration_ms > 0
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="prov-2"))


def test_context_and_environment_match_aws(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import os, sys
        def handler(event, context):
            names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                     "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "AWS_DEFAULT_REGION",
                     "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER", "TZ", "PATH", "LANG",
                     "AWS_LAMBDA_RUNTIME_API", "MY_SETTING", "_X_AMZN_TRACE_ID"]
            return {
                "env": {n: os.environ.get(n) for n in names},
                "ctx": [context.aws_request_id, context.function_name, context.function_version,
                        context.invoked_function_arn, context.memory_limit_in_mb, context.log_group_name,
                        context.log_stream_name],
                "remaining": context.get_remaining_time_in_millis(),
                "cwd": os.getcwd(),
                "client_context": context.client_context,
                "python": [sys.version, sys.prefix],
                "site_packages": __import__("iniconfig").__name__,  # the runtime's site-packages are there
            }
        """,
    )
    create(agent.stub, "ctx-1", code, function_name="ctxfn", memory_mb=256, timeout_ms=5000,
           environment={"MY_SETTING": "42"}, region="eu-west-1")  # fmt: skip
    response = invoke(
        agent.stub, "ctx-1", request_id="rid-1", trace_id="Root=1-abc", client_context='{"custom": {"a": 1}}'
    )
    out = json.loads(response.payload)
    env = out["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "ctxfn"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/ctxfn"
    assert re.match(r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" == out["cwd"]
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["_HANDLER"] == "app.handler"
    assert env["TZ"] == ":UTC"
    assert env["LANG"] == "en_US.UTF-8"
    assert "/usr/bin" in env["PATH"]
    assert re.match(r"^127\.0\.0\.1:\d+$", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["MY_SETTING"] == "42"
    assert env["_X_AMZN_TRACE_ID"] == "Root=1-abc"
    request_id, name, version, arn, memory, group, stream = out["ctx"]
    assert (request_id, name, version, memory, group) == ("rid-1", "ctxfn", "$LATEST", "256", "/aws/lambda/ctxfn")
    assert arn == "arn:aws:lambda:eu-west-1:000000000000:function:ctxfn:$LATEST"
    assert stream == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 3000 < out["remaining"] <= 5000
    assert out["client_context"] == {"custom": {"a": 1}}
    assert out["python"] == [sys.version, "/var/lang"]  # the agent's interpreter, mounted as on Lambda
    assert out["site_packages"] == "iniconfig"
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="ctx-1"))


def test_handler_exception_is_a_function_error(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        def fail(x):
            raise KeyError(f"missing {x}")
        def handler(event, context):
            if event.get("ok"):
                return "fine"
            fail("thing")
        def unserialisable(event, context):
            return {1, 2}
        """,
    )
    create(agent.stub, "exc-1", code)
    response = invoke(agent.stub, "exc-1")
    assert response.outcome == records_pb2.OUTCOME_FUNCTION_ERROR
    error = response.function_error
    assert error.error_type == "KeyError"
    assert error.error_message == "'missing thing'"
    assert len(error.stack_trace) == 2
    assert 'File "/var/task/app.py", line 7, in handler' in error.stack_trace[0]
    assert "in fail" in error.stack_trace[1]
    assert "[ERROR] KeyError: 'missing thing'" in response.logs
    assert "python_bootstrap" not in "".join(error.stack_trace)
    # The sandbox is still usable.
    assert invoke(agent.stub, "exc-1", b'{"ok": true}').payload == b'"fine"'
    # Bad JSON in, unserialisable out.
    assert invoke(agent.stub, "exc-1", b"{not json").function_error.error_type == "Runtime.UnmarshalError"
    create(agent.stub, "exc-2", code, handler="app.unserialisable")
    assert invoke(agent.stub, "exc-2").function_error.error_type == "Runtime.MarshalError"
    for sandbox_id in ("exc-1", "exc-2"):
        agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


@pytest.mark.parametrize(
    ("source", "handler", "error_type", "message"),
    [
        ("raise RuntimeError('config missing')\ndef handler(e, c): pass\n", "app.handler", "RuntimeError",
         "config missing"),
        ("import not_a_module\n", "app.handler", "Runtime.ImportModuleError",
         "Unable to import module 'app': No module named 'not_a_module'"),
        ("def other(e, c): pass\n", "app.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing"),
        ("def handler(e, c) pass\n", "app.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'"),
        ("import os\nos._exit(7)\n", "app.handler", "Runtime.ExitError", "Runtime exited with error: exit status 7"),
    ],
)  # fmt: skip
def test_init_failure_is_reported(
    agent: AgentProcess, tmp_path: Path, source: str, handler: str, error_type: str, message: str
) -> None:
    sandbox_id = f"initfail-{error_type.lower().replace('.', '-')}"
    created = create(agent.stub, sandbox_id, function_dir(tmp_path / "fn", source), handler=handler)
    assert created.init_error.error_type == error_type
    assert message in created.init_error.error_message
    assert created.sandbox.state == worker_pb2.SANDBOX_STATE_INIT_FAILED
    assert f"Status: error\tError Type: {error_type}" in created.init_logs
    # The first invoke retries init (as AWS does) and reports the same error.
    response = invoke(agent.stub, sandbox_id)
    assert response.runtime_error.error_type == error_type
    assert response.outcome == records_pb2.OUTCOME_CRASH
    assert "INIT_REPORT" in response.logs
    assert "REPORT RequestId" in response.logs
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


def test_timeout_kills_and_resets_the_sandbox(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import time
        def handler(event, context):
            if event.get("sleep"):
                print("going to sleep")
                time.sleep(60)
            return "awake"
        """,
    )
    create(agent.stub, "to-1", code, timeout_ms=1000)
    assert invoke(agent.stub, "to-1").payload == b'"awake"'
    response = invoke(agent.stub, "to-1", b'{"sleep": true}')
    assert response.outcome == records_pb2.OUTCOME_TIMEOUT
    assert response.runtime_error.error_type == "Sandbox.Timedout"
    assert response.runtime_error.error_message.endswith("Task timed out after 1.00 seconds")
    assert "going to sleep" in response.logs
    assert re.search(r"Z \S+ Task timed out after 1\.00 seconds\nEND RequestId", response.logs)
    assert "Status: timeout" in response.logs
    assert 950 <= response.duration_ms < 5000  # asyncio timers may fire a hair early
    # Reset: a new runtime process, init again (reported on its first invoke).
    again = invoke(agent.stub, "to-1")
    assert again.payload == b'"awake"'
    assert "Init Duration" in again.logs.splitlines()[-1]
    # A deadline earlier than the function timeout applies too.
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="to-1"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("os._exit(3)", "Runtime exited with error: exit status 3"),
        ("ctypes.string_at(0)", "Runtime exited with error: signal: segmentation fault"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "Runtime exited with error: signal: killed"),
    ],
)
def test_crash_is_a_runtime_exit_error(agent: AgentProcess, tmp_path: Path, body: str, message: str) -> None:
    code = function_dir(
        tmp_path / "fn",
        f"""
        import ctypes, os, signal
        def handler(event, context):
            if event.get("crash"):
                print("about to crash", flush=True)
                {body}
            return "alive"
        """,
    )
    sandbox_id = f"crash-{abs(hash(body)) % 10000}"
    create(agent.stub, sandbox_id, code)
    response = invoke(agent.stub, sandbox_id, b'{"crash": true}')
    assert response.outcome == records_pb2.OUTCOME_CRASH
    assert response.runtime_error.error_type == "Runtime.ExitError"
    assert message in response.runtime_error.error_message
    assert "about to crash" in response.logs
    assert "Runtime.ExitError" in response.logs
    assert invoke(agent.stub, sandbox_id).payload == b'"alive"'
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


def test_memory_exhaustion_is_reported(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        hog = []
        def handler(event, context):
            if event.get("hog"):
                while True:
                    hog.append(bytearray(8 * 1024 * 1024))
            hog.clear()
            return "ok"
        """,
    )
    create(agent.stub, "oom-1", code, memory_mb=128)
    response = invoke(agent.stub, "oom-1", b'{"hog": true}')
    assert response.outcome == records_pb2.OUTCOME_OUT_OF_MEMORY
    assert response.function_error.error_type == "MemoryError"
    assert response.max_memory_used_mb >= 100
    assert "MemoryError" in response.logs
    # The sandbox was restarted (its heap may be in any state): a clean invoke works.
    assert invoke(agent.stub, "oom-1").payload == b'"ok"'
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="oom-1"))


def test_oversized_response_is_a_function_error(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        def handler(event, context):
            return "x" * (event["size"])
        """,
    )
    create(agent.stub, "big-1", code)
    response = invoke(agent.stub, "big-1", b'{"size": 7000000}')
    assert response.function_error.error_type == "Function.ResponseSizeTooLarge"
    assert invoke(agent.stub, "big-1", b'{"size": 5000000}').payload == b'"' + b"x" * 5000000 + b'"'
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="big-1"))


@pytest.mark.parametrize(
    ("level", "visible", "hidden"),
    [("", ["warn-line"], ["info-line", "debug-line"]), ("DEBUG", ["debug-line", "info-line", "warn-line"], []),
     ("ERROR", [], ["warn-line", "info-line"])],
)  # fmt: skip
def test_python_logging_is_visible_at_the_configured_level(
    agent: AgentProcess, tmp_path: Path, level: str, visible: list[str], hidden: list[str]
) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import logging
        logger = logging.getLogger("app")
        def handler(event, context):
            logger.debug("debug-line")
            logger.info("info-line")
            logger.warning("warn-line")
            return None
        """,
    )
    sandbox_id = f"log-{level or 'default'}"
    create(agent.stub, sandbox_id, code, application_log_level=level)
    response = invoke(agent.stub, sandbox_id, request_id=f"logreq-{level}")
    for text in visible:
        assert re.search(rf"\[\w+\]\t\S+Z\tlogreq-{level}\t{text}\n", response.logs), response.logs
    for text in hidden:
        assert text not in response.logs
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


def test_concurrent_invoke_on_one_sandbox_is_refused(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import os, time
        def handler(event, context):
            while not os.path.exists("/tmp/go"):
                time.sleep(0.01)
            return "done"
        def release(event, context):
            open("/tmp/go", "w").close()
        """,
    )
    create(agent.stub, "busy-1", code)
    results: list[worker_pb2.InvokeResponse] = []
    first = threading.Thread(target=lambda: results.append(invoke(agent.stub, "busy-1", token=(5, 1))))
    first.start()

    def busy() -> bool:
        sandboxes = agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest()).sandboxes
        return any(s.sandbox_id == "busy-1" and s.state == worker_pb2.SANDBOX_STATE_BUSY for s in sandboxes)

    wait_for(busy, what="the first invocation to run")
    assert code_of(lambda: invoke(agent.stub, "busy-1", token=(5, 2))) == grpc.StatusCode.ABORTED
    # The /tmp flag lets the first invocation finish; write it from a second sandbox? No: /tmp is private.
    # So release through the filesystem of this sandbox: the agent-side tmp folder is the sandbox's /tmp.
    tmp = agent.data_dir / "sandboxes" / "busy-1" / "tmp"
    (tmp / "go").write_text("")
    first.join(30)
    assert results[0].payload == b'"done"'
    assert invoke(agent.stub, "busy-1", token=(5, 3)).payload == b'"done"'
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="busy-1"))


def test_stale_lease_tokens_are_refused(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", "def handler(e, c):\n    return 1\n")
    create(agent.stub, "lease-1", code)
    assert invoke(agent.stub, "lease-1", token=(2, 50)).payload == b"1"
    assert code_of(lambda: invoke(agent.stub, "lease-1", token=(2, 49))) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: invoke(agent.stub, "lease-1", token=(1, 900))) == grpc.StatusCode.FAILED_PRECONDITION
    assert invoke(agent.stub, "lease-1", token=(2, 50)).payload == b"1"  # the same lease, retried
    assert invoke(agent.stub, "lease-1", token=(3, 1)).payload == b"1"  # a newer epoch
    assert code_of(lambda: invoke(agent.stub, "lease-1", token=(2, 51))) == grpc.StatusCode.FAILED_PRECONDITION
    listed = {s.sandbox_id: s for s in agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest()).sandboxes}
    assert (listed["lease-1"].newest_token.epoch, listed["lease-1"].newest_token.seq) == (3, 1)
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="lease-1"))


def test_reset_starts_a_fresh_sandbox(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import os
        state = {"n": 0}
        def handler(event, context):
            state["n"] += 1
            had = os.path.exists("/tmp/mark")
            open("/tmp/mark", "w").close()
            return [state["n"], had]
        """,
    )
    create(agent.stub, "reset-1", code)
    assert json.loads(invoke(agent.stub, "reset-1").payload) == [1, False]
    assert json.loads(invoke(agent.stub, "reset-1").payload) == [2, True]
    reset = agent.stub.ResetSandbox(worker_pb2.ResetSandboxRequest(sandbox_id="reset-1"))
    assert reset.sandbox.state == worker_pb2.SANDBOX_STATE_IDLE
    assert json.loads(invoke(agent.stub, "reset-1").payload) == [1, False]
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="reset-1"))
