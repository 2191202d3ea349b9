"""The template side of snapshot-fork: after init, wait for fork requests from the agent.

The Python bootstrap calls :func:`become_template` after a successful init when the agent asked for a
template. If other threads are alive, forking is unsafe: the template says so in its log and on the
control socket and carries on as a plain sandbox. Otherwise it runs the before-snapshot hooks and serves
the agent's control socket (one JSON line per message; a fork request carries the child's log pipe and
its end of a connected Runtime API socket as SCM_RIGHTS file descriptors). Each fork child starts a new
session, takes the log pipe as stdout and stderr, applies its environment (log stream, ``TMPDIR``),
reseeds ``random``, runs the after-restore hooks and returns a client on its own Runtime API socket to
the bootstrap, which serves it. The template reaps its children and reports each exit status to the agent.
"""

from __future__ import annotations

import array
import gc
import importlib
import json
import os
import random
import select
import signal
import socket
import sys
import threading
from typing import Any

_MAX_FDS = 2  # a fork request carries its log pipe and its Runtime API socket


def _threads_alive() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def become_template(control_fd: int, client: Any) -> Any:
    """Serve fork requests forever in the template; return a Runtime API client in each child.

    Returns ``client`` unchanged (a plain start) when forking is unsafe.
    """
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=control_fd)
    threads = _threads_alive()
    if threads > 1 or threading.active_count() > 1:
        reason = f"{threads} threads alive after init"
        print(f"SNAPSHOT_SKIPPED reason={reason!r}: forking is unsafe, falling back to a plain start", flush=True)
        _send(conn, {"ready": False, "reason": reason})
        conn.close()
        return client
    hooks = importlib.import_module("snapshot_restore_py")  # the registry the function used (ours, first)
    for func, args, kwargs in hooks.get_before_snapshot():
        func(*args, **kwargs)
    client.close()  # the template's own Runtime API connection is not shared with children
    gc.collect()
    gc.freeze()  # children then do not touch (and copy) the template's objects when they collect
    sys.stdout.flush()
    sys.stderr.flush()
    _send(conn, {"ready": True})
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    buffer = b""
    while True:
        readable, _, _ = select.select([conn.fileno(), wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap(conn)
        if conn.fileno() not in readable:
            continue
        fds = array.array("i")
        data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(_MAX_FDS * fds.itemsize))
        if not data:
            os._exit(0)  # the agent went away: so does the template (its children are killed with it)
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            log_fd, runtime_fd = fds.pop(0), fds.pop(0)
            pid = os.fork()
            if pid == 0:
                return _child(conn, (wake_r, wake_w), log_fd, runtime_fd, request)
            os.close(log_fd)
            os.close(runtime_fd)
            _send(conn, {"forked": request["sandbox_id"], "pid": pid})


def _reap(conn: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _send(conn, {"exited": pid, "status": code})


def _child(conn: socket.socket, wake: tuple[int, int], log_fd: int, runtime_fd: int, request: dict[str, Any]) -> Any:
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    conn.close()
    os.close(wake[0])
    os.close(wake[1])
    os.setsid()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.update(request["env"])
    tmp = request["env"].get("TMPDIR")
    if tmp:
        os.makedirs(tmp, mode=0o700, exist_ok=True)
    random.seed()
    hooks = importlib.import_module("snapshot_restore_py")
    for func, args, kwargs in hooks.get_after_restore():
        func(*args, **kwargs)
    bootstrap = sys.modules["__main__"]
    # The child's Runtime API is the connected socket it was given, never a port its siblings could dial.
    runtime = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=runtime_fd)
    return bootstrap.RuntimeClient(request["env"]["AWS_LAMBDA_RUNTIME_API"], sock=runtime)
