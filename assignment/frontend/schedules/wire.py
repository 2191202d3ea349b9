"""EventBridge Scheduler's REST-JSON protocol: request members checked against botocore's ``scheduler`` model.

boto3's ``scheduler`` client speaks REST-JSON (``POST|GET|PUT|DELETE /schedules/{Name}``, ``GET
/schedules``; signing name ``scheduler``). :func:`decode` takes an operation's members from the path, the
query string and the JSON body and checks every one against the operation's input shape *in botocore's
model*: types, required members, enums, lengths, numeric ranges and patterns, and members the model does
not have are refused, never dropped. A refusal is :class:`ValidationException` worded as AWS words it
(``1 validation error detected: Value 'x' at 'name' failed to satisfy constraint: ...``). Timestamps
arrive as epoch seconds (what botocore sends) and are returned as integer milliseconds.

Example::

    members = decode("CreateSchedule", {"Name": "nightly"}, {}, body)
    members["FlexibleTimeWindow"]["Mode"]     # "OFF"
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from assignment.frontend.types import ValidationException

__all__ = ["decode", "operation"]

#: How deep a request may nest (the model's deepest Lambda-target member is Target.RetryPolicy.*).
_MAX_DEPTH = 8


@functools.cache
def _model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("scheduler")


def operation(name: str) -> OperationModel:
    """The operation's model."""
    return _model().operation_model(name)


def _show(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _violation(value: object, path: str, constraint: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{_show(value)}' at '{path}' failed to satisfy constraint: {constraint}"
    )


def _bounds(shape: Shape, value: object, size: float, path: str, what: str) -> None:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is not None and size < low:
        raise _violation(value, path, f"Member must have {what} greater than or equal to {low}")
    if high is not None and size > high:
        raise _violation(value, path, f"Member must have {what} less than or equal to {high}")


def _check(shape: Shape, value: object, path: str, depth: int) -> Any:
    """``value`` checked against ``shape``; raises naming ``path``."""
    if depth > _MAX_DEPTH:
        raise _violation("...", path, "Member must not nest this deeply")
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise _violation(value, path, "Member must be an object")
        members = shape.members  # type: ignore[attr-defined]
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in members:
                raise ValidationException(f"Unknown parameter {where[:200]}: it is not a member of this request")
            if item is not None:
                out[key] = _check(members[key], item, where, depth + 1)
        for key in shape.required_members:
            if key not in out:
                where = f"{path}.{key}" if path else key
                raise ValidationException(
                    f"1 validation error detected: Value null at '{where}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise _violation(value, path, "Member must be a list")
        _bounds(shape, value, len(value), path, "length")
        member = shape.member  # type: ignore[attr-defined]
        return [_check(member, item, f"{path}.{n}", depth + 1) for n, item in enumerate(value, start=1)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _violation(value, path, "Member must be a map")
        _bounds(shape, value, len(value), path, "length")
        of = shape.value  # type: ignore[attr-defined]
        return {key: _check(of, item, f"{path}.{key}", depth + 1) for key, item in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise _violation(value, path, "Member must be a string")
        _bounds(shape, value, len(value), path, "length")
        enum = shape.enum  # type: ignore[attr-defined]
        if enum and value not in enum:
            raise _violation(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise _violation(value, path, f"Member must satisfy regular expression pattern: {pattern}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _violation(value, path, "Member must be an integer")
        _bounds(shape, value, value, path, "value")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _violation(value, path, "Member must be a boolean")
        return value
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _violation(value, path, "Member must be a timestamp (epoch seconds)")
        if not 0 <= value < 253_402_300_800:  # 0001..9999 as botocore accepts; beyond that no date exists
            raise _violation(value, path, "Member must be a timestamp between 1970 and 9999")
        return round(value * 1000)
    raise _violation(value, path, f"Member has the type {kind}, which Leasehold does not take")


def decode(name: str, path: Mapping[str, str], query: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The input members of operation ``name``: from the URI (``path``), the query string and the JSON
    ``body``, each where the model puts it, checked as the model says."""
    model = operation(name)
    shape = model.input_shape
    members = shape.members if shape is not None else {}
    document: dict[str, Any] = {}
    located = {member.serialization.get("name", key): key for key, member in members.items()}
    by_location = {key: member.serialization.get("location") for key, member in members.items()}
    for wire_name, value in path.items():
        document[located.get(wire_name, wire_name)] = value
    for wire_name, value in query.items():
        key = located.get(wire_name)
        if key is None or by_location.get(key) != "querystring":
            raise ValidationException(f"Unknown query parameter {wire_name[:64]!r} for {name}")
        document[key] = int(value) if members[key].type_name == "integer" and value.lstrip("-").isdigit() else value
    if body.strip():
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ValidationException("The request body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValidationException("The request body must be a JSON object")
        for key in parsed:
            if key in members and by_location.get(key) is not None:
                raise ValidationException(f"Unknown parameter {key[:64]}: it belongs in the URI, not the body")
        document.update(parsed)
    if shape is None:
        return {}
    checked: dict[str, Any] = _check(shape, document, "", 0)
    return checked
