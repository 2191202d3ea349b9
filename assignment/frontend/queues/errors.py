"""SQS's errors: one table of the error shapes, and a :class:`QueueError` subclass for each one Leasehold raises.

:data:`ERROR_SHAPES` is the single place an SQS error's wire identity lives. Each row gives the JSON
protocol's type (the model's shape name, what ``__type`` carries), the query protocol's code (what SQS sends
in ``x-amzn-query-error``, and what query-protocol clients match on), the HTTP status and whether the sender
is at fault. The rows of the model's shapes come from the ``aws.protocols#awsQueryError`` and
``smithy.api#httpError`` traits of SQS's Smithy model (``com.amazonaws.sqs``, API version 2012-11-05; the
botocore model shipped here has dropped its ``error`` metadata, and older botocore releases carried the same
codes). A shape without those traits answers its own name and 400. The rest are the errors AWS documents
for every service on SQS's "Common Errors" page, which SQS answers to a request it cannot parse or that
lacks a required parameter (``MissingParameter``: "The request must contain the parameter ...") or gives a
bad value (``InvalidParameterValue``, also for a value of the wrong type).

An error class is named after its shape and takes its codes from the table (:meth:`QueueError.__init_subclass__`
looks the name up, so a class without a row fails at import), so no class repeats a code.

Example::

    try:
        store.get_queue("123456789012", "jobs")
    except QueueError as exc:
        status, body = exc.shape.http_status, {"__type": exc.code, "message": exc.message}
        headers = {"x-amzn-query-error": exc.shape.query_error_header}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

__all__ = [
    "ERROR_SHAPES",
    "BatchEntryIdsNotDistinct",
    "BatchRequestTooLong",
    "EmptyBatchRequest",
    "ErrorShape",
    "InternalFailure",
    "InvalidAction",
    "InvalidAddress",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidBatchEntryId",
    "InvalidIdFormat",
    "InvalidMessageContents",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "InvalidSecurity",
    "MessageNotInflight",
    "MissingAction",
    "MissingParameter",
    "OverLimit",
    "PurgeQueueInProgress",
    "QueueDeletedRecently",
    "QueueDoesNotExist",
    "QueueError",
    "QueueNameExists",
    "ReceiptHandleIsInvalid",
    "RequestThrottled",
    "ResourceNotFoundException",
    "ServiceUnavailable",
    "TooManyEntriesInBatchRequest",
    "UnsupportedOperation",
]


@dataclass(frozen=True, slots=True)
class ErrorShape:
    """How one SQS error goes on the wire: ``code`` the JSON type, ``query_code`` the query protocol's code."""

    code: str
    query_code: str
    http_status: int
    sender_fault: bool

    @property
    def query_error_header(self) -> str:
        """The ``x-amzn-query-error`` header's value: the query code and who is at fault."""
        return f"{self.query_code};{'Sender' if self.sender_fault else 'Receiver'}"


def _shape(code: str, query_code: str = "", http_status: int = 400, *, sender_fault: bool = True) -> ErrorShape:
    return ErrorShape(code, query_code or code, http_status, sender_fault)


_SQS = "AWS.SimpleQueueService."

