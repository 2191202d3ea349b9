"""How a partition leader talks to worker agents: create, reset and destroy sandboxes.

The worker agent's gRPC API (``proto/workers/v1``) is being written; until it lands the leader depends
only on the :class:`WorkerClient` protocol. :class:`AcceptingWorkers` accepts every request without
contacting anyone (for servers run against worker doubles that register in coordination only).

Example::

    init_ms = await client.create_sandbox(worker.address, SandboxSpec("p3-s17", "resize", "$LATEST", 256))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["AcceptingWorkers", "SandboxSpec", "WorkerClient", "WorkerRefused", "sandbox_name"]


def sandbox_name(partition: int, sandbox_id: int) -> str:
    """The name of a partition's sandbox on its worker: ``p<partition>-s<id>``."""
    return f"p{partition}-s{sandbox_id}"


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """A sandbox to create: its name (chosen by the leader) and the function version it runs."""

    name: str
    function: str
    version: str
    memory_mb: int


class WorkerRefused(Exception):
    """The worker refused or could not be reached; the leader tries the next candidate."""


class WorkerClient(Protocol):
    """The worker operations a leader needs."""

    async def create_sandbox(self, address: str, spec: SandboxSpec) -> int:
        """Create and initialise the sandbox; return the init time in ms, or raise :class:`WorkerRefused`."""
        ...

    async def reset_sandbox(self, address: str, name: str) -> None:
        """Bring the sandbox back to a clean idle state, or raise :class:`WorkerRefused`."""
        ...

    async def destroy_sandbox(self, address: str, name: str) -> None:
        """Destroy the sandbox (a missing one counts as destroyed), or raise :class:`WorkerRefused`."""
        ...


class AcceptingWorkers:
    """A :class:`WorkerClient` that accepts every request and contacts nobody."""

    async def create_sandbox(self, address: str, spec: SandboxSpec) -> int:
        """Accept: report an init time of 0 ms."""
        return 0

    async def reset_sandbox(self, address: str, name: str) -> None:
        """Accept."""

    async def destroy_sandbox(self, address: str, name: str) -> None:
        """Accept."""
