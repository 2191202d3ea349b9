"""A core kept in step with a partition's journal: rebuilt from a snapshot and the records after it,
then fed the records that follow — by a follower tailing the journal, and by a leader catching up.

Replaying a ``LeaseGranted`` that carries a request id hands the grant it stood for to ``remember``, so
that a new leader answers a retried Acquire with the lease the old one granted. A grant is cold when
its sandbox was created by the record just before it (a cold acquire journals the two together).

Imported by :mod:`assignment.leader` only.

Example::

    replica = CoreReplica(3, {"account_limit": 1000}, remember=cache.remember)
    recovery = journal.recover(3)
    replica.recover(recovery.snapshot, recovery.entries)
    async for entry in tail(journal, 3, after_seq=replica.last_seq):
        replica.apply([entry])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from assignment.grants import Grant
from assignment.partition_core import PartitionCore, Record
from journal.store import Entry, Snapshot
from journal.v1 import records_pb2

__all__ = ["CoreReplica"]


class CoreReplica:
    """One partition's core rebuilt from the journal and fed what follows."""

    def __init__(
        self, partition: int, core_kwargs: Mapping[str, Any], *, remember: Callable[[str, Grant], None]
    ) -> None:
        self.partition = partition
        self.core_kwargs = dict(core_kwargs)
        self.remember = remember
        self.core: PartitionCore | None = None
        #: The seq of the last record applied, and of the snapshot the core was rebuilt from (0: none).
        self.last_seq = 0
        self.snapshot_seq = 0
        self._created = 0  # the sandbox created by the last record applied, if that record created one

    def recover(self, snapshot: Snapshot | None, entries: Iterable[Entry]) -> PartitionCore:
        """A fresh core from a snapshot and the records after it (a refused record raises ``CoreError``)."""
        core = PartitionCore(**self.core_kwargs)
        self.last_seq = self.snapshot_seq = 0
        self._created = 0
        if snapshot is not None:
            core.restore(snapshot.data)
            self.last_seq = self.snapshot_seq = snapshot.seq
        self.core = core
        self.apply(entries)
        return core

    def apply(self, entries: Iterable[Entry]) -> int:
        """Apply journal entries in order; how many."""
        core = self.core
        assert core is not None, "recover first"
        count = 0
        for entry in entries:
            core.apply(Record.decode(entry.payload))
            self.last_seq = entry.seq
            count += 1
            created, self._created = self._created, 0
            if entry.kind == "sandbox_creating":
                self._created = records_pb2.Record.FromString(entry.payload).sandbox_creating.sandbox_id
            elif entry.kind == "lease_granted":
                self._granted(core, records_pb2.Record.FromString(entry.payload).lease_granted, created)
        return count

    def _granted(self, core: PartitionCore, granted: records_pb2.LeaseGranted, created: int) -> None:
        if not granted.request_id:
            return
        box = core.sandbox(granted.sandbox_id)
        worker = core.worker(box.worker_id) if box is not None else None
        if box is None or worker is None:
            return
        token = (granted.token.epoch, granted.token.seq)
        cold = granted.sandbox_id == created
        grant = Grant(
            self.partition,
            token,
            granted.sandbox_id,
            box.worker_id,
            worker.address,
            cold,
            0,
            granted.expiry_ms,
            box.function,
            box.version,
        )
        self.remember(granted.request_id, grant)
