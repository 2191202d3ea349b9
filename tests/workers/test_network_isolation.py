"""Sandboxes' networks: each its own namespace and Runtime API; egress to the world, never to the platform.

An "outside" host is a real network namespace with a veth pair (iproute2), serving TCP on a public-looking
address (198.51.100.77, routed through it) and on a private one (its veth address, 10.213.x.2).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from journal.v1 import records_pb2
from tests.harness import tls
from tests.harness.hostile import REFUSED
from tests.workers.harness import AgentProcess, create, function_dir, invoke, start_agent, wait_for
from workers.netns import EgressPolicy, Endpoint
from workers.v1 import worker_pb2

PROBE = """
import errno, json, os, socket
def handler(event, context):
    out = {"runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"], "netns": os.stat("/proc/self/ns/net").st_ino,
           "lambda_endpoint": os.environ.get("AWS_ENDPOINT_URL_LAMBDA")}
    for target in event.get("connect", []):
        host, port = target.rsplit(":", 1)
        try:
            s = socket.create_connection((host, int(port)), timeout=3)
        except OSError as exc:
            out[target] = errno.errorcode.get(exc.errno, str(exc)) if exc.errno else type(exc).__name__
            continue
        with s:
            out[target] = "connected"
            try:
                s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
                out[target] = s.recv(64).decode(errors="replace").split("\\r\\n")[0] or "connected"
            except OSError:
                pass  # connected, and the service said nothing
    if event.get("scan"):
        open_ports = []
        for port in range(1, 65536):
            with socket.socket() as s:
                # (a socket whose ephemeral port is the one it dials connects to itself: not a listener)
                if s.connect_ex(("127.0.0.1", port)) == 0 and s.getsockname() != s.getpeername():
                    open_ports.append(port)
        out["open"] = open_ports
    return out
"""

SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 200 " + sys.argv[3].encode() + b"\\r\\n\\r\\n")
"""


@dataclass
class Outside:
    """A host outside the platform: a network namespace behind a veth pair."""

    public: str  # routed through the veth, not on any of our subnets
    private: str  # the veth address of the outside end
    port: int


def _sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def _serve(namespace: str, address: str, port: int, name: str) -> subprocess.Popen[bytes]:
    command = ["ip", "netns", "exec", namespace, sys.executable, "-c", SERVER, address, str(port), name]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"listening\n"
    return proc


