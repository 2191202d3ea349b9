"""One sandbox: a process tree that runs a function through its own Runtime API endpoint.

A sandbox is started with :meth:`Sandbox.start` (runtime process + init, at most 10 s), runs one
invocation at a time with :meth:`Sandbox.invoke`, restarts itself after a timeout, a crash or memory
exhaustion, and is stopped with :meth:`Sandbox.stop`. How it is confined:

- **bubblewrap** (when ``bwrap`` is installed): new mount, pid and ipc namespaces, a read-only view of
  the system (``--ro-bind / /``), the agent's data folder hidden, the code at ``/var/task``, the layers at
  ``/opt``, the runtime at ``/var/runtime`` and a private ``/tmp``. Killing ``bwrap`` kills the whole
  tree (``--die-with-parent`` and pid 1 of the namespace).
- **its own network namespace** (when the agent has a :class:`~workers.netns.NetworkPool`): the Runtime
  API on ``127.0.0.1:9001`` inside it, reachable from nowhere else, and egress through slirp4netns
  with no route to the host or the platform (:mod:`workers.netns`); the tree is started under
  ``nsenter --net``.
- **its own user** when the agent runs as root (``setpriv``; one uid per sandbox, so sandboxes cannot
  read each other's files or signal each other or the agent).
- **resource limits** (``prlimit``): address space = memory size + 64 MB for the runtime's code and
  stacks, open files 1024, processes 256 (per sandbox user), no core files.
- **/tmp**: a tmpfs of the function's EphemeralStorage size (512 MB by default, ``size=``) when the agent is
  root; a plain folder, unsized, otherwise.

Without bwrap the same layout is expressed with real paths (``LAMBDA_TASK_ROOT`` is the unpacked code,
``TMPDIR`` the sandbox's tmp folder) and the tree is killed by process group and by user.

Output (stdout and stderr, one pipe) is read continuously; the runtime writes before it posts a
result, so draining the pipe when the result arrives gives exactly the invocation's lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journal.outcomes import Outcome
from workers import logs
from workers.netns import NetworkPool, SandboxNet
from workers.runtime_api import MAX_RESPONSE_BYTES, ErrorBody, Invocation, InvocationResult, RuntimeApi

__all__ = [
    "INIT_TIMEOUT_S",
    "MAX_TMP_MB",
    "MIN_TMP_MB",
    "RESERVED_ENV",
    "Isolation",
    "Sandbox",
    "SandboxConfig",
    "SandboxCredentials",
    "SandboxResult",
    "State",
    "kill_user_processes",
    "kill_user_until_gone",
    "process_tree",
    "unmount",
]

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 10.0
"""AWS's init phase limit."""
MIN_TMP_MB = 512
MAX_TMP_MB = 10_240
"""The sizes of /tmp a function may ask for (AWS's EphemeralStorage range)."""
RUNTIME_DIR = Path(__file__).resolve().parent / "runtimes"
_PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
LANG_DIR = Path("/var/lang")
"""Inside bubblewrap the agent's Python (its base prefix) is mounted here, as on Lambda, with the agent's
site-packages (awslambdaric and friends) as its site-packages: sandbox users may not be able to reach the
interpreter's real location (e.g. under a 0700 home folder)."""
_MAX_LOG_BYTES = 1 << 20
_AS_OVERHEAD_MB = 64
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_LOG_LEVEL",
        "AWS_LAMBDA_LOG_FORMAT",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
"""Environment variables a function may not set (AWS refuses them too)."""


class State(enum.Enum):
    """Lifecycle of a sandbox (mirrors ``SandboxState`` in the proto)."""

    STARTING = 1
    IDLE = 2
    BUSY = 3
    INIT_FAILED = 4
    DEAD = 5


@dataclass(frozen=True)
class SandboxCredentials:
    """A function's short-lived credentials for its sandbox's environment (secrets out of ``repr``)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    #: Milliseconds since the epoch; the agent retires the sandbox before this.
    expiration_ms: int = 0

    def environment(self) -> dict[str, str]:
        """The variables an AWS SDK reads them from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


