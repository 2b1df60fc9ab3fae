"""flowspec.compiler: the precise rules of SPEC 3 (steps 1–7), one behaviour per test.

Every expectation is derived by hand from the rules. Calendar facts used: 2025-11-20 is a
Thursday, 2025-11-22/23 and 2026-11-21/22 are weekends, 2026-11-20 (Friday) and 2026-04-03 (Good
Friday) are Brazilian national holidays, 2027-12-25 is a Saturday. São Paulo is UTC-3 all year.
"""

from __future__ import annotations

import importlib.metadata
import types
from datetime import UTC, datetime

import holidays
import pytest
from test_compiler_support import (
    automation_yaml,
    brief,
    codes,
    config_of,
    instant,
    occ,
    occurrences,
    plan_json,
)

from flowspec.compiler import compile_automation, compile_plan, plan_inputs

SP = "execution_timezone: America/Sao_Paulo"


# --------------------------------------------------------------------------- step 1 and bounds


def test_datetime_start_date_drops_earlier_slots_of_its_first_day() -> None:
    """A datetime start_date bounds slots as an instant: 08:00 on the first day is dropped."""
    got = occurrences(
        f"""
        recurrence_type: daily
        recurrence_config: {{times: ["08:00", "12:00"]}}
        start_date: "2025-11-20T10:00"
        {SP}
        """,
        "2025-11-19",
        "2025-11-22",
    )
    assert brief(got) == [
        ("2025-11-20T12:00", "scheduled", "2025-11-20T15:00:00Z"),
        ("2025-11-21T08:00", "scheduled", "2025-11-21T11:00:00Z"),
        ("2025-11-21T12:00", "scheduled", "2025-11-21T15:00:00Z"),
    ]


def test_end_date_alone_includes_the_whole_local_day() -> None:
    """end_date as a date alone means up to 23:59:59.999999 local: a 23:30 slot that day runs."""
    got = occurrences(
        f"""
        recurrence_type: daily
        start_date: 2025-11-20
        start_time: "23:30"
        end_date: 2025-11-21
        {SP}
        """,
        "2025-11-01",
        "2025-12-01",
    )
    assert brief(got) == [
        ("2025-11-20T23:30", "scheduled", "2025-11-21T02:30:00Z"),
        ("2025-11-21T23:30", "scheduled", "2025-11-22T02:30:00Z"),
    ]


def test_datetime_end_date_is_inclusive() -> None:
    """end_date as a datetime includes that very instant."""
    got = occurrences(
        """
        recurrence_type: daily
        start_date: 2025-11-20
        start_time: "09:00"
        end_date: "2025-11-22T09:00"
        """,
        "2025-11-01",
        "2025-12-01",
    )
    assert [o["key"][7:] for o in got] == ["2025-11-20T09:00", "2025-11-21T09:00", "2025-11-22T09:00"]


def test_range_is_half_open_on_at() -> None:
    """An occurrence is in range when from <= at < to."""
    schedule = "recurrence_type: daily\nstart_date: 2025-11-20\nstart_time: \"09:00\""
    got = occurrences(schedule, "2025-11-21T09:00:00Z", "2025-11-23T09:00:00Z")
    assert [o["at"] for o in got] == ["2025-11-21T09:00:00Z", "2025-11-22T09:00:00Z"]


def test_once_runs_at_start_date_and_start_time() -> None:
    """once: one occurrence at start_date's local date and start_time."""
    got = occurrences(
        f"recurrence_type: once\nstart_date: 2025-11-28\nstart_time: \"10:30\"\n{SP}",
        "2025-01-01",
        "2027-01-01",
    )
    assert got == [occ("2025-11-28T10:30", "2025-11-28T13:30:00Z", "2025-11-28T10:30:00-03:00")]


def test_time_of_day_prefers_times_over_start_time_over_start_date() -> None:
    """SPEC 1.3: recurrence_config.times, else start_time, else the datetime start_date's time."""
    base = "recurrence_type: daily\nstart_date: \"2025-11-20T07:15\"\n"
    r = ("2025-11-20", "2025-11-21")
    assert [o["key"][-5:] for o in occurrences(base + 'start_time: "08:00"\nrecurrence_config: {times: ["10:00"]}', *r)] == ["10:00"]
    assert [o["key"][-5:] for o in occurrences(base + 'start_time: "08:00"', *r)] == ["08:00"]
    assert [o["key"][-5:] for o in occurrences(base, *r)] == ["07:15"]


def test_time_of_day_with_seconds_keeps_them_in_the_key() -> None:
    """A start_time with seconds gives a slot with seconds, so keys stay distinct."""
    got = occurrences(
        'recurrence_type: once\nstart_date: 2025-11-20\nstart_time: "09:00:30"', "2025-11-20", "2025-11-21"
    )
    assert brief(got) == [("2025-11-20T09:00:30", "scheduled", "2025-11-20T09:00:30Z")]


