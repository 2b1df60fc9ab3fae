"""The nine "Exemplos de Agendamento" of the original design, compiled by SPEC's rules.

Expectations are derived by hand from SPEC 1.1, 1.3 and 3, not from the design's printed
outputs, which contain mistakes: 2025-11-20 is a Thursday (not a Wednesday), it is a national
holiday in Brazil (Consciência Negra, in the `holidays` data since 2024), and example 7's skip
covers the 25th and 26th, not the 24th and 25th. The design's `start_date` values end in `Z`, so
they are absolute instants (SPEC 1.3): 09:00Z is 06:00 in São Paulo.
"""

from __future__ import annotations

from datetime import date, timedelta

from test_compiler_support import brief, codes, occ, occurrences

# Example 7's base schedule, shared by examples 8 and 9 (their exceptions belong to it).
DAILY_0900_UTC = """
recurrence_type: daily
recurrence_config: {type: daily, interval: 1}
start_date: "2025-11-01T09:00:00Z"
"""


def test_example_1_daily_at_nine_in_sao_paulo() -> None:
    """Example 1: start_time 09:00 is local São Paulo time (UTC-3), every day from the 20th."""
    got = occurrences(
        """
        recurrence_type: daily
        start_date: "2025-11-20T09:00:00Z"
        start_time: "09:00:00"
        recurrence_config: {type: daily, interval: 1}
        execution_timezone: America/Sao_Paulo
        """,
        "2025-11-20",
        "2025-11-24",
    )
    assert got == [
        occ(f"2025-11-{d}T09:00", f"2025-11-{d}T12:00:00Z", f"2025-11-{d}T09:00:00-03:00")
        for d in (20, 21, 22, 23)
    ]


def test_example_2_weekly_mon_wed_fri_at_fourteen_utc() -> None:
    """Example 2: no timezone means UTC; Wed 19th precedes start_date, so Fri 21st is first."""
    got = occurrences(
        """
        recurrence_type: weekly
        start_date: "2025-11-20T14:00:00Z"
        start_time: "14:00:00"
        recurrence_config: {type: weekly, days: [MON, WED, FRI], interval: 1}
        """,
        "2025-11-17",
        "2025-12-01",
    )
    assert got == [
        occ(f"2025-11-{d}T14:00", f"2025-11-{d}T14:00:00Z", f"2025-11-{d}T14:00:00+00:00")
        for d in (21, 24, 26, 28)
    ]


def test_example_3_monthly_on_the_fifteenth() -> None:
    """Example 3: the first slot equals start_date exactly and is kept (bounds are inclusive)."""
    got = occurrences(
        """
        recurrence_type: monthly
        start_date: "2025-11-15T10:00:00Z"
        start_time: "10:00:00"
        recurrence_config: {type: monthly, day: 15, interval: 1}
        """,
        "2025-11-01",
        "2026-02-01",
    )
    assert brief(got) == [
        ("2025-11-15T10:00", "scheduled", "2025-11-15T10:00:00Z"),
        ("2025-12-15T10:00", "scheduled", "2025-12-15T10:00:00Z"),
        ("2026-01-15T10:00", "scheduled", "2026-01-15T10:00:00Z"),
    ]


def test_example_4_cron_weekdays_at_nine() -> None:
    """Example 4: cron in UTC (no timezone); Thu 20th, Fri 21st, then Mon 24th."""
    got = occurrences(
        """
        recurrence_type: cron
        start_date: "2025-11-20T09:00:00Z"
        recurrence_config: {type: cron, expression: "0 9 * * MON-FRI"}
        """,
        "2025-11-20",
        "2025-11-25",
    )
    assert brief(got) == [
        ("2025-11-20T09:00", "scheduled", "2025-11-20T09:00:00Z"),
        ("2025-11-21T09:00", "scheduled", "2025-11-21T09:00:00Z"),
        ("2025-11-24T09:00", "scheduled", "2025-11-24T09:00:00Z"),
    ]


def test_example_5_custom_dates() -> None:
    """Example 5: each absolute datetime is one occurrence; the key is its UTC wall time."""
    got = occurrences(
        """
        recurrence_type: custom
        recurrence_config:
          type: custom
          dates: ["2025-11-25T09:00:00Z", "2025-11-26T14:00:00Z", "2025-12-01T10:00:00Z"]
        """,
        "2025-11-01",
        "2026-01-01",
    )
    assert got == [
        occ("2025-11-25T09:00", "2025-11-25T09:00:00Z", "2025-11-25T09:00:00+00:00"),
        occ("2025-11-26T14:00", "2025-11-26T14:00:00Z", "2025-11-26T14:00:00+00:00"),
        occ("2025-12-01T10:00", "2025-12-01T10:00:00Z", "2025-12-01T10:00:00+00:00"),
    ]


EXAMPLE_6 = """
recurrence_type: daily
start_date: "2025-11-20T09:00:00Z"
recurrence_config: {type: daily, interval: 1}
execution_window_start: "09:00"
execution_window_end: "18:00"
blackout_dates: ["2025-12-25", "2025-01-01"]
skip_weekends: true
skip_holidays: true
execution_timezone: America/Sao_Paulo
"""


