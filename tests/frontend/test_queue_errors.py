"""SQS's error shapes (no database): every error class takes its wire identity from the one table, and the
table says what SQS's model and its Common Errors page say."""

from __future__ import annotations

import pytest

import assignment.frontend.queues as queues
from assignment.frontend.queues import ERROR_SHAPES, ErrorShape, QueueError, errors


def _error_classes() -> list[type[QueueError]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, QueueError) and value is not QueueError
    ]


def test_every_error_class_is_a_row_of_the_table_and_importable_from_the_package() -> None:
    classes = _error_classes()
    assert {cls.__name__ for cls in classes} == set(errors.__all__) - {"ERROR_SHAPES", "ErrorShape", "QueueError"}
    assert all(getattr(queues, cls.__name__) is cls for cls in classes)
    for cls in classes:
        shape = ERROR_SHAPES[cls.__name__]
        assert (cls.code, cls.query_code, cls.http_status, cls.sender_fault) == (
            shape.code,
            shape.query_code,
            shape.http_status,
            shape.sender_fault,
        )
        error = cls("why")
        assert (error.shape, error.message, str(error)) == (shape, "why", "why")


def test_a_class_without_a_row_fails_at_definition() -> None:
    with pytest.raises(KeyError):
        type("NotAnSqsError", (QueueError,), {})


@pytest.mark.parametrize(
    ("code", "query_code", "status"),
    [
        # From the awsQueryError/httpError traits of SQS's Smithy model.
        ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400),
        ("QueueNameExists", "QueueAlreadyExists", 400),
        ("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403),
        ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404),
        ("InvalidAddress", "InvalidAddress", 404),
        ("InvalidSecurity", "InvalidSecurity", 403),
        ("RequestThrottled", "RequestThrottled", 403),
        ("OverLimit", "OverLimit", 403),
        ("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400),
        ("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
        ("KmsOptInRequired", "KMS.OptInRequired", 403),
        # Shapes without the traits answer their own name.
        ("InvalidAttributeName", "InvalidAttributeName", 400),
        ("InvalidMessageContents", "InvalidMessageContents", 400),
        # Common Errors.
        ("MissingParameter", "MissingParameter", 400),
        ("InvalidParameterValue", "InvalidParameterValue", 400),
        ("MalformedQueryString", "MalformedQueryString", 404),
    ],
)
def test_the_table_matches_sqs(code: str, query_code: str, status: int) -> None:
    assert ERROR_SHAPES[code] == ErrorShape(code, query_code, status, sender_fault=True)


def test_the_service_faults() -> None:
    assert ERROR_SHAPES["InternalFailure"] == ErrorShape("InternalFailure", "InternalFailure", 500, sender_fault=False)
    assert ERROR_SHAPES["ServiceUnavailable"].http_status == 503
    assert QueueError("boom").code == "InternalFailure"
    assert not QueueError.sender_fault


def test_the_query_error_header() -> None:
    assert queues.QueueDoesNotExist.shape.query_error_header == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert ERROR_SHAPES["InternalFailure"].query_error_header == "InternalFailure;Receiver"


def test_invalid_attribute_value_carries_the_attribute_and_the_reason() -> None:
    error = queues.InvalidAttributeValue("Invalid value for the parameter Policy.", attribute="Policy", reason="r")
    assert (error.attribute, error.reason) == ("Policy", "r")
    assert queues.InvalidAttributeValue("m").attribute == ""
