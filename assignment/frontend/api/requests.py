"""Reading Lambda HTTP API requests: bodies, JSON, path and query parameters, pages, code zips, field sets.

Every resource module of :mod:`assignment.frontend.api` parses its requests with these helpers, so a limit
or a wording is written once; what is wrong is raised as the Lambda error AWS answers for it.
:data:`REQUEST_ID` is the request's id, set by the error middleware of :mod:`assignment.frontend.api.app`;
:data:`BODY` the body, once the SigV4 middleware (:mod:`assignment.frontend.api.auth`) has read it to
check its hash (:func:`read_body` then answers from it).

Example::

    name, qualifier = function_name(request)
    fields = Fields(await read_json(request), allowed={"ReservedConcurrentExecutions"})
    marker, limit = page(request, most=50)
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import re
import zipfile
from collections.abc import Collection

import botocore.session
from aiohttp import web

from assignment.frontend.types import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestTooLargeException,
)
from assignment.frontend.validation import Fields, Home, parse_function_name

__all__ = [
    "ARCHITECTURES",
    "BODY",
    "HOME",
    "MAX_BODY_BYTES",
    "REQUEST_ID",
    "UNSUPPORTED",
    "decode_zip",
    "function_name",
    "is_sqs_request",
    "layer_number",
    "page",
    "read_body",
    "read_json",
    "reject_unsupported",
    "required_qualifier",
    "revision_id",
    "single",
    "sqs_operation",
]

#: The request id of a request (also its ``x-amzn-RequestId``).
REQUEST_ID = web.RequestKey("request_id", str)

#: The whole body of a request, when a middleware had to read it before the handler.
BODY = web.RequestKey("body", bytes)
#: The account and region the application serves (set by :mod:`assignment.frontend.api.app`).
HOME = web.AppKey("home", Home)

#: The ``X-Amz-Target`` prefix of an SQS request (boto3's ``sqs`` client: AWS JSON 1.0, ``POST /``).
_SQS_TARGET = "AmazonSQS."

#: Largest management request body (AWS: about 70 MB, a 50 MB zip in base64).
MAX_BODY_BYTES = 69_905_067
#: Largest code zip (decoded) and unzipped size with layers.
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 262_144_000
#: Largest JSON management request body, in bytes (a larger one is RequestTooLargeException): the
#: whole-request limit, since CreateFunction and UpdateFunctionCode carry a base64 zip. Nesting is not
#: limited separately; JSON too deeply nested to parse is InvalidRequestContentException.
_JSON_BODY_LIMIT = MAX_BODY_BYTES

#: Known to AWS but refused here (they would change behaviour we do not have).
UNSUPPORTED = frozenset(
    {
        "ImageConfig",
        "FileSystemConfigs",
        "CodeSigningConfigArn",
        "CapacityProviderConfig",
        "DurableConfig",
        "AcceleratorConfig",
        "TenancyConfig",
        "PublishTo",
        "RuntimeConfig",
    }
)
#: The architectures the model knows (functions and layers).
ARCHITECTURES = frozenset({"x86_64", "arm64"})
#: Longest ``RevisionId`` accepted.
_MAX_REVISION = 128
#: Largest ``Marker`` accepted by the list operations.
_MAX_MARKER = 1024
#: Largest number AWS allows for a layer version (a ``long``).
_MAX_LONG = 2**63 - 1
_LAYER_NUMBER = re.compile(r"[0-9]{1,19}")


def is_sqs_request(request: web.Request) -> bool:
    """Whether a request is for the SQS API (``POST /``: no Lambda operation has that path)."""
    return request.method == "POST" and request.path == "/"


def is_scheduler_request(request: web.Request) -> bool:
    """Whether a request is for EventBridge Scheduler's API (``/schedules``: no Lambda path starts so)."""
    return request.path == "/schedules" or request.path.startswith("/schedules/")


