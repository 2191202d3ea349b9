"""A history of every grant and release seen by clients and every invocation the workers ran, load
generators, and the checker.

Sources: the clients' events (:class:`Held`: ack and release times), the workers' own invocation audit
logs (:class:`Run`, read by :func:`runs_from_audit` from ``leasehold worker --invocation-log``), and the
journal afterwards (every ``LeaseGranted`` with its sandbox and the leader's clock ``now_ms``). Rules:

1. No sandbox is leased to two holders at once: for each sandbox, the intervals from a grant's
   acknowledgement to the moment its holder sent the release must not overlap (tests use long function
   timeouts, so no lease expires while held).
2. A token is granted to one request only, and every attempt of one request id gets the same token.
3. No acknowledged grant is missing from the journal afterwards, with the same sandbox; no acknowledged
   release either.

With the workers' records (``runs``):

4. No two invocations on one sandbox overlap in time (a run cut by its agent's death ends, at the latest,
   when the next agent opened the same audit log).
5. Every run's token was granted by a leader: it is in the journal, for that sandbox.
6. Every run used the sandbox's current lease: it did not start before its grant, nor after a newer grant
   of the sandbox (a stale token ran), and it ended before the sandbox's next grant.
7. Every invocation a client saw answered is in a worker's audit log (the audit is complete).

Worker and leader times are wall-clock ms of one machine; each compared pair is causally ordered (a
grant is stamped before its reply, a run starts after the reply reached the client), so no slack is needed.

Example::

    violations = load.history.check(journal_url, runs_from_audit(Path("w1.jsonl"), "w1"))
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from assignment.client import AssignmentClient, RpcFailed
from assignment.v1 import assignment_pb2 as pb
from journal.store import Journal
from journal.v1 import records_pb2
from tests.harness import tls
from workers.audit import read
from workers.v1 import worker_pb2, worker_pb2_grpc

_FOREVER = 2**62


@dataclass
class Held:
    """One acknowledged grant and what became of it."""

    request_id: str
    partition: int
    token: tuple[int, int]
    sandbox: str
    acked_at: float
    release_sent_at: float | None = None
    released: bool = False
    #: How the client's Invoke on the worker ended: the worker's outcome in lower case (``ok``, ``crash``...)
    #: when it answered, else the gRPC status code's name (``UNAVAILABLE``).
    invoked: str | None = None
    #: Whether the worker answered the Invoke (then the run is in its audit log).
    answered: bool = False


@dataclass(frozen=True)
class Run:
    """One invocation a worker ran, from its audit log."""

    worker: str
    sandbox: str
    token: tuple[int, int]
    request_id: str
    start_ms: int
    end_ms: int | None
    """None: the agent died while it ran."""
    bound_ms: int
    """The latest it can have ended: ``end_ms``, else when the next agent opened the log, else forever."""


@dataclass
class JournalView:
    """What the journal holds afterwards: grants (sandbox, leader's now_ms) and releases, by token."""

    granted: dict[tuple[int, int, int], tuple[int, int]] = field(default_factory=dict)
    released: set[tuple[int, int, int]] = field(default_factory=set)

    @classmethod
    def load(cls, url: str) -> JournalView:
        """Read every partition's records."""
        view = cls()
        with Journal.open(url, migrate=False) as journal:
            for partition in journal.partitions():
                for entry in journal.iter_entries(partition):
                    view.add(partition, entry.record())
        return view

    def add(self, partition: int, record: records_pb2.Record) -> None:
        """Take in one record."""
        kind = record.WhichOneof("kind")
        if kind == "lease_granted":
            t = record.lease_granted.token
            self.granted[(partition, t.epoch, t.seq)] = (record.lease_granted.sandbox_id, record.lease_granted.now_ms)
        elif kind == "lease_released":
            t = record.lease_released.token
            self.released.add((partition, t.epoch, t.seq))


def runs_from_audit(path: Path, worker: str) -> list[Run]:
    """The runs in one worker's audit log (all its agents' incarnations)."""
    records = read(path)
    opens = [int(r["ms"]) for r in records if r.get("event") == "open"]
    runs: list[Run] = []
    incarnation = -1
    pending: dict[tuple[str, int, int, str], int] = {}  # run → its start_ms

    def flush() -> None:
        bound = opens[incarnation + 1] if incarnation + 1 < len(opens) else _FOREVER
        for key, start_ms in pending.items():
            runs.append(Run(worker, key[0], (key[1], key[2]), key[3], start_ms, None, bound))
        pending.clear()

    for record in records:
        event = record.get("event")
        if event == "open":
            flush()
            incarnation += 1
            continue
        key = (str(record["sandbox"]), int(record["epoch"]), int(record["seq"]), str(record["request_id"]))
        if event == "start":
            pending[key] = int(record["start_ms"])
        elif event == "end" and pending.pop(key, None) is not None:
            end = int(record["end_ms"])
            runs.append(Run(worker, key[0], (key[1], key[2]), key[3], int(record["start_ms"]), end, end))
    flush()
    return runs


def _sandbox_key(sandbox: str) -> tuple[int, int] | None:
    """``"p3-s17"`` → ``(3, 17)``; None for a name the servers do not make."""
    head, _, tail = sandbox.partition("-s")
    if not head.startswith("p") or not head[1:].isdigit() or not tail.isdigit():
        return None
    return int(head[1:]), int(tail)


@dataclass
class History:
    """Every acknowledged grant; errors seen, by kind."""

    grants: list[Held] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def successes_since(self, t: float, partition: int | None = None) -> int:
        return sum(1 for g in self.grants if g.acked_at >= t and (partition is None or g.partition == partition))

    def check(self, journal_url: str | None = None, runs: list[Run] | None = None) -> list[str]:
        """Every violation found (empty: the history is safe); ``runs`` need the journal."""
        violations: list[str] = []
        by_sandbox: dict[tuple[int, str], list[Held]] = defaultdict(list)
        by_token: dict[tuple[int, tuple[int, int]], str] = {}
        for g in self.grants:
            by_sandbox[(g.partition, g.sandbox)].append(g)
            other = by_token.setdefault((g.partition, g.token), g.request_id)
            if other != g.request_id:
                violations.append(f"token {g.token} of partition {g.partition} granted to {other} and {g.request_id}")
        for key, held in by_sandbox.items():
            held.sort(key=lambda h: h.acked_at)
            for a, b in itertools.pairwise(held):
                end = a.release_sent_at if a.release_sent_at is not None else float("inf")
                if b.acked_at < end:
                    violations.append(f"sandbox {key} held by {a.request_id} and {b.request_id} at once")
        if journal_url is not None:
            view = JournalView.load(journal_url)
            violations += self.check_journal(view)
            if runs is not None:
                violations += self.check_runs(view, runs)
        elif runs is not None:
            raise ValueError("checking the workers' runs needs the journal")
        return violations

    def check_journal(self, view: JournalView) -> list[str]:
        """Rule 3: every acknowledged grant and release is in the journal."""
        violations = []
        for g in self.grants:
            key = (g.partition, *g.token)
            if key not in view.granted:
                violations.append(f"acknowledged grant {key} ({g.request_id}) missing from the journal")
            elif f"p{g.partition}-s{view.granted[key][0]}" != g.sandbox:
                violations.append(
                    f"grant {key} is for sandbox {view.granted[key][0]} in the journal, {g.sandbox} acked"
                )
            if g.released and key not in view.released:
                violations.append(f"acknowledged release {key} missing from the journal")
        return violations

    def check_runs(self, view: JournalView, runs: list[Run]) -> list[str]:
        """Rules 4-7 over the workers' runs."""
        violations: list[str] = []
        by_sandbox: dict[str, list[Run]] = defaultdict(list)
        for run in runs:
            by_sandbox[run.sandbox].append(run)
        # the journal's grants of each sandbox, oldest token first: (token, now_ms)
        grants_of: dict[tuple[int, int], list[tuple[tuple[int, int], int]]] = defaultdict(list)
        for (partition, epoch, seq), (number, now_ms) in view.granted.items():
            grants_of[(partition, number)].append(((epoch, seq), now_ms))
        for grants in grants_of.values():
            grants.sort()
        for sandbox, sandbox_runs in by_sandbox.items():
            sandbox_runs.sort(key=lambda r: (r.start_ms, r.bound_ms))
            for a, b in itertools.pairwise(sandbox_runs):
                if b.start_ms < a.bound_ms:
                    violations.append(
                        f"sandbox {sandbox}: invocations {a.request_id} {a.token} and {b.request_id} {b.token} overlap"
                        f" ({a.worker} {a.start_ms}-{a.end_ms}, {b.worker} {b.start_ms}-{b.end_ms})"
                    )
            key = _sandbox_key(sandbox)
            for run in sandbox_runs:
                violations += _check_lease(run, key, view, grants_of)
        ran = {(r.sandbox, r.token, r.request_id) for r in runs}
        for g in self.grants:
            if g.answered and (g.sandbox, g.token, g.request_id) not in ran:
                violations.append(f"invocation {g.request_id} {g.token} on {g.sandbox} answered but in no audit log")
        return violations


def _check_lease(
    run: Run,
    key: tuple[int, int] | None,
    view: JournalView,
    grants_of: dict[tuple[int, int], list[tuple[tuple[int, int], int]]],
) -> list[str]:
    """Rules 5 and 6 for one run."""
    where = f"run {run.request_id} {run.token} on {run.sandbox} ({run.worker})"
    if key is None:
        return [f"{where}: not a sandbox name the servers make"]
    partition, sandbox = key
    grant = view.granted.get((partition, *run.token))
    if grant is None:
        return [f"{where}: its token was never granted (not in the journal)"]
    if grant[0] != sandbox:
        return [f"{where}: its token was granted for sandbox p{partition}-s{grant[0]}"]
    problems = []
    if run.start_ms < grant[1]:
        problems.append(f"{where}: started at {run.start_ms}, before its grant at {grant[1]}")
    newer = [(t, ms) for t, ms in grants_of[key] if t > run.token]
    if newer:
        token, granted_ms = newer[0]
        if run.start_ms > granted_ms:
            problems.append(f"{where}: stale token ran at {run.start_ms}; {token} was granted at {granted_ms}")
        elif run.end_ms is not None and run.end_ms > granted_ms:
            problems.append(f"{where}: ran until {run.end_ms}, past the next grant {token} at {granted_ms}")
    return problems


class Load:
    """``clients`` tasks that acquire, hold briefly and release, recording everything in a history."""

    def __init__(self, seeds: list[str], functions: list[str], *, clients: int = 8, partitions: int = 8) -> None:
        self.client = AssignmentClient(
            seeds, partitions=partitions, max_backoff_s=0.2, attempt_timeout_s=1.0, tls=tls.identity("frontend")
        )
        self.functions = functions
        self.clients = clients
        self.history = History()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = False
        self._random = random.Random(7)

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.ensure_future(self._run(i)) for i in range(self.clients)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()

    async def _run(self, index: int) -> None:
        while not self._stop:
            function = self.functions[(index + self._random.randrange(len(self.functions))) % len(self.functions)]
            request_id = uuid.uuid4().hex
            try:
                lease: pb.Lease = await self.client.acquire(
                    function, "1", 128, 60_000, request_id=request_id, deadline_s=3.0
                )
            except RpcFailed as exc:
                self.history.errors[exc.error or exc.code.name] += 1
                await asyncio.sleep(0.01)
                continue
            held = Held(
                request_id, lease.partition, (lease.token.epoch, lease.token.seq), lease.sandbox_id, time.monotonic()
            )
            self.history.grants.append(held)
            await asyncio.sleep(self._random.uniform(0, 0.01))
            held.release_sent_at = time.monotonic()
            try:
                held.released = await self.client.release(lease, "ok", deadline_s=3.0)
            except RpcFailed as exc:
                self.history.errors["release_" + (exc.error or exc.code.name)] += 1


class InvokeLoad:
    """``clients`` tasks that acquire a lease, Invoke on its worker with its token, then release it.

    The sandbox template (code, handler, runtime) goes with every Acquire (cold starts need it). An Invoke
    that failed leaves the sandbox in doubt, so its lease is released as ``crash`` (the leader destroys it).
    """

    def __init__(
        self,
        seeds: list[str],
        functions: list[str],
        template: worker_pb2.CreateSandboxRequest,
        *,
        clients: int = 6,
        partitions: int = 8,
    ) -> None:
        self.client = AssignmentClient(
            seeds, partitions=partitions, max_backoff_s=0.2, attempt_timeout_s=1.0, tls=tls.identity("frontend")
        )
        self.functions = functions
        self.template = template
        self.clients = clients
        self.history = History()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = False
        self._random = random.Random(11)

    def invoked_since(self, t: float) -> int:
        """Grants acknowledged after ``t`` whose invocation ran ok."""
        return sum(1 for g in self.history.grants if g.acked_at >= t and g.invoked == "ok")

    async def __aenter__(self) -> InvokeLoad:
        self._tasks = [asyncio.ensure_future(self._run(i)) for i in range(self.clients)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()
        for channel in self._channels.values():
            await channel.close()

    async def _invoke(self, lease: pb.Lease, request_id: str) -> tuple[str, bool]:
        channel = self._channels.get(lease.worker_address)
        if channel is None:
            channel = self._channels[lease.worker_address] = tls.aio_channel(lease.worker_address, "worker")
        request = worker_pb2.InvokeRequest(
            sandbox_id=lease.sandbox_id, token=lease.token, payload=b'{"n": 1}', request_id=request_id
        )
        try:
            answer: worker_pb2.InvokeResponse = await worker_pb2_grpc.WorkerStub(channel).Invoke(request, timeout=15)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, False
        return records_pb2.Outcome.Name(answer.outcome).removeprefix("OUTCOME_").lower(), True

    async def _run(self, index: int) -> None:
        while not self._stop:
            function = self.functions[(index + self._random.randrange(len(self.functions))) % len(self.functions)]
            request_id = uuid.uuid4().hex
            try:
                lease: pb.Lease = await self.client.acquire(
                    function, "1", 128, 60_000, request_id=request_id, deadline_s=5.0, sandbox=self.template
                )
            except RpcFailed as exc:
                self.history.errors[":".join(filter(None, (exc.error, exc.reason))) or exc.code.name] += 1
                await asyncio.sleep(0.02)
                continue
            held = Held(
                request_id, lease.partition, (lease.token.epoch, lease.token.seq), lease.sandbox_id, time.monotonic()
            )
            self.history.grants.append(held)
            held.invoked, held.answered = await self._invoke(lease, request_id)
            if held.invoked != "ok":
                self.history.errors["invoke_" + held.invoked] += 1
            held.release_sent_at = time.monotonic()
            outcome = "ok" if held.invoked == "ok" else "crash"
            try:
                held.released = await self.client.release(lease, outcome, deadline_s=5.0)
            except RpcFailed as exc:
                self.history.errors["release_" + (exc.error or exc.code.name)] += 1
