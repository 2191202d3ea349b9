"""A walk over botocore's Lambda and Scheduler models: every operation Leasehold answers enforces the
constraints the model puts on its input members, as AWS does before it looks at anything else.

For each answered operation there is one valid request (:data:`STEPS`, in an order that builds what the
later ones need). Before a step's valid request is sent, a boto3 client that does not validate on the
client side (``parameter_validation=False``, so the platform sees exactly the bad value) sends one
mutation per constraint of the input shape's members:

* a required member left out (members of the path cannot be left out and are skipped);
* an enum member with a value outside the enum;
* an integer member one below its ``min`` and one above its ``max``;
* a string member one character longer than its ``max`` (and, in the body, an empty one when ``min`` > 0);
* a list of strings holding a value outside its enum, one item more than its ``max``, or none below its
  ``min``;
* the same for the members of a structure member, one level down (``Environment.Variables``); a structure
  Leasehold refuses whole (``VpcConfig is not supported ...``) refuses each of them.

Each must be refused with 400 (``InvalidParameterValueException`` or ``ValidationException``, AWS's two
words for it) and a message naming the member; then the valid request must succeed, which shows that the
mutation, not the base, was refused. Patterns and deeper members are not walked here (their own tests are
per operation). The operations Leasehold does not answer must answer that they are unknown, so the list
of answered ones (:data:`STEPS`) cannot silently drift from the routes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import ListShape, OperationModel, ServiceModel, Shape, StringShape, StructureShape

from assignment.dev import DevPlatform
from tests.frontend.harness import ROLE, make_zip
from tests.harness.lambda_clients import credentials_for, sqs_client

MODEL = botocore.session.get_session().get_service_model("lambda")
SCHEDULER_MODEL = botocore.session.get_session().get_service_model("scheduler")
ACCOUNT = "000000000000"
FUNCTION = "walk"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}"
LAYER = "walk-layer"
CODE = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
REFUSED = {"InvalidParameterValueException", "ValidationException"}

#: What earlier steps made, for later steps' requests (a mapping's UUID, a layer version's ARN).
World = dict[str, Any]
Params = dict[str, Any] | Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    """One operation's valid request, and what to keep from its answer."""

    operation: str
    params: Params = field(default_factory=dict)
    keep: Callable[[dict[str, Any], World], None] | None = None


def _keep_mapping(answer: dict[str, Any], world: World) -> None:
    """The mapping's UUID, once the pollers settled its creation (a change while Creating is refused)."""
    world["uuid"] = answer["UUID"]
    deadline = time.monotonic() + 30
    while world["client"].get_event_source_mapping(UUID=answer["UUID"])["State"] == "Creating":
        assert time.monotonic() < deadline, "the mapping stays Creating"
        time.sleep(0.05)


def _keep_layer(answer: dict[str, Any], world: World) -> None:
    world["layer_arn"] = answer["LayerVersionArn"]


FN = {"FunctionName": FUNCTION}
STEPS = [
    Step(
        "CreateFunction",
        {**FN, "Runtime": "python3.12", "Role": ROLE, "Handler": "app.handler", "Code": {"ZipFile": CODE}},
    ),
    Step("GetFunction", FN),
    Step("GetFunctionConfiguration", FN),
    Step("UpdateFunctionConfiguration", {**FN, "MemorySize": 256}),
    Step("UpdateFunctionCode", {**FN, "ZipFile": CODE}),
    Step("PublishVersion", FN),
    Step("ListVersionsByFunction", FN),
    Step("ListFunctions"),
    Step("Invoke", {**FN, "Payload": b"{}"}),
    Step("CreateAlias", {**FN, "Name": "live", "FunctionVersion": "1"}),
    Step("GetAlias", {**FN, "Name": "live"}),
    Step("UpdateAlias", {**FN, "Name": "live", "FunctionVersion": "1"}),
    Step("ListAliases", FN),
    Step("PutFunctionConcurrency", {**FN, "ReservedConcurrentExecutions": 5}),
    Step("GetFunctionConcurrency", FN),
    Step("DeleteFunctionConcurrency", FN),
    Step("PutProvisionedConcurrencyConfig", {**FN, "Qualifier": "live", "ProvisionedConcurrentExecutions": 1}),
    Step("GetProvisionedConcurrencyConfig", {**FN, "Qualifier": "live"}),
    Step("ListProvisionedConcurrencyConfigs", FN),
    Step("DeleteProvisionedConcurrencyConfig", {**FN, "Qualifier": "live"}),
    Step("PutFunctionEventInvokeConfig", {**FN, "MaximumRetryAttempts": 1}),
    Step("UpdateFunctionEventInvokeConfig", {**FN, "MaximumEventAgeInSeconds": 600}),
    Step("GetFunctionEventInvokeConfig", FN),
    Step("ListFunctionEventInvokeConfigs", FN),
    Step("DeleteFunctionEventInvokeConfig", FN),
    Step("TagResource", {"Resource": ARN, "Tags": {"team": "walk"}}),
    Step("ListTags", {"Resource": ARN}),
    Step("UntagResource", {"Resource": ARN, "TagKeys": ["team"]}),
    Step("PublishLayerVersion", {"LayerName": LAYER, "Content": {"ZipFile": CODE}}, keep=_keep_layer),
    Step("GetLayerVersion", {"LayerName": LAYER, "VersionNumber": 1}),
    Step("GetLayerVersionByArn", lambda world: {"Arn": world["layer_arn"]}),
    Step("ListLayerVersions", {"LayerName": LAYER}),
    Step("ListLayers"),
    Step(
        "CreateEventSourceMapping",
        {**FN, "EventSourceArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:walk-queue"},
        keep=_keep_mapping,
    ),
    Step("GetEventSourceMapping", lambda world: {"UUID": world["uuid"]}),
    Step("ListEventSourceMappings"),
    Step("UpdateEventSourceMapping", lambda world: {"UUID": world["uuid"], "BatchSize": 5}),
    Step("DeleteEventSourceMapping", lambda world: {"UUID": world["uuid"]}),
    Step("GetAccountSettings"),
    Step("DeleteLayerVersion", {"LayerName": LAYER, "VersionNumber": 1}),
    Step("DeleteAlias", {**FN, "Name": "live"}),
    Step("DeleteFunction", FN),
]