def test_daily_interval_counts_from_start_dates_local_date() -> None:
    """daily interval 3 from 2025-11-20 runs on the 20th, 23rd, 26th, 29th."""
    got = occurrences(
        'recurrence_type: daily\nrecurrence_config: {interval: 3}\nstart_date: 2025-11-20\nstart_time: "09:00"',
        "2025-11-21",
        "2025-12-01",
    )
    assert [o["key"][7:17] for o in got] == ["2025-11-23", "2025-11-26", "2025-11-29"]


def test_weekly_interval_two_across_a_year_boundary() -> None:
    """Weeks start on Monday; every 2nd week from the week of 2025-12-22 crosses into 2026."""
    got = occurrences(
        """
        recurrence_type: weekly
        recurrence_config: {days: [MON, SUN], interval: 2}
        start_date: 2025-12-24
        start_time: "09:00"
        """,
        "2025-12-01",
        "2026-01-26",
    )
    # Week of Mon 12-22 (Mon 22 precedes start_date; Sun 28 runs), skip 12-29, week of 01-05, skip,
    # week of 01-19.
    assert [o["key"][7:17] for o in got] == ["2025-12-28", "2026-01-05", "2026-01-11", "2026-01-19", "2026-01-25"]


def test_weekly_defaults_to_start_dates_weekday() -> None:
    """Without days, weekly runs on start_date's weekday (2025-11-20 is a Thursday)."""
    got = occurrences('recurrence_type: weekly\nstart_date: 2025-11-20\nstart_time: "09:00"', "2025-11-01", "2025-12-05")
    assert [o["key"][7:17] for o in got] == ["2025-11-20", "2025-11-27", "2025-12-04"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # Leap 2024 has Feb 29; 2025 does not, so February 2025 is skipped (RFC 5545).
        ("{day: 29}", ["2024-01-29", "2024-02-29", "2024-03-29", "2025-01-29", "2025-03-29"]),
        ("{day: 31}", ["2024-01-31", "2024-03-31", "2025-01-31", "2025-03-31"]),
        ("{day: -1}", ["2024-01-31", "2024-02-29", "2024-03-31", "2025-01-31", "2025-02-28", "2025-03-31"]),
        # -29 is the 29th from the end: Jan 3, Feb 1 (leap) / none (Feb 2025 has 28 days), Mar 3.
        ("{day: -29}", ["2024-01-03", "2024-02-01", "2024-03-03", "2025-01-03", "2025-03-03"]),
        # Last Friday: Jan 26 2024, Feb 23, Mar 29; Jan 31 2025, Feb 28, Mar 28.
        ("{weekday: FRI, week: -1}", ["2024-01-26", "2024-02-23", "2024-03-29", "2025-01-31", "2025-02-28", "2025-03-28"]),
        # Fifth Friday only where it exists: Mar 29 2024, Jan 31 2025.
        ("{weekday: FRI, week: 5}", ["2024-03-29", "2025-01-31"]),
        ("{day: 15, interval: 2}", ["2024-01-15", "2024-03-15", "2025-01-15", "2025-03-15"]),
    ],
)
def test_monthly_days(config: str, expected: list[str]) -> None:
    """monthly: day 29/31/-1/-29, last and fifth Friday, interval; missing days are skipped."""
    got = []
    for year in ("2024", "2025"):
        got += occurrences(
            f'recurrence_type: monthly\nrecurrence_config: {config}\nstart_date: 2024-01-01\nstart_time: "09:00"',
            f"{year}-01-01",
            f"{year}-04-01",
        )
    assert [o["key"][7:17] for o in got] == expected


def test_cron_runs_in_local_wall_clock_time() -> None:
    """cron matches local time: 09:00 São Paulo is 12:00Z; start_date bounds it."""
    got = occurrences(
        f'recurrence_type: cron\nrecurrence_config: {{expression: "0 9 * * MON-FRI"}}\nstart_date: "2025-11-21T10:00"\n{SP}',
        "2025-11-20",
        "2025-11-26",
    )
    assert brief(got) == [
        ("2025-11-24T09:00", "scheduled", "2025-11-24T12:00:00Z"),
        ("2025-11-25T09:00", "scheduled", "2025-11-25T12:00:00Z"),
    ]


def test_custom_date_alone_takes_start_time_or_each_of_times() -> None:
    """custom: a date alone runs at start_time, or once per entry of times."""
    got = occurrences(
        """
        recurrence_type: custom
        recurrence_config: {dates: [2025-11-25, "2025-11-26T14:00"], times: ["09:00", "17:00"]}
        start_time: "08:00"
        """,
        "2025-11-01",
        "2025-12-01",
    )
    assert [o["key"][7:] for o in got] == ["2025-11-25T09:00", "2025-11-25T17:00", "2025-11-26T14:00"]


