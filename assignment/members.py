"""What the cluster knows about its members: assignment servers and worker agents.

Coordination publishes these; leaders and the routing answer read them. :class:`WorkerInfo` is the
workers' own (:mod:`workers.registration`, which writes the worker nodes); it is named here beside
:class:`ServerInfo` for the servers that read them.

Example::

    worker = WorkerInfo("w1", "10.0.0.5:7001", "zone-a", 8192)
    WorkerInfo.decode(worker.encode()) == worker
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from workers.registration import WorkerInfo

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
