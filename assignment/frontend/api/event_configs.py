"""Async invocation settings over HTTP: Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s).

A destination is an ARN, as botocore's model demands (ValidationException otherwise): a Lambda function of
this account and region (stored as given), or an SQS queue ARN, which must name an existing standard queue
of this account and region when it is configured; anything else (a function elsewhere, an SNS topic, an
event bus, a bucket, a Kafka cluster: Leasehold has none) is refused with InvalidParameterValueException.

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`EventConfigsApi.routes`; the
event poller reads the stored settings through the invoker, not through here.

Example::

    app.add_routes(EventConfigsApi(context).routes())
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from assignment.frontend.api import documents
from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import function_name, page, read_json
from assignment.frontend.events import destination_function
from assignment.frontend.registry import LATEST
from assignment.frontend.storage_errors import NotFound
from assignment.frontend.types import EventInvokeConfig, InvalidParameterValueException, ValidationException
from assignment.frontend.validation import Fields

#: DestinationConfig's Destination in botocore's model: empty, a Kafka URI or an ARN.
_DESTINATION = re.compile(
    r"kafka://[^.][a-zA-Z0-9\-_.]{0,248}"
    r"|arn:aws[a-zA-Z0-9-]*:[a-zA-Z0-9-]+:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d)?"
    r":(?P<account>\d{12})?:.*"
)

__all__ = ["EventConfigsApi"]

_EVENT_FIELDS = {"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"}


async def _event_changes(context: ApiContext, fields: Fields, *, creating: bool) -> dict[str, Any]:
    """:class:`EventInvokeConfig` fields from a Put (every field, defaults for those absent) or an Update
    (only those given) request; a destination that names no function must be a queue here."""
    changes: dict[str, Any] = {}
    if creating or fields.has("MaximumRetryAttempts"):
        changes["maximum_retry_attempts"] = fields.integer("MaximumRetryAttempts", lo=0, hi=2, default=2)
    if creating or fields.has("MaximumEventAgeInSeconds"):
        changes["maximum_event_age_s"] = fields.integer("MaximumEventAgeInSeconds", lo=60, hi=21_600, default=21_600)
    destinations = fields.obj("DestinationConfig", allowed={"OnSuccess", "OnFailure"})
    for key, attribute in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
        target = None if destinations is None else destinations.obj(key, allowed={"Destination"})
        if target is not None:
            destination = target.string("Destination", max_len=350)
            field = f"DestinationConfig.{key}.Destination"
            if destination:
                _check_destination(context, destination, field)
            if destination and destination_function(destination) is None:
                await context.check_queue_target(destination, field=field)
            changes[attribute] = destination
        elif creating:
            changes[attribute] = ""
    return changes


def _check_destination(context: ApiContext, destination: str, field: str) -> None:
    """The model's pattern (ValidationException), then what Leasehold can deliver to: no Kafka, and a
    function only of this account and region (InvalidParameterValueException)."""
    match = _DESTINATION.fullmatch(destination)
    if match is None:
        raise ValidationException(
            f"1 validation error detected: Value '{destination[:400]}' at '{field}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)"
        )
    if destination.startswith("kafka://"):
        raise InvalidParameterValueException(f"{field} {destination[:400]}: Leasehold has no Kafka")
    home = context.registry.home
    if destination_function(destination) is not None and (match["region"], match["account"]) != (
        home.region,
        home.account,
    ):
        raise InvalidParameterValueException(
            f"{field} {destination[:400]} is a function of another account or region: Leasehold serves account "
            f"{home.account} in {home.region}"
        )


class EventConfigsApi:
    """The FunctionEventInvokeConfig operations."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.registry = context.registry

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        path = "/2019-09-25/functions/{name}/event-invoke-config"
        return [
            web.put(path, self.put_event_config),
            web.get(path, self.get_event_config),
            web.post(path, self.update_event_config),
            web.delete(path, self.delete_event_config),
            web.get(path + "/list", self.list_event_configs),
        ]

    def _doc(self, name: str, qualifier: str, config: EventInvokeConfig, modified_ms: int) -> dict[str, Any]:
        return documents.event_config(self.registry.function_arn(name, qualifier), config, modified_ms)

    async def put_event_config(self, request: web.Request) -> web.Response:
        """PutFunctionEventInvokeConfig."""
        name, qualifier = function_name(request)
        qualifier = qualifier or LATEST
        fields = Fields(await read_json(request), allowed=_EVENT_FIELDS)
        config = EventInvokeConfig(**await _event_changes(self.context, fields, creating=True))
        modified = await asyncio.to_thread(self.registry.put_event_config, name, qualifier, config)
        return web.json_response(self._doc(name, qualifier, config, modified))

    async def update_event_config(self, request: web.Request) -> web.Response:
        """UpdateFunctionEventInvokeConfig: the given fields (and each given destination) replace the stored
        ones; ResourceNotFoundException when the version has no config yet."""
        name, qualifier = function_name(request)
        qualifier = qualifier or LATEST
        fields = Fields(await read_json(request), allowed=_EVENT_FIELDS)
        changes = await _event_changes(self.context, fields, creating=False)
        config, modified = await asyncio.to_thread(self.registry.update_event_config, name, qualifier, changes)
        return web.json_response(self._doc(name, qualifier, config, modified))

    async def delete_event_config(self, request: web.Request) -> web.Response:
        """DeleteFunctionEventInvokeConfig → 204; ResourceNotFoundException when there is none."""
        name, qualifier = function_name(request)
        await asyncio.to_thread(self.registry.delete_event_config, name, qualifier or LATEST)
        return web.Response(status=204)

    async def list_event_configs(self, request: web.Request) -> web.Response:
        """ListFunctionEventInvokeConfigs: $LATEST first, then by version; ``Marker`` is the last qualifier
        of the previous page."""
        name, _ = function_name(request, qualified=False)
        marker, limit = page(request, most=50)
        found = await asyncio.to_thread(self.registry.event_configs, name, marker=marker, limit=limit + 1)
        found, doc = documents.one_page(found, limit, lambda last: last[0])
        doc["FunctionEventInvokeConfigs"] = [
            self._doc(name, qualifier, config, modified) for qualifier, config, modified in found
        ]
        return web.json_response(doc)

    async def get_event_config(self, request: web.Request) -> web.Response:
        """GetFunctionEventInvokeConfig."""
        name, qualifier = function_name(request)
        qualifier = qualifier or LATEST
        found = await asyncio.to_thread(self.registry.event_config, name, qualifier)
        if found is None:
            raise NotFound("event_invoke_config", name, qualifier)
        return web.json_response(self._doc(name, qualifier, *found))