def test_custom_absolute_date_is_keyed_by_its_local_wall_time() -> None:
    """A custom date with an offset is that instant; its key is the local wall time."""
    got = occurrences(
        f'recurrence_type: custom\nrecurrence_config: {{dates: ["2025-11-25T12:00:00+00:00"]}}\n{SP}',
        "2025-11-01",
        "2025-12-01",
    )
    assert got == [occ("2025-11-25T09:00", "2025-11-25T12:00:00Z", "2025-11-25T09:00:00-03:00")]


def test_custom_dates_outside_the_bounds_are_dropped() -> None:
    """start_date/end_date bound custom dates too (SPEC 1.3); validate warns (FS308)."""
    schedule = """
        recurrence_type: custom
        recurrence_config: {dates: ["2025-11-19T09:00", "2025-11-25T09:00", "2025-12-25T09:00"]}
        start_date: 2025-11-20
        end_date: 2025-12-01
        """
    assert [o["key"][7:] for o in occurrences(schedule, "2025-01-01", "2026-12-01")] == ["2025-11-25T09:00"]
    assert codes(schedule).count("FS308") == 2


# --------------------------------------------------------------------------- step 3: window


WINDOW = 'execution_window_start: "09:00"\nexecution_window_end: "18:00"'


def test_window_defers_to_todays_opening_when_before_it() -> None:
    """A time before the window start is deferred to the same day's opening."""
    got = occurrences(
        f'recurrence_type: once\nstart_date: 2025-11-20\nstart_time: "07:00"\n{SP}\n{WINDOW}',
        "2025-11-01",
        "2025-12-01",
    )
    assert got == [
        occ(
            "2025-11-20T07:00", "2025-11-20T12:00:00Z", "2025-11-20T09:00:00-03:00",
            moved_from="2025-11-20T10:00:00Z", moved_by="window",
        )
    ]


def test_window_defers_to_tomorrows_opening_when_at_or_after_its_end() -> None:
    """The window is [start, end): 18:00 is outside and goes to the next day's 09:00."""
    got = occurrences(
        f'recurrence_type: once\nstart_date: 2025-11-20\nstart_time: "18:00"\n{SP}\n{WINDOW}',
        "2025-11-01",
        "2025-12-01",
    )
    assert got == [
        occ(
            "2025-11-20T18:00", "2025-11-21T12:00:00Z", "2025-11-21T09:00:00-03:00",
            moved_from="2025-11-20T21:00:00Z", moved_by="window",
        )
    ]


def test_window_skip_drops_the_occurrence() -> None:
    """outside_window: skip gives reason outside_window at the slot's own time."""
    got = occurrences(
        f'recurrence_type: once\nstart_date: 2025-11-20\nstart_time: "07:00"\n{SP}\n{WINDOW}\noutside_window: skip',
        "2025-11-01",
        "2025-12-01",
    )
    assert [(o["status"], o["reason"], o["at"], o["moved_by"]) for o in got] == [
        ("skipped", "outside_window", "2025-11-20T10:00:00Z", None)
    ]


@pytest.mark.parametrize(
    ("slot", "at", "moved"),
    [
        ("12:00", "2025-11-21T01:00:00Z", True),  # before the 22:00 opening: same day
        ("23:00", "2025-11-21T02:00:00Z", False),  # inside (after the start)
        ("05:59", "2025-11-20T08:59:00Z", False),  # inside (before the end, past midnight)
        ("06:00", "2025-11-21T01:00:00Z", True),  # the end is exclusive: same day's 22:00
    ],
)
def test_window_over_midnight(slot: str, at: str, moved: bool) -> None:
    """A window whose end is before its start spans midnight (22:00–06:00)."""
    got = occurrences(
        f'recurrence_type: once\nstart_date: 2025-11-20\nstart_time: "{slot}"\n{SP}\n'
        'execution_window_start: "22:00"\nexecution_window_end: "06:00"',
        "2025-11-01",
        "2025-12-01",
    )
    assert [(o["at"], o["moved_by"]) for o in got] == [(at, "window" if moved else None)]


def test_window_deferral_onto_a_weekend_then_day_rules_skip_it() -> None:
    """Friday 19:00 is deferred to Saturday 09:00, where skip_weekends skips it."""
    got = occurrences(
        f'recurrence_type: once\nstart_date: 2025-11-21\nstart_time: "19:00"\n{SP}\n{WINDOW}\nskip_weekends: true',
        "2025-11-01",
        "2025-12-01",
    )
    assert got == [
        occ(
            "2025-11-21T19:00", "2025-11-22T12:00:00Z", "2025-11-22T09:00:00-03:00", "skipped",
            moved_from="2025-11-21T22:00:00Z", moved_by="window", reason="weekend", detail="SAT",
        )
    ]


