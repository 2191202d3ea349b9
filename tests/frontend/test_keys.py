"""Access keys on SQLite and on PostgreSQL (the store), their shapes, the bootstrap form, the cache's TTL,
and ``leasehold keys create|list|delete`` as a process on a real database."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assignment.frontend.auth.keys import ACCESS_KEY_ID, SECRET, KeyStore, parse_key
from assignment.frontend.auth.resolver import FunctionStates, KeyCache
from assignment.frontend.auth.sessions import revoked_before_ms
from assignment.frontend.registry import functions
from journal.store import Journal
from tests.harness.postgres import PostgresServer, schema_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (its URL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keys.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = schema_name("k_", request.node.name)
    try:
        yield server.create_schema(schema)
    finally:
        server.drop_schema(schema)


@pytest.fixture
def store(database: str) -> Iterator[KeyStore]:
    with Journal.open(database) as journal:
        yield KeyStore(journal)


def test_keys_have_aws_shapes_and_round_trip(store: KeyStore) -> None:
    first, second = store.create("ci"), store.create("x" * 300)
    assert ACCESS_KEY_ID.fullmatch(first.access_key_id)
    assert SECRET.fullmatch(first.secret)
    assert first.access_key_id != second.access_key_id
    assert first.secret != second.secret
    assert first.secret not in repr(first)
    assert store.get(first.access_key_id) == first
    assert len(second.description) == 256
    assert [k.access_key_id for k in store.list()] == [first.access_key_id, second.access_key_id]
    assert store.delete(first.access_key_id)
    assert not store.delete(first.access_key_id)
    assert store.get(first.access_key_id) is None
    assert store.first_with_description("ci") is None


def test_a_bootstrap_key_is_added_once_and_never_replaced(store: KeyStore) -> None:
    key = parse_key("AKIAABCDEFGHIJKLMNOP:" + "s" * 40)
    assert store.ensure(key)
    assert not store.ensure(key)
    with pytest.raises(ValueError, match="exists with another secret"):
        store.ensure(parse_key("AKIAABCDEFGHIJKLMNOP:" + "t" * 40))
    assert store.get(key.access_key_id) is not None
    assert store.get(key.access_key_id).secret == "s" * 40  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("AKIAABCDEFGHIJKLMNOP", "ACCESS_KEY_ID:SECRET"),
        ("akiaabcdefghijklmnop:" + "s" * 40, "is not AKIA"),
        ("AKIAABCDEFGHIJKLMNO:" + "s" * 40, "is not AKIA"),
        ("AKIAABCDEFGHIJKLMNOP:short", "not 40 characters"),
        ("AKIAABCDEFGHIJKLMNOP:" + "é" * 40, "not 40 characters"),
    ],
)
def test_a_malformed_bootstrap_key_is_refused_without_its_secret(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as refused:
        parse_key(text)
    secret = text.partition(":")[2]
    assert not secret or secret not in str(refused.value)


async def test_the_cache_forgets_a_deleted_key_after_its_ttl(store: KeyStore) -> None:
    now = [100.0]
    cache = KeyCache(store, ttl_s=2.0, clock=lambda: now[0])
    key = store.create()
    assert await cache.get(key.access_key_id) == key
    store.delete(key.access_key_id)
    now[0] += 1.9
    assert await cache.get(key.access_key_id) == key  # still trusted inside the TTL
    now[0] += 0.2
    assert await cache.get(key.access_key_id) is None
    again = store.create()
    assert await cache.get(again.access_key_id) == again


def _keys(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assignment.cli", "keys", *args, "--db", database],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_keys_command_creates_lists_without_secrets_and_deletes(database: str) -> None:
    created = _keys(database, "create", "--description", "ops laptop")
    assert created.returncode == 0, created.stderr
    match = re.fullmatch(r"aws_access_key_id = (AKIA\w{16})\naws_secret_access_key = (\S{40})\n", created.stdout)
    assert match is not None, created.stdout
    key_id, secret = match.groups()
    listed = _keys(database, "list")
    assert listed.returncode == 0
    assert key_id in listed.stdout
    assert "ops laptop" in listed.stdout
    assert secret not in listed.stdout
    as_json = json.loads(_keys(database, "list", "--json").stdout)
    assert [k["AccessKeyId"] for k in as_json["Keys"]] == [key_id]
    assert "SecretAccessKey" not in json.dumps(as_json)
    with Journal.open(database) as journal:
        stored = KeyStore(journal).get(key_id)
    assert stored is not None
    assert stored.secret == secret
    assert _keys(database, "delete", key_id).returncode == 0
    missing = _keys(database, "delete", key_id)
    assert missing.returncode == 1
    assert "NoSuchKey" in missing.stderr
    assert key_id not in _keys(database, "list").stdout


def test_revoke_sessions_records_when_and_refuses_a_bad_name(database: str) -> None:
    done = _keys(database, "revoke-sessions", "resize")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("revoked the sessions of resize issued before ")
    with Journal.open(database) as journal:
        assert revoked_before_ms(journal, "resize") > 0
        assert revoked_before_ms(journal, "other") == 0
    bad = _keys(database, "revoke-sessions", "not a name")
    assert bad.returncode == 2
    assert "ValidationException" in bad.stderr


async def test_a_function_state_read_before_a_token_was_issued_does_not_refute_it(database: str) -> None:
    """A cached "the function is gone" must not refuse the genuine token of the function created again
    right after (issued after that answer was read), however young the answer; an answer read after the
    token was issued is trusted for its recheck interval, so a deleted function's tokens cannot make
    every request read the database."""
    now, wall = [100.0], [1_000.0]
    with Journal.open(database) as journal:
        states = FunctionStates(journal, ttl_s=2.0, clock=lambda: now[0], wall=lambda: wall[0])
        assert await states.get("doomed", "old", issued_ms=900_000) == (None, 0)  # deleted: read at 1,000,000
        with journal.writer.begin() as conn:
            conn.execute(functions.insert().values(name="doomed", incarnation="new", revision=1, next_version=1,
                                                   created_ms=1_000_000))  # fmt: skip
        assert await states.get("doomed", "old", issued_ms=900_000) == (None, 0)  # the old token: cached answer
        wall[0] += 0.1
        assert await states.get("doomed", "new", issued_ms=1_000_010) == ("new", 0)  # issued after the read
        with journal.writer.begin() as conn:
            conn.execute(functions.delete())
        assert await states.get("doomed", "new", issued_ms=1_000_010) == ("new", 0)  # agrees: cached
        assert await states.get("doomed", "other", issued_ms=1_000_010) == ("new", 0)  # older token: cached
        now[0] += 0.3  # past the recheck interval
        assert await states.get("doomed", "other", issued_ms=1_000_010) == (None, 0)
