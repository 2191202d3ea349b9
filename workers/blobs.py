"""The worker's view of the code store: function and layer zips by SHA-256, read from the cluster's database.

The frontend stores code with :class:`journal.blobs.BlobStore`; a ``CreateSandbox`` whose ``CodeRef`` names
``blob_sha256`` is resolved here. The database is opened on first use, read-only in spirit: the worker
does not migrate the schema (servers and frontends do), so it needs only the right to read the blob
table, and a database whose schema is not (yet) at the newest revision is a code store that cannot be
read until it is. Every read blocks, so callers run :meth:`CodeStore.get` in a thread (the code cache
does: :class:`workers.code.BlobSource`). Each blob is fetched once per worker: the code cache keeps it
unpacked under its hash.

Example::

    store = CodeStore("sqlite:///data/leasehold.db")
    source = store.source("9f86d0...", field="code.blob_sha256")   # a workers.code.BlobSource
    store.close()
"""

from __future__ import annotations

import logging
import re
import threading
import time

from journal.blobs import BlobCorrupt, BlobMissing, BlobStore
from journal.store import Journal
from workers.code import BlobSource, CodeError

__all__ = ["CodeStore", "check_sha256"]

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{64}")


def check_sha256(sha: str, field: str) -> str:
    """``sha`` when it is 64 lower-case hex digits; :class:`CodeError` naming ``field`` otherwise."""
    if not _SHA.fullmatch(sha):
        raise CodeError(f"{field} must be 64 lower-case hex digits, got {sha!r:.80}")
    return sha


class CodeStore:
    """Blobs of the code store at a journal URL (``sqlite:///...`` or ``postgresql://...``); thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._journal: Journal | None = None
        self._blobs: BlobStore | None = None
        #: Blobs fetched from the database (tests check that cached code is not fetched again).
        self.fetches = 0

    def _store(self) -> BlobStore:
        with self._lock:
            if self._blobs is None:
                self._journal = Journal.open(self.url, migrate=False)
                self._blobs = BlobStore(self._journal)
            return self._blobs

    def get(self, sha: str, field: str = "code.blob_sha256") -> bytes:
        """The blob's bytes (blocking); :class:`CodeError` naming ``field`` when unknown, damaged or
        unreachable."""
        check_sha256(sha, field)
        started = time.monotonic()
        try:
            data = self._store().get(sha)
        except BlobMissing:
            raise CodeError(f"{field} {sha} is not in the code store") from None
        except BlobCorrupt as exc:
            raise CodeError(f"{field}: {exc}") from None
        except Exception as exc:  # the database is down or refuses us: the request cannot be served
            log.warning("event=code_store_failed sha=%s error=%r", sha, exc)
            raise CodeError(f"{field}: the code store cannot be read: {type(exc).__name__}") from None
        self.fetches += 1
        log.info("event=blob_fetched sha=%s bytes=%d ms=%.1f", sha, len(data), (time.monotonic() - started) * 1000)
        return data

    def source(self, sha: str, field: str = "code.blob_sha256") -> BlobSource:
        """A code source for the blob (checked for form now, fetched by the cache only when needed)."""
        check_sha256(sha, field)
        return BlobSource(sha, lambda key: self.get(key, field), field)

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            if self._journal is not None:
                self._journal.close()
            self._journal = self._blobs = None