def test_window_deferral_onto_a_weekend_then_next_allowed_monday() -> None:
    """With next_allowed the deferred 09:00 moves on to Monday 09:00 (moved_by next_allowed)."""
    got = occurrences(
        f'recurrence_type: once\nstart_date: 2025-11-21\nstart_time: "19:00"\n{SP}\n{WINDOW}\n'
        "skip_weekends: true\non_blocked_day: next_allowed",
        "2025-11-01",
        "2025-12-01",
    )
    assert got == [
        occ(
            "2025-11-21T19:00", "2025-11-24T12:00:00Z", "2025-11-24T09:00:00-03:00",
            moved_from="2025-11-21T22:00:00Z", moved_by="next_allowed",
        )
    ]


def test_window_move_past_end_date_is_skipped_past_end() -> None:
    """A deferral that lands after end_date is skipped with reason past_end."""
    got = occurrences(
        f'recurrence_type: daily\nstart_date: 2025-11-20\nstart_time: "19:00"\nend_date: 2025-11-21\n{SP}\n{WINDOW}',
        "2025-11-01",
        "2025-12-01",
    )
    assert [(o["key"][7:], o["status"], o["reason"], o["at"], o["moved_by"]) for o in got] == [
        ("2025-11-20T19:00", "scheduled", None, "2025-11-21T12:00:00Z", "window"),
        ("2025-11-21T19:00", "skipped", "past_end", "2025-11-22T12:00:00Z", "window"),
    ]


# --------------------------------------------------------------------------- step 4: day rules


def test_day_rules_report_blackout_before_weekend_before_holiday() -> None:
    """2027-12-25 is a Saturday and Christmas: blackout wins, then weekend, then holiday."""
    base = f'recurrence_type: once\nstart_date: 2027-12-25\nstart_time: "10:00"\n{SP}\nholiday_country: BR\n'
    r = ("2027-12-01", "2028-01-01")
    assert occurrences(base + "blackout_dates: [2027-12-25]\nskip_weekends: true\nskip_holidays: true", *r)[0]["reason"] == "blackout"
    assert occurrences(base + "skip_weekends: true\nskip_holidays: true", *r)[0]["reason"] == "weekend"
    only_holiday = occurrences(base + "skip_holidays: true", *r)[0]
    assert only_holiday["reason"] == "holiday"
    assert only_holiday["detail"] == holidays.country_holidays("BR", years=2027, language="pt_BR")[datetime(2027, 12, 25).date()]


def test_blackout_range_gives_its_reason_as_detail() -> None:
    """A blackout range blocks each local day in it; its reason is the detail."""
    got = occurrences(
        f'recurrence_type: daily\nstart_date: 2025-12-30\nstart_time: "10:00"\n{SP}\n'
        "blackout_dates: [{start: 2025-12-31, end: 2026-01-01, reason: recess}]",
        "2025-12-30",
        "2026-01-03",
    )
    assert [(o["key"][7:17], o["status"], o["reason"], o["detail"]) for o in got] == [
        ("2025-12-30", "scheduled", None, None),
        ("2025-12-31", "skipped", "blackout", "recess"),
        ("2026-01-01", "skipped", "blackout", "recess"),
        ("2026-01-02", "scheduled", None, None),
    ]


def test_next_allowed_crosses_a_holiday_and_the_weekend_after_it() -> None:
    """BR 2026-11-20 (Fri) is a holiday and the 21st/22nd a weekend: next allowed is Mon 23rd."""
    got = occurrences(
        f'recurrence_type: once\nstart_date: 2026-11-20\nstart_time: "10:00"\n{SP}\n'
        "skip_weekends: true\nskip_holidays: true\nholiday_country: BR\non_blocked_day: next_allowed",
        "2026-11-01",
        "2026-12-01",
    )
    assert got == [
        occ(
            "2026-11-20T10:00", "2026-11-23T13:00:00Z", "2026-11-23T10:00:00-03:00",
            moved_from="2026-11-20T13:00:00Z", moved_by="next_allowed",
        )
    ]


