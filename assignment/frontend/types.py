"""The values the frontend's parts pass to each other: invocation results, function configurations, errors.

One module so the HTTP API, the gRPC API, the invoker, the registry and the event queue agree on them
without importing each other. Lambda error types are named here once and mapped once to HTTP
(:attr:`LambdaError.status`) and to gRPC (by the gRPC service).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from journal.outcomes import OutcomeLabel

__all__ = [
    "AccessDeniedException",
    "CodeStorageExceededException",
    "ConflictException",
    "EventInvokeConfig",
    "FunctionConfig",
    "IncompleteSignatureException",
    "InternalServerException",
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "InvalidSignatureException",
    "InvokeResult",
    "LambdaError",
    "LoggingConfig",
    "MissingAuthenticationTokenException",
    "PreconditionFailedException",
    "ProvisionedConcurrencyConfigNotFoundException",
    "RequestTooLargeException",
    "ResourceConflictException",
    "ResourceInUseException",
    "ResourceNotFoundException",
    "ServiceException",
    "TooManyRequestsException",
    "UnrecognizedClientException",
    "UnsupportedMediaTypeException",
    "ValidationException",
    "error_types",
]

FunctionErrorKind = Literal["", "Handled", "Unhandled"]


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """A function's LoggingConfig (AWS's advanced logging controls): ``log_format`` Text or JSON; with JSON
    the application (TRACE..FATAL) and system (DEBUG, INFO, WARN) levels, INFO by default; the log group
    (``""``: ``/aws/lambda/<function>``)."""

    log_format: str = "Text"
    application_log_level: str = ""
    system_log_level: str = ""
    log_group: str = ""

    def group_of(self, function: str) -> str:
        """The log group's name for ``function``."""
        return self.log_group or f"/aws/lambda/{function}"


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """One version of a function ($LATEST or a published number) as the invoke path needs it."""

    name: str
    #: "$LATEST" or "1", "2", ... (what the function sees as AWS_LAMBDA_FUNCTION_VERSION).
    version: str
    #: The assignment service's pool key: changes whenever code or configuration change, so a sandbox is
    #: only reused by invocations of what it was created with (e.g. "$LATEST.r7" or "3").
    pool_version: str
    runtime: str
    handler: str
    code_sha256: str
    memory_mb: int = 128
    timeout_s: int = 3
    environment: dict[str, str] = field(default_factory=dict)
    #: SHA-256 of each layer zip, in order.
    layers: tuple[str, ...] = ()
    snap_start: bool = False
    arn: str = ""
    #: The function's incarnation (a deleted and re-created function has another): sessions are bound to it.
    incarnation: str = ""
    #: The name of the function's execution role (the assumed-role ARN of its sessions).
    role: str = ""
    #: The SQS queue ARN failed async events go to (DeadLetterConfig), "" for none.
    dead_letter_target: str = ""
    #: How the sandbox writes its logs (LoggingConfig).
    logging: LoggingConfig = LoggingConfig()
    #: The size of the sandbox's /tmp in MB (EphemeralStorage).
    ephemeral_storage_mb: int = 512


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What a synchronous invocation returns to the caller (HTTP, gRPC or the event poller)."""

    request_id: str
    #: The function's response body, or the error document for a function error.
    payload: bytes
    executed_version: str
    #: "" on success; "Unhandled" for errors raised by the function or the runtime (AWS's header value).
    function_error: FunctionErrorKind = ""
    #: START ... END ... REPORT lines of this invocation.
    logs: str = ""
    #: How it ended, as the core names it (:class:`journal.outcomes.Outcome`'s label).
    outcome: OutcomeLabel = "ok"
    duration_ms: float = 0.0
    cold: bool = False


@dataclass(frozen=True, slots=True)
class EventInvokeConfig:
    """PutFunctionEventInvokeConfig: how asynchronous invocations of a function (version) are retried."""

    maximum_retry_attempts: int = 2
    maximum_event_age_s: int = 21_600
    #: ARN (or name) of the function invoked with the failure record, or "" for the dead-letter store.
    on_failure: str = ""
    on_success: str = ""


class LambdaError(Exception):
    """An error of the Lambda API: ``type`` is the ``x-amzn-ErrorType``, ``status`` the HTTP status."""

    type: str = "ServiceException"
    status: int = 500

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        #: TooManyRequestsException's Reason (ConcurrentInvocationLimitExceeded, ...).
        self.reason = reason

    def body(self) -> dict[str, str]:
        """The JSON error document (``Type``/``Message`` as the Lambda API sends; ``Reason`` for throttles)."""
        doc = {"Type": "User" if self.status < 500 else "Service", "Message": self.message, "message": self.message}
        if self.reason:
            doc["Reason"] = self.reason
        return doc


class ResourceNotFoundException(LambdaError):
    """HTTP 404: The function, version or resource does not exist."""

    type = "ResourceNotFoundException"
    status = 404


class ProvisionedConcurrencyConfigNotFoundException(LambdaError):
    """HTTP 404: The function version exists but has no provisioned concurrency configuration."""

    type = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404


class InvalidRequestContentException(LambdaError):
    """HTTP 400: The request body is not valid JSON, or cannot be read."""

    type = "InvalidRequestContentException"
    status = 400


class InvalidParameterValueException(LambdaError):
    """HTTP 400: A parameter has a wrong type or value."""

    type = "InvalidParameterValueException"
    status = 400


class RequestTooLargeException(LambdaError):
    """HTTP 413: The payload is over the limit (6 MB sync, 1 MB async)."""

    type = "RequestTooLargeException"
    status = 413


class TooManyRequestsException(LambdaError):
    """HTTP 429: Throttled; ``reason`` says which limit."""

    type = "TooManyRequestsException"
    status = 429


class ResourceConflictException(LambdaError):
    """HTTP 409: The resource exists already, or is in use."""

    type = "ResourceConflictException"
    status = 409


class ResourceInUseException(LambdaError):
    """HTTP 400: The resource is in the middle of a change (an event source mapping ``Creating``,
    ``Updating`` or ``Deleting``); retry once it settles."""

    type = "ResourceInUseException"
    status = 400


class PreconditionFailedException(LambdaError):
    """HTTP 412: The RevisionId given is not the resource's current one."""

    type = "PreconditionFailedException"
    status = 412


