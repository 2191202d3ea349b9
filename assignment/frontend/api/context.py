"""What every resource module of the Lambda HTTP API works with: the frontend's parts, in one value.

:class:`ApiContext` is built once by :class:`~assignment.frontend.api.app.LambdaHttpApi` and handed to each
resource class (functions, invoke, concurrency, event configs, layers, admin); a new resource module takes
the same value. :class:`EventSink` is the part of the event queue the API (and the gRPC API) uses.

Example::

    context = ApiContext(registry, invoker, provisioner, events=queue, account_limit=1000)
    routes = FunctionsApi(context).routes()
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from assignment.coordination.base import Coordinator
from assignment.frontend.event_sources.status import SourcesOverview
from assignment.frontend.invoker import Invoker
from assignment.frontend.provisioning import Provisioner
from assignment.frontend.queue_targets import QueueTargets
from assignment.frontend.registry import Registry
from assignment.frontend.types import InvalidParameterValueException
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT

__all__ = ["ApiContext", "EventSink"]


class EventSink(Protocol):
    """The part of ``assignment.frontend.events.EventQueue`` the HTTP API uses."""

    async def enqueue(self, function: str, qualifier: str, payload: bytes, request_id: str) -> bool:
        """Queue an event durably."""

    async def depth(self, function: str | None = None) -> int:
        """Events waiting."""

    async def dead_letters(self, function: str, limit: int = 100) -> list[dict[str, object]]:
        """Events that ran out of retries."""


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The frontend's parts the HTTP API's handlers call."""

    registry: Registry
    invoker: Invoker
    provisioner: Provisioner
    events: EventSink | None = None
    coordinator: Coordinator | None = None
    #: The account's concurrency limit (the largest reserved or provisioned count).
    account_limit: int = DEFAULT_ACCOUNT_LIMIT
    #: Queue depths and mapping states for the status page (``None``: the frontend serves no queues).
    sources: SourcesOverview | None = None
    #: The queues dead-letter queues and destinations may name (None: a frontend without queues).
    queue_targets: QueueTargets | None = None

    async def check_queue_target(self, arn: str, *, field: str) -> None:
        """Refuse (InvalidParameterValueException) a target ARN that is no existing standard queue of this
        account and region (see :meth:`~assignment.frontend.queue_targets.QueueTargets.check`)."""
        if self.queue_targets is None:
            raise InvalidParameterValueException(f"{field} {arn[:400]}: this frontend serves no queues")
        await asyncio.to_thread(self.queue_targets.check, arn, field=field)
