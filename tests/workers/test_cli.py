"""``leasehold worker``: the subcommand's flags and environment defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from workers import cli


def test_register_adds_the_worker_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASEHOLD_WORKER_ZONE", "zone-env")
    parser = argparse.ArgumentParser(prog="leasehold")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["worker", "--listen", "0.0.0.0:7001", "--memory", "2048", "--zk", "zk:2181", "--data-dir", "/var/x"]
    )
    assert args.command == "worker"
    assert args.func is cli.run
    assert (args.listen, args.memory, args.zk, args.zone) == ("0.0.0.0:7001", 2048, "zk:2181", "zone-env")
    assert args.data_dir == Path("/var/x")
    with pytest.raises(SystemExit):
        parser.parse_args(["worker", "--zk", "a", "--assignment", "b"])  # one or the other


def test_too_little_memory_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--memory", "64"]) == 2
    assert "--memory must be at least 128 MB" in capsys.readouterr().out
