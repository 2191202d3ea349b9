"""Function code for the people's CLI: read a zip file or zip a folder in memory, within Lambda's limits.

Only regular files are read (a FIFO or device named by mistake would block or never end); a folder's
files are stored with their permission bits (so a custom runtime's ``bootstrap`` stays executable) and a
fixed timestamp (so the same folder gives the same zip and the same CodeSha256).

Example::

    blob = zip_folder(Path("my-function"))
    blob = read_zip(Path("function.zip"))
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

from assignment.commands.api import CliError

__all__ = ["MAX_UNZIPPED", "MAX_ZIP", "read_zip", "zip_folder"]

#: Lambda's limit for a zip uploaded in the request.
MAX_ZIP = 50 * 1024 * 1024
#: Lambda's limit for the unzipped code (with layers; the code alone here).
MAX_UNZIPPED = 250 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _regular_size(path: Path) -> int:
    try:
        info = path.stat()
    except OSError as exc:
        raise CliError("InvalidCode", f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise CliError("InvalidCode", f"{path} is not a regular file")
    return info.st_size


def read_zip(path: Path) -> bytes:
    """The bytes of a zip file, checked to be a readable zip of at most :data:`MAX_ZIP` bytes."""
    size = _regular_size(path)
    if size > MAX_ZIP:
        raise CliError("RequestTooLargeException", f"{path} is {size} bytes; the limit is {MAX_ZIP}")
    data = path.read_bytes()[: MAX_ZIP + 1]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CliError("InvalidCode", f"{path} is not a zip file: {exc}") from exc
    return data


def zip_folder(folder: Path) -> bytes:
    """Zip every regular file under ``folder`` (sorted, symlinked folders not followed) into memory."""
    if not folder.is_dir():
        raise CliError("InvalidCode", f"{folder} is not a folder")
    buffer = io.BytesIO()
    unzipped = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(folder, onerror=_raise):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                try:
                    info = path.stat()
                except OSError:
                    continue  # a dangling symlink
                if not stat.S_ISREG(info.st_mode):
                    continue
                unzipped += info.st_size
                if unzipped > MAX_UNZIPPED:
                    raise CliError("RequestTooLargeException", f"{folder} holds more than {MAX_UNZIPPED} bytes")
                entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), _EPOCH)
                entry.external_attr = (stat.S_IFREG | stat.S_IMODE(info.st_mode)) << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                with path.open("rb") as source, archive.open(entry, "w", force_zip64=True) as target:
                    while block := source.read(1024 * 1024):
                        target.write(block)
                if buffer.tell() > MAX_ZIP:
                    raise CliError("RequestTooLargeException", f"the zip of {folder} exceeds {MAX_ZIP} bytes")
    data = buffer.getvalue()
    if len(data) > MAX_ZIP:
        raise CliError("RequestTooLargeException", f"the zip of {folder} is {len(data)} bytes; the limit is {MAX_ZIP}")
    return data


def _raise(error: OSError) -> None:
    raise CliError("InvalidCode", f"cannot read {error.filename}: {error.strerror}")
