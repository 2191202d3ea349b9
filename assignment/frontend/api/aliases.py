"""Aliases over HTTP: CreateAlias, GetAlias, UpdateAlias, DeleteAlias and ListAliases, with AWS's
AliasConfiguration documents and errors.

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`AliasesApi.routes`; the rules
live in :class:`~assignment.frontend.aliases.AliasStore`, this module checks the request's members against
botocore's model and words the store's refusals as Lambda does. After a change it drops this frontend's
cached resolution of the function, so the next invoke by the alias routes by the new document (other
frontends within their cache's second).

Example::

    app.add_routes(AliasesApi(context).routes())
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from assignment.frontend.aliases import (
    Alias,
    AliasError,
    AliasExists,
    AliasNotFound,
    AliasStore,
    AliasVersionNotFound,
    InvalidAlias,
    RevisionIdMismatch,
)
from assignment.frontend.api import documents
from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import function_name, page, read_json, revision_id, single
from assignment.frontend.registry import ALIAS_NAME
from assignment.frontend.types import (
    InvalidParameterValueException,
    LambdaError,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from assignment.frontend.validation import Fields

__all__ = ["AliasesApi"]

_T = TypeVar("_T")

#: botocore's VersionWithLatestPublished (at most 1024 characters).
_VERSION = r"(\$LATEST(\.PUBLISHED)?|[0-9]+)"
#: botocore's AdditionalVersion (a published version number, at most 1024 characters).
_ADDITIONAL_VERSION = re.compile(r"[0-9]{1,1024}")
_CREATE = {"Name", "FunctionVersion", "Description", "RoutingConfig"}
_UPDATE = {"FunctionVersion", "Description", "RoutingConfig", "RevisionId"}


def _alias_name(raw: str) -> str:
    if not ALIAS_NAME.fullmatch(raw):
        raise ValidationException(
            f"1 validation error detected: Value '{raw[:128]}' at 'name' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+) and have length between 1 and 128"
        )
    return raw


def _version(fields: Fields, *, required: bool) -> str | None:
    if not fields.has("FunctionVersion") and not required:
        return None
    version = fields.string("FunctionVersion", required=required, max_len=1024, pattern=_VERSION)
    if version == "$LATEST.PUBLISHED":
        raise InvalidParameterValueException(
            "FunctionVersion $LATEST.PUBLISHED is not supported by Leasehold (it has no PublishTo); name $LATEST"
            " or a published version"
        )
    return version


def _weights(fields: Fields) -> dict[str, float] | None:
    """RoutingConfig.AdditionalVersionWeights (``None`` when RoutingConfig is absent: unchanged)."""
    routing = fields.obj("RoutingConfig", allowed={"AdditionalVersionWeights"})
    if routing is None:
        return None
    weights: dict[str, float] = {}
    for version, weight in routing.mapping("AdditionalVersionWeights").items():
        if not _ADDITIONAL_VERSION.fullmatch(version):
            raise ValidationException(
                f"1 validation error detected: Value '{version[:64]}' at 'routingConfig.additionalVersionWeights'"
                " failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular"
                " expression pattern: [0-9]+]"
            )
        number_like = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not number_like or not math.isfinite(weight) or not 0.0 <= weight <= 1.0:
            raise ValidationException(
                f"1 validation error detected: Value '{str(weight)[:32]}' at 'routingConfig.additionalVersionWeights'"
                " failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less"
                " than or equal to 1.0, Member must have value greater than or equal to 0.0]"
            )
        weights[version] = float(weight)
    return weights


class AliasesApi:
    """The alias operations."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.registry = context.registry

    @property
    def aliases(self) -> AliasStore:
        """The invoker's alias store (shared, so routing sees what the API writes)."""
        return self.context.invoker.aliases

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        base = "/2015-03-31/functions/{name}/aliases"
        return [
            web.post(base, self.create_alias),
            web.get(base, self.list_aliases),
            web.get(base + "/{alias}", self.get_alias),
            web.put(base + "/{alias}", self.update_alias),
            web.delete(base + "/{alias}", self.delete_alias),
        ]

    def document(self, alias: Alias) -> dict[str, Any]:
        """AWS's AliasConfiguration (RoutingConfig only for a weighted alias, as Lambda answers)."""
        doc: dict[str, Any] = {
            "AliasArn": self.registry.function_arn(alias.function, alias.name),
            "Name": alias.name,
            "FunctionVersion": alias.version,
            "Description": alias.description,
            "RevisionId": alias.revision_id,
        }
        if alias.weights:
            doc["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
        return doc

    def _error(self, exc: AliasError) -> LambdaError:
        arn = self.registry.function_arn
        if isinstance(exc, AliasNotFound):
            if not exc.alias:
                return ResourceNotFoundException(f"Function not found: {arn(exc.function)}")
            return ResourceNotFoundException(f"Cannot find alias arn: {arn(exc.function, exc.alias)}")
        if isinstance(exc, AliasVersionNotFound):
            return ResourceNotFoundException(f"Function not found: {arn(exc.function, exc.detail)}")
        if isinstance(exc, AliasExists):
            return ResourceConflictException(f"Alias already exists: {arn(exc.function, exc.alias)}")
        if isinstance(exc, RevisionIdMismatch):
            return PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve"
                " the latest Revision Id"
            )
        if isinstance(exc, InvalidAlias):
            return InvalidParameterValueException(exc.detail)
        return InvalidParameterValueException(str(exc))

    async def _call(self, method: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except AliasError as exc:
            raise self._error(exc) from None

    # ------------------------------------------------------------------ operations

    async def create_alias(self, request: web.Request) -> web.Response:
        """CreateAlias → 201."""
        function, _ = function_name(request, qualified=False)
        fields = Fields(await read_json(request), allowed=_CREATE)
        name = _alias_name(fields.string("Name", required=True, max_len=128))
        version = _version(fields, required=True)
        assert version is not None  # required
        description = fields.string("Description", max_len=256)
        alias = await self._call(
            self.aliases.create, function, name, version, description=description, weights=_weights(fields) or {}
        )
        self.context.invoker.forget(function)
        return web.json_response(self.document(alias), status=201)

    async def get_alias(self, request: web.Request) -> web.Response:
        """GetAlias."""
        function, _ = function_name(request, qualified=False)
        alias = await self._call(self.aliases.get, function, _alias_name(request.match_info["alias"]))
        return web.json_response(self.document(alias))

    async def update_alias(self, request: web.Request) -> web.Response:
        """UpdateAlias: what is given changes (RoutingConfig ``{}`` removes the weights); RevisionId, when
        given, must be the alias's current one (PreconditionFailedException)."""
        function, _ = function_name(request, qualified=False)
        name = _alias_name(request.match_info["alias"])
        fields = Fields(await read_json(request), allowed=_UPDATE)
        revision = revision_id(fields)
        description = fields.string("Description", max_len=256) if fields.has("Description") else None
        before = await asyncio.to_thread(self.registry.provisioned_shares, function, name)
        alias = await self._call(
            self.aliases.update,
            function,
            name,
            version=_version(fields, required=False),
            description=description,
            weights=_weights(fields),
            revision_id=revision,
        )
        self.context.invoker.forget(function)
        if before:  # its provisioned concurrency follows it
            after = await asyncio.to_thread(self.registry.provisioned_shares, function, name)
            self.context.provisioner.request(function, name, after)
            self.context.provisioner.unpin_moved(before, after)
        return web.json_response(self.document(alias))

    async def delete_alias(self, request: web.Request) -> web.Response:
        """DeleteAlias → 204 (also for an alias already gone, of a function that exists); its provisioned
        concurrency and async settings go with it."""
        function, _ = function_name(request, qualified=False)
        name = _alias_name(request.match_info["alias"])
        shares = await asyncio.to_thread(self.registry.provisioned_shares, function, name)
        await self._call(self.aliases.delete, function, name)
        self.context.invoker.forget(function)
        if shares:
            self.context.provisioner.withdraw(function, name, shares)
        return web.Response(status=204)

    async def list_aliases(self, request: web.Request) -> web.Response:
        """ListAliases: by name, MaxItems (1 to 10000, default 50) a page; ``Marker`` is the last alias of
        the previous page; ``FunctionVersion`` keeps the aliases that route to that version."""
        function, _ = function_name(request, qualified=False)
        marker, limit = page(request, most=10_000, extra={"FunctionVersion"}, default=50)
        if marker:
            _alias_name(marker)
        version = single(request, "FunctionVersion")
        if version is not None:
            version = _version(Fields({"FunctionVersion": version}, allowed={"FunctionVersion"}), required=True)
        found = await self._call(self.aliases.list, function, version=version, marker=marker, limit=limit + 1)
        found, doc = documents.one_page(found, limit, lambda last: last.name)
        doc["Aliases"] = [self.document(alias) for alias in found]
        return web.json_response(doc)
