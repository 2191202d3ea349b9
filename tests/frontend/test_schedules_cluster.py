"""Schedules in the cluster's shape: ZooKeeper, PostgreSQL, two assignment servers, a worker agent with its
invocation log, and two ``leasehold frontend`` processes, each running a scheduler (one holds the lease).

Phase one kills (``kill -9``) the assignment server leading the target's partition while one-time schedules
fall due every half second: by the worker's invocation records every occurrence ran exactly once. Phase two
kills the frontend holding the scheduler's lease: the other takes the lease over and fires what the dead
one had not, late, and no occurrence is fired twice (each is queued once, and across both frontends' logs at
most one scheduler reports firing it); every occurrence still runs.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from assignment.frontend.event_store import EventStore
from assignment.frontend.schedules.runner import execution_id
from assignment.frontend.schedules.store import ScheduleStore
from assignment.partitioning import partition_of
from journal.store import Journal
from tests.frontend.harness import ROLE, frontend_child, lambda_client, make_zip, raw_request
from tests.harness.cluster import ServerProcess
from tests.harness.lambda_clients import scheduler_client
from tests.harness.zookeeper import ZooKeeperCluster
from tests.workers.harness import start_agent
from workers import audit

PARTITIONS = 4
FUNCTION = "beat"
ARN = f"arn:aws:lambda:us-east-1:000000000000:function:{FUNCTION}"
SCHEDULER_ROLE = "arn:aws:iam::000000000000:role/scheduler"
PER_PHASE = 12
SPACING_MS = 500


@pytest.fixture(scope="module")
def zookeeper() -> Iterator[ZooKeeperCluster]:
    """One ZooKeeper server (tickTime 200 ms)."""
    with ZooKeeperCluster.start(size=1, tick_ms=200) as cluster:
        yield cluster


def _at(ms: int) -> str:
    return "at(" + datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + ")"


def _schedule_phase(scheduler: Any, phase: str, first_ms: int) -> list[str]:
    """``PER_PHASE`` one-time schedules, ``SPACING_MS`` apart from ``first_ms`` (whole seconds: at() has no
    finer grain, so two share each second); their names."""
    names = []
    for n in range(PER_PHASE):
        name = f"{phase}-{n}"
        scheduler.create_schedule(
            Name=name, ScheduleExpression=_at(first_ms + n * SPACING_MS), FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": ARN, "RoleArn": SCHEDULER_ROLE, "Input": json.dumps({"schedule": name})},
        )  # fmt: skip
        names.append(name)
    return names


def _runs(log: Path) -> Counter[str]:
    """How many times each request id ran to an end, by the worker's invocation log."""
    return Counter(line["request_id"] for line in audit.read(log) if line.get("event") == "end")


def _wait_for_runs(log: Path, ids: set[str], timeout_s: float) -> Counter[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = _runs(log)
        if ids <= set(runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def _fired_lines(logs: list[Path]) -> Counter[str]:
    fired: Counter[str] = Counter()
    for path in logs:
        for match in re.finditer(r"event=schedule_fired schedule=default/(\S+) ", path.read_text()):
            fired[match.group(1)] += 1
    return fired


def _owner(log: Path) -> str:
    found = re.search(r"event=scheduler_started owner=(\S+)", log.read_text())
    assert found is not None
    return found.group(1)


def test_schedules_fire_once_across_a_server_kill_and_a_scheduler_kill(
    zookeeper: ZooKeeperCluster, database: str, tmp_path: Path
) -> None:
    hosts = f"{zookeeper.hosts}/schedules_cluster"
    servers = [
        ServerProcess.start(name, hosts, database, tmp_path, partitions=PARTITIONS, workers="grpc")
        for name in ("s1", "s2")
    ]
    invocations = tmp_path / "invocations.jsonl"
    agent = start_agent(tmp_path / "w1", 4096, "--zk", hosts, "--code-store", database, "--worker-id", "w1",
                        "--invocation-log", str(invocations))  # fmt: skip
    journal = Journal.open(database)
    store = ScheduleStore(journal, events=EventStore(journal))
    logs = [tmp_path / "fa.log", tmp_path / "fb.log"]
    args = ("--zk", hosts, "--journal", database, "--scheduler-lease", "2")
    try:
        for server in servers:
            server.wait_serving()
        with frontend_child(logs[0], *args) as (a_endpoint, a), frontend_child(logs[1], *args) as (b_endpoint, b):
            lam = lambda_client(a_endpoint)
            code = make_zip({"app.py": "def handler(e, c):\n    return e\n"})
            lam.create_function(
                FunctionName=FUNCTION, Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": code}
            )
            deadline = time.monotonic() + 30
            while "FunctionError" in lam.invoke(FunctionName=FUNCTION, Payload=b"{}") and time.monotonic() < deadline:
                time.sleep(0.1)  # until the servers see the worker
            scheduler = scheduler_client(b_endpoint)

            # Phase one: the leader of the function's partition dies while occurrences fall due.
            status = json.loads(raw_request(a_endpoint, "GET", "/_leasehold/v1/status")[2])
            partition = partition_of(FUNCTION, PARTITIONS)
            leader = next(p["leader_address"] for p in status["partitions"] if p["partition"] == partition)
            first = (int(time.time()) + 3) * 1000
            names = _schedule_phase(scheduler, "server", first)
            ids = {execution_id(store.get("default", name)) for name in names}
            while time.time() * 1000 < first + 2_000:
                time.sleep(0.05)  # until a few occurrences ran; the kill is what the phase is about
            next(server for server in servers if server.address == leader).signal(signal.SIGKILL)
            runs = _wait_for_runs(invocations, ids, timeout_s=90)
            assert {i: runs[i] for i in ids} == dict.fromkeys(ids, 1), "every occurrence ran exactly once"

            # Phase two: the frontend holding the scheduler's lease dies while occurrences fall due.
            holder = store.lease_holder(now_ms=int(time.time() * 1000))
            doomed, survivor = (a, b) if holder == _owner(logs[0]) else (b, a)
            assert holder in (_owner(logs[0]), _owner(logs[1]))
            first = (int(time.time()) + 3) * 1000
            names = _schedule_phase(scheduler_client(b_endpoint if survivor is b else a_endpoint), "frontend", first)
            ids = {execution_id(store.get("default", name)) for name in names}
            while time.time() * 1000 < first + 2_000:
                time.sleep(0.05)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(30)
            runs = _wait_for_runs(invocations, ids, timeout_s=90)
            assert ids <= set(runs), "every occurrence ran"
            assert survivor.poll() is None
            events = EventStore(journal)
            assert {events.state_of(i) for i in ids} == {"done"}  # each queued once (its one row), and finished
            fired = _fired_lines(logs)
            assert all(fired[name] <= 1 for name in names), fired
            assert sum(fired[name] for name in names) >= 1
            assert store.lease_holder(now_ms=int(time.time() * 1000)) == _owner(logs[1] if survivor is b else logs[0])
            # Late, not lost: what the dead holder had not fired, the survivor fired after taking over.
            assert all(store.get("default", name).next_ms is None for name in names)
    finally:
        journal.close()
        agent.stop()
        for server in servers:
            if server.alive:
                server.terminate()
