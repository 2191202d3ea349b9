"""AWS Signature Version 4 verification for the Lambda HTTP API: what a request claims, and whether it holds.

Two steps, with a key lookup between them (done by the caller, who owns the database and the cache):

1. :func:`read_claim` parses the ``Authorization`` header (or, for a presigned GET, the ``X-Amz-*`` query
   parameters) and checks everything that needs no secret: the parts are there and well formed, ``host``
   and ``x-amz-date`` are signed, the credential scope is ``<date>/<region>/<service>/aws4_request``
   with this frontend's region and the service the request is for (``lambda``, or ``sqs`` for the SQS
   API), and ``X-Amz-Date`` is within five minutes of ``now`` (a presigned URL: not past its
   ``X-Amz-Expires``).
2. :func:`check_signature` recomputes the signature with botocore's own signer (``SigV4Auth``, or
   ``SigV4QueryAuth`` for presigned URLs) over an ``AWSRequest`` rebuilt from what arrived: the raw path
   and query, exactly the signed headers, the request's own timestamp and the body's SHA-256 (or the
   signed ``x-amz-content-sha256``, which must then be the body's). botocore normalises the path for the
   ``lambda`` service (dot segments, double slashes, percent-encoding again) and sorts the raw query
   exactly as SDKs do when they sign, so no canonicalisation is written here. The two signatures are
   compared with :func:`hmac.compare_digest`.

Every refusal is the Lambda API's error with AWS's wording (``IncompleteSignatureException``,
``InvalidSignatureException``, ``MissingAuthenticationTokenException``); a hostile header is echoed at most
:data:`MAX_ECHO` characters. The module is pure: time is an argument, nothing is read or written.

Example::

    request = HttpRequest("GET", "/2015-03-31/functions/", (("host", "127.0.0.1:9000"), ...), b"")
    claim = read_claim(request, region="us-east-1", now=time.time())
    check_signature(request, claim, secret_of(claim.access_key_id))
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import re
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from botocore.auth import UNSIGNED_PAYLOAD, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from assignment.frontend.types import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

__all__ = [
    "ALGORITHM",
    "CLOCK_SKEW_S",
    "MAX_ECHO",
    "MAX_PRESIGN_EXPIRES_S",
    "SERVICE",
    "SIGNATURE_MISMATCH",
    "Claim",
    "HttpRequest",
    "check_signature",
    "read_claim",
]

ALGORITHM = "AWS4-HMAC-SHA256"
#: The signing name of the Lambda API (the fourth element of a credential scope).
SERVICE = "lambda"
#: How far ``X-Amz-Date`` may be from the frontend's clock, either way.
CLOCK_SKEW_S = 300
#: The longest validity of a presigned URL (AWS: seven days).
MAX_PRESIGN_EXPIRES_S = 604_800
#: How much of a header a message repeats.
MAX_ECHO = 256
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)

_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_HEADER_PARTS = ("Credential", "Signature", "SignedHeaders")
_QUERY_PARTS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders")
_QUERY_AUTH = frozenset({*_QUERY_PARTS, "X-Amz-Expires", "X-Amz-Security-Token"})
#: Headers a request may carry once only: which one would the signature be about?
_SINGLE = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")


@dataclass(frozen=True)
class HttpRequest:
    """What arrived: the method, the raw request-target (path and query exactly as on the wire), every
    header in order (a repeated one repeated) and the body."""

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    _by_name: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, list[str]] = {}
        for key, value in self.headers:
            by_name.setdefault(key.lower(), []).append(value)
        object.__setattr__(self, "_by_name", by_name)  # frozen: set once, here

    def values(self, name: str) -> list[str]:
        """Every value of the header ``name`` (lower case)."""
        return self._by_name.get(name, [])


@dataclass(frozen=True, slots=True)
class Claim:
    """Who a request says signed it, when, and over what: checked for form, scope and time, not yet for
    the signature."""

    access_key_id: str
    #: ``X-Amz-Date`` (``YYYYMMDDTHHMMSSZ``).
    date: str
    region: str
    #: The signed header names, as listed (lower case).
    signed_headers: tuple[str, ...]
    signature: str
    #: ``X-Amz-Security-Token`` (header or query), for temporary credentials.
    session_token: str | None
    #: Query-string (presigned) authentication rather than an ``Authorization`` header.
    presigned: bool = False
    #: The signing name of the scope (``lambda``, ``sqs``).
    service: str = SERVICE


def _echo(text: str) -> str:
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "..."


def _fmt(epoch_s: float) -> str:
    return time.strftime(_TIMESTAMP, time.gmtime(epoch_s))


def _split_target(target: str) -> tuple[str, str]:
    """``(path, query)`` of a request-target; an absolute-form target (``http://host/path``) too."""
    if not target.startswith("/"):
        parts = urllib.parse.urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        pairs.append((urllib.parse.unquote(key), urllib.parse.unquote(value)))
    return pairs


def read_claim(request: HttpRequest, *, region: str, now: float, service: str = SERVICE) -> Claim:
    """The request's claim, checked for everything that needs no secret (see the module docstring), its
    scope naming ``service``."""
    for name in _SINGLE:
        if len(request.values(name)) > 1:
            raise IncompleteSignatureException(f"The {name} header may be given only once")
    authorization = request.values("authorization")
    query = _query_pairs(_split_target(request.target)[1])
    presigned = any(key in _QUERY_AUTH for key, _ in query)
    if authorization and presigned:
        raise IncompleteSignatureException(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization "
            "header should be specified"
        )
    if authorization:
        claim = _header_claim(request, authorization[0], service)
        _check_clock(claim.date, now, expires_s=None)
    elif presigned:
        claim, expires_s = _query_claim(request, query, service)
        _check_clock(claim.date, now, expires_s=expires_s)
    else:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    if claim.region != region:
        raise InvalidSignatureException(f"Credential should be scoped to a valid region, not '{_echo(claim.region)}'.")
    return claim


def _header_claim(request: HttpRequest, header: str, service: str) -> Claim:
    algorithm, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for raw in rest.split(","):
            part = raw.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise IncompleteSignatureException(
                    f"'{_echo(part)}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                    f"'{_echo(header)}'."
                )
            if key in params:
                raise IncompleteSignatureException(f"'{_echo(key)}' given more than once in the Authorization header")
            params[key] = value
    dates = request.values("x-amz-date")
    missing = [f"Authorization header requires '{part}' parameter." for part in _HEADER_PARTS if part not in params]
    if not dates:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        raise IncompleteSignatureException(" ".join(missing) + f" Authorization={_echo(header)}")
    signed = tuple(params["SignedHeaders"].split(";"))
    if "host" not in signed:
        raise IncompleteSignatureException("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if "x-amz-date" not in signed:
        raise IncompleteSignatureException("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    tokens = request.values("x-amz-security-token")
    claim = _scoped(params["Credential"], dates[0], signed, params["Signature"], service)
    return dataclasses.replace(claim, session_token=tokens[0] if tokens else None)


def _query_claim(request: HttpRequest, query: list[tuple[str, str]], service: str) -> tuple[Claim, int]:
    params: dict[str, str] = {}
    for key, value in query:
        if key in _QUERY_AUTH:
            if key in params:
                raise IncompleteSignatureException(f"The query parameter {key} may be given only once")
            params[key] = value
    if any(part not in params for part in _QUERY_PARTS):
        names = ", ".join(f"'{part}'" for part in _QUERY_PARTS)
        raise IncompleteSignatureException(
            f"AWS query-string parameters must include {names}. Re-examine the query-string parameters."
        )
    if request.method != "GET":
        raise IncompleteSignatureException("Query-string (presigned) authentication is allowed for GET requests only")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{_echo(params['X-Amz-Algorithm'])}'")
    expires = params.get("X-Amz-Expires", "")
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES_S:
        raise IncompleteSignatureException(
            f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_PRESIGN_EXPIRES_S}, not '{_echo(expires)}'"
        )
    signed = tuple(params["X-Amz-SignedHeaders"].split(";"))
    if "host" not in signed:
        raise IncompleteSignatureException("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    claim = _scoped(params["X-Amz-Credential"], params["X-Amz-Date"], signed, params["X-Amz-Signature"], service)
    return dataclasses.replace(claim, session_token=params.get("X-Amz-Security-Token"), presigned=True), int(expires)


def _scoped(credential: str, date: str, signed: tuple[str, ...], signature: str, expected: str) -> Claim:
    """The claim of a credential ``keyid/date/region/service/aws4_request``, its scope checked."""
    if not _DATE.fullmatch(date) or _epoch(date) is None:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{_echo(date)}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{_echo(credential)}'"
        )
    key_id, day, region, service, terminator = parts
    if terminator != "aws4_request":
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{_echo(terminator)}'."
        )
    if service != expected:
        raise InvalidSignatureException(f"Credential should be scoped to correct service: '{expected}'.")
    if day != date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{_echo(day)}' != '{date[:8]}', from '{date}'."
        )
    return Claim(key_id, date, region, signed, signature, None, service=service)


