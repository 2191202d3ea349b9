"""A function's LoggingConfig (AWS's advanced logging controls) from a request, and its document.

CreateFunction and UpdateFunctionConfiguration take ``LoggingConfig``; an update changes the members it
names and keeps the others. The rules are AWS's: the enums and the log group's pattern of botocore's
model; levels only with the JSON format (INFO by default there, and dropped when the format goes back to
Text). Every configuration read echoes the document (:func:`document`).

Example::

    config = logging_config(fields.obj("LoggingConfig", allowed=MEMBERS), LoggingConfig())
    doc = document(config, "resize")  # {"LogFormat": "Text", "LogGroup": "/aws/lambda/resize"}
"""

from __future__ import annotations

from typing import Any

from assignment.frontend.types import InvalidParameterValueException, LoggingConfig
from assignment.frontend.validation import Fields

__all__ = ["MEMBERS", "document", "logging_config"]

#: LoggingConfig's members in botocore's model.
MEMBERS = frozenset({"LogFormat", "ApplicationLogLevel", "SystemLogLevel", "LogGroup"})
_FORMATS = ("JSON", "Text")
_APPLICATION_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")
_LOG_GROUP = r"[\.\-_/#A-Za-z0-9]+"


def _choice(fields: Fields, key: str, allowed: tuple[str, ...]) -> str | None:
    if not fields.has(key):
        return None
    value = fields.string(key, max_len=16)
    if value not in allowed:
        raise InvalidParameterValueException(f"LoggingConfig.{key} {value!r} is not one of {', '.join(allowed)}")
    return value


def logging_config(fields: Fields | None, current: LoggingConfig) -> LoggingConfig:
    """``current`` changed by the request's LoggingConfig (``None``: unchanged)."""
    if fields is None:
        return current
    log_format = _choice(fields, "LogFormat", _FORMATS) or current.log_format
    application = _choice(fields, "ApplicationLogLevel", _APPLICATION_LEVELS)
    system = _choice(fields, "SystemLogLevel", _SYSTEM_LEVELS)
    group = fields.string("LogGroup", max_len=512, pattern=_LOG_GROUP) if fields.has("LogGroup") else None
    if log_format == "Text":
        if application or system:
            raise InvalidParameterValueException(
                "LoggingConfig's ApplicationLogLevel and SystemLogLevel need LogFormat JSON (Text logs are not"
                " filtered by level)"
            )
        return LoggingConfig("Text", "", "", current.log_group if group is None else group)
    return LoggingConfig(
        "JSON",
        application or current.application_log_level or "INFO",
        system or current.system_log_level or "INFO",
        current.log_group if group is None else group,
    )


def document(config: LoggingConfig, function: str) -> dict[str, Any]:
    """The LoggingConfig document a configuration read shows (levels with JSON only, as AWS does)."""
    doc: dict[str, Any] = {"LogFormat": config.log_format, "LogGroup": config.group_of(function)}
    if config.log_format == "JSON":
        doc["ApplicationLogLevel"] = config.application_log_level or "INFO"
        doc["SystemLogLevel"] = config.system_log_level or "INFO"
    return doc
