"""Code from the code store: a blob is fetched once and cached under its hash (shared with zips of the same
bytes), damaged or unknown blobs are refused naming the field; and the registrar's ZooKeeper paths are the
ones the assignment servers read."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from assignment.coordination.zookeeper import split_chroot as server_split_chroot
from journal.blobs import BlobStore
from journal.store import Journal
from workers.blobs import CodeStore
from workers.code import BlobSource, CodeCache, CodeError, ZipSource
from workers.registration import split_chroot


def zip_of(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", text)
    return buffer.getvalue()


def test_a_blob_is_fetched_once_and_shares_the_cache_with_its_zip(tmp_path: Path) -> None:
    data = zip_of("def handler(e, c):\n    return 1\n")
    sha = hashlib.sha256(data).hexdigest()
    fetched: list[str] = []

    def fetch(key: str) -> bytes:
        fetched.append(key)
        return data

    cache = CodeCache(tmp_path / "code")
    first = cache.function_dir(BlobSource(sha, fetch))
    assert (first / "app.py").is_file()
    assert cache.function_dir(BlobSource(sha, fetch)) == first
    assert cache.function_dir(ZipSource(data=data)) == first
    assert fetched == [sha]
    other = CodeCache(tmp_path / "other")
    assert other.function_dir(ZipSource(data=data)).name == sha
    other.function_dir(BlobSource(sha, fetch))  # unpacked from the zip before: not fetched
    assert fetched == [sha]


def test_bytes_that_do_not_match_the_hash_are_refused(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path / "code")
    with pytest.raises(CodeError, match=r"layers\[1\]\.blob_sha256: .*do not match"):
        cache.function_dir(BlobSource("a" * 64, lambda _key: zip_of("x = 1\n"), "layers[1].blob_sha256"))
    assert not (tmp_path / "code" / ("a" * 64)).exists()


def test_code_store_reads_the_journal_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    data = zip_of("x = 1\n")
    with Journal.open(url) as journal:
        sha = BlobStore(journal).put(data)
    store = CodeStore(url)
    try:
        assert store.get(sha) == data
        assert store.fetches == 1
        with pytest.raises(CodeError, match=r"code\.blob_sha256 0{64} is not in the code store"):
            store.get("0" * 64)
        for bad in ("", "A" * 64, "g" * 64, "a" * 63, "a" * 64 + "\n", "../../etc/passwd", "a" * 10_000):
            with pytest.raises(CodeError, match=r"code\.blob_sha256 must be 64 lower-case hex"):
                store.source(bad)
        source = store.source(sha, "layers[0].blob_sha256")
        assert source.fetch(sha) == data
        assert source.field == "layers[0].blob_sha256"
    finally:
        store.close()


def test_an_unreachable_code_store_is_a_code_error(tmp_path: Path) -> None:
    store = CodeStore(f"sqlite:///{tmp_path / 'missing-dir' / 'nested' / 'journal.db'}")
    try:
        with pytest.raises(CodeError, match="code store cannot be read"):
            store.get("b" * 64)
    finally:
        store.close()


@pytest.mark.parametrize(
    "hosts",
    ["127.0.0.1:2181", "127.0.0.1:2181/", "h1:2181,h2:2181/cluster-a", "h:1/a/b/", "h:1//x"],
)
def test_workers_and_servers_agree_on_the_zookeeper_root(hosts: str) -> None:
    assert split_chroot(hosts) == server_split_chroot(hosts)
