"""Chaos with real workers: ≥ 50 random faults while clients acquire → Invoke → release, then the checker.

The cluster: one ZooKeeper (tickTime 200 ms), 3 assignment server processes on one SQLite journal (also the
code store), 3 worker agent processes that register in ZooKeeper, run a tiny Python function in real
sandboxes and keep an invocation audit log (``--invocation-log``); each agent has its own sandbox uid range
(``--uid-base``). Faults, one at a time, every kind several times, in a random order:

- ``kill_leader``: SIGKILL the leader of a random partition, restart it at once.
- ``pause_leader``: SIGSTOP the leader of a random partition for 2.3-2.7 s (past its 2 s session timeout),
  then SIGCONT: it must not grant again (its journal appends are fenced).
- ``zk``: restart ZooKeeper.
- ``kill_worker``: SIGKILL a worker agent, restart it (same id and data folder; its sandboxes are gone).

Afterwards the history checker (``tests/assignment/history.py``) runs over the clients' events, the
workers' audit logs and the journal and must report no violation; the same checker, given the same data
plus one planted stale-token run, must report it. The seed is printed so a failure can be
replayed (``LEASEHOLD_CHAOS_SEED``); ``LEASEHOLD_CHAOS_FAULTS`` sets the number of faults.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from assignment.partitioning import partition_of
from journal.blobs import BlobStore
from journal.store import Journal
from tests.assignment.conftest import Servers
from tests.assignment.history import History, InvokeLoad, JournalView, Run, runs_from_audit
from tests.assignment.test_cluster import leaders_via, until
from tests.harness.cluster import ServerProcess
from tests.harness.zookeeper import ZooKeeperCluster
from tests.workers.harness import AgentProcess, start_agent
from workers.sandbox import unmount
from workers.v1 import worker_pb2

FAULTS = int(os.environ.get("LEASEHOLD_CHAOS_FAULTS", "50"))
PARTITIONS = 4
#: Two functions per partition.
FUNCTIONS = [
    f for p in range(PARTITIONS) for f in [f"fn{i}" for i in range(200) if partition_of(f"fn{i}", PARTITIONS) == p][:2]
]
APP = "def handler(event, context):\n    return {'n': event['n'] + 1}\n"


def function_zip() -> bytes:
    """The tiny function's package."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", APP)
    return buffer.getvalue()


class AuditedWorkers:
    """Worker agent processes, each with an audit log that spans its restarts."""

    def __init__(self, folder: Path, zk: str, code_store: str) -> None:
        self.folder, self.zk, self.code_store = folder, zk, code_store
        self.live: dict[str, AgentProcess] = {}
        self.every: list[AgentProcess] = []
        #: Workers by id, for disjoint sandbox uid ranges (agents on one host sharing uids kill each other's
        #: sandboxes: a destroy kills every process of the sandbox's uid).
        self.uid_slots = ("w1", "w2", "w3")
        #: Agents that exited on their own (not killed by the test): why.
        self.exits: list[str] = []

    def audit_path(self, worker_id: str) -> Path:
        """The worker's audit log."""
        return self.folder / f"{worker_id}-invocations.jsonl"

    def start(self, worker_id: str, zone: str) -> AgentProcess:
        """Start (or restart) the worker ``worker_id``; an agent that exits while starting is noted in
        :attr:`exits` and started again, as a supervisor would."""
        for _ in range(5):
            try:
                agent = start_agent(
                    self.folder / worker_id,
                    2048,
                    *("--zk", self.zk, "--zk-session-timeout", "2", "--worker-id", worker_id, "--zone", zone),
                    *("--code-store", self.code_store, "--invocation-log", str(self.audit_path(worker_id))),
                    *("--uid-base", str(200_000 + 10_000 * self.uid_slots.index(worker_id))),
                )
            except AssertionError as exc:  # "agent did not start: <its log>"
                lines = [line for line in str(exc).splitlines() if line and not line[0].isspace()]
                self.exits.append(f"{worker_id}: {lines[-1] if lines else '?'}")
                continue
            self.live[worker_id] = agent
            self.every.append(agent)
            return agent
        raise AssertionError(f"worker {worker_id} does not start: {self.exits[-5:]}")

    def restart_exited(self, zones: dict[str, str]) -> None:
        """Restart every worker whose agent exited on its own (noted in :attr:`exits`)."""
        for worker_id, agent in list(self.live.items()):
            if agent.proc.poll() is not None:
                self.exits.append(f"{worker_id}: exited with {agent.proc.returncode}")
                self.start(worker_id, zones[worker_id])

    def kill(self, worker_id: str) -> None:
        """SIGKILL the worker and reap it."""
        agent = self.live.pop(worker_id)
        agent.proc.kill()
        agent.proc.wait(10)

    def runs(self) -> list[Run]:
        """Every run in every worker's audit log."""
        return [
            run for worker_id in sorted(self.live) for run in runs_from_audit(self.audit_path(worker_id), worker_id)
        ]

    def close(self) -> None:
        """Stop every agent gracefully (audit lines of cut invocations get their end) and clean up."""
        for agent in self.every:
            agent.stop(timeout=30)
        for agent in self.every:  # a killed agent leaves its sandboxes' tmpfs mounted
            for tmp in (agent.data_dir / "sandboxes").glob("*/tmp"):
                unmount(tmp)
        self.every.clear()


