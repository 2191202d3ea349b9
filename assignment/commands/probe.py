"""Health probes for container healthchecks: exit 0 when a Leasehold process serves, 1 otherwise.

``grpc HOST:PORT`` asks the standard gRPC health service (assignment servers and worker agents report
SERVING while up); with ``--tls-dir DIR`` it dials with mTLS as that identity (any certificate of the
cluster CA may ask for health; docker-compose.yml's probes use their own component's); ``http URL``
wants a 2xx answer (the frontend's ``/_leasehold/v1/status``). One line
on stderr says why a probe failed. Run it as a module; it is not a ``leasehold`` subcommand.

Example (docker-compose.yml)::

    python -m assignment.commands.probe grpc --tls-dir /tls 127.0.0.1:7100
    python -m assignment.commands.probe http http://127.0.0.1:9000/_leasehold/v1/status
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from workers.certs import ROLES
from workers.tls import Tls, channel

__all__ = ["main", "probe_grpc", "probe_http"]

TIMEOUT_S = 2.0


def probe_grpc(address: str, timeout_s: float = TIMEOUT_S, tls: Tls | None = None, role: str = "") -> str:
    """'' when the health service at ``address`` reports SERVING, else why not; ``tls``: dial with mTLS as
    that identity, to a process of ``role`` (default: the identity's own, as a container probing itself)."""
    try:
        with channel(address, tls, role or (tls.role if tls else "client")) as grpc_channel:
            stub: Any = health_pb2_grpc.HealthStub(grpc_channel)  # the typeshed stub declares no methods
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
    parser.add_argument("--tls-dir", type=Path, metavar="DIR", help="grpc: dial with mTLS as this identity")
    parser.add_argument("--role", choices=ROLES, default="", help="grpc with --tls-dir: the role of the process "
                        "asked (default: the identity's own)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.kind == "http":
        why = probe_http(args.target, args.timeout)
    else:
        try:
            tls = Tls.load(args.tls_dir) if args.tls_dir else None
        except ValueError as exc:
            print(f"unhealthy: {exc}", file=sys.stderr)
            return 2
        why = probe_grpc(args.target, args.timeout, tls, args.role)
    if why:
        print(f"unhealthy: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
