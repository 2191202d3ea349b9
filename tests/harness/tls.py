"""The test session's cluster CA: every process a test starts serves gRPC with mTLS, as in production.

The CA and one identity per role are made once per test process (in a temporary folder removed at exit);
tests dial as the role that makes the call in a cluster: ``frontend`` toward servers and workers' Invoke,
``server`` toward workers' CreateSandbox and friends.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import grpc

from workers.certs import init
from workers.tls import Tls
from workers.tls import aio_channel as _aio_channel
from workers.tls import channel as _channel

__all__ = ["aio_channel", "certs", "channel", "identity", "tls_args"]


@functools.cache
def certs() -> Path:
    """The session's CA folder (``ca.pem``, and ``server``, ``frontend``, ``worker``, ``client`` identities)."""
    folder = Path(tempfile.mkdtemp(prefix="leasehold-tls-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    init(folder / "ca", force=True)
    return folder / "ca"


def identity(role: str) -> Tls:
    """The session identity of ``role``."""
    return Tls.load(certs() / role)


def tls_args(role: str) -> list[str]:
    """The flags that give a ``leasehold`` process the session identity of ``role``."""
    return ["--tls-dir", str(certs() / role)]


def aio_channel(
    address: str, to: str, *, as_role: str = "frontend", options: list[tuple[str, int]] | None = None
) -> grpc.aio.Channel:
    """A grpc.aio channel to the ``to`` process at ``address``, authenticated as ``as_role``."""
    return _aio_channel(address, identity(as_role), to, options or ())


def channel(
    address: str, to: str, *, as_role: str = "frontend", options: list[tuple[str, int]] | None = None
) -> grpc.Channel:
    """A blocking channel to the ``to`` process at ``address``, authenticated as ``as_role``."""
    return _channel(address, identity(as_role), to, options or ())
