"""Health probes for container healthchecks: exit 0 when a Leasehold process serves, 1 otherwise.

``grpc HOST:PORT`` asks the standard gRPC health service (assignment servers and worker agents report
SERVING while up); ``http URL`` wants a 2xx answer (the frontend's ``/_leasehold/v1/status``). One line
on stderr says why a probe failed. Run it as a module; it is not a ``leasehold`` subcommand.

Example (docker-compose.yml)::

    python -m assignment.commands.probe grpc 127.0.0.1:7100
    python -m assignment.commands.probe http http://127.0.0.1:9000/_leasehold/v1/status
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["main", "probe_grpc", "probe_http"]

TIMEOUT_S = 2.0


def probe_grpc(address: str, timeout_s: float = TIMEOUT_S) -> str:
    """'' when the health service at ``address`` reports SERVING, else why not."""
    try:
        with grpc.insecure_channel(address) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the typeshed stub declares no methods
            answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
    except grpc.RpcError as exc:
        return f"{address}: {exc.code().name if hasattr(exc, 'code') else exc}"
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return f"{address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}"
    return ""


def probe_http(url: str, timeout_s: float = TIMEOUT_S) -> str:
    """'' when ``url`` answers 2xx, else why not."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError as exc:
        return f"{url}: {exc}"
    if scheme not in ("http", "https"):
        return f"{url}: not an http(s) URL"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return "" if 200 <= status < 300 else f"{url}: HTTP {status}"


def main(argv: list[str] | None = None) -> int:
    """Run one probe; 0 when healthy, 1 when not, 2 for a usage error."""
    parser = argparse.ArgumentParser(prog="python -m assignment.commands.probe", description=__doc__)
    parser.add_argument("kind", choices=("grpc", "http"))
    parser.add_argument("target", help="HOST:PORT for grpc, a URL for http")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S)
    args = parser.parse_args(argv)
    why = (probe_grpc if args.kind == "grpc" else probe_http)(args.target, args.timeout)
    if why:
        print(f"unhealthy: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
