"""The SQS JSON protocol on the wire: what boto3's ``sqs`` client sends and how SQS answers.

boto3 speaks SQS as AWS JSON 1.0 with query compatibility (botocore's ``sqs/2012-11-05`` model:
``protocol: json``, ``targetPrefix: AmazonSQS``, ``awsQueryCompatible``): ``POST /`` with
``X-Amz-Target: AmazonSQS.<Operation>`` and a JSON object of the operation's input members. This module
checks a request body against the operation's input shape *from that model*, so every member's type,
required-ness and nesting is the model's, not a copy kept here: a wrong type is ``InvalidParameterValue``
naming the member (``Entries.2.DelaySeconds``), a missing required member ``MissingParameter``, an
unknown member ``InvalidParameterValue`` (never silently dropped), and blobs arrive base64-decoded.

Errors are answered as SQS answers them (:data:`~assignment.frontend.queues.ERROR_SHAPES`): the shape's HTTP
status, a JSON body
``{"__type": "com.amazonaws.sqs#<Code>", "message": ...}`` and the header ``x-amzn-query-error:
<query code>;Sender``, from which botocore takes the error code it shows (``AWS.SimpleQueueService.
NonExistentQueue``) while raising the modeled exception class (``QueueDoesNotExist``).

Example::

    params = decode_request("SendMessage", b'{"QueueUrl": "http://h/000000000000/jobs", "MessageBody": "hi"}')
    status, document, headers = error_document(QueueDoesNotExist("The specified queue does not exist."))
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from assignment.frontend.queues import (
    InvalidAction,
    InvalidParameterValue,
    MissingParameter,
    QueueError,
)

__all__ = [
    "CONTENT_TYPE",
    "TARGET_PREFIX",
    "decode_request",
    "encode_blob",
    "error_document",
    "operation_names",
]

#: The prefix of ``X-Amz-Target`` for SQS.
TARGET_PREFIX = "AmazonSQS."
#: The content type of requests and answers.
CONTENT_TYPE = "application/x-amz-json-1.0"
#: The error types' namespace in ``__type``.
_NAMESPACE = "com.amazonaws.sqs#"
#: How deep a request may nest (the model's deepest input is 4: Entries → entry → attributes → value).
_MAX_DEPTH = 8


@functools.cache
def _model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sqs")


def operation_names() -> frozenset[str]:
    """Every operation of botocore's SQS model."""
    return frozenset(_model().operation_names)


def _operation(name: str) -> OperationModel:
    if name not in operation_names():
        raise InvalidAction(f"The action {name[:64]!r} is not valid for this endpoint.")
    return _model().operation_model(name)


def _invalid(path: str, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Value for parameter {path} is invalid. Reason: {why}")


def _check(shape: Shape, value: object, path: str, depth: int) -> Any:
    """``value`` checked against ``shape`` (blobs decoded); raises naming ``path``."""
    if depth > _MAX_DEPTH:
        raise _invalid(path, "the request nests too deeply.")
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise _invalid(path, "must be an object.")
        members = shape.members  # type: ignore[attr-defined]
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in members:
                raise InvalidParameterValue(f"Unknown parameter {where[:200]} is not valid for this operation.")
            if item is not None:
                out[key] = _check(members[key], item, where, depth + 1)
        for key in shape.required_members:
            if key not in out:
                raise MissingParameter(f"The request must contain the parameter {f'{path}.{key}' if path else key}.")
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise _invalid(path, "must be a list.")
        member = shape.member  # type: ignore[attr-defined]
        return [_check(member, item, f"{path}.{n}", depth + 1) for n, item in enumerate(value, start=1)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _invalid(path, "must be a map.")
        of = shape.value  # type: ignore[attr-defined]
        return {key: _check(of, item, f"{path}.{key}", depth + 1) for key, item in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise _invalid(path, "must be a string.")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(path, "must be an integer.")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _invalid(path, "must be a boolean.")
        return value
    if kind == "blob":
        if not isinstance(value, str):
            raise _invalid(path, "must be base64 text.")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(path, "is not valid base64.") from None
    raise _invalid(path, f"has the unsupported type {kind}.")  # the SQS model has no other input types


def decode_request(operation: str, body: bytes) -> dict[str, Any]:
    """The input members of ``operation`` in ``body``, checked against botocore's model."""
    model = _operation(operation)
    try:
        document = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise InvalidParameterValue("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise InvalidParameterValue("The request body must be a JSON object.")
    if model.input_shape is None:
        if document:
            raise InvalidParameterValue(f"{operation} takes no parameters.")
        return {}
    checked: dict[str, Any] = _check(model.input_shape, document, "", 0)
    return checked


def encode_blob(data: bytes) -> str:
    """A blob as the JSON protocol carries it."""
    return base64.b64encode(data).decode("ascii")


def error_document(exc: QueueError) -> tuple[int, dict[str, str], dict[str, str]]:
    """``(status, body, headers)`` of SQS's answer to ``exc`` (its row of the error table)."""
    body = {"__type": _NAMESPACE + exc.code, "message": exc.message}
    return exc.http_status, body, {"x-amzn-query-error": exc.shape.query_error_header}
