"""flowspec.recurrence: step 1's date rules (SPEC 1.1), independent of time zones."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from flowspec.cron import parse_cron
from flowspec.recurrence import Recurrence, monthly_day, nth_weekday


@pytest.mark.parametrize(
    ("year", "month", "day", "expected"),
    [(2024, 2, 29, 29), (2025, 2, 29, None), (2025, 4, 31, None), (2025, 4, -1, 30), (2024, 2, -29, 1), (2025, 2, -29, None)],
)
def test_monthly_day(year: int, month: int, day: int, expected: int | None) -> None:
    """A day of month, negative from the end; None where the month lacks it."""
    assert monthly_day(year, month, day) == expected


@pytest.mark.parametrize(
    ("year", "month", "weekday", "week", "expected"),
    # November 2025 starts on a Saturday: first FRI is the 7th, last FRI the 28th, no 5th FRI.
    [(2025, 11, 4, 1, 7), (2025, 11, 4, -1, 28), (2025, 11, 4, 5, None), (2025, 11, 6, 5, 30), (2025, 11, 5, 1, 1)],
)
def test_nth_weekday(year: int, month: int, weekday: int, week: int, expected: int | None) -> None:
    """The n-th (or last) weekday of a month."""
    assert nth_weekday(year, month, weekday, week) == expected


def test_daily_days_count_from_the_anchor_in_both_directions() -> None:
    """Interval days are counted from the anchor, also for ranges starting before it."""
    r = Recurrence("daily", (time(9),), anchor=date(2025, 11, 20), interval=3)
    assert list(r.days(date(2025, 11, 15), date(2025, 11, 27))) == [date(2025, 11, 17), date(2025, 11, 20), date(2025, 11, 23), date(2025, 11, 26)]


def test_weekly_weeks_start_on_monday() -> None:
    """Every 2nd week from the week holding the anchor (a Sunday belongs to the week before)."""
    r = Recurrence("weekly", (time(9),), anchor=date(2025, 11, 23), interval=2, weekdays=frozenset({0, 6}))
    assert list(r.days(date(2025, 11, 17), date(2025, 12, 8))) == [date(2025, 11, 17), date(2025, 11, 23), date(2025, 12, 1), date(2025, 12, 7)]


def test_slots_are_half_open_and_sorted() -> None:
    """slots(lo, hi) yields every date × time in [lo, hi), ascending."""
    r = Recurrence("daily", (time(9), time(18)), anchor=date(2025, 1, 1))
    got = list(r.slots(datetime(2025, 11, 20, 9), datetime(2025, 11, 21, 18)))
    assert got == [datetime(2025, 11, 20, 9), datetime(2025, 11, 20, 18), datetime(2025, 11, 21, 9)]


def test_cron_and_once_days() -> None:
    """cron picks days by its day fields; once has its one anchor date."""
    cron = parse_cron("0 9 * * MON-FRI")
    r = Recurrence("cron", cron.times, cron=cron)
    assert list(r.days(date(2025, 11, 20), date(2025, 11, 25))) == [date(2025, 11, 20), date(2025, 11, 21), date(2025, 11, 24)]
    once = Recurrence("once", (time(9),), anchor=date(2025, 11, 20))
    assert list(once.days(date(2025, 1, 1), date(2026, 1, 1))) == [date(2025, 11, 20)]
    assert list(once.days(date(2025, 11, 21), date(2026, 1, 1))) == []
