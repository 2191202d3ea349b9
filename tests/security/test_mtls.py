"""mTLS on every gRPC port, against real processes: a worker agent, an assignment server, a frontend and
``leasehold dev``. A caller without a certificate, with one of another CA or with an expired one is refused
by the TLS handshake; a cluster certificate of the wrong role is refused per method (PERMISSION_DENIED);
a caller never sends a request to a peer whose certificate names another role than the one it dialled.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from assignment.cli import build_parser
from assignment.commands.probe import probe_grpc
from assignment.v1 import assignment_pb2, assignment_pb2_grpc, frontend_pb2, frontend_pb2_grpc
from tests.frontend.harness import running_platform
from tests.harness import tls
from tests.harness.cluster import ServerProcess
from tests.workers.harness import AgentProcess, start_agent
from workers.certs import Authority, init, issue, write_identity
from workers.tls import Tls, channel
from workers.v1 import worker_pb2, worker_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    process = start_agent(tmp_path_factory.mktemp("mtls-agent") / "data", 1024, "--sandbox-network", "host")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("mtls-server")
    process = ServerProcess.start("s1", "local", f"sqlite:///{folder / 'journal.db'}", folder, partitions=2)
    process.wait_serving()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def frontend(tmp_path_factory: pytest.TempPathFactory, server: ServerProcess) -> Iterator[str]:
    """A frontend process; its gRPC address."""
    folder = tmp_path_factory.mktemp("mtls-frontend")
    command = [sys.executable, "-m", "assignment.cli", "frontend", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"]
    command += ["--journal", f"sqlite:///{folder / 'db.sqlite'}", "--assignment", server.address, "--auth", "none"]
    with (
        (folder / "log").open("w") as log,
        subprocess.Popen(
            [*command, *tls.tls_args("frontend")], stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT
        ) as process,
    ):
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), (folder / "log").read_text()
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        yield f"127.0.0.1:{fields['grpc']}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``leasehold dev`` in this process: its three gRPC ports and its CA folder."""
    with running_platform(tmp_path_factory.mktemp("mtls-dev") / "data") as (platform, _):
        assert platform.server is not None
        yield {
            "frontend": platform.grpc_endpoint,
            "server": platform.server.address,
            "worker": platform.worker_address,
            "tls": platform.tls_dir,
        }


@pytest.fixture(scope="module")
def strangers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tls]:
    """Identities the cluster must refuse: another CA's (every role), and expired ones of the cluster CA."""
    root = tmp_path_factory.mktemp("mtls-strangers")
    init(root / "other")
    made = {f"other-{role}": Tls.load(root / "other" / role) for role in ("server", "frontend", "worker", "client")}
    authority = Authority.load(tls.certs())
    for role in ("server", "frontend", "client"):
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        write_identity(authority, root / f"expired-{role}", *issue(authority, role, f"old-{role}", days=1,
                                                                    not_before=long_ago))  # fmt: skip
        files = {part: (root / f"expired-{role}" / part).read_bytes() for part in ("ca.pem", "cert.pem", "key.pem")}
        made[f"expired-{role}"] = Tls(files["ca.pem"], files["cert.pem"], files["key.pem"], role, f"old-{role}")
    return made


def _check(dial: grpc.Channel) -> grpc.StatusCode:
    """The status of a health check over ``dial``."""
    with dial:
        stub: Any = health_pb2_grpc.HealthStub(dial)
        try:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def _health(address: str, identity: Tls | None, to: str) -> grpc.StatusCode:
    """The status of a health check from ``identity`` (``None``: plaintext, no certificate)."""
    return _check(channel(address, identity, to))


def _anonymous_tls(address: str, to: str) -> grpc.StatusCode:
    """A TLS client that trusts the cluster CA but shows no certificate of its own."""
    credentials = grpc.ssl_channel_credentials(tls.identity("client").ca)
    options = [("grpc.ssl_target_name_override", f"{to}.leasehold")]
    return _check(grpc.secure_channel(address, credentials, options=options))


def _ports(agent: AgentProcess, server: ServerProcess, frontend: str) -> list[tuple[str, str]]:
    return [(f"127.0.0.1:{agent.port}", "worker"), (server.address, "server"), (frontend, "frontend")]


