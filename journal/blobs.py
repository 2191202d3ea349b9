"""Code blobs stored by content hash in the journal's database: function zips and layers.

The frontend stores a function's code here when it is created or updated; a worker that is asked to
create a sandbox from ``CodeRef.blob_sha256`` fetches the blob (once: it caches code by hash). Blobs are
immutable: storing the same bytes twice is a no-op, and a blob read back is checked against its hash.

Example::

    blobs = BlobStore(Journal.open("sqlite:///data/leasehold.db"))
    sha = blobs.put(zip_bytes)
    assert blobs.get(sha) == zip_bytes
"""

from __future__ import annotations

import hashlib
import re
import time

from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table, select

from journal.sql import dialect_insert
from journal.store import Journal

__all__ = ["MAX_BLOB_BYTES", "BlobCorrupt", "BlobMissing", "BlobStore", "code_blobs", "sha256_hex"]

#: The largest blob accepted: AWS's limit on a zip uploaded directly (50 MB).
MAX_BLOB_BYTES = 50 * 1024 * 1024

_SHA = re.compile(r"[0-9a-f]{64}")

code_blobs = Table(
    "code_blobs",
    MetaData(),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)


class BlobMissing(KeyError):
    """No blob with that hash is stored."""


class BlobCorrupt(Exception):
    """A stored blob no longer matches its hash."""


def sha256_hex(data: bytes) -> str:
    """The key of ``data``: its SHA-256 in lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def _check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise ValueError(f"blob hash must be 64 lower-case hex digits, got {sha!r:.80}")
    return sha


class BlobStore:
    """Immutable blobs keyed by SHA-256, in the ``code_blobs`` table of a journal's database."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def put(self, data: bytes) -> str:
        """Store ``data`` (at most :data:`MAX_BLOB_BYTES`) and return its hash; idempotent."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"blob must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_BLOB_BYTES:
            raise ValueError(f"blob of {len(data)} bytes exceeds the limit of {MAX_BLOB_BYTES} bytes")
        sha = sha256_hex(data)
        if self.exists(sha):
            return sha
        row = {"sha256": sha, "size": len(data), "created_ms": int(time.time() * 1000), "data": data}
        with self._journal.writer.begin() as conn:  # one statement: a concurrent first writer is no conflict
            conn.execute(dialect_insert(conn, code_blobs).values(row).on_conflict_do_nothing(index_elements=["sha256"]))
        return sha

    def exists(self, sha: str) -> bool:
        """Whether a blob with this hash is stored."""
        _check_sha(sha)
        with self._journal.reader.connect() as conn:
            return conn.execute(select(code_blobs.c.sha256).where(code_blobs.c.sha256 == sha)).first() is not None

    def get(self, sha: str) -> bytes:
        """The blob's bytes; :class:`BlobMissing` when unknown, :class:`BlobCorrupt` when damaged."""
        _check_sha(sha)
        with self._journal.reader.connect() as conn:
            row = conn.execute(select(code_blobs.c.data).where(code_blobs.c.sha256 == sha)).first()
        if row is None:
            raise BlobMissing(sha)
        data = bytes(row[0])
        if sha256_hex(data) != sha:
            raise BlobCorrupt(f"blob {sha} does not match its hash")
        return data
