"""One sandbox's Lambda Runtime API (``/2018-06-01``), served by the agent on ``127.0.0.1:<port>``.

A small HTTP/1.1 server on asyncio streams (keep-alive, ``Content-Length`` and chunked bodies). The
sandbox hands it invocations with :meth:`RuntimeApi.submit` and awaits their results; the runtime inside
the sandbox long-polls ``GET /runtime/invocation/next`` for them. Endpoints, headers and status codes
are those of the AWS documentation:

- ``GET  /2018-06-01/runtime/invocation/next``           → 200 + event, ``Lambda-Runtime-*`` headers
- ``POST /2018-06-01/runtime/invocation/{id}/response``  → 202; 413 when over 6 MB; 403 for a wrong id
- ``POST /2018-06-01/runtime/invocation/{id}/error``     → 202; 400 bad body; 403 for a wrong id
- ``POST /2018-06-01/runtime/init/error``                → 202; 403 once init is over
- 404 unknown path, 405 wrong method, 500 once the sandbox is shutting down (the runtime should exit).

Example::

    api = RuntimeApi()
    port = await api.start()
    result = await api.submit(Invocation("req-1", b"{}", deadline_ms=...))  # the runtime answers
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from dataclasses import dataclass, field

__all__ = [
    "MAX_RESPONSE_BYTES",
    "ErrorBody",
    "Invocation",
    "InvocationResult",
    "RuntimeApi",
    "parse_error_body",
]

MAX_RESPONSE_BYTES = 6 * 1024 * 1024
"""The largest synchronous response (and error) body a runtime may post."""
_MAX_HEADER_BYTES = 64 * 1024
_DISCARD_LIMIT = 64 * 1024 * 1024  # beyond this an oversized body is not drained: the connection closes
_PREFIX = "/2018-06-01"
_RESPONSE = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
_REASONS |= {405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Invocation:
    """One event for the runtime, with the values of its ``Lambda-Runtime-*`` headers."""

    request_id: str
    payload: bytes
    deadline_ms: int
    invoked_function_arn: str = ""
    trace_id: str = ""
    client_context: str = ""
    cognito_identity: str = ""


@dataclass(frozen=True)
class ErrorBody:
    """An error as a runtime posts it: ``{errorMessage, errorType, stackTrace}``."""

    error_type: str
    error_message: str
    stack_trace: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InvocationResult:
    """The runtime's answer: a response body, or an error (``error`` set, ``payload`` empty)."""

    payload: bytes = b""
    error: ErrorBody | None = None
    too_large: bool = False


class _BadRequest(Exception):
    pass


def parse_error_body(body: bytes, header_type: str | None) -> ErrorBody:
    """Parse an error body; raise ValueError when it is not a JSON object with string fields.

    An empty body is allowed (``errorType`` then comes from ``Lambda-Runtime-Function-Error-Type``).
    """
    if not body.strip():
        return ErrorBody(header_type or "Runtime.Unknown", "")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"error body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("error body must be a JSON object")
    message, error_type, trace = data.get("errorMessage", ""), data.get("errorType"), data.get("stackTrace", [])
    if not isinstance(message, str) or not (error_type is None or isinstance(error_type, str)):
        raise ValueError("errorMessage and errorType must be strings")
    if isinstance(trace, str):
        trace = [trace]
    if not isinstance(trace, list) or not all(isinstance(t, str) for t in trace):
        raise ValueError("stackTrace must be a list of strings")
    return ErrorBody(error_type or header_type or "Runtime.Unknown", message, list(trace))


