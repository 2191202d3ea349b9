"""Layers over HTTP: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayerVersions,
ListLayers, DeleteLayerVersion.

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`LayersApi.routes`; functions
refer to layer versions by ARN (resolved by the registry when a function is created or configured).

Example::

    app.add_routes(LayersApi(context).routes())
"""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from assignment.frontend.api import documents
from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import (
    ARCHITECTURES,
    decode_zip,
    layer_number,
    page,
    read_json,
    runtime_identifiers,
    single,
)
from assignment.frontend.types import InvalidParameterValueException
from assignment.frontend.validation import Fields

__all__ = ["LayersApi"]

log = logging.getLogger("leasehold.frontend.http")

_LAYER_NAME = re.compile(r"[a-zA-Z0-9_-]{1,140}")


def _filters(request: web.Request) -> tuple[str, str]:
    """``(CompatibleRuntime, CompatibleArchitecture)`` of a layer listing ("" when not given): only versions
    that list them match, as on AWS."""
    runtime = single(request, "CompatibleRuntime") or ""
    if runtime and runtime not in runtime_identifiers():
        raise InvalidParameterValueException(f"CompatibleRuntime {runtime[:40]!r} is not a runtime identifier")
    architecture = single(request, "CompatibleArchitecture")
    if architecture is not None and architecture not in ARCHITECTURES:
        raise InvalidParameterValueException(
            f"CompatibleArchitecture must be x86_64 or arm64, not {architecture[:40]!r}"
        )
    return runtime, architecture or ""


class LayersApi:
    """The layer operations."""

    def __init__(self, context: ApiContext) -> None:
        self.registry = context.registry

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        versions = "/2018-10-31/layers/{layer}/versions"
        return [
            web.get("/2018-10-31/layers", self.list_layers),
            web.post(versions, self.publish_layer),
            web.get(versions, self.list_layer_versions),
            web.get(versions + "/{number}", self.get_layer_version),
            web.delete(versions + "/{number}", self.delete_layer_version),
        ]

    def _layer_name(self, request: web.Request) -> str:
        """The layer a path names: a layer name or this region's and account's layer ARN."""
        value = request.match_info["layer"]
        prefix = self.registry.layer_arn("")
        name = value[len(prefix) :] if value.startswith(prefix) else value
        if not _LAYER_NAME.fullmatch(name):
            raise InvalidParameterValueException(
                f"LayerName {value[:80]!r} must be a layer name (1 to 140 of a-z, A-Z, 0-9, - and _) "
                "or a layer ARN of this region and account"
            )
        return name

    async def publish_layer(self, request: web.Request) -> web.Response:
        """PublishLayerVersion → 201: the layer named (1 to 140 characters) or by its ARN; CompatibleArchitectures
        (x86_64, arm64) and LicenseInfo are recorded and answered back, as are CompatibleRuntimes."""
        layer = self._layer_name(request)
        fields = Fields(
            await read_json(request),
            allowed={"Description", "Content", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"},
        )
        content = fields.obj("Content", allowed={"ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion"})
        if content is None:
            raise InvalidParameterValueException("Content is required")
        data = decode_zip(content)
        published = await asyncio.to_thread(
            self.registry.publish_layer,
            layer,
            data,
            description=fields.string("Description", max_len=256),
            runtimes=tuple(fields.choices("CompatibleRuntimes", allowed=runtime_identifiers(), max_items=15)),
            architectures=tuple(fields.choices("CompatibleArchitectures", allowed=ARCHITECTURES, max_items=2)),
            license_info=fields.string("LicenseInfo", max_len=512, pattern=".*"),
        )
        return web.json_response(documents.layer_version(self.registry, published), status=201)

    async def get_layer_version(self, request: web.Request) -> web.Response:
        """GetLayerVersion."""
        name = self._layer_name(request)
        number = layer_number(request.match_info["number"])
        layer = await asyncio.to_thread(self.registry.layer_version, name, number)
        return web.json_response(documents.layer_version(self.registry, layer))

    async def delete_layer_version(self, request: web.Request) -> web.Response:
        """DeleteLayerVersion → 204 (also when there is no such version, as on AWS)."""
        name = self._layer_name(request)
        number = layer_number(request.match_info["number"])
        await asyncio.to_thread(self.registry.delete_layer_version, name, number)
        log.info("event=layer_version_deleted layer=%s version=%d", name, number)
        return web.Response(status=204)

    async def list_layer_versions(self, request: web.Request) -> web.Response:
        """ListLayerVersions: newest first; ``Marker`` is the last version number of the previous page. An
        unknown layer has no versions."""
        name = self._layer_name(request)
        marker, limit = page(request, most=50, extra={"CompatibleRuntime", "CompatibleArchitecture"})
        runtime, architecture = _filters(request)
        before = layer_number(marker, "Marker") if marker else None
        found = await asyncio.to_thread(
            self.registry.layer_versions,
            name,
            before=before,
            limit=limit + 1,
            runtime=runtime,
            architecture=architecture,
        )
        found, doc = documents.one_page(found, limit, lambda last: str(last.version))
        doc["LayerVersions"] = [documents.layer_item(layer) for layer in found]
        return web.json_response(doc)

    async def list_layers(self, request: web.Request) -> web.Response:
        """ListLayers: each layer with its newest (matching) version, by name; ``Marker`` is the last layer
        name of the previous page. ``?find=LayerVersion&Arn=...`` (same path) is GetLayerVersionByArn."""
        if "find" in request.query:
            return await self.get_layer_version_by_arn(request)
        marker, limit = page(request, most=50, extra={"CompatibleRuntime", "CompatibleArchitecture"})
        runtime, architecture = _filters(request)
        found = await asyncio.to_thread(
            self.registry.layers, marker=marker, limit=limit + 1, runtime=runtime, architecture=architecture
        )
        found, doc = documents.one_page(found, limit, lambda last: last.name)
        doc["Layers"] = [
            {
                "LayerName": layer.name,
                "LayerArn": self.registry.layer_arn(layer.name),
                "LatestMatchingVersion": documents.layer_item(layer),
            }
            for layer in found
        ]
        return web.json_response(doc)

    async def get_layer_version_by_arn(self, request: web.Request) -> web.Response:
        """GetLayerVersionByArn (``GET /2018-10-31/layers?find=LayerVersion&Arn=...``)."""
        unknown = sorted(set(request.query) - {"find", "Arn"})
        if unknown:
            raise InvalidParameterValueException(f"Unknown query parameter(s): {', '.join(unknown)[:200]}")
        if single(request, "find") != "LayerVersion":
            raise InvalidParameterValueException("find must be LayerVersion")
        arn = single(request, "Arn") or ""
        prefix = self.registry.layer_arn("")
        name, _, number = (arn[len(prefix) :] if arn.startswith(prefix) else "").rpartition(":")
        if not _LAYER_NAME.fullmatch(name):
            raise InvalidParameterValueException(f"Arn {arn[:200]!r} is not a layer version ARN of this account")
        layer = await asyncio.to_thread(self.registry.layer_version, name, layer_number(number, "Arn's version"))
        return web.json_response(documents.layer_version(self.registry, layer))