def test_next_allowed_across_good_friday_weekend_keeps_the_time_of_day() -> None:
    """Daily 10:00 with next_allowed: Good Friday, Sat, Sun all land on Monday, one stays."""
    got = occurrences(
        f'recurrence_type: daily\nstart_date: 2026-04-02\nstart_time: "10:00"\n{SP}\n'
        "skip_weekends: true\nskip_holidays: true\nholiday_country: BR\non_blocked_day: next_allowed",
        "2026-04-02",
        "2026-04-07",
    )
    # The Monday slot itself is unmoved, so it stays; the three moved ones merge into it.
    assert [(o["key"][7:17], o["status"], o["at"], o["reason"], o["moved_by"]) for o in got] == [
        ("2026-04-02", "scheduled", "2026-04-02T13:00:00Z", None, None),
        ("2026-04-03", "skipped", "2026-04-06T13:00:00Z", "merged", "next_allowed"),
        ("2026-04-04", "skipped", "2026-04-06T13:00:00Z", "merged", "next_allowed"),
        ("2026-04-05", "skipped", "2026-04-06T13:00:00Z", "merged", "next_allowed"),
        ("2026-04-06", "scheduled", "2026-04-06T13:00:00Z", None, None),
    ]
    assert {o["detail"] for o in got if o["reason"] == "merged"} == {"acme/a/2026-04-06T10:00"}


def test_next_allowed_past_end_date_is_skipped_past_end() -> None:
    """A next_allowed move beyond end_date is skipped with reason past_end at the moved time."""
    got = occurrences(
        'recurrence_type: once\nstart_date: 2025-11-22\nstart_time: "10:00"\nend_date: 2025-11-23\n'
        "skip_weekends: true\non_blocked_day: next_allowed",
        "2025-11-01",
        "2025-12-01",
    )
    assert [(o["status"], o["reason"], o["at"], o["moved_by"], o["moved_from"]) for o in got] == [
        ("skipped", "past_end", "2025-11-24T10:00:00Z", "next_allowed", "2025-11-22T10:00:00Z")
    ]


def test_holiday_subdivision_and_extra_holidays() -> None:
    """SP state holiday 2025-07-09 blocks with subdivision SP; extra_holidays block too."""
    base = (
        f'recurrence_type: custom\nrecurrence_config: {{dates: ["2025-07-09T10:00", "2025-07-10T10:00"]}}\n{SP}\n'
        "skip_holidays: true\nholiday_country: BR\n"
    )
    r = ("2025-07-01", "2025-08-01")
    assert [o["status"] for o in occurrences(base, *r)] == ["scheduled", "scheduled"]
    assert [o["reason"] for o in occurrences(base + "holiday_subdivision: SP", *r)] == ["holiday", None]
    extra = occurrences(base + "extra_holidays: [2025-07-10]", *r)
    assert [(o["reason"], o["detail"]) for o in extra] == [(None, None), ("holiday", "extra holiday")]


def test_observed_holidays_are_included() -> None:
    """US 2026-07-03 is Independence Day (observed): a holiday for skip_holidays."""
    got = occurrences(
        'recurrence_type: once\nstart_date: 2026-07-03\nstart_time: "10:00"\n'
        "execution_timezone: America/New_York\nskip_holidays: true",
        "2026-07-01",
        "2026-07-05",
    )
    assert (got[0]["reason"], got[0]["detail"]) == ("holiday", "Independence Day (observed)")


def test_weekend_days_are_configurable() -> None:
    """weekend_days [FRI, SAT]: Friday is skipped, Sunday is not."""
    got = occurrences(
        'recurrence_type: daily\nstart_date: 2025-11-21\nstart_time: "10:00"\n'
        "skip_weekends: true\nweekend_days: [FRI, SAT]",
        "2025-11-21",
        "2025-11-24",
    )
    assert [(o["key"][7:17], o["status"]) for o in got] == [
        ("2025-11-21", "skipped"), ("2025-11-22", "skipped"), ("2025-11-23", "scheduled"),
    ]


def test_weekend_days_without_skip_weekends_block_nothing() -> None:
    """weekend_days only matters with skip_weekends: true."""
    got = occurrences(
        'recurrence_type: once\nstart_date: 2025-11-22\nstart_time: "10:00"\nweekend_days: [SAT]',
        "2025-11-01",
        "2025-12-01",
    )
    assert got[0]["status"] == "scheduled"


# --------------------------------------------------------------------------- step 5: exceptions

DAILY_SP = f'recurrence_type: daily\nstart_date: 2025-11-20\nstart_time: "09:00"\n{SP}'


def test_skip_exception_with_a_date_alone_covers_the_local_day() -> None:
    """start_date as a date means the whole local day in execution_timezone, not in UTC."""
    got = occurrences(
        f'recurrence_type: daily\nstart_date: 2025-11-20\nstart_time: "22:00"\n{SP}',
        "2025-11-20",
        "2025-11-24",
        "- {exception_type: skip, start_date: 2025-11-21, name: day-off}",
    )
    # 22:00 local on the 21st is 01:00Z on the 22nd: still the 21st locally, so skipped. (The
    # 23rd's 22:00 is 01:00Z on the 24th: out of range.)
    assert [(o["key"][7:17], o["status"], o["detail"]) for o in got] == [
        ("2025-11-20", "scheduled", None),
        ("2025-11-21", "skipped", "day-off"),
        ("2025-11-22", "scheduled", None),
    ]


