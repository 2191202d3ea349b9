"""Frontend benchmarks (``make bench``): end-to-end warm invokes of a no-op function through the HTTP Invoke API.

The whole embedded platform (frontend, assignment server with a durable SQLite journal, worker agent and
its sandboxes) runs in one child process, as ``leasehold dev`` does (the frontend calls the server and
the worker through in-process stubs); then a frontend in a process of its own is measured against the
same server and worker over gRPC. The load comes from this process over keep-alive HTTP connections;
every measured invoke must be warm and succeed. Floors, measured in the same run from the same client process:

- latency: p50 and p99 of one invoke at a time vs a bare grpc.aio echo round trip (another process);
  goal p50 <= 3x the echo;
- throughput: invokes/s with 32 concurrent clients vs the echo at 32 in flight; goal >= 1,000 invokes/s;
- SigV4: warm invoke p50 and p99 through a frontend process with ``--auth sigv4`` vs one with
  ``--auth none`` (same server and worker, same run), and the verifier alone (parse, key from a warm cache,
  botocore's recomputation) in µs per request vs the open frontend's warm-invoke p50; goal <= 5%;
- weighted alias: warm invoke p50 and p99 by an alias sending 10% to a second version vs by the version
  itself, on one ``leasehold dev`` in paired samples; goal <= +2% at p50;
- mTLS: two clusters of the real shape (ZooKeeper, a server, a worker and a frontend, each its own
  process), one with mTLS on every gRPC hop and one ``--insecure``, invoked in turns request by request;
  warm invoke p50 and p99 with mTLS vs without; goal <= 5% at p50.

Requests are signed by the client once a minute and the signed headers reused (a SigV4 signature is
valid for five minutes), so the difference between the two frontends is the server's verification, not
the client's signing.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from assignment.frontend.auth.keys import AccessKey, KeyStore, new_access_key_id, new_secret
from assignment.frontend.auth.resolver import KeyCache, Resolver
from assignment.frontend.auth.sigv4 import HttpRequest, check_signature, read_claim
from journal.store import Journal
from tests.benchmarks.echo import ECHO_SERVER
from tests.benchmarks.report import Row, Stats, print_table, us
from tests.harness import tls
from tests.harness.cluster import ServerProcess
from tests.harness.zookeeper import ZooKeeperCluster
from tests.workers.harness import AgentProcess, start_agent

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
    key = platform.key
    print(platform.http_endpoint, platform.journal_url, platform.server.address, key.access_key_id, key.secret,
          flush=True)
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


def _child(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=environment
    )
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


async def _latency(call: Callable[[], Awaitable[None]], count: int = LATENCY_SAMPLES) -> Stats:
    for _ in range(100):
        await call()
    samples: list[int] = []
    for _ in range(count):
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


class _Signer:
    """SigV4 headers for the benchmark's requests, made by botocore and reused for a minute (see the module
    docstring); no headers without a key (an ``--auth none`` frontend)."""

    def __init__(self, endpoint: str, key: AccessKey | None) -> None:
        self.endpoint = endpoint
        self.key = key
        self._made: dict[tuple[str, str, bytes], tuple[float, dict[str, str]]] = {}

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        if self.key is None:
            return {}
        made = self._made.get((method, path, body))
        if made is not None and made[0] > time.monotonic():
            return made[1]
        request = AWSRequest(method=method, url=self.endpoint + path, data=body)
        SigV4Auth(Credentials(self.key.access_key_id, self.key.secret), "lambda", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
        self._made[(method, path, body)] = (time.monotonic() + 60.0, headers)
        return headers


async def _invoke_figures(
    endpoint: str, *, create: bool, key: AccessKey | None, samples: int = LATENCY_SAMPLES
) -> tuple[Stats, float, dict[str, int]]:
    """Latency (one at a time) and throughput (CONCURRENCY clients) of warm invokes; errors by kind, and
    the cold starts seen while measuring (after warm-ups that create the sandboxes) under ``"cold"``: a few
    are possible when a client's next Acquire overtakes its previous Release on the way to the leader."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    signer = _Signer(endpoint, key)
    async with aiohttp.ClientSession(endpoint, connector=connector) as session:
        function = {
            "FunctionName": "noop",
            "Runtime": "python3.11",
            "Role": "arn:aws:iam::000000000000:role/bench",
            "Handler": "app.handler",
            "Code": {"ZipFile": _noop_zip()},
        }
        if create:
            body = json.dumps(function).encode()
            headers = signer.headers("POST", "/2015-03-31/functions", body)
            async with session.post("/2015-03-31/functions", data=body, headers=headers) as answer:
                assert answer.status == 201, await answer.text()
        errors: dict[str, int] = {}
        measuring = False
        path = "/2015-03-31/functions/noop/invocations"

        async def call() -> None:
            async with session.post(path, data=b"{}", headers=signer.headers("POST", path, b"{}")) as answer:
                body = await answer.read()
                if answer.status != 200 or answer.headers.get("X-Amz-Function-Error"):
                    key = f"{answer.status} {answer.headers.get('x-amzn-ErrorType', '')} {body[:200]!r}"
                    errors[key] = errors.get(key, 0) + 1
                elif measuring and answer.headers.get("X-Leasehold-Cold-Start") != "0":
                    errors["cold"] = errors.get("cold", 0) + 1

        for _ in range(3):  # the first sandbox
            await call()
        measuring = True
        latency = await _latency(call, samples)
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


