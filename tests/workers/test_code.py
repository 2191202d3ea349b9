"""Code packages: zips and folders, layers under /opt, the content-hash cache, limits and zip safety."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.workers.harness import AgentProcess, code_of, create, function_dir, invoke
from workers import code as code_module
from workers.code import CodeCache, CodeError, DirSource, Source, ZipSource
from workers.v1 import worker_pb2


def make_zip(entries: Mapping[str, str | bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name.endswith("bootstrap") else 0o644) << 16
            archive.writestr(info, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("entries", "links", "message"),
    [
        ({"../evil.py": "x"}, None, "escapes its folder"),
        ({"a/../../evil.py": "x"}, None, "escapes its folder"),
        ({"/etc/evil": "x"}, None, "absolute path"),
        ({"C:/evil": "x"}, None, "absolute path"),
        ({"ok.py": "x"}, {"link": "/etc/passwd"}, "symlink pointing outside"),
        ({"ok.py": "x"}, {"sub/link": "../../outside"}, "symlink pointing outside"),
    ],
)
def test_unsafe_zip_entries_are_refused(
    tmp_path: Path, entries: dict[str, str], links: dict[str, str] | None, message: str
) -> None:
    cache = CodeCache(tmp_path / "cache")
    with pytest.raises(CodeError, match=message):
        cache.function_dir(ZipSource(data=make_zip(entries, links)))
    assert not (tmp_path / "evil.py").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # nothing half-unpacked is left


def test_zip_is_unpacked_once_per_content_hash(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path / "cache")
    data = make_zip({"app.py": "x = 1\n", "bootstrap": "#!/bin/sh\n"}, {"alias.py": "app.py"})
    first = cache.function_dir(ZipSource(data=data))
    assert cache.function_dir(ZipSource(data=data)) == first
    assert (first / "app.py").read_text() == "x = 1\n"
    assert os.access(first / "bootstrap", os.X_OK)
    assert os.readlink(first / "alias.py") == "app.py"
    assert stat.S_IMODE((first / "app.py").stat().st_mode) == 0o644
    folder = function_dir(tmp_path / "src", "x = 1\n")
    from_dir = cache.function_dir(DirSource(folder))
    assert cache.function_dir(DirSource(folder)) == from_dir != first
    (folder / "app.py").write_text("x = 2\n")
    assert cache.function_dir(DirSource(folder)) != from_dir


def test_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CodeCache(tmp_path / "cache")
    with pytest.raises(CodeError, match="limit is 52428800 bytes"):
        cache.function_dir(ZipSource(data=b"\0" * (code_module.MAX_ZIP_BYTES + 1)))
    with pytest.raises(CodeError, match="not a valid zip"):
        cache.function_dir(ZipSource(data=b"not a zip"))
    with pytest.raises(CodeError, match="cannot read"):
        cache.function_dir(ZipSource(path=tmp_path / "missing.zip"))
    with pytest.raises(CodeError, match="does not exist"):
        cache.function_dir(DirSource(tmp_path / "missing"))
    layers: list[Source] = [ZipSource(data=make_zip({f"python/l{i}.py": ""})) for i in range(6)]
    with pytest.raises(CodeError, match="at most 5"):
        cache.layers_dir(layers)
    monkeypatch.setattr(code_module, "MAX_UNZIPPED_BYTES", 1000)
    with pytest.raises(CodeError, match="exceeds the limit"):
        cache.function_dir(ZipSource(data=make_zip({"big.bin": b"\0" * 2000})))
    code = ZipSource(data=make_zip({"app.py": b"#" * 600}))
    with pytest.raises(CodeError, match="exceed"):
        cache.package(code, [ZipSource(data=make_zip({"python/x.py": b"#" * 600}))])
    outside = tmp_path / "linky"
    outside.mkdir()
    (outside / "escape").symlink_to("/etc")
    with pytest.raises(CodeError, match="symlink pointing outside"):
        cache.function_dir(DirSource(outside))


def test_layers_are_under_opt_and_on_sys_path(agent: AgentProcess, tmp_path: Path) -> None:
    code = make_zip(
        {
            "app.py": (
                "import helper, shared, os\n"
                "def handler(e, c):\n"
                "    return [helper.NAME, shared.VALUE, sorted(os.listdir('/opt')), open('/opt/data.txt').read()]\n"
            )
        }
    )
    layer1 = make_zip({"python/helper.py": "NAME = 'layer1'\n", "python/shared.py": "VALUE = 1\n", "data.txt": "a"})
    layer2 = make_zip({"python/shared.py": "VALUE = 2\n", "data.txt": "b"})
    zip_path = tmp_path / "layer2.zip"
    zip_path.write_bytes(layer2)
    create(
        agent.stub,
        "layers-1",
        worker_pb2.CodeRef(zip_bytes=code),
        layers=[worker_pb2.CodeRef(zip_bytes=layer1), worker_pb2.CodeRef(zip_path=str(zip_path))],
    )
    assert json.loads(invoke(agent.stub, "layers-1").payload) == ["layer1", 2, ["data.txt", "python"], "b"]
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="layers-1"))


def test_bad_packages_are_invalid_argument(agent: AgentProcess, tmp_path: Path) -> None:
    def create_with(ref: worker_pb2.CodeRef, **fields: Any) -> grpc.StatusCode:
        return code_of(lambda: create(agent.stub, "badpkg-1", ref, **fields))

    assert create_with(worker_pb2.CodeRef(zip_bytes=make_zip({"../x.py": ""}))) == grpc.StatusCode.INVALID_ARGUMENT
    assert create_with(worker_pb2.CodeRef(zip_bytes=b"nope")) == grpc.StatusCode.INVALID_ARGUMENT
    assert create_with(worker_pb2.CodeRef(directory="relative/path")) == grpc.StatusCode.INVALID_ARGUMENT
    assert create_with(worker_pb2.CodeRef(directory=str(tmp_path / "none"))) == grpc.StatusCode.INVALID_ARGUMENT
    assert create_with(worker_pb2.CodeRef()) == grpc.StatusCode.INVALID_ARGUMENT
    layers = [worker_pb2.CodeRef(zip_bytes=make_zip({f"l{i}": ""})) for i in range(6)]
    assert create_with(worker_pb2.CodeRef(zip_bytes=make_zip({"a.py": ""})), layers=layers) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    # Custom runtime without a bootstrap.
    assert create_with(worker_pb2.CodeRef(zip_bytes=make_zip({"a.py": ""})), runtime="provided") == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    listed = agent.stub.ListSandboxes(worker_pb2.ListSandboxesRequest()).sandboxes
    assert "badpkg-1" not in [s.sandbox_id for s in listed]