def _epoch(date: str) -> int | None:
    """Seconds since the epoch of a ``YYYYMMDDTHHMMSSZ`` date, None if it names no instant. (By hand: it
    runs for every request, and ``time.strptime`` alone would cost a tenth of the verification.)"""
    try:
        moment = datetime.datetime(
            int(date[0:4]), int(date[4:6]), int(date[6:8]), int(date[9:11]), int(date[11:13]), int(date[13:15]),
            tzinfo=datetime.UTC,
        )  # fmt: skip
    except ValueError:
        return None
    return int(moment.timestamp())


def _check_clock(date: str, now: float, *, expires_s: int | None) -> None:
    """``date`` within :data:`CLOCK_SKEW_S` of ``now``; a presigned URL also not past ``expires_s``."""
    signed_at = _epoch(date) or 0  # its form was checked by _scoped
    now_s = int(now)
    if signed_at > now_s + CLOCK_SKEW_S:
        raise InvalidSignatureException(
            f"Signature not yet current: {date} is still later than {_fmt(now_s + CLOCK_SKEW_S)} "
            f"({_fmt(now_s)} + 5 min.)"
        )
    if expires_s is None and signed_at < now_s - CLOCK_SKEW_S:
        raise InvalidSignatureException(
            f"Signature expired: {date} is now earlier than {_fmt(now_s - CLOCK_SKEW_S)} ({_fmt(now_s)} - 5 min.)"
        )
    if expires_s is not None and signed_at + expires_s < now_s:
        raise InvalidSignatureException(
            f"Signature expired: {date} is now earlier than {_fmt(now_s - expires_s)} "
            f"({_fmt(now_s)} - {expires_s} sec.)"
        )


