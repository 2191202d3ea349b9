"""``leasehold frontend`` flags: values reach the configuration; bad values are refused naming the flag."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from assignment.frontend import cli
from tests.harness import tls


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="leasehold")
    cli.register(parser.add_subparsers())
    return parser.parse_args(["frontend", *tls.tls_args("frontend"), *argv])


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


def test_auth_and_the_bootstrap_key_reach_the_configuration_and_stay_out_of_its_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "AKIAABCDEFGHIJKLMNOP:" + "s" * 40
    assert cli.config_from_args(parse()).auth == "sigv4"
    assert cli.config_from_args(parse("--auth", "none")).auth == "none"
    assert cli.config_from_args(parse("--bootstrap-key", key)).bootstrap_key == key
    path = tmp_path / "admin.key"
    path.write_text(key + "\n")
    config = cli.config_from_args(parse("--bootstrap-key-file", str(path), "--key-cache-ttl", "0.5"))
    assert (config.bootstrap_key, config.key_cache_ttl_s) == (key, 0.5)
    assert "s" * 40 not in repr(config)
    monkeypatch.setenv("LEASEHOLD_FRONTEND_BOOTSTRAP_KEY", key)
    assert cli.config_from_args(parse()).bootstrap_key == key


def test_a_bad_bootstrap_key_is_refused_without_echoing_its_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not 40 characters") as refused:
        cli.config_from_args(parse("--bootstrap-key", "AKIAABCDEFGHIJKLMNOP:tooshort"))
    assert "tooshort" not in str(refused.value)
    with pytest.raises(ValueError, match="--bootstrap-key-file"):
        cli.config_from_args(parse("--bootstrap-key-file", str(tmp_path / "missing")))


def test_the_bootstrap_flags_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--bootstrap-key", "a:b", "--bootstrap-key-file", "x")
    assert "not allowed with" in capsys.readouterr().err


def test_the_journal_url_may_come_from_a_file_and_a_bad_file_is_named(tmp_path: Path) -> None:
    secret = tmp_path / "journal-url"
    secret.write_text("postgresql://leasehold:s3cret@db:5432/leasehold\n")
    assert cli.config_from_args(parse("--journal-file", str(secret))).journal == secret.read_text().strip()
    secret.write_text("  \n")
    with pytest.raises(ValueError, match=r"--journal-file .*: empty"):
        cli.config_from_args(parse("--journal-file", str(secret)))
    with pytest.raises(ValueError, match=r"--journal-file .*: No such file"):
        cli.config_from_args(parse("--journal-file", str(tmp_path / "missing")))
    with pytest.raises(SystemExit):  # one or the other
        parse("--journal", "sqlite:///x.db", "--journal-file", str(secret))
