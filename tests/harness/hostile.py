"""A hostile function: from inside its sandbox it tries what issue #13's "Why" lists, and reports.

Deployed with boto3 like any function, invoked with an event naming what to try:

- ``connect``: ``{name: "host:port"}``; each answer is the errno name (``EACCES``...), ``TimeoutError``,
  ``connected`` or the first line of an HTTP answer;
- ``endpoint`` (the Lambda API as the function can reach it): an unsigned request, one signed with a
  made-up key, and then, with the credentials of its own environment, an Invoke of ``invoke`` (a
  function name) and the calls a function must not make (ListFunctions, GetFunction, CreateFunction).

Every answer is reported, nothing is asserted inside: the tests decide.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

__all__ = ["HOSTILE", "REFUSED", "deploy", "hostile_zip"]

REFUSED = ("EACCES", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "TimeoutError")
"""What a refused connection reports (a deny rule, nothing listening, no route, dropped)."""
_ECHO = "def handler(event, context):\n    return {'echo': event}\n"

HOSTILE = """
import errno, json, os, socket, urllib.error, urllib.request

def _connect(target):
    host, port = target.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=3)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc)) if exc.errno else type(exc).__name__
    with s:
        try:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            return s.recv(64).decode(errors="replace").split("\\r\\n")[0] or "connected"
        except OSError:
            return "connected"

def _error(exc):
    response = getattr(exc, "response", None)
    if response is not None:
        return response["Error"]["Code"]
    return type(exc).__name__ + ": " + str(exc)

def handler(event, context):
    out = {"connect": {name: _connect(target) for name, target in event.get("connect", {}).items()}}
    endpoint = event.get("endpoint")
    if endpoint:
        try:
            with urllib.request.urlopen(endpoint + "/2015-03-31/functions/", timeout=5) as answer:
                out["unsigned"] = answer.status
        except urllib.error.HTTPError as exc:
            out["unsigned"] = exc.headers.get("x-amzn-ErrorType") or exc.code
        except OSError as exc:
            out["unsigned"] = type(exc).__name__
        import boto3
        from botocore.config import Config
        config = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)
        forged = boto3.client("lambda", endpoint_url=endpoint, region_name=os.environ["AWS_REGION"],
                              aws_access_key_id="AKIAFORGEDFORGED0000", aws_secret_access_key="x" * 40,
                              config=config)
        try:
            forged.list_functions()
            out["forged"] = "allowed"
        except Exception as exc:
            out["forged"] = _error(exc)
        own = boto3.client("lambda", endpoint_url=endpoint, region_name=os.environ["AWS_REGION"], config=config)
        out["own"] = {}
        if event.get("invoke"):
            try:
                answer = own.invoke(FunctionName=event["invoke"], Payload=b'{"from": "hostile"}')
                out["own"]["invoke"] = json.loads(answer["Payload"].read())
            except Exception as exc:
                out["own"]["invoke"] = _error(exc)
        calls = {
            "list_functions": lambda: own.list_functions(),
            "get_function": lambda: own.get_function(FunctionName=context.function_name),
            "create_function": lambda: own.create_function(
                FunctionName="planted", Runtime="python3.11", Handler="a.b", Role="arn:aws:iam::000000000000:role/x",
                Code={"ZipFile": b"PK\\x05\\x06" + b"\\x00" * 18}),
        }
        for name, call in calls.items():
            try:
                call()
                out["own"][name] = "allowed"
            except Exception as exc:
                out["own"][name] = _error(exc)
    return out
"""


def _zip(name: str, source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, source)
    return buffer.getvalue()


def hostile_zip() -> bytes:
    """The hostile function as a deployment package (``hostile.handler``)."""
    return _zip("hostile.py", HOSTILE)


def deploy(client: Any, target: str = "target") -> None:
    """Create ``hostile`` and an echo function ``target`` (for it to invoke) through ``client``."""
    role = "arn:aws:iam::000000000000:role/x"
    client.create_function(
        FunctionName=target, Runtime="python3.11", Handler="echo.handler", Role=role,
        Code={"ZipFile": _zip("echo.py", _ECHO)},
    )  # fmt: skip
    client.create_function(
        FunctionName="hostile", Runtime="python3.11", Handler="hostile.handler", Role=role,
        Code={"ZipFile": hostile_zip()}, Timeout=60,
    )  # fmt: skip
