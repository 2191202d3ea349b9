"""EventBridge Scheduler's schedule operations over HTTP, for Lambda targets: what boto3's ``scheduler`` client
sends to the frontend's endpoint.

CreateSchedule (``POST /schedules/{Name}``), GetSchedule (``GET``), UpdateSchedule (``PUT``), DeleteSchedule
(``DELETE``) and ListSchedules (``GET /schedules``). Members are checked against botocore's model
(:mod:`assignment.frontend.schedules.wire`), then by AWS's rules: the expression and its time zone, StartDate
no earlier than five minutes ago and before EndDate, EndDate not in the past, the target a function ARN of
this account and region, Input JSON (context attributes allowed), the dead-letter queue an existing standard
queue here. Refused by name, because Leasehold cannot honour them: schedule groups other than ``default``
(ResourceNotFoundException, as for a group that does not exist), KmsKeyArn, and targets' parameter blocks
of other services (EcsParameters, SqsParameters, ...). Target.RoleArn is required by the model and kept, but
no role is assumed: the scheduler invokes with the platform's own authority. A ClientToken makes a retried
CreateSchedule return the schedule it created; UpdateSchedule is a whole replacement (what it leaves out
takes its default), so a retried one changes nothing more.

Errors are Scheduler's: ValidationException 400, ResourceNotFoundException 404, ConflictException 409.

Example::

    app.add_routes(SchedulerApi(context, store, wake=runner.wake).routes())
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import read_body
from assignment.frontend.invoker import ASYNC_PAYLOAD_LIMIT
from assignment.frontend.schedules.expressions import At, ExpressionError
from assignment.frontend.schedules.model import (
    DEFAULT_GROUP,
    Schedule,
    ScheduleSpec,
    Target,
    function_target,
    schedule_arn,
)
from assignment.frontend.schedules.store import ScheduleConflict, ScheduleNotFound, ScheduleStore
from assignment.frontend.schedules.wire import decode
from assignment.frontend.types import (
    ConflictException,
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)

__all__ = ["SCHEDULE_BODY_LIMIT", "SchedulerApi"]

#: The largest request body a schedule operation takes (Input is a payload of at most 1 MiB, plus the rest).
SCHEDULE_BODY_LIMIT = ASYNC_PAYLOAD_LIMIT + 64 * 1024
#: How far in the past a StartDate may be (AWS's five minutes).
_START_SLACK_MS = 5 * 60_000
#: Target members other than a Lambda target's: refused by name.
_OTHER_TARGETS = (
    "EcsParameters",
    "EventBridgeParameters",
    "EventBridgePutEventsV2Parameters",
    "EventBridgePutRawEventsParameters",
    "KinesisParameters",
    "SageMakerPipelineParameters",
    "SqsParameters",
)
_SAMPLE_CONTEXT = {
    "<aws.scheduler.schedule-arn>": "arn:aws:scheduler:us-east-1:000000000000:schedule/default/x",
    "<aws.scheduler.scheduled-time>": "2000-01-01T00:00:00Z",
    "<aws.scheduler.execution-id>": "00000000-0000-0000-0000-000000000000",
    "<aws.scheduler.attempt-number>": "1",
}
_DEFAULT_PAGE = 100


def _seconds(ms: int) -> float:
    return ms / 1000


class SchedulerApi:
    """The schedule operations' routes."""

    def __init__(
        self,
        context: ApiContext,
        store: ScheduleStore,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``wake``: tells this frontend's scheduler a schedule changed (it looks again at once)."""
        self.context = context
        self.store = store
        self.wake = wake
        self.clock = clock
        self.region = context.registry.region
        self.account_id = context.registry.account

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        one = "/schedules/{Name}"
        return [
            web.post(one, self.create_schedule),
            web.get(one, self.get_schedule),
            web.put(one, self.update_schedule),
            web.delete(one, self.delete_schedule),
            web.get("/schedules", self.list_schedules),
        ]

    async def _members(self, request: web.Request, operation: str) -> dict[str, Any]:
        body = await read_body(request, SCHEDULE_BODY_LIMIT)
        return decode(operation, dict(request.match_info), dict(request.query), body)

    def _group(self, members: dict[str, Any]) -> str:
        group = str(members.get("GroupName", DEFAULT_GROUP))
        if group != DEFAULT_GROUP:
            raise ResourceNotFoundException(
                f"Schedule group {group} does not exist. (Leasehold has the one group {DEFAULT_GROUP}.)"
            )
        return group

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ----------------------------------------------------------------------------------- operations

    async def create_schedule(self, request: web.Request) -> web.Response:
        """CreateSchedule: the new schedule's ARN."""
        spec = await self._spec(await self._members(request, "CreateSchedule"))
        try:
            schedule = await asyncio.to_thread(self.store.create, spec, now_ms=self._now_ms())
        except ScheduleConflict as exc:
            raise ConflictException(str(exc)) from None
        self.wake()
        return web.json_response({"ScheduleArn": self._arn(schedule.spec)})

    async def update_schedule(self, request: web.Request) -> web.Response:
        """UpdateSchedule: every setting replaced; the schedule's ARN."""
        spec = await self._spec(await self._members(request, "UpdateSchedule"))
        try:
            schedule = await asyncio.to_thread(self.store.update, spec, now_ms=self._now_ms())
        except ScheduleNotFound as exc:
            raise ResourceNotFoundException(str(exc)) from None
        self.wake()
        return web.json_response({"ScheduleArn": self._arn(schedule.spec)})

    async def get_schedule(self, request: web.Request) -> web.Response:
        """GetSchedule: the whole schedule, defaults included."""
        members = await self._members(request, "GetSchedule")
        group = self._group(members)
        try:
            schedule = await asyncio.to_thread(self.store.get, group, members["Name"])
        except ScheduleNotFound as exc:
            raise ResourceNotFoundException(str(exc)) from None
        return web.json_response(self._document(schedule))

    async def delete_schedule(self, request: web.Request) -> web.Response:
        """DeleteSchedule: an occurrence not fired yet never fires."""
        members = await self._members(request, "DeleteSchedule")
        group = self._group(members)
        try:
            await asyncio.to_thread(self.store.delete, group, members["Name"])
        except ScheduleNotFound as exc:
            raise ResourceNotFoundException(str(exc)) from None
        return web.json_response({})

    async def list_schedules(self, request: web.Request) -> web.Response:
        """ListSchedules: a page ordered by name, with NextToken while more remain."""
        members = await self._members(request, "ListSchedules")
        group = self._group(members) if "GroupName" in members else None
        after = str(members.get("NextToken", ""))
        if after and "/" not in after:
            raise ValidationException("The NextToken is not one this API returned")
        found, more = await asyncio.to_thread(
            self.store.page,
            group=group,
            prefix=str(members.get("NamePrefix", "")),
            state=members.get("State"),
            limit=int(members.get("MaxResults", _DEFAULT_PAGE)),
            after=after,
        )
        document: dict[str, Any] = {"Schedules": [self._summary(schedule) for schedule in found]}
        if more is not None:
            document["NextToken"] = more
        return web.json_response(document)

    # ------------------------------------------------------------------------------------ the checks

    async def _spec(self, members: dict[str, Any]) -> ScheduleSpec:
        """The schedule ``members`` describe, by AWS's rules; ValidationException naming what is wrong."""
        if "KmsKeyArn" in members:
            raise ValidationException(
                "KmsKeyArn is not supported by Leasehold: schedules are stored in the platform's database, "
                "which Leasehold does not encrypt with customer keys; leave KmsKeyArn out"
            )
        group = self._group(members)
        spec = ScheduleSpec(
            group=group,
            name=members["Name"],
            expression=members["ScheduleExpression"],
            target=await self._target(members["Target"]),
            timezone=members.get("ScheduleExpressionTimezone", "UTC"),
            start_ms=members.get("StartDate"),
            end_ms=members.get("EndDate"),
            state=members.get("State", "ENABLED"),
            description=members.get("Description", ""),
            flex_mode=members["FlexibleTimeWindow"]["Mode"],
            flex_window_min=members["FlexibleTimeWindow"].get("MaximumWindowInMinutes"),
            action_after_completion=members.get("ActionAfterCompletion", "NONE"),
            client_token=members.get("ClientToken", ""),
        )
        try:
            expression = spec.compiled()
        except ExpressionError as exc:
            raise ValidationException(str(exc)) from None
        self._check_window(spec)
        if not isinstance(expression, At):  # a one-time schedule ignores both dates, as AWS does
            self._check_dates(spec)
        return spec

    @staticmethod
    def _check_window(spec: ScheduleSpec) -> None:
        if spec.flex_mode == "FLEXIBLE" and spec.flex_window_min is None:
            raise ValidationException(
                "FlexibleTimeWindow.MaximumWindowInMinutes is required when FlexibleTimeWindow.Mode is FLEXIBLE"
            )
        if spec.flex_mode == "OFF" and spec.flex_window_min is not None:
            raise ValidationException(
                "FlexibleTimeWindow.MaximumWindowInMinutes must not be set when FlexibleTimeWindow.Mode is OFF"
            )

    def _check_dates(self, spec: ScheduleSpec) -> None:
        now = self._now_ms()
        if spec.start_ms is not None and spec.start_ms < now - _START_SLACK_MS:
            raise ValidationException("The StartDate you specify cannot be earlier than 5 minutes ago.")
        if spec.end_ms is not None and spec.end_ms < now:
            raise ValidationException("The EndDate you specify cannot be earlier than the current time.")
        if spec.start_ms is not None and spec.end_ms is not None and spec.start_ms >= spec.end_ms:
            raise ValidationException("The StartDate must come before the EndDate.")

    async def _target(self, members: dict[str, Any]) -> Target:
        for other in _OTHER_TARGETS:
            if other in members:
                raise ValidationException(
                    f"Target.{other} is not supported by Leasehold: its schedules invoke Lambda functions only"
                )
        arn = str(members["Arn"])
        function = function_target(arn)
        if function is None:
            raise ValidationException(
                f"Target.Arn {arn[:200]} is not supported by Leasehold: use a Lambda function ARN "
                "(arn:aws:lambda:REGION:ACCOUNT:function:NAME, optionally with :VERSION or :ALIAS)"
            )
        if (function.region, function.account_id) != (self.region, self.account_id):
            raise ValidationException(
                f"Target.Arn {arn[:200]} is not a function of account {self.account_id} in region {self.region}"
            )
        text = members.get("Input")
        if text is not None:
            self._check_input(str(text))
        retry = members.get("RetryPolicy", {})
        dead_letter = str(members.get("DeadLetterConfig", {}).get("Arn", ""))
        if dead_letter:
            try:
                await self.context.check_queue_target(dead_letter, field="Target.DeadLetterConfig.Arn")
            except InvalidParameterValueException as exc:
                raise ValidationException(exc.message) from None
        defaults = Target(arn, "")
        return Target(
            arn=arn,
            role_arn=str(members["RoleArn"]),
            input=None if text is None else str(text),
            max_event_age_s=int(retry.get("MaximumEventAgeInSeconds", defaults.max_event_age_s)),
            max_retry_attempts=int(retry.get("MaximumRetryAttempts", defaults.max_retry_attempts)),
            dead_letter_arn=dead_letter,
        )

    @staticmethod
    def _check_input(text: str) -> None:
        """Input is the invocation's payload: JSON (after the context attributes), at most 1 MiB."""
        sample = text
        for placeholder, value in _SAMPLE_CONTEXT.items():
            sample = sample.replace(placeholder, value)
        if len(sample.encode()) > ASYNC_PAYLOAD_LIMIT:
            raise ValidationException(f"Target.Input must be at most {ASYNC_PAYLOAD_LIMIT} bytes")
        try:
            json.loads(sample)
        except (ValueError, RecursionError):
            raise ValidationException(
                "Target.Input must be JSON for a Lambda target (the context attributes such as "
                "<aws.scheduler.scheduled-time> may appear in it)"
            ) from None

    # ---------------------------------------------------------------------------------- documents

    def _arn(self, spec: ScheduleSpec) -> str:
        return schedule_arn(self.region, self.account_id, spec.group, spec.name)

    def _summary(self, schedule: Schedule) -> dict[str, Any]:
        spec = schedule.spec
        return {
            "Arn": self._arn(spec),
            "Name": spec.name,
            "GroupName": spec.group,
            "State": spec.state,
            "CreationDate": _seconds(schedule.created_ms),
            "LastModificationDate": _seconds(schedule.modified_ms),
            "Target": {"Arn": spec.target.arn},
        }

    def _document(self, schedule: Schedule) -> dict[str, Any]:
        spec = schedule.spec
        target = spec.target
        body: dict[str, Any] = {
            "Arn": self._arn(spec),
            "Name": spec.name,
            "GroupName": spec.group,
            "ScheduleExpression": spec.expression,
            "ScheduleExpressionTimezone": spec.timezone,
            "State": spec.state,
            "Description": spec.description,
            "CreationDate": _seconds(schedule.created_ms),
            "LastModificationDate": _seconds(schedule.modified_ms),
            "ActionAfterCompletion": spec.action_after_completion,
            "FlexibleTimeWindow": {"Mode": spec.flex_mode},
            "Target": {
                "Arn": target.arn,
                "RoleArn": target.role_arn,
                "RetryPolicy": {
                    "MaximumEventAgeInSeconds": target.max_event_age_s,
                    "MaximumRetryAttempts": target.max_retry_attempts,
                },
            },
        }
        if spec.flex_window_min is not None:
            body["FlexibleTimeWindow"]["MaximumWindowInMinutes"] = spec.flex_window_min
        if spec.start_ms is not None:
            body["StartDate"] = _seconds(spec.start_ms)
        if spec.end_ms is not None:
            body["EndDate"] = _seconds(spec.end_ms)
        if target.input is not None:
            body["Target"]["Input"] = target.input
        if target.dead_letter_arn:
            body["Target"]["DeadLetterConfig"] = {"Arn": target.dead_letter_arn}
        return body
