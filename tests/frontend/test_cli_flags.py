"""``leasehold frontend`` flags: values reach the configuration; bad values are refused naming the flag."""

from __future__ import annotations

import argparse

import pytest

from assignment.frontend import cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="leasehold")
    cli.register(parser.add_subparsers())
    return parser.parse_args(["frontend", *argv])


def test_retention_and_intervals_reach_the_configuration() -> None:
    config = cli.config_from_args(parse("--dead-letter-retention-days", "0.5", "--provision-interval", "5"))
    assert config.dead_letter_retention_s == 43_200
    assert config.provision_interval_s == 5
    defaults = cli.config_from_args(parse())
    assert defaults.dead_letter_retention_s == 14 * 86_400
    assert defaults.provision_interval_s == 30


@pytest.mark.parametrize("flag", ["--dead-letter-retention-days", "--provision-interval"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc", ""])
def test_bad_values_are_refused_naming_the_flag(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(flag, value)
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err
