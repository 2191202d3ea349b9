"""Sandbox networks: one network namespace per sandbox, its own Runtime API, and filtered egress.

Each sandbox runs in a network namespace of its own (:class:`SandboxNet`), made by the agent before the
sandbox starts and torn down with it:

- **The Runtime API** listens on ``127.0.0.1:9001`` *inside* the namespace (the socket is bound while
  the agent's namespace thread is in it, then served by the agent's event loop from outside), so only
  that sandbox reaches it; another sandbox's ``127.0.0.1`` is another loopback.
- **Egress** goes through slirp4netns (Debian's ``slirp4netns``), a user-mode TCP/IP stack: the sandbox
  sees a tap device ``10.0.2.100/24``, gateway ``10.0.2.2`` and DNS ``10.0.2.3``; slirp4netns opens
  the real connections from the host as an unprivileged, seccomp-confined process
  (``--enable-sandbox --enable-seccomp``), with ``--disable-host-loopback`` (``10.0.2.2`` does not reach
  the host's ``127.0.0.1``). It exits when the agent does (``--exit-fd``).
- **No route to the platform**: policy rules inside the namespace (``ip rule ... prohibit``; the sandbox
  has no ``CAP_NET_ADMIN`` there, so it cannot change them) refuse the host's own addresses and subnets
  and the private, link-local (cloud metadata), shared and multicast ranges (:data:`DEFAULT_DENY`),
  plus what the operator denies. (The host's addresses are read when the agent makes its first
  namespace: an address the host gains later is covered only if it is in a denied range.) A
  connection there fails with ``EACCES`` at once.
- **Allow-listed endpoints** (:class:`Endpoint`, e.g. the Lambda endpoint so that functions can call
  it): the agent listens at the same ``host:port`` inside the namespace (the address added to its
  loopback when it is not ``127.x``) and forwards each connection to the real endpoint from the host.
  Only that port of that address is reachable; the caller still needs credentials there.
  Allow-listed networks (CIDRs) are routed through slirp4netns before the deny rules apply.

Why slirp4netns and not pasta (passt): pasta as shipped in Debian 12 cannot join a namespace after
dropping root here ("Couldn't switch to pasta namespaces"), so it would run as root parsing the
sandbox's packets, and in background mode it outlives a killed agent; slirp4netns drops its
capabilities and dies with the agent's pipe. The allow-list's per-port forwarding, which pasta's ``-T``
offers only for the host's loopback, is the agent's own :class:`_Forwarder`, for any address.

Namespaces cost ~10 ms to make (unshare, rules, slirp4netns' start), so :class:`NetworkPool` keeps a
few ready and refills in the background once the sandbox that took one has started; a namespace is
never reused by a second sandbox.

Example::

    pool = NetworkPool(EgressPolicy.parse(["127.0.0.1:9000"], []))
    net = await pool.take()          # a ready namespace
    await api.start(sock=net.runtime_socket)
    ...                              # the sandbox runs under: nsenter --net=<net.path> ...
    await net.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import json
import logging
import os
import select
import shutil
import socket
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "DEFAULT_DENY",
    "RUNTIME_API",
    "EgressPolicy",
    "Endpoint",
    "NetworkPool",
    "NetworkUnavailable",
    "SandboxNet",
    "host_networks",
    "resolv_conf",
]

log = logging.getLogger(__name__)

RUNTIME_API = ("127.0.0.1", 9001)
"""Where a sandbox finds its Runtime API, as on AWS (``AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001``)."""
SLIRP_NETWORK = "10.0.2.0/24"
"""slirp4netns' virtual network (its default ``--cidr``): the tap is .100, the gateway .2, DNS .3."""
SLIRP_DNS = "10.0.2.3"
"""slirp4netns' DNS forwarder inside the namespace (it asks the host's resolver)."""
DEFAULT_DENY = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback (the namespace's own is delivered locally before any rule)
        "169.254.0.0/16",  # link-local, with the cloud metadata service
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
"""Destinations a sandbox never reaches unless allow-listed: where platforms and their databases live."""
_CLONE_NEWNET = 0x40000000
_READY_TIMEOUT_S = 10.0
_libc = ctypes.CDLL(None, use_errno=True)


class NetworkUnavailable(RuntimeError):
    """Sandbox network namespaces cannot be made here (not root, or slirp4netns/ip missing)."""


@dataclass(frozen=True)
class Endpoint:
    """A TCP endpoint outside that sandboxes may reach (forwarded by the agent)."""

    host: str
    port: int


@dataclass(frozen=True)
class EgressPolicy:
    """What sandboxes may reach besides the public internet, and what else they may not."""

    endpoints: tuple[Endpoint, ...] = ()
    allow: tuple[ipaddress.IPv4Network, ...] = ()
    deny: tuple[ipaddress.IPv4Network, ...] = ()

    @classmethod
    def parse(cls, allow: Sequence[str], deny: Sequence[str]) -> EgressPolicy:
        """Build a policy from flag values; raise ValueError naming the entry that is wrong.

        ``allow`` entries are ``HOST:PORT`` (one TCP endpoint, forwarded; a host name is resolved now, to
        one IPv4 address) or ``IPV4[/LEN]`` (a network routed through slirp4netns); ``deny`` entries are
        ``IPV4[/LEN]``.
        """
        endpoints: list[Endpoint] = []
        networks: list[ipaddress.IPv4Network] = []
        for entry in (e.strip() for e in allow):
            if not entry:
                continue
            host, sep, port = entry.rpartition(":")
            if sep:
                endpoints.append(Endpoint(str(_address(host, entry)), _port(port, entry)))
            else:
                networks.append(_network(entry))
        return cls(tuple(endpoints), tuple(networks), tuple(_network(e.strip()) for e in deny if e.strip()))


def _address(text: str, entry: str) -> ipaddress.IPv4Address:
    """An IPv4 address, or a host name resolved once, now (a compose service name, say)."""
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        pass
    if not text or not all(part.isalnum() or part == "-" for part in text.replace(".", "")):
        raise ValueError(f"sandbox allow-list entry {entry!r}: {text!r} is not an IPv4 address or host name")
    try:
        return ipaddress.IPv4Address(socket.gethostbyname(text))
    except OSError as exc:
        raise ValueError(f"sandbox allow-list entry {entry!r}: cannot resolve {text!r}: {exc}") from None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"sandbox allow-list entry {entry!r}: port must be 1..65535")
    if int(text) == RUNTIME_API[1]:
        raise ValueError(f"sandbox allow-list entry {entry!r}: port {RUNTIME_API[1]} is the Runtime API's")
    return int(text)


