"""What a partition leader grants, and the request-id cache that makes Acquire idempotent.

Imported by the leader and the modules it delegates to (following, provisioned concurrency); nothing
here does I/O.

Example::

    cache = RequestCache(100_000)
    cache.remember("req-1", grant)
    assert cache.get("req-1") is grant
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from assignment.worker_client import sandbox_name
from workers.v1 import worker_pb2

__all__ = ["AcquireArgs", "Grant", "RequestCache"]


@dataclass(frozen=True, slots=True)
class AcquireArgs:
    """An Acquire request, as the leader sees it."""

    function: str
    version: str
    memory_mb: int
    timeout_ms: int
    request_id: str = ""
    #: What a cold start asks the worker to create (the frontend's template; ``None`` with worker doubles).
    sandbox: worker_pb2.CreateSandboxRequest | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A granted lease, answered only after its records were committed."""

    partition: int
    token: tuple[int, int]
    sandbox_id: int
    worker_id: str
    worker_address: str
    cold: bool
    init_ms: int
    expiry_ms: int
    function: str
    version: str

    @property
    def sandbox_name(self) -> str:
        """The sandbox's name on its worker."""
        return sandbox_name(self.partition, self.sandbox_id)


class RequestCache:
    """Grants by request id, oldest forgotten first: a retried Acquire finds the first call's grant, or
    the future of a grant still being made."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Grant | asyncio.Future[Grant]] = OrderedDict()

    def get(self, request_id: str) -> Grant | asyncio.Future[Grant] | None:
        """What the request id was given (or is being given), if it is remembered."""
        return self._items.get(request_id)

    def remember(self, request_id: str, value: Grant | asyncio.Future[Grant]) -> None:
        """Remember ``value`` for the request id (the newest entry), forgetting the oldest beyond the size."""
        self._items[request_id] = value
        self._items.move_to_end(request_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def settle(self, request_id: str, future: asyncio.Future[Grant], grant: Grant) -> None:
        """The grant a remembered future became; kept in its place unless the id was taken meanwhile."""
        if not future.done():
            future.set_result(grant)
        if self._items.get(request_id) is future:
            self._items[request_id] = grant

    def abandon(self, request_id: str, future: asyncio.Future[Grant], error: Exception) -> None:
        """The grant a remembered future stood for failed: waiters get ``error`` and the id is forgotten."""
        if not future.done():
            future.set_exception(error)
            future.exception()  # retrieved: nobody may be waiting
        if self._items.get(request_id) is future:
            del self._items[request_id]

    def fail_pending(self, error: Exception) -> None:
        """Fail every grant still being made (the leader failed)."""
        for value in self._items.values():
            if isinstance(value, asyncio.Future) and not value.done():
                value.set_exception(error)
                value.exception()  # retrieved: nobody may be waiting

    def clear(self) -> None:
        """Forget everything (a core rebuilt from the journal)."""
        self._items.clear()
