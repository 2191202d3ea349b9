"""The synchronous invoke path shared by the HTTP API, the gRPC API and the event poller.

Resolve the function version (a short-lived cache in front of the registry), check the payload (size,
JSON), run it on the :class:`~assignment.frontend.backend.Backend`, remember its log, return an
:class:`~assignment.frontend.types.InvokeResult`. Every failure is a
:class:`~assignment.frontend.types.LambdaError`.

Example::

    invoker = Invoker(registry, backend, LogBuffer())
    result = await invoker.invoke("resize", None, b'{"w": 100}')
    # the event poller's signature:
    result = await invoker("resize", "$LATEST", b"{}", "req-1")
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

from assignment.frontend.aliases import Alias, AliasError, AliasStore
from assignment.frontend.backend import Backend
from assignment.frontend.logbuffer import LogBuffer
from assignment.frontend.registry import LATEST, Registry
from assignment.frontend.storage_errors import NotFound
from assignment.frontend.types import (
    EventInvokeConfig,
    FunctionConfig,
    InvalidParameterValueException,
    InvalidRequestContentException,
    InvokeResult,
    LambdaError,
    RequestTooLargeException,
    ResourceNotFoundException,
    ServiceException,
)

__all__ = ["ASYNC_PAYLOAD_LIMIT", "SYNC_PAYLOAD_LIMIT", "Invoker", "check_payload", "decode_client_context"]

log = logging.getLogger("leasehold.frontend.invoke")

#: Largest synchronous request payload (6 MB).
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
#: Largest asynchronous request payload (1 MB).
ASYNC_PAYLOAD_LIMIT = 1024 * 1024


#: Largest client context, decoded (AWS: 3,583 bytes).
CLIENT_CONTEXT_LIMIT = 3583


def decode_client_context(value: str) -> str:
    """The JSON text of a base64 client context (what the Runtime API hands the function), or "" for "";
    :class:`InvalidRequestContentException` unless base64 of a JSON object, at most 3,583 bytes decoded."""
    if not value:
        return ""
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestContentException("Client context must be a valid Base64-encoded JSON object.") from None
    if len(decoded) > CLIENT_CONTEXT_LIMIT:
        raise InvalidParameterValueException(f"Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes")
    try:
        document = json.loads(decoded)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        raise InvalidRequestContentException("Client context must be a valid Base64-encoded JSON object.")
    return decoded.decode()


def check_payload(payload: bytes, limit: int) -> None:
    """:class:`RequestTooLargeException` over ``limit``; :class:`InvalidRequestContentException` unless JSON
    (an empty payload is accepted, as AWS does)."""
    if len(payload) > limit:
        raise RequestTooLargeException(f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    if not payload.strip():
        return
    try:
        json.loads(payload)
    except (ValueError, RecursionError):
        raise InvalidRequestContentException("Could not parse request body into json") from None


_K = TypeVar("_K", bound=tuple[str, ...])
_V = TypeVar("_V")


class _TtlCache(Generic[_K, _V]):
    """Values kept ``ttl_s`` seconds, keyed by tuples whose first item is a function name; emptied at
    10,000 entries (a bound, not an eviction policy: entries live a second anyway)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[_K, tuple[float, _V]] = {}

    def get(self, key: _K) -> _V | None:
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, key: _K, value: _V) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl_s, value)

    def forget(self, name: str) -> None:
        for key in [key for key in self._entries if key[0] == name]:
            del self._entries[key]


