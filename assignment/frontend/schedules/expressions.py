"""EventBridge Scheduler's schedule expressions: ``rate()``, ``cron()`` and ``at()``, evaluated in a time zone.

Pure: no clock, no I/O; every time is UTC milliseconds. :func:`parse` checks an expression (and its time
zone, an IANA name such as ``America/New_York``) and returns an :class:`Expression`; a refusal is
:class:`ExpressionError` with a message naming what is wrong. :meth:`Expression.first` is the first
occurrence at or after a time, :meth:`Expression.after` the one strictly after an occurrence.

The rules, as AWS documents them for EventBridge Scheduler:

* ``rate(VALUE UNIT)``: a positive integer and ``minute(s)``, ``hour(s)`` or ``day(s)``; a day is 24 hours
  of elapsed time, whatever daylight saving does to the clock. Occurrences are ``anchor + k * period``
  (the anchor is the schedule's StartDate, else when it was created: without a StartDate a rate schedule
  starts at once).
* ``cron(MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)``: six fields; ``,`` lists, ``-`` ranges
  (a month or weekday range may wrap: ``FRI-MON``), ``/`` increments, ``*``; ``?`` in exactly one of
  day-of-month and day-of-week (the other one decides); day-of-month ``L`` (last day), ``nW`` (the weekday
  nearest the nth, within the month) and ``LW``; day-of-week ``1-7`` or ``SUN-SAT``, ``L`` (Saturday),
  ``nL`` (the month's last weekday n) and ``n#k`` (its kth weekday n); years 1970-2199. Evaluated on the
  zone's wall clock: a time that does not exist (the hour skipped when clocks go forward) is skipped, a
  time that happens twice (when they go back) fires once, at its first instance.
* ``at(yyyy-mm-ddThh:mm:ss)``: one occurrence at that wall-clock time of the zone (a time that does not
  exist there is refused).

Example::

    expression = parse("cron(0 9 ? * MON-FRI *)", "Europe/Berlin")
    first = expression.first(now_ms, now_ms)    # the next weekday 09:00 in Berlin, as UTC ms (the anchor
    second = expression.after(first)            # matters to rate() only)
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["At", "Cron", "Expression", "ExpressionError", "Rate", "parse", "parse_zone"]

#: The years a cron expression may name (AWS's range).
MIN_YEAR, MAX_YEAR = 1970, 2199

_RATE = re.compile(r"rate\((\d{1,9}) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)", re.DOTALL)
_AT = re.compile(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)")
_UNIT_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
_MONTHS = {
    name: n
    for n, name in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)
}
_WEEKDAYS = {name: n for n, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_NTH = re.compile(r"([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)#([1-5])")
_LAST_WEEKDAY = re.compile(r"([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)L")
_NEAREST = re.compile(r"(\d{1,2})W")


class ExpressionError(ValueError):
    """A schedule expression or time zone that cannot be used; the message says why."""


def parse_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`ExpressionError` for an unknown one."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", name) or len(name) > 50:
        raise ExpressionError(f"Invalid time zone {name[:60]!r}: use an IANA name such as America/New_York")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"Invalid time zone {name!r}: use an IANA name such as America/New_York") from None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _local(ms: int, zone: ZoneInfo) -> datetime:
    """The zone's naive wall-clock time at ``ms``."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).replace(tzinfo=None)


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    """Whether ``naive`` is a wall-clock time the zone has (not inside a forward jump)."""
    aware = naive.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def _utc_ms(naive: datetime, zone: ZoneInfo) -> int:
    """UTC ms of a wall-clock time of the zone (its first instance when it happens twice)."""
    return _ms(naive.replace(tzinfo=zone, fold=0))