def _network(entry: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(entry, strict=False)
    except ValueError:
        raise ValueError(f"sandbox network entry {entry!r} is not an IPv4 address or CIDR") from None


def host_networks() -> list[ipaddress.IPv4Network]:
    """The host's own IPv4 addresses (as /32) and the subnets they are on."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    networks: list[ipaddress.IPv4Network] = []
    for link in json.loads(out):
        for info in link.get("addr_info", []):
            networks.append(ipaddress.IPv4Network(f"{info['local']}/32"))
            networks.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return networks


def _rules(policy: EgressPolicy, host: Sequence[ipaddress.IPv4Network]) -> list[str]:
    """The ``ip -batch`` lines that configure a fresh namespace (run inside it)."""
    lines = ["link set lo up"]
    for endpoint in policy.endpoints:
        if not ipaddress.IPv4Address(endpoint.host).is_loopback:
            lines.append(f"addr add {endpoint.host}/32 dev lo")  # the forwarder listens on it
    # Rules are looked up after the ``local`` table (priority 0): the namespace's own addresses (its
    # loopback, the forwarders) stay reachable; everything else meets these in priority order.
    # slirp4netns' own virtual network: its gateway (which, with --disable-host-loopback, leads nowhere
    # on the host) and its DNS forwarder; the gateway must be routable for slirp4netns to set its route.
    lines.append(f"rule add priority 100 to {SLIRP_NETWORK} lookup main")
    lines += [f"rule add priority 100 to {network} lookup main" for network in policy.allow]
    denied = dict.fromkeys([*DEFAULT_DENY, *host, *policy.deny])  # ordered, no duplicates
    lines += [f"rule add priority 200 to {network} prohibit" for network in denied]
    return lines


class _Forwarder:
    """Connections to an allow-listed endpoint inside a namespace, relayed to the real one."""

    def __init__(self, endpoint: Endpoint, listening: socket.socket) -> None:
        self.endpoint = endpoint
        self._listening = listening
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, sock=self._listening)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.endpoint.host, self.endpoint.port)
        except OSError:
            writer.close()
            return
        pipes = [asyncio.ensure_future(_pipe(reader, up_writer)), asyncio.ensure_future(_pipe(up_reader, writer))]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes)
        finally:
            self._pipes.difference_update(pipes)
            writer.close()
            up_writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        else:
            self._listening.close()
        for task in list(self._pipes):
            task.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.CancelledError):
        writer.close()  # one side broke: the relay is over (the caller closes both ends)


@dataclass
class SandboxNet:
    """One sandbox's network namespace: its file descriptor, Runtime API socket and slirp4netns."""

    fd: int
    runtime_socket: socket.socket
    slirp: subprocess.Popen[bytes]
    exit_fd: int  # closing it stops slirp4netns
    forwarders: list[_Forwarder] = field(default_factory=list)
    closed: bool = False

    @property
    def path(self) -> str:
        """A path naming the namespace for ``nsenter --net=`` (valid while the agent holds ``fd``)."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    async def close(self) -> None:
        """Stop forwarding, stop slirp4netns and let the namespace go (it dies with its last process)."""
        if self.closed:
            return
        self.closed = True
        for forwarder in self.forwarders:
            await forwarder.close()
        self.runtime_socket.close()
        os.close(self.exit_fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.slirp.wait, 5)
        if self.slirp.poll() is None:
            self.slirp.kill()
            await asyncio.to_thread(self.slirp.wait)
        if self.slirp.stderr is not None:
            self.slirp.stderr.close()  # (read only when it fails to come up)
        os.close(self.fd)


class NetworkPool:
    """Makes sandbox namespaces on one thread of its own and keeps ``size`` of them ready."""

    def __init__(self, policy: EgressPolicy, size: int = 4, slirp: str = "slirp4netns") -> None:
        self.policy = policy
        self.size = size
        self._slirp = slirp
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns")
        self._home = -1  # the agent's own namespace, opened on the namespace thread
        self._host: list[ipaddress.IPv4Network] = []
        self._ready: asyncio.Queue[SandboxNet] | None = None
        self._filler: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()
        self.closed = False

    def check(self) -> None:
        """Raise :class:`NetworkUnavailable` naming what is missing."""
        if os.geteuid() != 0:
            raise NetworkUnavailable("sandbox network namespaces need root (use --sandbox-network host to run without)")
        for tool in (self._slirp, "ip", "nsenter"):
            if shutil.which(tool) is None:
                raise NetworkUnavailable(f"sandbox networks need {tool!r} (Debian: slirp4netns, iproute2, util-linux)")

    def allow(self, endpoint: Endpoint) -> None:
        """Allow one more endpoint; only before the first namespace is made."""
        if self._ready is not None:
            raise RuntimeError("the sandbox allow-list is fixed once namespaces exist")
        self.policy = replace(self.policy, endpoints=(*self.policy.endpoints, endpoint))

    async def take(self) -> SandboxNet:
        """A ready namespace of its own for one sandbox (made now if none is waiting)."""
        if self.closed:
            raise NetworkUnavailable("the agent is stopping")
        if self._ready is None:
            self.check()
            self._host = await asyncio.to_thread(host_networks)
            self._ready = asyncio.Queue()
            self._filler = asyncio.ensure_future(self._fill())
        if self._ready.empty():
            net = await self._make()
        else:
            net = self._ready.get_nowait()
        return net

    def replenish(self) -> None:
        """Make namespaces up to the pool's size again, in the background. A sandbox calls it once it has
        started, so that the refill does not compete with its own start for the CPU."""
        self._wanted.set()

    async def _fill(self) -> None:
        assert self._ready is not None
        while not self.closed:
            while not self.closed and self._ready.qsize() < self.size:
                try:
                    net = await self._make()
                except Exception:
                    log.exception("event=netns_prefill_failed")
                    break
                if self.closed:  # closed while it was being made: nobody will take it
                    await net.close()
                    return
                self._ready.put_nowait(net)
            self._wanted.clear()
            await self._wanted.wait()

    async def _make(self) -> SandboxNet:
        fd, runtime, listening = await asyncio.get_running_loop().run_in_executor(self._thread, self._unshare)
        try:
            slirp, exit_fd = await asyncio.to_thread(self._start_slirp, fd)
        except BaseException:
            for sock in (runtime, *listening):
                sock.close()
            os.close(fd)
            raise
        net = SandboxNet(fd, runtime, slirp, exit_fd)
        for endpoint, sock in zip(self.policy.endpoints, listening, strict=True):
            forwarder = _Forwarder(endpoint, sock)
            await forwarder.start()
            net.forwarders.append(forwarder)
        return net

    def _unshare(self) -> tuple[int, socket.socket, list[socket.socket]]:
        """On the namespace thread: make a namespace, configure it, bind its sockets, come back."""
        if self._home < 0:
            self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if _libc.unshare(_CLONE_NEWNET) != 0:
            raise NetworkUnavailable(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
        sockets: list[socket.socket] = []
        fd = -1
        try:
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            # ip runs as a child of this thread, so inside the new namespace.
            script = "\n".join(_rules(self.policy, self._host)) + "\n"
            done = subprocess.run(["ip", "-batch", "-"], check=False, input=script, capture_output=True, text=True)
            if done.returncode != 0:
                raise NetworkUnavailable(f"configuring a sandbox namespace failed: {done.stderr.strip()}")
            runtime = _listen(RUNTIME_API)
            sockets.append(runtime)
            listening = [_listen((e.host, e.port)) for e in self.policy.endpoints]
            sockets += listening
            return fd, runtime, listening
        except BaseException:
            for sock in sockets:
                sock.close()
            if fd >= 0:
                os.close(fd)
            raise
        finally:
            if _libc.setns(self._home, _CLONE_NEWNET) != 0:  # never leave the thread in a sandbox's namespace
                os.abort()

    def _start_slirp(self, fd: int) -> tuple[subprocess.Popen[bytes], int]:
        ready_r, ready_w = os.pipe()
        exit_r, exit_w = os.pipe()
        os.set_inheritable(exit_w, False)
        try:
            command = [
                self._slirp,
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-sandbox",
                "--enable-seccomp",
                f"--ready-fd={ready_w}",
                f"--exit-fd={exit_r}",
                "--netns-type=path",
                f"/proc/{os.getpid()}/fd/{fd}",
                "tap0",
            ]
            slirp = subprocess.Popen(
                command, pass_fds=(ready_w, exit_r), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
        except BaseException:
            for end in (ready_r, ready_w, exit_r, exit_w):
                os.close(end)
            raise
        os.close(ready_w)
        os.close(exit_r)
        try:
            readable, _, _ = select.select([ready_r], [], [], _READY_TIMEOUT_S)
            if not readable or os.read(ready_r, 1) != b"1":
                slirp.kill()
                _, err = slirp.communicate()
                os.close(exit_w)
                raise NetworkUnavailable(f"slirp4netns did not come up: {err.decode(errors='replace').strip()}")
        finally:
            os.close(ready_r)
        return slirp, exit_w

    async def close(self) -> None:
        """Stop refilling and close the namespaces still waiting."""
        self.closed = True
        self._wanted.set()
        if self._filler is not None:
            # Not cancelled: a namespace half made on the thread would leak its sockets and slirp4netns.
            with contextlib.suppress(Exception):
                await self._filler
        if self._ready is not None:
            while not self._ready.empty():
                await self._ready.get_nowait().close()
        self._thread.shutdown(wait=False)
        if self._home >= 0:
            os.close(self._home)
            self._home = -1


def _listen(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def resolv_conf(directory: Path) -> Path:
    """A ``resolv.conf`` naming slirp4netns' DNS, for sandboxes (the host's may name a private address)."""
    path = directory / "resolv.conf"
    text = f"nameserver {SLIRP_DNS}\n"
    if not path.exists() or path.read_text() != text:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path
