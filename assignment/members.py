"""What the cluster knows about its members: assignment servers and worker agents.

Coordination publishes these; leaders and the routing answer read them.

Example::

    worker = WorkerInfo("w1", "10.0.0.5:7001", "zone-a", 8192)
    WorkerInfo.decode(worker.encode()) == worker
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["ServerInfo", "WorkerInfo"]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A live assignment server: its id, the address it serves gRPC on, and its zone."""

    server_id: str
    address: str
    zone: str = ""

    def encode(self) -> bytes:
        """JSON bytes, as published in coordination."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @staticmethod
    def decode(data: bytes) -> ServerInfo:
        """The inverse of :meth:`encode`; ``ValueError`` on malformed data."""
        raw = json.loads(data.decode())
        return ServerInfo(str(raw["server_id"]), str(raw["address"]), str(raw.get("zone", "")))


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker agent: where it listens, its zone and the memory it offers for sandboxes.

    ``incarnation`` is new with every start of the agent ("" when unknown): a worker that restarted
    under the same id, faster than its ZooKeeper node disappeared, has lost its sandboxes all the same.
    """

    worker_id: str
    address: str
    zone: str
    capacity_mb: int
    incarnation: str = ""

    def encode(self) -> bytes:
        """JSON bytes, as published in coordination."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @staticmethod
    def decode(data: bytes) -> WorkerInfo:
        """The inverse of :meth:`encode` (also reads the worker agent's node); ``ValueError``/``KeyError``
        on malformed data."""
        raw = json.loads(data.decode())
        # The worker agent's registrar (workers/registration.py) writes ``memory_mb`` (and extra fields).
        capacity = raw["capacity_mb"] if "capacity_mb" in raw else raw["memory_mb"]
        incarnation = str(raw.get("incarnation", ""))
        return WorkerInfo(str(raw["worker_id"]), str(raw["address"]), str(raw["zone"]), int(capacity), incarnation)