@dataclass(frozen=True)
class SandboxConfig:
    """What runs in a sandbox; validated by the agent before it gets here."""

    sandbox_id: str
    function_name: str
    function_version: str
    memory_mb: int
    timeout_ms: int
    task_dir: Path
    opt_dir: Path | None = None
    runtime: str = "python"
    handler: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    log_level: str = ""
    #: AWS's LogFormat (Text or JSON), SystemLogLevel (JSON only) and log group ("" = /aws/lambda/<name>).
    log_format: str = "Text"
    system_log_level: str = ""
    log_group: str = ""
    #: The size of the sandbox's /tmp tmpfs in MB (EphemeralStorage); 0: the agent's :attr:`Isolation.tmp_mb`.
    tmp_mb: int = 0
    region: str = "us-east-1"
    #: Made ahead of time for provisioned concurrency: the first init is not reported on an invocation.
    provisioned: bool = False
    #: The function's credentials (None: the sandbox gets none).
    credentials: SandboxCredentials | None = None

    @property
    def platform_log(self) -> logs.PlatformLog:
        """How the platform's lines around each invocation are written (text, or JSON records)."""
        return logs.PlatformLog(json=self.log_format == "JSON", system_level=self.system_log_level or "INFO")

    @property
    def arn(self) -> str:
        """The invoked function ARN when the caller gives none."""
        return f"arn:aws:lambda:{self.region}:000000000000:function:{self.function_name}:{self.function_version}"


@dataclass(frozen=True)
class Isolation:
    """How sandboxes are confined; one per agent."""

    bwrap: str | None = shutil.which("bwrap")
    hide: tuple[Path, ...] = ()
    tmp_mb: int = 512
    nofile: int = 1024
    nproc: int = 256
    network: NetworkPool | None = None
    """Where each sandbox's network namespace comes from; ``None``: sandboxes share the host's network."""
    resolv_conf: Path | None = None
    """Mounted on ``/etc/resolv.conf`` in sandboxes with a network namespace (bubblewrap only)."""


@dataclass
class SandboxResult:
    """What one invocation in a sandbox came to, with its logs and measurements (the frontend turns it
    into the caller's :class:`assignment.frontend.types.InvokeResult`)."""

    outcome: Outcome
    payload: bytes = b""
    function_error: ErrorBody | None = None
    runtime_error: ErrorBody | None = None
    logs: str = ""
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    init_ms: float | None = None
    restore_ms: float | None = None


@dataclass(frozen=True)
class InitResult:
    """How a start went: its duration, the init error if any, and the lines printed during init."""

    duration_ms: float
    error: ErrorBody | None
    logs: str


def kill_user_processes(uid: int) -> int:
    """SIGKILL every live (non-zombie) process owned by ``uid`` (a sandbox user); return how many."""
    killed = 0
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid != uid:
                    continue
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    if f.read().rpartition(b")")[2].split()[0] == b"Z":
                        continue
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, FileNotFoundError, PermissionError, IndexError):
                continue
    return killed


