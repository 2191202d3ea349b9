"""The one place a storage error becomes a Lambda error: type, HTTP status and AWS's wording.

The error middleware of :mod:`assignment.frontend.api.app` calls :func:`lambda_error` for every
:class:`~assignment.frontend.storage_errors.StorageError` a handler lets through; a new stored resource
adds its kind here. The event source mapping store's errors
(:class:`~assignment.frontend.event_sources.mappings.MappingError`) are worded by :func:`mapping_error`.

Example::

    try:
        registry.get("resize")
    except StorageError as exc:
        raise lambda_error(exc, registry) from None  # ResourceNotFoundException: Function not found: resize
"""

from __future__ import annotations

from assignment.frontend.event_sources.mappings import MappingConflict, MappingError, MappingInUse
from assignment.frontend.registry import Registry
from assignment.frontend.storage_errors import (
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    ProvisionedOverlap,
    Referenced,
    RevisionMismatch,
    StorageError,
    StorageExceeded,
)
from assignment.frontend.types import (
    CodeStorageExceededException,
    InvalidParameterValueException,
    LambdaError,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceInUseException,
    ResourceNotFoundException,
    ServiceException,
)

__all__ = ["lambda_error", "mapping_error"]


def _not_found(exc: NotFound, registry: Registry) -> str:
    name, qualifier = exc.name, exc.qualifier
    if exc.kind == "provisioned_concurrency":
        return f"No Provisioned Concurrency Config found for this function: {name}"
    if exc.kind == "event_invoke_config":
        return f"The function {registry.function_arn(name, qualifier)} doesn't have an EventInvokeConfig"
    if exc.kind == "layer_version":
        return f"The resource you requested does not exist: layer {name} version {qualifier}"
    return f"Function not found: {name}:{qualifier}" if qualifier else f"Function not found: {name}"


def _invalid(exc: Invalid) -> str:
    if exc.rule == "marker":
        return f"Invalid Marker: {(exc.qualifier or '')[:64]!r} is not a version of {exc.name}"
    if exc.rule == "delete_latest":
        return "$LATEST version cannot be deleted without deleting the function."
    if exc.rule == "unpublished":
        return "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    if exc.rule == "unreserved_minimum":
        return (
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{exc.limit}]."
        )
    if exc.rule == "tag_limit":
        return f"A function can have at most {exc.limit} tags; this request would leave {exc.name} with more"
    return f"Layer version {exc.name[:200]} does not exist."


def lambda_error(exc: StorageError, registry: Registry) -> LambdaError:
    """The Lambda error the API answers for ``exc`` (``registry`` names ARNs)."""
    if isinstance(exc, NotFound):
        return ResourceNotFoundException(_not_found(exc, registry))
    if isinstance(exc, Conflict):
        if exc.kind == "layer_version":
            return ResourceConflictException(f"Layer {exc.name} is being published concurrently; try again")
        return ResourceConflictException(f"Function already exist: {exc.name}")
    if isinstance(exc, PreconditionFailed):
        return InvalidParameterValueException(
            f"CodeSHA256 ({exc.expected}) is different from current CodeSHA256 in $LATEST "
            f"({exc.actual}). Please try again with the CodeSHA256 in $LATEST."
        )
    if isinstance(exc, Invalid):
        return InvalidParameterValueException(_invalid(exc))
    if isinstance(exc, RevisionMismatch):
        return PreconditionFailedException(
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API"
            " to retrieve the latest Revision Id"
        )
    if isinstance(exc, ProvisionedOverlap):
        return ResourceConflictException(
            f"Version {exc.version} of {exc.name} already has Provisioned Concurrency through {exc.holder}; an alias"
            " and a version it routes to cannot both have a Provisioned Concurrency Config"
        )
    if isinstance(exc, StorageExceeded):
        return CodeStorageExceededException(f"Code storage limit exceeded ({exc.limit} bytes).")
    if isinstance(exc, Referenced):
        return ResourceConflictException(
            f"Unable to delete version because the following aliases reference it: [{', '.join(exc.aliases)}]"
        )
    return ServiceException("An internal error occurred")


def mapping_error(exc: MappingError) -> LambdaError:
    """The Lambda error the API answers for a refused event source mapping operation."""
    if isinstance(exc, MappingConflict):
        function = f"{exc.function_name}:{exc.qualifier}" if exc.qualifier else exc.function_name
        return ResourceConflictException(
            f'The event source arn (" {exc.source_arn} ") and function (" {function} ") provided mapping '
            f"already exists. Please update or delete the existing mapping with UUID {exc.uuid}"
        )
    if isinstance(exc, MappingInUse):
        return ResourceInUseException(
            f"Cannot change the event source mapping {exc.uuid} while it is {exc.state}; try again once the "
            "change in progress is done."
        )
    return ResourceNotFoundException("The resource you requested does not exist.")
