"""A throwaway PostgreSQL server for tests, from Debian's binaries, or an existing one.

Example::

    with PostgresServer.start() as server:        # initdb in a temporary folder, a free loopback port
        url = server.create_schema("t1")            # a schema of its own per test
        ...
        print(server.log_tail())

``LEASEHOLD_TEST_POSTGRES_URL`` (``postgresql://user@host:port/db``) makes :func:`postgres_server` use
that server instead of starting one. When neither works, it raises: a test that needs PostgreSQL fails,
it never skips.

initdb and the server refuse to run as root; as root they run as the ``postgres`` user (``runuser``) on a
folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import psycopg

__all__ = ["ENV_URL", "PostgresServer", "PostgresUnavailable", "find_bin_dir", "postgres_server", "schema_name"]

ENV_URL = "LEASEHOLD_TEST_POSTGRES_URL"
_BIN_DIRS = ("/usr/lib/postgresql/{v}/bin",)
_VERSIONS = ("17", "16", "15", "14", "13")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be started or reached."""


def find_bin_dir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl`` (``LEASEHOLD_PG_BIN`` or Debian's newest)."""
    override = os.environ.get("LEASEHOLD_PG_BIN")
    candidates = [Path(override)] if override else [Path(d.format(v=v)) for v in _VERSIONS for d in _BIN_DIRS]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise PostgresUnavailable(
        "PostgreSQL binaries not found (apt-get install postgresql, or set LEASEHOLD_TEST_POSTGRES_URL)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server the tests may use: one this harness started, or an external one."""

    def __init__(self, url: str, *, data_dir: Path | None = None, bin_dir: Path | None = None) -> None:
        self.url = url
        self.data_dir = data_dir
        self._bin_dir = bin_dir

    # -- lifecycle

    @classmethod
    def start(cls, *, timeout_s: float = 60.0) -> PostgresServer:
        """initdb a temporary cluster and start it on a free loopback port; wait until it accepts connections."""
        bin_dir = find_bin_dir()
        base = Path(tempfile.mkdtemp(prefix="leasehold-pg-"))
        as_root = os.geteuid() == 0
        if as_root:
            shutil.chown(base, user="postgres", group="postgres")
            base.chmod(0o700)
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        data = base / "data"
        try:
            _run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
            last_error = ""
            for _ in range(5):
                port = _free_port()
                options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"
                result = subprocess.run(
                    [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w",
                     "-t", str(int(timeout_s)), "start"],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if result.returncode == 0:
                    server = cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", data_dir=data, bin_dir=bin_dir)
                    server.wait_ready(timeout_s)
                    return server
                last_error = result.stdout + result.stderr + _read(base / "log")
            raise PostgresUnavailable(f"pg_ctl start failed:\n{last_error}")
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise

    @classmethod
    def external(cls, url: str) -> PostgresServer:
        """Use an existing server (``LEASEHOLD_TEST_POSTGRES_URL``)."""
        server = cls(url)
        server.wait_ready(10.0)
        return server

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until the server accepts a connection."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"PostgreSQL at {self.url} not reachable: {exc}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop a server this harness started and delete its folder; an external one is left alone."""
        if self.data_dir is None or self._bin_dir is None:
            return
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, str(self._bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        self.data_dir = None

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- helpers for tests

    def log_tail(self, max_bytes: int = 8000) -> str:
        """The end of the server log (empty for an external server)."""
        if self.data_dir is None:
            return ""
        return _read(self.data_dir.parent / "log")[-max_bytes:]

    def create_schema(self, name: str) -> str:
        """Create an empty schema and return a URL whose connections use it (``search_path``)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{name}"')
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options={quote(f'-csearch_path={name}')}"

    def drop_schema(self, name: str) -> None:
        """Drop a schema made by :meth:`create_schema`."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The external server named by ``LEASEHOLD_TEST_POSTGRES_URL``, or one started for the duration."""
    url = os.environ.get(ENV_URL)
    if url:
        yield PostgresServer.external(url)
        return
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


def schema_name(prefix: str, test_name: str) -> str:
    """A schema of one test's own: ``prefix`` + the test's name folded to ``[a-z0-9_]`` (its last 50)."""
    return prefix + re.sub(r"[^a-z0-9]+", "_", test_name.lower())[-50:]
