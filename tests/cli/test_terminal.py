"""Progress and waiting notes: shown on a terminal (a real pty), never when stderr is a pipe.

Rerun against the real frontend once it lands (with a function that sleeps for the waiting note).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.cli.fake_frontend import FakeFrontend

_ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], *, tty: bool, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``python -m assignment.commands ARGV`` with stderr on a pty (``tty``) or a pipe."""
    command = [sys.executable, "-m", "assignment.commands", *argv]
    full_env = dict(os.environ, **(env or {}))
    if not tty:
        done = subprocess.run(command, capture_output=True, text=True, cwd=_ROOT, env=full_env, timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, cwd=_ROOT, env=full_env
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    process.stdout.close()
    return process.wait(30), out, b"".join(chunks).decode(errors="replace")


def _big_zip(tmp_path: Path) -> Path:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("slow.py", "def handler(e, c): return e\n")
        archive.writestr("blob.bin", os.urandom(3 * 1024 * 1024))
    return path


def test_upload_progress_and_waiting_note_on_a_terminal(tmp_path: Path) -> None:
    with FakeFrontend.start(slow_s=1.5) as fake:
        code, out, err = _run(
            ["function", "create", "slow", "--zip", str(_big_zip(tmp_path)), "--handler", "slow.handler",
             "--endpoint", fake.url], tty=True,
        )  # fmt: skip
        assert code == 0, err
        assert "uploading slow: " in err
        assert "(100%)" in err
        assert "FunctionName" in out
        assert "uploading" not in out
        code, out, err = _run(
            ["invoke", "slow", "--endpoint", fake.url], tty=True, env={"LEASEHOLD_WAIT_NOTE_S": "0.2"}
        )
        assert (code, out) == (0, "{}\n")
        assert "waiting for slow…" in err


def test_nothing_but_the_result_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    with FakeFrontend.start(slow_s=1.5) as fake:
        code, out, err = _run(
            ["function", "create", "slow", "--zip", str(_big_zip(tmp_path)), "--handler", "slow.handler",
             "--endpoint", fake.url], tty=False,
        )  # fmt: skip
        assert (code, err) == (0, "")
        code, out, err = _run(
            ["invoke", "slow", "--endpoint", fake.url], tty=False, env={"LEASEHOLD_WAIT_NOTE_S": "0.2"}
        )
        assert (code, out, err) == (0, "{}\n", "")