def _frontend(
    journal_url: str, server_address: str, key: AccessKey | None, auth: str, tls_flags: list[str]
) -> tuple[subprocess.Popen[str], str]:
    key = key or AccessKey(new_access_key_id(), new_secret())
    process, ready = _child(
        _FRONTEND,
        "frontend",
        "--http=127.0.0.1:0",
        "--grpc=127.0.0.1:0",
        f"--journal={journal_url}",
        f"--assignment={server_address}",
        f"--auth={auth}",
        "--log-level=WARNING",
        *tls_flags,
        env={"LEASEHOLD_FRONTEND_BOOTSTRAP_KEY": f"{key.access_key_id}:{key.secret}"},
    )
    assert ready.startswith("ready http="), ready
    return process, f"http://127.0.0.1:{ready.split()[1].split('=')[1]}"


def _verifier_us(journal_url: str, key: AccessKey, count: int = 5000) -> float:
    """µs per request of the frontend's whole check of a signed Invoke: parse and check the claim, find the
    key (a warm cache, as in steady state), recompute the signature with botocore."""
    endpoint = "http://127.0.0.1:9000"
    path = "/2015-03-31/functions/noop/invocations"
    headers = _Signer(endpoint, key).headers("POST", path, b"{}")
    headers |= {"Host": "127.0.0.1:9000", "Content-Type": "application/octet-stream", "Content-Length": "2"}
    request = HttpRequest("POST", path, tuple(headers.items()), b"{}")
    with Journal.open(journal_url) as journal:
        resolver = Resolver(KeyCache(KeyStore(journal), ttl_s=3600.0))

        async def run() -> float:
            claim = read_claim(request, region="us-east-1", now=time.time())
            await resolver.resolve(claim)  # fills the cache
            started = time.perf_counter_ns()
            for _ in range(count):
                claim = read_claim(request, region="us-east-1", now=time.time())
                identity = await resolver.resolve(claim)
                check_signature(request, claim, identity.secret)
            return (time.perf_counter_ns() - started) / count / 1000

        return asyncio.run(run())


def test_warm_invoke_latency_and_throughput(tmp_path: Path) -> None:
    echo, echo_port = _child(ECHO_SERVER)
    try:
        echo_latency, echo_rate = asyncio.run(_echo_figures(f"127.0.0.1:{echo_port}"))
    finally:
        _stop(echo)
    platform, line = _child(_PLATFORM, str(tmp_path / "data"))
    try:
        endpoint, journal_url, server_address, key_id, secret = line.split()
        key = AccessKey(key_id, secret)
        latency, rate, errors = asyncio.run(_invoke_figures(endpoint, create=True, key=key))
        cold = errors.pop("cold", 0)
        assert not errors, errors
        _figures_rows("all in one process (leasehold dev)", latency, rate, echo_latency, echo_rate, cold)
        frontend, url = _frontend(journal_url, server_address, key, "sigv4", _dev_identity(tmp_path))
        try:
            latency, rate, errors = asyncio.run(_invoke_figures(url, create=False, key=key))
            cold = errors.pop("cold", 0)
            assert not errors, errors
            _figures_rows("frontend in its own process", latency, rate, echo_latency, echo_rate, cold)
        finally:
            _stop(frontend)
        _sigv4_rows(journal_url, server_address, key, _dev_identity(tmp_path))
    finally:
        _stop(platform)


def _dev_identity(tmp_path: Path) -> list[str]:
    """A frontend identity of the benchmark's ``leasehold dev`` (its server and worker serve mTLS)."""
    return ["--tls-dir", str(tmp_path / "data" / "tls" / "frontend")]


