"""What the frontend's storage (the function registry) raises: a kind of resource, its name and what went
wrong, as data; the Lambda API's types and wording are chosen at the API edge, once
(:func:`assignment.frontend.api.errors.lambda_error`).

Raised by :mod:`assignment.frontend.registry`; caught by the HTTP API's error middleware, and by the
invoker where it names the function by ARN.

Example::

    try:
        registry.get("resize", "7")
    except NotFound as exc:
        assert (exc.kind, exc.name, exc.qualifier) == ("function", "resize", "7")
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "Conflict",
    "Invalid",
    "Kind",
    "NotFound",
    "PreconditionFailed",
    "ProvisionedOverlap",
    "Referenced",
    "RevisionMismatch",
    "Rule",
    "StorageError",
    "StorageExceeded",
]

#: The stored resources.
Kind = Literal["function", "provisioned_concurrency", "event_invoke_config", "layer_version"]
#: What :class:`Invalid` refuses: a list marker that is not a stored version, deleting $LATEST alone,
#: provisioned concurrency on an unpublished version, a reservation leaving too little unreserved, a layer
#: version reference (ARN) that does not exist, more tags on a function than its limit.
Rule = Literal["marker", "delete_latest", "unpublished", "unreserved_minimum", "unknown_layer", "tag_limit"]


class StorageError(Exception):
    """A stored resource (``kind``, ``name``, optionally ``qualifier``: a version or a marker) is not as
    the operation needs it."""

    def __init__(self, kind: Kind, name: str, qualifier: str | None = None) -> None:
        super().__init__(f"{kind} {name}" + (f":{qualifier}" if qualifier else ""))
        self.kind: Kind = kind
        self.name = name
        self.qualifier = qualifier


class NotFound(StorageError):
    """There is no such resource (a function, or version with ``qualifier``; a config; a layer version)."""


class Conflict(StorageError):
    """The resource exists already (a function), or was written by someone else meanwhile (a layer
    version number, again after retries)."""


class PreconditionFailed(StorageError):
    """The caller expected ``expected`` (PublishVersion's CodeSha256) but the resource has ``actual``."""

    def __init__(self, kind: Kind, name: str, *, expected: str, actual: str) -> None:
        super().__init__(kind, name)
        self.expected = expected
        self.actual = actual


class RevisionMismatch(StorageError):
    """The caller's RevisionId is not the function's current one (it changed since the caller read it)."""


class Invalid(StorageError):
    """The storage refuses the operation by ``rule``; ``limit`` is the bound a rule has (the account's
    unreserved minimum)."""

    def __init__(
        self, kind: Kind, name: str, qualifier: str | None = None, *, rule: Rule, limit: int | None = None
    ) -> None:
        super().__init__(kind, name, qualifier)
        self.rule: Rule = rule
        self.limit = limit


class Referenced(StorageError):
    """A version cannot be deleted while aliases route to it (``aliases``, sorted)."""

    def __init__(self, kind: Kind, name: str, qualifier: str, *, aliases: list[str]) -> None:
        super().__init__(kind, name, qualifier)
        self.aliases = aliases


class ProvisionedOverlap(StorageError):
    """A provisioned config on ``qualifier`` would warm ``version``, which the config on ``holder`` (a
    version or an alias) already warms."""

    def __init__(self, kind: Kind, name: str, qualifier: str, *, holder: str, version: str) -> None:
        super().__init__(kind, name, qualifier)
        self.holder = holder
        self.version = version


class StorageExceeded(StorageError):
    """Storing the code would pass the account's code storage (``limit`` bytes)."""

    def __init__(self, kind: Kind, name: str, *, limit: int) -> None:
        super().__init__(kind, name)
        self.limit = limit
