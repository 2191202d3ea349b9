"""``leasehold function ...`` against the fake frontend (rerun against the real frontend once it lands)."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from assignment.commands import code
from tests.cli.conftest import Run
from tests.cli.fake_frontend import FakeFrontend


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "fn"
    (folder / "pkg").mkdir(parents=True)
    (folder / "app.py").write_text("def handler(event, context):\n    return event\n")
    (folder / "pkg" / "util.py").write_text("X = 1\n")
    (folder / "bootstrap").write_text("#!/bin/sh\n")
    (folder / "bootstrap").chmod(0o755)
    return folder


def test_create_from_a_folder_keeps_modes(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    result = cli(
        "function", "create", "echo", "--dir", str(_folder(tmp_path)), "--handler", "echo.handler",
        "--memory", "256", "--timeout", "30", "--env", "STAGE=dev", "--env", "EMPTY=", "--layer", "arn:layer:1",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "FunctionName" in result.out
    assert "echo" in result.out
    assert "Environment.STAGE" in result.out
    archive = fake.zip_of("echo")
    assert sorted(archive.namelist()) == ["app.py", "bootstrap", "pkg/util.py"]
    assert stat.S_IMODE(archive.getinfo("bootstrap").external_attr >> 16) == 0o755
    config = fake.functions["echo"]
    assert (config["Runtime"], config["MemorySize"], config["Timeout"]) == ("python3.12", 256, 30)
    assert config["Environment"] == {"Variables": {"STAGE": "dev", "EMPTY": ""}}
    assert config["Layers"][0]["Arn"] == "arn:layer:1"


def test_the_same_folder_gives_the_same_zip(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert cli("function", "create", "a", "--dir", str(folder)).code == 0
    os.utime(folder / "app.py", (1, 1))
    assert cli("function", "create", "b", "--dir", str(folder)).code == 0
    assert fake.functions["a"]["CodeSha256"] == fake.functions["b"]["CodeSha256"]


def test_create_from_a_zip_and_json_output(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    path = tmp_path / "f.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("lambda_function.py", "def lambda_handler(e, c): return e\n")
    result = cli("function", "create", "z", "--zip", str(path), "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["FunctionName"] == "z"
    assert doc["Handler"] == "lambda_function.lambda_handler"
    assert "ResponseMetadata" not in doc
    assert fake.code["z"] == path.read_bytes()


def test_bad_code_is_refused_before_anything_is_sent(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"PK\x03\x04 certainly not a zip")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [
        (["--zip", str(not_zip)], "error: InvalidCode:"),
        (["--zip", str(tmp_path / "missing.zip")], "error: InvalidCode:"),
        (["--zip", "/dev/zero"], "error: InvalidCode:"),
        (["--zip", str(fifo)], "error: InvalidCode:"),
        (["--dir", str(not_zip)], "error: InvalidCode:"),
    ]
    for flags, expected in cases:
        result = cli("function", "create", "bad", *flags)
        assert result.code == 2, flags
        assert result.err.startswith(expected), (flags, result.err)
        assert result.err.count("\n") == 1, (flags, result.err)
    assert fake.requests == []


def test_a_folder_zips_only_regular_files(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.mkfifo(folder / "pipe")
    (folder / "zero").symlink_to("/dev/zero")
    (folder / "dangling").symlink_to(folder / "nowhere")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    assert cli("function", "create", "odd", "--dir", str(folder)).code == 0
    assert sorted(fake.zip_of("odd").namelist()) == ["app.py", "bootstrap", "pkg/util.py"]


def test_oversized_code_is_refused_locally(
    cli: Run, fake: FakeFrontend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.zip"
    with big.open("wb") as stream:
        stream.truncate(50 * 1024 * 1024 + 1)  # sparse: Lambda's real limit, at no cost
    result = cli("function", "create", "big", "--zip", str(big))
    assert result.code == 2
    assert result.err.startswith("error: RequestTooLargeException:")
    monkeypatch.setattr(code, "MAX_ZIP", 1024 * 1024)  # a folder whose zip outgrows the limit, made small
    folder = tmp_path / "incompressible"
    folder.mkdir()
    (folder / "noise").write_bytes(os.urandom(2 * 1024 * 1024))
    result = cli("function", "create", "big", "--dir", str(folder))
    assert result.code == 2
    assert result.err.startswith("error: RequestTooLargeException:")
    assert fake.requests == []


def test_malformed_flags_exit_2_with_usage(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    folder = str(_folder(tmp_path))
    for argv in (
        ["function", "create", "x", "--dir", folder, "--env", "NOEQUALS"],
        ["function", "create", "x", "--dir", folder, "--env", "1BAD=v"],
        ["function", "create", "x", "--dir", folder, "--env", "=v"],
        ["function", "create", "x", "--dir", folder, "--memory", "lots"],
        ["function", "create", "x"],
        ["function", "create", "x", "--dir", folder, "--zip", "y.zip"],
        ["function", "frobnicate", "x"],
    ):
        result = cli(*argv)
        assert result.code == 2, argv
        assert "usage:" in result.err, argv
    assert fake.requests == []


def test_oversized_environment_is_refused(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    result = cli("function", "create", "x", "--dir", str(_folder(tmp_path)), "--env", "K=" + "v" * 5000)
    assert result.code == 2
    assert result.err.startswith("error: InvalidParameterValueException:")
    assert fake.requests == []


def test_api_errors_are_one_line_and_exit_2(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    folder = str(_folder(tmp_path))
    assert cli("function", "create", "dup", "--dir", folder).code == 0
    result = cli("function", "create", "dup", "--dir", folder)
    assert (result.code, result.err) == (2, "error: ResourceConflictException: Function already exist: dup\n")
    result = cli("function", "get", "ghost")
    assert (result.code, result.err) == (2, "error: ResourceNotFoundException: Function not found: ghost\n")


def test_hostile_names_are_sent_as_one_quoted_path_segment_or_refused(cli: Run, fake: FakeFrontend) -> None:
    result = cli("function", "get", "../../_leasehold/v1/status")
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert all("/_leasehold/" not in r.path for r in fake.requests)
    result = cli("function", "get", "x" * 200)  # too long for Lambda: the frontend refuses it
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1
    assert fake.requests[-1].path.endswith("/" + "x" * 200)
    result = cli("function", "get", "")
    assert result.code == 2
    assert result.err.startswith("error: InvalidParameterValueException:")


def test_list_follows_pages_and_prints_a_table_or_json(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    folder = str(_folder(tmp_path))
    for name in ("c", "a", "b"):
        assert cli("function", "create", name, "--dir", folder).code == 0
    result = cli("function", "list")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "RUNTIME", "HANDLER"]
    assert [line.split()[0] for line in lines[1:]] == ["a", "b", "c"]
    doc = json.loads(cli("function", "list", "--json").out)
    assert [f["FunctionName"] for f in doc["Functions"]] == ["a", "b", "c"]
    assert sum(1 for r in fake.requests if r.method == "GET" and "Marker" in r.query) >= 2


def test_update_configuration_code_publish_get_and_delete(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert cli("function", "create", "f", "--dir", str(folder)).code == 0
    before = fake.functions["f"]["CodeSha256"]
    result = cli("function", "update", "f", "--timeout", "60", "--env", "A=1")
    assert result.code == 0, result.err
    assert fake.functions["f"]["Timeout"] == 60
    assert fake.functions["f"]["Environment"] == {"Variables": {"A": "1"}}
    assert fake.functions["f"]["MemorySize"] == 128  # not sent, not changed
    (folder / "app.py").write_text("changed = True\n")
    result = cli("function", "update", "f", "--dir", str(folder), "--publish", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["Version"] == "1"
    assert fake.functions["f"]["CodeSha256"] != before
    assert json.loads(cli("function", "publish", "f", "--json").out)["Version"] == "2"
    assert "Timeout" in cli("function", "get", "f").out
    assert json.loads(cli("function", "get", "f", "--json").out)["Configuration"]["Timeout"] == 60
    assert cli("function", "delete", "f").out == "deleted f\n"
    assert cli("function", "get", "f").code == 2


def test_update_with_nothing_to_change_is_refused(cli: Run, fake: FakeFrontend) -> None:
    result = cli("function", "update", "f")
    assert result.code == 2
    assert result.err.startswith("error: InvalidParameterValueException: nothing to update")
    assert fake.requests == []


def test_an_unreachable_endpoint_is_one_error_line(cli: Run, fake: FakeFrontend) -> None:
    result = cli("function", "list", endpoint="http://127.0.0.1:1")
    assert result.code == 2
    assert result.err.startswith("error: EndpointConnectionError:")
    result = cli("function", "list", endpoint="not a url")
    assert result.code == 2
    assert result.err.startswith("error: InvalidEndpoint:")