async def kill_user_until_gone(uid: int, timeout_s: float = 10.0) -> bool:
    """Kill ``uid``'s processes until none is left alive (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while await asyncio.to_thread(kill_user_processes, uid):
        if time.monotonic() > deadline:
            log.error("event=sandbox_processes_survive uid=%d", uid)
            return False
        await asyncio.sleep(0.005)
    return True


_libc = ctypes.CDLL(None, use_errno=True)
_MNT_DETACH = 2


def _mount_tmpfs(path: Path, options: str) -> str | None:
    """Mount a tmpfs on ``path`` (a system call, not a ``mount`` process); the error text, or None."""
    if _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", 0, options.encode()) == 0:
        return None
    return os.strerror(ctypes.get_errno())


def unmount(path: Path) -> None:
    """Lazily unmount everything mounted on ``path`` (a sandbox's tmpfs)."""
    for _ in range(64):
        if _libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
            return


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (host pids), through ``/proc/<pid>/task/<tid>/children``."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            # A closed iterator even when a task vanishes mid-walk (an unclosed one warns at collection).
            with os.scandir(f"/proc/{pid}/task") as tasks:
                for task in tasks:
                    with open(f"/proc/{pid}/task/{task.name}/children") as f:
                        todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return pids


_HWM = re.compile(rb"VmHWM:\s+(\d+) kB")


def _runtime_pids(root: int) -> list[int]:
    """The processes of a sandbox's tree that run its code (not bwrap or prlimit)."""
    pids = []
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() in ("bwrap", "prlimit"):
                    continue
        except OSError:
            continue
        pids.append(pid)
    return pids


class _PeakMemory:
    """Peak memory of a sandbox's processes through their ``/proc`` files, kept open between invocations
    (opening two files per invocation cost more than the rest of the agent's work for a no-op function).

    ``reset`` writes ``5`` to each ``clear_refs`` (the peak restarts from the current size); ``peak_kb``
    re-reads each ``status`` from its start. A descriptor names its process, not a reused pid: once the
    process is gone, reads fail and count nothing.
    """

    __slots__ = ("_clear", "_status", "pids")

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._status: list[int] = []
        self._clear: list[int] = []
        for pid in pids:
            with contextlib.suppress(OSError):
                self._status.append(os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC))
            with contextlib.suppress(OSError):
                self._clear.append(os.open(f"/proc/{pid}/clear_refs", os.O_WRONLY | os.O_CLOEXEC))

    def reset(self) -> None:
        for fd in self._clear:
            with contextlib.suppress(OSError):
                os.write(fd, b"5")

    def peak_kb(self) -> int:
        total = 0
        for fd in self._status:
            try:
                status = os.pread(fd, 16384, 0)
            except OSError:
                continue
            if b"Name:\tbwrap" in status or b"Name:\tprlimit" in status:
                continue
            match = _HWM.search(status)
            if match:
                total += int(match.group(1))
        return total

    def close(self) -> None:
        for fd in (*self._status, *self._clear):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._status, self._clear = [], []


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        names = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed", "SIGABRT": "aborted"}
        return f"signal: {names.get(name, name)}"
    return f"exit status {code}"


