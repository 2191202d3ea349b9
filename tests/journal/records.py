"""Records for journal tests, built with the generated protobuf classes (no partition core needed)."""

from __future__ import annotations

from journal.v1 import records_pb2


def worker(tag: str, capacity_mb: int = 1024) -> bytes:
    """A ``WorkerJoined`` record whose worker id is ``tag`` (so tests can recognise it)."""
    record = records_pb2.Record(
        worker_joined=records_pb2.WorkerJoined(
            worker_id=tag, zone="zone-a", address="10.0.0.1:7001", capacity_mb=capacity_mb
        )
    )
    return record.SerializeToString()


def tag_of(payload: bytes) -> str:
    """The tag given to :func:`worker`."""
    return records_pb2.Record.FromString(payload).worker_joined.worker_id


def batch(prefix: str, n: int) -> list[bytes]:
    """``n`` records tagged ``prefix/i/n``."""
    return [worker(f"{prefix}/{i}/{n}") for i in range(n)]
