"""Snapshot-fork cold starts: a template per function version, hooks in order, reseeding, fallback."""

from __future__ import annotations

import json
from pathlib import Path

from journal.v1 import records_pb2
from tests.workers.harness import AgentProcess, create, function_dir, invoke, processes_of
from workers.v1 import worker_pb2

SNAP = """
import os, random, time
from snapshot_restore_py import register_after_restore, register_before_snapshot
time.sleep(0.3)
AT_INIT = random.random()
print("init done")

@register_before_snapshot
def first_before():
    print("before-snapshot registered first")

register_before_snapshot(print, "before-snapshot registered second")

@register_after_restore
def first_after():
    print("after-restore registered first")

register_after_restore(print, "after-restore registered second")

def handler(event, context):
    with open(os.path.join(os.environ["TMPDIR"], "mine"), "w") as f:
        f.write(context.aws_request_id)
    return {"at_init": AT_INIT, "now": random.random(), "type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
            "uid": os.getuid(), "tmp": os.environ["TMPDIR"], "stream": context.log_stream_name}
"""


def test_forked_sandboxes_skip_init_and_run_hooks_in_order(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", SNAP)
    first = create(agent.stub, "snap-1", code, snap_start=True)
    assert not first.HasField("init_error")
    assert first.sandbox.restored
    logs = first.init_logs.splitlines()
    # The template's init and before-snapshot hooks (reverse registration order), then the child's
    # after-restore hooks (registration order).
    assert logs == [
        "init done",
        "before-snapshot registered second",
        "before-snapshot registered first",
        "after-restore registered first",
        "after-restore registered second",
    ]
    second = create(agent.stub, "snap-2", code, snap_start=True)
    assert second.init_logs.splitlines() == ["after-restore registered first", "after-restore registered second"]
    assert second.init_duration_ms < 300  # no init: the 0.3 s sleep ran once, in the template
    one = invoke(agent.stub, "snap-1")
    two = invoke(agent.stub, "snap-2")
    a, b = json.loads(one.payload), json.loads(two.payload)
    assert a["at_init"] == b["at_init"]  # the same snapshot...
    assert a["now"] != b["now"]  # ...but reseeded in each child
    assert a["type"] == b["type"] == "snap-start"
    assert a["tmp"] != b["tmp"]
    assert a["stream"] != b["stream"]
    assert a["uid"] != 0
    for response in (one, two):
        report = response.logs.splitlines()[-1]
        assert "Restore Duration: " in report
        assert "Init Duration" not in report
        assert response.restore_duration_ms > 0
        assert response.init_duration_ms == 0
    # Later invokes report neither.
    assert "Restore Duration" not in invoke(agent.stub, "snap-1").logs
    for sandbox_id in ("snap-1", "snap-2"):
        agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


def test_forked_sandbox_timeout_and_crash_recover_by_forking_again(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import os, time
        def handler(event, context):
            if event.get("crash"):
                os._exit(5)
            if event.get("hang"):
                time.sleep(60)
            return os.getpid()
        """,
    )
    create(agent.stub, "snapcrash-1", code, snap_start=True, timeout_ms=1000)
    crashed = invoke(agent.stub, "snapcrash-1", b'{"crash": true}')
    assert crashed.outcome == records_pb2.OUTCOME_CRASH
    assert "exit status 5" in crashed.runtime_error.error_message
    assert invoke(agent.stub, "snapcrash-1").outcome == records_pb2.OUTCOME_OK
    hung = invoke(agent.stub, "snapcrash-1", b'{"hang": true}')
    assert hung.outcome == records_pb2.OUTCOME_TIMEOUT
    assert hung.runtime_error.error_message.endswith("Task timed out after 1.00 seconds")
    again = invoke(agent.stub, "snapcrash-1")
    assert again.outcome == records_pb2.OUTCOME_OK
    assert "Restore Duration" in again.logs
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="snapcrash-1"))


def test_threads_alive_fall_back_to_a_plain_start(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import threading, time
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        def handler(event, context):
            return "plain"
        """,
    )
    created = create(agent.stub, "snapthreads-1", code, snap_start=True)
    assert not created.sandbox.restored
    assert "SNAPSHOT_SKIPPED reason='2 threads alive after init'" in created.init_logs
    response = invoke(agent.stub, "snapthreads-1")
    assert response.payload == b'"plain"'
    assert "Init Duration" in response.logs.splitlines()[-1]
    # The next create of the same version starts plainly without trying again, and says so.
    again = create(agent.stub, "snapthreads-2", code, snap_start=True)
    assert not again.sandbox.restored
    assert "SNAPSHOT_SKIPPED" in again.init_logs
    for sandbox_id in ("snapthreads-1", "snapthreads-2"):
        agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


def test_destroying_a_forked_sandbox_kills_only_it(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", "import os\ndef handler(e, c):\n    return [os.getuid(), os.getpid()]\n")
    create(agent.stub, "snapkill-1", code, snap_start=True)
    create(agent.stub, "snapkill-2", code, snap_start=True)
    uid, _ = json.loads(invoke(agent.stub, "snapkill-1").payload)
    before = len(processes_of(uid))
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="snapkill-1"))
    assert len(processes_of(uid)) == before - 1
    assert invoke(agent.stub, "snapkill-2").outcome == records_pb2.OUTCOME_OK
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="snapkill-2"))