class Sandbox:
    """A sandbox's processes, Runtime API endpoint, logs and invocation state."""

    def __init__(self, config: SandboxConfig, directory: Path, isolation: Isolation, uid: int | None) -> None:
        self.config = config
        self.directory = directory
        self.isolation = isolation
        self.uid = uid
        self.state = State.STARTING
        self.invocations = 0
        self.newest_token: tuple[int, int] | None = None
        self.restored = False
        self._api: RuntimeApi | None = None
        self._net: SandboxNet | None = None  # the network namespace of the current process tree
        self._pid: int | None = None  # the root of the process tree (host pid)
        self._exit: asyncio.Future[int] | None = None  # its exit status (negative: killed by that signal)
        self.extra_env: dict[str, str] = {}
        self.pass_fds: tuple[int, ...] = ()  # inherited by the runtime (a template's control socket)
        self.owns_uid = uid is not None  # forked sandboxes share their template's user
        self.template_ready: asyncio.Future[bool] | None = None  # set by a snapshot template's control channel
        self._log_fd = -1
        self._log = bytearray()
        self._log_dropped = 0
        self._pids: list[int] = []
        self._memory: _PeakMemory | None = None  # open /proc files of ``_pids``
        self._init_ms: float | None = None  # reported on the next invoke, then cleared
        self._ahead_of_time = config.provisioned  # the first init is nobody's invocation's
        self._restart: asyncio.Task[InitResult] | None = None
        self._tmp_mounted = False
        self._stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{config.function_version}]{uuid.uuid4().hex}"
        self.last_init: InitResult | None = None

    # --- process ----------------------------------------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        """The sandbox's private /tmp on the host."""
        return self.directory / "tmp"

    def _environment(self, api: str) -> dict[str, str]:
        cfg = self.config
        bwrap = self.isolation.bwrap is not None
        task = "/var/task" if bwrap else str(cfg.task_dir)
        runtime_dir = "/var/runtime" if bwrap else str(RUNTIME_DIR)
        opt = "/opt" if bwrap or cfg.opt_dir is None else str(cfg.opt_dir)
        lang_bin = str(LANG_DIR / "bin") if bwrap else os.path.dirname(sys.executable)
        lang_lib = f"{LANG_DIR}/lib:" if bwrap else ""
        env = dict(cfg.environment)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": cfg.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": cfg.function_version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": cfg.log_group or f"/aws/lambda/{cfg.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": self._stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_FORMAT": "JSON" if cfg.log_format == "JSON" else "Text",
                "AWS_LAMBDA_RUNTIME_API": api,
                "AWS_REGION": cfg.region,
                "AWS_DEFAULT_REGION": cfg.region,
                "LAMBDA_TASK_ROOT": task,
                "LAMBDA_RUNTIME_DIR": runtime_dir,
                "LEASEHOLD_OPT_DIR": opt,
                "_HANDLER": cfg.handler,
                "TZ": ":UTC",
                "LANG": "en_US.UTF-8",
                "PATH": f"{lang_bin}:/usr/local/bin:/usr/bin/:/bin:{opt}/bin",
                "LD_LIBRARY_PATH": f"{lang_lib}/lib64:/usr/lib64:{runtime_dir}:{task}:{task}/lib:{opt}/lib",
                "HOME": "/tmp" if bwrap else str(self.tmp_dir),
                "TMPDIR": "/tmp" if bwrap else str(self.tmp_dir),
                "MALLOC_ARENA_MAX": "2",  # glibc's per-thread arenas would eat the address-space limit
                **(cfg.credentials.environment() if cfg.credentials is not None else {}),
            }
        )
        if cfg.runtime.startswith("python"):
            env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"
        if cfg.log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = cfg.log_level
        return env

    def _command(self) -> list[str]:
        cfg = self.config
        bwrap = self.isolation.bwrap is not None
        if cfg.runtime.startswith("python"):
            runtime_dir = Path("/var/runtime") if bwrap else RUNTIME_DIR
            python = str(LANG_DIR / "bin" / _PY) if bwrap else sys.executable
            # -S: no site module (the bootstrap puts site-packages on sys.path itself, without .pth files).
            inner = [python, "-I", "-S", "-u", str(runtime_dir / "python_bootstrap.py")]
        elif (cfg.task_dir / "bootstrap").exists():
            inner = ["/var/task/bootstrap" if bwrap else str(cfg.task_dir / "bootstrap")]
        else:
            assert cfg.opt_dir is not None
            inner = ["/opt/bootstrap" if bwrap else str(cfg.opt_dir / "bootstrap")]
        iso = self.isolation
        address_space = (cfg.memory_mb + _AS_OVERHEAD_MB) * 1024 * 1024
        limits = ["prlimit", f"--as={address_space}", f"--nofile={iso.nofile}", f"--nproc={iso.nproc}", "--core=0"]
        command = [*limits, "--"]
        if self.uid is not None:
            command += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
            command += ["--no-new-privs", "--"]
        command += inner
        enter = ["nsenter", f"--net={self._net.path}"] if self._net is not None else []
        if not bwrap:
            return [*enter, *command]
        assert iso.bwrap is not None
        wrap = [iso.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for hidden in iso.hide:
            wrap += ["--tmpfs", str(hidden)]
        # /var becomes an empty read-only tmpfs holding only /var/task and /var/runtime (as on Lambda): the
        # mount points cannot be created inside the read-only view of the host.
        wrap += ["--bind", str(self.tmp_dir), "/tmp", "--tmpfs", "/var", "--ro-bind", str(cfg.task_dir), "/var/task"]
        wrap += ["--ro-bind", str(RUNTIME_DIR), "/var/runtime", "--ro-bind", sys.base_prefix, str(LANG_DIR)]
        site_packages = sysconfig.get_paths()["purelib"]
        wrap += ["--ro-bind", site_packages, f"{LANG_DIR}/lib/{_PY}/site-packages"]
        wrap += ["--remount-ro", "/var"]
        if cfg.opt_dir is not None:
            wrap += ["--ro-bind", str(cfg.opt_dir), "/opt"]

        wrap += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
        wrap += ["--chdir", "/var/task"]
        if self._net is not None and iso.resolv_conf is not None:
            wrap += ["--ro-bind", str(iso.resolv_conf), "/etc/resolv.conf"]
        return [*enter, *wrap, *command]

    def _prepare_tmp(self) -> None:
        tmp = self.tmp_dir
        tmp.mkdir(parents=True, exist_ok=True)
        if self._tmp_mounted:
            return
        if os.geteuid() == 0 and self.uid is not None:
            size_mb = self.config.tmp_mb or self.isolation.tmp_mb
            options = f"size={size_mb}m,mode=0700,uid={self.uid},gid={self.uid}"
            error = _mount_tmpfs(tmp, options)
            self._tmp_mounted = error is None
            if error is not None:
                log.warning("event=tmpfs_failed sandbox=%s error=%r", self.config.sandbox_id, error)
                os.chown(tmp, self.uid, self.uid)
        elif self.uid is not None:
            os.chown(tmp, self.uid, self.uid)
        os.chmod(tmp, 0o700)

    def _release_tmp(self) -> None:
        if self._tmp_mounted:
            unmount(self.tmp_dir)
            self._tmp_mounted = False
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        self._api = RuntimeApi()
        await self._open_runtime_api(self._api)
        self._prepare_tmp()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            await self._launch({**self._environment(self._api.address), **self.extra_env}, write_fd)
        except BaseException:
            os.close(read_fd)
            await self._kill()  # the Runtime API and the network namespace go too
            raise
        finally:
            os.close(write_fd)
        self._log_fd = read_fd
        loop.add_reader(read_fd, self._on_output)
        assert self._pid is not None
        self._pids = [self._pid]

    async def _open_runtime_api(self, api: RuntimeApi) -> None:
        """Serve the Runtime API where only this sandbox reaches it: inside its own network namespace
        (taken from the pool), or on an ephemeral port of the host when sandboxes share its network."""
        pool = self.isolation.network
        if pool is None:
            await api.start()
            return
        self._net = await pool.take()
        await api.start(sock=self._net.runtime_socket)

    async def _launch(self, env: dict[str, str], output_fd: int) -> None:
        """Start the process tree writing to ``output_fd``; set ``_pid`` and ``_exit``."""
        proc = await asyncio.create_subprocess_exec(
            *self._command(),
            stdin=subprocess.DEVNULL,
            stdout=output_fd,
            stderr=output_fd,
            env=env,
            cwd=str(self.config.task_dir) if self.isolation.bwrap is None else "/",
            start_new_session=True,
            pass_fds=self.pass_fds,
        )
        self._pid = proc.pid
        self._exit = asyncio.ensure_future(proc.wait())

    def _on_output(self) -> None:
        self._drain()

    def _drain(self) -> None:
        while self._log_fd >= 0:
            try:
                chunk = os.read(self._log_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                asyncio.get_running_loop().remove_reader(self._log_fd)
                os.close(self._log_fd)
                self._log_fd = -1
                return
            room = _MAX_LOG_BYTES - len(self._log)
            self._log += chunk[: max(0, room)]
            self._log_dropped += max(0, len(chunk) - max(0, room))

    def _peak_memory(self) -> _PeakMemory:
        """The probe of the current processes (opened again when they changed)."""
        if self._memory is None or self._memory.pids is not self._pids:
            if self._memory is not None:
                self._memory.close()
            self._memory = _PeakMemory(self._pids)
        return self._memory

    def _take_log(self) -> str:
        self._drain()
        text = self._log.decode("utf-8", "replace")
        if self._log_dropped:
            text += f"[leasehold: {self._log_dropped} bytes of output dropped]\n"
        self._log = bytearray()
        self._log_dropped = 0
        return text

    async def _kill(self) -> None:
        """Kill the process tree and wait for it; close the Runtime API."""
        pid, self._pid = self._pid, None
        if pid is not None and self._exit is not None and not self._exit.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self._exit is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._exit), 10)
        if self.uid is not None and self.owns_uid and os.geteuid() == 0:
            await kill_user_until_gone(self.uid)  # anything that left the session, and the stragglers
        self._take_log()
        if self._memory is not None:
            self._memory.close()
            self._memory = None
        if self._log_fd >= 0:
            asyncio.get_running_loop().remove_reader(self._log_fd)
            os.close(self._log_fd)
            self._log_fd = -1
        if self._api is not None:
            await self._api.close()
            self._api = None
        if self._net is not None:
            net, self._net = self._net, None
            await net.close()

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self, init_timeout_s: float = INIT_TIMEOUT_S) -> InitResult:
        """Start the runtime and wait for init (its first ``/next``), an init error, an exit or the timeout."""
        self.state = State.STARTING
        began = time.perf_counter()
        try:
            await self._spawn()
            return await self._started(began, init_timeout_s)
        finally:
            if self.isolation.network is not None:
                self.isolation.network.replenish()

    async def _started(self, began: float, init_timeout_s: float) -> InitResult:
        """Wait for the spawned runtime's init (see :meth:`start`)."""
        assert self._api is not None
        assert self._exit is not None
        ready = asyncio.ensure_future(self._api.ready.wait())
        failed = asyncio.ensure_future(self._api.init_error_posted.wait())
        waiters: set[asyncio.Future[Any]] = {ready, failed, self._exit}
        if self.template_ready is not None:
            waiters.add(self.template_ready)
        deadline = time.perf_counter() + init_timeout_s
        while True:
            done, pending = await asyncio.wait(
                waiters, timeout=max(0.0, deadline - time.perf_counter()), return_when="FIRST_COMPLETED"
            )
            refused = self.template_ready
            if refused is not None and done == {refused} and not refused.result():
                waiters.discard(refused)  # a refused template carries on as a plain sandbox
                continue
            break
        for task in (ready, failed):
            if task in pending:
                task.cancel()
        duration = (time.perf_counter() - began) * 1000
        error: ErrorBody | None = None
        template = self.template_ready is not None and self.template_ready.done() and self.template_ready.result()
        if self._api.ready.is_set() or template:
            self.state = State.IDLE
            # Measured once per start: walking /proc on every invoke costs more than the invoke itself.
            self._pids = _runtime_pids(self._pid) if self._pid is not None else []
        elif self._api.init_error is not None:
            error = self._api.init_error
        elif self._exit.done():
            description = _exit_description(self._exit.result())
            error = ErrorBody("Runtime.ExitError", f"Runtime exited with error: {description}")
        else:
            error = ErrorBody("Runtime.InitError", f"Init timed out after {init_timeout_s:.2f} seconds")
        init_logs = self._take_log()
        if error is not None:
            await self._kill()
            init_logs += self._take_log()
            self.state = State.INIT_FAILED
        if error is not None:
            status = "timeout" if error.error_message.startswith("Init timed out") else "error"
            init_logs += self.config.platform_log.init_report(duration, status, error.error_type)
        # A provisioned sandbox's first init happened before any invocation (AWS reports none on the first
        # REPORT); an init after a crash is an invocation's again.
        self._init_ms = None if self._ahead_of_time and error is None else duration
        self._ahead_of_time = False
        self.last_init = InitResult(duration, error, init_logs)
        log.info("event=sandbox_started sandbox=%s init_ms=%.2f error=%s", self.config.sandbox_id, duration, error)
        return self.last_init

    def _restart_in_background(self) -> None:
        async def restart() -> InitResult:
            await self._kill()
            return await self.start()

        self.state = State.STARTING
        self._restart = asyncio.ensure_future(restart())

    async def reset(self) -> InitResult:
        """Kill everything and start again with a fresh /tmp."""
        await self._cancel_restart()
        await self._kill()
        self._release_tmp()
        return await self.start()

    async def _cancel_restart(self) -> None:
        if self._restart is not None and not self._restart.done():
            self._restart.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._restart
        self._restart = None

    async def stop(self) -> None:
        """Kill the sandbox's processes and remove its files."""
        await self._cancel_restart()
        await self._kill()
        self.state = State.DEAD
        self._release_tmp()
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- invoke -------------------------------------------------------------------------------------

    async def invoke(self, invocation: Invocation) -> SandboxResult:
        """Run one invocation (the caller guarantees one at a time); never raises for function failures."""
        cfg = self.config
        self.state = State.BUSY
        self.invocations += 1
        began = time.perf_counter()
        deadline_s = invocation.deadline_ms / 1000
        preamble = ""
        if self._restart is not None:
            restart, self._restart = self._restart, None
            with contextlib.suppress(asyncio.CancelledError):
                await restart
        if self._pid is None or self._exit is None or self._exit.done() or self._api is None:
            # Init failed earlier (or the runtime died): AWS retries init under the function timeout.
            await self._kill()
            init = await self.start(max(0.001, deadline_s - time.time()))
            preamble = init.logs
            if init.error is not None:
                return self._finish(invocation, began, preamble, Outcome.CRASH, runtime_error=init.error, restart=False)
        assert self._api is not None
        assert self._exit is not None
        self.state = State.BUSY
        self._peak_memory().reset()
        preamble += self._take_log()  # stray output between invocations goes with this one
        answer = self._api.submit(invocation)
        timeout = max(0.0, deadline_s - time.time())
        waiters: set[asyncio.Future[Any]] = {answer, self._exit}
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when="FIRST_COMPLETED")
        if answer in done and answer.exception() is None:
            result: InvocationResult = answer.result()
            if result.too_large:
                message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                error = ErrorBody("Function.ResponseSizeTooLarge", message)
                return self._finish(invocation, began, preamble, Outcome.FUNCTION_ERROR, function_error=error)
            if result.error is not None:
                oom = result.error.error_type == "MemoryError"
                outcome = Outcome.OUT_OF_MEMORY if oom else Outcome.FUNCTION_ERROR
                return self._finish(invocation, began, preamble, outcome, function_error=result.error, restart=oom)
            return self._finish(invocation, began, preamble, Outcome.OK, payload=result.payload)
        if self._exit.done():
            code = self._exit.result()
            if self.isolation.bwrap is not None and 128 < code < 128 + 65:
                code = 128 - code  # bwrap reports a child killed by signal N as exit status 128 + N
            description = _exit_description(code)
            message = f"RequestId: {invocation.request_id} Error: Runtime exited with error: {description}"
            error = ErrorBody("Runtime.ExitError", message)
            line = f"{logs.utc_timestamp()} {message}\nRuntime.ExitError\n"
            return self._finish(invocation, began, preamble, Outcome.CRASH, runtime_error=error, extra=line)
        # Timed out (or the endpoint went away under us).
        self._api.abandon()
        timeout_s = cfg.timeout_ms / 1000
        message = f"{logs.utc_timestamp()} {invocation.request_id} Task timed out after {timeout_s:.2f} seconds"
        error = ErrorBody("Sandbox.Timedout", message)
        return self._finish(invocation, began, preamble, Outcome.TIMEOUT, runtime_error=error, extra=message + "\n")

    def _finish(
        self,
        invocation: Invocation,
        began: float,
        preamble: str,
        outcome: Outcome,
        *,
        payload: bytes = b"",
        function_error: ErrorBody | None = None,
        runtime_error: ErrorBody | None = None,
        extra: str = "",
        restart: bool | None = None,
    ) -> SandboxResult:
        duration = (time.perf_counter() - began) * 1000
        output = self._take_log()
        peak_mb = max(1, self._peak_memory().peak_kb() // 1024)
        init_ms, self._init_ms = self._init_ms, None
        restore_ms = None
        if self.restored and init_ms is not None:
            init_ms, restore_ms = None, init_ms
        status = None if outcome.keeps_sandbox else {Outcome.TIMEOUT: "timeout"}.get(outcome, "error")
        # The text REPORT names a status only when the sandbox broke; platform.report always has one, and
        # a function error is "error" there even though the sandbox lives on.
        report_status = status or ("error" if function_error is not None else "success")
        text = (
            preamble
            + self.config.platform_log.start(invocation.request_id, self.config.function_version)
            + output
            + extra
            + self.config.platform_log.end(invocation.request_id)
            + self.config.platform_log.report(
                invocation.request_id,
                duration_ms=duration,
                memory_mb=self.config.memory_mb,
                max_memory_mb=peak_mb,
                init_ms=init_ms,
                restore_ms=restore_ms,
                status=status,
                json_status=report_status,
            )
        )
        broken = not outcome.keeps_sandbox
        if restart if restart is not None else broken:
            self._restart_in_background()
        elif self.state == State.BUSY:
            self.state = State.INIT_FAILED if runtime_error is not None and outcome == Outcome.CRASH else State.IDLE
        return SandboxResult(
            outcome=outcome,
            payload=payload,
            function_error=function_error,
            runtime_error=runtime_error,
            logs=text,
            duration_ms=duration,
            max_memory_mb=peak_mb,
            init_ms=init_ms,
            restore_ms=restore_ms,
        )
