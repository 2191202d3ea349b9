"""``leasehold invoke NAME [--qualifier Q] [--payload JSON|@file] [--async] [--log]``: run a function.

The result payload goes to stdout; ``--log`` prints the invocation's log tail (``X-Amz-Log-Result``,
decoded) to stderr. Exit code 0 on success, 1 when the function failed (its error document is the
payload), 2 when the call itself failed.

Example::

    leasehold invoke resize --payload '{"width": 64}' --log
    leasehold invoke resize --payload @event.json --async
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from pathlib import Path
from typing import Any

from assignment.commands.api import CliError, call, lambda_client, translated_errors
from assignment.commands.common import EXIT_FUNCTION_ERROR, EXIT_OK, common_parser, guarded
from assignment.commands.output import print_json, wait_note

__all__ = ["MAX_ASYNC_PAYLOAD", "MAX_SYNC_PAYLOAD", "read_payload", "register"]

#: Lambda's payload limits: 6 MB for a synchronous invocation, 1 MB for an asynchronous one.
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``invoke`` to ``subparsers``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "invoke", parents=[common_parser()], help="invoke a function", description=__doc__
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--qualifier", help="a version number or $LATEST")
    parser.add_argument("--payload", default="{}", metavar="JSON|@FILE", help="the event (@- reads stdin)")
    parser.add_argument("--async", dest="asynchronous", action="store_true", help="queue it (202) and return")
    parser.add_argument("--log", action="store_true", help="print the log tail to stderr")
    parser.set_defaults(func=guarded(_invoke))
    return parser


def read_payload(spec: str, limit: int) -> bytes:
    """The payload ``spec`` names: JSON text, ``@file`` or ``@-`` (stdin); checked to be JSON within ``limit``."""
    if spec.startswith("@"):
        source = spec[1:]
        try:
            if source == "-":
                data = sys.stdin.buffer.read(limit + 1)
            else:
                path = Path(source)
                if not path.is_file():
                    raise CliError("InvalidRequestContentException", f"{source} is not a readable file")
                with path.open("rb") as stream:
                    data = stream.read(limit + 1)
        except OSError as exc:
            raise CliError("InvalidRequestContentException", f"cannot read {source}: {exc.strerror}") from exc
    else:
        data = spec.encode("utf-8", errors="surrogateescape")
    if len(data) > limit:
        raise CliError("RequestTooLargeException", f"the payload exceeds {limit} bytes")
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError("InvalidRequestContentException", f"the payload is not JSON: {exc}") from exc
    return data


def _invoke(args: argparse.Namespace) -> int:
    payload = read_payload(args.payload, MAX_ASYNC_PAYLOAD if args.asynchronous else MAX_SYNC_PAYLOAD)
    params: dict[str, Any] = {
        "FunctionName": args.name,
        "Payload": payload,
        "InvocationType": "Event" if args.asynchronous else "RequestResponse",
    }
    if args.qualifier:
        params["Qualifier"] = args.qualifier
    if args.log and not args.asynchronous:
        params["LogType"] = "Tail"
    client = lambda_client(args.endpoint, retries=0)
    with wait_note(args.name):
        answer = _call_and_read(client, params)
    if args.asynchronous:
        return _show_queued(args, answer)
    log = _decode_log(answer.get("LogResult", ""))
    if args.log and log:
        sys.stderr.write(log if log.endswith("\n") else log + "\n")
    body: bytes = answer["Payload"]
    if args.json:
        print_json(
            {
                "StatusCode": answer.get("StatusCode"),
                "ExecutedVersion": answer.get("ExecutedVersion"),
                "FunctionError": answer.get("FunctionError"),
                "Payload": _as_json(body),
                **({"Log": log} if args.log else {}),
            }
        )
    else:
        sys.stdout.buffer.write(body + (b"" if body.endswith(b"\n") else b"\n"))
        sys.stdout.flush()
    return EXIT_FUNCTION_ERROR if answer.get("FunctionError") else EXIT_OK


def _call_and_read(client: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Invoke, then read the streamed payload inside the same wait (a long function streams late)."""
    answer = call(client.invoke, **params)
    stream = answer.get("Payload")
    with translated_errors():
        answer["Payload"] = stream.read() if stream is not None else b""
    return answer


def _show_queued(args: argparse.Namespace, answer: dict[str, Any]) -> int:
    if args.json:
        print_json({"StatusCode": answer.get("StatusCode"), "RequestId": answer.get("RequestId")})
    else:
        print(f"queued {args.name} (status {answer.get('StatusCode')}, request id {answer.get('RequestId', '-')})")
    return EXIT_OK


def _decode_log(text: str) -> str:
    if not text:
        return ""
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return f"(undecodable log result: {text[:60]!r})"


def _as_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")
