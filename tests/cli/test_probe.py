"""``python -m assignment.commands.probe``: the healthchecks docker-compose.yml runs."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from assignment.commands.probe import main
from tests.cli.fake_frontend import FakeFrontend


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(None)


def test_grpc_probe_follows_the_health_status(
    health_server: tuple[str, health.HealthServicer], capsys: pytest.CaptureFixture[str]
) -> None:
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert main(["grpc", address]) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert main(["grpc", address]) == 1
    assert "NOT_SERVING" in capsys.readouterr().err


def test_http_probe(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFrontend.start() as fake:
        assert main(["http", f"{fake.url}/_leasehold/v1/status"]) == 0
        assert main(["http", f"{fake.url}/nowhere"]) == 1
        assert "HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["grpc", "127.0.0.1:1", "--timeout", "0.5"],
        ["grpc", "not an address", "--timeout", "0.5"],
        ["http", "http://127.0.0.1:1/"],
        ["http", "ftp://127.0.0.1/"],
        ["http", "file:///etc/passwd"],
        ["http", "http://[::1"],
    ],
)
def test_unreachable_or_malformed_targets_are_unhealthy(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("unhealthy: ")
    assert err.count("\n") == 1


def test_usage_errors_exit_2() -> None:
    for argv in (["tcp", "x"], ["grpc"], ["grpc", "x", "--timeout", "soon"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
