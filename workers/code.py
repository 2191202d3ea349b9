"""Code packages: a function's code or a layer, from a zip or a folder, unpacked once per content hash.

Limits are AWS's: a zip of at most 50 MB, at most 250 MB unpacked for the function and its layers
together, at most 5 layers. A zip entry that would land outside its folder (``../``, an absolute path, a
symlink pointing out) is refused, as is a folder holding such a symlink. Unpacked trees are readable by
every user (sandboxes run as their own user) and never written again.

A zip is cached under its SHA-256, which is also its key in the code store (``journal.blobs``): a
:class:`BlobSource` whose hash the cache already holds is never fetched again.

Example::

    cache = CodeCache(Path("/var/lib/leasehold/code"))
    task = cache.function_dir(ZipSource(Path("app.zip")))   # .../code/<sha256>/
    same = cache.function_dir(BlobSource(sha, store.get))   # fetched only if <sha256>/ is not there yet
    opt = cache.layers_dir([ZipSource(Path("layer.zip"))])  # merged, for /opt
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "MAX_LAYERS",
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIP_BYTES",
    "BlobSource",
    "CodeCache",
    "CodeError",
    "DirSource",
    "Source",
    "ZipSource",
]

MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
MAX_LAYERS = 5


class CodeError(ValueError):
    """A code package is unusable: too large, unsafe, missing or not a zip. The message says which."""


@dataclass(frozen=True)
class ZipSource:
    """A zip archive, by path or by its bytes."""

    path: Path | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        """The archive's bytes, after the 50 MB check."""
        if self.data is not None:
            data = self.data
        else:
            assert self.path is not None
            try:
                size = self.path.stat().st_size
            except OSError as exc:
                raise CodeError(f"cannot read code zip {self.path}: {exc.strerror}") from None
            if size > MAX_ZIP_BYTES:
                raise CodeError(f"code zip is {size} bytes; the limit is {MAX_ZIP_BYTES} bytes (50 MB)")
            data = self.path.read_bytes()
        if len(data) > MAX_ZIP_BYTES:
            raise CodeError(f"code zip is {len(data)} bytes; the limit is {MAX_ZIP_BYTES} bytes (50 MB)")
        return data


@dataclass(frozen=True)
class DirSource:
    """A folder on the worker, copied into the cache (so later edits do not reach running sandboxes)."""

    path: Path


@dataclass(frozen=True)
class BlobSource:
    """A zip in the code store, by its SHA-256 (lower-case hex); ``fetch`` returns its bytes (it may block:
    the cache runs in a worker thread) or raises :class:`CodeError`. ``field`` names the request field in
    messages."""

    sha256: str
    fetch: Callable[[str], bytes]
    field: str = "code.blob_sha256"


Source = ZipSource | DirSource | BlobSource


def _safe_relative(name: str) -> PurePosixPath:
    """The entry's path, or CodeError when it is absolute or climbs out of its folder."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise CodeError(f"zip entry {name!r} has an absolute path")
    path = PurePosixPath(name.replace("\\", "/"))
    if ".." in path.parts:
        raise CodeError(f"zip entry {name!r} escapes its folder")
    return path


def _link_stays_inside(link: PurePosixPath, target: str) -> bool:
    if target.startswith("/"):
        return False
    depth = len(link.parts) - 1
    for part in PurePosixPath(target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part != ".":
            depth += 1
    return True


def _extract(data: bytes, dest: Path, budget: int) -> int:
    """Unpack into ``dest`` after checking every entry; return the unpacked size."""
    try:
        archive = zipfile.ZipFile(_BytesReader(data))
    except zipfile.BadZipFile as exc:
        raise CodeError(f"code package is not a valid zip: {exc}") from None
    with archive:
        entries = archive.infolist()
        declared = sum(e.file_size for e in entries)
        if declared > budget:
            raise CodeError(f"unzipped size {declared} bytes exceeds the limit of {MAX_UNZIPPED_BYTES} bytes (250 MB)")
        total = 0
        for entry in entries:
            rel = _safe_relative(entry.filename)
            if not rel.parts:
                continue
            mode = entry.external_attr >> 16
            target = dest.joinpath(*rel.parts)
            if stat.S_ISLNK(mode):
                link = archive.read(entry).decode("utf-8", "replace")
                if not _link_stays_inside(rel, link):
                    raise CodeError(f"zip entry {entry.filename!r} is a symlink pointing outside its folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(link, target)
                continue
            if entry.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    total += len(chunk)
                    if total > budget:
                        raise CodeError(f"unzipped size exceeds the limit of {MAX_UNZIPPED_BYTES} bytes (250 MB)")
                    out.write(chunk)
            os.chmod(target, 0o755 if mode & 0o111 else 0o644)
    return total


class _BytesReader:
    """A seekable file over bytes without copying (io.BytesIO would copy up to 50 MB)."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n < 0 else min(len(self._view), self._pos + n)
        chunk = bytes(self._view[self._pos : end])
        self._pos = end
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True