def _client(endpoint: str, service: str = "lambda") -> Any:
    key = credentials_for(endpoint)
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}),
    )


def _method(client: Any, operation: str) -> Callable[..., dict[str, Any]]:
    method: Callable[..., dict[str, Any]] = getattr(client, xform_name(operation))
    return method


def _mutations(model: OperationModel, base: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(member, what is wrong, the request) for each top-level constraint of the input shape."""
    shape = model.input_shape
    if shape is None:
        return []
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name, member in shape.members.items():
        in_uri = member.serialization.get("location") == "uri"
        if name in shape.required_members and not in_uri and name in base:
            out.append((name, "left out", {k: v for k, v in base.items() if k != name}))
        for what, value in _bad_values(member, in_uri):
            out.append((name, what, {**base, name: value}))
        if isinstance(member, StructureShape):
            out += _nested_mutations(name, member, base)
    return out


def _nested_mutations(name: str, shape: StructureShape, base: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The same, one level down: a member of a structure member (``Parent.Child``)."""
    inner = dict(base.get(name) or {})
    out: list[tuple[str, str, dict[str, Any]]] = []
    for child, member in shape.members.items():
        if child in shape.required_members and child in inner:
            out.append((f"{name}.{child}", "left out", {**base, name: {k: v for k, v in inner.items() if k != child}}))
        for what, value in _bad_values(member, in_uri=False):
            out.append((f"{name}.{child}", what, {**base, name: {**inner, child: value}}))
    return out


def _bad_values(member: Shape, in_uri: bool) -> list[tuple[str, Any]]:
    meta = member.metadata
    if isinstance(member, StringShape) and member.enum:
        return [("outside its enum", "NOT-ONE-OF-THEM")]
    if member.type_name in ("integer", "long"):
        bounds = [(f"below {meta['min']}", meta["min"] - 1)] if "min" in meta else []
        return bounds + ([(f"above {meta['max']}", meta["max"] + 1)] if "max" in meta else [])
    if isinstance(member, ListShape) and isinstance(member.member, StringShape):
        items: list[tuple[str, Any]] = []
        if member.member.enum:
            items.append(("holding a value outside its enum", ["NOT-ONE-OF-THEM"]))
        if "max" in meta:
            sample = member.member.enum[0] if member.member.enum else "a"
            items.append((f"holding more than {meta['max']}", [sample] * (meta["max"] + 1)))
        if meta.get("min", 0) > 0:
            items.append(("empty", []))
        return items
    if member.type_name == "string":
        bad: list[tuple[str, Any]] = []
        if "max" in meta:
            bad.append((f"longer than {meta['max']}", "a" * (meta["max"] + 1)))
        if meta.get("min", 0) > 0 and not in_uri and member.serialization.get("location") is None:
            bad.append(("empty", ""))
        return bad
    return []


def _names(member: str, model: OperationModel) -> set[str]:
    """The words an error message may name the member by: its name or its wire name (lower case); a
    nested member by its own name."""
    assert model.input_shape is not None
    top, _, child = member.partition(".")
    if child:
        return {child.lower()}
    wire = model.input_shape.members[top].serialization.get("name", top)
    return {top.lower(), str(wire).lower()}


@pytest.fixture(scope="module")
def queue(platform: DevPlatform, endpoint: str) -> None:
    """The queue the event source mapping step reads."""
    sqs_client(endpoint).create_queue(QueueName="walk-queue")


def _walk(client: Any, model: ServiceModel, steps: list[Step]) -> tuple[int, list[str]]:
    """Send every step's mutations, then its valid request: (mutations sent, what was not refused right)."""
    world: World = {"client": client}
    violations: list[str] = []
    walked = 0
    for step in steps:
        operation = model.operation_model(step.operation)
        base = step.params(world) if callable(step.params) else dict(step.params)
        call = _method(client, step.operation)
        for member, what, params in _mutations(operation, base):
            walked += 1
            try:
                call(**params)
            except ClientError as exc:
                status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
                error = exc.response["Error"]
                message = str(error.get("Message", ""))
                parent = member.partition(".")[0]
                named = any(word in message.lower() for word in _names(member, operation)) or (
                    "." in member and f"{parent} is not supported" in message  # the whole structure is refused
                )
                if status != 400 or error.get("Code") not in REFUSED or not named:
                    violations.append(f"{step.operation}.{member} {what}: {status} {error.get('Code')}: {message}")
            else:
                violations.append(f"{step.operation}.{member} {what}: accepted")
        try:
            answer = call(**base)
        except ClientError as exc:
            raise AssertionError(f"{step.operation}'s valid request failed; so far: " + "\n".join(violations)) from exc
        if step.keep is not None:
            step.keep(answer, world)
    return walked, violations


def test_every_answered_operation_enforces_its_model_constraints(endpoint: str, queue: None) -> None:
    walked, violations = _walk(_client(endpoint), MODEL, STEPS)
    assert walked > 280  # the walk really walked (302 mutations when this was written)
    assert violations == [], "\n".join(violations)


def test_every_scheduler_operation_enforces_its_model_constraints(endpoint: str) -> None:
    lam = _client(endpoint)
    lam.create_function(FunctionName="walk-target", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": CODE})  # fmt: skip
    target = {"Arn": f"{ARN}-target", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler"}
    one = {"Name": "walk-schedule"}
    steps = [
        Step(
            "CreateSchedule",
            {**one, "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": target},
        ),
        Step("GetSchedule", one),
        Step(
            "UpdateSchedule",
            {**one, "ScheduleExpression": "rate(2 hours)", "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": target},
        ),
        Step("ListSchedules"),
        Step("DeleteSchedule", one),
    ]
    walked, violations = _walk(_client(endpoint, "scheduler"), SCHEDULER_MODEL, steps)
    lam.delete_function(FunctionName="walk-target")
    assert walked > 50  # 67 when this was written
    assert violations == [], "\n".join(violations)


def test_the_operations_not_answered_say_so(endpoint: str) -> None:
    answered = {step.operation for step in STEPS}
    client = _client(endpoint)
    for operation in MODEL.operation_names:
        if operation in answered:
            continue
        model = MODEL.operation_model(operation)
        shape = model.input_shape
        params = {}
        for name in shape.required_members if shape is not None else []:
            member = shape.members[name]  # type: ignore[union-attr]
            params[name] = {"string": "x", "integer": 1, "long": 1, "blob": b"x", "boolean": True}.get(
                member.type_name, {} if member.type_name == "structure" else []
            )
        with pytest.raises(ClientError) as refused:
            _method(client, operation)(**params)
        error = refused.value.response["Error"]
        assert error.get("Message") in ("Not Found", "Method Not Allowed"), (operation, error)  # no route


@pytest.mark.parametrize(("member", "value"), [("TenantId", "tenant-1"), ("DurableExecutionName", "order-42")])
def test_invoke_members_without_a_feature_are_refused_not_ignored(endpoint: str, member: str, value: str) -> None:
    client = _client(endpoint)
    client.create_function(FunctionName="walk-refusals", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                           Code={"ZipFile": CODE})  # fmt: skip
    try:
        with pytest.raises(ClientError) as refused:
            client.invoke(FunctionName="walk-refusals", Payload=b"{}", **{member: value})
        error = refused.value.response["Error"]
        assert error["Code"] == "InvalidParameterValueException"
        assert error["Message"].startswith(f"{member} is not supported by Leasehold")
    finally:
        client.delete_function(FunctionName="walk-refusals")


def test_an_image_package_is_refused_by_name(endpoint: str) -> None:
    image = {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/f:1"}
    with pytest.raises(ClientError) as refused:
        _client(endpoint).create_function(FunctionName="walk-image", Role=ROLE, PackageType="Image", Code=image)
    assert refused.value.response["Error"]["Message"] == "PackageType Image is not supported by Leasehold: use Zip"