def _sigv4_rows(journal_url: str, server_address: str, key: AccessKey, tls_flags: list[str]) -> None:
    """Warm invokes through an ``--auth sigv4`` and an ``--auth none`` frontend, measured in turns (three
    rounds each, the best p50 of each kept, so drift on a shared machine hits both alike)."""
    signed, signed_url = _frontend(journal_url, server_address, key, "sigv4", tls_flags)
    open_, open_url = _frontend(journal_url, server_address, key, "none", tls_flags)
    try:
        on: list[Stats] = []
        off: list[Stats] = []
        for _ in range(3):
            for url, keyed, out in ((signed_url, key, on), (open_url, None, off)):
                latency, _, errors = asyncio.run(_invoke_figures(url, create=False, key=keyed, samples=500))
                errors.pop("cold", 0)
                assert not errors, errors
                out.append(latency)
    finally:
        _stop(signed)
        _stop(open_)
    best_on = min(on, key=lambda s: s.p50_ns)
    best_off = min(off, key=lambda s: s.p50_ns)
    verify_us = _verifier_us(journal_url, key)
    _rows.append(
        Row(
            "warm invoke p50, own-process frontend, --auth sigv4",
            us(best_on.p50_ns),
            f"--auth none p50 {us(best_off.p50_ns)}",
            f"{(best_on.p50_ns - best_off.p50_ns) / best_off.p50_ns:+.1%}",
            "<= +5%",
        )
    )
    _rows.append(
        Row(
            "warm invoke p99, own-process frontend, --auth sigv4",
            us(best_on.p99_ns),
            f"--auth none p99 {us(best_off.p99_ns)}",
            f"{(best_on.p99_ns - best_off.p99_ns) / best_off.p99_ns:+.1%}",
            "-",
        )
    )
    _rows.append(
        Row(
            "SigV4 verifier alone (claim, cached key, botocore recompute)",
            f"{verify_us:.1f} µs/request",
            f"--auth none warm invoke p50 {us(best_off.p50_ns)}",
            f"{verify_us * 1000 / best_off.p50_ns:.1%}",
            "<= 5%",
        )
    )


@contextmanager
def _cluster(root: Path, zk: ZooKeeperCluster, *, insecure: bool) -> Iterator[str]:
    """A server, a worker and an ``--auth none`` frontend, each its own process (mTLS unless ``insecure``);
    the frontend's HTTP endpoint."""
    root.mkdir()
    hosts = f"{zk.hosts}/{root.name}"
    journal = f"sqlite:///{root / 'leasehold.db'}"
    server = ServerProcess.start("s1", hosts, journal, root, partitions=1, workers="grpc", insecure=insecure,
                                 extra=["--log-level", "WARNING"])  # fmt: skip
    agent: AgentProcess | None = None
    frontend: subprocess.Popen[str] | None = None
    try:
        agent = start_agent(root / "w1", 8192, "--zk", hosts, "--code-store", journal, insecure=insecure)
        server.wait_serving()
        flags = ["--insecure"] if insecure else tls.tls_args("frontend")
        frontend, url = _frontend(journal, server.address, None, "none", flags)
        yield url
    finally:
        if frontend is not None:
            _stop(frontend)
        if agent is not None:
            agent.stop()
        server.terminate()


@pytest.fixture
def zk() -> Iterator[ZooKeeperCluster]:
    with ZooKeeperCluster.start(size=1, tick_ms=200) as cluster:
        yield cluster


async def _paired_latency(urls: list[str], samples: int) -> list[Stats]:
    """Warm invokes of ``noop`` (created here) on each endpoint in turn, one request at a time, the order
    swapped every round: paired samples, so a noisy neighbour slows both alike."""
    function = {
        "FunctionName": "noop",
        "Runtime": "python3.11",
        "Role": "arn:aws:iam::000000000000:role/bench",
        "Handler": "app.handler",
        "Code": {"ZipFile": _noop_zip()},
    }
    sessions = [aiohttp.ClientSession(url) for url in urls]
    path = "/2015-03-31/functions/noop/invocations"
    try:
        for session in sessions:
            async with session.post("/2015-03-31/functions", data=json.dumps(function).encode()) as answer:
                assert answer.status == 201, await answer.text()

        async def invoke(session: aiohttp.ClientSession, warm: bool) -> int:
            started = time.perf_counter_ns()
            async with session.post(path, data=b"{}") as answer:
                await answer.read()
                assert answer.status == 200, answer.status
                assert not answer.headers.get("X-Amz-Function-Error")
                if warm:
                    assert answer.headers.get("X-Leasehold-Cold-Start") == "0", "a cold start while measuring"
            return time.perf_counter_ns() - started

        for _ in range(100):
            for session in sessions:
                await invoke(session, warm=False)
        times: list[list[int]] = [[] for _ in sessions]
        for round_ in range(samples):
            order = range(len(sessions)) if round_ % 2 == 0 else reversed(range(len(sessions)))
            for i in order:
                times[i].append(await invoke(sessions[i], warm=True))
        return [Stats.of(t) for t in times]
    finally:
        for session in sessions:
            await session.close()


