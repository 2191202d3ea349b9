"""A worker double: an in-process :class:`~assignment.worker_client.WorkerClient` that records every call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from assignment.worker_client import SandboxSpec, WorkerRefused
from workers.v1 import worker_pb2


@dataclass
class FakeWorkers:
    """Accepts requests unless told to refuse; ``sandboxes`` maps address -> names alive there."""

    refuse: set[str] = field(default_factory=set)
    fail_reset: bool = False
    delay_s: float = 0.0
    init_ms: int = 7
    sandboxes: dict[str, set[str]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    #: Answer ListSandboxes from ``sandboxes`` (off: refuse, so a leader's reconcile skips every worker).
    report: bool = False
    #: Refuse every create as malformed (INVALID_ARGUMENT from a real worker).
    malformed: bool = False
    #: The addresses of every ListSandboxes (kept apart from ``calls``).
    lists: list[str] = field(default_factory=list)
    #: The specs of every create, in order.
    specs: list[SandboxSpec] = field(default_factory=list)

    async def create_sandbox(self, address: str, spec: SandboxSpec) -> int:
        self.calls.append(("create", address, spec.name))
        self.specs.append(spec)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.malformed:
            raise WorkerRefused(f"{address}: code.blob_sha256 is not in the code store", invalid=True)
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

    async def list_sandboxes(self, address: str) -> worker_pb2.ListSandboxesResponse:
        self.lists.append(address)
        if not self.report or address in self.refuse:
            raise WorkerRefused(f"{address} does not report", reason="UNAVAILABLE")
        names = sorted(self.sandboxes.get(address, set()))
        return worker_pb2.ListSandboxesResponse(sandboxes=[worker_pb2.SandboxInfo(sandbox_id=n) for n in names])
