"""In-process stubs: call a gRPC servicer's methods directly, with the errors a ``grpc.aio`` stub would raise.

``leasehold dev`` runs the frontend, the assignment server and the worker agent in one event loop; going
through gRPC between them costs a serialisation, two socket hops and several event-loop wake-ups per call
on each side, for every Acquire, Invoke and Release. A :class:`LocalStub` hands the request message to the
servicer's coroutine instead and turns the servicer's ``context.abort(code, details)`` (with any trailing
metadata it set) into the same :class:`grpc.aio.AioRpcError` the network stub raises, so the routing client
and the frontend backend treat both alike. A ``timeout`` bounds the call as a gRPC deadline does (the
servicer's coroutine is cancelled, the caller gets ``DEADLINE_EXCEEDED``); an unexpected exception in the
servicer becomes ``UNKNOWN``, as with ``grpc.aio``.

What the servicer sees is what it would see over gRPC except that the request is the caller's own message
object (not a parsed copy): servicers must not change their requests (ours copy what they keep).

Example::

    stub = LocalStub({"Acquire": service.Acquire, "Release": service.Release})
    lease = (await stub.Acquire(request, timeout=2.0)).lease
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn

import grpc
from grpc.aio import Metadata

__all__ = ["LocalContext", "LocalMethod", "LocalStub"]

log = logging.getLogger("leasehold.frontend.inproc")

#: A servicer method: ``(request, context) -> response``.
Handler = Callable[[Any, Any], Awaitable[Any]]


class _Aborted(Exception):
    """Raised by :meth:`LocalContext.abort`; carries the status to the calling :class:`LocalMethod`."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class LocalContext:
    """The part of ``grpc.aio.ServicerContext`` our servicers use: trailing metadata and ``abort``."""

    __slots__ = ("_trailing",)

    def __init__(self) -> None:
        self._trailing: tuple[tuple[str, str], ...] = ()

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        """Metadata the caller finds on the error (``AioRpcError.trailing_metadata()``)."""
        self._trailing = tuple(metadata)

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        """What :meth:`set_trailing_metadata` set."""
        return self._trailing

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        """End the call with ``code``; like ``grpc.aio``, this raises."""
        raise _Aborted(code, details)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """No metadata comes with an in-process call."""
        return ()

    def peer(self) -> str:
        """Who is calling (for logs)."""
        return "inproc"


def _error(code: grpc.StatusCode, details: str, trailing: Sequence[tuple[str, str]] = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, Metadata(), Metadata(*trailing), details)


class LocalMethod:
    """One unary method: ``await method(request, timeout=...)`` like a ``grpc.aio`` multi-callable."""

    __slots__ = ("_handler", "name")

    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self._handler = handler

    async def __call__(self, request: Any, *, timeout: float | None = None) -> Any:
        """The servicer's response, or :class:`grpc.aio.AioRpcError` as a network call would raise."""
        context = LocalContext()
        try:
            if timeout is None:
                return await self._handler(request, context)
            if timeout <= 0:
                raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            async with asyncio.timeout(timeout):
                return await self._handler(request, context)
        except _Aborted as exc:
            raise _error(exc.code, exc.details, context.trailing_metadata()) from None
        except TimeoutError:
            raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except grpc.aio.AioRpcError:
            raise
        except Exception as exc:  # what grpc.aio reports for a servicer that raised
            log.exception("event=inproc_handler_failed method=%s", self.name)
            raise _error(grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc).__name__}: {exc}") from None


class LocalStub:
    """A stub whose attributes are the given servicer methods (``stub.Acquire(request, timeout=...)``)."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._methods = {name: LocalMethod(name, handler) for name, handler in handlers.items()}

    def __getattr__(self, name: str) -> LocalMethod:
        try:
            return self._methods[name]
        except KeyError:
            raise AttributeError(name) from None
