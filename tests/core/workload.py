"""A seeded random workload for a partition core: the operations a leader performs, in a plausible mix.

Used by the replay and bad-input tests to build rich states. It decides through the core, applies what
the core returns, and hands back every applied record, in order (the partition's journal).

Example::

    core = PartitionCore(account_limit=20)
    journal = run_workload(core, random.Random(7), steps=300)
"""

from __future__ import annotations

import random
from typing import Any, Literal

from assignment.partition_core import CoreError, PartitionCore, Record

WORKERS = ["w1", "w2", "w3", "w4", "w5", "w6"]
ZONES = ["za", "zb", "zc"]
FUNCTIONS = ["thumbnail", "resize", "ocr", "ƒ-unicode"]
VERSIONS = ["$LATEST", "7"]
OUTCOMES: list[Literal["ok", "function_error", "timeout", "crash", "out_of_memory"]] = [
    "ok",
    "ok",
    "ok",
    "function_error",
    "timeout",
    "crash",
    "out_of_memory",
]
REASONS: list[Literal["vanished", "requested", "create_failed", "reset_failed"]] = [
    "vanished",
    "requested",
    "create_failed",
    "reset_failed",
]
CONFIG: dict[str, int] = {
    "account_limit": 12,
    "scale_up_per_window": 6,
    "scale_up_window_ms": 2_000,
    "lease_margin_ms": 500,
    "idle_keepalive_ms": 20_000,
    "alternatives": 2,
}


class Workload:
    """Drives one core; ``journal`` is every record applied so far."""

    def __init__(self, core: PartitionCore, rng: random.Random, now_ms: int = 1_000_000) -> None:
        self.core = core
        self.rng = rng
        self.now = now_ms
        self.journal: list[Record] = []

    def commit(self, records: list[Record]) -> None:
        self.core.apply_all(records)
        self.journal.extend(records)

    def sandboxes(self, *states: str) -> list[int]:
        sandboxes: dict[int, Any] = self.core.state()["sandboxes"]
        return sorted(sid for sid, s in sandboxes.items() if not states or s[4] in states)

    def step(self) -> None:
        rng, core = self.rng, self.core
        self.now += rng.choice([0, 1, 5, 50, 200, 1_000, 3_000, 25_000])
        op = rng.choices(
            [
                "acquire",
                "created",
                "release",
                "expire",
                "reset",
                "destroy",
                "relocate",
                "worker",
                "reserved",
                "provisioned",
                "epoch",
            ],
            weights=[30, 15, 20, 8, 5, 2, 2, 6, 2, 2, 1],
        )[0]
        try:
            if op == "acquire" or core.epoch == 0:
                if core.epoch == 0:
                    self.commit(core.start_epoch(1))
                decision = core.acquire(
                    rng.choice(FUNCTIONS),
                    rng.choice(VERSIONS),
                    rng.choice([128, 128, 256, 512]),
                    rng.choice([50, 1_000, 10_000]),
                    self.now,
                    f"req-{self.now}",
                )
                self.commit(decision.records)
            elif op == "created" and self.sandboxes("creating"):
                self.commit(core.created(rng.choice(self.sandboxes("creating")), self.now))
            elif op == "release":
                leases = sorted(s[6] for s in core.state()["sandboxes"].values() if s[6] is not None)
                if leases:
                    epoch, seq, _ = rng.choice(leases)
                    outcome = rng.choice(OUTCOMES)
                    self.commit(core.release((epoch, seq), outcome, self.now))
            elif op == "expire":
                self.commit(core.expire(self.now, rng.choice([1, 3, 1024])))
            elif op == "reset" and self.sandboxes("resetting"):
                self.commit(core.reset_done(rng.choice(self.sandboxes("resetting")), self.now))
            elif op == "destroy" and self.sandboxes():
                reason = rng.choice(REASONS)
                self.commit(core.destroy(rng.choice(self.sandboxes()), reason, self.now))
            elif op == "relocate" and self.sandboxes("creating"):
                self.commit(core.relocate(rng.choice(self.sandboxes("creating")), rng.choice(WORKERS)))
            elif op == "worker":
                self.worker_change()
            elif op == "reserved":
                function = rng.choice(FUNCTIONS)
                self.commit(core.set_reserved(function, rng.choice([None, 0, 2, 4])))
            elif op == "provisioned":
                count = rng.choice([0, 1, 2, 3])
                until = self.now + rng.choice([1_000, 60_000, 10**9])
                self.commit(core.set_provisioned(rng.choice(FUNCTIONS), rng.choice(VERSIONS), count, until))
            elif op == "epoch":
                self.commit(core.start_epoch(core.epoch + rng.choice([1, 3])))
        except CoreError:
            pass  # a refusal (no capacity, unknown worker, ...) changes nothing

    def worker_change(self) -> None:
        rng, core = self.rng, self.core
        worker_id = rng.choice(WORKERS)
        present = worker_id in core.state()["workers"]
        if not present:
            zone = rng.choice(ZONES)
            self.commit(core.join_worker(worker_id, zone, f"10.0.{ZONES.index(zone)}.1:7001", rng.choice([1024, 4096])))
        elif rng.random() < 0.2:
            self.commit(core.leave_worker(worker_id))
        else:
            self.commit(core.update_worker(worker_id, rng.choice([0, 512, 1024, 4096]), rng.random() < 0.8))


def run_workload(core: PartitionCore, rng: random.Random, steps: int) -> list[Record]:
    """Run ``steps`` operations on ``core`` and return the records applied, in order."""
    workload = Workload(core, rng)
    for _ in range(steps):
        workload.step()
    return workload.journal
