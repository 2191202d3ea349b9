"""Checking what Lambda API callers send: function names and ARNs, qualifiers, runtimes and JSON fields.

Every check raises a :class:`~assignment.frontend.types.LambdaError` with the type AWS uses for the same
mistake: ``ValidationException`` for a value outside its pattern or range, ``InvalidParameterValueException``
for an unknown field, a wrong type or a value Leasehold does not support.

Example::

    home = Home(account="000000000000", region="us-east-1")
    name, qualifier = parse_function_name("arn:aws:lambda:us-east-1:000000000000:function:resize:3", home=home)
    fields = Fields(json_body, allowed={"FunctionName", "Runtime"})
    runtime = fields.string("Runtime", required=True)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from assignment.frontend.types import InvalidParameterValueException, ResourceNotFoundException, ValidationException
from workers.sandbox import RESERVED_ENV  # the workers' list: a function the frontend accepts, no worker refuses

__all__ = [
    "MAX_MEMORY_MB",
    "MAX_TIMEOUT_S",
    "MIN_MEMORY_MB",
    "Fields",
    "Home",
    "check_environment",
    "check_qualifier",
    "parse_function_name",
    "worker_runtime",
]

MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
MAX_TIMEOUT_S = 900

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_QUALIFIER = re.compile(r"\$LATEST|[0-9]{1,10}|[a-zA-Z0-9_-]{1,128}")
_ARN = re.compile(
    r"(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?"
)
_ENV_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_RUNTIMES = {"provided": "provided", "provided.al2": "provided", "provided.al2023": "provided"}
_PYTHON = re.compile(r"python3\.[0-9]{1,2}")

#: Largest environment (keys and values, as AWS counts it).
MAX_ENVIRONMENT_BYTES = 4 * 1024


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True)
class Home:
    """The account and region this frontend serves: the only ones a function ARN may name."""

    account: str
    region: str


def parse_function_name(value: object, qualifier: str | None = None, *, home: Home) -> tuple[str, str | None]:
    """``(name, qualifier)`` from a name, a partial or a full ARN, each optionally with ``:qualifier``.

    ``qualifier`` is the separate ``Qualifier`` parameter; when both are given they must agree. An ARN of
    another region or account names no function here: ResourceNotFoundException, in AWS's words.
    """
    if not isinstance(value, str) or not value:
        raise ValidationException("1 validation error detected: Value at 'functionName' failed to satisfy constraint")
    if len(value) > 170:
        raise ValidationException(
            f"1 validation error detected: Value {_show(value)} at 'functionName' failed to satisfy constraint: "
            "Member must have length less than or equal to 170"
        )
    match = _ARN.fullmatch(value)
    if match is None:
        raise ValidationException(
            f"1 validation error detected: Value {_show(value)} at 'functionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern"
        )
    region, account = match.group("region"), match.group("account")
    if region is not None and region != home.region:
        raise ResourceNotFoundException(f"Functions from '{region}' are not reachable in this region ('{home.region}')")
    if account is not None and account != home.account:
        arn = f"arn:aws:lambda:{home.region}:{account}:function:{match.group('name')}"
        raise ResourceNotFoundException(f"Function not found: {arn}")
    derived = match.group("qualifier")
    if qualifier is not None and qualifier != "":
        check_qualifier(qualifier)
        if derived is not None and derived != qualifier:
            raise InvalidParameterValueException(
                "The derived qualifier from the function name does not match the specified qualifier."
            )
        return match.group("name"), qualifier
    return match.group("name"), derived


def check_qualifier(value: object) -> str:
    """A version (``$LATEST`` or a number) or alias name."""
    if not isinstance(value, str) or not _QUALIFIER.fullmatch(value):
        raise ValidationException(
            f"1 validation error detected: Value {_show(value)} at 'qualifier' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
        )
    return value


def check_name(value: object, field: str = "functionName") -> str:
    """A bare function name: 1-64 of ``[a-zA-Z0-9-_]``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationException(
            f"1 validation error detected: Value {_show(value)} at '{field}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ and have length 1..64"
        )
    return value


def worker_runtime(runtime: str) -> str:
    """The worker's runtime (``python`` or ``provided``) for a Lambda runtime identifier."""
    if _PYTHON.fullmatch(runtime):
        return "python"
    if runtime in _RUNTIMES:
        return _RUNTIMES[runtime]
    raise InvalidParameterValueException(
        f"Value {_show(runtime)} at 'runtime' is not supported: use python3.x, provided, provided.al2 or "
        "provided.al2023."
    )