class RuntimeApi:
    """The Runtime API endpoint of one sandbox; at most one invocation is outstanding at a time."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._server: asyncio.Server | None = None
        self._pending: Invocation | None = None
        self._waiter: asyncio.Future[InvocationResult] | None = None
        self._in_flight: str | None = None  # request id delivered by /next and not yet answered
        self._next_wakeup = asyncio.Event()
        self._closing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._parked = 0  # /next calls waiting; close() lets them answer 500 before dropping connections
        self._none_parked = asyncio.Event()
        self._none_parked.set()
        self.ready = asyncio.Event()
        """Set on the first ``/next``: the runtime finished init."""
        self.init_error: ErrorBody | None = None
        self.init_error_posted = asyncio.Event()
        """Set when the runtime posts ``/runtime/init/error``."""
        self.port = 0
        self._attached: asyncio.Future[None] | None = None

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        return f"{self._host}:{self.port}"

    async def start(self, sock: socket.socket | None = None) -> int:
        """Listen on ``sock`` (bound already, e.g. inside a sandbox's network namespace) or on an
        ephemeral port of the host; return the port."""
        if sock is None:
            self._server = await asyncio.start_server(self._serve, self._host, 0, limit=_MAX_HEADER_BYTES)
        else:
            self._server = await asyncio.start_server(self._serve, sock=sock, limit=_MAX_HEADER_BYTES)
        self._host, self.port = self._server.sockets[0].getsockname()[:2]
        return self.port

    async def attach(self, sock: socket.socket) -> None:
        """Serve one connected socket (a snapshot-fork child's end is inherited, never dialled: no
        listening socket of it exists in the namespace it shares with its siblings)."""
        reader, writer = await asyncio.open_connection(sock=sock, limit=_MAX_HEADER_BYTES)
        self._attached = asyncio.ensure_future(self._serve(reader, writer))

    def stop_listening(self) -> None:
        """Accept no new connection (a snapshot template's endpoint, once it only forks)."""
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """Stop serving, fail the outstanding invocation (if any) and close every connection."""
        self._closing = True
        self._next_wakeup.set()
        self._fail_waiter(ConnectionAbortedError("sandbox closed"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._none_parked.wait(), 1.0)
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def submit(self, invocation: Invocation) -> asyncio.Future[InvocationResult]:
        """Queue ``invocation`` for the runtime's next ``/next``; the future resolves with its result."""
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError("an invocation is already outstanding")
        self._pending = invocation
        self._in_flight = None
        self._waiter = asyncio.get_running_loop().create_future()
        self._next_wakeup.set()
        return self._waiter

    def abandon(self) -> None:
        """Forget the outstanding invocation (after a timeout): later answers for it get 403."""
        self._pending = None
        self._in_flight = None
        self._fail_waiter(TimeoutError("abandoned"))

    def _fail_waiter(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
            self._waiter.exception()  # mark retrieved: the submitter may already have given up

    # --- HTTP ---------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while not self._closing:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send(writer, 400, _error_json("InvalidRequest", "headers too large"), close=True)
                    return
                try:
                    method, path, headers = _parse_head(head)
                    body, keep = await self._read_body(reader, headers)
                except _BadRequest as exc:
                    await self._send(writer, 400, _error_json("InvalidRequest", str(exc)), close=True)
                    return
                if body is None:  # over 6 MB: drained (or not, then the connection closes), never kept
                    message = f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                    await self._send(writer, 413, _error_json("RequestEntityTooLarge", message), close=not keep)
                    self._answer_too_large(path)
                    if not keep:
                        return
                    continue
                parks = path == f"{_PREFIX}/runtime/invocation/next"
                if parks:
                    self._parked += 1
                    self._none_parked.clear()
                try:
                    status, extra, payload = await self._route(method, path, headers, body)
                    close = headers.get("connection", "").lower() == "close" or self._closing
                    await self._send(writer, status, payload, extra=extra, close=close)
                finally:
                    if parks:
                        self._unpark()
                if close:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> tuple[bytes | None, bool]:
        """Read the body: ``(body, True)``; ``(None, keep)`` when it is over 6 MB (``keep``: it was drained)."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("bad chunk size") from None
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    return (b"".join(chunks) if total <= MAX_RESPONSE_BYTES else None), True
                total += size
                if total > _DISCARD_LIMIT:
                    return None, False
                chunk = await reader.readexactly(size + 2)
                if total <= MAX_RESPONSE_BYTES:
                    chunks.append(chunk[:-2])
        length_text = headers.get("content-length", "0")
        try:
            length = int(length_text)
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if length < 0:
            raise _BadRequest("bad Content-Length")
        if length > _DISCARD_LIMIT:
            return None, False
        if length > MAX_RESPONSE_BYTES:
            remaining = length
            while remaining:
                remaining -= len(await reader.readexactly(min(remaining, 1 << 20)))
            return None, True
        return (await reader.readexactly(length) if length else b""), True

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        *,
        extra: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Length: {len(body)}"]
        lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    def _answer_too_large(self, path: str) -> None:
        match = _RESPONSE.match(path)
        if match and match.group(1) == self._in_flight and self._waiter is not None and not self._waiter.done():
            self._in_flight = None
            self._waiter.set_result(InvocationResult(too_large=True))

    async def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self._closing:
            return 500, {}, _error_json("ServiceException", "the sandbox is shutting down; exit")
        if path == f"{_PREFIX}/runtime/invocation/next":
            if method != "GET":
                return 405, {}, _error_json("InvalidRequest", "use GET")
            return await self._next()
        if path == f"{_PREFIX}/runtime/init/error":
            if method != "POST":
                return 405, {}, _error_json("InvalidRequest", "use POST")
            if self.ready.is_set():
                return 403, {}, _error_json("InvalidStateTransition", "init is already complete")
            try:
                self.init_error = parse_error_body(body, headers.get("lambda-runtime-function-error-type"))
            except ValueError as exc:
                return 400, {}, _error_json("InvalidRequest", str(exc))
            self.init_error_posted.set()
            return 202, {}, b'{"status":"OK"}'
        match = _RESPONSE.match(path)
        if match is None:
            return 404, {}, _error_json("NotFound", f"no such endpoint: {path}")
        if method != "POST":
            return 405, {}, _error_json("InvalidRequest", "use POST")
        request_id, kind = match.groups()
        if request_id != self._in_flight or self._waiter is None or self._waiter.done():
            return 403, {}, _error_json("InvalidRequestID", f"no outstanding invocation {request_id}")
        if kind == "response":
            result = InvocationResult(payload=body)
        else:
            try:
                error = parse_error_body(body, headers.get("lambda-runtime-function-error-type"))
            except ValueError as exc:
                return 400, {}, _error_json("InvalidRequest", str(exc))
            result = InvocationResult(error=error)
        self._in_flight = None
        self._waiter.set_result(result)
        return 202, {}, b'{"status":"OK"}'

    def _unpark(self) -> None:
        self._parked -= 1
        if self._parked == 0:
            self._none_parked.set()

    async def _next(self) -> tuple[int, dict[str, str], bytes]:
        self.ready.set()
        while self._pending is None:
            if self._closing:
                return 500, {}, _error_json("ServiceException", "the sandbox is shutting down; exit")
            self._next_wakeup.clear()
            await self._next_wakeup.wait()
        invocation, self._pending = self._pending, None
        self._in_flight = invocation.request_id
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_function_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        if invocation.client_context:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        if invocation.cognito_identity:
            headers["Lambda-Runtime-Cognito-Identity"] = invocation.cognito_identity
        return 200, headers, invocation.payload


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise _BadRequest("bad header encoding") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest("bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _BadRequest("bad header line")
        headers[name.strip().lower()] = value.strip()
    path = parts[1].split("?", 1)[0]
    return parts[0], path, headers


def _error_json(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()
