"""Functions and their versions over HTTP: CreateFunction, GetFunction(Configuration), ListFunctions,
DeleteFunction, UpdateFunctionCode, UpdateFunctionConfiguration, PublishVersion, ListVersionsByFunction.

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`FunctionsApi.routes`; requests
are read with :mod:`~assignment.frontend.api.requests`, answers built with
:mod:`~assignment.frontend.api.documents`.

Example::

    app.add_routes(FunctionsApi(context).routes())
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from typing import Any

from aiohttp import web

from assignment.frontend.api import documents
from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.logging_config import MEMBERS as LOGGING_MEMBERS
from assignment.frontend.api.logging_config import logging_config
from assignment.frontend.api.requests import (
    ARCHITECTURES,
    UNSUPPORTED,
    decode_zip,
    function_name,
    page,
    read_json,
    reject_unsupported,
    revision_id,
    single,
)
from assignment.frontend.api.tags import check_tags
from assignment.frontend.registry import FunctionSpec, FunctionVersion, LayerRef
from assignment.frontend.types import InvalidParameterValueException, LoggingConfig
from assignment.frontend.validation import (
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_MEMORY_MB,
    Fields,
    check_environment,
    check_name,
    worker_runtime,
)

__all__ = ["FunctionsApi"]

log = logging.getLogger("leasehold.frontend.http")

_CREATE_USED = {
    "FunctionName",
    "Runtime",
    "Role",
    "Handler",
    "Code",
    "Description",
    "Timeout",
    "MemorySize",
    "Publish",
    "PackageType",
    "Environment",
    "Layers",
    "SnapStart",
    "Architectures",
    "DeadLetterConfig",
    "LoggingConfig",
    "Tags",
    "TracingConfig",
    "EphemeralStorage",
    "KMSKeyArn",
    "VpcConfig",
}
_CONFIG_USED = {
    "FunctionName",
    "Runtime",
    "Role",
    "Handler",
    "Description",
    "Timeout",
    "MemorySize",
    "Environment",
    "Layers",
    "SnapStart",
    "DeadLetterConfig",
    "LoggingConfig",
    "TracingConfig",
    "EphemeralStorage",
    "KMSKeyArn",
    "VpcConfig",
    "RevisionId",
}
_CODE_FIELDS = {"ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri", "SourceKMSKeyArn", "S3ObjectStorageMode"}
#: EphemeralStorage's Size in MB: AWS's range for a function (the model's maximum, 32,768, is for
#: functions on capacity providers, which Leasehold refuses).
MIN_EPHEMERAL_MB = 512
MAX_EPHEMERAL_MB = 10_240
#: Most items in one page of ListVersionsByFunction (AWS's cap, whatever ``MaxItems`` asks for).
_VERSIONS_PAGE = 50
#: The model's MasterRegion pattern.
_MASTER_REGION = re.compile(r"ALL|(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}")
#: The model's ResourceArn and KMSKeyArn (DeadLetterConfig.TargetArn, KMSKeyArn): an ARN, or "" (none).
_ARN_OR_EMPTY = r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()"


class FunctionsApi:
    """The function and version operations."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.registry = context.registry

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        fn = "/2015-03-31/functions/{name}"
        return [
            web.post("/2015-03-31/functions", self.create_function),
            web.post("/2015-03-31/functions/", self.create_function),
            web.get("/2015-03-31/functions", self.list_functions),
            web.get("/2015-03-31/functions/", self.list_functions),
            web.get(fn, self.get_function),
            web.delete(fn, self.delete_function),
            web.get(fn + "/configuration", self.get_configuration),
            web.put(fn + "/configuration", self.update_configuration),
            web.put(fn + "/code", self.update_code),
            web.post(fn + "/versions", self.publish_version),
            web.get(fn + "/versions", self.list_versions),
        ]

    def _configuration(self, version: FunctionVersion) -> dict[str, Any]:
        return documents.configuration(self.registry, version)

    # ------------------------------------------------------------------ specs

    async def _layers(self, fields: Fields) -> tuple[LayerRef, ...]:
        arns = fields.strings("Layers", max_items=5, max_len=140)
        return tuple([await asyncio.to_thread(self.registry.layer, arn) for arn in arns])

    async def _spec_changes(self, fields: Fields, *, current: FunctionSpec | None) -> dict[str, Any]:
        """The FunctionSpec fields a create (``current`` None) or an update of ``current`` sets."""
        creating = current is None
        changes: dict[str, Any] = {}
        if creating or fields.has("Runtime"):
            runtime = fields.string("Runtime", required=creating, max_len=32)
            worker_runtime(runtime)
            changes["runtime"] = runtime
        if fields.has("Handler") or creating:
            changes["handler"] = fields.string(
                "Handler", max_len=128, pattern=r"[^\s]+" if fields.has("Handler") else None
            )
        if fields.has("MemorySize") or creating:
            changes["memory_mb"] = fields.integer("MemorySize", lo=MIN_MEMORY_MB, hi=MAX_MEMORY_MB, default=128)
        if fields.has("Timeout") or creating:
            changes["timeout_s"] = fields.integer("Timeout", lo=1, hi=MAX_TIMEOUT_S, default=3)
        if fields.has("Description") or creating:
            changes["description"] = fields.string("Description", max_len=256)
        if fields.has("Role") or creating:
            changes["role"] = fields.string("Role", max_len=2048)
        environment = fields.obj("Environment", allowed={"Variables"})
        if environment is not None:
            changes["environment"] = check_environment(environment.mapping("Variables"))
        elif creating:
            changes["environment"] = {}
        if fields.has("Layers") or creating:
            changes["layers"] = await self._layers(fields)
        snap = fields.obj("SnapStart", allowed={"ApplyOn"})
        if snap is not None:
            apply_on = snap.string("ApplyOn", required=True, pattern="PublishedVersions|None")
            changes["snap_start"] = apply_on == "PublishedVersions"
        _check_architectures(fields)
        dead_letter = fields.obj("DeadLetterConfig", allowed={"TargetArn"})
        if dead_letter is not None:
            # An empty (or absent) TargetArn removes the dead-letter queue, as on AWS.
            target = dead_letter.string("TargetArn", max_len=10_000, pattern=_ARN_OR_EMPTY)
            if target:
                await self.context.check_queue_target(target, field="DeadLetterConfig.TargetArn")
            changes["dead_letter_target"] = target
        logging_fields = fields.obj("LoggingConfig", allowed=LOGGING_MEMBERS)
        if logging_fields is not None:
            changes["logging"] = logging_config(logging_fields, LoggingConfig() if current is None else current.logging)
        changes.update(_platform_settings(fields))
        if changes.get("runtime", "").startswith("python") and creating and not changes.get("handler"):
            raise InvalidParameterValueException("A handler is required for the python runtimes")
        return changes

    # ------------------------------------------------------------------ operations

    async def create_function(self, request: web.Request) -> web.Response:
        """CreateFunction: POST /2015-03-31/functions → 201."""
        fields = Fields(await read_json(request), allowed=_CREATE_USED | UNSUPPORTED)
        reject_unsupported(fields)
        name = check_name(fields.string("FunctionName", required=True, max_len=140))
        fields.string("Role", required=True, max_len=2048)
        package = fields.string("PackageType", default="Zip", max_len=16)
        if package == "Image":
            raise InvalidParameterValueException("PackageType Image is not supported by Leasehold: use Zip")
        if package != "Zip":
            raise InvalidParameterValueException(
                f"Invalid PackageType {package!r}: Member must satisfy enum value set: [Zip, Image]"
            )
        code_fields = fields.obj("Code", allowed=_CODE_FIELDS)
        if code_fields is None:
            raise InvalidParameterValueException("Code is required")
        code = decode_zip(code_fields)
        spec = FunctionSpec(**await self._spec_changes(fields, current=None))
        tags = check_tags(fields.mapping("Tags"), where="tags") if fields.has("Tags") else {}
        publish = fields.boolean("Publish")
        version = await asyncio.to_thread(self.registry.create, name, spec, code, publish=publish, tags=tags)
        self.context.invoker.forget(name)
        log.info("event=function_created function=%s version=%s", name, version.version)
        return web.json_response(self._configuration(version), status=201)

    async def get_function(self, request: web.Request) -> web.Response:
        """GetFunction: configuration, code location and reserved concurrency."""
        name, qualifier = function_name(request)
        version = await asyncio.to_thread(self.registry.get, name, qualifier)
        reserved = await asyncio.to_thread(self.registry.reserved, name)
        tags = await asyncio.to_thread(self.registry.tags, name)
        doc: dict[str, Any] = {
            "Configuration": self._configuration(version),
            "Code": {"RepositoryType": "Leasehold", "Location": f"leasehold://code/{version.code_sha256}"},
        }
        if tags:
            doc["Tags"] = tags
        if reserved is not None:
            doc["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return web.json_response(doc)

    async def get_configuration(self, request: web.Request) -> web.Response:
        """GetFunctionConfiguration."""
        name, qualifier = function_name(request)
        version = await asyncio.to_thread(self.registry.get, name, qualifier)
        return web.json_response(self._configuration(version))

    async def list_functions(self, request: web.Request) -> web.Response:
        """ListFunctions (``FunctionVersion=ALL`` lists every version): by name, MaxItems functions (1 to
        10000) a page; ``Marker`` is the last function name of the previous page. ``MasterRegion`` (Lambda@Edge)
        is checked and ignored."""
        marker, limit = page(request, most=10_000, extra={"FunctionVersion", "MasterRegion"})
        which = single(request, "FunctionVersion")
        if which not in (None, "ALL"):
            raise InvalidParameterValueException(f"FunctionVersion must be ALL, not {which[:20]!r}")
        master = single(request, "MasterRegion")
        if master is not None and (which is None or len(master) > 50 or not _MASTER_REGION.fullmatch(master)):
            raise InvalidParameterValueException(
                f"MasterRegion {master[:50]!r} must be ALL or a region, and needs FunctionVersion=ALL"
            )
        found = await asyncio.to_thread(
            self.registry.list_functions, all_versions=which == "ALL", marker=marker, limit=limit + 1
        )
        names, doc = documents.one_page(list(dict.fromkeys(v.name for v in found)), limit, lambda last: last)
        keep = set(names)
        doc["Functions"] = [self._configuration(v) for v in found if v.name in keep]
        return web.json_response(doc)

    async def list_versions(self, request: web.Request) -> web.Response:
        """ListVersionsByFunction: oldest first, at most 50 a page; ``Marker`` is the last version of the
        previous page."""
        name, _ = function_name(request, qualified=False)
        marker, limit = page(request, most=10_000)
        limit = min(limit, _VERSIONS_PAGE)
        versions = await asyncio.to_thread(self.registry.versions, name, marker=marker, limit=limit + 1)
        versions, doc = documents.one_page(versions, limit, lambda last: last.version)
        doc["Versions"] = [self._configuration(v) for v in versions]
        return web.json_response(doc)

    async def delete_function(self, request: web.Request) -> web.Response:
        """DeleteFunction (a whole function, or one published version with a qualifier) → 204."""
        name, qualifier = function_name(request)
        await asyncio.to_thread(self.registry.delete, name, qualifier)
        self.context.invoker.forget(name)
        self.context.provisioner.forget(name, qualifier)
        if qualifier is None:
            self.context.invoker.logs.forget(name)
        log.info("event=function_deleted function=%s qualifier=%s", name, qualifier or "")
        return web.Response(status=204)

    async def update_code(self, request: web.Request) -> web.Response:
        """UpdateFunctionCode."""
        name, _ = function_name(request, qualified=False)
        fields = Fields(
            await read_json(request),
            allowed=_CODE_FIELDS | UNSUPPORTED | {"Architectures", "Publish", "DryRun", "RevisionId"},
        )
        reject_unsupported(fields)
        _check_architectures(fields)
        code = decode_zip(fields)
        revision = revision_id(fields)
        if fields.boolean("DryRun"):
            return web.json_response(self._configuration(await asyncio.to_thread(self.registry.get, name)))
        version = await asyncio.to_thread(
            self.registry.update_code, name, code, publish=fields.boolean("Publish"), revision_id=revision
        )
        self.context.invoker.forget(name)
        return web.json_response(self._configuration(version))

    async def update_configuration(self, request: web.Request) -> web.Response:
        """UpdateFunctionConfiguration."""
        name, _ = function_name(request, qualified=False)
        fields = Fields(await read_json(request), allowed=(_CONFIG_USED | UNSUPPORTED) - {"FunctionName"})
        reject_unsupported(fields)
        current = (await asyncio.to_thread(self.registry.get, name)).spec
        changes = await self._spec_changes(fields, current=current)
        version = await asyncio.to_thread(
            self.registry.update_configuration, name, changes, revision_id=revision_id(fields)
        )
        self.context.invoker.forget(name)
        return web.json_response(self._configuration(version))

    async def publish_version(self, request: web.Request) -> web.Response:
        """PublishVersion → 201."""
        name, _ = function_name(request, qualified=False)
        fields = Fields(await read_json(request), allowed={"CodeSha256", "Description", "RevisionId"} | UNSUPPORTED)
        reject_unsupported(fields)
        code_sha = fields.string("CodeSha256", max_len=128)
        hex_sha = ""
        if code_sha:
            try:
                hex_sha = base64.b64decode(code_sha, validate=True).hex()
            except (binascii.Error, ValueError):
                hex_sha = "invalid"
        description = fields.string("Description", max_len=256) if fields.has("Description") else None
        version = await asyncio.to_thread(
            self.registry.publish, name, code_sha256=hex_sha, description=description, revision_id=revision_id(fields)
        )
        return web.json_response(self._configuration(version), status=201)


def _check_architectures(fields: Fields) -> None:
    """Architectures, when given: the model's enum first (ValidationException), then what this platform
    runs (x86_64)."""
    if fields.has("Architectures"):
        for arch in fields.choices("Architectures", allowed=ARCHITECTURES, max_items=1, min_items=1):
            if arch != "x86_64":
                raise InvalidParameterValueException(f"Architecture {arch} is not supported")


def _platform_settings(fields: Fields) -> dict[str, Any]:
    """The FunctionSpec fields of EphemeralStorage and TracingConfig, and the check of the settings
    Leasehold cannot honour (VpcConfig with subnets, a KMSKeyArn, Active tracing): each is refused by name
    rather than accepted and ignored; the values that mean "none" are accepted, as tools send them."""
    changes: dict[str, Any] = {}
    storage = fields.obj("EphemeralStorage", allowed={"Size"})
    if storage is not None:
        size = storage.integer("Size", lo=MIN_EPHEMERAL_MB, hi=32_768, required=True)  # the model's range
        if size > MAX_EPHEMERAL_MB:
            raise InvalidParameterValueException(
                f"EphemeralStorage.Size must be between {MIN_EPHEMERAL_MB} and {MAX_EPHEMERAL_MB} MB, not {size}"
            )
        changes["ephemeral_storage_mb"] = size
    tracing = fields.obj("TracingConfig", allowed={"Mode"})
    if tracing is not None and tracing.has("Mode"):
        mode = tracing.string("Mode", pattern="Active|PassThrough")
        if mode == "Active":
            raise InvalidParameterValueException(
                "TracingConfig Mode Active is not supported by Leasehold: it needs AWS X-Ray; use PassThrough"
            )
        changes["tracing_mode"] = mode
    vpc = fields.obj("VpcConfig", allowed={"SubnetIds", "SecurityGroupIds", "Ipv6AllowedForDualStack"})
    if vpc is not None:
        subnets = vpc.strings("SubnetIds", max_items=16, max_len=1024)
        groups = vpc.strings("SecurityGroupIds", max_items=5, max_len=1024)
        if subnets or groups or vpc.boolean("Ipv6AllowedForDualStack"):
            raise InvalidParameterValueException(
                "VpcConfig is not supported by Leasehold: a sandbox has its own network namespace and reaches"
                " only its worker's Lambda endpoint; send empty SubnetIds and SecurityGroupIds"
            )
    if fields.has("KMSKeyArn"):
        key = fields.string("KMSKeyArn", max_len=2048, pattern=_ARN_OR_EMPTY)
        if key:
            raise InvalidParameterValueException(
                "KMSKeyArn is not supported by Leasehold: environment variables are stored in the platform's"
                " database without a customer managed key; send an empty KMSKeyArn"
            )
    return changes
