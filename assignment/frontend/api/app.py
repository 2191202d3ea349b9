"""The Lambda HTTP API's aiohttp application: every resource module's routes, the one error middleware and,
unless the frontend runs with ``--auth none``, the SigV4 middleware inside it.

:class:`LambdaHttpApi` is what the frontend process (:mod:`assignment.frontend.server`) serves. Each
resource (functions and versions, invoke, concurrency, event invoke configs, layers, admin, the SQS
API on ``POST /`` and the event source mappings when the frontend serves queues, and EventBridge
Scheduler's ``/schedules`` when it runs a scheduler) is a class in
its own module with a ``routes()`` method; a new resource is a new module whose class is added to
:meth:`LambdaHttpApi.__init__`'s list. Every error is a Lambda error document with ``x-amzn-ErrorType``,
answered here once (a storage error as :func:`~assignment.frontend.api.errors.lambda_error` maps it);
anything unexpected is logged and answered as ``ServiceException`` without a traceback. The SigV4
middleware (:mod:`assignment.frontend.api.auth`) wraps every route, so a new resource is signed-only by
construction.

Example::

    api = LambdaHttpApi(registry, invoker, provisioner, events=queue, auth=authenticator)
    runner = web.AppRunner(api.app())
    await api.wait_idle()
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from assignment.coordination.base import Coordinator
from assignment.frontend.api.account import AccountApi
from assignment.frontend.api.admin import AdminApi
from assignment.frontend.api.aliases import AliasesApi
from assignment.frontend.api.auth import Authenticator
from assignment.frontend.api.concurrency import ConcurrencyApi
from assignment.frontend.api.context import ApiContext, EventSink
from assignment.frontend.api.errors import lambda_error
from assignment.frontend.api.event_configs import EventConfigsApi
from assignment.frontend.api.event_sources import EventSourcesApi, EventSourceStores
from assignment.frontend.api.functions import FunctionsApi
from assignment.frontend.api.invoke import InvokeApi
from assignment.frontend.api.layers import LayersApi
from assignment.frontend.api.requests import HOME, MAX_BODY_BYTES, REQUEST_ID, is_scheduler_request, is_sqs_request
from assignment.frontend.api.scheduler import SchedulerApi
from assignment.frontend.api.sqs import SqsApi, sqs_error_response
from assignment.frontend.api.tags import TagsApi
from assignment.frontend.event_sources.status import SourcesOverview
from assignment.frontend.invoker import Invoker
from assignment.frontend.provisioning import Provisioner
from assignment.frontend.queue_targets import QueueTargets
from assignment.frontend.queues.operations import SqsOperations
from assignment.frontend.registry import Registry
from assignment.frontend.schedules.store import ScheduleStore
from assignment.frontend.storage_errors import StorageError
from assignment.frontend.types import InternalServerException, LambdaError, ServiceException
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT

__all__ = ["LambdaHttpApi", "Resource"]

log = logging.getLogger("leasehold.frontend.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Resource(Protocol):
    """One resource module's class: its routes."""

    def routes(self) -> list[web.RouteDef]:
        """The resource's routes."""


def _error(exc: LambdaError, request_id: str) -> web.Response:
    return web.json_response(
        exc.body(), status=exc.status, headers={"x-amzn-ErrorType": exc.type, "x-amzn-RequestId": request_id}
    )


class LambdaHttpApi:
    """The aiohttp application of one frontend."""

    def __init__(
        self,
        registry: Registry,
        invoker: Invoker,
        provisioner: Provisioner,
        *,
        events: EventSink | None = None,
        coordinator: Coordinator | None = None,
        account_limit: int = DEFAULT_ACCOUNT_LIMIT,
        auth: Authenticator | None = None,
        queues: SqsOperations | None = None,
        sources: SourcesOverview | None = None,
        event_sources: EventSourceStores | None = None,
        queue_targets: QueueTargets | None = None,
        schedules: ScheduleStore | None = None,
        schedule_changed: Callable[[], None] = lambda: None,
    ) -> None:
        #: The SigV4 middleware; None answers every request unsigned (``--auth none``).
        self.auth = auth
        self.context = ApiContext(
            registry,
            invoker,
            provisioner,
            events=events,
            coordinator=coordinator,
            account_limit=account_limit,
            sources=sources,
            queue_targets=queue_targets,
        )
        self._invoke = InvokeApi(self.context)
        #: The resources, in route order.
        self.resources: list[Resource] = [
            FunctionsApi(self.context),
            AliasesApi(self.context),
            AccountApi(self.context),
            self._invoke,
            ConcurrencyApi(self.context),
            EventConfigsApi(self.context),
            LayersApi(self.context),
            TagsApi(self.context),
            AdminApi(self.context),
        ]
        if queues is not None:
            self.resources.append(SqsApi(queues))
        if event_sources is not None:
            self.resources.append(EventSourcesApi(self.context, event_sources))
        if schedules is not None:
            self.resources.append(SchedulerApi(self.context, schedules, wake=schedule_changed))

    @property
    def in_flight(self) -> int:
        """Invocations in flight (graceful stop waits for them)."""
        return self._invoke.in_flight

    async def wait_idle(self) -> None:
        """Until no invocation is in flight."""
        await self._invoke.wait_idle()

    def app(self) -> web.Application:
        """The application with every route, the error middleware and (outermost first) the SigV4 one."""
        middlewares: list[Middleware] = [self._errors]
        if self.auth is not None:
            middlewares.append(self.auth.middleware)
        app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES + 1024)
        app[HOME] = self.context.registry.home
        for resource in self.resources:
            app.add_routes(resource.routes())
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        request[REQUEST_ID] = request_id
        try:
            response = await handler(request)
        except LambdaError as exc:
            # An SQS request refused before its handler (by the SigV4 middleware) gets SQS's error document.
            response = sqs_error_response(exc) if is_sqs_request(request) else _error(exc, request_id)
        except StorageError as exc:
            response = _error(lambda_error(exc, self.context.registry), request_id)
        except web.HTTPException as exc:
            kind = "ResourceNotFoundException" if exc.status == 404 else "InvalidRequestContentException"
            if exc.status == 413:
                kind = "RequestTooLargeException"
            document = {"Type": "User", "Message": exc.reason, "message": exc.reason}
            response = web.json_response(
                document, status=exc.status, headers={"x-amzn-ErrorType": kind, "x-amzn-RequestId": request_id}
            )
        except Exception:
            log.exception(
                "event=http_error method=%s path=%.200s request_id=%s", request.method, request.path, request_id
            )
            internal: LambdaError = ServiceException("An internal error occurred")
            if is_scheduler_request(request):
                internal = InternalServerException("An internal error occurred")
            sqs = is_sqs_request(request)
            response = sqs_error_response(internal) if sqs else _error(internal, request_id)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        return response