class ServiceException(LambdaError):
    """HTTP 500: Something failed inside Leasehold."""

    type = "ServiceException"
    status = 500


class UnsupportedMediaTypeException(LambdaError):
    """HTTP 415: The request's content type is not accepted."""

    type = "UnsupportedMediaTypeException"
    status = 415


class CodeStorageExceededException(LambdaError):
    """HTTP 400: The code is over the size limit."""

    type = "CodeStorageExceededException"
    status = 400


class ValidationException(LambdaError):
    """HTTP 400: A value breaks its documented pattern, length or range (AWS's constraint check)."""

    type = "ValidationException"
    status = 400


class ConflictException(LambdaError):
    """HTTP 409: The resource exists already (EventBridge Scheduler's error for a schedule name taken)."""

    type = "ConflictException"
    status = 409


class InternalServerException(LambdaError):
    """HTTP 500: EventBridge Scheduler's name for an unexpected error of its API."""

    type = "InternalServerException"
    status = 500


class MissingAuthenticationTokenException(LambdaError):
    """HTTP 403: The request carries no signature at all (neither an Authorization header nor presigned query
    parameters); what the Lambda endpoint answers an unsigned request."""

    type = "MissingAuthenticationTokenException"
    status = 403


class UnrecognizedClientException(LambdaError):
    """HTTP 403: The access key id is unknown, or the session token is invalid, expired or revoked."""

    type = "UnrecognizedClientException"
    status = 403


class InvalidSignatureException(LambdaError):
    """HTTP 403: The signature does not match, is outside its time window, or is scoped to another region or
    service."""

    type = "InvalidSignatureException"
    status = 403


class IncompleteSignatureException(LambdaError):
    """HTTP 403: The Authorization header or the presigned query parameters are malformed or incomplete."""

    type = "IncompleteSignatureException"
    status = 403


class AccessDeniedException(LambdaError):
    """HTTP 403: The caller is authenticated but may not perform this action."""

    type = "AccessDeniedException"
    status = 403


#: Every Lambda error type by name.
error_types: dict[str, type[LambdaError]] = {
    cls.type: cls
    for cls in (
        ResourceNotFoundException,
        ProvisionedConcurrencyConfigNotFoundException,
        InvalidRequestContentException,
        InvalidParameterValueException,
        RequestTooLargeException,
        TooManyRequestsException,
        ResourceConflictException,
        ResourceInUseException,
        PreconditionFailedException,
        ServiceException,
        UnsupportedMediaTypeException,
        CodeStorageExceededException,
        ValidationException,
        MissingAuthenticationTokenException,
        UnrecognizedClientException,
        InvalidSignatureException,
        IncompleteSignatureException,
        AccessDeniedException,
    )
}
