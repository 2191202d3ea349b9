"""A hostile function on ``leasehold dev``: no platform port is reachable from its sandbox; the Lambda
API is, and answers it only when it signs with its own credentials, and then only for invokes.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from pathlib import Path

from tests.harness.dev_process import Dev
from tests.harness.hostile import REFUSED, deploy
from tests.harness.postgres import PostgresServer


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports ``pid`` listens on (its socket inodes matched against ``/proc/net/tcp``)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for name in ("tcp", "tcp6"):  # (gRPC listens on IPv6 sockets, v4-mapped)
        with open(f"/proc/{pid}/net/{name}") as table:
            for line in list(table)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports


def test_a_hostile_function_on_dev_reaches_only_the_lambda_api_and_only_with_its_credentials(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    dev = Dev(tmp_path / "data", tmp_path / "dev.log")
    try:
        client = dev.client()
        deploy(client)
        http_port = urllib.parse.urlsplit(dev.http).port
        ports = _listening_ports(dev.process.pid)
        assert http_port in ports
        assert len(ports) >= 4  # HTTP, gRPC, the assignment server, the worker agent
        database = urllib.parse.urlsplit(postgres.url)
        pg = f"{database.hostname}:{database.port or 5432}"
        with socket.create_connection((database.hostname or "127.0.0.1", database.port or 5432), timeout=3):
            pass  # the host reaches the database; the sandbox must not
        targets = {f"dev:{port}": f"127.0.0.1:{port}" for port in sorted(ports)}
        targets["postgres"] = pg
        event = {"connect": targets, "endpoint": dev.http, "invoke": "target"}
        answer = client.invoke(FunctionName="hostile", Payload=json.dumps(event).encode())
        assert "FunctionError" not in answer, answer
        out = json.loads(answer["Payload"].read())
    finally:
        dev.stop()
    reached = out["connect"]
    for name, result in reached.items():
        if name == f"dev:{http_port}":
            assert result.startswith("HTTP/"), result  # the Lambda endpoint, forwarded into the sandbox
        else:
            assert result in REFUSED, (name, result)
    assert out["unsigned"] in ("MissingAuthenticationTokenException", "IncompleteSignatureException"), out
    assert out["forged"] == "UnrecognizedClientException"
    assert out["own"]["invoke"] == {"echo": {"from": "hostile"}}
    for call in ("list_functions", "get_function", "create_function"):
        assert out["own"][call] == "AccessDeniedException", (call, out["own"])