@pytest.fixture(scope="module")
def outside() -> Iterator[Outside]:
    tag = f"{os.getpid() % 10000:04d}"
    namespace, host_end, far_end = f"lh-out-{tag}", f"lho{tag}h", f"lho{tag}o"
    subnet = f"10.213.{int(tag) % 250}"
    public = "198.51.100.77"
    _sh("ip", "netns", "add", namespace)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        _sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", far_end, "netns", namespace)
        _sh("ip", "addr", "add", f"{subnet}.1/30", "dev", host_end)
        _sh("ip", "link", "set", host_end, "up")
        inside = ["ip", "netns", "exec", namespace, "ip"]
        _sh(*inside, "addr", "add", f"{subnet}.2/30", "dev", far_end)
        _sh(*inside, "link", "set", far_end, "up")
        _sh(*inside, "link", "set", "lo", "up")
        _sh(*inside, "addr", "add", f"{public}/32", "dev", "lo")
        _sh(*inside, "route", "add", "default", "via", f"{subnet}.1")
        _sh("ip", "route", "add", f"{public}/32", "via", f"{subnet}.2")
        servers.append(_serve(namespace, public, 8080, "public"))
        servers.append(_serve(namespace, f"{subnet}.2", 8080, "private"))
        yield Outside(public, f"{subnet}.2", 8080)
    finally:
        for server in servers:
            server.kill()
            server.wait()
            if server.stdout is not None:
                server.stdout.close()
        subprocess.run(["ip", "route", "del", f"{public}/32"], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


@pytest.fixture(scope="module")
def host_service() -> Iterator[tuple[str, int]]:
    """A TCP service of the host on every address (as the platform's are in docker-compose.yml)."""
    server = socket.create_server(("0.0.0.0", 0))
    server.listen()
    yield _host_address(), server.getsockname()[1]
    server.close()


def _host_address() -> str:
    """One of the host's non-loopback addresses."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    for link in json.loads(out):
        for info in link.get("addr_info", []):
            if not info["local"].startswith("127."):
                return str(info["local"])
    pytest.fail("the host has no non-loopback IPv4 address to test with")


@pytest.fixture(scope="module")
def isolated_agent(tmp_path_factory: pytest.TempPathFactory, outside: Outside) -> Iterator[AgentProcess]:
    process = start_agent(tmp_path_factory.mktemp("netns") / "data", 8192)
    yield process
    process.stop()


def _probe(agent: AgentProcess, tmp_path: Path, sandbox_id: str, event: dict[str, object]) -> dict[str, object]:
    code = function_dir(tmp_path / sandbox_id, PROBE)
    create(agent.stub, sandbox_id, code, timeout_ms=60000)
    try:
        response = invoke(agent.stub, sandbox_id, json.dumps(event).encode())
        assert response.outcome == records_pb2.OUTCOME_OK, response
        result: dict[str, object] = json.loads(response.payload)
        return result
    finally:
        agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))


def test_the_only_port_a_sandbox_sees_on_its_loopback_is_its_own_runtime_api(
    isolated_agent: AgentProcess, tmp_path: Path
) -> None:
    # Another sandbox (created first, still alive) and the agent listen on the host's loopback; none of
    # their ports exist in this sandbox's namespace.
    create(isolated_agent.stub, "net-other", function_dir(tmp_path / "other", PROBE))
    try:
        out = _probe(isolated_agent, tmp_path, "net-scan", {"scan": True})
    finally:
        isolated_agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="net-other"))
    assert out["runtime_api"] == "127.0.0.1:9001"
    assert out["open"] == [9001]


def test_a_sandbox_reaches_the_world_but_nothing_of_the_host_or_private_networks(
    isolated_agent: AgentProcess, tmp_path: Path, outside: Outside, host_service: tuple[str, int]
) -> None:
    host_address, host_port = host_service
    agent_port = isolated_agent.port
    targets = {
        "world": f"{outside.public}:{outside.port}",
        "private": f"{outside.private}:{outside.port}",
        "agent on loopback": f"127.0.0.1:{agent_port}",
        "agent via gateway": f"10.0.2.2:{agent_port}",
        "host service on its address": f"{host_address}:{host_port}",
        "host service via gateway": f"10.0.2.2:{host_port}",
        "postgres": "127.0.0.1:5432",
        "metadata service": "169.254.169.254:80",
        "private range": "192.168.1.1:80",
    }
    out = _probe(isolated_agent, tmp_path, "net-egress", {"connect": list(targets.values())})
    assert out[targets["world"]] == "HTTP/1.0 200 public"
    for name, target in targets.items():
        if name != "world":
            assert out[target] in REFUSED, (name, out[target])
    # The host really serves what the sandbox could not reach.
    with socket.create_connection((host_address, host_port), timeout=3):
        pass


def test_allow_list_opens_exactly_the_named_endpoint_and_network(
    new_agent: Callable[..., AgentProcess], tmp_path: Path, outside: Outside, host_service: tuple[str, int]
) -> None:
    endpoint = socket.create_server(("127.0.0.1", 0))
    endpoint_port = endpoint.getsockname()[1]
    host_address, host_port = host_service
    allow = f"127.0.0.1:{endpoint_port},{host_address}:{host_port},{outside.private}/32"
    agent = new_agent(8192, "--sandbox-allow", allow, "--sandbox-deny", f"{outside.public}/32")
    accepted: list[bytes] = []

    def answer() -> bool:
        conn, _ = endpoint.accept()
        with conn:
            accepted.append(conn.recv(1024))
            conn.sendall(b"HTTP/1.0 200 endpoint\r\n\r\n")
        return True

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    try:
        targets = [
            f"127.0.0.1:{endpoint_port}",  # allowed endpoint: forwarded by the agent
            f"{host_address}:{host_port}",  # allowed endpoint on the host's address
            f"{host_address}:{agent.port}",  # the same address, another port: not allowed
            f"127.0.0.1:{agent.port}",
            f"{outside.private}:{outside.port}",  # an allowed private network
            f"{outside.public}:{outside.port}",  # denied by the operator
        ]
        out = _probe(agent, tmp_path, "net-allow", {"connect": targets})
    finally:
        endpoint.close()
    assert out[targets[0]] == "HTTP/1.0 200 endpoint"
    assert accepted
    assert accepted[0].startswith(b"GET / HTTP/1.0")
    assert out[targets[1]] == "connected"  # (the host service accepts and says nothing)
    assert out[targets[2]] in REFUSED
    assert out[targets[3]] in REFUSED
    assert out[targets[4]] == "HTTP/1.0 200 private"
    assert out[targets[5]] in REFUSED


def test_forked_sandboxes_share_a_namespace_but_no_runtime_api_port(
    isolated_agent: AgentProcess, tmp_path: Path
) -> None:
    code = function_dir(tmp_path / "snap", PROBE)
    for sandbox_id in ("net-snap-1", "net-snap-2"):
        assert create(isolated_agent.stub, sandbox_id, code, snap_start=True, timeout_ms=60000).sandbox.restored
    try:
        first = json.loads(invoke(isolated_agent.stub, "net-snap-1", b'{"scan": true}').payload)
        second = json.loads(invoke(isolated_agent.stub, "net-snap-2", b'{"scan": true}').payload)
    finally:
        for sandbox_id in ("net-snap-1", "net-snap-2"):
            isolated_agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id=sandbox_id))
    # Each child talks to its Runtime API over the socket it inherited; nothing listens for a sibling to dial.
    assert first["netns"] == second["netns"]
    assert first["open"] == []
    assert second["open"] == []


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _slirps(agent: AgentProcess) -> list[int]:
    """The agent's slirp4netns children."""
    children = subprocess.run(["pgrep", "-P", str(agent.proc.pid), "slirp4netns"], capture_output=True, check=False)
    return [int(pid) for pid in children.stdout.split()]


def _slirp_of(agent: AgentProcess, netns: int) -> int:
    """The pid of the slirp4netns serving the namespace with inode ``netns`` (its target is an agent fd)."""
    for pid in _slirps(agent):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            target = f.read().split(b"\0")[-3].decode()  # .../fd/N, then the tap name, then ""
        with contextlib.suppress(OSError):
            if os.readlink(target) == f"net:[{netns}]":
                return pid
    pytest.fail(f"no slirp4netns serves namespace {netns}")


def test_a_destroyed_sandbox_takes_its_namespace_and_slirp_with_it(
    isolated_agent: AgentProcess, tmp_path: Path
) -> None:
    create(isolated_agent.stub, "net-life", function_dir(tmp_path / "life", PROBE))
    netns = json.loads(invoke(isolated_agent.stub, "net-life").payload)["netns"]
    slirp = _slirp_of(isolated_agent, netns)
    isolated_agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="net-life"))
    wait_for(lambda: not _alive(slirp), what="the sandbox's slirp4netns to exit")
    fds = os.listdir(f"/proc/{isolated_agent.proc.pid}/fd")
    held = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            held.add(os.readlink(f"/proc/{isolated_agent.proc.pid}/fd/{fd}"))
    assert f"net:[{netns}]" not in held  # the agent let the namespace go