#: Every SQS error shape Leasehold knows, by JSON type.
ERROR_SHAPES: Mapping[str, ErrorShape] = MappingProxyType(
    {
        shape.code: shape
        for shape in (
            # The model's shapes (com.amazonaws.sqs).
            _shape("BatchEntryIdsNotDistinct", _SQS + "BatchEntryIdsNotDistinct"),
            _shape("BatchRequestTooLong", _SQS + "BatchRequestTooLong"),
            _shape("EmptyBatchRequest", _SQS + "EmptyBatchRequest"),
            _shape("InvalidAddress", "InvalidAddress", 404),
            _shape("InvalidAttributeName"),
            _shape("InvalidAttributeValue"),
            _shape("InvalidBatchEntryId", _SQS + "InvalidBatchEntryId"),
            _shape("InvalidIdFormat"),  # deprecated in the model: ReceiptHandleIsInvalid covers it
            _shape("InvalidMessageContents"),
            _shape("InvalidSecurity", "InvalidSecurity", 403),
            # The KMS shapes are listed so an answer can name them; Leasehold has no KMS and raises none.
            _shape("KmsAccessDenied", "KMS.AccessDeniedException"),
            _shape("KmsDisabled", "KMS.DisabledException"),
            _shape("KmsInvalidKeyUsage", "KMS.InvalidKeyUsageException"),
            _shape("KmsInvalidState", "KMS.InvalidStateException"),
            _shape("KmsNotFound", "KMS.NotFoundException"),
            _shape("KmsOptInRequired", "KMS.OptInRequired", 403),
            _shape("KmsThrottled", "KMS.ThrottlingException"),
            _shape("MessageNotInflight", _SQS + "MessageNotInflight"),
            _shape("OverLimit", "OverLimit", 403),
            _shape("PurgeQueueInProgress", _SQS + "PurgeQueueInProgress", 403),
            _shape("QueueDeletedRecently", _SQS + "QueueDeletedRecently"),
            _shape("QueueDoesNotExist", _SQS + "NonExistentQueue"),
            _shape("QueueNameExists", "QueueAlreadyExists"),
            _shape("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404),
            _shape("RequestThrottled", "RequestThrottled", 403),
            _shape("ResourceNotFoundException", "ResourceNotFoundException", 404),
            _shape("TooManyEntriesInBatchRequest", _SQS + "TooManyEntriesInBatchRequest"),
            _shape("UnsupportedOperation", _SQS + "UnsupportedOperation"),
            # SQS's "Common Errors" (no shape in the model; the type is the code).
            _shape("AccessDeniedException"),
            _shape("IncompleteSignature"),
            _shape("InternalFailure", http_status=500, sender_fault=False),
            _shape("InvalidAction"),
            _shape("InvalidClientTokenId", http_status=403),
            _shape("InvalidParameterCombination"),
            _shape("InvalidParameterValue"),
            _shape("InvalidQueryParameter"),
            _shape("MalformedQueryString", http_status=404),
            _shape("MissingAction"),
            _shape("MissingAuthenticationToken", http_status=403),
            _shape("MissingParameter"),
            _shape("NotAuthorized"),
            _shape("OptInRequired", http_status=403),
            _shape("RequestExpired"),
            _shape("ServiceUnavailable", http_status=503, sender_fault=False),
            # Not on that page, but what AWS's endpoints answer when a signature does not verify.
            _shape("SignatureDoesNotMatch", http_status=403),
            _shape("ThrottlingException"),
            _shape("ValidationError"),
        )
    }
)


class QueueError(Exception):
    """An SQS error: its :class:`ErrorShape` (``code`` the JSON type, ``query_code`` the query protocol's,
    ``http_status``, ``sender_fault``) and a message for people. The base is SQS's InternalFailure."""

    shape: ClassVar[ErrorShape] = ERROR_SHAPES["InternalFailure"]
    code: ClassVar[str] = shape.code
    query_code: ClassVar[str] = shape.query_code
    http_status: ClassVar[int] = shape.http_status
    sender_fault: ClassVar[bool] = shape.sender_fault

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.shape = ERROR_SHAPES[cls.__name__]
        cls.code, cls.query_code = cls.shape.code, cls.shape.query_code
        cls.http_status, cls.sender_fault = cls.shape.http_status, cls.shape.sender_fault

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueDoesNotExist(QueueError):
    """The queue does not exist (in this account)."""


class QueueNameExists(QueueError):
    """A queue of that name exists with other attribute values."""


class QueueDeletedRecently(QueueError):
    """The name was deleted less than 60 seconds ago."""


class PurgeQueueInProgress(QueueError):
    """The queue was purged less than 60 seconds ago."""


class InvalidAttributeName(QueueError):
    """An attribute name that does not exist (or does not apply to this kind of queue)."""


class InvalidAttributeValue(QueueError):
    """A queue attribute's value is out of range, malformed, or one this platform cannot honour:
    ``attribute`` names it ("" when not known), ``reason`` says why when there is more to say than that."""

    def __init__(self, message: str, *, attribute: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.attribute = attribute
        self.reason = reason


class InvalidParameterValue(QueueError):
    """A request parameter is invalid or of the wrong type (a common error: no shape in the model)."""


class InvalidParameterCombination(QueueError):
    """Parameters that must not be used together were used together (a common error)."""


class MissingParameter(QueueError):
    """A required parameter is missing (a common error)."""


class InvalidAction(QueueError):
    """The request names an action SQS does not have (a common error)."""


class MissingAction(QueueError):
    """The request names no action (a common error)."""


class InternalFailure(QueueError):
    """The service failed (HTTP 500, not the sender's fault)."""


class ServiceUnavailable(QueueError):
    """The service cannot answer now (HTTP 503, not the sender's fault)."""


class InvalidMessageContents(QueueError):
    """A body or string value has characters outside the allowed set."""


class ReceiptHandleIsInvalid(QueueError):
    """A receipt handle that is malformed, of another queue, or superseded by a later receive."""


class InvalidIdFormat(QueueError):
    """A receipt handle of another version (deprecated in the model in favour of ReceiptHandleIsInvalid)."""


class MessageNotInflight(QueueError):
    """ChangeMessageVisibility on a message that is not in flight."""


class EmptyBatchRequest(QueueError):
    """A batch without entries."""


class TooManyEntriesInBatchRequest(QueueError):
    """A batch of more than 10 entries."""


class BatchEntryIdsNotDistinct(QueueError):
    """Two entries of a batch have the same id."""


class InvalidBatchEntryId(QueueError):
    """An entry id that is not 1-80 of alphanumerics, ``-`` and ``_``."""


class BatchRequestTooLong(QueueError):
    """The messages of a batch add up to more than 1 MiB."""


class InvalidAddress(QueueError):
    """A queue URL (or id) that does not address a queue of this endpoint (HTTP 404)."""


class InvalidSecurity(QueueError):
    """The request was not made over HTTPS or not signed with SigV4 (HTTP 403)."""


class RequestThrottled(QueueError):
    """The request rate is over the permitted one (HTTP 403)."""


class OverLimit(QueueError):
    """The action would exceed a limit, e.g. of in-flight messages (HTTP 403)."""


class UnsupportedOperation(QueueError):
    """An operation the queue (or this platform) does not support."""


class ResourceNotFoundException(QueueError):
    """A resource other than a queue (e.g. a message move task) does not exist (HTTP 404)."""