def test_example_6_business_hours_weekends_and_holidays() -> None:
    """Example 6: the time comes from start_date (06:00 local), so every slot is deferred to the
    09:00 opening; weekends, the BR holiday of Nov 20 and the Christmas blackout are skipped."""
    got = occurrences(EXAMPLE_6, "2025-11-20", "2025-12-27")
    expected = []
    day = date(2025, 11, 20)
    while day < date(2025, 12, 27):
        d = day.isoformat()
        status, reason, detail = "scheduled", None, None
        if day == date(2025, 12, 25):
            # Also a holiday and a Thursday: blackout is reported first.
            status, reason = "skipped", "blackout"
        elif day.weekday() >= 5:
            status, reason, detail = "skipped", "weekend", ("SAT", "SUN")[day.weekday() - 5]
        elif day == date(2025, 11, 20):
            status, reason = "skipped", "holiday"
        expected.append(
            occ(
                f"{d}T06:00",
                f"{d}T12:00:00Z",
                f"{d}T09:00:00-03:00",
                status,
                moved_from=f"{d}T09:00:00Z",
                moved_by="window",
                reason=reason,
                detail=detail,
            )
        )
        day += timedelta(days=1)
    holiday = next(o for o in got if o["reason"] == "holiday")
    assert "Zumbi" in holiday["detail"]  # the holiday's own name, from the holidays package
    holiday["detail"] = None
    assert got == expected
    # First scheduled occurrence: Friday the 21st, not Thursday the 20th as the design printed.
    assert next(o for o in got if o["status"] == "scheduled")["key"] == "acme/a/2025-11-21T06:00"


def test_example_6_says_which_holiday_country_was_inferred() -> None:
    """Example 6 has no holiday_country: BR is inferred from America/Sao_Paulo (info FS307)."""
    assert "FS307" in codes(EXAMPLE_6)


def test_example_7_skip_black_friday_range() -> None:
    """Example 7: the skip covers 25th 00:00Z to 26th 23:59:59Z, so the 25th and 26th."""
    got = occurrences(
        DAILY_0900_UTC,
        "2025-11-20",
        "2025-11-29",
        """
        - exception_type: skip
          start_date: "2025-11-25T00:00:00Z"
          end_date: "2025-11-26T23:59:59Z"
          reason: Black Friday - Special campaign day
        """,
    )
    expected = []
    for d in range(20, 29):
        skipped = d in (25, 26)
        expected.append(
            occ(
                f"2025-11-{d}T09:00",
                f"2025-11-{d}T09:00:00Z",
                f"2025-11-{d}T09:00:00+00:00",
                "skipped" if skipped else "scheduled",
                reason="exception" if skipped else None,
                detail="Black Friday - Special campaign day" if skipped else None,
            )
        )
    assert got == expected


def test_example_8_reschedule_moves_one_occurrence_and_keeps_its_key() -> None:
    """Example 8: the 24th's occurrence runs on the 25th at 14:00Z under its own key."""
    got = occurrences(
        DAILY_0900_UTC,
        "2025-11-23",
        "2025-11-27",
        """
        - exception_type: reschedule
          start_date: "2025-11-24T09:00:00Z"
          reason: Servidor em manutenção, adiado 1 dia
          rescheduled_to: "2025-11-25T14:00:00Z"
        """,
    )
    assert got == [
        occ("2025-11-23T09:00", "2025-11-23T09:00:00Z", "2025-11-23T09:00:00+00:00"),
        occ("2025-11-25T09:00", "2025-11-25T09:00:00Z", "2025-11-25T09:00:00+00:00"),
        occ(
            "2025-11-24T09:00",
            "2025-11-25T14:00:00Z",
            "2025-11-25T14:00:00+00:00",
            moved_from="2025-11-24T09:00:00Z",
            moved_by="reschedule",
            detail="Servidor em manutenção, adiado 1 dia",
        ),
        occ("2025-11-26T09:00", "2025-11-26T09:00:00Z", "2025-11-26T09:00:00+00:00"),
    ]


def test_example_9_modify_triples_the_rate_on_black_friday() -> None:
    """Example 9: the 25th and 26th carry the modified_config as overrides; others none."""
    got = occurrences(
        DAILY_0900_UTC,
        "2025-11-24",
        "2025-11-28",
        """
        - exception_type: modify
          start_date: "2025-11-25T00:00:00Z"
          end_date: "2025-11-26T23:59:59Z"
          reason: Black Friday - 3x speed
          modified_config: {rate_limit_per_hour: 3000, max_concurrent_executions: 150}
        """,
    )
    triple = {"rate_limit_per_hour": 3000, "max_concurrent_executions": 150}
    assert got == [
        occ("2025-11-24T09:00", "2025-11-24T09:00:00Z", "2025-11-24T09:00:00+00:00"),
        occ(
            "2025-11-25T09:00", "2025-11-25T09:00:00Z", "2025-11-25T09:00:00+00:00",
            overrides=triple, detail="Black Friday - 3x speed",
        ),
        occ(
            "2025-11-26T09:00", "2025-11-26T09:00:00Z", "2025-11-26T09:00:00+00:00",
            overrides=triple, detail="Black Friday - 3x speed",
        ),
        occ("2025-11-27T09:00", "2025-11-27T09:00:00Z", "2025-11-27T09:00:00+00:00"),
    ]


def test_examples_7_and_8_together_skip_the_rescheduled_occurrence() -> None:
    """Skip matches the time after the reschedule: the 24th moved into the skipped 25th is skipped."""
    got = occurrences(
        DAILY_0900_UTC,
        "2025-11-24",
        "2025-11-27",
        """
        - exception_type: reschedule
          start_date: "2025-11-24T09:00:00Z"
          rescheduled_to: "2025-11-25T14:00:00Z"
        - exception_type: skip
          start_date: "2025-11-25T00:00:00Z"
          end_date: "2025-11-26T23:59:59Z"
          reason: Black Friday
        """,
    )
    assert [(o["key"][7:], o["status"], o["at"], o["moved_by"]) for o in got] == [
        ("2025-11-25T09:00", "skipped", "2025-11-25T09:00:00Z", None),
        ("2025-11-24T09:00", "skipped", "2025-11-25T14:00:00Z", "reschedule"),
        ("2025-11-26T09:00", "skipped", "2025-11-26T09:00:00Z", None),
    ]
