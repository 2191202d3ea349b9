"""A stand-in frontend for the people's CLI tests: the few Lambda REST routes and admin endpoints it calls.

It speaks the wire format botocore's model describes (paths, status codes, ``x-amzn-ErrorType``) and
records every request, so tests can check what the CLI sent. It runs no function code: the handler name
picks a canned behaviour (``echo.*`` returns the event, ``fail.*`` a function error, ``slow.*`` answers
after ``slow_s``). Tests that should also run against the real frontend say so in their docstring.

Example::

    with FakeFrontend.start() as fake:
        lambda_client(fake.url).list_functions()
        fake.requests[-1].path
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["FakeFrontend", "Recorded"]

_API = "/2015-03-31/functions"
_WORKER = {
    "worker_id": "worker1", "address": "worker1:7001", "zone": "zone-a", "memory_mb": 2048, "free_memory_mb": 1920,
    "sandboxes": 1,
}  # fmt: skip


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    #: The raw request-target and every header as received (what a signature is checked over).
    target: str = ""
    raw_headers: tuple[tuple[str, str], ...] = ()


@dataclass
class FakeFrontend:
    """The fake server, its state, and what it received."""

    url: str = ""
    page_size: int = 50
    slow_s: float = 0.5
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    code: dict[str, bytes] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    #: Overrides for the admin endpoints: path → (status, headers, body).
    admin: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls, **options: Any) -> FakeFrontend:
        """Serve on a free loopback port in a background thread."""
        fake = cls(**options)
        ready = threading.Event()
        fake._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert fake._loop is not None
            asyncio.set_event_loop(fake._loop)
            fake._loop.run_until_complete(fake._serve())
            ready.set()
            fake._loop.run_forever()

        fake._thread = threading.Thread(target=serve, daemon=True)
        fake._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake frontend did not start")
        return fake

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._record], client_max_size=80 * 1024 * 1024)
        app.router.add_post(_API, self._create)
        app.router.add_get(_API, self._list)
        app.router.add_get(_API + "/", self._list)
        app.router.add_get(_API + "/{name}", self._get)
        app.router.add_delete(_API + "/{name}", self._delete)
        app.router.add_post(_API + "/{name}/versions", self._publish)
        app.router.add_put(_API + "/{name}/code", self._update_code)
        app.router.add_put(_API + "/{name}/configuration", self._update_configuration)
        app.router.add_post(_API + "/{name}/invocations", self._invoke)
        app.router.add_get("/_leasehold/v1/status", self._admin)
        app.router.add_get("/_leasehold/v1/logs/{name}", self._admin)
        app.router.add_get("/_leasehold/v1/dlq/{name}", self._admin)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> FakeFrontend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- helpers

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                request.method,
                request.raw_path.split("?")[0],
                dict(request.query),
                dict(request.headers),
                body,
                request.raw_path,
                tuple(request.headers.items()),
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    @staticmethod
    def _error(status: int, type_: str, message: str) -> web.Response:
        return web.json_response(
            {"Type": "User" if status < 500 else "Service", "Message": message, "message": message},
            status=status,
            headers={"x-amzn-ErrorType": type_, "x-amzn-RequestId": str(uuid.uuid4())},
        )

    def _config(self, name: str) -> dict[str, Any] | None:
        return self.functions.get(name)

    def zip_of(self, name: str) -> zipfile.ZipFile:
        """The uploaded code of ``name`` as an open zip."""
        return zipfile.ZipFile(io.BytesIO(self.code[name]))

    # -- Lambda routes

    async def _create(self, request: web.Request) -> web.Response:
        try:
            doc = json.loads(await request.read())
            name = doc["FunctionName"]
            blob = base64.b64decode(doc["Code"]["ZipFile"], validate=True)
        except (ValueError, KeyError, TypeError):
            return self._error(400, "InvalidParameterValueException", "bad CreateFunction request")
        if name in self.functions:
            return self._error(409, "ResourceConflictException", f"Function already exist: {name}")
        config = {
            "FunctionName": name,
            "FunctionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
            "Runtime": doc.get("Runtime"),
            "Role": doc.get("Role"),
            "Handler": doc.get("Handler"),
            "MemorySize": doc.get("MemorySize", 128),
            "Timeout": doc.get("Timeout", 3),
            "Environment": doc.get("Environment", {"Variables": {}}),
            "Layers": [{"Arn": arn, "CodeSize": 0} for arn in doc.get("Layers", [])],
            "CodeSize": len(blob),
            "CodeSha256": base64.b64encode(hashlib.sha256(blob).digest()).decode(),
            "Version": "$LATEST",
            "State": "Active",
            "LastModified": "2026-11-22T22:00:00.000+0000",
        }
        self.functions[name] = config
        self.code[name] = blob
        return web.json_response(config, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        names = sorted(self.functions)
        start = int(request.query.get("Marker", "0") or 0)
        page = names[start : start + self.page_size]
        doc: dict[str, Any] = {"Functions": [self.functions[n] for n in page]}
        if start + self.page_size < len(names):
            doc["NextMarker"] = str(start + self.page_size)
        return web.json_response(doc)

    async def _get(self, request: web.Request) -> web.Response:
        config = self._config(request.match_info["name"])
        if config is None:
            return self._error(404, "ResourceNotFoundException", f"Function not found: {request.match_info['name']}")
        return web.json_response({"Configuration": config, "Code": {"RepositoryType": "S3", "Location": ""}})

    async def _delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.functions.pop(name, None) is None:
            return self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
        return web.Response(status=204)

    async def _publish(self, request: web.Request) -> web.Response:
        config = self._config(request.match_info["name"])
        if config is None:
            return self._error(404, "ResourceNotFoundException", "Function not found")
        versions = self.versions.setdefault(config["FunctionName"], [])
        version = dict(config, Version=str(len(versions) + 1))
        versions.append(version)
        return web.json_response(version, status=201)

    async def _update_code(self, request: web.Request) -> web.Response:
        config = self._config(request.match_info["name"])
        if config is None:
            return self._error(404, "ResourceNotFoundException", "Function not found")
        doc = json.loads(await request.read())
        blob = base64.b64decode(doc["ZipFile"])
        self.code[config["FunctionName"]] = blob
        config["CodeSize"] = len(blob)
        config["CodeSha256"] = base64.b64encode(hashlib.sha256(blob).digest()).decode()
        if doc.get("Publish"):
            return await self._publish(request)
        return web.json_response(config)

    async def _update_configuration(self, request: web.Request) -> web.Response:
        config = self._config(request.match_info["name"])
        if config is None:
            return self._error(404, "ResourceNotFoundException", "Function not found")
        doc = json.loads(await request.read())
        config.update({k: v for k, v in doc.items() if k != "Layers"})
        return web.json_response(config)

    async def _invoke(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        config = self._config(name)
        if config is None:
            return self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
        body = await request.read()
        try:
            json.loads(body or b"{}")
        except ValueError:
            return self._error(400, "InvalidRequestContentException", "Could not parse request body into json")
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": request.query.get("Qualifier", "$LATEST")}
        if request.headers.get("X-Amz-Invocation-Type") == "Event":
            return web.Response(status=202, headers={"x-amzn-RequestId": request_id})
        handler = str(config.get("Handler") or "")
        if handler.startswith("slow."):
            await asyncio.sleep(self.slow_s)
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            log = f"START RequestId: {request_id} Version: $LATEST\nhello from {name}\nEND RequestId: {request_id}\n"
            headers["X-Amz-Log-Result"] = base64.b64encode(log.encode()).decode()
        if handler.startswith("fail."):
            headers["X-Amz-Function-Error"] = "Unhandled"
            error = {"errorMessage": "boom", "errorType": "RuntimeError", "stackTrace": []}
            return web.json_response(error, headers=headers)
        return web.Response(body=body, headers=headers, content_type="application/json")

    # -- admin routes

    async def _admin(self, request: web.Request) -> web.Response:
        path = request.raw_path.split("?")[0]
        if path in self.admin:
            status, headers, body = self.admin[path]
            return web.Response(status=status, headers=headers, body=body)
        if path == "/_leasehold/v1/status":
            return web.json_response(
                {
                    "partitions": [
                        {"partition": p, "leader_id": f"server{p % 3 + 1}", "leader_address": f"server{p % 3 + 1}:7100"}
                        for p in range(4)
                    ],
                    "workers": [_WORKER],
                    "functions": [{"name": "echo", "version": "$LATEST", "sandboxes": 1}],
                    "queue_depth": 3,
                }
            )
        name = request.match_info["name"]
        if name not in self.functions:
            return self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
        limit = int(request.query.get("limit", "50"))
        if path.startswith("/_leasehold/v1/logs/"):
            events = [
                {"request_id": f"r{i}", "time_ms": 1_700_000_000_000 + i, "version": "$LATEST",
                 "text": f"START RequestId: r{i} Version: $LATEST\nEND RequestId: r{i}\n"}
                for i in range(min(limit, 3))
            ]  # fmt: skip
            return web.json_response({"events": events})
        items = [
            {"request_id": "r9", "function": name, "qualifier": "$LATEST", "error_type": "RuntimeError",
             "error_message": "boom " * 40, "attempts": 3, "time_ms": 1_700_000_000_000, "payload": "{}"}
        ][:limit]  # fmt: skip
        return web.json_response({"items": items})
