"""A TCP proxy on loopback that can cut every connection through it: a network partition for one client.

Restarting a server to disconnect a client also restarts the server's own timers and races the client's
reconnect against the server's start-up (kazoo waits a whole session timeout for a handshake the server
never answered, python-zk/kazoo#517). Cutting a proxy drops only the client's connections while the
server, and its session clocks, keep running.

Example::

    with TcpProxy("127.0.0.1", zk_port) as proxy:
        client = KazooClient(hosts=f"127.0.0.1:{proxy.port}")
        proxy.cut()    # connections reset, new ones refused
        proxy.heal()   # new connections go through again
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``(host, target_port)`` until cut."""

    def __init__(self, host: str, target_port: int) -> None:
        self._target = (host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True).start()

    def cut(self) -> None:
        """Reset every connection through the proxy and refuse new ones until :meth:`heal`."""
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _close(sock)

    def heal(self) -> None:
        """Let new connections through again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop accepting and cut everything."""
        self._closed = True
        self.cut()
        _close(self._listener)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._cut:
                    _close(client)
                    _close(upstream)
                    continue
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="tcp-proxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