def test_skip_exception_with_a_datetime_matches_that_instant_only() -> None:
    """A datetime start_date without end_date is one instant."""
    got = occurrences(
        f'recurrence_type: daily\nrecurrence_config: {{times: ["09:00", "15:00"]}}\nstart_date: 2025-11-20\n{SP}',
        "2025-11-20",
        "2025-11-21",
        '- {exception_type: skip, start_date: "2025-11-20T15:00"}',
    )
    assert [o["status"] for o in got] == ["scheduled", "skipped"]


def test_reschedule_matches_the_time_after_step_4() -> None:
    """A deferred occurrence is matched at its deferred time, not at its slot."""
    schedule = f'recurrence_type: daily\nstart_date: 2025-11-20\nstart_time: "07:00"\n{SP}\n{WINDOW}'
    by_deferred = '- {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-21T16:00"}'
    got = occurrences(schedule, "2025-11-21", "2025-11-22", by_deferred)
    assert got == [
        occ(
            "2025-11-21T07:00", "2025-11-21T19:00:00Z", "2025-11-21T16:00:00-03:00",
            moved_from="2025-11-21T10:00:00Z", moved_by="reschedule",
        )
    ]
    by_slot = '- {exception_type: reschedule, start_date: "2025-11-21T07:00", rescheduled_to: "2025-11-21T16:00"}'
    assert codes(schedule, by_slot) == ["FS301"]
    assert occurrences(schedule, "2025-11-21", "2025-11-22", by_slot)[0]["moved_by"] == "window"


def test_reschedule_is_exempt_from_window_and_day_rules() -> None:
    """A reschedule onto a Saturday evening runs there; validate warns (FS303)."""
    schedule = f"{DAILY_SP}\n{WINDOW}\nskip_weekends: true"
    exc = '- {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-22T20:00"}'
    got = occurrences(schedule, "2025-11-22", "2025-11-23", exc)
    assert [(o["key"][7:], o["status"], o["at"]) for o in got] == [
        ("2025-11-22T09:00", "skipped", "2025-11-22T12:00:00Z"),
        ("2025-11-21T09:00", "scheduled", "2025-11-22T23:00:00Z"),
    ]
    assert "FS303" in codes(schedule, exc)


def test_reschedule_matches_over_the_whole_schedule_not_the_range() -> None:
    """An occurrence rescheduled from March into November appears in a November plan."""
    exc = '- {exception_type: reschedule, start_date: "2026-03-02T09:00", rescheduled_to: "2025-11-25T11:00"}'
    got = occurrences(DAILY_SP, "2025-11-25", "2025-11-26", exc)
    assert [(o["key"][7:], o["at"], o["moved_by"]) for o in got] == [
        ("2025-11-25T09:00", "2025-11-25T12:00:00Z", None),
        ("2026-03-02T09:00", "2025-11-25T14:00:00Z", "reschedule"),
    ]
    march = occurrences(DAILY_SP, "2026-03-02", "2026-03-03", exc)
    assert [o["key"][7:] for o in march] == []  # it left March


def test_reschedule_matching_several_occurrences_is_an_error_and_does_nothing() -> None:
    """A date alone that covers two occurrences matches more than one (FS302)."""
    schedule = f'recurrence_type: daily\nrecurrence_config: {{times: ["09:00", "15:00"]}}\nstart_date: 2025-11-20\n{SP}'
    exc = '- {exception_type: reschedule, start_date: 2025-11-21, rescheduled_to: "2025-11-22T10:00"}'
    assert codes(schedule, exc) == ["FS302"]
    got = occurrences(schedule, "2025-11-21", "2025-11-22", exc)
    assert [o["moved_by"] for o in got] == [None, None]


def test_reschedule_date_alone_target_keeps_the_time_of_day() -> None:
    """rescheduled_to as a date alone keeps the occurrence's local time of day (a decision)."""
    weekly = f'recurrence_type: weekly\nrecurrence_config: {{days: [FRI]}}\nstart_date: 2025-11-21\nstart_time: "09:00"\n{SP}'
    exc = '- {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: 2025-11-27}'
    got = occurrences(weekly, "2025-11-20", "2025-11-29", exc)
    assert [(o["key"][7:], o["at"], o["moved_by"]) for o in got] == [
        ("2025-11-21T09:00", "2025-11-27T12:00:00Z", "reschedule"),
        ("2025-11-28T09:00", "2025-11-28T12:00:00Z", None),
    ]


