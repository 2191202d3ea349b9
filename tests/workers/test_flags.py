"""The one flag rule: ``leasehold COMMAND --flag`` defaults to ``LEASEHOLD_COMMAND_FLAG``, for every process."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from assignment import cli
from workers.flags import Flags, variable


def test_the_variable_of_a_flag() -> None:
    assert variable("worker", "--zk-session-timeout") == "LEASEHOLD_WORKER_ZK_SESSION_TIMEOUT"
    assert variable("server", "--id") == "LEASEHOLD_SERVER_ID"
    assert variable("worker", "--worker-id") == "LEASEHOLD_WORKER_WORKER_ID"


def test_the_environment_is_a_default_the_command_line_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASEHOLD_TOOL_MEMORY", "8192")
    parser = argparse.ArgumentParser()
    flags = Flags("tool", parser)
    flags.add("--memory", type=int, default=4096)
    flags.add("--data-dir", type=Path, default="./data")
    assert vars(parser.parse_args([])) == {"memory": 8192, "data_dir": Path("./data")}
    assert parser.parse_args(["--memory", "1024"]).memory == 1024


def test_a_bad_value_in_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEASEHOLD_TOOL_MEMORY", "lots")
    parser = argparse.ArgumentParser()
    Flags("tool", parser).add("--memory", type=int, default=4096)
    with pytest.raises(SystemExit):
        parser.parse_args([])
    assert "--memory: invalid int value: 'lots'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["server", "frontend", "worker", "dev"])
def test_every_process_flag_follows_the_rule(command: str) -> None:
    """Each process flag's help names its variable, and no two flags of any processes share one."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen: dict[str, str] = {}
    for action in sub.choices[command]._actions:
        option = next((o for o in action.option_strings if o.startswith("--")), None)
        if option is None or action.dest == "help" or action.nargs == 0:
            continue  # --help and switches such as --sample or --no-bwrap have no variable
        name = variable(command, option)
        assert f"[{name}]" in (action.help or ""), (command, option)
        assert name not in seen, (name, seen[name], option)
        seen[name] = option
