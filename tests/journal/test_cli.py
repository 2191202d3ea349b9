"""``leasehold journal dump|verify|replay``: output, exit codes, and the exact seq of damage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from assignment.cli import main
from assignment.partition_core import PartitionCore
from journal.store import Journal
from tests.journal.records import batch

ROOT = Path(__file__).resolve().parents[2]


def _fill(journal: Journal) -> None:
    core = PartitionCore()
    epoch = journal.take_over(0)
    records = core.start_epoch(epoch) + core.join_worker("w1", "zone-a", "10.0.0.1:7001", 8192)
    core.apply_all(records)
    journal.append(0, epoch, [r.encode() for r in records])
    journal.take_over(1)


def test_dump_verify_replay_clean(journal: Journal, journal_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(journal)
    assert main(["journal", "dump", "--db", journal_url, "--partition", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("partition=0 seq=1 epoch=1 kind=epoch_started crc=0x")
    assert 'worker_id: "w1"' in lines[1]
    assert main(["journal", "verify", "--db", journal_url]) == 0
    out = capsys.readouterr().out
    assert "partition=0 ok epoch=1 first_seq=1 last_seq=2 records=2" in out
    assert "partition=1 ok" in out
    assert main(["journal", "replay", "--db", journal_url, "--partition", "0"]) == 0
    assert "workers=1" in capsys.readouterr().out


def test_damage_exits_non_zero_with_the_seq(
    journal: Journal, journal_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    epoch = journal.take_over(0)
    journal.append(0, epoch, batch("x", 5))
    with journal._engine.begin() as conn:
        conn.execute(text('DELETE FROM journal WHERE "partition" = 0 AND seq = 3'))
    assert main(["journal", "verify", "--db", journal_url]) == 1
    captured = capsys.readouterr()
    assert "partition=0 DAMAGED seq=3" in captured.out
    assert "seq 3" in captured.err
    assert main(["journal", "dump", "--db", journal_url]) == 1
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("partition=0 seq=")]) == 2


def test_usage_errors(journal: Journal, journal_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "verify", "--db", journal_url, "--partition", "9"]) == 2
    assert main(["journal", "verify", "--db", f"sqlite:///{tmp_path / 'missing.db'}"]) == 2
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(SystemExit):
        main(["journal", "frobnicate", "--db", journal_url])
    capsys.readouterr()


def test_runs_as_a_program(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal.open(url) as journal:
        journal.append(0, journal.take_over(0), batch("p", 2))
    result = subprocess.run(
        [sys.executable, "-m", "journal.cli", "journal", "verify", "--db", url],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "partition=0 ok" in result.stdout
