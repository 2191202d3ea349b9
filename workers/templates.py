"""Snapshot-fork (our SnapStart): a template process per function version, and sandboxes forked from it.

A :class:`TemplateSandbox` is a Python sandbox started with a control socket (one end of a socketpair,
inherited through bubblewrap). After init the runtime either reports ``ready`` (it ran the before-snapshot
hooks and now only forks) or ``refused`` (threads were alive; it says so in its log). A
:class:`ForkedSandbox` asks the template to fork: it passes the child's log pipe over the socket and
gets the child's pid (in the template's pid namespace, mapped to the host pid through ``NSpid``); the
template reports every child's exit status. The child connects to the forked sandbox's own Runtime API,
so everything else (invoke, logs, timeouts) is the ordinary :class:`~workers.sandbox.Sandbox` path.

Forked sandboxes share the template's user, namespaces (the network's too) and ``/tmp`` mount (each
gets its own ``TMPDIR`` folder under it), and their memory limit is the template's; killing one kills its
session. A child's Runtime API is a connected socket it inherits, not a port, so siblings cannot reach
each other's.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from workers.runtime_api import RuntimeApi
from workers.sandbox import Isolation, Sandbox, SandboxConfig

__all__ = ["ForkedSandbox", "TemplateSandbox"]

log = logging.getLogger(__name__)


def _children(parent: int) -> set[int]:
    """Host pids of ``parent``'s children."""
    children: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{parent}/task")
    except OSError:
        return children
    for task in tasks:
        try:
            with open(f"/proc/{parent}/task/{task}/children") as f:
                children.update(int(c) for c in f.read().split())
        except OSError:
            continue
    return children


def _ns_pid(pid: int) -> int | None:
    """``pid``'s pid in its own (innermost) pid namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(x for x in f if x.startswith("NSpid:")).split()[-1])
    except (OSError, StopIteration, ValueError):
        return None


class TemplateSandbox(Sandbox):
    """The template process of one function version."""

    def __init__(self, config: SandboxConfig, directory: Path, isolation: Isolation, uid: int | None) -> None:
        super().__init__(config, directory, isolation, uid)
        self._ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.template_ready = self._ready
        self._sock: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._forks: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._fork_lock = asyncio.Lock()
        self._known: set[int] = set()  # children of the template runtime already mapped to a sandbox

    async def _launch(self, env: dict[str, str], output_fd: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.pass_fds = (theirs.fileno(),)
        env["LEASEHOLD_TEMPLATE_FD"] = str(theirs.fileno())
        try:
            await super()._launch(env, output_fd)
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        reader, self._writer = await asyncio.open_connection(sock=ours)  # (a dropped writer closes the socket)
        self._reader = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message: dict[str, Any] = json.loads(line)
                if "ready" in message:
                    if message["ready"] and self._api is not None:
                        self._api.stop_listening()  # it only forks now: nothing may dial its endpoint
                    if not self._ready.done():
                        self._ready.set_result(bool(message["ready"]))
                elif "forked" in message:
                    waiter = self._forks.pop(message["forked"], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(int(message["pid"]))
                elif "exited" in message:
                    exit_waiter = self._exits.pop(int(message["exited"]), None)
                    if exit_waiter is not None and not exit_waiter.done():
                        exit_waiter.set_result(int(message["status"]))
        except (ConnectionError, ValueError):
            log.exception("event=template_channel_broken sandbox=%s", self.config.sandbox_id)
        finally:
            self._sock = None
            if not self._ready.done():
                self._ready.set_result(False)
            for waiter in [*self._forks.values(), *self._exits.values()]:
                if not waiter.done():
                    waiter.set_result(-9)  # the template died: so did its children
            self._forks.clear()
            self._exits.clear()

    @property
    def alive(self) -> bool:
        """True while the template can fork."""
        return self._sock is not None and self._exit is not None and not self._exit.done()

    @property
    def runtime_api_address(self) -> str:
        """The template's ``AWS_LAMBDA_RUNTIME_API`` (its children inherit the value, not the endpoint)."""
        return self._api.address if self._api is not None else ""

    async def fork(
        self, sandbox_id: str, env: dict[str, str], output_fd: int, runtime_fd: int
    ) -> tuple[int, asyncio.Future[int]]:
        """Fork a child for ``sandbox_id`` writing to ``output_fd`` and talking to its Runtime API over
        the connected socket ``runtime_fd``; return its host pid and a future of its exit status."""
        async with self._fork_lock:
            sock = self._sock
            if not self.alive or sock is None or self._pid is None:
                raise RuntimeError("the snapshot template is gone")
            loop = asyncio.get_running_loop()
            forked: asyncio.Future[int] = loop.create_future()
            self._forks[sandbox_id] = forked
            message = json.dumps({"sandbox_id": sandbox_id, "env": env}).encode() + b"\n"
            # A small message on a socket nobody else writes to: the kernel buffer takes it at once.
            fds = array.array("i", [output_fd, runtime_fd])
            sock.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            ns_pid = await asyncio.wait_for(forked, 10)
            exited: asyncio.Future[int] = loop.create_future()
            self._exits[ns_pid] = exited
            # Under bwrap the template's pid namespace differs from ours: map through NSpid, looking only
            # at the template runtime's children we have not seen yet.
            runtime = self._pids[0] if self._pids else self._pid
            children = _children(runtime)
            for child in [*(children - self._known), *(children & self._known)]:  # (a reused pid: rare)
                if _ns_pid(child) == ns_pid:
                    self._known = children
                    return child, exited
            raise RuntimeError(f"cannot find forked child {ns_pid} of the template")

    async def stop(self) -> None:
        """Stop the template; its children die with its namespace."""
        await super().stop()
        if self._writer is not None:
            self._writer.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


class ForkedSandbox(Sandbox):
    """A sandbox whose runtime is a fork of a :class:`TemplateSandbox`."""

    def __init__(self, config: SandboxConfig, directory: Path, template: TemplateSandbox) -> None:
        super().__init__(config, directory, template.isolation, template.uid)
        self.template = template
        self.owns_uid = False
        self.restored = True
        self._runtime_end: socket.socket | None = None  # the child's end of its Runtime API, until forked

    def _prepare_tmp(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def _release_tmp(self) -> None:
        shutil.rmtree(self.template.tmp_dir / self.config.sandbox_id, ignore_errors=True)

    async def _open_runtime_api(self, api: RuntimeApi) -> None:
        # Siblings share the template's network namespace (a child cannot enter one of its own without
        # privileges), so a child's endpoint is a socket pair, not a port: one end served here, the
        # other inherited by the child at fork. No sibling can dial it.
        ours, self._runtime_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        await api.attach(ours)

    def _environment(self, api: str) -> dict[str, str]:
        env = self.template._environment(self.template.runtime_api_address)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = self._stream
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
        tmp = f"/tmp/{self.config.sandbox_id}" if self.isolation.bwrap is not None else str(self.tmp_dir)
        env["TMPDIR"] = env["HOME"] = tmp
        env.pop("LEASEHOLD_TEMPLATE_FD", None)
        if self.config.credentials is not None:  # its own, not the template's (which may be older)
            env.update(self.config.credentials.environment())
        return env

    async def _launch(self, env: dict[str, str], output_fd: int) -> None:
        theirs, self._runtime_end = self._runtime_end, None
        assert theirs is not None
        try:
            self._pid, self._exit = await self.template.fork(self.config.sandbox_id, env, output_fd, theirs.fileno())
        finally:
            theirs.close()