def _hash_dir(root: Path) -> str:
    """sha256 over (relative path, kind, mode bits, content) of every entry, in sorted order."""
    digest = hashlib.sha256(b"dir\0")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            if not _link_stays_inside(PurePosixPath(rel), target):
                raise CodeError(f"{path} is a symlink pointing outside the code folder")
            digest.update(f"L\0{rel}\0{target}\0".encode())
        elif stat.S_ISDIR(info.st_mode):
            digest.update(f"D\0{rel}\0".encode())
        elif stat.S_ISREG(info.st_mode):
            digest.update(f"F\0{rel}\0{info.st_mode & 0o111}\0{info.st_size}\0".encode())
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        else:
            raise CodeError(f"{path} is not a regular file, folder or symlink")
    return digest.hexdigest()


def _dir_size(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


class CodeCache:
    """Unpacked packages under ``root/<sha256>``; merged layer sets under ``root/opt-<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._sizes: dict[Path, int] = {}  # unpacked trees never change: their sizes are measured once
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)

    def _unpack(self, source: Source, budget: int) -> tuple[str, Path]:
        """(content hash, unpacked folder), unpacking only when the hash is new."""
        if isinstance(source, DirSource):
            if not source.path.is_dir():
                raise CodeError(f"code folder {source.path} does not exist")
            key = _hash_dir(source.path)
            dest = self.root / key
            if not dest.exists():
                if _dir_size(source.path) > budget:
                    raise CodeError(f"code folder exceeds the limit of {MAX_UNZIPPED_BYTES} bytes (250 MB)")
                tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
                shutil.copytree(source.path, tmp / "t", symlinks=True)
                self._publish(tmp / "t", dest)
                shutil.rmtree(tmp, ignore_errors=True)
            return key, dest
        if isinstance(source, BlobSource):
            key = source.sha256
            dest = self.root / key
            if not dest.exists():  # cached by the same hash: the blob is not fetched again
                data = source.fetch(key)
                if len(data) > MAX_ZIP_BYTES:
                    raise CodeError(f"{source.field}: blob is {len(data)} bytes; the limit is {MAX_ZIP_BYTES} bytes")
                if hashlib.sha256(data).hexdigest() != key:
                    raise CodeError(f"{source.field}: the code store returned bytes that do not match {key}")
                self._unpack_zip(data, dest, budget)
            return key, dest
        data = source.read()
        key = hashlib.sha256(data).hexdigest()
        dest = self.root / key
        if not dest.exists():
            self._unpack_zip(data, dest, budget)
        return key, dest

    def _unpack_zip(self, data: bytes, dest: Path, budget: int) -> None:
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
        try:
            (tmp / "t").mkdir()
            _extract(data, tmp / "t", budget)
            self._publish(tmp / "t", dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _publish(tree: Path, dest: Path) -> None:
        for path in [tree, *tree.rglob("*")]:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            os.chmod(path, 0o755 if path.is_dir() or mode & 0o111 else 0o644)
        try:
            os.rename(tree, dest)
        except OSError:
            if not dest.exists():  # another create raced us to the same hash: theirs is as good
                raise

    def function_dir(self, source: Source) -> Path:
        """The unpacked function code (``LAMBDA_TASK_ROOT``)."""
        return self._unpack(source, MAX_UNZIPPED_BYTES)[1]

    def layers_dir(self, layers: list[Source], used: int = 0) -> Path | None:
        """The layers merged in order (later ones win) into one folder for ``/opt``; None without layers."""
        if len(layers) > MAX_LAYERS:
            raise CodeError(f"{len(layers)} layers given; at most {MAX_LAYERS} are allowed")
        if not layers:
            return None
        unpacked = [self._unpack(layer, MAX_UNZIPPED_BYTES - used) for layer in layers]
        key = hashlib.sha256("\0".join(k for k, _ in unpacked).encode()).hexdigest()
        dest = self.root / f"opt-{key}"
        if not dest.exists():
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
            try:
                for _, folder in unpacked:
                    shutil.copytree(folder, tmp / "t", symlinks=True, dirs_exist_ok=True)
                self._publish(tmp / "t", dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def _size(self, tree: Path) -> int:
        if tree not in self._sizes:
            self._sizes[tree] = _dir_size(tree)
        return self._sizes[tree]

    def package(self, code: Source, layers: list[Source]) -> tuple[Path, Path | None]:
        """The function folder and the merged layers folder, with the 250 MB total enforced."""
        task = self.function_dir(code)
        used = self._size(task)
        opt = self.layers_dir(layers, used)
        if opt is not None and used + self._size(opt) > MAX_UNZIPPED_BYTES:
            raise CodeError(f"function and layers unzipped exceed {MAX_UNZIPPED_BYTES} bytes (250 MB)")
        return task, opt
