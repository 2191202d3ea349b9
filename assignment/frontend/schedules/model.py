"""A schedule's values and when it fires (pure: no clock, no I/O; times are UTC milliseconds).

:class:`ScheduleSpec` is what CreateSchedule and UpdateSchedule say, :class:`Schedule` a stored one (with
its pending occurrence). :func:`first_occurrence` and :func:`following` apply the expression
(:mod:`.expressions`) with AWS's StartDate and EndDate rules: a recurring schedule fires at or after
StartDate and not after EndDate; a one-time (``at()``) schedule ignores both. :func:`fire_time` adds the
flexible time window: an occurrence fires at an offset in ``[0, window)`` that depends only on the
schedule and the occurrence, so every scheduler that plans it agrees.

Example::

    spec = ScheduleSpec("default", "nightly", "cron(0 3 * * ? *)", Target(arn, role))
    first = first_occurrence(spec, created_ms=now, now_ms=now)
    when = fire_time(spec, created_ms=now, occurrence_ms=first)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from assignment.frontend.schedules.expressions import At, Expression, Rate, parse

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_ATTEMPTS",
    "FunctionTarget",
    "Schedule",
    "ScheduleSpec",
    "Target",
    "fire_time",
    "first_occurrence",
    "following",
    "function_target",
    "schedule_arn",
]

#: The one schedule group Leasehold has (AWS's group every account starts with).
DEFAULT_GROUP = "default"
#: RetryPolicy's defaults, which AWS reports when none was given.
DEFAULT_MAX_AGE_S = 86_400
DEFAULT_MAX_ATTEMPTS = 185
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]{1,64})(?::(\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)


@dataclass(frozen=True, slots=True)
class FunctionTarget:
    """The parts of a Lambda function ARN (``qualifier`` "" when unqualified)."""

    region: str
    account_id: str
    name: str
    qualifier: str


def function_target(arn: str) -> FunctionTarget | None:
    """The function ``arn`` names (optionally with a version or alias), or ``None`` when it names none."""
    match = _FUNCTION_ARN.fullmatch(arn)
    if match is None:
        return None
    return FunctionTarget(match.group(1), match.group(2), match.group(3), match.group(4) or "")


def schedule_arn(region: str, account_id: str, group: str, name: str) -> str:
    """A schedule's ARN, as EventBridge Scheduler writes it."""
    return f"arn:aws:scheduler:{region}:{account_id}:schedule/{group}/{name}"


@dataclass(frozen=True, slots=True)
class Target:
    """A schedule's target: a Lambda function ARN (optionally qualified) and how a failed firing is handled."""

    arn: str
    role_arn: str
    #: The payload (``None``: the function gets ``{}``, what Lambda passes for an empty payload).
    input: str | None = None
    max_event_age_s: int = DEFAULT_MAX_AGE_S
    max_retry_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: An SQS queue ARN for the firings that could not be delivered ("" for none).
    dead_letter_arn: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What CreateSchedule or UpdateSchedule asks for (checked by the API)."""

    group: str
    name: str
    expression: str
    target: Target
    timezone: str = "UTC"
    start_ms: int | None = None
    end_ms: int | None = None
    state: str = "ENABLED"
    description: str = ""
    flex_mode: str = "OFF"
    flex_window_min: int | None = None
    action_after_completion: str = "NONE"
    client_token: str = ""

    def compiled(self) -> Expression:
        """The expression, compiled for the schedule's time zone."""
        return parse(self.expression, self.timezone)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule: its spec, when it was created and changed, and its pending occurrence."""

    spec: ScheduleSpec
    created_ms: int
    modified_ms: int
    #: The next occurrence not yet fired (``None``: none remains).
    next_ms: int | None
    #: When that occurrence fires (``next_ms`` plus its flexible-window offset).
    fire_ms: int | None


def _bounded(spec: ScheduleSpec, expression: Expression, occurrence: int | None) -> int | None:
    if occurrence is None or isinstance(expression, At):
        return occurrence
    if spec.end_ms is not None and occurrence > spec.end_ms:
        return None
    return occurrence


def first_occurrence(spec: ScheduleSpec, *, created_ms: int, now_ms: int) -> int | None:
    """The first occurrence at or after ``now_ms`` (a rate counts from StartDate, else from the creation)."""
    expression = spec.compiled()
    if isinstance(expression, At):
        return expression.first(now_ms, now_ms)
    start = spec.start_ms if spec.start_ms is not None else None
    anchor = start if start is not None else created_ms
    at_or_after = max(now_ms, start) if start is not None else now_ms
    if isinstance(expression, Rate):
        return _bounded(spec, expression, expression.first(at_or_after, anchor))
    return _bounded(spec, expression, expression.first(at_or_after, at_or_after))


def following(spec: ScheduleSpec, occurrence_ms: int) -> int | None:
    """The occurrence after ``occurrence_ms`` (``None`` when the schedule has no more)."""
    expression = spec.compiled()
    return _bounded(spec, expression, expression.after(occurrence_ms))


def fire_time(spec: ScheduleSpec, *, created_ms: int, occurrence_ms: int) -> int:
    """When ``occurrence_ms`` fires: at once with Mode OFF; with FLEXIBLE, at a fixed offset in the window."""
    if spec.flex_mode != "FLEXIBLE" or not spec.flex_window_min:
        return occurrence_ms
    window_ms = spec.flex_window_min * 60_000
    seed = f"{spec.group}/{spec.name}/{created_ms}/{occurrence_ms}".encode()
    return occurrence_ms + int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % window_ms