def test_slirp_dies_with_a_killed_agent(new_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    agent = new_agent(8192)
    create(agent.stub, "net-kill", function_dir(tmp_path / "k", PROBE))
    pids = _slirps(agent)
    assert pids
    agent.stop(sig=9)
    wait_for(lambda: not any(map(_alive, pids)), what="slirp4netns to exit with the agent")


def test_bad_allow_list_entries_are_refused_with_the_entry_named() -> None:
    for allow, fragment in (
        ("no-such-host.invalid:80", "cannot resolve 'no-such-host.invalid'"),
        ("a b:80", "'a b' is not an IPv4 address or host name"),
        ("127.0.0.1:0", "port must be 1..65535"),
        ("127.0.0.1:99999", "port must be 1..65535"),
        ("127.0.0.1:9001", "is the Runtime API's"),
        ("10.0.0.0/33", "is not an IPv4 address or CIDR"),
        ("::1", "is not an IPv4 address"),
        ("fe80::1/64", "is not an IPv4 address"),
    ):
        with pytest.raises(ValueError, match=fragment):
            EgressPolicy.parse([allow], [])
    with pytest.raises(ValueError, match="not an IPv4 address or CIDR"):
        EgressPolicy.parse([], ["nonsense"])
    policy = EgressPolicy.parse([" 127.0.0.1:9000 ", "", "10.1.2.0/24", "localhost:8080"], ["8.8.8.8"])
    assert policy.endpoints == (Endpoint("127.0.0.1", 9000), Endpoint("127.0.0.1", 8080))
    assert [str(n) for n in policy.allow] == ["10.1.2.0/24"]
    assert [str(n) for n in policy.deny] == ["8.8.8.8/32"]


def test_the_worker_refuses_bad_network_flags(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "workers.cli", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0"]
    command += tls.tls_args("worker")
    bad = subprocess.run(
        [*command, "--sandbox-allow", "nope.invalid:1"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2
    assert "cannot resolve 'nope.invalid'" in bad.stdout
    mixed = [*command, "--sandbox-network", "host", "--sandbox-deny", "10.0.0.0/8"]
    refused = subprocess.run(mixed, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2
    assert "need --sandbox-network isolated" in refused.stdout


def test_the_lambda_endpoint_is_allow_listed_and_named_in_the_environment(
    new_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    api = socket.create_server(("127.0.0.1", 0))
    port = api.getsockname()[1]
    agent = new_agent(8192, "--lambda-endpoint", f"http://localhost:{port}")
    try:
        out = _probe(agent, tmp_path, "net-endpoint", {"connect": [f"127.0.0.1:{port}"]})
    finally:
        api.close()
    assert out["lambda_endpoint"] == f"http://127.0.0.1:{port}"  # resolved once, by the agent
    assert out[f"127.0.0.1:{port}"] == "connected"  # reached (the test's server never answers)


def test_a_bad_lambda_endpoint_is_refused(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "workers.cli", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0"]
    command += tls.tls_args("worker")
    for url in ("ftp://x:1", "http://127.0.0.1:9000/path", "nonsense"):
        done = subprocess.run(
            [*command, "--lambda-endpoint", url], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, url
        assert "expected http(s)://HOST:PORT" in done.stdout, done.stdout
