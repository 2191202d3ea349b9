"""Function management through boto3: create, get, list, update, publish, delete, layers, settings."""

from __future__ import annotations

import base64
import hashlib

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from tests.frontend.harness import ROLE, make_zip

CODE = make_zip({"app.py": "def handler(e, c):\n    return e\n"})
OTHER = make_zip({"app.py": "def handler(e, c):\n    return 'other'\n"})


def b64sha(data: bytes) -> str:
    """AWS's CodeSha256: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_create_get_and_list(lam: LambdaClient) -> None:
    created = lam.create_function(
        FunctionName="m-basic",
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": CODE},
        MemorySize=256,
        Timeout=30,
        Description="basic",
        Environment={"Variables": {"A": "1"}},
        Tags={"team": "x"},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:m-basic"
    assert created["CodeSha256"] == b64sha(CODE)
    assert created["CodeSize"] == len(CODE)
    assert (created["MemorySize"], created["Timeout"], created["Version"]) == (256, 30, "$LATEST")
    assert created["Environment"] == {"Variables": {"A": "1"}}
    assert created["State"] == "Active"
    got = lam.get_function(FunctionName="m-basic")
    assert got["Configuration"]["FunctionArn"] == created["FunctionArn"]
    assert got["Configuration"]["RevisionId"] == created["RevisionId"]
    assert lam.get_function_configuration(FunctionName="m-basic")["Description"] == "basic"
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "m-basic" in names


def test_list_functions_pages(lam: LambdaClient) -> None:
    for i in range(3):
        lam.create_function(
            FunctionName=f"m-page-{i}", Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}
        )
    seen: list[str] = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1}):
        seen.extend(f["FunctionName"] for f in page["Functions"])
    assert [n for n in seen if n.startswith("m-page-")] == ["m-page-0", "m-page-1", "m-page-2"]
    assert len(seen) == len(set(seen))


def test_update_and_publish_versions_are_immutable(lam: LambdaClient) -> None:
    lam.create_function(
        FunctionName="m-ver", Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}
    )
    v1 = lam.publish_version(FunctionName="m-ver", Description="first")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (v1["Version"], v1["FunctionArn"]) == ("1", "arn:aws:lambda:us-east-1:000000000000:function:m-ver:1")
    assert lam.publish_version(FunctionName="m-ver")["Version"] == "1"  # unchanged $LATEST: same version
    updated = lam.update_function_code(FunctionName="m-ver", ZipFile=OTHER)
    assert updated["CodeSha256"] == b64sha(OTHER)
    lam.update_function_configuration(FunctionName="m-ver", MemorySize=512, Timeout=9)
    with pytest.raises(ClientError) as caught:
        lam.publish_version(FunctionName="m-ver", CodeSha256=b64sha(CODE))
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    v2 = lam.publish_version(FunctionName="m-ver", CodeSha256=b64sha(OTHER))
    assert (v2["Version"], v2["MemorySize"], v2["CodeSha256"]) == ("2", 512, b64sha(OTHER))
    old = lam.get_function_configuration(FunctionName="m-ver", Qualifier="1")
    assert (old["MemorySize"], old["CodeSha256"], old["Description"]) == (128, b64sha(CODE), "first")
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="m-ver")["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    all_versions = lam.list_functions(FunctionVersion="ALL")["Functions"]
    assert {v["Version"] for v in all_versions if v["FunctionName"] == "m-ver"} == {"$LATEST", "1", "2"}
    published = lam.update_function_code(FunctionName="m-ver", ZipFile=CODE, Publish=True)
    assert published["Version"] == "3"


def test_delete_a_version_then_the_function(lam: LambdaClient) -> None:
    lam.create_function(
        FunctionName="m-del",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": CODE},
        Publish=True,
    )
    with pytest.raises(ClientError) as caught:
        lam.delete_function(FunctionName="m-del", Qualifier="$LATEST")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert lam.delete_function(FunctionName="m-del", Qualifier="1")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="m-del", Qualifier="1")
    lam.delete_function(FunctionName="m-del")
    with pytest.raises(ClientError) as caught:
        lam.get_function(FunctionName="m-del")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        lam.delete_function(FunctionName="m-del")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # The name is free again; the new function starts at version 1.
    lam.create_function(
        FunctionName="m-del",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": OTHER},
        Publish=True,
    )
    assert lam.get_function_configuration(FunctionName="m-del", Qualifier="1")["CodeSha256"] == b64sha(OTHER)


def test_layers(lam: LambdaClient) -> None:
    layer = lam.publish_layer_version(
        LayerName="m-lib",
        Content={"ZipFile": make_zip({"python/lib.py": "X = 1\n"})},
        CompatibleRuntimes=["python3.11"],
    )
    assert layer["Version"] == 1
    assert layer["LayerVersionArn"] == "arn:aws:lambda:us-east-1:000000000000:layer:m-lib:1"
    created = lam.create_function(
        FunctionName="m-layered",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "import lib\ndef handler(e, c):\n    return lib.X\n"})},
        Layers=[layer["LayerVersionArn"]],
    )
    assert created["Layers"] == [{"Arn": layer["LayerVersionArn"], "CodeSize": layer["Content"]["CodeSize"]}]
    assert lam.invoke(FunctionName="m-layered")["Payload"].read() == b"1"


def test_event_invoke_config(lam: LambdaClient) -> None:
    lam.create_function(
        FunctionName="m-async", Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}
    )
    with pytest.raises(ClientError) as caught:
        lam.get_function_event_invoke_config(FunctionName="m-async")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    put = lam.put_function_event_invoke_config(
        FunctionName="m-async",
        MaximumRetryAttempts=1,
        MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:x"}},
    )
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 120)
    got = lam.get_function_event_invoke_config(FunctionName="m-async")
    assert got["FunctionArn"].endswith(":function:m-async:$LATEST")
    assert got["DestinationConfig"]["OnFailure"]["Destination"].endswith(":function:x")


def test_reserved_concurrency_keeps_100_unreserved(lam: LambdaClient) -> None:
    lam.create_function(
        FunctionName="m-greedy", Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}
    )
    with pytest.raises(ClientError) as caught:
        lam.put_function_concurrency(FunctionName="m-greedy", ReservedConcurrentExecutions=901)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert (
        lam.put_function_concurrency(FunctionName="m-greedy", ReservedConcurrentExecutions=10)[
            "ReservedConcurrentExecutions"
        ]
        == 10
    )
    assert lam.get_function(FunctionName="m-greedy")["Concurrency"] == {"ReservedConcurrentExecutions": 10}
    lam.delete_function_concurrency(FunctionName="m-greedy")


def test_provided_runtime_needs_no_handler(lam: LambdaClient) -> None:
    created = lam.create_function(
        FunctionName="m-custom",
        Runtime="provided.al2023",
        Role=ROLE,
        Code={"ZipFile": make_zip({"bootstrap": "#!/bin/sh\n"})},
    )
    assert created["Runtime"] == "provided.al2023"
