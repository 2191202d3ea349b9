"""A history of every grant and release seen by clients, a load generator, and the checker.

Rules checked:

1. No sandbox is leased to two holders at once: for each sandbox, the intervals from a grant's
   acknowledgement to the moment its holder sent the release must not overlap (tests use long function
   timeouts, so no lease expires while held).
2. A token is granted to one request only, and every attempt of one request id gets the same token.
3. No acknowledged grant is missing from the journal afterwards, with the same sandbox; no acknowledged
   release either.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from assignment.client import AssignmentClient, RpcFailed
from assignment.v1 import assignment_pb2 as pb
from journal.store import Journal


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


@dataclass
class History:
    """Every acknowledged grant; errors seen, by kind."""

    grants: list[Held] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def successes_since(self, t: float, partition: int | None = None) -> int:
        return sum(1 for g in self.grants if g.acked_at >= t and (partition is None or g.partition == partition))

    def check(self, journal_url: str | None = None) -> list[str]:
        """Every violation found (empty: the history is safe)."""
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
            violations += self._check_journal(journal_url)
        return violations

    def _check_journal(self, url: str) -> list[str]:
        granted: dict[tuple[int, int, int], int] = {}
        released: set[tuple[int, int, int]] = set()
        with Journal.open(url, migrate=False) as journal:
            for partition in journal.partitions():
                for entry in journal.iter_entries(partition):
                    record = entry.record()
                    kind = record.WhichOneof("kind")
                    if kind == "lease_granted":
                        t = record.lease_granted.token
                        granted[(partition, t.epoch, t.seq)] = record.lease_granted.sandbox_id
                    elif kind == "lease_released":
                        t = record.lease_released.token
                        released.add((partition, t.epoch, t.seq))
        violations = []
        for g in self.grants:
            key = (g.partition, *g.token)
            if key not in granted:
                violations.append(f"acknowledged grant {key} ({g.request_id}) missing from the journal")
            elif f"p{g.partition}-s{granted[key]}" != g.sandbox:
                violations.append(f"grant {key} is for sandbox {granted[key]} in the journal, {g.sandbox} acked")
            if g.released and key not in released:
                violations.append(f"acknowledged release {key} missing from the journal")
        return violations


class Load:
    """``clients`` tasks that acquire, hold briefly and release, recording everything in a history."""

    def __init__(self, seeds: list[str], functions: list[str], *, clients: int = 8, partitions: int = 8) -> None:
        self.client = AssignmentClient(seeds, partitions=partitions, max_backoff_s=0.2, attempt_timeout_s=1.0)
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
