"""More management operations through boto3: paging versions and functions, getting and listing provisioned
concurrency, updating and deleting async settings, and layers (names, architectures, licenses); with
hostile input on each."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient
from mypy_boto3_lambda.literals import RuntimeType
from mypy_boto3_lambda.type_defs import FunctionConfigurationResponseTypeDef
from sqlalchemy import insert

from assignment.dev import DevPlatform
from assignment.frontend.registry import layer_versions
from tests.frontend.harness import ROLE, error_of, make_zip, raw_request

CODE = make_zip({"app.py": "def handler(e, c):\n    return e\n"})
LAYER_ARN = "arn:aws:lambda:us-east-1:000000000000:layer:"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
#: Error types a user mistake may get (function names are checked by the shared ValidationException rule).
USER_ERRORS = {"InvalidParameterValueException", "ValidationException", "ResourceNotFoundException"}


def b64sha(data: bytes) -> str:
    """AWS's CodeSha256: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def user_error(answer: tuple[int, dict[str, str], bytes], *expected: str) -> str:
    """A 4xx Lambda error document of one of ``expected`` (or any user error type); returns its message."""
    status, kind, body = error_of(answer)
    assert 400 <= status < 500, (status, kind, body)
    assert kind in (expected or USER_ERRORS), (status, kind, body)
    message = body.get("Message")
    assert isinstance(message, str)
    assert message
    assert "Traceback" not in message
    return message


def code_of(caught: pytest.ExceptionInfo[ClientError]) -> str:
    """The Lambda error type of a boto3 ClientError."""
    return str(caught.value.response["Error"]["Code"])


def create(lam: LambdaClient, name: str, **fields: Any) -> FunctionConfigurationResponseTypeDef:
    """A small python function (with ``fields`` added to CreateFunction)."""
    return lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}, **fields
    )


def create_body(name: str, **fields: object) -> bytes:
    """A raw CreateFunction body for a small python function, with ``fields`` added."""
    doc = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": base64.b64encode(CODE).decode()},
        **fields,
    }
    return json.dumps(doc).encode()


def publish_versions(lam: LambdaClient, name: str, count: int) -> None:
    """Publish ``count`` versions, each differing from the one before (the timeout alternates)."""
    for i in range(count):
        lam.update_function_configuration(FunctionName=name, Timeout=3 + i % 2)
        lam.publish_version(FunctionName=name)


@pytest.fixture(scope="module")
def versioned(lam: LambdaClient) -> str:
    """A function with 52 published versions."""
    create(lam, "mm-many")
    publish_versions(lam, "mm-many", 52)
    return "mm-many"


# ---------------------------------------------------------------------- ListVersionsByFunction


def test_version_paginator_walks_every_version_in_order(lam: LambdaClient, versioned: str) -> None:
    seen: list[str] = []
    pages = 0
    for page in lam.get_paginator("list_versions_by_function").paginate(
        FunctionName=versioned, PaginationConfig={"PageSize": 7}
    ):
        pages += 1
        assert len(page["Versions"]) <= 7
        seen.extend(v["Version"] for v in page["Versions"])
    assert seen == ["$LATEST", *(str(i) for i in range(1, 53))]
    assert pages == 8


