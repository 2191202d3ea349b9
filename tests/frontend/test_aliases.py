"""Function aliases: the store's rules on SQLite and PostgreSQL, and boto3 end to end on the embedded
platform — a deploy tool's round trip (publish, alias, 10% canary, shift to 100%, roll back) with the
executed versions counted, invoke by every name form, async settings on an alias, and AWS's errors."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from assignment.frontend.aliases import (
    Alias,
    AliasExists,
    AliasNotFound,
    AliasStore,
    AliasVersionNotFound,
    InvalidAlias,
    RevisionIdMismatch,
)
from assignment.frontend.registry import FunctionSpec, Registry
from assignment.frontend.storage_errors import Invalid, NotFound, ProvisionedOverlap, Referenced
from assignment.frontend.types import EventInvokeConfig
from journal.store import Journal
from tests.frontend.conftest import HANDLERS
from tests.frontend.harness import ROLE, make_zip, raw_request
from tests.harness.postgres import PostgresServer, schema_name

CODE = make_zip({"app.py": HANDLERS})
SPEC = FunctionSpec(runtime="python3.11", handler="app.echo", role=ROLE)


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Registry, AliasStore]]:
    """A registry and its aliases on an empty database of each kind."""
    if request.param == "sqlite":
        with Journal.open(f"sqlite:///{tmp_path / 'aliases.db'}") as journal:
            registry = Registry(journal)
            yield registry, AliasStore(registry)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = schema_name("al_", request.node.name)
    try:
        with Journal.open(server.create_schema(schema)) as journal:
            registry = Registry(journal)
            yield registry, AliasStore(registry)
    finally:
        server.drop_schema(schema)


def three_versions(registry: Registry, name: str = "f") -> None:
    registry.create(name, SPEC, CODE)
    for memory in (128, 256, 512):
        registry.update_configuration(name, {"memory_mb": memory})
        registry.publish(name)


# ------------------------------------------------------------------------------------------- store


def test_an_alias_is_created_read_listed_updated_and_deleted(stores: tuple[Registry, AliasStore]) -> None:
    registry, aliases = stores
    three_versions(registry)
    live = aliases.create("f", "live", "1", description="prod")
    assert aliases.get("f", "live") == live
    assert registry.get("f", "live").version == "1"  # a qualifier that is an alias reads its primary version
    canary = aliases.update("f", "live", version="2", weights={"3": 0.25})
    assert (canary.version, dict(canary.weights), canary.description) == ("2", {"3": 0.25}, "prod")
    assert canary.revision_id != live.revision_id
    with pytest.raises(RevisionIdMismatch):
        aliases.update("f", "live", version="1", revision_id=live.revision_id)
    assert aliases.get("f", "live") == canary  # the refused update changed nothing
    aliases.create("f", "beta", "$LATEST")
    assert [a.name for a in aliases.list("f")] == ["beta", "live"]
    assert [a.name for a in aliases.list("f", version="3")] == ["live"]  # routes to 3 by weight
    assert [a.name for a in aliases.list("f", marker="beta")] == ["live"]
    assert [a.name for a in aliases.list("f", limit=1)] == ["beta"]
    cleared = aliases.update("f", "live", weights={})
    assert dict(cleared.weights) == {}
    aliases.delete("f", "live")
    aliases.delete("f", "live")  # already gone: nothing to do
    with pytest.raises(AliasNotFound):
        aliases.get("f", "live")


def test_the_rules_of_an_alias(stores: tuple[Registry, AliasStore]) -> None:
    registry, aliases = stores
    three_versions(registry)
    aliases.create("f", "live", "1")
    with pytest.raises(AliasExists):
        aliases.create("f", "live", "2")
    with pytest.raises(AliasVersionNotFound) as missing:
        aliases.create("f", "next", "9")
    assert missing.value.detail == "9"
    with pytest.raises(AliasVersionNotFound):
        aliases.create("f", "next", "1", weights={"9": 0.5})
    with pytest.raises(InvalidAlias, match=r"\$LATEST is not supported"):
        aliases.create("f", "next", "$LATEST", weights={"1": 0.5})
    with pytest.raises(InvalidAlias, match="at most two versions"):
        aliases.create("f", "next", "1", weights={"2": 0.1, "3": 0.1})
    with pytest.raises(InvalidAlias, match="primary"):
        aliases.create("f", "next", "1", weights={"1": 0.1})
    with pytest.raises(AliasNotFound) as no_function:
        aliases.create("nope", "live", "1")
    assert no_function.value.alias == ""  # the function is what is missing
    with pytest.raises(AliasNotFound):
        aliases.list("nope")
    assert [a.name for a in aliases.list("f")] == ["live"]  # nothing refused was stored


def test_weighted_versions_share_a_role_and_a_dead_letter_queue(stores: tuple[Registry, AliasStore]) -> None:
    registry, aliases = stores
    three_versions(registry)
    registry.update_configuration("f", {"role": ROLE + "-other"})
    registry.publish("f")  # 4: another role
    registry.update_configuration("f", {"role": ROLE, "dead_letter_target": "arn:aws:sqs:us-east-1:0:dlq"})
    registry.publish("f")  # 5: a dead-letter queue
    with pytest.raises(InvalidAlias, match="same execution role"):
        aliases.create("f", "live", "1", weights={"4": 0.5})
    with pytest.raises(InvalidAlias, match="dead-letter"):
        aliases.create("f", "live", "1", weights={"5": 0.5})
    assert aliases.create("f", "live", "1", weights={"2": 0.5}).versions() == ("1", "2")


def test_a_version_an_alias_routes_to_cannot_be_deleted(stores: tuple[Registry, AliasStore]) -> None:
    registry, aliases = stores
    three_versions(registry)
    aliases.create("f", "live", "1", weights={"2": 0.1})
    aliases.create("f", "old", "1")
    for version, names in (("1", ["live", "old"]), ("2", ["live"])):
        with pytest.raises(Referenced) as caught:
            registry.delete("f", version)
        assert caught.value.aliases == names
    registry.delete("f", "3")
    registry.delete("f")  # the function and its aliases
    registry.create("f", SPEC, CODE)
    assert aliases.list("f") == []
    with pytest.raises(NotFound):
        registry.get("f", "live")


def test_event_invoke_configs_on_an_alias_list_and_page(stores: tuple[Registry, AliasStore]) -> None:
    registry, aliases = stores
    three_versions(registry)
    aliases.create("f", "live", "1")
    registry.put_event_config("f", "live", EventInvokeConfig(maximum_retry_attempts=0))
    registry.put_event_config("f", "2", EventInvokeConfig())
    first = registry.event_configs("f", limit=1)
    rest = registry.event_configs("f", marker=first[-1][0])
    assert [q for q, *_ in first + rest] == ["2", "live"]  # by length, then text; an alias is a marker too


@pytest.mark.parametrize(
    ("weights", "draw", "expected"),
    [({}, 0.0, "1"), ({"2": 0.1}, 0.05, "2"), ({"2": 0.1}, 0.1, "1"), ({"2": 1.0}, 0.999, "2"), ({"2": 0.0}, 0.0, "1")],
)
def test_pick_routes_a_draw_below_the_weight_to_the_additional_version(
    weights: dict[str, float], draw: float, expected: str
) -> None:
    assert Alias("f", "live", "1", weights=weights).pick(draw) == expected


# ------------------------------------------------------------------------------------- over boto3


def create(lam: LambdaClient, name: str) -> None:
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.ctx", Code={"ZipFile": CODE})


def invoke(lam: LambdaClient, name: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    """``(ExecutedVersion, the context the handler saw)``."""
    answer = lam.invoke(FunctionName=name, Payload=b"{}", **extra)
    return answer["ExecutedVersion"], json.loads(answer["Payload"].read())


def code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_a_deploy_tool_s_canary_round_trip(lam: LambdaClient) -> None:
    create(lam, "al-deploy")
    function_arn = "arn:aws:lambda:us-east-1:000000000000:function:al-deploy"
    lam.tag_resource(Resource=function_arn, Tags={"stack": "shop", "stage": "prod"})  # what SAM and CDK do first
    assert lam.list_tags(Resource=function_arn)["Tags"] == {"stack": "shop", "stage": "prod"}
    assert lam.publish_version(FunctionName="al-deploy")["Version"] == "1"
    lam.update_function_configuration(FunctionName="al-deploy", MemorySize=256)
    assert lam.publish_version(FunctionName="al-deploy")["Version"] == "2"
    created = lam.create_alias(FunctionName="al-deploy", Name="live", FunctionVersion="1", Description="prod")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == "arn:aws:lambda:us-east-1:000000000000:function:al-deploy:live"
    assert "RoutingConfig" not in created
    version, context = invoke(lam, "al-deploy", Qualifier="live")
    assert version == "1"
    assert context["arn"] == created["AliasArn"]  # the function sees the ARN it was invoked by
    # 10% to version 2.
    canary = lam.update_alias(
        FunctionName="al-deploy", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}}
    )
    assert canary["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    assert canary["RevisionId"] != created["RevisionId"]
    executed = Counter(invoke(lam, "al-deploy:live")[0] for _ in range(300))
    assert set(executed) == {"1", "2"}
    assert 10 <= executed["2"] <= 55, executed  # binomial(300, 0.1): mean 30, sd 5.2
    # Shift to 100%: version 2, no weights.
    lam.update_alias(FunctionName="al-deploy", Name="live", FunctionVersion="2", RoutingConfig={})
    assert Counter(invoke(lam, "al-deploy", Qualifier="live")[0] for _ in range(20)) == {"2": 20}
    # Roll back, guarded by the revision just read.
    current = lam.get_alias(FunctionName="al-deploy", Name="live")
    assert "RoutingConfig" not in current
    lam.update_alias(FunctionName="al-deploy", Name="live", FunctionVersion="1", RevisionId=current["RevisionId"])
    with pytest.raises(ClientError) as stale:
        lam.update_alias(FunctionName="al-deploy", Name="live", FunctionVersion="2", RevisionId=current["RevisionId"])
    assert code(stale) == "PreconditionFailedException"
    arn = "arn:aws:lambda:us-east-1:000000000000:function:al-deploy:live"
    assert invoke(lam, arn)[0] == "1"
    listed = lam.list_aliases(FunctionName="al-deploy")["Aliases"]
    assert [(a["Name"], a["FunctionVersion"]) for a in listed] == [("live", "1")]
    assert lam.list_aliases(FunctionName="al-deploy", FunctionVersion="2")["Aliases"] == []
    assert lam.get_function(FunctionName="al-deploy")["Tags"] == {"stack": "shop", "stage": "prod"}  # read back


def test_aliases_page_and_async_settings_apply_to_an_alias(lam: LambdaClient) -> None:
    create(lam, "al-pages")
    lam.publish_version(FunctionName="al-pages")
    for name in ("a", "b", "c"):
        lam.create_alias(FunctionName="al-pages", Name=name, FunctionVersion="1")
    seen = [
        alias["Name"]
        for page in lam.get_paginator("list_aliases").paginate(
            FunctionName="al-pages", PaginationConfig={"PageSize": 2}
        )
        for alias in page["Aliases"]
    ]
    assert seen == ["a", "b", "c"]
    config = lam.put_function_event_invoke_config(FunctionName="al-pages", Qualifier="a", MaximumRetryAttempts=0)
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:al-pages:a"
    assert lam.get_function_configuration(FunctionName="al-pages", Qualifier="b")["Version"] == "1"
    assert lam.invoke(FunctionName="al-pages", Qualifier="c", InvocationType="Event")["StatusCode"] == 202


def test_alias_errors_are_aws_s(lam: LambdaClient, endpoint: str) -> None:
    create(lam, "al-errors")
    lam.publish_version(FunctionName="al-errors")
    lam.create_alias(FunctionName="al-errors", Name="live", FunctionVersion="1")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"Name": "live", "FunctionVersion": "1"}, "ResourceConflictException"),
        ({"Name": "next", "FunctionVersion": "7"}, "ResourceNotFoundException"),
        ({"Name": "123", "FunctionVersion": "1"}, "ValidationException"),  # would clash with a version
        ({"Name": "x" * 129, "FunctionVersion": "1"}, "ValidationException"),
        ({"Name": "bad name", "FunctionVersion": "1"}, "ValidationException"),
        ({"Name": "next", "FunctionVersion": "one"}, "ValidationException"),
        ({"Name": "next", "FunctionVersion": "$LATEST.PUBLISHED"}, "InvalidParameterValueException"),
        (
            {"Name": "next", "FunctionVersion": "$LATEST", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}},
            "InvalidParameterValueException",
        ),
        ({"Name": "next", "FunctionVersion": "1", "Description": "d" * 257}, "ValidationException"),
    ]
    for params, expected in cases:
        with pytest.raises(ClientError) as caught:
            lam.create_alias(FunctionName="al-errors", **params)
        assert code(caught) == expected, params
    with pytest.raises(ClientError) as caught:
        lam.create_alias(FunctionName="al-nope", Name="live", FunctionVersion="1")
    assert code(caught) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        lam.get_alias(FunctionName="al-errors", Name="gone")
    assert code(caught) == "ResourceNotFoundException"
    assert "Cannot find alias arn" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        lam.delete_function(FunctionName="al-errors", Qualifier="1")
    assert code(caught) == "ResourceConflictException"
    assert "[live]" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="al-errors", Qualifier="gone", Payload=b"{}")
    assert code(caught) == "ResourceNotFoundException"
    path = "/2015-03-31/functions/al-errors/aliases"
    for body in (
        b"[]",
        b"{",
        b'{"Name": "n", "FunctionVersion": "1", "Extra": 1}',
        b'{"Name": 5, "FunctionVersion": "1"}',
    ):
        status, _, _ = raw_request(endpoint, "POST", path, body)
        assert status == 400, body
    for weights in ({"1": 1.5}, {"1": -0.1}, {"1": "half"}, {"1": True}, {"x": 0.5}, {"2": 0.1, "3": 0.1}):
        document = {"Name": "w", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": weights}}
        status, _, _ = raw_request(endpoint, "POST", path, json.dumps(document).encode())
        assert status == 400, weights
    assert [a["Name"] for a in lam.list_aliases(FunctionName="al-errors")["Aliases"]] == ["live"]


def test_a_128_character_alias_carries_async_settings(stores: tuple[Registry, AliasStore]) -> None:
    # Migration 0010 widened the qualifier columns: PostgreSQL would refuse a longer value than the column.
    registry, aliases = stores
    three_versions(registry)
    name = "a" * 128
    aliases.create("f", name, "1")
    registry.put_event_config("f", name, EventInvokeConfig(maximum_retry_attempts=1))
    found = registry.event_config("f", name)
    assert found is not None
    assert found[0].maximum_retry_attempts == 1


# ------------------------------------------------------------------------- provisioned concurrency


def test_provisioned_concurrency_on_an_alias_is_shared_by_weight(stores: tuple[Registry, AliasStore]) -> None:
    registry, aliases = stores
    three_versions(registry)
    aliases.create("f", "live", "1", weights={"2": 0.25})
    shares = registry.set_provisioned("f", "live", 4)
    assert [(s.qualifier, s.version.version, s.count) for s in shares] == [("live", "1", 3), ("live", "2", 1)]
    assert registry.provisioned("f", "live") is not None
    assert [q for q, *_ in registry.provisioned_configs("f")] == ["live"]
    # A version's sandboxes are warmed by one config: not by the version's own, nor another alias's too.
    with pytest.raises(ProvisionedOverlap) as caught:
        registry.set_provisioned("f", "2", 1)
    assert (caught.value.holder, caught.value.version) == ("live", "2")
    aliases.create("f", "other", "1")
    with pytest.raises(ProvisionedOverlap):
        registry.set_provisioned("f", "other", 1)
    registry.set_provisioned("f", "3", 2)
    # The alias moves, and its config with it — but not onto $LATEST, nor onto a version warmed already.
    with pytest.raises(ProvisionedOverlap):
        aliases.update("f", "live", version="3", weights={})
    with pytest.raises(Invalid):
        aliases.update("f", "live", version="$LATEST", weights={})
    assert aliases.get("f", "live").versions() == ("1", "2")  # the refused moves changed nothing
    aliases.update("f", "live", weights={})
    assert [(s.version.version, s.count) for s in registry.provisioned_shares("f", "live")] == [("1", 4)]
    aliases.delete("f", "live")  # its config goes with it
    assert registry.provisioned_shares("f", "live") == []
    assert [(s.qualifier, s.count) for s in registry.all_provisioned()] == [("3", 2)]


def test_provisioned_concurrency_needs_an_alias_of_published_versions(stores: tuple[Registry, AliasStore]) -> None:
    registry, aliases = stores
    three_versions(registry)
    aliases.create("f", "edge", "$LATEST")
    with pytest.raises(Invalid):
        registry.set_provisioned("f", "edge", 1)
    with pytest.raises(NotFound):
        registry.set_provisioned("f", "gone", 1)
    assert registry.all_provisioned() == []


def test_provisioned_concurrency_on_an_alias_over_boto3(lam: LambdaClient) -> None:
    create(lam, "al-warm")
    lam.publish_version(FunctionName="al-warm")
    lam.create_alias(FunctionName="al-warm", Name="live", FunctionVersion="1")
    answer = lam.put_provisioned_concurrency_config(
        FunctionName="al-warm", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert answer["RequestedProvisionedConcurrentExecutions"] == 2
    deadline = time.monotonic() + 60
    while (config := lam.get_provisioned_concurrency_config(FunctionName="al-warm", Qualifier="live"))[
        "Status"
    ] != "READY":
        assert config["Status"] == "IN_PROGRESS"
        assert time.monotonic() < deadline, "provisioned concurrency on the alias never became READY"
        time.sleep(0.05)
    assert config["AllocatedProvisionedConcurrentExecutions"] == 2
    invoked = lam.invoke(FunctionName="al-warm", Qualifier="live", Payload=b"{}")
    assert invoked["ResponseMetadata"]["HTTPHeaders"]["x-leasehold-cold-start"] == "0"  # warmed ahead
    with pytest.raises(ClientError) as caught:
        lam.put_provisioned_concurrency_config(FunctionName="al-warm", Qualifier="1", ProvisionedConcurrentExecutions=1)
    assert code(caught) == "ResourceConflictException"
    listed = lam.list_provisioned_concurrency_configs(FunctionName="al-warm")["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == ["arn:aws:lambda:us-east-1:000000000000:function:al-warm:live"]
    lam.delete_alias(FunctionName="al-warm", Name="live")
    assert lam.list_provisioned_concurrency_configs(FunctionName="al-warm")["ProvisionedConcurrencyConfigs"] == []