def test_every_port_refuses_callers_without_a_cluster_certificate(
    agent: AgentProcess, server: ServerProcess, frontend: str, strangers: dict[str, Tls]
) -> None:
    for address, role in _ports(agent, server, frontend):
        assert _health(address, tls.identity("client"), role) == grpc.StatusCode.OK, role  # the control
        assert _health(address, None, role) == grpc.StatusCode.UNAVAILABLE, f"{role}: plaintext"
        assert _anonymous_tls(address, role) == grpc.StatusCode.UNAVAILABLE, f"{role}: TLS without a certificate"
        for name in ("other-server", "other-frontend", "other-client", "expired-server", "expired-frontend"):
            assert _health(address, strangers[name], role) == grpc.StatusCode.UNAVAILABLE, (role, name)


def test_dev_ports_use_the_same_mtls(dev: dict[str, Any], strangers: dict[str, Tls]) -> None:
    client = Tls.load(dev["tls"] / "client")  # what the ready line's grpc-tls= names
    for role in ("frontend", "server", "worker"):
        assert _health(dev[role], client, role) == grpc.StatusCode.OK, role
        assert _health(dev[role], None, role) == grpc.StatusCode.UNAVAILABLE, role
        assert _health(dev[role], tls.identity("client"), role) == grpc.StatusCode.UNAVAILABLE, f"{role}: another CA"
        assert _health(dev[role], strangers["other-client"], role) == grpc.StatusCode.UNAVAILABLE, role


def _denied(call: Any, request: Any) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, caught.value
    return str(caught.value.details())