def test_version_pages_hold_at_most_50_and_markers_continue(lam: LambdaClient, versioned: str) -> None:
    first = lam.list_versions_by_function(FunctionName=versioned, MaxItems=10_000)
    assert len(first["Versions"]) == 50
    assert first["NextMarker"] == "49"
    rest = lam.list_versions_by_function(FunctionName=versioned, Marker=first["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["50", "51", "52"]
    assert "NextMarker" not in rest
    one = lam.list_versions_by_function(FunctionName=versioned, MaxItems=1)
    assert ([v["Version"] for v in one["Versions"]], one["NextMarker"]) == (["$LATEST"], "$LATEST")
    assert lam.list_versions_by_function(FunctionName=versioned, Marker="52")["Versions"] == []
    assert lam.list_versions_by_function(FunctionName=versioned, Marker="999")["Versions"] == []
    whole = lam.list_versions_by_function(FunctionName=FUNCTION_ARN + versioned, MaxItems=3)
    assert [v["FunctionArn"] for v in whole["Versions"]][1:] == [
        f"{FUNCTION_ARN}{versioned}:1",
        f"{FUNCTION_ARN}{versioned}:2",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "?MaxItems=0",
        "?MaxItems=-1",
        "?MaxItems=abc",
        "?MaxItems=1.5",
        "?MaxItems=10001",
        "?MaxItems=99999999999999999999",
        "?MaxItems=1&MaxItems=2",
        "?Marker=garbage",
        "?Marker=-1",
        "?Marker=007",
        "?Marker=..%2F..%2Fetc%2Fpasswd",
        "?Marker=%00",
        "?Marker=" + "9" * 2000,
        "?Marker=1&Marker=2",
        "?Surprise=1",
    ],
)
def test_list_versions_rejects_bad_queries(endpoint: str, versioned: str, query: str) -> None:
    message = user_error(
        raw_request(endpoint, "GET", f"/2015-03-31/functions/{versioned}/versions{query}"),
        "InvalidParameterValueException",
    )
    assert any(word in message for word in ("Marker", "MaxItems", "Surprise"))


def test_list_versions_of_a_missing_function(lam: LambdaClient) -> None:
    with pytest.raises(ClientError) as caught:
        lam.list_versions_by_function(FunctionName="mm-nothing", MaxItems=5)
    assert code_of(caught) == "ResourceNotFoundException"


# ---------------------------------------------------------------------- ListProvisionedConcurrencyConfigs


def test_list_provisioned_concurrency_configs(lam: LambdaClient) -> None:
    create(lam, "mm-warm")
    assert lam.list_provisioned_concurrency_configs(FunctionName="mm-warm")["ProvisionedConcurrencyConfigs"] == []
    publish_versions(lam, "mm-warm", 3)
    for version in ("1", "3"):
        lam.put_provisioned_concurrency_config(
            FunctionName="mm-warm", Qualifier=version, ProvisionedConcurrentExecutions=1
        )
    try:
        pages = list(
            lam.get_paginator("list_provisioned_concurrency_configs").paginate(
                FunctionName="mm-warm", PaginationConfig={"PageSize": 1}
            )
        )
        items = [item for page in pages for item in page["ProvisionedConcurrencyConfigs"]]
        assert [item["FunctionArn"] for item in items] == [FUNCTION_ARN + "mm-warm:1", FUNCTION_ARN + "mm-warm:3"]
        assert len(pages) == 2
        for item in items:
            assert item["RequestedProvisionedConcurrentExecutions"] == 1
            assert item["Status"] in ("IN_PROGRESS", "READY", "FAILED")
            assert "LastModified" in item
        # The same path with a Qualifier is still GetProvisionedConcurrencyConfig.
        got = lam.get_provisioned_concurrency_config(FunctionName="mm-warm", Qualifier="3")
        assert got["RequestedProvisionedConcurrentExecutions"] == 1
        after = lam.list_provisioned_concurrency_configs(FunctionName="mm-warm", Marker="1")
        assert [item["FunctionArn"] for item in after["ProvisionedConcurrencyConfigs"]] == [FUNCTION_ARN + "mm-warm:3"]
    finally:
        for version in ("1", "3"):
            lam.delete_provisioned_concurrency_config(FunctionName="mm-warm", Qualifier=version)
    assert lam.list_provisioned_concurrency_configs(FunctionName="mm-warm")["ProvisionedConcurrencyConfigs"] == []


@pytest.mark.parametrize(
    "query",
    [
        "?List=SOME",
        "?List=ALL&List=ALL",
        "?List=ALL&Qualifier=1",
        "?List=ALL&MaxItems=0",
        "?List=ALL&MaxItems=51",
        "?List=ALL&MaxItems=-5",
        "?List=ALL&MaxItems=x",
        "?List=ALL&Marker=%24LATEST",
        "?List=ALL&Marker=a%20bc",
        "?List=ALL&Marker=" + "1" * 3000,
        "?List=ALL&Extra=1",
    ],
)
def test_list_provisioned_rejects_bad_queries(endpoint: str, spare: str, query: str) -> None:
    answer = raw_request(endpoint, "GET", "/2019-09-30/functions/mm-spare/provisioned-concurrency" + query)
    user_error(answer, "InvalidParameterValueException")


def test_list_provisioned_of_a_missing_function(lam: LambdaClient) -> None:
    with pytest.raises(ClientError) as caught:
        lam.list_provisioned_concurrency_configs(FunctionName="mm-nothing")
    assert code_of(caught) == "ResourceNotFoundException"


@pytest.fixture(scope="module")
def spare(lam: LambdaClient) -> str:
    """A function ``mm-spare`` with async settings (two retries) for the bad-input tests."""
    create(lam, "mm-spare")
    lam.put_function_event_invoke_config(FunctionName="mm-spare", MaximumRetryAttempts=2)
    return "mm-spare"


# ---------------------------------------------------------------------- event invoke configs


def test_update_event_invoke_config_merges_fields(lam: LambdaClient) -> None:
    create(lam, "mm-async")
    with pytest.raises(ClientError) as caught:
        lam.update_function_event_invoke_config(FunctionName="mm-async", MaximumRetryAttempts=0)
    assert code_of(caught) == "ResourceNotFoundException"
    assert "mm-async" in str(caught.value)
    failure = FUNCTION_ARN + "mm-failure"
    lam.put_function_event_invoke_config(
        FunctionName="mm-async",
        MaximumRetryAttempts=1,
        MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": failure}},
    )
    updated = lam.update_function_event_invoke_config(FunctionName="mm-async", MaximumRetryAttempts=0)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (0, 120)
    assert updated["DestinationConfig"] == {"OnFailure": {"Destination": failure}}
    assert updated["FunctionArn"] == FUNCTION_ARN + "mm-async:$LATEST"
    success = FUNCTION_ARN + "mm-success"
    updated = lam.update_function_event_invoke_config(
        FunctionName="mm-async", DestinationConfig={"OnSuccess": {"Destination": success}}
    )
    assert updated["DestinationConfig"] == {
        "OnFailure": {"Destination": failure},
        "OnSuccess": {"Destination": success},
    }
    got = lam.get_function_event_invoke_config(FunctionName="mm-async")
    assert (got["MaximumRetryAttempts"], got["MaximumEventAgeInSeconds"]) == (0, 120)
    assert got["DestinationConfig"] == updated["DestinationConfig"]
    assert lam.update_function_event_invoke_config(FunctionName="mm-async")["MaximumRetryAttempts"] == 0


def test_delete_and_list_event_invoke_configs(lam: LambdaClient) -> None:
    create(lam, "mm-async-list")
    publish_versions(lam, "mm-async-list", 2)
    assert lam.list_function_event_invoke_configs(FunctionName="mm-async-list")["FunctionEventInvokeConfigs"] == []
    for qualifier in ("$LATEST", "2", "1"):
        lam.put_function_event_invoke_config(FunctionName="mm-async-list", Qualifier=qualifier, MaximumRetryAttempts=1)
    pages = list(
        lam.get_paginator("list_function_event_invoke_configs").paginate(
            FunctionName="mm-async-list", PaginationConfig={"PageSize": 1}
        )
    )
    arns = [item["FunctionArn"] for page in pages for item in page["FunctionEventInvokeConfigs"]]
    assert arns == [FUNCTION_ARN + f"mm-async-list:{q}" for q in ("$LATEST", "1", "2")]
    assert len(pages) == 3
    deleted = lam.delete_function_event_invoke_config(FunctionName="mm-async-list", Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        lam.delete_function_event_invoke_config(FunctionName="mm-async-list", Qualifier="1")
    assert code_of(caught) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        lam.get_function_event_invoke_config(FunctionName="mm-async-list", Qualifier="1")
    assert code_of(caught) == "ResourceNotFoundException"
    lam.delete_function_event_invoke_config(FunctionName="mm-async-list")
    left = lam.list_function_event_invoke_configs(FunctionName="mm-async-list")["FunctionEventInvokeConfigs"]
    assert [item["FunctionArn"] for item in left] == [FUNCTION_ARN + "mm-async-list:2"]
    with pytest.raises(ClientError) as caught:
        lam.delete_function_event_invoke_config(FunctionName="mm-nothing")
    assert code_of(caught) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        lam.list_function_event_invoke_configs(FunctionName="mm-nothing")
    assert code_of(caught) == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1]",
        b"null",
        b"[" * 100_000,
        b'{"MaximumRetryAttempts": 3}',
        b'{"MaximumRetryAttempts": -1}',
        b'{"MaximumRetryAttempts": "1"}',
        b'{"MaximumRetryAttempts": true}',
        b'{"MaximumEventAgeInSeconds": 59}',
        b'{"MaximumEventAgeInSeconds": 99999999999999999999999}',
        b'{"DestinationConfig": "arn"}',
        b'{"DestinationConfig": {"OnFailure": {"Destination": 5}}}',
        b'{"DestinationConfig": {"Elsewhere": {}}}',
        b'{"Surprise": 1}',
    ],
)
def test_update_event_invoke_config_rejects_bad_bodies(
    endpoint: str, lam: LambdaClient, spare: str, body: bytes
) -> None:
    answer = raw_request(endpoint, "POST", "/2019-09-25/functions/mm-spare/event-invoke-config", body)
    user_error(answer, "InvalidParameterValueException", "InvalidRequestContentException", "ValidationException")
    assert lam.get_function_event_invoke_config(FunctionName="mm-spare")["MaximumRetryAttempts"] == 2


