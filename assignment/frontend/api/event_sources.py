"""Event source mappings over HTTP: Create/Get/List/Update/DeleteEventSourceMapping, for SQS queues.

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`EventSourcesApi.routes` when
the frontend passes its :class:`EventSourceStores`. A request is checked here as a whole (members, ranges,
the function and its version, the queue and AWS's rules between them) and stored by
:class:`~assignment.frontend.event_sources.mappings.MappingStore` in a transitional state (``Creating``,
``Updating``, ``Enabling``, ``Disabling``, ``Deleting``) that the pollers
(:mod:`assignment.frontend.event_sources.poller`) settle once they run it, so every answer is 202 but
Get's. Members of the model for other sources (streams, Kafka, MQ, DocumentDB) and those Leasehold does
not act on are refused by name, never kept without effect.

Example::

    api = EventSourcesApi(context, EventSourceStores(MappingStore(journal), QueueStore(journal)))
    app.add_routes(api.routes())
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar

from aiohttp import web

from assignment.frontend.api import documents
from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.errors import mapping_error
from assignment.frontend.api.requests import page, read_json, single
from assignment.frontend.event_sources.filters import FilterError, parse_filter_criteria
from assignment.frontend.event_sources.mappings import Mapping, MappingError, MappingSettings, MappingStore
from assignment.frontend.queues import Queue, QueueDoesNotExist, QueueStore
from assignment.frontend.queues.receiving import now_ms
from assignment.frontend.registry import LATEST, FunctionVersion
from assignment.frontend.types import InvalidParameterValueException, ValidationException
from assignment.frontend.validation import Fields, parse_function_name

__all__ = [
    "CREATE_MEMBERS",
    "NOT_FOR_SQS",
    "NOT_IN_LEASEHOLD",
    "UPDATE_MEMBERS",
    "EventSourceStores",
    "EventSourcesApi",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: The members an SQS mapping takes and Leasehold acts on.
_SQS_MEMBERS = frozenset(
    {
        "FunctionName",
        "EventSourceArn",
        "Enabled",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "FunctionResponseTypes",
        "ScalingConfig",
        "FilterCriteria",
    }
)
#: Members of the model for streams, Kafka, Amazon MQ or DocumentDB sources: refused on an SQS mapping.
NOT_FOR_SQS = (
    "AmazonManagedKafkaEventSourceConfig",
    "BisectBatchOnFunctionError",
    "DestinationConfig",
    "DocumentDBEventSourceConfig",
    "MaximumRecordAgeInSeconds",
    "MaximumRetryAttempts",
    "ParallelizationFactor",
    "Queues",
    "SelfManagedEventSource",
    "SelfManagedKafkaEventSourceConfig",
    "SourceAccessConfigurations",
    "StartingPosition",
    "StartingPositionTimestamp",
    "Topics",
    "TumblingWindowInSeconds",
)
#: Members AWS takes for an SQS mapping that Leasehold has nothing behind (encryption of the criteria,
#: metrics, logging, provisioned pollers, tags): refused rather than accepted without effect.
NOT_IN_LEASEHOLD = ("KMSKeyArn", "LoggingConfig", "MetricsConfig", "ProvisionedPollerConfig", "Tags")
#: CreateEventSourceMapping's members (botocore's model).
CREATE_MEMBERS = _SQS_MEMBERS | set(NOT_FOR_SQS) | set(NOT_IN_LEASEHOLD)
#: UpdateEventSourceMapping's members (botocore's model; the UUID is in the path): the source, its
#: starting position, topics, queues, self-managed endpoints and tags are fixed at creation.
UPDATE_MEMBERS = CREATE_MEMBERS - {
    "EventSourceArn",
    "StartingPosition",
    "StartingPositionTimestamp",
    "Topics",
    "Queues",
    "SelfManagedEventSource",
    "Tags",
}
_RESPONSE_TYPES = frozenset({"ReportBatchItemFailures"})
#: The model's Arn pattern (EventSourceArn) and length.
_ARN = re.compile(
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:"
    r"((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
)
_MAX_ARN = 10_000
#: The model's NamespacedFunctionName length (its shape is checked by parse_function_name).
_MAX_FUNCTION_NAME = 256
_UUID_LENGTH = 36
#: Largest batch without a batching window, and of a FIFO queue (AWS's SQS rules).
_UNBATCHED_MAX = 10
#: What GetQueueAttributes answers AWS's poller for a queue that does not exist.
_NO_QUEUE = (
    "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. "
    "SQS Error Message: The specified queue does not exist or you do not have access to it."
)


@dataclass(frozen=True, slots=True)
class EventSourceStores:
    """What the event source mapping operations read and change: the mappings and the queues they poll."""

    mappings: MappingStore
    queues: QueueStore


def _uuid(request: web.Request) -> str:
    """The ``{UUID}`` path segment: 36 characters (the model's UUIDString)."""
    value = request.match_info["UUID"]
    if len(value) != _UUID_LENGTH:
        raise ValidationException(
            f"1 validation error detected: Value {value[:40]!r} at 'uUID' failed to satisfy constraint: "
            f"Member must have length {_UUID_LENGTH}"
        )
    return value


def _check_arn(value: str) -> str:
    if len(value) > _MAX_ARN or not _ARN.fullmatch(value):
        raise ValidationException(
            f"1 validation error detected: Value {value[:80]!r} at 'eventSourceArn' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {_ARN.pattern}"
        )
    return value


def _is_fifo(queue_name: str) -> bool:
    # SQS's naming rule: a FIFO queue's name ends in ".fifo" and a standard queue's name has no dot.
    return queue_name.endswith(".fifo")


def _refuse_unsupported(fields: Fields) -> None:
    """InvalidParameterValueException naming the first member (by name) an SQS mapping here cannot take."""
    for key in NOT_FOR_SQS:
        if fields.has(key):
            raise InvalidParameterValueException(f"{key} is not supported for Amazon SQS event sources")
    for key in NOT_IN_LEASEHOLD:
        if fields.has(key):
            raise InvalidParameterValueException(f"{key} is not supported by Leasehold for event source mappings")


def _filter_criteria_text(document: object) -> str:
    """A request's FilterCriteria, checked, as the JSON text the store keeps (``""``: no filters)."""
    try:
        criteria = parse_filter_criteria(document)
    except FilterError as exc:
        raise InvalidParameterValueException(exc.message) from None
    return json.dumps(criteria.to_document()) if criteria.patterns else ""


def _settings_of(fields: Fields, base: MappingSettings) -> MappingSettings:
    """``base`` with the members the request gives replaced (Create's base is the defaults)."""
    changes: dict[str, Any] = {}
    if fields.has("BatchSize"):
        changes["batch_size"] = fields.integer("BatchSize", lo=1, hi=10_000)
    if fields.has("MaximumBatchingWindowInSeconds"):
        changes["batching_window_s"] = fields.integer("MaximumBatchingWindowInSeconds", lo=0, hi=300)
    if fields.has("Enabled"):
        changes["enabled"] = fields.boolean("Enabled")
    if fields.has("FunctionResponseTypes"):
        changes["response_types"] = tuple(fields.choices("FunctionResponseTypes", allowed=_RESPONSE_TYPES, max_items=1))
    scaling = fields.obj("ScalingConfig", allowed={"MaximumConcurrency"})
    if scaling is not None:  # an empty ScalingConfig removes the limit
        has_limit = scaling.has("MaximumConcurrency")
        changes["max_concurrency"] = scaling.integer("MaximumConcurrency", lo=2, hi=1000) if has_limit else None
    if fields.has("FilterCriteria"):  # {} or no Filters removes them
        changes["filter_criteria"] = _filter_criteria_text(fields.document["FilterCriteria"])
    return replace(base, **changes)


def _check_batching(settings: MappingSettings, *, fifo: bool) -> None:
    """AWS's rules between BatchSize, MaximumBatchingWindowInSeconds and the kind of queue."""
    if fifo and settings.batch_size > _UNBATCHED_MAX:
        raise InvalidParameterValueException(
            f"BatchSize must be at most {_UNBATCHED_MAX} for FIFO queues, not {settings.batch_size}"
        )
    if fifo and settings.batching_window_s > 0:
        raise InvalidParameterValueException("Batching window is not supported for FIFO queues")
    if settings.batch_size > _UNBATCHED_MAX and settings.batching_window_s < 1:
        raise InvalidParameterValueException(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
        )


def _check_visibility(queue: Queue, version: FunctionVersion) -> None:
    """A message must stay hidden while the function may still run on it (AWS refuses otherwise)."""
    if queue.visibility_timeout < version.spec.timeout_s:
        raise InvalidParameterValueException(
            f"Queue visibility timeout: {queue.visibility_timeout} seconds is less than Function timeout: "
            f"{version.spec.timeout_s} seconds"
        )


@dataclass(frozen=True, slots=True)
class _Target:
    """The function a mapping feeds: name, qualifier (``""``: unqualified) and the version it names."""

    name: str
    qualifier: str
    version: FunctionVersion


class EventSourcesApi:
    """The event source mapping operations."""

    def __init__(self, context: ApiContext, stores: EventSourceStores) -> None:
        self.registry = context.registry
        self.mappings = stores.mappings
        self.queues = stores.queues

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes (with and without the trailing slash some SDK versions send)."""
        base = "/2015-03-31/event-source-mappings"
        return [
            web.post(base, self.create_mapping),
            web.post(base + "/", self.create_mapping),
            web.get(base, self.list_mappings),
            web.get(base + "/", self.list_mappings),
            web.get(base + "/{UUID}", self.get_mapping),
            web.put(base + "/{UUID}", self.update_mapping),
            web.delete(base + "/{UUID}", self.delete_mapping),
        ]

    def _doc(self, mapping: Mapping) -> dict[str, Any]:
        return documents.event_source_mapping(self.registry, mapping)

    async def _stored(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """A store call in a worker thread, its refusal as the Lambda error."""
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except MappingError as exc:
            raise mapping_error(exc) from None

    async def _target(self, fields: Fields) -> _Target:
        """The function FunctionName names, which must exist (its version too, when qualified)."""
        function = fields.string("FunctionName", required=True, max_len=_MAX_FUNCTION_NAME)
        name, qualifier = parse_function_name(function, home=self.registry.home)
        # $LATEST is the unqualified function: one spelling, so one source cannot feed it twice.
        qualifier = None if qualifier == LATEST else qualifier
        version = await asyncio.to_thread(self.registry.get, name, qualifier)
        return _Target(name, qualifier or "", version)

    def _queue_name(self, source_arn: str) -> str:
        """The name of the queue an EventSourceArn names: an SQS queue of this account and region."""
        _check_arn(source_arn)
        _, _, service, region, account, resource = source_arn.split(":", 5)
        if service != "sqs":
            raise InvalidParameterValueException(
                f"Leasehold supports Amazon SQS event sources only, not {service[:40]} (streams come later)"
            )
        if region != self.registry.region or account != self.registry.account or not resource:
            raise InvalidParameterValueException(
                f"EventSourceArn must name a queue of account {self.registry.account} in {self.registry.region}"
            )
        return resource

    async def _queue(self, name: str) -> Queue:
        try:
            return await asyncio.to_thread(self.queues.get_queue, self.registry.account, name)
        except QueueDoesNotExist:
            raise InvalidParameterValueException(_NO_QUEUE) from None

    async def create_mapping(self, request: web.Request) -> web.Response:
        """CreateEventSourceMapping → 202, the mapping ``Creating``."""
        fields = Fields(await read_json(request), allowed=CREATE_MEMBERS)
        _refuse_unsupported(fields)
        source = fields.string("EventSourceArn", required=True, max_len=_MAX_ARN)
        queue_name = self._queue_name(source)
        settings = _settings_of(fields, MappingSettings())
        _check_batching(settings, fifo=_is_fifo(queue_name))
        target = await self._target(fields)
        _check_visibility(await self._queue(queue_name), target.version)
        mapping = await self._stored(
            self.mappings.create, target.name, target.qualifier, source, settings, now_ms=now_ms()
        )
        return web.json_response(self._doc(mapping), status=202)

    async def get_mapping(self, request: web.Request) -> web.Response:
        """GetEventSourceMapping."""
        return web.json_response(self._doc(await self._stored(self.mappings.get, _uuid(request))))

    async def list_mappings(self, request: web.Request) -> web.Response:
        """ListEventSourceMappings: by UUID, 100 a page unless MaxItems says otherwise (1 to 10000), of one
        source and/or one function. An unqualified FunctionName lists the function's mappings of every
        qualifier, a qualified one those of that version; a function that does not exist has none."""
        marker, limit = page(request, most=10_000, default=100, extra={"EventSourceArn", "FunctionName"})
        source = single(request, "EventSourceArn")
        if source is not None:
            _check_arn(source)
        function = single(request, "FunctionName")
        name = qualifier = None
        if function is not None:
            if len(function) > _MAX_FUNCTION_NAME:
                raise ValidationException("1 validation error detected: Value at 'functionName' is too long")
            name, qualifier = parse_function_name(function, home=self.registry.home)
            qualifier = "" if qualifier == LATEST else qualifier
        found, next_marker = await asyncio.to_thread(
            self.mappings.page,
            function_name=name,
            qualifier=qualifier,
            source_arn=source,
            marker=marker or None,
            limit=limit,
        )
        doc: dict[str, Any] = {"EventSourceMappings": [self._doc(m) for m in found]}
        if next_marker is not None:
            doc["NextMarker"] = next_marker
        return web.json_response(doc)

    async def update_mapping(self, request: web.Request) -> web.Response:
        """UpdateEventSourceMapping → 202: the members given replace the stored ones, the result is checked
        as a whole; a new FunctionName moves the mapping to another (existing) function."""
        uuid = _uuid(request)
        fields = Fields(await read_json(request), allowed=UPDATE_MEMBERS)
        _refuse_unsupported(fields)
        current = await self._stored(self.mappings.get, uuid)
        settings = _settings_of(fields, current.settings)
        queue_name = current.source_arn.split(":", 5)[5]
        _check_batching(settings, fifo=_is_fifo(queue_name))
        target = await self._target(fields) if fields.has("FunctionName") else None
        if target is not None:
            # The pair was checked when it was made; a new function is checked against the queue now.
            _check_visibility(await self._queue(queue_name), target.version)
        mapping = await self._stored(
            self.mappings.update,
            uuid,
            settings,
            now_ms=now_ms(),
            function_name=None if target is None else target.name,
            qualifier=None if target is None else target.qualifier,
        )
        return web.json_response(self._doc(mapping), status=202)

    async def delete_mapping(self, request: web.Request) -> web.Response:
        """DeleteEventSourceMapping → 202, the mapping ``Deleting`` (the pollers stop, then remove it)."""
        mapping = await self._stored(self.mappings.delete, _uuid(request), now_ms=now_ms())
        return web.json_response(self._doc(mapping), status=202)
