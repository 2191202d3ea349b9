"""The built-in Python runtime: import the handler once, then loop over ``/runtime/invocation/next``.

Started by the agent as ``python -I -S -u python_bootstrap.py`` inside a sandbox, with the Lambda environment
(``AWS_LAMBDA_RUNTIME_API``, ``_HANDLER`` = ``module.function``, ``LAMBDA_TASK_ROOT``, ...). It uses the
standard library only and speaks HTTP/1.1 on one keep-alive connection to the agent's Runtime API.

Handler errors are posted to ``/invocation/{id}/error`` as ``{errorMessage, errorType, requestId,
stackTrace}`` and printed as ``[ERROR]`` lines; init errors go to ``/runtime/init/error`` with
``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound`` or the exception's type. Python ``logging``
goes to stdout as ``[LEVEL]\\t<timestamp>\\t<request id>\\t<message>``, or with
``AWS_LAMBDA_LOG_FORMAT=JSON`` as AWS's JSON records (errors too); the root level comes from
``AWS_LAMBDA_LOG_LEVEL`` (AWS's advanced logging controls; Python's default, WARNING, when unset).

With ``LEASEHOLD_TEMPLATE_FD`` set the process becomes a snapshot template after init (see
``workers/runtimes/snapshot.py``).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing, logging and traceback cost milliseconds of every cold start: imported when used
    from collections.abc import Callable
    from typing import Any

_API_PREFIX = "/2018-06-01/runtime"


class _Current:
    """The request id being served, for log lines and error bodies."""

    request_id = ""
    logging_ready = False


class RuntimeClient:
    """A minimal HTTP/1.1 client for the Runtime API (the agent always sends Content-Length)."""

    def __init__(self, address: str, sock: socket.socket | None = None) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host, int(port))
        self._sock: socket.socket | None = sock  # given: an inherited connection (a snapshot-fork child)
        self._buf = b""

    def close(self) -> None:
        """Drop the connection (a forked child reconnects to its own endpoint)."""
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buf = b""

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request, return (status, lower-cased headers, body)."""
        if self._sock is None:
            self._sock = socket.create_connection(self._address)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"{method} {_API_PREFIX}{path} HTTP/1.1", "Host: runtime", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        response_headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            response_headers[name.strip().lower()] = value.strip()
        length = int(response_headers.get("content-length", "0"))
        while len(self._buf) < length:
            self._fill()
        data, self._buf = self._buf[:length], self._buf[length:]
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return status, response_headers, data

    def _fill(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the Runtime API closed the connection")
        self._buf += chunk


class LambdaContext:
    """The ``context`` argument of a handler, with the attributes and method of AWS's."""

    def __init__(self, request_id: str, deadline_ms: int, arn: str, client_context: str, identity: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = json.loads(client_context) if client_context else None
        self.identity = json.loads(identity) if identity else None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


#: ``logging.LogRecord`` attributes that are not a record's ``extra`` fields (a JSON record leaves them out).
_RECORD_FIELDS = frozenset(
    {
        *("name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "lineno", "funcName"),
        *("exc_info", "exc_text", "stack_info", "created", "msecs", "relativeCreated", "thread", "threadName"),
        *("processName", "process", "taskName", "aws_request_id", "asctime", "message"),
    }
)


def _json_logs() -> bool:
    return os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def _setup_logging() -> None:
    """Send Python logging to stdout in AWS's format, at ``AWS_LAMBDA_LOG_LEVEL``.

    Text: ``[LEVEL]\t<timestamp>\t<request id>\t<message>``. JSON (``AWS_LAMBDA_LOG_FORMAT=JSON``): one
    object per record with ``timestamp``, ``level``, ``message``, ``logger`` and ``requestId``, the
    exception's ``errorType``, ``errorMessage``, ``stackTrace`` and ``location`` when there is one, and the
    record's ``extra`` fields. ``TRACE`` is Python's DEBUG. Called once the function has imported
    ``logging`` (after init, or before the first invoke that finds it imported), so functions that do not
    log do not pay for importing it.
    """
    import logging  # noqa: PLC0415

    class RequestIdFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.aws_request_id = _Current.request_id
            return True

    class JsonRecords(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            import traceback  # noqa: PLC0415

            level = min(50, max(0, record.levelno)) // 10 * 10  # custom levels fall into Python's five
            document: dict[str, Any] = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": logging.getLevelName(level),
                "message": record.getMessage(),
                "logger": record.name,
                "requestId": getattr(record, "aws_request_id", "") or None,
            }
            if record.exc_info and record.exc_info[0] is not None:
                kind, value, trace = record.exc_info
                document["errorType"] = kind.__name__
                document["errorMessage"] = str(value)
                document["stackTrace"] = traceback.format_tb(trace)
                document["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
            for key, value in record.__dict__.items():
                if key not in _RECORD_FIELDS and key not in document:
                    document[key] = value
            return json.dumps({k: v for k, v in document.items() if v is not None}, default=str)

    handler = logging.StreamHandler(sys.stdout)
    if _json_logs():
        formatter: logging.Formatter = JsonRecords()
    else:
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
        formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    levels = {"TRACE": 10, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "FATAL": 50}
    if level in levels:
        root.setLevel(levels[level])
    _Current.logging_ready = True


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    import traceback  # noqa: PLC0415

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": _Current.request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _print_error(body: dict[str, Any]) -> None:
    if _json_logs():  # one JSON record, as AWS's runtime writes an unhandled error then
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        sys.stdout.write(json.dumps({"timestamp": stamp, "level": "ERROR", **body}) + "\n")
    else:
        trace = "".join(body["stackTrace"])
        sys.stdout.write(
            f"[ERROR] {body['errorType']}: {body['errorMessage']}\nTraceback (most recent call last):\n{trace}"
        )
    sys.stdout.flush()


def load_handler(name: str) -> Callable[[Any, LambdaContext], Any]:
    """Import ``module.function``; raise _InitError with AWS's error types."""
    module_name, _, function_name = name.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{name}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", exc) from exc
    except SyntaxError as exc:
        raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", exc) from exc
    try:
        handler = getattr(module, function_name)
    except AttributeError:
        raise _InitError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None
    if not callable(handler):
        raise _InitError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' on module '{module_name}' is not callable"
        )
    return handler  # type: ignore[no-any-return]


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.cause = cause


def init() -> Callable[[Any, LambdaContext], Any] | dict[str, Any]:
    """Set up paths and logging and import the handler; return it, or the init error body."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    opt = os.environ.get("LEASEHOLD_OPT_DIR", "/opt")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    runtime_dir = os.path.dirname(os.path.abspath(__file__))  # snapshot_restore_py lives here
    sys.path[:0] = [runtime_dir, task_root, f"{opt}/python", f"{opt}/python/lib/{version}/site-packages"]
    if sys.flags.no_site:  # started with -S (faster): the runtime's own site-packages come last, as with site
        sys.path.append(f"{sys.prefix}/lib/{version}/site-packages")
    try:
        return load_handler(os.environ.get("_HANDLER", ""))
    except _InitError as exc:
        body = _error(exc.cause or exc, exc.error_type)
        body["errorMessage"] = str(exc)
        return body
    except Exception as exc:  # the module raised while importing
        return _error(exc)
    finally:
        if "logging" in sys.modules:
            _setup_logging()


def serve(client: RuntimeClient, handler: Callable[[Any, LambdaContext], Any]) -> None:
    """The invoke loop: next → handler → response | error, forever."""
    while True:
        status, headers, body = client.request("GET", "/invocation/next")
        if status != 200:
            sys.exit(f"Runtime API /next answered {status}: {body[:200]!r}")
        request_id = headers["lambda-runtime-aws-request-id"]
        if not _Current.logging_ready and "logging" in sys.modules:
            _setup_logging()
        _Current.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("lambda-runtime-trace-id", "")
        context = LambdaContext(
            request_id,
            int(headers.get("lambda-runtime-deadline-ms", "0")),
            headers.get("lambda-runtime-invoked-function-arn", ""),
            headers.get("lambda-runtime-client-context", ""),
            headers.get("lambda-runtime-cognito-identity", ""),
        )
        try:
            event = json.loads(body) if body else {}
        except ValueError as exc:
            outcome = _error(exc, "Runtime.UnmarshalError")
            outcome["errorMessage"] = f"Unable to unmarshal input: {exc}"
        else:
            try:
                result = handler(event, context)
            except Exception as exc:
                outcome = _error(exc)
            else:
                try:
                    payload = json.dumps(result).encode()
                except (TypeError, ValueError) as exc:
                    outcome = _error(exc, "Runtime.MarshalError")
                    outcome["errorMessage"] = f"Unable to marshal response: {exc}"
                else:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    status, _, answer = client.request("POST", f"/invocation/{request_id}/response", payload)
                    if status == 413:
                        sys.stdout.write(f"[ERROR] Response payload too large: {answer.decode(errors='replace')}\n")
                        sys.stdout.flush()
                    continue
        _print_error(outcome)
        sys.stderr.flush()
        client.request(
            "POST",
            f"/invocation/{request_id}/error",
            json.dumps(outcome).encode(),
            {"Lambda-Runtime-Function-Error-Type": outcome["errorType"]},
        )


def main() -> None:
    """Entry point: init, report an init error or (optionally) become a snapshot template, then serve."""
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    handler = init()
    if isinstance(handler, dict):
        _print_error(handler)
        client.request(
            "POST",
            "/init/error",
            json.dumps(handler).encode(),
            {"Lambda-Runtime-Function-Error-Type": handler["errorType"]},
        )
        sys.exit(1)
    template_fd = os.environ.pop("LEASEHOLD_TEMPLATE_FD", None)
    if template_fd:
        snapshot = importlib.import_module("snapshot")  # only templates need it
        client = snapshot.become_template(int(template_fd), client)
    serve(client, handler)


if __name__ == "__main__":
    main()
