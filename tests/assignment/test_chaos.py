"""Chaos: at least 50 random faults under load, then the history checker must find nothing.

Faults: SIGKILL a server (restarted at once), SIGTERM a server (graceful; restarted), SIGSTOP a server for
0.3-3 s (past the 2 s session timeout or not) then SIGCONT, lose a worker (a new one joins), restart
ZooKeeper. At most one server is down or paused at a time; the seed is printed so a failure can be replayed
(``LEASEHOLD_CHAOS_SEED``).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import pytest

from tests.assignment.conftest import Servers, Workers
from tests.assignment.history import Load
from tests.assignment.test_cluster import FUNCTIONS, PARTITIONS, settled, start_cluster, until
from tests.harness.cluster import ServerProcess
from tests.harness.zookeeper import ZooKeeperCluster

FAULTS = int(os.environ.get("LEASEHOLD_CHAOS_FAULTS", "50"))


async def wait_serving(server: ServerProcess) -> None:
    await asyncio.to_thread(server.wait_serving, 60.0)


@pytest.mark.chaos
@pytest.mark.timeout(400)
async def test_chaos(servers: Servers, workers: Workers, zookeeper: ZooKeeperCluster) -> None:
    seed = int(os.environ.get("LEASEHOLD_CHAOS_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    started = await start_cluster(servers, workers)
    next_worker = 3
    done: list[str] = []
    async with Load([s.address for s in started], FUNCTIONS, clients=8, partitions=PARTITIONS) as load:
        await until(lambda: load.history.successes_since(0) > 20, 20, "load running")
        for _ in range(FAULTS):
            kind = rng.choices(["kill", "term", "pause", "worker", "zk"], weights=[30, 20, 30, 17, 3])[0]
            victim = rng.choice(started)
            if kind == "kill":
                victim.kill()
                victim.launch()
                await wait_serving(victim)
            elif kind == "term":
                await asyncio.to_thread(victim.terminate)
                victim.launch()
                await wait_serving(victim)
            elif kind == "pause":
                victim.signal(signal.SIGSTOP)
                await asyncio.sleep(rng.uniform(0.3, 3.0))
                victim.signal(signal.SIGCONT)
            elif kind == "worker":
                workers.kill(rng.choice(sorted(workers.sessions)))
                workers.add(f"w{next_worker}", zone=rng.choice(["zone-a", "zone-b"]))
                next_worker += 1
            else:
                await asyncio.to_thread(zookeeper.restart)
            done.append(kind)
            await asyncio.sleep(rng.uniform(0.05, 0.4))
        finished_at = time.monotonic()
        await until(lambda: load.history.successes_since(finished_at) > 50, 60, "service after the faults")
    await until(lambda: settled(started), 60, "settled leadership after the faults")
    violations = load.history.check(servers.journal)
    print(f"faults {len(done)}: {dict((k, done.count(k)) for k in set(done))}; grants {len(load.history.grants)}")
    print(f"errors seen by clients: {dict(load.history.errors)}")
    assert len(done) >= FAULTS
    assert violations == [], f"seed {seed}: {violations[:20]}"
