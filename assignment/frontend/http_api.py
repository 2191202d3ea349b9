"""The Lambda-compatible HTTP API (the REST paths boto3's ``lambda`` client uses) and the admin JSON API.

Management: CreateFunction, GetFunction(Configuration), ListFunctions, DeleteFunction, UpdateFunctionCode,
UpdateFunctionConfiguration, PublishVersion, ListVersionsByFunction, Put/Get/DeleteFunctionConcurrency,
Put/Get/Delete/ListProvisionedConcurrencyConfig(s), Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s),
PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayerVersions, ListLayers, DeleteLayerVersion.
List operations page with ``Marker`` / ``MaxItems`` and answer ``NextMarker`` when there is more.
Invoke: ``RequestResponse`` (200), ``Event`` (202, through the event queue), ``DryRun`` (204).
Admin (for the ``leasehold`` CLI): ``/_leasehold/v1/status``, ``/_leasehold/v1/logs/{function}``,
``/_leasehold/v1/dlq/{function}``.

Every error is a Lambda error document with ``x-amzn-ErrorType``; anything unexpected is logged and
answered as ``ServiceException`` without a traceback.

Example::

    api = LambdaHttpApi(registry, invoker, provisioner)
    runner = web.AppRunner(api.app())
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import re
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aiohttp import web

from assignment.coordination.base import Coordinator
from assignment.frontend.invoker import (
    ASYNC_PAYLOAD_LIMIT,
    SYNC_PAYLOAD_LIMIT,
    Invoker,
    check_payload,
    decode_client_context,
)
from assignment.frontend.provisioning import Provisioner
from assignment.frontend.registry import LATEST, FunctionSpec, FunctionVersion, LayerRef, LayerVersion, Registry
from assignment.frontend.types import (
    EventInvokeConfig,
    InvalidParameterValueException,
    InvalidRequestContentException,
    LambdaError,
    ProvisionedConcurrencyConfigNotFoundException,
    RequestTooLargeException,
    ResourceNotFoundException,
    ServiceException,
)
from assignment.frontend.validation import (
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_MEMORY_MB,
    Fields,
    check_environment,
    check_name,
    parse_function_name,
    worker_runtime,
)

__all__ = ["MAX_BODY_BYTES", "EventSink", "LambdaHttpApi"]

_T = TypeVar("_T")

log = logging.getLogger("leasehold.frontend.http")

#: Largest management request body (AWS: about 70 MB, a 50 MB zip in base64).
MAX_BODY_BYTES = 69_905_067
#: Largest code zip (decoded) and unzipped size with layers.
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 262_144_000
#: Largest JSON management request body, in bytes (a larger one is RequestTooLargeException): the
#: whole-request limit, since CreateFunction and UpdateFunctionCode carry a base64 zip. Nesting is not
#: limited separately; JSON too deeply nested to parse is InvalidRequestContentException.
_JSON_BODY_LIMIT = MAX_BODY_BYTES

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
}
#: Accepted and ignored: they change nothing in Leasehold.
_IGNORED = {
    "Tags",
    "TracingConfig",
    "EphemeralStorage",
    "LoggingConfig",
    "KMSKeyArn",
    "DeadLetterConfig",
    "VpcConfig",
    "RevisionId",
    "PublishTo",
    "RuntimeConfig",
}
#: Known to AWS but refused here (they would change behaviour we do not have).
_UNSUPPORTED = {
    "ImageConfig",
    "FileSystemConfigs",
    "CodeSigningConfigArn",
    "CapacityProviderConfig",
    "DurableConfig",
    "AcceleratorConfig",
    "TenancyConfig",
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
}
#: Largest ``Marker`` accepted by the list operations.
_MAX_MARKER = 1024
#: Most items in one page of ListVersionsByFunction (AWS's cap, whatever ``MaxItems`` asks for).
_VERSIONS_PAGE = 50
#: Largest number AWS allows for a layer version (a ``long``).
_MAX_LONG = 2**63 - 1
_LAYER_NAME = re.compile(r"[a-zA-Z0-9_-]{1,140}")
_LAYER_NUMBER = re.compile(r"[0-9]{1,19}")
#: The model's MasterRegion pattern.
_MASTER_REGION = re.compile(r"ALL|(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}")
_RUNTIME_ID = re.compile(r"[a-z][a-z0-9.-]{0,31}")
_ARCHITECTURES = {"x86_64", "arm64"}
_EVENT_FIELDS = {"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"}
_CODE_FIELDS = {"ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri", "SourceKMSKeyArn", "S3ObjectStorageMode"}


class EventSink(Protocol):
    """The part of ``assignment.frontend.events.EventQueue`` the HTTP API uses."""

    async def enqueue(self, function: str, qualifier: str, payload: bytes, request_id: str) -> bool:
        """Queue an event durably."""

    async def depth(self, function: str | None = None) -> int:
        """Events waiting."""

    async def dead_letters(self, function: str, limit: int = 100) -> list[dict[str, object]]:
        """Events that ran out of retries."""


def _timestamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _b64_sha(hex_sha: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_sha)).decode()


def _reject_unsupported(fields: Fields) -> None:
    for key in sorted(_UNSUPPORTED):
        if fields.has(key):
            raise InvalidParameterValueException(f"{key} is not supported by Leasehold")


def _decode_zip(fields: Fields, key: str = "ZipFile") -> bytes:
    """A base64 zip from a request, checked: a readable archive within the size limits."""
    for other in ("S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri"):
        if fields.has(other):
            raise InvalidParameterValueException(f"{other} is not supported by Leasehold: send ZipFile")
    encoded = fields.string(key, required=True, max_len=MAX_BODY_BYTES)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValueException(f"{key} is not valid base64") from None
    if len(data) > MAX_ZIP_BYTES:
        raise RequestTooLargeException(f"Zipped code must be smaller than {MAX_ZIP_BYTES} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise InvalidParameterValueException("Could not unzip uploaded file. Please check your file.") from None
    if unzipped > MAX_UNZIPPED_BYTES:
        raise InvalidParameterValueException(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
    return data


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLargeException(f"Request must be smaller than {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await request.content.read(1 << 16)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise RequestTooLargeException(f"Request must be smaller than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_json(request: web.Request, limit: int = _JSON_BODY_LIMIT) -> object:
    body = await _read_body(request, limit)
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequestContentException("Could not parse request body into json") from None


def _qualifier_param(request: web.Request) -> str | None:
    values = request.query.getall("Qualifier", [])
    if len(values) > 1:
        raise InvalidParameterValueException("Qualifier given more than once")
    return values[0] if values else None


def _name(request: web.Request, *, qualified: bool = True) -> tuple[str, str | None]:
    name, qualifier = parse_function_name(request.match_info["name"], _qualifier_param(request))
    if not qualified and qualifier is not None:
        raise InvalidParameterValueException("This operation does not take a qualifier")
    return name, qualifier


def _single(request: web.Request, key: str) -> str | None:
    values = request.query.getall(key, [])
    if len(values) > 1:
        raise InvalidParameterValueException(f"{key} given more than once")
    return values[0] if values else None


def _page(request: web.Request, *, most: int, extra: Collection[str] = ()) -> tuple[str, int]:
    """``(Marker, MaxItems)`` of a list request; MaxItems is 1..``most`` (``most`` when absent). Query
    parameters other than these and ``extra`` are refused."""
    unknown = sorted(set(request.query) - {"Marker", "MaxItems", *extra})
    if unknown:
        raise InvalidParameterValueException(f"Unknown query parameter(s): {', '.join(unknown)[:200]}")
    marker = _single(request, "Marker") or ""
    if len(marker) > _MAX_MARKER:
        raise InvalidParameterValueException(f"Marker must be at most {_MAX_MARKER} characters")
    raw = _single(request, "MaxItems")
    if raw is None:
        return marker, most
    if not re.fullmatch("[0-9]{1,6}", raw) or not 1 <= int(raw) <= most:
        raise InvalidParameterValueException(f"MaxItems must be an integer between 1 and {most}, not {raw[:20]!r}")
    return marker, int(raw)


def _one_page(found: list[_T], limit: int, marker_of: Callable[[_T], str]) -> tuple[list[_T], dict[str, Any]]:
    """The first ``limit`` of ``found`` (read with one extra, to know whether there is more) and the start
    of the answer: ``{"NextMarker": ...}`` (``marker_of`` the page's last item) when there is more."""
    if len(found) > limit:
        found = found[:limit]
        return found, {"NextMarker": marker_of(found[-1])}
    return found, {}


def _layer_number(raw: str, what: str = "VersionNumber") -> int:
    """A layer version number from a path or marker: 1 to 2**63-1."""
    if not _LAYER_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= _MAX_LONG:
        raise InvalidParameterValueException(f"{what} must be a positive integer, not {raw[:40]!r}")
    return int(raw)


def _event_changes(fields: Fields, *, creating: bool) -> dict[str, Any]:
    """:class:`EventInvokeConfig` fields from a Put (every field, defaults for those absent) or an Update
    (only those given) request."""
    changes: dict[str, Any] = {}
    if creating or fields.has("MaximumRetryAttempts"):
        changes["maximum_retry_attempts"] = fields.integer("MaximumRetryAttempts", lo=0, hi=2, default=2)
    if creating or fields.has("MaximumEventAgeInSeconds"):
        changes["maximum_event_age_s"] = fields.integer("MaximumEventAgeInSeconds", lo=60, hi=21_600, default=21_600)
    destinations = fields.obj("DestinationConfig", allowed={"OnSuccess", "OnFailure"})
    for key, attribute in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
        target = None if destinations is None else destinations.obj(key, allowed={"Destination"})
        if target is not None:
            changes[attribute] = target.string("Destination", max_len=350)
        elif creating:
            changes[attribute] = ""
    return changes


#: The request id of a request (also its ``x-amzn-RequestId``).
REQUEST_ID = web.RequestKey("request_id", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        account_limit: int = 1000,
    ) -> None:
        self.registry = registry
        self.invoker = invoker
        self.provisioner = provisioner
        self.events = events
        self.coordinator = coordinator
        self.account_limit = account_limit
        #: Invocations in flight (graceful stop waits for them).
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ plumbing

    def app(self) -> web.Application:
        """The application with every route and the error middleware."""
        app = web.Application(middlewares=[self._errors], client_max_size=MAX_BODY_BYTES + 1024)
        fn = "/2015-03-31/functions/{name}"
        app.add_routes(
            [
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
                web.post(fn + "/invocations", self.invoke),
                web.put("/2017-10-31/functions/{name}/concurrency", self.put_concurrency),
                web.delete("/2017-10-31/functions/{name}/concurrency", self.delete_concurrency),
                web.get("/2019-09-30/functions/{name}/concurrency", self.get_concurrency),
                web.put("/2019-09-30/functions/{name}/provisioned-concurrency", self.put_provisioned),
                web.get("/2019-09-30/functions/{name}/provisioned-concurrency", self.get_provisioned),
                web.delete("/2019-09-30/functions/{name}/provisioned-concurrency", self.delete_provisioned),
                web.put("/2019-09-25/functions/{name}/event-invoke-config", self.put_event_config),
                web.get("/2019-09-25/functions/{name}/event-invoke-config", self.get_event_config),
                web.post("/2019-09-25/functions/{name}/event-invoke-config", self.update_event_config),
                web.delete("/2019-09-25/functions/{name}/event-invoke-config", self.delete_event_config),
                web.get("/2019-09-25/functions/{name}/event-invoke-config/list", self.list_event_configs),
                web.get("/2018-10-31/layers", self.list_layers),
                web.post("/2018-10-31/layers/{layer}/versions", self.publish_layer),
                web.get("/2018-10-31/layers/{layer}/versions", self.list_layer_versions),
                web.get("/2018-10-31/layers/{layer}/versions/{number}", self.get_layer_version),
                web.delete("/2018-10-31/layers/{layer}/versions/{number}", self.delete_layer_version),
                web.get("/_leasehold/v1/status", self.status),
                web.get("/_leasehold/v1/logs/{name}", self.recent_logs),
                web.get("/_leasehold/v1/dlq/{name}", self.dead_letters),
            ]
        )
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        request[REQUEST_ID] = request_id
        try:
            response = await handler(request)
        except LambdaError as exc:
            response = self._error(exc, request_id)
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
            response = self._error(ServiceException("An internal error occurred"), request_id)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        return response

    @staticmethod
    def _error(exc: LambdaError, request_id: str) -> web.Response:
        return web.json_response(
            exc.body(), status=exc.status, headers={"x-amzn-ErrorType": exc.type, "x-amzn-RequestId": request_id}
        )

    async def wait_idle(self) -> None:
        """Until no invocation is in flight."""
        await self._idle.wait()

    # ------------------------------------------------------------------ documents

    def configuration(self, version: FunctionVersion) -> dict[str, Any]:
        """The FunctionConfiguration document of a version."""
        spec = version.spec
        qualified = None if version.version == LATEST else version.version
        doc: dict[str, Any] = {
            "FunctionName": version.name,
            "FunctionArn": self.registry.function_arn(version.name, qualified),
            "Runtime": spec.runtime,
            "Role": spec.role,
            "Handler": spec.handler,
            "CodeSize": version.code_size,
            "Description": spec.description,
            "Timeout": spec.timeout_s,
            "MemorySize": spec.memory_mb,
            "LastModified": _timestamp(version.modified_ms),
            "CodeSha256": _b64_sha(version.code_sha256),
            "Version": version.version,
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": version.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
            "SnapStart": {
                "ApplyOn": "PublishedVersions" if spec.snap_start else "None",
                "OptimizationStatus": "On" if spec.snap_start and qualified else "Off",
            },
        }
        if spec.environment:
            doc["Environment"] = {"Variables": dict(spec.environment)}
        if spec.layers:
            doc["Layers"] = [{"Arn": layer.arn, "CodeSize": layer.size} for layer in spec.layers]
        return doc

    # ------------------------------------------------------------------ specs

    async def _layers(self, fields: Fields) -> tuple[LayerRef, ...]:
        arns = fields.strings("Layers", max_items=5, max_len=140)
        return tuple([await asyncio.to_thread(self.registry.layer, arn) for arn in arns])

    async def _spec_changes(self, fields: Fields, *, creating: bool) -> dict[str, Any]:
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
        if fields.has("Architectures"):
            # The model's enum first (ValidationException), then what this platform runs.
            for arch in fields.choices("Architectures", allowed=_ARCHITECTURES, max_items=1):
                if arch != "x86_64":
                    raise InvalidParameterValueException(f"Architecture {arch} is not supported")
        if changes.get("runtime", "").startswith("python") and creating and not changes.get("handler"):
            raise InvalidParameterValueException("A handler is required for the python runtimes")
        return changes

    # ------------------------------------------------------------------ management

    async def create_function(self, request: web.Request) -> web.Response:
        """CreateFunction: POST /2015-03-31/functions → 201."""
        fields = Fields(await _read_json(request), allowed=_CREATE_USED | _IGNORED | _UNSUPPORTED)
        _reject_unsupported(fields)
        name = check_name(fields.string("FunctionName", required=True, max_len=140))
        fields.string("Role", required=True, max_len=2048)
        package = fields.string("PackageType", default="Zip", max_len=16)
        if package != "Zip":
            raise InvalidParameterValueException("Only the Zip package type is supported")
        code_fields = fields.obj("Code", allowed=_CODE_FIELDS)
        if code_fields is None:
            raise InvalidParameterValueException("Code is required")
        code = _decode_zip(code_fields)
        spec = FunctionSpec(**await self._spec_changes(fields, creating=True))
        publish = fields.boolean("Publish")
        version = await asyncio.to_thread(self.registry.create, name, spec, code, publish=publish)
        self.invoker.forget(name)
        log.info("event=function_created function=%s version=%s", name, version.version)
        return web.json_response(self.configuration(version), status=201)

    async def get_function(self, request: web.Request) -> web.Response:
        """GetFunction: configuration, code location and reserved concurrency."""
        name, qualifier = _name(request)
        version = await asyncio.to_thread(self.registry.get, name, qualifier)
        reserved = await asyncio.to_thread(self.registry.reserved, name)
        doc: dict[str, Any] = {
            "Configuration": self.configuration(version),
            "Code": {"RepositoryType": "Leasehold", "Location": f"leasehold://code/{version.code_sha256}"},
        }
        if reserved is not None:
            doc["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return web.json_response(doc)

    async def get_configuration(self, request: web.Request) -> web.Response:
        """GetFunctionConfiguration."""
        name, qualifier = _name(request)
        version = await asyncio.to_thread(self.registry.get, name, qualifier)
        return web.json_response(self.configuration(version))

    async def list_functions(self, request: web.Request) -> web.Response:
        """ListFunctions (``FunctionVersion=ALL`` lists every version): by name, MaxItems functions (1 to
        10000) a page; ``Marker`` is the last function name of the previous page. ``MasterRegion`` (Lambda@Edge)
        is checked and ignored."""
        marker, limit = _page(request, most=10_000, extra={"FunctionVersion", "MasterRegion"})
        which = _single(request, "FunctionVersion")
        if which not in (None, "ALL"):
            raise InvalidParameterValueException(f"FunctionVersion must be ALL, not {which[:20]!r}")
        master = _single(request, "MasterRegion")
        if master is not None and (which is None or len(master) > 50 or not _MASTER_REGION.fullmatch(master)):
            raise InvalidParameterValueException(
                f"MasterRegion {master[:50]!r} must be ALL or a region, and needs FunctionVersion=ALL"
            )
        found = await asyncio.to_thread(
            self.registry.list_functions, all_versions=which == "ALL", marker=marker, limit=limit + 1
        )
        names, doc = _one_page(list(dict.fromkeys(v.name for v in found)), limit, lambda last: last)
        keep = set(names)
        doc["Functions"] = [self.configuration(v) for v in found if v.name in keep]
        return web.json_response(doc)

    async def list_versions(self, request: web.Request) -> web.Response:
        """ListVersionsByFunction: oldest first, at most 50 a page; ``Marker`` is the last version of the
        previous page."""
        name, _ = _name(request, qualified=False)
        marker, limit = _page(request, most=10_000)
        limit = min(limit, _VERSIONS_PAGE)
        versions = await asyncio.to_thread(self.registry.versions, name, marker=marker, limit=limit + 1)
        versions, doc = _one_page(versions, limit, lambda last: last.version)
        doc["Versions"] = [self.configuration(v) for v in versions]
        return web.json_response(doc)

    async def delete_function(self, request: web.Request) -> web.Response:
        """DeleteFunction (a whole function, or one published version with a qualifier) → 204."""
        name, qualifier = _name(request)
        await asyncio.to_thread(self.registry.delete, name, qualifier)
        self.invoker.forget(name)
        self.provisioner.forget(name, qualifier)
        if qualifier is None:
            self.invoker.logs.forget(name)
        log.info("event=function_deleted function=%s qualifier=%s", name, qualifier or "")
        return web.Response(status=204)

    async def update_code(self, request: web.Request) -> web.Response:
        """UpdateFunctionCode."""
        name, _ = _name(request, qualified=False)
        fields = Fields(
            await _read_json(request),
            allowed=_CODE_FIELDS | {"Architectures", "Publish", "DryRun", "RevisionId", "PublishTo"},
        )
        code = _decode_zip(fields)
        if fields.boolean("DryRun"):
            return web.json_response(self.configuration(await asyncio.to_thread(self.registry.get, name)))
        version = await asyncio.to_thread(self.registry.update_code, name, code, publish=fields.boolean("Publish"))
        self.invoker.forget(name)
        return web.json_response(self.configuration(version))

    async def update_configuration(self, request: web.Request) -> web.Response:
        """UpdateFunctionConfiguration."""
        name, _ = _name(request, qualified=False)
        fields = Fields(await _read_json(request), allowed=(_CONFIG_USED | _IGNORED | _UNSUPPORTED) - {"FunctionName"})
        _reject_unsupported(fields)
        changes = await self._spec_changes(fields, creating=False)
        version = await asyncio.to_thread(self.registry.update_configuration, name, changes)
        self.invoker.forget(name)
        return web.json_response(self.configuration(version))

    async def publish_version(self, request: web.Request) -> web.Response:
        """PublishVersion → 201."""
        name, _ = _name(request, qualified=False)
        fields = Fields(await _read_json(request), allowed={"CodeSha256", "Description", "RevisionId", "PublishTo"})
        code_sha = fields.string("CodeSha256", max_len=128)
        hex_sha = ""
        if code_sha:
            try:
                hex_sha = base64.b64decode(code_sha, validate=True).hex()
            except (binascii.Error, ValueError):
                hex_sha = "invalid"
        description = fields.string("Description", max_len=256) if fields.has("Description") else None
        version = await asyncio.to_thread(self.registry.publish, name, code_sha256=hex_sha, description=description)
        return web.json_response(self.configuration(version), status=201)

    # ------------------------------------------------------------------ concurrency

    async def put_concurrency(self, request: web.Request) -> web.Response:
        """PutFunctionConcurrency."""
        name, _ = _name(request, qualified=False)
        fields = Fields(await _read_json(request), allowed={"ReservedConcurrentExecutions"})
        reserved = fields.integer("ReservedConcurrentExecutions", lo=0, hi=self.account_limit, required=True)
        await asyncio.to_thread(self.registry.set_reserved, name, reserved)
        await self.invoker.backend.set_concurrency(name, reserved)
        log.info("event=reserved_concurrency function=%s reserved=%d", name, reserved)
        return web.json_response({"ReservedConcurrentExecutions": reserved})

    async def delete_concurrency(self, request: web.Request) -> web.Response:
        """DeleteFunctionConcurrency → 204."""
        name, _ = _name(request, qualified=False)
        await asyncio.to_thread(self.registry.set_reserved, name, None)
        await self.invoker.backend.set_concurrency(name, None)
        return web.Response(status=204)

    async def get_concurrency(self, request: web.Request) -> web.Response:
        """GetFunctionConcurrency."""
        name, _ = _name(request, qualified=False)
        reserved = await asyncio.to_thread(self.registry.reserved, name)
        return web.json_response({} if reserved is None else {"ReservedConcurrentExecutions": reserved})

    def _provisioned_doc(self, name: str, version: str, count: int, modified_ms: int) -> dict[str, Any]:
        status = self.provisioner.status(name, version)
        doc: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": count,
            "AllocatedProvisionedConcurrentExecutions": status["allocated"],
            "AvailableProvisionedConcurrentExecutions": status["allocated"],
            "Status": status["status"],
            "LastModified": _timestamp(modified_ms),
        }
        if status["reason"]:
            doc["StatusReason"] = status["reason"]
        return doc

    @staticmethod
    def _required_qualifier(request: web.Request) -> tuple[str, str]:
        name, qualifier = _name(request)
        if qualifier is None:
            raise InvalidParameterValueException("Qualifier is required")
        return name, qualifier

    async def put_provisioned(self, request: web.Request) -> web.Response:
        """PutProvisionedConcurrencyConfig (a published version) → 202; sandboxes are started in the background."""
        name, qualifier = self._required_qualifier(request)
        fields = Fields(await _read_json(request), allowed={"ProvisionedConcurrentExecutions"})
        count = fields.integer("ProvisionedConcurrentExecutions", lo=1, hi=self.account_limit, required=True)
        version = await asyncio.to_thread(self.registry.set_provisioned, name, qualifier, count)
        self.provisioner.request(version, count)
        return web.json_response(self._provisioned_doc(name, qualifier, count, int(time.time() * 1000)), status=202)

    async def get_provisioned(self, request: web.Request) -> web.Response:
        """GetProvisionedConcurrencyConfig, or ListProvisionedConcurrencyConfigs (``?List=ALL``, same path).
        A version without a config is ProvisionedConcurrencyConfigNotFoundException (404), a missing version
        ResourceNotFoundException."""
        if "List" in request.query:
            return await self.list_provisioned(request)
        name, qualifier = self._required_qualifier(request)
        found = await asyncio.to_thread(self.registry.provisioned, name, qualifier)
        if found is None:
            arn = self.registry.function_arn(name, qualifier)
            raise ProvisionedConcurrencyConfigNotFoundException(
                f"No Provisioned Concurrency Config found for this function: {arn}"
            )
        return web.json_response(self._provisioned_doc(name, qualifier, *found))

    async def list_provisioned(self, request: web.Request) -> web.Response:
        """ListProvisionedConcurrencyConfigs (``?List=ALL``): by version; ``Marker`` is the last version of
        the previous page."""
        marker, limit = _page(request, most=50, extra={"List"})
        if _single(request, "List") != "ALL":
            raise InvalidParameterValueException("List must be ALL")
        name, _ = _name(request, qualified=False)
        found = await asyncio.to_thread(self.registry.provisioned_configs, name, marker=marker, limit=limit + 1)
        found, doc = _one_page(found, limit, lambda last: last[0])
        doc["ProvisionedConcurrencyConfigs"] = [
            {"FunctionArn": self.registry.function_arn(name, version), **self._provisioned_doc(name, version, *rest)}
            for version, *rest in found
        ]
        return web.json_response(doc)

    async def delete_provisioned(self, request: web.Request) -> web.Response:
        """DeleteProvisionedConcurrencyConfig → 204."""
        name, qualifier = self._required_qualifier(request)
        await asyncio.to_thread(self.registry.delete_provisioned, name, qualifier)
        try:
            version = await asyncio.to_thread(self.registry.get, name, qualifier)
        except ResourceNotFoundException:  # deleted meanwhile: its pin lapses by itself
            self.provisioner.forget(name, qualifier)
        else:
            self.provisioner.withdraw(version)
        return web.Response(status=204)

    # ------------------------------------------------------------------ async settings

    def _event_doc(self, name: str, qualifier: str, config: EventInvokeConfig, modified_ms: int) -> dict[str, Any]:
        destinations: dict[str, Any] = {}
        if config.on_success:
            destinations["OnSuccess"] = {"Destination": config.on_success}
        if config.on_failure:
            destinations["OnFailure"] = {"Destination": config.on_failure}
        return {
            "LastModified": modified_ms / 1000,
            "FunctionArn": self.registry.function_arn(name, qualifier),
            "MaximumRetryAttempts": config.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": config.maximum_event_age_s,
            "DestinationConfig": destinations,
        }

    async def put_event_config(self, request: web.Request) -> web.Response:
        """PutFunctionEventInvokeConfig."""
        name, qualifier = _name(request)
        qualifier = qualifier or LATEST
        fields = Fields(await _read_json(request), allowed=_EVENT_FIELDS)
        config = EventInvokeConfig(**_event_changes(fields, creating=True))
        modified = await asyncio.to_thread(self.registry.put_event_config, name, qualifier, config)
        return web.json_response(self._event_doc(name, qualifier, config, modified))

    async def update_event_config(self, request: web.Request) -> web.Response:
        """UpdateFunctionEventInvokeConfig: the given fields (and each given destination) replace the stored
        ones; ResourceNotFoundException when the version has no config yet."""
        name, qualifier = _name(request)
        qualifier = qualifier or LATEST
        fields = Fields(await _read_json(request), allowed=_EVENT_FIELDS)
        changes = _event_changes(fields, creating=False)
        config, modified = await asyncio.to_thread(self.registry.update_event_config, name, qualifier, changes)
        return web.json_response(self._event_doc(name, qualifier, config, modified))

    async def delete_event_config(self, request: web.Request) -> web.Response:
        """DeleteFunctionEventInvokeConfig → 204; ResourceNotFoundException when there is none."""
        name, qualifier = _name(request)
        await asyncio.to_thread(self.registry.delete_event_config, name, qualifier or LATEST)
        return web.Response(status=204)

    async def list_event_configs(self, request: web.Request) -> web.Response:
        """ListFunctionEventInvokeConfigs: $LATEST first, then by version; ``Marker`` is the last qualifier
        of the previous page."""
        name, _ = _name(request, qualified=False)
        marker, limit = _page(request, most=50)
        found = await asyncio.to_thread(self.registry.event_configs, name, marker=marker, limit=limit + 1)
        found, doc = _one_page(found, limit, lambda last: last[0])
        doc["FunctionEventInvokeConfigs"] = [
            self._event_doc(name, qualifier, config, modified) for qualifier, config, modified in found
        ]
        return web.json_response(doc)

    async def get_event_config(self, request: web.Request) -> web.Response:
        """GetFunctionEventInvokeConfig."""
        name, qualifier = _name(request)
        qualifier = qualifier or LATEST
        found = await asyncio.to_thread(self.registry.event_config, name, qualifier)
        if found is None:
            raise ResourceNotFoundException(
                f"The function {self.registry.function_arn(name, qualifier)} doesn't have an EventInvokeConfig"
            )
        return web.json_response(self._event_doc(name, qualifier, *found))

    # ------------------------------------------------------------------ layers

    async def publish_layer(self, request: web.Request) -> web.Response:
        """PublishLayerVersion → 201: the layer named (1 to 140 characters) or by its ARN; CompatibleArchitectures
        (x86_64, arm64) and LicenseInfo are recorded and answered back, as are CompatibleRuntimes."""
        layer = self._layer_name(request)
        fields = Fields(
            await _read_json(request),
            allowed={"Description", "Content", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"},
        )
        content = fields.obj("Content", allowed={"ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion"})
        if content is None:
            raise InvalidParameterValueException("Content is required")
        data = _decode_zip(content)
        published = await asyncio.to_thread(
            self.registry.publish_layer,
            layer,
            data,
            description=fields.string("Description", max_len=256),
            runtimes=tuple(fields.strings("CompatibleRuntimes", max_items=15, max_len=32)),
            architectures=tuple(fields.choices("CompatibleArchitectures", allowed=_ARCHITECTURES, max_items=2)),
            license_info=fields.string("LicenseInfo", max_len=512, pattern=".*"),
        )
        return web.json_response(self._layer_doc(published), status=201)

    def _layer_doc(self, layer: LayerVersion) -> dict[str, Any]:
        """The PublishLayerVersion / GetLayerVersion document of a layer version."""
        return {
            "Content": {
                "Location": f"leasehold://code/{layer.sha256}",
                "CodeSha256": _b64_sha(layer.sha256),
                "CodeSize": layer.size,
            },
            "LayerArn": self.registry.layer_arn(layer.name),
            **self._layer_item(layer),
        }

    @staticmethod
    def _layer_item(layer: LayerVersion) -> dict[str, Any]:
        """The LayerVersionsListItem document of a layer version (LicenseInfo only when it has one)."""
        doc: dict[str, Any] = {
            "LayerVersionArn": layer.arn,
            "Version": layer.version,
            "Description": layer.description,
            "CreatedDate": _timestamp(layer.created_ms),
            "CompatibleRuntimes": list(layer.runtimes),
            "CompatibleArchitectures": list(layer.architectures),
        }
        if layer.license_info:
            doc["LicenseInfo"] = layer.license_info
        return doc

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

    @staticmethod
    def _layer_filters(request: web.Request) -> tuple[str, str]:
        """``(CompatibleRuntime, CompatibleArchitecture)`` of a layer listing ("" when not given): only versions
        that list them match, as on AWS."""
        runtime = _single(request, "CompatibleRuntime") or ""
        if runtime and not _RUNTIME_ID.fullmatch(runtime):
            raise InvalidParameterValueException(f"CompatibleRuntime {runtime[:40]!r} is not a runtime identifier")
        architecture = _single(request, "CompatibleArchitecture")
        if architecture is not None and architecture not in _ARCHITECTURES:
            raise InvalidParameterValueException(
                f"CompatibleArchitecture must be x86_64 or arm64, not {architecture[:40]!r}"
            )
        return runtime, architecture or ""

    async def get_layer_version(self, request: web.Request) -> web.Response:
        """GetLayerVersion."""
        name = self._layer_name(request)
        number = _layer_number(request.match_info["number"])
        layer = await asyncio.to_thread(self.registry.layer_version, name, number)
        return web.json_response(self._layer_doc(layer))

    async def delete_layer_version(self, request: web.Request) -> web.Response:
        """DeleteLayerVersion → 204 (also when there is no such version, as on AWS)."""
        name = self._layer_name(request)
        number = _layer_number(request.match_info["number"])
        await asyncio.to_thread(self.registry.delete_layer_version, name, number)
        log.info("event=layer_version_deleted layer=%s version=%d", name, number)
        return web.Response(status=204)

    async def list_layer_versions(self, request: web.Request) -> web.Response:
        """ListLayerVersions: newest first; ``Marker`` is the last version number of the previous page. An
        unknown layer has no versions."""
        name = self._layer_name(request)
        marker, limit = _page(request, most=50, extra={"CompatibleRuntime", "CompatibleArchitecture"})
        runtime, architecture = self._layer_filters(request)
        before = _layer_number(marker, "Marker") if marker else None
        found = await asyncio.to_thread(
            self.registry.layer_versions,
            name,
            before=before,
            limit=limit + 1,
            runtime=runtime,
            architecture=architecture,
        )
        found, doc = _one_page(found, limit, lambda last: str(last.version))
        doc["LayerVersions"] = [self._layer_item(layer) for layer in found]
        return web.json_response(doc)

    async def list_layers(self, request: web.Request) -> web.Response:
        """ListLayers: each layer with its newest (matching) version, by name; ``Marker`` is the last layer
        name of the previous page. ``?find=LayerVersion&Arn=...`` (same path) is GetLayerVersionByArn."""
        if "find" in request.query:
            return await self.get_layer_version_by_arn(request)
        marker, limit = _page(request, most=50, extra={"CompatibleRuntime", "CompatibleArchitecture"})
        runtime, architecture = self._layer_filters(request)
        found = await asyncio.to_thread(
            self.registry.layers, marker=marker, limit=limit + 1, runtime=runtime, architecture=architecture
        )
        found, doc = _one_page(found, limit, lambda last: last.name)
        doc["Layers"] = [
            {
                "LayerName": layer.name,
                "LayerArn": self.registry.layer_arn(layer.name),
                "LatestMatchingVersion": self._layer_item(layer),
            }
            for layer in found
        ]
        return web.json_response(doc)

    async def get_layer_version_by_arn(self, request: web.Request) -> web.Response:
        """GetLayerVersionByArn (``GET /2018-10-31/layers?find=LayerVersion&Arn=...``)."""
        unknown = sorted(set(request.query) - {"find", "Arn"})
        if unknown:
            raise InvalidParameterValueException(f"Unknown query parameter(s): {', '.join(unknown)[:200]}")
        if _single(request, "find") != "LayerVersion":
            raise InvalidParameterValueException("find must be LayerVersion")
        arn = _single(request, "Arn") or ""
        prefix = self.registry.layer_arn("")
        name, _, number = (arn[len(prefix) :] if arn.startswith(prefix) else "").rpartition(":")
        if not _LAYER_NAME.fullmatch(name):
            raise InvalidParameterValueException(f"Arn {arn[:200]!r} is not a layer version ARN of this account")
        layer = await asyncio.to_thread(self.registry.layer_version, name, _layer_number(number, "Arn's version"))
        return web.json_response(self._layer_doc(layer))

    # ------------------------------------------------------------------ invoke

    async def invoke(self, request: web.Request) -> web.Response:
        """Invoke: RequestResponse → 200, Event → 202, DryRun → 204."""
        name, qualifier = _name(request)
        kind = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise InvalidParameterValueException(f"Invalid InvocationType {kind[:40]!r}")
        log_type = request.headers.get("X-Amz-Log-Type", "None")
        if log_type not in ("None", "Tail"):
            raise InvalidParameterValueException(f"Invalid LogType {log_type[:40]!r}")
        client_context = decode_client_context(request.headers.get("X-Amz-Client-Context", ""))
        payload = await _read_body(request, SYNC_PAYLOAD_LIMIT)
        request_id = request[REQUEST_ID]
        if kind == "Event":
            config = await self.invoker.resolve(name, qualifier)
            check_payload(payload, ASYNC_PAYLOAD_LIMIT)
            if self.events is None:
                raise ServiceException("Asynchronous invocation is not available on this frontend")
            await self.events.enqueue(name, config.version, payload, request_id)
            return web.Response(status=202)
        if kind == "DryRun":
            await self.invoker.resolve(name, qualifier)
            return web.Response(status=204)
        self.in_flight += 1
        self._idle.clear()
        try:
            result = await self.invoker.invoke(
                name, qualifier, payload, request_id=request_id, client_context=client_context
            )
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        headers = {
            "X-Amz-Executed-Version": result.executed_version,
            "Content-Type": "application/json",
            "X-Leasehold-Cold-Start": "1" if result.cold else "0",
        }
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if log_type == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(result.logs.encode()[-4096:]).decode()
        return web.Response(body=result.payload, status=200, headers=headers)

    # ------------------------------------------------------------------ admin

    @staticmethod
    def _limit(request: web.Request, default: int = 100) -> int:
        raw = request.query.get("limit", str(default))
        if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
            raise InvalidParameterValueException("limit must be an integer between 1 and 10000")
        return int(raw)

    async def status(self, request: web.Request) -> web.Response:
        """The cluster at a glance: partitions, workers, warm sandboxes per function, queue depth."""
        backend = self.invoker.backend
        partitions = await backend.routes()
        workers: list[dict[str, Any]] = []
        functions: dict[tuple[str, str], int] = {}
        members = self.coordinator.workers() if self.coordinator is not None else {}
        listings = await asyncio.gather(*(backend.list_sandboxes(info.address) for info in members.values()))
        for info, listing in zip(members.values(), listings, strict=True):
            entry: dict[str, Any] = {
                "worker_id": info.worker_id,
                "address": info.address,
                "zone": info.zone,
                "memory_mb": info.capacity_mb,
                "free_memory_mb": None,
                "sandboxes": None,
            }
            if listing is not None:
                entry.update(
                    memory_mb=listing.memory_mb or info.capacity_mb,
                    free_memory_mb=listing.free_memory_mb,
                    sandboxes=len(listing.sandboxes),
                )
                for sandbox in listing.sandboxes:
                    key = (sandbox.function_name, sandbox.function_version or LATEST)
                    functions[key] = functions.get(key, 0) + 1
            workers.append(entry)
        depth = await self.events.depth() if self.events is not None else 0
        return web.json_response(
            {
                "partitions": partitions,
                "workers": workers,
                "functions": [
                    {"name": name, "version": version, "sandboxes": count}
                    for (name, version), count in sorted(functions.items())
                ],
                "queue_depth": depth,
            }
        )

    async def recent_logs(self, request: web.Request) -> web.Response:
        """Recent invocation logs of a function (this frontend's)."""
        name = check_name(request.match_info["name"])
        return web.json_response({"events": self.invoker.logs.recent(name, self._limit(request))})

    async def dead_letters(self, request: web.Request) -> web.Response:
        """Async events of a function that ran out of retries."""
        name = check_name(request.match_info["name"])
        if self.events is None:
            return web.json_response({"items": []})
        return web.json_response({"items": await self.events.dead_letters(name, self._limit(request))})
