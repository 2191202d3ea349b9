"""Generate the Python modules and type stubs for every ``.proto`` under ``proto/``.

This is the only generator of protobuf code in the project. A file ``proto/<pkg>/v1/x.proto`` becomes
``<pkg>/v1/x_pb2.py`` with its stub ``x_pb2.pyi`` (and ``x_pb2_grpc.py`` + ``.pyi`` when it declares a
service), next to the package that imports it. The Rust core compiles the same files at build time
(``assignment/partition-core/build.rs``), so both sides always read one schema.

Usage::

    python proto/gen_protos.py           # regenerate in place
    python proto/gen_protos.py --check   # exit 1 if the checked-in code differs (CI drift check)
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    """Every .proto below proto/, in a stable order."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Generate code for every proto into ``out_dir``; return the generated files, relative to it."""
    include = str(Path(protoc.__file__).parent / "_proto")
    bindir = Path(sys.executable).parent
    for proto in proto_files():
        relative = proto.relative_to(PROTO_ROOT)
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            # The plugins live beside this interpreter, which need not be on PATH.
            f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out_dir}",
            f"--mypy_out={out_dir}",
        ]
        if "\nservice " in proto.read_text():
            args += [f"--grpc_python_out={out_dir}", f"--mypy_grpc_out={out_dir}"]
        if protoc.main([*args, str(relative)]) != 0:
            raise SystemExit(f"protoc failed on {relative}")
    generated = sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))
    for package_dir in {p.parent for p in generated}:
        init = out_dir / package_dir / "__init__.py"
        init.write_text('"""Generated protobuf modules: edit proto/ and run `make protos`."""\n')
        generated.append(package_dir / "__init__.py")
    return sorted(generated)


def checked_in() -> list[Path]:
    """The generated files currently in the tree (found through the proto layout)."""
    dirs = {ROOT / p.relative_to(PROTO_ROOT).parent for p in proto_files()}
    found = [p for d in dirs if d.is_dir() for p in d.iterdir() if p.name.endswith(GENERATED_SUFFIXES)]
    return sorted(p.relative_to(ROOT) for p in found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the checked-in code has drifted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generated = generate(out)
        if args.check:
            drift = [
                str(p)
                for p in generated
                if not (ROOT / p).exists() or not filecmp.cmp(out / p, ROOT / p, shallow=False)
            ]
            stale = [str(p) for p in checked_in() if p not in generated]
            if drift or stale:
                print("generated protobuf code is out of date; run `make protos`:", file=sys.stderr)
                for name in drift + stale:
                    print(f"  {name}", file=sys.stderr)
                return 1
            print(f"protos: {len(generated)} generated files up to date")
            return 0
        for path in checked_in():
            if path not in generated:
                (ROOT / path).unlink()
        for path in generated:
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / path, ROOT / path)
        print(f"protos: wrote {len(generated)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