@pytest.fixture
def audited_workers(tmp_path: Path, zk_hosts: str, servers: Servers) -> Iterator[AuditedWorkers]:
    made = AuditedWorkers(tmp_path / "workers", zk_hosts, servers.journal)
    yield made
    made.close()


def planted_violation_is_found(history: History, view: JournalView, runs: list[Run]) -> bool:
    """The checker, over this run's real data plus one stale-token run, reports that run."""
    newer: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    for (partition, epoch, seq), (sandbox, now_ms) in sorted(view.granted.items()):
        newer[(partition, sandbox)] = ((epoch, seq), now_ms)
    old = next(r for r in runs if (key := _key(r)) in newer and newer[key][0] > r.token)
    late = newer[_key(old)][1] + 1
    stale = Run(old.worker, old.sandbox, old.token, "planted", late, late + 1, late + 1)
    return any("planted" in v and "stale token ran" in v for v in history.check_runs(view, [*runs, stale]))


def _key(run: Run) -> tuple[int, int]:
    partition, _, number = run.sandbox.removeprefix("p").partition("-s")
    return int(partition), int(number)


def schedule(rng: random.Random, faults: int) -> list[str]:
    """``faults`` fault kinds in a random order, each kind present: about 8% ZooKeeper restarts, 24% worker
    kills, 34% leader pauses, the rest leader kills."""
    zk, workers, pauses = max(2, faults * 8 // 100), max(2, faults * 24 // 100), max(2, faults * 34 // 100)
    plan = ["zk"] * zk + ["kill_worker"] * workers + ["pause_leader"] * pauses
    plan += ["kill_leader"] * max(2, faults - len(plan))
    rng.shuffle(plan)
    return plan


def relaunch(server: ServerProcess, exits: list[str]) -> None:
    """(Re)start ``server`` until it serves; each time it exits on its own is noted in ``exits``."""
    for _ in range(5):
        if not server.alive:
            server.launch()
        try:
            server.wait_serving(60.0)
            return
        except RuntimeError:  # it exited: note the last line of its error
            lines = [line for line in server.log_tail(200).splitlines() if line and not line[0].isspace()]
            exits.append(f"{server.server_id}: {lines[-1] if lines else '?'}")
    raise AssertionError(f"server {server.server_id} does not start:\n{server.log_tail()}")


async def leader_of(started: list[ServerProcess], partition: int) -> ServerProcess | None:
    """The live server leading ``partition`` by the routing table of a live server."""
    for server in started:
        if server.alive:
            address = (await leaders_via(server)).get(partition)
            match = next((s for s in started if s.address == address and s.alive), None)
            if match is not None:
                return match
    return None


@pytest.mark.chaos
@pytest.mark.timeout(max(400, FAULTS * 8))  # 200 faults take ~10 min on a busy 2-core machine
async def test_chaos_with_real_workers(
    servers: Servers, audited_workers: AuditedWorkers, zookeeper: ZooKeeperCluster
) -> None:
    seed = int(os.environ.get("LEASEHOLD_CHAOS_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    began = time.monotonic()
    with Journal.open(servers.journal) as journal:
        sha = BlobStore(journal).put(function_zip())
    template = worker_pb2.CreateSandboxRequest(
        code=worker_pb2.CodeRef(blob_sha256=sha), handler="app.handler", runtime="python"
    )
    zones = {"w1": "zone-a", "w2": "zone-b", "w3": "zone-a"}
    for worker_id, zone in zones.items():
        audited_workers.start(worker_id, zone)
    started = [servers.start(f"s{i + 1}", partitions=PARTITIONS, workers="grpc") for i in range(3)]
    for server in started:
        await asyncio.to_thread(server.wait_serving, 60.0)
    assert len({partition_of(f, PARTITIONS) for f in FUNCTIONS}) == PARTITIONS
    done: list[str] = []
    async with InvokeLoad([s.address for s in started], FUNCTIONS, template, partitions=PARTITIONS) as load:
        await until(lambda: load.invoked_since(0) > 20, 60, "load running")
        plan = schedule(rng, FAULTS)
        spent: dict[str, float] = defaultdict(float)
        # a restart runs while the next faults of the other kind happen; the next fault of its kind waits
        restarting: dict[str, asyncio.Future[object]] = {}
        exits: list[str] = []  # servers that exited on their own: why
        fault_began: float | None = None  # when the next fault was first tried
        while plan:
            kind = plan[-1]
            fault_began = fault_began or time.monotonic()
            category = "worker" if kind == "kill_worker" else "server"
            if category in restarting:
                await restarting.pop(category)
            for server in started:  # a server that exited on its own is restarted, as a supervisor would
                if not server.alive:
                    await asyncio.to_thread(relaunch, server, exits)
            if "worker" not in restarting:
                await asyncio.to_thread(audited_workers.restart_exited, zones)
            if kind in ("kill_leader", "pause_leader"):
                victim = await leader_of(started, rng.randrange(PARTITIONS))
                if victim is None:  # no leader right now (an election under way): try another fault
                    assert time.monotonic() - fault_began < 60, "no partition leader for 60 s"
                    await asyncio.sleep(0.1)
                    continue
                if kind == "kill_leader":
                    victim.kill()
                    restarting["server"] = asyncio.ensure_future(asyncio.to_thread(relaunch, victim, exits))
                else:
                    victim.signal(signal.SIGSTOP)
                    await asyncio.sleep(rng.uniform(2.3, 2.7))
                    victim.signal(signal.SIGCONT)
            elif kind == "kill_worker":
                worker_id = rng.choice(sorted(zones))
                audited_workers.kill(worker_id)
                restart = asyncio.to_thread(audited_workers.start, worker_id, zones[worker_id])
                restarting["worker"] = asyncio.ensure_future(restart)
            else:
                await asyncio.to_thread(zookeeper.restart)
            done.append(plan.pop())
            spent[kind] += time.monotonic() - fault_began
            fault_began = None
            await asyncio.sleep(rng.uniform(0.02, 0.15))
        for pending in restarting.values():
            await pending
        finished_at = time.monotonic()
        await until(lambda: load.invoked_since(finished_at) > 10, 60, "service after the faults")
    history = load.history
    await asyncio.to_thread(audited_workers.close)  # graceful: every run has its end line
    runs = audited_workers.runs()
    view = await asyncio.to_thread(JournalView.load, servers.journal)
    violations = history.check() + history.check_journal(view) + history.check_runs(view, runs)
    assert planted_violation_is_found(history, view, runs)
    invoked = Counter(g.invoked for g in history.grants)
    print(f"faults {len(done)}: {dict(Counter(done))}; seconds spent: { {k: round(v, 1) for k, v in spent.items()} }")
    print(f"grants {len(history.grants)}, invocations by outcome {dict(invoked)}, worker runs {len(runs)}")
    print(f"errors seen by clients: {dict(history.errors)}")
    logs = "".join(s.log_path.read_text(errors="replace") for s in started)
    seen = {e: logs.count(e) for e in ("event=session_lost", "event=leader_dropped_after_reconnect", "Fenced")}
    print(f"servers' logs: {seen}; servers that exited on their own: {len(exits)} {exits}")
    print(f"workers that exited on their own: {len(audited_workers.exits)} {audited_workers.exits}")
    print(f"violations {len(violations)}; wall time {time.monotonic() - began:.1f} s")
    assert len(done) >= FAULTS
    assert invoked["ok"] > 50
    assert violations == [], f"seed {seed}: {violations[:20]}"
