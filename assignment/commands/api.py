"""How the people's CLI talks to a frontend: boto3's Lambda and SQS clients and the admin JSON endpoints.

Every failure becomes one :class:`CliError` (a Lambda error type or a transport error name plus a
message), which the commands print as ``error: <Type>: <Message>`` and exit 2.

Every request is signed (SigV4) with the credentials of boto3's standard chain: the ``AWS_ACCESS_KEY_ID``
/ ``AWS_SECRET_ACCESS_KEY`` variables, else the profile (``AWS_PROFILE``, ``AWS_SHARED_CREDENTIALS_FILE``,
``AWS_CONFIG_FILE``; ``leasehold dev`` writes one). The chain's EC2 and container metadata providers are
left out: a Leasehold key never comes from there, and asking them costs seconds off EC2. The admin
endpoints are plain ``urllib`` requests signed with botocore's ``SigV4Auth``.

Example::

    client = lambda_client("http://127.0.0.1:9000")
    client.list_functions()
    status = admin_get("http://127.0.0.1:9000", "/_leasehold/v1/status")
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_lambda import LambdaClient

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "MAX_ADMIN_RESPONSE",
    "CliError",
    "admin_get",
    "admin_path",
    "call",
    "lambda_client",
    "scheduler_client",
    "signed_headers",
    "sqs_client",
    "translated_errors",
]

DEFAULT_ENDPOINT = "http://127.0.0.1:9000"
#: The region requests are signed for when the profile names none (a frontend's default region).
DEFAULT_REGION = "us-east-1"
ENDPOINT_ENV = "LEASEHOLD_ENDPOINT"
#: Read timeout of every call: longer than the longest function (900 s) plus queueing and a cold start.
READ_TIMEOUT_S = 960
CONNECT_TIMEOUT_S = 10
#: The admin endpoints answer small JSON documents; a larger answer is refused rather than read whole.
MAX_ADMIN_RESPONSE = 16 * 1024 * 1024


class CliError(Exception):
    """A failed command: ``type`` is the Lambda error type (or a transport error name)."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message

    def line(self) -> str:
        """The one line printed to stderr."""
        message = " ".join(self.message.split()) or "(no message)"
        return f"error: {self.type}: {message}"


def _session(credentials: tuple[str, str] | None = None) -> Session:
    """A boto3 session with ``credentials`` (id, secret), else the standard chain without the metadata
    services; :class:`CliError` ``NoCredentials`` when the chain finds none."""
    # Imported here, not at the top: `leasehold server`/`worker` import this package and should not pay for boto3.
    import boto3  # noqa: PLC0415
    import botocore.exceptions  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    if credentials is not None:
        return boto3.session.Session(
            aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1], region_name=DEFAULT_REGION
        )
    try:
        core = botocore.session.Session()
        resolver = core.get_component("credential_provider")
        for provider in ("iam-role", "container-role"):
            resolver.remove(provider)
        session = boto3.session.Session(botocore_session=core)
        found = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that is not there
        raise CliError(type(exc).__name__, str(exc)) from exc
    if found is None:
        raise CliError(
            "NoCredentials",
            "no credentials: set AWS_PROFILE (leasehold dev writes the profile 'leasehold' and prints the "
            "export line) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (leasehold keys create)",
        )
    return session


def lambda_client(endpoint: str, *, retries: int = 2, credentials: tuple[str, str] | None = None) -> LambdaClient:
    """boto3's Lambda client for the frontend at ``endpoint``, signing with ``credentials`` (id, secret) or
    the standard chain's (see the module docstring); the region is the profile's, else us-east-1.

    ``retries`` is the number of attempts after the first; invocations pass 0, since retrying one that
    timed out on the way back could run the function twice.
    """
    client: LambdaClient = _client("lambda", endpoint, retries, credentials)
    return client


def sqs_client(endpoint: str, *, retries: int = 2) -> Any:
    """boto3's SQS client for the frontend at ``endpoint`` (which serves SQS beside Lambda), made like
    :func:`lambda_client`. Receives pass ``retries=0``: a retried receive could hide messages it took."""
    return _client("sqs", endpoint, retries, None)


def scheduler_client(endpoint: str, *, retries: int = 2) -> Any:
    """boto3's EventBridge Scheduler client for the frontend at ``endpoint`` (which serves the schedules API
    beside Lambda), made like :func:`lambda_client`."""
    return _client("scheduler", endpoint, retries, None)


