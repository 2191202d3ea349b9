"""boto3 Lambda (and SQS) clients for tests, signed with the key of the platform they talk to, closed by the suite at
the end of the module that made them; and the same signing for hand-built requests.

Every platform a test starts (:func:`tests.frontend.harness.running_platform`, a ``leasehold frontend``
process, the local cluster, ``leasehold dev``) :func:`remember`\\ s its admin key for its endpoint, so
``lambda_client(endpoint)`` signs as that platform's admin without each test carrying the key; a test
about other credentials passes ``credentials=``. An endpoint nobody remembered is an error rather than a
silent unsigned client.

A botocore client keeps its HTTP connections pooled until it is closed; left to the garbage collector,
each pooled socket is reported as an unclosed-socket ``ResourceWarning`` inside whatever test happens to
be running then, which ``filterwarnings = error`` turns into a failure of an innocent test. So every
client made here is kept until :func:`close_all` (an autouse fixture in ``tests/conftest.py``), and an
Invoke's ``Payload`` is read as the answer arrives: a stream a test never reads would hold its connection
out of the pool, and out of reach of ``close``, until the garbage collector found it.

Example::

    remember("http://127.0.0.1:9000", ("AKIA...", "secret"))
    lam = lambda_client("http://127.0.0.1:9000")
    lam.list_functions()
    headers = signed_headers("GET", "http://127.0.0.1:9000/_leasehold/v1/status")
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.response import StreamingBody

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

__all__ = [
    "KeyPair",
    "close_all",
    "credentials_for",
    "lambda_client",
    "long_poll_while",
    "remember",
    "scheduler_client",
    "signed_headers",
    "sqs_client",
]

#: An access key id and its secret (a session token third, for function credentials).
KeyPair = tuple[str, str] | tuple[str, str, str]

_open: list[Any] = []
_known: dict[str, KeyPair] = {}


def remember(endpoint: str, credentials: KeyPair) -> None:
    """Sign requests to ``endpoint`` with ``credentials`` from now on."""
    _known[endpoint.rstrip("/")] = credentials


def credentials_for(endpoint: str) -> KeyPair:
    """The credentials remembered for ``endpoint``; ``LookupError`` if none were."""
    try:
        return _known[endpoint.rstrip("/")]
    except KeyError:
        raise LookupError(f"no credentials remembered for {endpoint}; pass credentials=") from None


def lambda_client(
    endpoint: str, *, read_timeout_s: float = 60.0, max_attempts: int = 1, credentials: KeyPair | None = None
) -> LambdaClient:
    """A boto3 Lambda client for ``endpoint``: signed with ``credentials`` (default: the endpoint's
    remembered key), us-east-1, ``max_attempts`` tries."""
    client: LambdaClient = _client("lambda", endpoint, read_timeout_s, max_attempts, credentials)
    client.meta.events.register("after-call.lambda.Invoke", _read_payload)
    return client


def sqs_client(
    endpoint: str, *, read_timeout_s: float = 60.0, max_attempts: int = 1, credentials: KeyPair | None = None
) -> Any:
    """A boto3 SQS client for ``endpoint``, made like :func:`lambda_client`."""
    return _client("sqs", endpoint, read_timeout_s, max_attempts, credentials)


def scheduler_client(
    endpoint: str, *, read_timeout_s: float = 60.0, max_attempts: int = 1, credentials: KeyPair | None = None
) -> Any:
    """A boto3 EventBridge Scheduler client for ``endpoint``, made like :func:`lambda_client`."""
    return _client("scheduler", endpoint, read_timeout_s, max_attempts, credentials)


def _client(service: str, endpoint: str, read_timeout_s: float, max_attempts: int, credentials: KeyPair | None) -> Any:
    key = credentials if credentials is not None else credentials_for(endpoint)
    client = boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        aws_session_token=key[2] if len(key) > 2 else None,
        config=Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            read_timeout=read_timeout_s,
            max_pool_connections=64,
        ),
    )
    _open.append(client)
    return client


def signed_headers(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    *,
    credentials: KeyPair | None = None,
    region: str = "us-east-1",
    service: str = "lambda",
) -> dict[str, str]:
    """``headers`` plus ``Host``, ``X-Amz-Date`` and ``Authorization``: the request signed by botocore's
    ``SigV4Auth`` as boto3 would (default credentials: those remembered for the URL's endpoint)."""
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0]
    key = credentials if credentials is not None else credentials_for(f"{scheme}://{netloc}")
    request = AWSRequest(method=method, url=url, headers={**(headers or {}), "Host": netloc}, data=body)
    token = key[2] if len(key) > 2 else None
    SigV4Auth(Credentials(key[0], key[1], token), service, region).add_auth(request)
    return dict(request.headers.items())


def _read_payload(parsed: dict[str, Any], **_kwargs: Any) -> None:
    """Read an Invoke answer's payload now (its connection goes back to the pool) and hand it on in memory."""
    body = parsed.get("Payload")
    if isinstance(body, StreamingBody):
        data = body.read()
        body.close()
        parsed["Payload"] = StreamingBody(io.BytesIO(data), len(data))


def close_all() -> None:
    """Close every client :func:`lambda_client` made so far (their pooled connections with them)."""
    while _open:
        _open.pop().close()


def long_poll_while(receiver: Any, url: str, action: Callable[[], object], wait_s: int = 20) -> tuple[Any, float]:
    """Start ``receiver.receive_message(QueueUrl=url, WaitTimeSeconds=wait_s)`` in a thread, run ``action``
    once the receive is under way, and return the receive's answer and the seconds it all took."""
    got: list[Any] = []
    started = threading.Event()

    def poll() -> None:
        started.set()
        got.append(receiver.receive_message(QueueUrl=url, WaitTimeSeconds=wait_s))

    waiter = threading.Thread(target=poll)
    begun = time.monotonic()
    waiter.start()
    started.wait()
    action()
    waiter.join(wait_s + 5)
    return got[0], time.monotonic() - begun
