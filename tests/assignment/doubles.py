"""A worker double: an in-process :class:`~assignment.worker_client.WorkerClient` that records every call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from assignment.worker_client import SandboxSpec, WorkerRefused


@dataclass
class FakeWorkers:
    """Accepts requests unless told to refuse; ``sandboxes`` maps address -> names alive there."""

    refuse: set[str] = field(default_factory=set)
    fail_reset: bool = False
    delay_s: float = 0.0
    init_ms: int = 7
    sandboxes: dict[str, set[str]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    async def create_sandbox(self, address: str, spec: SandboxSpec) -> int:
        self.calls.append(("create", address, spec.name))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if address in self.refuse:
            raise WorkerRefused(f"{address} is full")
        self.sandboxes.setdefault(address, set()).add(spec.name)
        return self.init_ms

    async def reset_sandbox(self, address: str, name: str) -> None:
        self.calls.append(("reset", address, name))
        if self.fail_reset:
            raise WorkerRefused("reset failed")

    async def destroy_sandbox(self, address: str, name: str) -> None:
        self.calls.append(("destroy", address, name))
        self.sandboxes.get(address, set()).discard(name)