def test_mtls_cost_on_the_warm_invoke(tmp_path: Path, zk: ZooKeeperCluster) -> None:
    """Three gRPC hops per warm invoke (Acquire, the worker's Invoke, Release) with mTLS, against a cluster
    of the same shape with ``--insecure``, in paired samples."""
    with (
        _cluster(tmp_path / "mtls", zk, insecure=False) as secure,
        _cluster(tmp_path / "plain", zk, insecure=True) as plain,
    ):
        on, off = asyncio.run(_paired_latency([secure, plain], LATENCY_SAMPLES * 2))
    for figure, with_tls, without in (("p50", on.p50_ns, off.p50_ns), ("p99", on.p99_ns, off.p99_ns)):
        _rows.append(
            Row(
                f"warm invoke {figure}, server+worker+frontend processes, mTLS on every hop",
                us(with_tls),
                f"--insecure {figure} {us(without)} (paired)",
                f"{(with_tls - without) / without:+.1%}",
                "<= +5%" if figure == "p50" else "-",
            )
        )


async def _alias_paired_latency(endpoint: str, key: AccessKey, samples: int) -> tuple[Stats, Stats, Counter[str]]:
    """Warm invokes of ``noop`` by a weighted alias (version 1, 10% to version 2) and by version 1 itself,
    request by request in turns, the order swapped every round; the versions the alias ran."""
    signer = _Signer(endpoint, key)
    function = {
        "FunctionName": "noop",
        "Runtime": "python3.11",
        "Role": "arn:aws:iam::000000000000:role/bench",
        "Handler": "app.handler",
        "Code": {"ZipFile": _noop_zip()},
    }
    canary = {"Name": "canary", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}}}
    executed: Counter[str] = Counter()
    async with aiohttp.ClientSession(endpoint) as session:

        async def send(method: str, path: str, document: dict[str, Any], status: int) -> None:
            body = json.dumps(document).encode()
            async with session.request(method, path, data=body, headers=signer.headers(method, path, body)) as answer:
                assert answer.status == status, await answer.text()

        await send("POST", "/2015-03-31/functions", function, 201)
        await send("POST", "/2015-03-31/functions/noop/versions", {}, 201)
        await send("PUT", "/2015-03-31/functions/noop/configuration", {"MemorySize": 256}, 200)
        await send("POST", "/2015-03-31/functions/noop/versions", {}, 201)
        await send("POST", "/2015-03-31/functions/noop/aliases", canary, 201)
        paths = [f"/2015-03-31/functions/noop/invocations?Qualifier={q}" for q in ("canary", "1")]

        async def invoke(path: str, warm: bool) -> int:
            started = time.perf_counter_ns()
            async with session.post(path, data=b"{}", headers=signer.headers("POST", path, b"{}")) as answer:
                await answer.read()
                assert answer.status == 200, answer.status
                if warm:
                    assert answer.headers.get("X-Leasehold-Cold-Start") == "0", "a cold start while measuring"
                    if path == paths[0]:
                        executed[answer.headers["X-Amz-Executed-Version"]] += 1
            return time.perf_counter_ns() - started

        for _ in range(100):  # both versions warm (the canary's 10% reach version 2)
            for path in paths:
                await invoke(path, warm=False)
        times: list[list[int]] = [[], []]
        for round_ in range(samples):
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            for i in order:
                times[i].append(await invoke(paths[i], warm=True))
    return Stats.of(times[0]), Stats.of(times[1]), executed


def test_weighted_alias_cost_on_the_warm_invoke(tmp_path: Path) -> None:
    """Resolving a weighted alias (its cached document, a draw, the drawn version's config) against naming
    the version, on one ``leasehold dev`` in paired samples."""
    platform, line = _child(_PLATFORM, str(tmp_path / "data"))
    try:
        endpoint, _, _, key_id, secret = line.split()
        alias, version, executed = asyncio.run(
            _alias_paired_latency(endpoint, AccessKey(key_id, secret), LATENCY_SAMPLES * 2)
        )
    finally:
        _stop(platform)
    share = executed["2"] / sum(executed.values())
    assert 0.05 < share < 0.15, executed  # the weight routes: 2,000 draws at 10%
    for figure, by_alias, by_version in (("p50", alias.p50_ns, version.p50_ns), ("p99", alias.p99_ns, version.p99_ns)):
        _rows.append(
            Row(
                f"warm invoke {figure}, weighted alias (10% to v2; v2 ran {share:.1%}), leasehold dev",
                us(by_alias),
                f"by version {figure} {us(by_version)} (paired)",
                f"{(by_alias - by_version) / by_version:+.1%}",
                "<= +2%" if figure == "p50" else "-",
            )
        )