class _AsReceived:
    """What botocore's signers get told here, so they recompute the client's signature rather than sign
    anew: exactly the headers the client signed (botocore would drop a few, e.g. ``user-agent``, and add
    ``host``) and the payload hash known here (botocore would hash the body again)."""

    def __init__(self, credentials: Credentials, service: str, region: str, payload_hash: str) -> None:
        super().__init__(credentials, service, region)  # type: ignore[call-arg]  # the botocore signer's
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        """The rebuilt request holds only the signed headers: all of them count."""
        headers: HTTPHeaders = request.headers
        return headers

    def payload(self, request: AWSRequest) -> str:
        """The body's hash, computed once by :func:`check_signature`."""
        return self._payload_hash


class _Header(_AsReceived, SigV4Auth):
    """botocore's ``Authorization`` header signer, recomputing."""


class _Query(_AsReceived, SigV4QueryAuth):
    """botocore's presigned-URL signer, recomputing."""


def check_signature(request: HttpRequest, claim: Claim, secret: str) -> None:
    """:class:`InvalidSignatureException` unless ``claim.signature`` is the SigV4 signature of ``request``
    with ``secret``."""
    path, query = _split_target(request.target)
    if claim.presigned:
        # The canonical query string is every parameter but the signature itself.
        query = "&".join(pair for pair in query.split("&") if pair.partition("=")[0] != "X-Amz-Signature")
    signed = set(claim.signed_headers)
    headers = HTTPHeaders()
    for name, value in request.headers:
        if name.lower() in signed:
            headers[name.lower()] = value  # HTTPHeaders appends: a repeated header keeps every value
    body_hash = hashlib.sha256(request.body).hexdigest()
    content_hash = headers.get("x-amz-content-sha256")
    if content_hash is not None and content_hash != body_hash:
        raise InvalidSignatureException(SIGNATURE_MISMATCH)  # the signed hash is not this body's
    # A presigned URL's payload is UNSIGNED-PAYLOAD (AWS's documented form) or, as botocore presigns, the
    # hash of the body (a GET's is empty).
    payloads = (UNSIGNED_PAYLOAD, body_hash) if claim.presigned else (body_hash,)
    credentials = Credentials(claim.access_key_id, secret, claim.session_token)
    url = "http://leasehold" + path + (f"?{query}" if query else "")
    matched = False
    for payload in payloads:
        aws = AWSRequest(method=request.method, url=url, data=request.body)
        aws.headers = headers  # set, not passed: the constructor wants a Mapping, which would drop repeats
        aws.context["timestamp"] = claim.date
        signer = (_Query if claim.presigned else _Header)(credentials, claim.service, claim.region, payload)
        try:
            canonical = signer.canonical_request(aws)
            expected = signer.signature(signer.string_to_sign(aws, canonical), aws)
        except (UnicodeError, ValueError):
            raise InvalidSignatureException(SIGNATURE_MISMATCH) from None  # e.g. undecodable header bytes
        matched |= hmac.compare_digest(expected.encode(), claim.signature.encode("utf-8", "replace"))
    if not matched:
        raise InvalidSignatureException(SIGNATURE_MISMATCH)