def check_environment(variables: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables: string keys and values, no reserved keys, 4 KB in all."""
    total = 0
    found: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
            raise ValidationException(
                f"1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: "
                f"Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
                f"[a-zA-Z]([a-zA-Z0-9_])+] (key {_show(key)})"
            )
        if not isinstance(value, str):
            raise InvalidParameterValueException(f"Environment variable {key} must be a string")
        if key in RESERVED_ENV:
            raise InvalidParameterValueException(
                "Lambda was unable to configure your environment variables because the environment variables "
                f"you have provided contains reserved keys that are currently not supported for modification. "
                f"Reserved keys used in this request: {key}"
            )
        total += len(key.encode()) + len(value.encode())
        found[key] = value
    if total > MAX_ENVIRONMENT_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you "
            f"have provided exceeded the 4KB limit. String measured: {total} bytes"
        )
    return found


class Fields:
    """A JSON object from a request body, checked field by field; unknown fields are refused at once."""

    def __init__(self, document: object, *, allowed: Collection[str], where: str = "request") -> None:
        if not isinstance(document, dict):
            raise InvalidParameterValueException(f"The {where} must be a JSON object")
        unknown = sorted(str(k) for k in document if k not in allowed)
        if unknown:
            raise InvalidParameterValueException(f"Unknown field(s) in the {where}: {', '.join(unknown)[:200]}")
        self.document: dict[str, Any] = document
        self.where = where

    def has(self, key: str) -> bool:
        """Whether the field is present (and not null)."""
        return self.document.get(key) is not None

    def _missing(self, key: str) -> ValidationException:
        return ValidationException(
            f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"
        )

    def string(
        self, key: str, *, required: bool = False, default: str = "", max_len: int = 256, pattern: str | None = None
    ) -> str:
        """A string field of at most ``max_len`` characters, matching ``pattern`` if given."""
        value = self.document.get(key)
        if value is None:
            if required:
                raise self._missing(key)
            return default
        if not isinstance(value, str):
            raise InvalidParameterValueException(f"{key} must be a string, not {type(value).__name__}")
        if len(value) > max_len:
            raise ValidationException(
                f"1 validation error detected: Value at '{key}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {max_len}"
            )
        if pattern is not None and not re.fullmatch(pattern, value):
            raise ValidationException(
                f"1 validation error detected: Value {_show(value)} at '{key}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        return value

    def integer(self, key: str, *, lo: int, hi: int, required: bool = False, default: int = 0) -> int:
        """An integer field in ``lo..hi`` (booleans and floats are refused)."""
        value = self.document.get(key)
        if value is None:
            if required:
                raise self._missing(key)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterValueException(f"{key} must be an integer, not {type(value).__name__}")
        if not lo <= value <= hi:
            raise ValidationException(
                f"1 validation error detected: Value '{value}' at '{key}' failed to satisfy constraint: "
                f"Member must have value between {lo} and {hi}"
            )
        return value

    def boolean(self, key: str, *, default: bool = False) -> bool:
        """A boolean field."""
        value = self.document.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidParameterValueException(f"{key} must be a boolean, not {type(value).__name__}")
        return value

    def obj(self, key: str, *, allowed: Collection[str]) -> Fields | None:
        """A nested object, itself checked for unknown fields; ``None`` when absent."""
        value = self.document.get(key)
        if value is None:
            return None
        return Fields(value, allowed=allowed, where=key)

    def mapping(self, key: str) -> dict[str, Any]:
        """A free-form JSON object (e.g. environment variables, tags)."""
        value = self.document.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InvalidParameterValueException(f"{key} must be a JSON object, not {type(value).__name__}")
        return value

    def strings(self, key: str, *, max_items: int, max_len: int = 2048, min_items: int = 0) -> list[str]:
        """A list of strings (absent: empty, unless ``min_items`` asks for some)."""
        value = self.document.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidParameterValueException(f"{key} must be a list, not {type(value).__name__}")
        if len(value) < min_items:
            raise ValidationException(
                f"1 validation error detected: Value at '{key}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {min_items}"
            )
        if len(value) > max_items:
            raise ValidationException(
                f"1 validation error detected: Value at '{key}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {max_items}"
            )
        for item in value:
            if not isinstance(item, str) or not item or len(item) > max_len:
                raise InvalidParameterValueException(f"{key} must hold non-empty strings")
        return list(value)

    def choices(self, key: str, *, allowed: Collection[str], max_items: int, min_items: int = 0) -> list[str]:
        """A list of distinct values, each one of ``allowed`` (an enum list such as CompatibleArchitectures)."""
        values = self.strings(key, max_items=max_items, min_items=min_items)
        for value in values:
            if value not in allowed:
                raise ValidationException(
                    f"1 validation error detected: Value {_show(value)} at '{key}' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(sorted(allowed)[:80])}]"
                )
        if len(set(values)) < len(values):
            raise InvalidParameterValueException(f"{key} must not name a value twice")
        return values
