"""mTLS on the internal gRPC ports: the one module that reads certificates (made by :mod:`workers.certs`).

Every gRPC server of a cluster process (assignment server, worker agent, frontend) listens with TLS and
**requires a client certificate from the cluster CA**; a :class:`RoleCheck` interceptor then lets each
method be called only by the roles that need it (a worker's CreateSandbox only by assignment servers, its
Invoke only by frontends). Every caller dials with its own certificate and names the role it means to reach
as the TLS target (``worker.leasehold``...), so gRPC's hostname check refuses a peer of another role.

Health checks (``grpc.health.v1.Health``) and reflection answer any certificate of the cluster CA: a probe
authenticates like any caller, with a ``client`` identity (``python -m assignment.commands.probe grpc
--tls-dir DIR/client HOST:PORT``).

Processes take ``--tls-dir DIR`` (an identity folder: ``ca.pem``, ``cert.pem``, ``key.pem``), defaulting to
their ``LEASEHOLD_<COMMAND>_TLS_DIR`` and then to ``LEASEHOLD_TLS_DIR``; ``--insecure`` is the explicit,
logged opt-out for a trusted network. A process refuses to start with neither.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from workers.certs import ROLES, identity_name, role_host

__all__ = [
    "ANY_ROLE",
    "RoleCheck",
    "Tls",
    "add_port",
    "add_tls_flags",
    "aio_channel",
    "channel",
    "peer_role",
    "tls_from_args",
]

log = logging.getLogger(__name__)

ANY_ROLE = frozenset(ROLES)
_Options = Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class Tls:
    """One identity: the cluster CA, this process's certificate and key, and the role the certificate names."""

    ca: bytes = field(repr=False)
    cert: bytes = field(repr=False)
    key: bytes = field(repr=False)
    role: str
    name: str

    @classmethod
    def load(cls, directory: Path) -> Tls:
        """The identity in ``directory``; ValueError names a missing, unreadable, expired or foreign file."""
        files = {}
        for part in ("ca.pem", "cert.pem", "key.pem"):
            try:
                files[part] = (directory / part).read_bytes()
            except OSError as exc:
                raise ValueError(f"--tls-dir {directory}: cannot read {part}: {exc.strerror or exc}") from None
        try:
            cert = x509.load_pem_x509_certificate(files["cert.pem"])
            ca = x509.load_pem_x509_certificate(files["ca.pem"])
        except ValueError as exc:
            raise ValueError(f"--tls-dir {directory}: not a PEM certificate: {exc}") from None
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            raise ValueError(f"--tls-dir {directory}: cert.pem is not issued by ca.pem") from None
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ValueError(
                f"--tls-dir {directory}: cert.pem is valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
                f"to {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now"
            )
        identity = _identity(cert)
        if identity is None:
            raise ValueError(f"--tls-dir {directory}: cert.pem names no Leasehold role (spiffe://leasehold/ROLE/NAME)")
        return cls(files["ca.pem"], files["cert.pem"], files["key.pem"], *identity)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Serve with this identity; callers must present a certificate of the same CA."""
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Dial with this identity, trusting only the cluster CA."""
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)


def _identity(cert: x509.Certificate) -> tuple[str, str] | None:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        found = identity_name(uri)
        if found is not None:
            return found
    return None


def add_port(server: grpc.aio.Server, address: str, tls: Tls | None) -> int:
    """Listen on ``address`` with ``tls`` (plaintext when ``None``); the port, or OSError when it cannot."""
    port = server.add_secure_port(address, tls.server_credentials()) if tls else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


def _dial_options(tls: Tls | None, role: str, options: _Options) -> list[tuple[str, Any]]:
    if role not in ROLES:
        raise ValueError(f"role {role!r}: want one of {', '.join(ROLES)}")
    extra = [("grpc.ssl_target_name_override", role_host(role))] if tls else []
    return [*options, *extra]