def test_the_worker_serves_each_method_only_to_the_role_that_calls_it(agent: AgentProcess) -> None:
    address = f"127.0.0.1:{agent.port}"
    create = worker_pb2.CreateSandboxRequest(sandbox_id="mtls-1", function_name="fn", memory_mb=128)
    invoke = worker_pb2.InvokeRequest(sandbox_id="mtls-1", request_id="r1")
    for role in ("frontend", "client", "worker"):
        with tls.channel(address, "worker", as_role=role) as dial:
            stub = worker_pb2_grpc.WorkerStub(dial)
            details = _denied(stub.CreateSandbox, create)
            assert f"role {role!r}" in details
            assert "CreateSandbox" in details
            _denied(stub.DestroySandbox, worker_pb2.DestroySandboxRequest(sandbox_id="mtls-1"))
            _denied(stub.ResetSandbox, worker_pb2.ResetSandboxRequest(sandbox_id="mtls-1"))
    for role in ("server", "client", "worker"):
        with tls.channel(address, "worker", as_role=role) as dial:
            _denied(worker_pb2_grpc.WorkerStub(dial).Invoke, invoke)
    for role in ("client", "worker"):
        with tls.channel(address, "worker", as_role=role) as dial:
            _denied(worker_pb2_grpc.WorkerStub(dial).ListSandboxes, worker_pb2.ListSandboxesRequest())
    # the right roles get past the check to the worker itself
    with tls.channel(address, "worker", as_role="server") as dial:
        worker_pb2_grpc.WorkerStub(dial).ListSandboxes(worker_pb2.ListSandboxesRequest(), timeout=5)
    with tls.channel(address, "worker", as_role="frontend") as dial:
        with pytest.raises(grpc.RpcError) as caught:
            worker_pb2_grpc.WorkerStub(dial).Invoke(invoke, timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # the agent itself answered
        assert "lease token" in str(caught.value.details())


def test_the_server_serves_frontends_only(server: ServerProcess) -> None:
    for role in ("server", "worker", "client"):
        with tls.channel(server.address, "server", as_role=role) as dial:
            stub = assignment_pb2_grpc.AssignmentStub(dial)
            assert "Routing" in _denied(stub.Routing, assignment_pb2.RoutingRequest())
            _denied(stub.Acquire, assignment_pb2.AcquireRequest(function="f", version="1"))
            _denied(stub.Release, assignment_pb2.ReleaseRequest())
    with tls.channel(server.address, "server", as_role="frontend") as dial:
        answer = assignment_pb2_grpc.AssignmentStub(dial).Routing(assignment_pb2.RoutingRequest(), timeout=5)
    assert len(answer.routes) == 2


def test_the_frontends_grpc_api_serves_clients_only(frontend: str) -> None:
    request = frontend_pb2.InvokeRequest(function_name="nothing-here")
    for role in ("server", "worker", "frontend"):
        with tls.channel(frontend, "frontend", as_role=role) as dial:
            _denied(frontend_pb2_grpc.FrontendStub(dial).Invoke, request)
    with tls.channel(frontend, "frontend", as_role="client") as dial, pytest.raises(grpc.RpcError) as caught:
        frontend_pb2_grpc.FrontendStub(dial).Invoke(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # the frontend looked the function up


def test_a_caller_refuses_a_peer_of_another_role(agent: AgentProcess, server: ServerProcess) -> None:
    """Dialling a worker that presents a server's certificate (or the other way) fails before any request
    leaves: a stolen certificate of one role cannot pose as another to collect invocations."""
    assert _health(server.address, tls.identity("frontend"), "worker") == grpc.StatusCode.UNAVAILABLE
    assert _health(f"127.0.0.1:{agent.port}", tls.identity("server"), "server") == grpc.StatusCode.UNAVAILABLE


def test_the_probe_authenticates_with_a_tls_dir(agent: AgentProcess, server: ServerProcess) -> None:
    address = f"127.0.0.1:{agent.port}"
    assert probe_grpc(address, 5, tls.identity("worker")) == ""  # a container probing itself
    assert probe_grpc(server.address, 5, tls.identity("client"), "server") == ""
    assert "UNAVAILABLE" in probe_grpc(address, 5)
    probe = [sys.executable, "-m", "assignment.commands.probe", "grpc", "--tls-dir", str(tls.certs() / "worker")]
    assert subprocess.run([*probe, address], check=False, cwd=ROOT).returncode == 0
    missing = subprocess.run([*probe[:-1], "/nonexistent", address], check=False, cwd=ROOT, capture_output=True)
    assert missing.returncode == 2
    assert b"cannot read ca.pem" in missing.stderr


@pytest.mark.parametrize("command", ["server", "worker", "frontend"])
def test_a_process_without_tls_flags_refuses_to_start(command: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEASEHOLD_")}
    argv = [sys.executable, "-m", "assignment.cli", command]
    if command == "worker":
        argv += ["--data-dir", str(tmp_path), "--listen", "127.0.0.1:0"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 2, done
    assert "--tls-dir DIR is required" in done.stdout + done.stderr
    assert "--insecure" in done.stdout + done.stderr


def test_tls_dir_comes_from_its_variables_and_bad_identities_are_named(
    tmp_path: Path, strangers: dict[str, Tls], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEASEHOLD_SERVER_TLS_DIR", raising=False)
    monkeypatch.delenv("LEASEHOLD_TLS_DIR", raising=False)
    assert build_parser().parse_args(["server"]).tls_dir is None
    monkeypatch.setenv("LEASEHOLD_TLS_DIR", str(tls.certs() / "server"))
    assert build_parser().parse_args(["server"]).tls_dir == tls.certs() / "server"
    monkeypatch.setenv("LEASEHOLD_SERVER_TLS_DIR", str(tls.certs() / "client"))  # the command's own wins
    assert build_parser().parse_args(["server"]).tls_dir == tls.certs() / "client"
    # an expired identity, a certificate of another CA, a folder without a role are refused by name
    authority = Authority.load(tls.certs())
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    write_identity(authority, tmp_path / "old", *issue(authority, "server", "old", days=1, not_before=long_ago))
    with pytest.raises(ValueError, match=r"valid from .* not now"):
        Tls.load(tmp_path / "old")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.pem").write_bytes(strangers["other-server"].ca)
    (mixed / "cert.pem").write_bytes(tls.identity("server").cert)
    (mixed / "key.pem").write_bytes(tls.identity("server").key)
    with pytest.raises(ValueError, match=r"not issued by ca\.pem"):
        Tls.load(mixed)
    (mixed / "cert.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match="not a PEM certificate"):
        Tls.load(mixed)


def test_insecure_is_explicit_and_logged(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    argv = [sys.executable, "-m", "workers.cli", "--insecure", "--data-dir", str(tmp_path / "d")]
    argv += ["--listen", "127.0.0.1:0", "--sandbox-network", "host"]
    with log.open("w") as err, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("event=worker_listening"):
                break
        port = int(line.split("port=")[1])
        assert _health(f"127.0.0.1:{port}", None, "worker") == grpc.StatusCode.OK
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    text = log.read_text()
    assert "event=insecure_grpc component=worker" in text
    assert "grpc_tls=off" in text
    both = subprocess.run(
        [*argv, "--tls-dir", str(tls.certs() / "worker")], check=False, capture_output=True, text=True
    )
    assert both.returncode == 2
    assert "--insecure and --tls-dir exclude each other" in both.stdout