def _client(service: str, endpoint: str, retries: int, credentials: tuple[str, str] | None) -> Any:
    import botocore.config  # noqa: PLC0415 (lazy, as in _session)

    session = _session(credentials)
    config = botocore.config.Config(
        region_name=session.region_name or DEFAULT_REGION,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": 1 + retries, "mode": "standard"},
        user_agent_extra="leasehold-cli",
    )
    try:
        return session.client(service, endpoint_url=endpoint, config=config)  # type: ignore[call-overload]
    except ValueError as exc:  # botocore refuses a malformed endpoint URL with a ValueError
        raise CliError("InvalidEndpoint", f"{endpoint!r}: {exc}") from exc


def signed_headers(method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus ``Host``, ``X-Amz-Date`` and ``Authorization`` of a bodiless request to ``url``,
    signed with botocore's ``SigV4Auth`` and the standard chain's credentials."""
    from botocore.auth import SigV4Auth  # noqa: PLC0415 (lazy, as in _session)
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415

    session = _session()
    credentials = session.get_credentials()
    assert credentials is not None  # _session refused a chain without
    # Host is set here, and sent as signed: urllib would otherwise write its own, perhaps another form.
    request = AWSRequest(method=method, url=url, headers={**headers, "Host": urllib.parse.urlsplit(url).netloc})
    SigV4Auth(credentials.get_frozen_credentials(), "lambda", session.region_name or DEFAULT_REGION).add_auth(request)
    return dict(request.headers.items())


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Turn botocore's errors raised inside the block into :class:`CliError`."""
    import botocore.exceptions  # noqa: PLC0415 (lazy, as in lambda_client)

    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise CliError(str(error.get("Code") or "ServiceException"), str(error.get("Message") or exc)) from exc
    except botocore.exceptions.ParamValidationError as exc:
        raise CliError("InvalidParameterValueException", str(exc.kwargs.get("report", exc))) from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise CliError("EndpointConnectionError", str(exc)) from exc
    except botocore.exceptions.ReadTimeoutError as exc:
        raise CliError("ReadTimeout", str(exc)) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise CliError(type(exc).__name__, str(exc)) from exc


def call(operation: Any, **params: Any) -> dict[str, Any]:
    """Run one boto3 operation; botocore's errors become :class:`CliError`.

    The answer has no ``ResponseMetadata``; its request id, when the frontend sent one, is ``RequestId``.
    """
    with translated_errors():
        answer: dict[str, Any] = operation(**params)
    metadata = answer.pop("ResponseMetadata", {})
    if metadata.get("RequestId") and "RequestId" not in answer:
        answer["RequestId"] = metadata["RequestId"]
    return answer


def admin_path(kind: str, function: str | None = None, **query: int) -> str:
    """``/_leasehold/v1/<kind>[/<function>][?query]`` with the function name quoted as one path segment."""
    path = f"/_leasehold/v1/{kind}"
    if function is not None:
        path += "/" + urllib.parse.quote(function, safe="")
    if query:
        path += "?" + urllib.parse.urlencode(query)
    return path


def admin_get(endpoint: str, path: str) -> dict[str, Any]:
    """GET one admin JSON document; a Lambda error answer or a transport failure raises :class:`CliError`."""
    url = endpoint.rstrip("/") + path
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError as exc:
        raise CliError("InvalidEndpoint", f"{endpoint!r}: {exc}") from exc
    if scheme not in ("http", "https"):
        raise CliError("InvalidEndpoint", f"{endpoint!r} is not an http(s) URL")
    headers = signed_headers("GET", url, {"Accept": "application/json", "User-Agent": "leasehold-cli"})
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=READ_TIMEOUT_S) as response:
            body = response.read(MAX_ADMIN_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        raise _http_error(exc) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise CliError("EndpointConnectionError", f"could not reach {url}: {reason}") from exc
    if len(body) > MAX_ADMIN_RESPONSE:
        raise CliError("ServiceException", f"answer from {url} is larger than {MAX_ADMIN_RESPONSE} bytes")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError("ServiceException", f"answer from {url} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise CliError("ServiceException", f"answer from {url} is not a JSON object")
    return document


def _http_error(exc: urllib.error.HTTPError) -> CliError:
    """A Lambda error answer: the type from ``x-amzn-ErrorType`` (``Type:detail`` form allowed), the message
    from the JSON body (``Message`` or ``message``)."""
    header = exc.headers.get("x-amzn-ErrorType", "") if exc.headers else ""
    type_ = header.split(":", 1)[0].strip()
    message = ""
    try:
        document = json.loads(exc.read(64 * 1024) or b"{}")
    except (ValueError, UnicodeDecodeError, OSError):
        document = {}
    if isinstance(document, dict):
        message = str(document.get("Message") or document.get("message") or "")
        type_ = type_ or str(document.get("__type") or "")
    if not type_:
        type_ = "ServiceException" if exc.code >= 500 else f"HTTP{exc.code}"
    return CliError(type_, message or f"HTTP {exc.code} {exc.reason}")
