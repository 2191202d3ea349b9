"""Function credentials on a real worker: the sandbox's environment carries them (a forked one its own),
and a sandbox whose credentials would expire before an invocation's deadline is retired, never run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from tests.workers.harness import AgentProcess, create, function_dir, invoke
from workers.v1 import worker_pb2

CODE = """
import os

def handler(event, context):
    return {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
"""


def _credentials(key: str, expires_in_s: float) -> worker_pb2.SandboxCredentials:
    return worker_pb2.SandboxCredentials(
        access_key_id=key,
        secret_access_key="s" * 40,
        session_token=f"token-of-{key}",
        expiration_ms=int((time.time() + expires_in_s) * 1000),
    )


@pytest.mark.parametrize("snap_start", [False, True])
def test_the_sandbox_environment_carries_its_own_credentials(
    agent: AgentProcess, tmp_path: Path, snap_start: bool
) -> None:
    code = function_dir(tmp_path, CODE)
    for n in (1, 2):  # with snap_start the second is forked from the template the first started
        sandbox = f"creds-{snap_start}-{n}"
        key = f"ASIAEXAMPLE{n}{int(snap_start)}"
        create(agent.stub, sandbox, code, snap_start=snap_start, credentials=_credentials(key, 3600))
        answer = invoke(agent.stub, sandbox)
        assert json.loads(answer.payload) == {
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": "s" * 40,
            "AWS_SESSION_TOKEN": f"token-of-{key}",
        }
        agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox))
    assert "token-of-" not in agent.log()  # never logged


def test_a_sandbox_is_retired_before_its_credentials_expire(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path, CODE)
    # Valid for 30 s, the function may run 3 s, the margin is 60 s: no invocation may start.
    create(agent.stub, "expiring", code, timeout_ms=3000, credentials=_credentials("ASIAEXPIRING", 30))
    with pytest.raises(grpc.RpcError) as refused:
        invoke(agent.stub, "expiring")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expire" in (refused.value.details() or "")
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="expiring"))
    create(agent.stub, "lasting", code, timeout_ms=3000, credentials=_credentials("ASIALASTING", 64))
    assert json.loads(invoke(agent.stub, "lasting").payload)["AWS_ACCESS_KEY_ID"] == "ASIALASTING"
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="lasting"))


def test_destroying_a_forked_sandbox_gives_back_no_user(agent: AgentProcess, tmp_path: Path) -> None:
    """Found by the test above: a destroyed fork handed its template's user back to the pool while the
    template still ran as it, and the next plain sandbox shared that user with the template."""
    code = function_dir(tmp_path, "import os\n\ndef handler(event, context):\n    return os.getuid()\n")
    create(agent.stub, "fork-1", code, function_name="uidfn", snap_start=True)
    forked = json.loads(invoke(agent.stub, "fork-1").payload)
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="fork-1"))
    create(agent.stub, "plain-1", code, function_name="uidfn2")
    plain = json.loads(invoke(agent.stub, "plain-1").payload)
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="plain-1"))
    assert plain != forked
