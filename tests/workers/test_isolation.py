"""Sandboxes are confined: private /tmp, read-only system, own user, limits, no reach into the agent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest

from tests.workers.harness import AgentProcess, create, function_dir, invoke, processes_of
from workers.v1 import worker_pb2

PROBE = """
import json, os, signal, errno
def handler(event, context):
    out = {}
    def attempt(name, fn):
        try:
            fn()
            out[name] = "allowed"
        except OSError as exc:
            out[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    if event.get("write_secret"):
        with open("/tmp/secret", "w") as f:
            f.write("s3cret")
    for i, path in enumerate(event.get("read", [])):
        attempt(f"read{i}", lambda: open(path).read())
    for i, path in enumerate(event.get("write", [])):
        attempt(f"write{i}", lambda: open(path, "w").write("x"))
    if event.get("kill"):
        attempt("kill", lambda: os.kill(event["kill"], signal.SIGTERM))
    out["uid"] = os.getuid()
    out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    out["tmp"] = os.listdir("/tmp")
    return out
"""


def test_sandboxes_cannot_reach_each_other_the_system_or_the_agent(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", PROBE)
    create(agent.stub, "iso-a", code)
    create(agent.stub, "iso-b", code)
    a = json.loads(invoke(agent.stub, "iso-a", json.dumps({"write_secret": True}).encode()).payload)
    host_tmp_of_a = agent.data_dir / "sandboxes" / "iso-a" / "tmp" / "secret"
    assert host_tmp_of_a.read_text() == "s3cret"  # (the agent sees it; the other sandbox must not)
    event = {
        "read": [str(host_tmp_of_a), "/tmp/secret", "/etc/hostname"],
        "write": ["/var/task/app.py", "/etc/leasehold-probe", "/usr/leasehold-probe", "/opt/x", "/tmp/mine"],
        "kill": agent.proc.pid,
    }
    b = json.loads(invoke(agent.stub, "iso-b", json.dumps(event).encode()).payload)
    assert b["read0"] == "ENOENT"  # the agent's data folder is hidden inside the sandbox
    assert b["read1"] == "ENOENT"  # its own /tmp is empty: a's file is not there
    assert b["read2"] == "allowed"  # the system is readable...
    assert b["write0"] in ("EROFS", "EACCES")  # ...but not writable, nor is the code
    assert b["write1"] in ("EROFS", "EACCES")
    assert b["write2"] in ("EROFS", "EACCES")
    assert b["write3"] in ("EROFS", "EACCES", "ENOENT")
    assert b["write4"] == "allowed"  # /tmp is
    assert b["kill"] in ("ESRCH", "EPERM")  # the agent is not even visible (pid namespace)
    assert agent.proc.poll() is None
    assert a["uid"] != b["uid"]
    assert a["uid"] != 0
    assert b["uid"] != 0
    assert max(b["pids"]) < 10  # its own pid namespace
    assert b["tmp"] == ["mine"]
    for sandbox_id in ("iso-a", "iso-b"):
        agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


def test_tmp_is_size_limited(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import errno, os
        def handler(event, context):
            st = os.statvfs("/tmp")
            try:
                with open("/tmp/big", "wb") as f:
                    for _ in range(600):
                        f.write(b"x" * (1 << 20))
            except OSError as exc:
                return [st.f_blocks * st.f_frsize, errno.errorcode[exc.errno]]
            return [st.f_blocks * st.f_frsize, "wrote 600 MB"]
        """,
    )
    create(agent.stub, "tmpsize-1", code, memory_mb=1024)
    size, outcome = json.loads(invoke(agent.stub, "tmpsize-1").payload)
    assert size == 512 * 1024 * 1024
    assert outcome == "ENOSPC"
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="tmpsize-1"))


def test_tmp_takes_the_functions_ephemeral_storage_size(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import os
        def handler(event, context):
            with open("/tmp/big", "wb") as f:
                for _ in range(600):  # more than the default 512 MB fits
                    f.write(b"x" * (1 << 20))
            st = os.statvfs("/tmp")
            return st.f_blocks * st.f_frsize
        """,
    )
    create(agent.stub, "tmpsize-2", code, memory_mb=1024, ephemeral_storage_mb=1024, timeout_ms=30000)
    assert json.loads(invoke(agent.stub, "tmpsize-2").payload) == 1024 * 1024 * 1024
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="tmpsize-2"))
    for size in (511, 10_241):
        with pytest.raises(grpc.RpcError) as refused:
            create(agent.stub, f"tmpsize-{size}", code, ephemeral_storage_mb=size)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"ephemeral_storage_mb {size} is outside 512..10240" in str(refused.value.details())


def test_fork_bomb_is_contained(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import os, time
        def handler(event, context):
            children = 0
            try:
                while True:
                    if os.fork() == 0:
                        time.sleep(600)
                        os._exit(0)
                    children += 1
            except OSError as exc:
                return [children, exc.strerror, os.getuid()]
        """,
    )
    create(agent.stub, "bomb-1", code, timeout_ms=30000)
    children, error, uid = json.loads(invoke(agent.stub, "bomb-1").payload)
    assert children < 256  # RLIMIT_NPROC per sandbox user
    assert error == "Resource temporarily unavailable"
    assert len(processes_of(uid)) > 100
    # Other sandboxes are unaffected, and destroying the sandbox takes every process with it.
    create(agent.stub, "bomb-2", function_dir(tmp_path / "ok", "def handler(e, c):\n    return 'ok'\n"))
    assert invoke(agent.stub, "bomb-2").payload == b'"ok"'
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="bomb-1"))
    assert processes_of(uid) == []
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="bomb-2"))


def test_limits_are_applied(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(
        tmp_path / "fn",
        """
        import resource
        def handler(event, context):
            return {name: resource.getrlimit(getattr(resource, name))[0]
                    for name in ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE")}
        """,
    )
    create(agent.stub, "limits-1", code, memory_mb=256)
    limits = json.loads(invoke(agent.stub, "limits-1").payload)
    assert limits == {
        "RLIMIT_AS": (256 + 64) * 1024 * 1024,
        "RLIMIT_NOFILE": 1024,
        "RLIMIT_NPROC": 256,
        "RLIMIT_CORE": 0,
    }
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="limits-1"))


def test_destroy_removes_processes_and_files(agent: AgentProcess, tmp_path: Path) -> None:
    code = function_dir(tmp_path / "fn", "import os\ndef handler(e, c):\n    return os.getuid()\n")
    create(agent.stub, "gone-1", code)
    uid = int(invoke(agent.stub, "gone-1").payload)
    assert processes_of(uid)
    assert agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="gone-1")).existed
    assert processes_of(uid) == []
    assert not (agent.data_dir / "sandboxes" / "gone-1").exists()
    assert not agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="gone-1")).existed
    assert os.path.ismount(agent.data_dir / "sandboxes" / "gone-1" / "tmp") is False