def test_reschedule_onto_an_occurrence_merges_the_moved_one() -> None:
    """Moved onto another occurrence's instant, the rescheduled one is the one merged (step 6)."""
    exc = '- {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-27T09:00"}'
    got = occurrences(DAILY_SP, "2025-11-27", "2025-11-28", exc)
    assert [(o["key"][7:], o["status"], o["reason"], o["detail"]) for o in got] == [
        ("2025-11-21T09:00", "skipped", "merged", "acme/a/2025-11-27T09:00"),
        ("2025-11-27T09:00", "scheduled", None, None),
    ]


def test_three_overlapping_exceptions() -> None:
    """Reschedule first, then skip by the resulting time, then modify merges in file order."""
    got = occurrences(
        DAILY_SP,
        "2025-11-24",
        "2025-11-28",
        """
        - {exception_type: modify, start_date: 2025-11-24, end_date: 2025-11-26, reason: fast,
           modified_config: {rate_limit_per_hour: 3000, max_concurrent_executions: 100}}
        - {exception_type: reschedule, start_date: "2025-11-24T09:00", rescheduled_to: "2025-11-26T10:00", reason: moved}
        - {exception_type: skip, start_date: 2025-11-25, reason: off}
        - {exception_type: modify, start_date: "2025-11-26T00:00", end_date: "2025-11-26T09:30",
           modified_config: {max_concurrent_executions: 150}, name: cap}
        """,
    )
    assert [(o["key"][7:], o["status"], o["at"], o["overrides"], o["detail"]) for o in got] == [
        ("2025-11-25T09:00", "skipped", "2025-11-25T12:00:00Z", {}, "off"),
        (
            "2025-11-26T09:00", "scheduled", "2025-11-26T12:00:00Z",
            {"rate_limit_per_hour": 3000, "max_concurrent_executions": 150}, "fast; cap",
        ),
        (
            "2025-11-24T09:00", "scheduled", "2025-11-26T13:00:00Z",
            {"rate_limit_per_hour": 3000, "max_concurrent_executions": 100}, "moved; fast",
        ),
        ("2025-11-27T09:00", "scheduled", "2025-11-27T12:00:00Z", {}, None),
    ]


def test_skipped_occurrences_are_final() -> None:
    """A modify on a weekend-skipped day changes nothing and is reported (FS304)."""
    schedule = f"{DAILY_SP}\nskip_weekends: true"
    exc = "- {exception_type: modify, start_date: 2025-11-22, modified_config: {rate_limit_per_hour: 5}}"
    got = occurrences(schedule, "2025-11-22", "2025-11-23", exc)
    assert [(o["status"], o["reason"], o["overrides"]) for o in got] == [("skipped", "weekend", {})]
    assert codes(schedule, exc) == ["FS304"]


def test_two_reschedules_of_one_occurrence_are_an_error() -> None:
    """Only the first reschedule of an occurrence applies; the second is FS316."""
    exc = """
        - {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-21T10:00"}
        - {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-21T11:00"}
        """
    assert codes(DAILY_SP, exc) == ["FS316"]
    assert occurrences(DAILY_SP, "2025-11-21", "2025-11-22", exc)[0]["at"] == "2025-11-21T13:00:00Z"


# --------------------------------------------------------------------------- step 6: merging


def test_merge_keeps_the_occurrence_that_was_not_moved() -> None:
    """07:00 deferred to the 09:00 opening collides with the 09:00 slot: 09:00 stays."""
    got = occurrences(
        f'recurrence_type: daily\nrecurrence_config: {{times: ["07:00", "09:00"]}}\n'
        f"start_date: 2025-11-20\nend_date: 2025-11-20\n{SP}\n{WINDOW}",
        "2025-11-20",
        "2025-11-21",
    )
    assert got == [
        occ(
            "2025-11-20T07:00", "2025-11-20T12:00:00Z", "2025-11-20T09:00:00-03:00", "skipped",
            moved_from="2025-11-20T10:00:00Z", moved_by="window", reason="merged",
            detail="acme/a/2025-11-20T09:00",
        ),
        occ("2025-11-20T09:00", "2025-11-20T12:00:00Z", "2025-11-20T09:00:00-03:00"),
    ]


def test_merge_keeps_the_smallest_key_when_all_were_moved() -> None:
    """06:00 and 07:00 both deferred to 09:00: the smaller key (06:00) stays."""
    got = occurrences(
        f'recurrence_type: daily\nend_date: 2025-11-20\nrecurrence_config: {{times: ["07:00", "06:00"]}}\n'
        f"start_date: 2025-11-20\n{SP}\n{WINDOW}",
        "2025-11-20",
        "2025-11-21",
    )
    assert [(o["key"][7:], o["status"], o["reason"], o["detail"]) for o in got] == [
        ("2025-11-20T06:00", "scheduled", None, None),
        ("2025-11-20T07:00", "skipped", "merged", "acme/a/2025-11-20T06:00"),
    ]