@dataclass(frozen=True, slots=True)
class Rate:
    """``rate()``: every ``period_ms`` from an anchor."""

    period_ms: int

    def first(self, at_or_after_ms: int, anchor_ms: int) -> int | None:
        """The first ``anchor + k * period`` (k >= 0) at or after ``at_or_after_ms``."""
        if at_or_after_ms <= anchor_ms:
            return anchor_ms
        steps = -(-(at_or_after_ms - anchor_ms) // self.period_ms)
        return anchor_ms + steps * self.period_ms

    def after(self, occurrence_ms: int) -> int | None:
        """The occurrence after ``occurrence_ms``."""
        return occurrence_ms + self.period_ms


@dataclass(frozen=True, slots=True)
class At:
    """``at()``: one wall-clock time of a zone."""

    when_ms: int

    def first(self, at_or_after_ms: int, anchor_ms: int) -> int | None:
        """The one occurrence, unless it is before ``at_or_after_ms`` (then none: it has passed)."""
        del anchor_ms
        return self.when_ms if self.when_ms >= at_or_after_ms else None

    def after(self, occurrence_ms: int) -> int | None:
        """None: a one-time schedule has one occurrence."""
        del occurrence_ms
        return None


@dataclass(frozen=True, slots=True)
class _DayRule:
    """Day-of-month or day-of-week: plain values, or one of the special forms."""

    values: frozenset[int] = frozenset()
    #: ``L`` (day-of-month: the last day; day-of-week ``nL``: the last weekday ``last_weekday``).
    last: bool = False
    last_weekday: int = 0
    #: ``nW``: the weekday nearest this day; with ``last``, ``LW``.
    nearest: int = 0
    #: ``n#k``: the kth weekday n.
    nth: tuple[int, int] = (0, 0)
    #: ``?``: this field does not decide.
    any: bool = False


@dataclass(frozen=True, slots=True)
class Cron:
    """``cron()``: six fields, evaluated on a zone's wall clock."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: _DayRule
    months: frozenset[int]
    days_of_week: _DayRule
    years: tuple[int, ...]
    zone: ZoneInfo

    def first(self, at_or_after_ms: int, anchor_ms: int) -> int | None:
        """The first matching wall-clock minute whose UTC time is at or after ``at_or_after_ms``."""
        start = max(at_or_after_ms, anchor_ms)
        return self._search(start)

    def after(self, occurrence_ms: int) -> int | None:
        """The first matching minute strictly after ``occurrence_ms``."""
        return self._search(occurrence_ms + 1)

    def _search(self, from_ms: int) -> int | None:
        # Start a day early: the zone's wall clock may map an earlier date to a later UTC time (fold).
        begin = _local(from_ms, self.zone) - timedelta(days=1)
        for year in self.years:
            if year < begin.year:
                continue
            for month in range(1, 13):
                if month not in self.months or (year, month) < (begin.year, begin.month):
                    continue
                for day in self._days(year, month):
                    if (year, month, day) < (begin.year, begin.month, begin.day):
                        continue
                    for hour in self.hours:
                        for minute in self.minutes:
                            naive = datetime(year, month, day, hour, minute)
                            if not _exists(naive, self.zone):
                                continue
                            ms = _utc_ms(naive, self.zone)
                            if ms >= from_ms:
                                return ms
        return None

    def _days(self, year: int, month: int) -> list[int]:
        """The days of ``year-month`` both day fields allow (the one that is ``?`` allows all)."""
        length = calendar.monthrange(year, month)[1]
        days = [day for day in range(1, length + 1) if self._dom(year, month, day, length)]
        return [day for day in days if self._dow(year, month, day, length)]

    def _dom(self, year: int, month: int, day: int, length: int) -> bool:
        rule = self.days_of_month
        if rule.any:
            return True
        if rule.nearest:
            return day == _nearest_weekday(year, month, length if rule.nearest == -1 else rule.nearest, length)
        if rule.last:
            return day == length
        return day in rule.values

    def _dow(self, year: int, month: int, day: int, length: int) -> bool:
        rule = self.days_of_week
        if rule.any:
            return True
        weekday = _aws_weekday(year, month, day)
        if rule.nth != (0, 0):
            wanted, k = rule.nth
            return weekday == wanted and (day - 1) // 7 + 1 == k
        if rule.last_weekday:
            return weekday == rule.last_weekday and day + 7 > length
        return weekday in rule.values


def _aws_weekday(year: int, month: int, day: int) -> int:
    """1 = Sunday .. 7 = Saturday (cron's numbering)."""
    return (datetime(year, month, day).weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, target: int, length: int) -> int:
    """The Monday-to-Friday day nearest ``target`` without leaving the month (``nW``)."""
    target = min(target, length)
    weekday = datetime(year, month, target).weekday()  # Monday = 0
    if weekday < 5:
        return target
    if weekday == 5:  # Saturday: the Friday before, unless that is in the previous month
        return target - 1 if target > 1 else target + 2
    return target + 1 if target < length else target - 2  # Sunday: the Monday after, or the Friday before


Expression = Rate | Cron | At


def parse(expression: str, timezone: str = "UTC") -> Expression:
    """``expression`` checked and compiled for ``timezone``; :class:`ExpressionError` names what is wrong."""
    zone = parse_zone(timezone)
    if not isinstance(expression, str) or not 1 <= len(expression) <= 256:
        raise ExpressionError("ScheduleExpression must be 1 to 256 characters")
    if expression.startswith("rate("):
        match = _RATE.fullmatch(expression)
        if match is None or int(match.group(1)) < 1:
            raise ExpressionError(
                f"Invalid rate expression {expression!r}: use rate(VALUE UNIT), VALUE a positive integer and "
                "UNIT minute(s), hour(s) or day(s)"
            )
        return Rate(int(match.group(1)) * _UNIT_MS[match.group(2).rstrip("s")])
    if expression.startswith("at("):
        return _parse_at(expression, zone)
    if expression.startswith("cron("):
        return _parse_cron(expression, zone)
    raise ExpressionError(f"Invalid schedule expression {expression[:80]!r}: use rate(...), cron(...) or at(...)")


def _parse_at(expression: str, zone: ZoneInfo) -> At:
    match = _AT.fullmatch(expression)
    if match is None:
        raise ExpressionError(f"Invalid at expression {expression!r}: use at(yyyy-mm-ddThh:mm:ss)")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ExpressionError(f"Invalid at expression {expression!r}: {exc}") from None
    if not _exists(naive, zone):
        raise ExpressionError(f"Invalid at expression {expression!r}: that time does not exist in {zone.key}")
    return At(_utc_ms(naive, zone))


def _parse_cron(expression: str, zone: ZoneInfo) -> Cron:
    body = _CRON.fullmatch(expression)
    fields = body.group(1).split() if body is not None else []
    if len(fields) != 6:
        raise ExpressionError(
            f"Invalid cron expression {expression[:80]!r}: it takes six fields, "
            "minutes hours day-of-month month day-of-week year"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError(
            f"Invalid cron expression {expression!r}: exactly one of day-of-month and day-of-week must be ?"
        )
    return Cron(
        minutes=tuple(sorted(_values(minutes, "minutes", 0, 59))),
        hours=tuple(sorted(_values(hours, "hours", 0, 23))),
        days_of_month=_day_of_month(dom),
        months=frozenset(_values(month, "month", 1, 12, _MONTHS, wraps=True)),
        days_of_week=_day_of_week(dow),
        years=tuple(sorted(_values(year, "year", MIN_YEAR, MAX_YEAR))),
        zone=zone,
    )


def _number(text: str, field: str, low: int, high: int, names: dict[str, int] | None) -> int:
    if names is not None and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit() or not low <= int(text) <= high:
        raise ExpressionError(f"Invalid cron {field} value {text[:20]!r}: use {low}-{high}")
    return int(text)


def _values(
    text: str, field: str, low: int, high: int, names: dict[str, int] | None = None, *, wraps: bool = False
) -> set[int]:
    """A field of values: ``*``, ``a``, ``a-b``, ``a/n``, ``*/n``, ``a-b/n``, comma-separated."""
    found: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or not 1 <= int(step_text) <= high:
                raise ExpressionError(f"Invalid cron {field} increment {step_text[:20]!r}")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = _number(a, field, low, high, names), _number(b, field, low, high, names)
        else:
            first = _number(span, field, low, high, names)
            last = high if step_text else first
        if first > last and not wraps:
            raise ExpressionError(f"Invalid cron {field} range {span[:20]!r}: the start is after the end")
        if first <= last:
            found.update(range(first, last + 1, step))
        else:  # a wrapping range (FRI-MON): to the end, then from the start
            found.update([*range(first, high + 1), *range(low, last + 1)][::step])
    return found


def _day_of_month(text: str) -> _DayRule:
    if text == "?":
        return _DayRule(any=True)
    if text == "L":
        return _DayRule(last=True)
    if text == "LW":
        return _DayRule(last=True, nearest=-1)
    nearest = _NEAREST.fullmatch(text)
    if nearest is not None:
        return _DayRule(nearest=_number(nearest.group(1), "day-of-month", 1, 31, None))
    return _DayRule(values=frozenset(_values(text, "day-of-month", 1, 31)))


def _day_of_week(text: str) -> _DayRule:
    if text == "?":
        return _DayRule(any=True)
    if text == "L":
        return _DayRule(values=frozenset({7}))
    nth = _NTH.fullmatch(text.upper())
    if nth is not None:
        return _DayRule(nth=(_number(nth.group(1), "day-of-week", 1, 7, _WEEKDAYS), int(nth.group(2))))
    last = _LAST_WEEKDAY.fullmatch(text.upper())
    if last is not None:
        return _DayRule(last_weekday=_number(last.group(1), "day-of-week", 1, 7, _WEEKDAYS))
    return _DayRule(values=frozenset(_values(text, "day-of-week", 1, 7, _WEEKDAYS, wraps=True)))
