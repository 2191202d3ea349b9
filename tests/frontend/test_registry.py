"""The function registry on SQLite and on PostgreSQL: versions, pool keys, concurrency, layers, settings."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assignment.frontend.registry import FunctionSpec, Registry
from assignment.frontend.storage_errors import Conflict, Invalid, NotFound
from assignment.frontend.types import EventInvokeConfig
from journal.store import Journal
from tests.frontend.harness import make_zip
from tests.harness.postgres import PostgresServer, schema_name

CODE = make_zip({"app.py": "def handler(e, c):\n    return e\n"})
OTHER = make_zip({"app.py": "def handler(e, c):\n    return 1\n"})
SPEC = FunctionSpec(runtime="python3.11", handler="app.handler")


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A registry on an empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
        with Journal.open(url) as journal:
            yield Registry(journal, account_limit=300)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = schema_name("f_", request.node.name)
    url = server.create_schema(schema)
    try:
        with Journal.open(url) as journal:
            yield Registry(journal, account_limit=300)
    finally:
        server.drop_schema(schema)


def test_pool_key_changes_with_every_change_of_latest(registry: Registry) -> None:
    first = registry.create("f", SPEC, CODE)
    keys = {first.pool_version()}
    keys.add(registry.update_code("f", OTHER).pool_version())
    keys.add(registry.update_configuration("f", {"memory_mb": 256}).pool_version())
    assert len(keys) == 3
    assert registry.get("f").config("arn").pool_version == registry.get("f").pool_version()
    published = registry.publish("f")
    assert published.pool_version() == registry.get("f", "1").pool_version()
    assert published.pool_version() not in keys


def test_recreated_function_gets_new_pool_keys(registry: Registry) -> None:
    registry.create("f", SPEC, CODE)
    old = registry.publish("f")
    registry.delete("f")
    new = registry.create("f", SPEC, CODE, publish=True)
    assert new.version == "1"
    assert new.pool_version() != old.pool_version()


def test_published_versions_do_not_change(registry: Registry) -> None:
    registry.create("f", SPEC, CODE)
    v1 = registry.publish("f", description="one")
    registry.update_configuration("f", {"timeout_s": 9, "environment": {"A": "b"}})
    registry.update_code("f", OTHER)
    assert registry.get("f", "1") == v1
    assert registry.publish("f").version == "2"
    assert registry.publish("f").version == "2"
    assert [v.version for v in registry.versions("f")] == ["$LATEST", "1", "2"]


def test_conflicts_and_missing(registry: Registry) -> None:
    registry.create("f", SPEC, CODE)
    with pytest.raises(Conflict):
        registry.create("f", SPEC, CODE)
    with pytest.raises(NotFound):
        registry.get("g")
    with pytest.raises(NotFound):
        registry.get("f", "3")
    with pytest.raises(NotFound):
        registry.delete("f", "3")
    with pytest.raises(Invalid):
        registry.delete("f", "$LATEST")


def test_concurrent_creates_of_one_name_make_one_function(registry: Registry) -> None:
    def create(_: int) -> str:
        try:
            registry.create("race", SPEC, CODE)
        except Conflict:
            return "conflict"
        return "created"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(create, range(4)))
    assert outcomes == ["conflict", "conflict", "conflict", "created"]


def test_reserved_concurrency_leaves_100_unreserved(registry: Registry) -> None:
    registry.create("a", SPEC, CODE)
    registry.create("b", SPEC, CODE)
    registry.set_reserved("a", 150)
    with pytest.raises(Invalid):
        registry.set_reserved("b", 51)
    registry.set_reserved("b", 50)
    registry.set_reserved("a", 150)  # re-setting one's own value does not count twice
    assert registry.all_reserved() == {"a": 150, "b": 50}
    registry.set_reserved("a", None)
    assert registry.reserved("a") is None


def test_provisioned_only_on_published_versions(registry: Registry) -> None:
    registry.create("f", SPEC, CODE, publish=True)
    with pytest.raises(Invalid):
        registry.set_provisioned("f", "$LATEST", 2)
    with pytest.raises(NotFound):
        registry.set_provisioned("f", "2", 2)
    registry.set_provisioned("f", "1", 2)
    registry.set_provisioned("f", "1", 3)
    [share] = registry.all_provisioned()
    assert (share.qualifier, share.version.version, share.count) == ("1", "1", 3)
    registry.delete("f", "1")
    assert registry.all_provisioned() == []


def test_event_configs_and_layers(registry: Registry) -> None:
    registry.create("f", SPEC, CODE)
    assert registry.event_config("f", "$LATEST") is None
    registry.put_event_config("f", "$LATEST", EventInvokeConfig(maximum_retry_attempts=0))
    found = registry.event_config("f", "$LATEST")
    assert found is not None
    assert found[0] == EventInvokeConfig(maximum_retry_attempts=0)
    first = registry.publish_layer("lib", CODE)
    second = registry.publish_layer("lib", OTHER)
    assert (first.version, second.version) == (1, 2)
    assert registry.layer(second.arn).sha256 == second.sha256
    for bad in ("arn:aws:lambda:us-east-1:000000000000:layer:lib:3", "lib:1", "arn:aws:lambda:eu-west-1:1:layer:x:1"):
        with pytest.raises(Invalid):
            registry.layer(bad)
    registry.delete("f")
    assert registry.event_config("f", "$LATEST") is None
