"""boto3 Lambda clients for tests, closed by the suite at the end of the module that made them.

A botocore client keeps its HTTP connections pooled until it is closed; left to the garbage collector,
each pooled socket is reported as an unclosed-socket ``ResourceWarning`` inside whatever test happens to
be running then, which ``filterwarnings = error`` turns into a failure of an innocent test. So every
client made here is kept until :func:`close_all` (an autouse fixture in ``tests/conftest.py``), and an
Invoke's ``Payload`` is read as the answer arrives: a stream a test never reads would hold its connection
out of the pool, and out of reach of ``close``, until the garbage collector found it.

Example::

    lam = lambda_client("http://127.0.0.1:9000")
    lam.list_functions()
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.response import StreamingBody

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

__all__ = ["close_all", "lambda_client"]

_open: list[LambdaClient] = []


def lambda_client(endpoint: str, *, read_timeout_s: float = 60.0, max_attempts: int = 1) -> LambdaClient:
    """A boto3 Lambda client for ``endpoint``: dummy credentials, us-east-1, ``max_attempts`` tries."""
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            read_timeout=read_timeout_s,
            max_pool_connections=64,
        ),
    )
    client.meta.events.register("after-call.lambda.Invoke", _read_payload)
    _open.append(client)
    return client


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
