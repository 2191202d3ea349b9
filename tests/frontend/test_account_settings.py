"""GetAccountSettings over boto3 on the embedded platform, and the code storage limit it reports, enforced by
the registry on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy_boto3_lambda import LambdaClient

from assignment.frontend.api.errors import lambda_error
from assignment.frontend.api.requests import MAX_UNZIPPED_BYTES, MAX_ZIP_BYTES
from assignment.frontend.registry import CODE_STORAGE_LIMIT, FunctionSpec, Registry
from assignment.frontend.storage_errors import StorageExceeded
from journal.store import Journal
from tests.frontend.harness import ROLE, make_zip, raw_request
from tests.harness.postgres import PostgresServer, schema_name

CODE = make_zip({"app.py": "def handler(e, c):\n    return e\n"})
#: Code that compresses badly: a few kilobytes more than :data:`CODE` zipped.
BIGGER = make_zip({"app.py": "def handler(e, c):\n    return e\n", "noise.txt": random.Random(1).randbytes(4000).hex()})
SPEC = FunctionSpec(runtime="python3.11", handler="app.handler")


def test_account_settings_report_the_limits_and_what_is_used(lam: LambdaClient) -> None:
    before = lam.get_account_settings()
    limit = before["AccountLimit"]
    assert limit["TotalCodeSize"] == CODE_STORAGE_LIMIT
    assert (limit["CodeSizeZipped"], limit["CodeSizeUnzipped"]) == (MAX_ZIP_BYTES, MAX_UNZIPPED_BYTES)
    assert limit["UnreservedConcurrentExecutions"] <= limit["ConcurrentExecutions"]
    lam.create_function(
        FunctionName="acct-1", Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}
    )
    lam.publish_version(FunctionName="acct-1")  # a published version's code counts again, as on AWS
    lam.put_function_concurrency(FunctionName="acct-1", ReservedConcurrentExecutions=7)
    after = lam.get_account_settings()
    assert after["AccountUsage"]["FunctionCount"] == before["AccountUsage"]["FunctionCount"] + 1
    assert after["AccountUsage"]["TotalCodeSize"] == before["AccountUsage"]["TotalCodeSize"] + 2 * len(CODE)
    unreserved = after["AccountLimit"]["UnreservedConcurrentExecutions"]
    assert unreserved == limit["UnreservedConcurrentExecutions"] - 7


def test_account_settings_take_no_parameters(endpoint: str) -> None:
    status, _, _ = raw_request(endpoint, "GET", "/2016-08-19/account-settings?Marker=x")
    assert status == 400


@pytest.fixture(params=["sqlite", "postgresql"])
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A registry whose code storage holds three copies of :data:`CODE` and a little more."""
    limit = 3 * len(CODE) + 100
    if request.param == "sqlite":
        with Journal.open(f"sqlite:///{tmp_path / 'r.db'}") as journal:
            yield Registry(journal, code_storage_limit=limit)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = schema_name("cs_", request.node.name)
    try:
        with Journal.open(server.create_schema(schema)) as journal:
            yield Registry(journal, code_storage_limit=limit)
    finally:
        server.drop_schema(schema)


def test_code_storage_is_refused_past_the_limit_and_nothing_is_stored(small: Registry) -> None:
    small.create("a", SPEC, CODE)
    small.publish("a")  # two copies
    with pytest.raises(StorageExceeded) as caught:
        small.update_code("a", BIGGER)  # $LATEST would grow past the limit
    assert lambda_error(caught.value, small).type == "CodeStorageExceededException"
    assert small.get("a").code_sha256 == small.get("a", "1").code_sha256
    small.create("b", SPEC, CODE)  # three
    with pytest.raises(StorageExceeded):
        small.create("c", SPEC, CODE)
    with pytest.raises(StorageExceeded):
        small.publish_layer("lib", CODE)
    small.update_configuration("b", {"memory_mb": 256})
    with pytest.raises(StorageExceeded):
        small.publish("b")
    assert small.account_usage()[:2] == (3 * len(CODE), 2)
    small.delete("a")  # frees two copies
    small.publish("b")
    assert small.account_usage()[:2] == (2 * len(CODE), 1)
