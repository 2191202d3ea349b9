"""Throwaway ZooKeeper servers for tests, from Debian's package (``/usr/share/java``), no Docker.

A single server or an ensemble of three, on free loopback ports, with a short ``tickTime`` so sessions
can be as short as 2 x tick. Readiness is ``ruok`` → ``imok`` (and, for an ensemble, ``srvr`` reporting a
mode). Servers can be stopped and started again on the same ports and data (to test "restart ZooKeeper").
When the server cannot be started this raises: a test that needs ZooKeeper fails, it never skips.

Example::

    with ZooKeeperCluster.start(size=1) as zk:
        client = KazooClient(hosts=zk.hosts + "/my-test")
        ...
        zk.restart()
        print(zk.log_tail())
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["ZooKeeperCluster", "ZooKeeperUnavailable", "four_letter"]

# As Debian runs it (the jar's manifest names its dependencies), plus a log4j binding so the logs say something.
_CLASSPATH = ":".join(
    [
        "/etc/zookeeper/conf",
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    ]
)
_JAR = Path("/usr/share/java/zookeeper.jar")


class ZooKeeperUnavailable(RuntimeError):
    """ZooKeeper could not be started."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def four_letter(port: int, word: str, timeout_s: float = 1.0) -> str:
    """Send a four-letter command to ``127.0.0.1:port`` and return the answer ('' when unreachable)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(word.encode())
            chunks = []
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


@dataclass
class _Node:
    myid: int
    client_port: int
    peer_port: int
    election_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None


class ZooKeeperCluster:
    """One or three ZooKeeper servers on loopback."""

    def __init__(self, root: Path, size: int, tick_ms: int) -> None:
        self.root = root
        self.tick_ms = tick_ms
        self.nodes = [
            _Node(i + 1, _free_port(), _free_port(), _free_port(), root / f"data{i + 1}", root / f"zk{i + 1}.log")
            for i in range(size)
        ]

    @property
    def hosts(self) -> str:
        """The connect string of every server (no chroot)."""
        return ",".join(f"127.0.0.1:{n.client_port}" for n in self.nodes)

    @classmethod
    def start(cls, size: int = 1, tick_ms: int = 200) -> ZooKeeperCluster:
        """Start ``size`` servers in a temporary folder and wait until they serve."""
        if shutil.which("java") is None or not any(Path("/usr/share/java").glob("zookeeper*.jar")):
            raise ZooKeeperUnavailable("java or /usr/share/java/zookeeper*.jar missing (apt-get install zookeeper)")
        cluster = cls(Path(tempfile.mkdtemp(prefix="leasehold-zk-")), size, tick_ms)
        try:
            for node in cluster.nodes:
                cluster._configure(node)
            cluster.start_all()
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _configure(self, node: _Node) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"tickTime={self.tick_ms}",
            f"dataDir={node.data_dir}",
            f"clientPort={node.client_port}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,mntr,stat",
            "maxSessionTimeout=60000",
            "minSessionTimeout=" + str(2 * self.tick_ms),
            "globalOutstandingLimit=10000",
        ]
        if len(self.nodes) > 1:
            lines += ["initLimit=20", "syncLimit=10", "standaloneEnabled=false"]
            lines += [f"server.{n.myid}=127.0.0.1:{n.peer_port}:{n.election_port}" for n in self.nodes]
            (node.data_dir / "myid").write_text(f"{node.myid}\n")
        (node.data_dir.parent / f"zoo{node.myid}.cfg").write_text("\n".join(lines) + "\n")

    def start_node(self, index: int) -> None:
        """Start one server (a no-op when it runs)."""
        node = self.nodes[index]
        if node.process is not None and node.process.poll() is None:
            return
        env = dict(os.environ, ZOO_LOG_DIR=str(self.root), JVMFLAGS="-Xmx256m")
        log = node.log_path.open("ab")
        node.process = subprocess.Popen(
            [
                "java",
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.log.dir=" + str(self.root),
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-cp",
                _CLASSPATH,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(self.root / f"zoo{node.myid}.cfg"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()

    def start_all(self, timeout_s: float = 60.0) -> None:
        """Start every server and wait until the cluster serves."""
        for index in range(len(self.nodes)):
            self.start_node(index)
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until every running server answers ``imok`` and reports a mode."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if node.process is None:
                continue
            while True:
                if node.process.poll() is not None:
                    raise ZooKeeperUnavailable(f"ZooKeeper {node.myid} exited:\n{self.log_tail()}")
                if four_letter(node.client_port, "ruok") == "imok" and "Mode:" in four_letter(node.client_port, "srvr"):
                    break
                if time.monotonic() > deadline:
                    raise ZooKeeperUnavailable(f"ZooKeeper {node.myid} not ready in {timeout_s}s:\n{self.log_tail()}")
                time.sleep(0.05)

    def stop_node(self, index: int) -> None:
        """Stop one server (SIGTERM, then SIGKILL)."""
        node = self.nodes[index]
        if node.process is None:
            return
        node.process.terminate()
        try:
            node.process.wait(10)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(10)
        node.process = None

    def stop_all(self) -> None:
        """Stop every server."""
        for index in range(len(self.nodes)):
            self.stop_node(index)

    def restart(self, timeout_s: float = 60.0) -> None:
        """Stop and start every server on the same ports and data."""
        self.stop_all()
        self.start_all(timeout_s)

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of each server's log."""
        parts = []
        for node in self.nodes:
            with contextlib.suppress(OSError):
                text = node.log_path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- zookeeper {node.myid} ({node.log_path})\n" + "\n".join(text))
        return "\n".join(parts)

    def close(self) -> None:
        """Stop every server and remove the folder."""
        self.stop_all()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ZooKeeperCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
