"""The coordination interface a server depends on.

Rules (DESIGN §4): :attr:`Coordinator.connection` turns ``suspended`` the moment the connection to the
coordination service is in doubt — a leader stops granting at once; ``lost`` means the session is gone
(its leaderships with it) and :attr:`Coordinator.generation` changes; after a reconnect the owner re-checks
each leadership (:meth:`Coordinator.holds`) and the journal epoch before serving again.
Change notifications arrive through the ``on_change`` callback on the server's event loop; they carry no
data: the owner reads the cached views (:meth:`servers`, :meth:`workers`, :meth:`leader_of`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Literal

from assignment.members import ServerInfo, WorkerInfo

__all__ = ["Connection", "Coordinator"]

Connection = Literal["connected", "suspended", "lost"]


class Coordinator(ABC):
    """Membership and per-partition leadership."""

    @property
    @abstractmethod
    def connection(self) -> Connection:
        """The connection state; anything but ``connected`` forbids grants."""

    @property
    @abstractmethod
    def generation(self) -> int:
        """Changes whenever the session is lost (every leadership of an older generation is void)."""

    @abstractmethod
    async def start(self, me: ServerInfo | None, on_change: Callable[[], None]) -> None:
        """Connect, publish ``me`` as a live server (``None``: a client or worker only), and start watching."""

    @abstractmethod
    async def stop(self) -> None:
        """Close the session: this member's ephemeral nodes and leaderships go with it."""

    @abstractmethod
    async def withdraw(self) -> None:
        """Stop being a live server (before a graceful stop); leaderships stay until resigned."""

    @abstractmethod
    async def republish(self) -> None:
        """Publish this server again when its node vanished (after a new session)."""

    @abstractmethod
    def servers(self) -> dict[str, ServerInfo]:
        """The live servers (cached)."""

    @abstractmethod
    def workers(self) -> dict[str, WorkerInfo]:
        """The live workers (cached)."""

    @abstractmethod
    def leader_of(self, partition: int) -> ServerInfo | None:
        """The published leader of a partition (cached), ``None`` when it has none."""

    @abstractmethod
    async def try_lead(self, partition: int) -> bool:
        """Become the partition's leader if it has none; ``True`` when this server now holds it."""

    @abstractmethod
    async def holds(self, partition: int) -> bool:
        """Whether this server's current session holds the partition's leadership (asks the service)."""

    @abstractmethod
    async def resign(self, partition: int) -> None:
        """Give up the partition's leadership if this server holds it."""

    @abstractmethod
    async def register_worker(self, worker: WorkerInfo) -> None:
        """Publish a live worker for as long as this session lives (worker agents and doubles)."""

    @abstractmethod
    async def unregister_worker(self, worker_id: str) -> None:
        """Withdraw a worker published by this session."""
