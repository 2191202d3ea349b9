"""Code blobs: a put is one INSERT ... ON CONFLICT DO NOTHING, so concurrent first writers of the same
bytes all succeed and one row is kept, on both backends."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from journal.blobs import BlobStore, code_blobs, sha256_hex
from journal.store import Journal


def test_concurrent_first_puts_of_the_same_bytes_keep_one_row(journal_url: str) -> None:
    data = b"zip bytes " * 1000
    stores = [Journal.open(journal_url) for _ in range(6)]  # separate engines: separate connections
    start = threading.Barrier(len(stores))
    results: list[str] = []
    errors: list[BaseException] = []

    def put(journal: Journal) -> None:
        start.wait()
        try:
            results.append(BlobStore(journal).put(data))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(journal,)) for journal in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert results == [sha256_hex(data)] * len(stores)
        with stores[0].reader.connect() as conn:
            assert conn.execute(select(func.count()).select_from(code_blobs)).scalar_one() == 1
        assert BlobStore(stores[0]).get(results[0]) == data
    finally:
        for journal in stores:
            journal.close()
