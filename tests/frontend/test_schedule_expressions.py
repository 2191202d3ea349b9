"""EventBridge Scheduler's expressions evaluated on a zone's wall clock: worked examples, checked by hand
against a calendar, and the refusals (each names what is wrong)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from assignment.frontend.schedules.expressions import Expression, ExpressionError, parse

MINUTE = 60_000


def _ms(iso: str, zone: str = "UTC") -> int:
    """UTC ms of the wall-clock time ``iso`` in ``zone``."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def _occurrences(expression: Expression, start_ms: int, count: int) -> list[str]:
    """The first ``count`` occurrences at or after ``start_ms``, in UTC."""
    found: list[str] = []
    at = expression.first(start_ms, start_ms)
    while at is not None and len(found) < count:
        found.append(_utc(at))
        at = expression.after(at)
    return found


def test_rate_counts_elapsed_time_from_its_anchor() -> None:
    rate = parse("rate(5 minutes)")
    anchor = _ms("2027-01-01T00:00:00")
    assert rate.first(anchor - MINUTE, anchor) == anchor  # before the anchor: the anchor itself
    assert rate.first(anchor + 1, anchor) == anchor + 5 * MINUTE
    assert rate.first(anchor + 10 * MINUTE, anchor) == anchor + 10 * MINUTE
    # A day is 24 hours elapsed: across New York's spring-forward the wall clock moves from 09:00 to 10:00.
    daily = parse("rate(1 day)", "America/New_York")
    start = _ms("2027-03-13T09:00:00", "America/New_York")
    assert _occurrences(daily, start, 2) == ["2027-03-13T14:00", "2027-03-14T14:00"]  # 09:00 EST, 10:00 EDT


def test_cron_weekdays_in_a_zone() -> None:
    berlin = parse("cron(0 9 ? * MON-FRI *)", "Europe/Berlin")
    friday_10 = _ms("2026-12-04T10:00:00", "Europe/Berlin")  # a Friday, after nine
    assert _occurrences(berlin, friday_10, 2) == ["2026-12-07T08:00", "2026-12-08T08:00"]  # Mon, Tue 09:00 CET
    # A weekday range may wrap around the week: FRI-MON is Friday, Saturday, Sunday, Monday.
    wrap = parse("cron(0 12 ? * FRI-MON *)")
    assert _occurrences(wrap, _ms("2026-12-03T00:00:00"), 5) == [
        "2026-12-04T12:00", "2026-12-05T12:00", "2026-12-06T12:00", "2026-12-07T12:00", "2026-12-11T12:00",
    ]  # fmt: skip


def test_a_time_the_clock_skips_is_skipped_and_a_repeated_one_fires_once() -> None:
    # 2027-03-14 02:30 does not exist in New York (02:00 EST jumps to 03:00 EDT).
    spring = parse("cron(30 2 * * ? *)", "America/New_York")
    assert _occurrences(spring, _ms("2027-03-13T00:00:00", "America/New_York"), 2) == [
        "2027-03-13T07:30",  # 02:30 EST
        "2027-03-15T06:30",  # 02:30 EDT; the 14th had none
    ]
    # 2027-11-07 01:30 happens twice (01:30 EDT, then 01:30 EST): it fires once, at the first.
    autumn = parse("cron(30 1 * * ? *)", "America/New_York")
    assert _occurrences(autumn, _ms("2027-11-06T12:00:00", "America/New_York"), 2) == [
        "2027-11-07T05:30",  # 01:30 EDT
        "2027-11-08T06:30",  # 01:30 EST
    ]
    # Every quarter hour through the repeated hour: 01:00-01:45 once each, then 02:00 EST.
    quarter = parse("cron(0/15 * * * ? *)", "America/New_York")
    assert _occurrences(quarter, _ms("2027-11-07T00:45:00", "America/New_York"), 6) == [
        "2027-11-07T04:45", "2027-11-07T05:00", "2027-11-07T05:15", "2027-11-07T05:30", "2027-11-07T05:45",
        "2027-11-07T07:00",
    ]  # fmt: skip