def aio_channel(address: str, tls: Tls | None, role: str, options: _Options = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to a ``role`` process at ``address`` (plaintext when ``tls`` is ``None``)."""
    merged = _dial_options(tls, role, options)
    if tls is None:
        return grpc.aio.insecure_channel(address, options=merged)
    return grpc.aio.secure_channel(address, tls.channel_credentials(), options=merged)


def channel(address: str, tls: Tls | None, role: str, options: _Options = ()) -> grpc.Channel:
    """The blocking twin of :func:`aio_channel` (probes, tests)."""
    merged = _dial_options(tls, role, options)
    if tls is None:
        return grpc.insecure_channel(address, options=merged)
    return grpc.secure_channel(address, tls.channel_credentials(), options=merged)


def peer_role(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The role of the caller's certificate (``None``: no certificate, or one naming no role).

    ``peer_identities()`` (the certificate's subject alternative names) costs a tenth of ``auth_context()``,
    which copies the whole certificate on every call."""
    for value in context.peer_identities() or ():
        found = identity_name(value.decode(errors="replace"))
        if found is not None:
            return found[0]
    return None


_Handler = Callable[..., Any]
_MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class RoleCheck(grpc.aio.ServerInterceptor):
    """Lets each method be called only by the roles ``policy`` names (``"/pkg.Service/Method"`` → roles);
    a method it does not name is open to ``default`` (every cluster role: health checks, reflection).
    A caller of another role gets PERMISSION_DENIED naming its role and the method."""

    def __init__(self, policy: Mapping[str, frozenset[str]], default: frozenset[str] = ANY_ROLE) -> None:
        self.policy = dict(policy)
        self.default = default
        self._handlers: dict[str, _MethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_MethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> _MethodHandler | None:
        method = details.method
        cached = self._handlers.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return handler
        wrapped = self._handlers[method] = _guard(handler, method, self.policy.get(method, self.default))
        return wrapped


def _guard(handler: _MethodHandler, method: str, roles: frozenset[str]) -> _MethodHandler:
    async def refuse_unless_allowed(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        role = peer_role(context)
        if role not in roles:
            who = f"role {role!r}" if role else "a caller without a cluster certificate"
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} is not open to {who}")

    def wrap(inner: _Handler) -> _Handler:
        if inspect.isasyncgenfunction(inner):

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                await refuse_unless_allowed(context)
                async for item in inner(request, context):
                    yield item

            return stream

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await refuse_unless_allowed(context)
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result

        return call

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    behaviour = {
        (False, False): handler.unary_unary,
        (False, True): handler.unary_stream,
        (True, False): handler.stream_unary,
        (True, True): handler.stream_stream,
    }
    key = (handler.request_streaming, handler.response_streaming)
    inner = behaviour[key]
    assert inner is not None, f"{method}: a handler without its behaviour"
    return kinds[key](
        wrap(inner),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def add_tls_flags(flag: Callable[..., argparse.Action], parser: argparse.ArgumentParser) -> None:
    """``--tls-dir`` (← its command's variable, then ``LEASEHOLD_TLS_DIR``) and ``--insecure``."""
    action = flag("--tls-dir", type=Path, metavar="DIR", help="this process's identity (leasehold certs init)")
    if action.default is None and os.environ.get("LEASEHOLD_TLS_DIR"):
        action.default = Path(os.environ["LEASEHOLD_TLS_DIR"])
    parser.add_argument(
        "--insecure", action="store_true", help="plaintext gRPC without certificates, for a trusted network only"
    )


def tls_from_args(args: argparse.Namespace, component: str) -> Tls | None:
    """The identity the flags name, ``None`` for ``--insecure``; ValueError says what is missing or wrong."""
    if args.insecure:
        if args.tls_dir is not None:
            raise ValueError("--insecure and --tls-dir exclude each other")
        log.warning("event=insecure_grpc component=%s: gRPC without TLS; any caller on the network is trusted",
                    component)  # fmt: skip
        return None
    if args.tls_dir is None:
        raise ValueError(
            "--tls-dir DIR is required (an identity made by `leasehold certs init`; or LEASEHOLD_TLS_DIR); "
            "--insecure runs without TLS"
        )
    return Tls.load(Path(args.tls_dir))
