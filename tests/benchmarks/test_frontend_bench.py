"""Frontend benchmarks (``make bench``): end-to-end warm invokes of a no-op function through the HTTP Invoke API.

The whole embedded platform (frontend, assignment server with a durable SQLite journal, worker agent and
its sandboxes) runs in one child process, as ``leasehold dev`` does (the frontend calls the server and
the worker through in-process stubs); then a frontend in a process of its own is measured against the
same server and worker over gRPC. The load comes from this process over keep-alive HTTP connections;
every measured invoke must be warm and succeed. Floors, measured in the same run from the same client process:

- latency: p50 and p99 of one invoke at a time vs a bare grpc.aio echo round trip (another process);
  goal p50 <= 3x the echo;
- throughput: invokes/s with 32 concurrent clients vs the echo at 32 in flight; goal >= 1,000 invokes/s.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from tests.benchmarks.echo import ECHO_SERVER
from tests.benchmarks.report import Row, Stats, print_table, us

pytestmark = pytest.mark.benchmark

CONCURRENCY = 32
LATENCY_SAMPLES = 1000
SECONDS = 5.0
_rows: list[Row] = []

_FRONTEND = """
import argparse, sys
from assignment.frontend import cli
parser = argparse.ArgumentParser(prog="leasehold")
cli.register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""

_PLATFORM = """
import asyncio, logging, signal, sys
from pathlib import Path
from assignment.dev import DevConfig, DevPlatform
logging.basicConfig(level=logging.WARNING)
async def main():
    platform = DevPlatform(DevConfig(data_dir=Path(sys.argv[1]), http_port=0, grpc_port=0, worker_memory_mb=8192))
    await platform.start()
    print(platform.http_endpoint, platform.journal_url, platform.server.address, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await platform.stop()
asyncio.run(main())
"""


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    yield
    if _rows:
        print_table("frontend (HTTP Invoke, end to end)", _rows)


def _child(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


async def _latency(call: Callable[[], Awaitable[None]]) -> Stats:
    for _ in range(100):
        await call()
    samples: list[int] = []
    for _ in range(LATENCY_SAMPLES):
        started = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - started)
    return Stats.of(samples)


async def _rate(call: Callable[[], Awaitable[None]], seconds: float) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * CONCURRENCY

    async def loop(i: int) -> None:
        while time.monotonic() < stop:
            await call()
            counts[i] += 1

    await asyncio.gather(*(loop(i) for i in range(CONCURRENCY)))
    return sum(counts) / seconds


async def _echo_figures(address: str) -> tuple[Stats, float]:
    async with grpc.aio.insecure_channel(address) as channel:
        echo: Any = channel.unary_unary("/bench.Echo/Echo")

        async def call() -> None:
            await echo(b"{}")

        latency = await _latency(call)
        await _rate(call, 1.0)
        return latency, await _rate(call, SECONDS)


def _noop_zip() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    return base64.b64encode(buffer.getvalue()).decode()


async def _invoke_figures(endpoint: str, *, create: bool) -> tuple[Stats, float, dict[str, int]]:
    """Latency (one at a time) and throughput (CONCURRENCY clients) of warm invokes; errors by kind, and
    the cold starts seen while measuring (after warm-ups that create the sandboxes) under ``"cold"``: a few
    are possible when a client's next Acquire overtakes its previous Release on the way to the leader."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(endpoint, connector=connector) as session:
        function = {
            "FunctionName": "noop",
            "Runtime": "python3.11",
            "Role": "arn:aws:iam::000000000000:role/bench",
            "Handler": "app.handler",
            "Code": {"ZipFile": _noop_zip()},
        }
        if create:
            async with session.post("/2015-03-31/functions", data=json.dumps(function)) as answer:
                assert answer.status == 201, await answer.text()
        errors: dict[str, int] = {}
        measuring = False

        async def call() -> None:
            async with session.post("/2015-03-31/functions/noop/invocations", data=b"{}") as answer:
                body = await answer.read()
                if answer.status != 200 or answer.headers.get("X-Amz-Function-Error"):
                    key = f"{answer.status} {answer.headers.get('x-amzn-ErrorType', '')} {body[:200]!r}"
                    errors[key] = errors.get(key, 0) + 1
                elif measuring and answer.headers.get("X-Leasehold-Cold-Start") != "0":
                    errors["cold"] = errors.get("cold", 0) + 1

        for _ in range(3):  # the first sandbox
            await call()
        measuring = True
        latency = await _latency(call)
        measuring = False
        await _rate(call, 3.0)  # CONCURRENCY warm sandboxes
        measuring = True
        rate = await _rate(call, SECONDS)
        return latency, rate, errors


def _figures_rows(where: str, latency: Stats, rate: float, echo_latency: Stats, echo_rate: float, cold: int) -> None:
    where += f" ({cold} cold)" if cold else ""
    _rows.append(
        Row(
            f"warm invoke p50, 1 at a time, {where}",
            us(latency.p50_ns),
            f"grpc.aio echo p50 {us(echo_latency.p50_ns)}",
            f"{latency.p50_ns / echo_latency.p50_ns:.1f}x",
            "<= 3x",
        )
    )
    _rows.append(
        Row(
            f"warm invoke p99, 1 at a time, {where}",
            us(latency.p99_ns),
            f"grpc.aio echo p99 {us(echo_latency.p99_ns)}",
            f"{latency.p99_ns / echo_latency.p99_ns:.1f}x",
            "-",
        )
    )
    _rows.append(
        Row(
            f"warm invokes/s, {CONCURRENCY} concurrent clients, {where}",
            f"{rate:,.0f}/s",
            f"grpc.aio echo {echo_rate:,.0f}/s at {CONCURRENCY} in flight",
            f"{rate / echo_rate:.2f}",
            ">= 1,000/s",
        )
    )


def test_warm_invoke_latency_and_throughput(tmp_path: Path) -> None:
    echo, echo_port = _child(ECHO_SERVER)
    try:
        echo_latency, echo_rate = asyncio.run(_echo_figures(f"127.0.0.1:{echo_port}"))
    finally:
        _stop(echo)
    platform, line = _child(_PLATFORM, str(tmp_path / "data"))
    try:
        endpoint, journal_url, server_address = line.split()
        latency, rate, errors = asyncio.run(_invoke_figures(endpoint, create=True))
        cold = errors.pop("cold", 0)
        assert not errors, errors
        _figures_rows("all in one process (leasehold dev)", latency, rate, echo_latency, echo_rate, cold)
        frontend, ready = _child(
            _FRONTEND,
            "frontend",
            "--http=127.0.0.1:0",
            "--grpc=127.0.0.1:0",
            f"--journal={journal_url}",
            f"--assignment={server_address}",
            "--log-level=WARNING",
        )
        try:
            assert ready.startswith("ready http="), ready
            port = ready.split()[1].split("=")[1]
            latency, rate, errors = asyncio.run(_invoke_figures(f"http://127.0.0.1:{port}", create=False))
            cold = errors.pop("cold", 0)
            assert not errors, errors
            _figures_rows("frontend in its own process", latency, rate, echo_latency, echo_rate, cold)
        finally:
            _stop(frontend)
    finally:
        _stop(platform)