def test_update_event_invoke_config_body_too_large(endpoint: str, spare: str) -> None:
    body = b'{"DestinationConfig": "' + b"x" * 70_000_000 + b'"}'
    answer = raw_request(endpoint, "POST", "/2019-09-25/functions/mm-spare/event-invoke-config", body)
    user_error(answer, "RequestTooLargeException")


@pytest.mark.parametrize(
    "query",
    ["?MaxItems=0", "?MaxItems=51", "?MaxItems=-1", "?MaxItems=%20", "?Marker=no%20pe", "?Marker=0", "?Qualifier=1"],
)
def test_list_event_invoke_configs_rejects_bad_queries(endpoint: str, spare: str, query: str) -> None:
    answer = raw_request(endpoint, "GET", "/2019-09-25/functions/mm-spare/event-invoke-config/list" + query)
    user_error(answer, "InvalidParameterValueException")


# ---------------------------------------------------------------------- layers


def layer_zip(i: int) -> bytes:
    """A distinct layer zip, the same bytes on every call (a fixed entry time, unlike ``make_zip``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("python/lib.py", date_time=(2020, 1, 1, 0, 0, 0)), f"X = {i}\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def layer(lam: LambdaClient) -> str:
    """A layer ``mm-lib`` with versions 1 (python3.11), 2 (python3.12) and 3 (python3.12, provided)."""
    versions: list[list[RuntimeType]] = [["python3.11"], ["python3.12"], ["python3.12", "provided"]]
    for i, runtimes in enumerate(versions, start=1):
        published = lam.publish_layer_version(
            LayerName="mm-lib", Description=f"v{i}", Content={"ZipFile": layer_zip(i)}, CompatibleRuntimes=runtimes
        )
        assert published["Version"] == i
    return "mm-lib"


def test_get_layer_version(lam: LambdaClient, layer: str) -> None:
    got = lam.get_layer_version(LayerName=layer, VersionNumber=2)
    data = layer_zip(2)
    assert got["Content"]["CodeSha256"] == b64sha(data)
    assert got["Content"]["CodeSize"] == len(data)
    assert got["Content"]["Location"].startswith("leasehold://")
    assert got["LayerArn"] == LAYER_ARN + layer
    assert got["LayerVersionArn"] == LAYER_ARN + layer + ":2"
    assert (got["Version"], got["Description"], got["CompatibleRuntimes"]) == (2, "v2", ["python3.12"])
    assert got["CreatedDate"]
    by_arn = lam.get_layer_version(LayerName=LAYER_ARN + layer, VersionNumber=2)
    assert by_arn["LayerVersionArn"] == got["LayerVersionArn"]
    found = lam.get_layer_version_by_arn(Arn=LAYER_ARN + layer + ":2")
    assert found["Content"] == got["Content"]
    for missing, number in ((layer, 99), ("mm-none", 1)):
        with pytest.raises(ClientError) as caught:
            lam.get_layer_version(LayerName=missing, VersionNumber=number)
        assert code_of(caught) == "ResourceNotFoundException"


def test_list_layer_versions_and_layers(lam: LambdaClient, layer: str) -> None:
    pages = list(lam.get_paginator("list_layer_versions").paginate(LayerName=layer, PaginationConfig={"PageSize": 2}))
    assert [v["Version"] for page in pages for v in page["LayerVersions"]] == [3, 2, 1]
    assert len(pages) == 2
    assert pages[0]["LayerVersions"][0]["LayerVersionArn"] == LAYER_ARN + layer + ":3"
    only_311 = lam.list_layer_versions(LayerName=layer, CompatibleRuntime="python3.11")["LayerVersions"]
    assert [v["Version"] for v in only_311] == [1]
    assert lam.list_layer_versions(LayerName=layer, CompatibleArchitecture="arm64")["LayerVersions"] == []
    assert lam.list_layer_versions(LayerName="mm-none")["LayerVersions"] == []
    lam.publish_layer_version(LayerName="mm-other", Content={"ZipFile": layer_zip(9)})
    seen: dict[str, int] = {}
    for page in lam.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 1}):
        assert len(page["Layers"]) <= 1
        for item in page["Layers"]:
            assert item["LayerName"] not in seen
            assert item["LayerArn"] == LAYER_ARN + item["LayerName"]
            seen[item["LayerName"]] = item["LatestMatchingVersion"]["Version"]
    assert (seen["mm-lib"], seen["mm-other"]) == (3, 1)
    matching = lam.list_layers(CompatibleRuntime="python3.11")["Layers"]
    assert [(i["LayerName"], i["LatestMatchingVersion"]["Version"]) for i in matching] == [("mm-lib", 1)]
    assert lam.list_layers(CompatibleArchitecture="arm64")["Layers"] == []


def test_delete_layer_version_is_idempotent_and_numbers_are_not_reused(lam: LambdaClient) -> None:
    first = lam.publish_layer_version(LayerName="mm-gone", Content={"ZipFile": layer_zip(20)})
    lam.publish_layer_version(LayerName="mm-gone", Content={"ZipFile": layer_zip(21)})
    create_uses = create(lam, "mm-layered", Layers=[first["LayerVersionArn"]])
    for _ in range(2):
        answer = lam.delete_layer_version(LayerName="mm-gone", VersionNumber=2)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.delete_layer_version(LayerName="mm-gone", VersionNumber=77)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        lam.get_layer_version(LayerName="mm-gone", VersionNumber=2)
    assert code_of(caught) == "ResourceNotFoundException"
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="mm-gone")["LayerVersions"]] == [1]
    assert lam.publish_layer_version(LayerName="mm-gone", Content={"ZipFile": layer_zip(22)})["Version"] == 3
    lam.delete_layer_version(LayerName=LAYER_ARN + "mm-gone", VersionNumber=1)
    # A function keeps the layer version it was created with; a new function cannot use a deleted one.
    kept = lam.get_function_configuration(FunctionName="mm-layered")["Layers"]
    assert kept == create_uses["Layers"]
    with pytest.raises(ClientError) as caught:
        create(lam, "mm-layered-late", Layers=[first["LayerVersionArn"]])
    assert code_of(caught) == "InvalidParameterValueException"
    assert [(i["LayerName"], i["LatestMatchingVersion"]["Version"]) for i in lam.list_layers()["Layers"]].count(
        ("mm-gone", 3)
    ) == 1


HOSTILE_LAYERS = [
    "..%2F..%2Fetc%2Fpasswd",
    "..",
    "a%00b",
    "x" * 141,
    "bad%20name",
    "%E2%98%83",
    "arn:aws:lambda:eu-west-1:111111111111:layer:x",
    "arn:aws:s3:::bucket",
]
HOSTILE_NUMBERS = ["abc", "-1", "0", "1.5", "99999999999999999999", "9223372036854775808", "%2E%2E", "1e3", "%C2%B2"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("name", HOSTILE_LAYERS)
def test_layer_version_routes_reject_hostile_names(endpoint: str, method: str, name: str) -> None:
    user_error(raw_request(endpoint, method, f"/2018-10-31/layers/{name}/versions/1"))
    user_error(raw_request(endpoint, "GET", f"/2018-10-31/layers/{name}/versions"))


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
def test_layer_version_routes_reject_bad_numbers(endpoint: str, layer: str, method: str, number: str) -> None:
    message = user_error(
        raw_request(endpoint, method, f"/2018-10-31/layers/{layer}/versions/{number}"), "InvalidParameterValueException"
    )
    assert "VersionNumber" in message


@pytest.mark.parametrize(
    "path",
    [
        "/2018-10-31/layers/mm-lib/versions?MaxItems=0",
        "/2018-10-31/layers/mm-lib/versions?MaxItems=51",
        "/2018-10-31/layers/mm-lib/versions?MaxItems=-3",
        "/2018-10-31/layers/mm-lib/versions?Marker=abc",
        "/2018-10-31/layers/mm-lib/versions?Marker=-1",
        "/2018-10-31/layers/mm-lib/versions?Marker=99999999999999999999",
        "/2018-10-31/layers/mm-lib/versions?CompatibleArchitecture=sparc",
        "/2018-10-31/layers/mm-lib/versions?CompatibleRuntime=..%2Fx",
        "/2018-10-31/layers/mm-lib/versions?CompatibleRuntime=python3.12&CompatibleRuntime=provided",
        "/2018-10-31/layers/mm-lib/versions?Extra=1",
        "/2018-10-31/layers?MaxItems=0",
        "/2018-10-31/layers?MaxItems=99999999999999999999",
        "/2018-10-31/layers?Marker=" + "z" * 2000,
        "/2018-10-31/layers?CompatibleArchitecture=",
        "/2018-10-31/layers?Extra=1",
        "/2018-10-31/layers?find=Everything&Arn=x",
        "/2018-10-31/layers?find=LayerVersion",
        "/2018-10-31/layers?find=LayerVersion&Arn=arn:aws:lambda:us-east-1:000000000000:layer:mm-lib",
        "/2018-10-31/layers?find=LayerVersion&Arn=arn:aws:lambda:us-east-1:000000000000:layer:..%2Fx:1",
        "/2018-10-31/layers?find=LayerVersion&Arn=arn:aws:lambda:us-east-1:000000000000:layer:mm-lib:-1",
        "/2018-10-31/layers?find=LayerVersion&Arn=arn:aws:lambda:us-east-1:000000000000:layer:mm-lib:1&x=1",
    ],
)
def test_layer_listings_reject_bad_queries(endpoint: str, layer: str, path: str) -> None:
    user_error(raw_request(endpoint, "GET", path), "InvalidParameterValueException")


def test_garbage_layer_marker_on_list_layers_is_just_a_name(lam: LambdaClient, layer: str) -> None:
    # ListLayers' marker is the last layer name of a page: any short string is a valid place to resume.
    assert lam.list_layers(Marker="zzzz")["Layers"] == []
    names = [item["LayerName"] for item in lam.list_layers(Marker="mm-lia")["Layers"]]
    assert names[0] == layer


@pytest.mark.parametrize("number", ["\u00b2", "9" * 25, "0", "-1", "01"])
def test_functions_refuse_layer_arns_with_bad_numbers(endpoint: str, number: str) -> None:
    doc = create_body("mm-bad-layer", Layers=[f"{LAYER_ARN}mm-lib:{number}"])
    answer = raw_request(endpoint, "POST", "/2015-03-31/functions", doc)
    assert "does not exist" in user_error(answer, "InvalidParameterValueException")


# ---------------------------------------------------------------------- hostile function names

NEW_NAMED_ROUTES = [
    ("GET", "/2015-03-31/functions/{}/versions?MaxItems=1"),
    ("GET", "/2019-09-30/functions/{}/provisioned-concurrency?List=ALL"),
    ("POST", "/2019-09-25/functions/{}/event-invoke-config"),
    ("DELETE", "/2019-09-25/functions/{}/event-invoke-config"),
    ("GET", "/2019-09-25/functions/{}/event-invoke-config/list"),
]


@pytest.mark.parametrize(("method", "template"), NEW_NAMED_ROUTES)
@pytest.mark.parametrize(
    "name", ["..%2F..%2Fetc%2Fpasswd", "..", "a%00b", "x" * 65, "bad%20name", "%E2%98%83", "a:b:c:d", "mm-nothing"]
)
def test_new_function_routes_reject_hostile_names(endpoint: str, method: str, template: str, name: str) -> None:
    body = b"{}" if method == "POST" else None
    user_error(raw_request(endpoint, method, template.format(name), body))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2015-03-31/functions/mm-many:1/versions"),
        ("GET", "/2019-09-30/functions/mm-many:1/provisioned-concurrency?List=ALL"),
        ("GET", "/2019-09-25/functions/mm-many:1/event-invoke-config/list"),
        ("POST", "/2019-09-25/functions/mm-many/event-invoke-config?Qualifier=%24LATEST%2F.."),
        ("DELETE", "/2019-09-25/functions/mm-many/event-invoke-config?Qualifier=1&Qualifier=2"),
    ],
)
def test_new_function_routes_reject_bad_qualifiers(endpoint: str, versioned: str, method: str, path: str) -> None:
    body: Any = json.dumps({}).encode() if method == "POST" else None
    user_error(raw_request(endpoint, method, path, body), "InvalidParameterValueException", "ValidationException")


# ---------------------------------------------------------------------- GetProvisionedConcurrencyConfig


def test_get_provisioned_without_a_config_is_config_not_found(lam: LambdaClient) -> None:
    create(lam, "mm-cold")
    publish_versions(lam, "mm-cold", 1)
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException) as caught:
        lam.get_provisioned_concurrency_config(FunctionName="mm-cold", Qualifier="1")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert FUNCTION_ARN + "mm-cold:1" in caught.value.response["Error"]["Message"]
    lam.put_provisioned_concurrency_config(FunctionName="mm-cold", Qualifier="1", ProvisionedConcurrentExecutions=1)
    lam.delete_provisioned_concurrency_config(FunctionName="mm-cold", Qualifier="1")
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName="mm-cold", Qualifier="1")
    # A version or function that does not exist is not a missing config.
    for name, qualifier in (("mm-cold", "9"), ("mm-nothing", "1")):
        with pytest.raises(ClientError) as missing:
            lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        assert code_of(missing) == "ResourceNotFoundException"
    # DeleteProvisionedConcurrencyConfig's errors do not include the config-not-found type (the model).
    with pytest.raises(ClientError) as deleted:
        lam.delete_provisioned_concurrency_config(FunctionName="mm-cold", Qualifier="1")
    assert code_of(deleted) == "ResourceNotFoundException"


# ---------------------------------------------------------------------- ListFunctions


@pytest.mark.parametrize(
    "query",
    [
        "?MaxItems=abc",
        "?MaxItems=0",
        "?MaxItems=-1",
        "?MaxItems=1.5",
        "?MaxItems=%20",
        "?MaxItems=10001",
        "?MaxItems=99999999999999999999",
        "?MaxItems=1&MaxItems=2",
        "?Marker=a&Marker=b",
        "?Marker=" + "z" * 2000,
        "?FunctionVersion=ALL&FunctionVersion=ALL",
        "?FunctionVersion=SOME",
        "?FunctionVersion=",
        "?MasterRegion=us-east-1",
        "?FunctionVersion=ALL&MasterRegion=nowhere",
        "?FunctionVersion=ALL&MasterRegion=us-east-1&MasterRegion=ALL",
        "?Surprise=1",
    ],
)
def test_list_functions_rejects_bad_queries_like_the_other_lists(endpoint: str, query: str) -> None:
    message = user_error(
        raw_request(endpoint, "GET", "/2015-03-31/functions/" + query), "InvalidParameterValueException"
    )
    assert any(word in message for word in ("Marker", "MaxItems", "FunctionVersion", "MasterRegion", "Surprise"))


def test_list_functions_pages_whole_functions(lam: LambdaClient) -> None:
    for name in ("mm-list-a", "mm-list-b"):
        create(lam, name)
    publish_versions(lam, "mm-list-a", 2)
    page = lam.list_functions(FunctionVersion="ALL", Marker="mm-list-", MaxItems=1)
    assert [(f["FunctionName"], f["Version"]) for f in page["Functions"]] == [
        ("mm-list-a", "$LATEST"),
        ("mm-list-a", "1"),
        ("mm-list-a", "2"),
    ]
    assert page["NextMarker"] == "mm-list-a"
    rest = lam.list_functions(Marker=page["NextMarker"], MaxItems=10_000)
    assert rest["Functions"][0]["FunctionName"] == "mm-list-b"
    assert "NextMarker" not in rest
    edge = lam.list_functions(FunctionVersion="ALL", MasterRegion="ALL", Marker="mm-list-a", MaxItems=1)
    assert [f["FunctionName"] for f in edge["Functions"]] == ["mm-list-b"]


# ---------------------------------------------------------------------- PublishLayerVersion


def test_publish_layer_takes_long_names_and_own_arns(lam: LambdaClient) -> None:
    long_name = "mm-" + "L" * 137
    published = lam.publish_layer_version(LayerName=long_name, Content={"ZipFile": layer_zip(30)})
    assert (published["LayerArn"], published["Version"]) == (LAYER_ARN + long_name, 1)
    again = lam.publish_layer_version(LayerName=LAYER_ARN + long_name, Content={"ZipFile": layer_zip(31)})
    assert (again["LayerArn"], again["Version"]) == (LAYER_ARN + long_name, 2)
    assert lam.get_layer_version(LayerName=long_name, VersionNumber=2)["Content"]["CodeSha256"] == b64sha(layer_zip(31))


@pytest.mark.parametrize("name", [*HOSTILE_LAYERS, "", "a" * 2049])
def test_publish_layer_rejects_hostile_names(endpoint: str, name: str) -> None:
    body = json.dumps({"Content": {"ZipFile": base64.b64encode(layer_zip(32)).decode()}}).encode()
    user_error(raw_request(endpoint, "POST", f"/2018-10-31/layers/{name}/versions", body))


def test_layer_architectures_and_license_are_kept_and_answered(lam: LambdaClient) -> None:
    published = lam.publish_layer_version(
        LayerName="mm-arch",
        Content={"ZipFile": layer_zip(40)},
        CompatibleRuntimes=["python3.12"],
        CompatibleArchitectures=["arm64", "x86_64"],
        LicenseInfo="MIT",
    )
    plain = lam.publish_layer_version(LayerName="mm-arch-plain", Content={"ZipFile": layer_zip(41)})
    arn = published["LayerVersionArn"]
    expected = (["arm64", "x86_64"], "MIT")
    assert (published["CompatibleArchitectures"], published["LicenseInfo"]) == expected
    got = lam.get_layer_version(LayerName="mm-arch", VersionNumber=1)
    assert (got["CompatibleArchitectures"], got["LicenseInfo"]) == expected
    by_arn = lam.get_layer_version_by_arn(Arn=arn)
    assert (by_arn["CompatibleArchitectures"], by_arn["LicenseInfo"]) == expected
    [item] = lam.list_layer_versions(LayerName="mm-arch")["LayerVersions"]
    assert (item["CompatibleArchitectures"], item["LicenseInfo"]) == expected
    layers = {i["LayerName"]: i["LatestMatchingVersion"] for i in lam.list_layers(Marker="mm-ar")["Layers"]}
    assert (layers["mm-arch"]["CompatibleArchitectures"], layers["mm-arch"]["LicenseInfo"]) == expected
    # Without them: an empty list and no LicenseInfo, as AWS answers.
    for doc in (plain, lam.get_layer_version(LayerName="mm-arch-plain", VersionNumber=1), layers["mm-arch-plain"]):
        assert doc["CompatibleArchitectures"] == []
        assert "LicenseInfo" not in doc
    # The architecture filters match the versions that list the architecture.
    for architecture in ("arm64", "x86_64"):
        matching = lam.list_layers(CompatibleArchitecture=architecture, Marker="mm-ar")["Layers"]
        assert "mm-arch" in [i["LayerName"] for i in matching]
        assert "mm-arch-plain" not in [i["LayerName"] for i in matching]
        versions = lam.list_layer_versions(LayerName="mm-arch", CompatibleArchitecture=architecture)
        assert [v["LayerVersionArn"] for v in versions["LayerVersions"]] == [arn]
    assert lam.list_layer_versions(LayerName="mm-arch-plain", CompatibleArchitecture="x86_64")["LayerVersions"] == []
    both = lam.list_layer_versions(LayerName="mm-arch", CompatibleArchitecture="arm64", CompatibleRuntime="python3.11")
    assert both["LayerVersions"] == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"CompatibleArchitectures": "x86_64"}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": {"x86_64": True}}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": [1]}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": [None]}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": [""]}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": [["arm64"]]}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": ["sparc"]}, "ValidationException"),
        ({"CompatibleArchitectures": ["X86_64"]}, "ValidationException"),
        ({"CompatibleArchitectures": ["x86_64 "]}, "ValidationException"),
        ({"CompatibleArchitectures": ["x" * 5000]}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": ["x86_64", "x86_64"]}, "InvalidParameterValueException"),
        ({"CompatibleArchitectures": ["x86_64", "arm64", "x86_64"]}, "ValidationException"),
        ({"CompatibleArchitectures": ["arm64"] * 100_000}, "ValidationException"),
        ({"LicenseInfo": "L" * 513}, "ValidationException"),
        ({"LicenseInfo": "MIT\nor worse"}, "ValidationException"),
        ({"LicenseInfo": 5}, "InvalidParameterValueException"),
        ({"LicenseInfo": ["MIT"]}, "InvalidParameterValueException"),
        ({"LicenseInfo": {"Name": "MIT"}}, "InvalidParameterValueException"),
        ({"LicenseInfo": True}, "InvalidParameterValueException"),
    ],
)
def test_publish_layer_rejects_bad_architectures_and_licenses(
    endpoint: str, lam: LambdaClient, extra: dict[str, Any], expected: str
) -> None:
    body = json.dumps({"Content": {"ZipFile": base64.b64encode(layer_zip(50)).decode()}, **extra}).encode()
    message = user_error(raw_request(endpoint, "POST", "/2018-10-31/layers/mm-arch-bad/versions", body), expected)
    assert next(iter(extra)) in message
    assert lam.list_layer_versions(LayerName="mm-arch-bad")["LayerVersions"] == []


def test_publish_layer_license_limits(lam: LambdaClient) -> None:
    longest = "https://example.com/" + "l" * 492
    published = lam.publish_layer_version(
        LayerName="mm-licensed", Content={"ZipFile": layer_zip(51)}, LicenseInfo=longest, CompatibleArchitectures=[]
    )
    assert (published["LicenseInfo"], published["CompatibleArchitectures"]) == (longest, [])


def test_layer_rows_written_before_architectures_read_back_with_defaults(
    lam: LambdaClient, platform: DevPlatform
) -> None:
    assert platform.frontend is not None
    registry = platform.frontend.registry
    assert registry is not None
    data = layer_zip(60)
    sha = registry.blobs.put(data)
    old = json.dumps({"description": "from before", "runtimes": ["python3.12"]})
    with registry.journal.writer.begin() as conn:
        conn.execute(
            insert(layer_versions).values(
                name="mm-old", version=1, sha256=sha, size=len(data), document=old, created_ms=1_700_000_000_000
            )
        )
    got = lam.get_layer_version(LayerName="mm-old", VersionNumber=1)
    assert (got["Description"], got["CompatibleRuntimes"], got["CompatibleArchitectures"]) == (
        "from before",
        ["python3.12"],
        [],
    )
    assert "LicenseInfo" not in got
    [item] = lam.list_layer_versions(LayerName="mm-old")["LayerVersions"]
    assert item["CompatibleArchitectures"] == []
    assert lam.list_layer_versions(LayerName="mm-old", CompatibleArchitecture="x86_64")["LayerVersions"] == []
    assert lam.publish_layer_version(LayerName="mm-old", Content={"ZipFile": layer_zip(61)})["Version"] == 2


# ---------------------------------------------------------------------- CreateFunction Architectures


@pytest.mark.parametrize(
    ("architectures", "expected"),
    [
        (["sparc"], "ValidationException"),
        (["X86_64"], "ValidationException"),
        (["x86_64", "x86_64"], "ValidationException"),
        (["arm64"], "InvalidParameterValueException"),
        ("x86_64", "InvalidParameterValueException"),
        ([None], "InvalidParameterValueException"),
        ([], "ValidationException"),  # the model's min 1
    ],
)
def test_create_function_architectures_follow_the_model(endpoint: str, architectures: object, expected: str) -> None:
    body = create_body("mm-arch-fn", Architectures=architectures)
    answer = raw_request(endpoint, "POST", "/2015-03-31/functions", body)
    user_error(answer, expected)
    assert raw_request(endpoint, "GET", "/2015-03-31/functions/mm-arch-fn")[0] == 404, "nothing was created"