def sqs_operation(request: web.Request) -> str | None:
    """The SQS operation an SQS request names (``X-Amz-Target: AmazonSQS.<Operation>``), or ``None``."""
    target = request.headers.get("X-Amz-Target", "")
    if not is_sqs_request(request) or not target.startswith(_SQS_TARGET):
        return None
    return target[len(_SQS_TARGET) :]


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or :class:`RequestTooLargeException` as soon as it is over ``limit`` bytes."""
    if BODY in request:
        body = request[BODY]
        if len(body) > limit:
            raise RequestTooLargeException(f"Request must be smaller than {limit} bytes")
        return body
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


async def read_json(request: web.Request, limit: int = _JSON_BODY_LIMIT) -> object:
    """The JSON body (``{}`` when empty); :class:`InvalidRequestContentException` when it is not JSON."""
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequestContentException("Could not parse request body into json") from None


def single(request: web.Request, key: str) -> str | None:
    """A query parameter given at most once (``None`` when absent)."""
    values = request.query.getall(key, [])
    if len(values) > 1:
        raise InvalidParameterValueException(f"{key} given more than once")
    return values[0] if values else None


def function_name(request: web.Request, *, qualified: bool = True) -> tuple[str, str | None]:
    """``(name, qualifier)`` of the ``{name}`` path segment (a name or an ARN) and ``?Qualifier``; with
    ``qualified=False`` a qualifier is refused."""
    home = request.app[HOME]
    name, qualifier = parse_function_name(request.match_info["name"], single(request, "Qualifier"), home=home)
    if not qualified and qualifier is not None:
        raise InvalidParameterValueException("This operation does not take a qualifier")
    return name, qualifier


def required_qualifier(request: web.Request) -> tuple[str, str]:
    """``(name, qualifier)`` of an operation on one version: the qualifier must be given."""
    name, qualifier = function_name(request)
    if qualifier is None:
        raise InvalidParameterValueException("Qualifier is required")
    return name, qualifier


def page(
    request: web.Request, *, most: int, extra: Collection[str] = (), default: int | None = None
) -> tuple[str, int]:
    """``(Marker, MaxItems)`` of a list request; MaxItems is 1..``most`` (``default``, else ``most``, when
    absent). Query parameters other than these and ``extra`` are refused."""
    unknown = sorted(set(request.query) - {"Marker", "MaxItems", *extra})
    if unknown:
        raise InvalidParameterValueException(f"Unknown query parameter(s): {', '.join(unknown)[:200]}")
    marker = single(request, "Marker") or ""
    if len(marker) > _MAX_MARKER:
        raise InvalidParameterValueException(f"Marker must be at most {_MAX_MARKER} characters")
    raw = single(request, "MaxItems")
    if raw is None:
        return marker, most if default is None else default
    if not re.fullmatch("[0-9]{1,6}", raw) or not 1 <= int(raw) <= most:
        raise InvalidParameterValueException(f"MaxItems must be an integer between 1 and {most}, not {raw[:20]!r}")
    return marker, int(raw)


def layer_number(raw: str, what: str = "VersionNumber") -> int:
    """A layer version number from a path or marker: 1 to 2**63-1."""
    if not _LAYER_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= _MAX_LONG:
        raise InvalidParameterValueException(f"{what} must be a positive integer, not {raw[:40]!r}")
    return int(raw)


def reject_unsupported(fields: Fields) -> None:
    """:class:`InvalidParameterValueException` for the first (by name) field of :data:`UNSUPPORTED` given."""
    for key in sorted(UNSUPPORTED):
        if fields.has(key):
            raise InvalidParameterValueException(f"{key} is not supported by Leasehold")


def revision_id(fields: Fields) -> str | None:
    """The RevisionId a write is conditional on, or None. The model gives no bound; Leasehold's are 32 hex
    digits, so a longer one is refused early."""
    return fields.string("RevisionId", max_len=_MAX_REVISION) if fields.has("RevisionId") else None


def decode_zip(fields: Fields, key: str = "ZipFile") -> bytes:
    """A base64 zip from a request, checked: a readable archive within the size limits."""
    for other in ("S3Bucket", "S3Key", "S3ObjectVersion", "S3ObjectStorageMode", "ImageUri"):
        if fields.has(other):
            raise InvalidParameterValueException(f"{other} is not supported by Leasehold: send ZipFile")
    if fields.has("SourceKMSKeyArn") and fields.string("SourceKMSKeyArn", max_len=2048):
        raise InvalidParameterValueException(
            "SourceKMSKeyArn is not supported by Leasehold: code is stored without a customer managed key"
        )
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


@functools.cache
def runtime_identifiers() -> frozenset[str]:
    """The Runtime enum of botocore's Lambda model: every runtime AWS names. A layer may declare any of
    them compatible (it is a label); a function's runtime must also run here
    (:func:`~assignment.frontend.validation.worker_runtime`)."""
    shape = botocore.session.get_session().get_service_model("lambda").shape_for("Runtime")
    return frozenset(getattr(shape, "enum", ()))