def test_custom_gap_collision_merges_instead_of_erroring() -> None:
    """02:30 (shifted to 03:30 by the NY gap) and 03:30 collide only through DST: a merge."""
    schedule = (
        "recurrence_type: custom\nrecurrence_config: {dates: [\"2026-03-08T02:30\", \"2026-03-08T03:30\"]}\n"
        "execution_timezone: America/New_York"
    )
    got = occurrences(schedule, "2026-03-08", "2026-03-09")
    assert [(o["key"][7:], o["status"], o["reason"], o["dst"]) for o in got] == [
        ("2026-03-08T02:30", "skipped", "merged", "gap_shifted"),
        ("2026-03-08T03:30", "scheduled", None, None),
    ]
    assert "FS309" not in codes(schedule)


def test_custom_entries_at_the_same_instant_are_an_error() -> None:
    """Two custom entries denoting one instant: FS309; the plan keeps the first."""
    schedule = f'recurrence_type: custom\nrecurrence_config: {{dates: ["2025-11-25T09:00", "2025-11-25T12:00:00Z"]}}\n{SP}'
    assert codes(schedule) == ["FS309"]
    assert brief(occurrences(schedule, "2025-11-01", "2025-12-01")) == [
        ("2025-11-25T09:00", "scheduled", "2025-11-25T12:00:00Z")
    ]


# --------------------------------------------------------------------------- step 7: statuses


@pytest.mark.parametrize(
    ("flags", "status"),
    [("is_active: false", "inactive"), ("is_paused: true", "paused"), ("is_active: false\nis_paused: true", "inactive")],
)
def test_inactive_and_paused(flags: str, status: str) -> None:
    """Step 7 turns scheduled into inactive/paused (inactive wins); skipped stay skipped."""
    got = occurrences(f"{DAILY_SP}\nskip_weekends: true\n{flags}", "2025-11-21", "2025-11-23")
    assert [(o["status"], o["reason"]) for o in got] == [(status, None), ("skipped", "weekend")]


# --------------------------------------------------------------------------- plan level


def test_count_keeps_the_first_n_scheduled_and_the_skipped_before_them() -> None:
    """--count 2 from Friday: Fri, (Sat, Sun skipped), Mon — and nothing after."""
    got = occurrences(f"{DAILY_SP}\nskip_weekends: true", "2025-11-21", "2026-11-21", count=2)
    assert [(o["key"][7:17], o["status"]) for o in got] == [
        ("2025-11-21", "scheduled"), ("2025-11-22", "skipped"), ("2025-11-23", "skipped"), ("2025-11-24", "scheduled"),
    ]


def test_count_counts_paused_occurrences() -> None:
    """A paused automation's occurrences count towards --count (they are not skipped)."""
    got = occurrences(f"{DAILY_SP}\nis_paused: true", "2025-11-21", "2026-11-21", count=3)
    assert [o["status"] for o in got] == ["paused"] * 3


def test_plan_is_lazy_sorted_and_filtered_by_name() -> None:
    """Automations stream in (organization, name) order; names filters them."""
    docs = [
        automation_yaml(DAILY_SP, name=n, org=o)
        for n, o in (("zeta", "acme"), ("alpha", "beta"), ("beta", "acme"))
    ]
    config = config_of(*docs)
    plan = compile_plan(config, instant("2025-11-21"), instant("2025-11-22"))
    assert isinstance(plan.automations, types.GeneratorType)
    assert [(a.organization, a.name) for a in plan.automations] == [("acme", "beta"), ("acme", "zeta"), ("beta", "alpha")]
    named = plan_json(config, "2025-11-21", "2025-11-22", names=["zeta", "beta/alpha"])
    assert [a["name"] for a in named["automations"]] == ["zeta", "alpha"]


def test_compile_automation_carries_the_spec_hash_and_source() -> None:
    """compile_automation fills source, timezone and spec_hash from the config."""
    config = config_of(automation_yaml(DAILY_SP))
    (entry,) = config.automations
    plan = compile_automation(config, entry, datetime(2025, 11, 21, tzinfo=UTC), datetime(2025, 11, 22, tzinfo=UTC))
    assert (plan.source, plan.timezone, plan.spec_hash) == (
        "automations/doc0.yaml", "America/Sao_Paulo", config.automation_hash(entry)
    )


def test_plan_inputs_record_tzdata_and_holidays_versions() -> None:
    """The plan records the versions of the tz database and the holidays package."""
    inputs = plan_inputs()
    assert inputs.tzdata == importlib.metadata.version("tzdata")
    assert inputs.holidays == holidays.__version__
    assert plan_json(config_of(automation_yaml(DAILY_SP)), "2025-11-21", "2025-11-22")["inputs"] == {
        "tzdata": inputs.tzdata, "holidays": inputs.holidays,
    }