class Invoker:
    """Function resolution and invocation; ``cache_ttl_s`` bounds how stale a resolved version (or alias)
    may be on a frontend that did not make the change itself. ``draw`` is the uniform [0, 1) source a
    weighted alias routes each invocation by."""

    def __init__(
        self,
        registry: Registry,
        backend: Backend,
        logs: LogBuffer,
        *,
        cache_ttl_s: float = 1.0,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.registry = registry
        self.aliases = AliasStore(registry)
        self.backend = backend
        self.logs = logs
        self.cache_ttl_s = cache_ttl_s
        self.draw = draw
        #: ``(name, version, qualifier invoked)`` → config.
        self._configs: _TtlCache[tuple[str, str, str], FunctionConfig] = _TtlCache(cache_ttl_s)
        #: ``(name, alias)`` → alias.
        self._aliases: _TtlCache[tuple[str, str], Alias] = _TtlCache(cache_ttl_s)

    def forget(self, name: str) -> None:
        """Drop cached versions and aliases of a function (after a change through this frontend)."""
        self._configs.forget(name)
        self._aliases.forget(name)

    async def resolve(self, name: str, qualifier: str | None) -> FunctionConfig:
        """The configuration of ``name:qualifier`` ($LATEST by default). An alias resolves to one of its
        versions, drawn by its weights for each call (a weighted alias routes every invocation afresh);
        the config's ``arn`` is the one invoked, its ``version`` the one that runs."""
        invoked = qualifier or ""
        version = qualifier or LATEST
        if version != LATEST and not version.isdigit():
            version = (await self._alias(name, version)).pick(self.draw())
        key = (name, version, invoked)
        hit = self._configs.get(key)
        if hit is not None:
            return hit
        try:
            found = await asyncio.to_thread(self.registry.get, name, version)
        except NotFound:
            raise ResourceNotFoundException(
                f"Function not found: {self.registry.function_arn(name, qualifier)}"
            ) from None
        # The ARN the function sees is the one it was invoked by (unqualified for a bare name), as on AWS.
        config = found.config(self.registry.function_arn(name, qualifier))
        self._configs.put(key, config)
        return config

    async def _alias(self, name: str, alias: str) -> Alias:
        hit = self._aliases.get((name, alias))
        if hit is not None:
            return hit
        try:
            found = await asyncio.to_thread(self.aliases.get, name, alias)
        except AliasError:
            raise ResourceNotFoundException(f"Function not found: {self.registry.function_arn(name, alias)}") from None
        self._aliases.put((name, alias), found)
        return found

    async def invoke(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        *,
        request_id: str | None = None,
        client_context: str = "",
    ) -> InvokeResult:
        """Run one synchronous invocation."""
        check_payload(payload, SYNC_PAYLOAD_LIMIT)
        config = await self.resolve(name, qualifier)
        return await self.run(
            config, payload, request_id=request_id or str(uuid.uuid4()), client_context=client_context
        )

    async def run(
        self, config: FunctionConfig, payload: bytes, *, request_id: str, client_context: str = ""
    ) -> InvokeResult:
        """Run a resolved version; the log goes to the ring buffer."""
        started = time.perf_counter()
        try:
            result = await self.backend.run(config, payload, request_id=request_id, client_context=client_context)
        except LambdaError as exc:
            log.info(
                "event=invoke_failed request_id=%s function=%s version=%s error=%s reason=%s",
                request_id,
                config.name,
                config.version,
                exc.type,
                exc.reason,
            )
            raise
        except Exception as exc:  # never a traceback to the caller
            log.exception("event=invoke_crashed request_id=%s function=%s", request_id, config.name)
            raise ServiceException(f"Internal error: {type(exc).__name__}") from None
        if result.logs:
            self.logs.add(config.name, request_id, config.version, result.logs)
        log.debug(
            "event=invoked request_id=%s function=%s version=%s outcome=%s cold=%s ms=%.2f",
            request_id,
            config.name,
            config.version,
            result.outcome,
            result.cold,
            (time.perf_counter() - started) * 1000,
        )
        return result

    async def __call__(self, function: str, qualifier: str, payload: bytes, request_id: str) -> InvokeResult:
        """The event poller's ``invoke``: a synchronous invocation with the event's request id."""
        return await self.invoke(function, qualifier or None, payload, request_id=request_id)

    async def event_config(self, function: str, qualifier: str) -> EventInvokeConfig:
        """The event poller's ``config_of``: PutFunctionEventInvokeConfig's value, or the defaults."""
        found = await asyncio.to_thread(self.registry.event_config, function, qualifier or "$LATEST")
        return EventInvokeConfig() if found is None else found[0]

    async def dead_letter_target(self, function: str, qualifier: str) -> str:
        """The event poller's ``dead_letter_of``: the version's DeadLetterConfig TargetArn ("" for none),
        through the resolve cache the event's invocation then uses; ResourceNotFoundException when gone."""
        return (await self.resolve(function, qualifier or None)).dead_letter_target