def test_last_day_nearest_weekday_and_nth_weekday() -> None:
    start = _ms("2027-01-01T00:00:00")
    assert _occurrences(parse("cron(0 0 L 2 ? *)"), start, 2) == ["2027-02-28T00:00", "2028-02-29T00:00"]
    # LW: the month's last weekday. 2027-01-31 is a Sunday, so Friday the 29th; 2027-02-28 a Sunday: the 26th.
    assert _occurrences(parse("cron(0 0 LW * ? *)"), start, 2) == ["2027-01-29T00:00", "2027-02-26T00:00"]
    # 15W: 2027-08-15 is a Sunday, so Monday the 16th; 1W with the 1st a Saturday (May 2027) stays in the
    # month: Monday the 3rd, not Friday April 30.
    assert _occurrences(parse("cron(0 0 15W 8 ? *)"), start, 1) == ["2027-08-16T00:00"]
    assert _occurrences(parse("cron(0 0 1W 5 ? *)"), start, 1) == ["2027-05-03T00:00"]
    # Day of week 1-7 is SUN-SAT: 6#3 is the third Friday, 6L the last Friday, L alone Saturday.
    assert _occurrences(parse("cron(0 0 ? 1 6#3 *)"), start, 1) == ["2027-01-15T00:00"]
    assert _occurrences(parse("cron(0 0 ? 1 6L *)"), start, 1) == ["2027-01-29T00:00"]
    assert _occurrences(parse("cron(0 0 ? 1 L 2027)"), start, 2) == ["2027-01-02T00:00", "2027-01-09T00:00"]


def test_a_year_list_ends_the_schedule_and_at_fires_once() -> None:
    assert _occurrences(parse("cron(0 0 1 1 ? 2027-2028)"), _ms("2026-06-01T00:00:00"), 5) == [
        "2027-01-01T00:00", "2028-01-01T00:00",
    ]  # fmt: skip
    once = parse("at(2027-03-01T09:30:00)", "Asia/Tokyo")
    assert _occurrences(once, _ms("2027-01-01T00:00:00"), 3) == ["2027-03-01T00:30"]
    assert once.first(_ms("2027-03-02T00:00:00"), 0) is None  # passed


@pytest.mark.parametrize(
    ("expression", "zone", "names"),
    [
        ("rate(0 minutes)", "UTC", "rate"),
        ("rate(1 week)", "UTC", "rate"),
        ("rate(-1 hours)", "UTC", "rate"),
        ("cron(0 9 * * *)", "UTC", "six fields"),
        ("cron(0 9 * * * *)", "UTC", "exactly one of day-of-month and day-of-week"),
        ("cron(0 9 ? * ? *)", "UTC", "exactly one of day-of-month and day-of-week"),
        ("cron(60 9 * * ? *)", "UTC", "minutes"),
        ("cron(0 24 * * ? *)", "UTC", "hours"),
        ("cron(0 0 32 * ? *)", "UTC", "day"),
        ("cron(0 0 ? 13 MON *)", "UTC", "month"),
        ("cron(0 0 ? * 8 *)", "UTC", "week"),
        ("cron(0 0 ? * 6#6 *)", "UTC", "week"),
        ("cron(0 0 1 1 ? 2200)", "UTC", "year"),
        ("at(2027-02-30T00:00:00)", "UTC", "at"),
        ("at(2027-03-14T02:30:00)", "America/New_York", "does not exist"),
        ("at(2027-03-14 02:30:00)", "UTC", "at(yyyy-mm-ddThh:mm:ss)"),
        ("every(5 minutes)", "UTC", "rate(...), cron(...) or at(...)"),
        ("", "UTC", "1 to 256"),
        ("rate(5 minutes)", "Mars/Olympus_Mons", "time zone"),
        ("rate(5 minutes)", "../../etc/passwd", "time zone"),
    ],
)
def test_a_bad_expression_or_zone_is_refused_by_name(expression: str, zone: str, names: str) -> None:
    with pytest.raises(ExpressionError, match="(?i)" + re.escape(names)):
        parse(expression, zone)
