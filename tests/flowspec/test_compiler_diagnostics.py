"""flowspec.compiler.compiler_diagnostics: the FS3xx checks, each located where the user fixes it.

Also runs every `tests/fixtures/codes/FS3xx/` config through the real loader to prove each fixture
produces its code (the catalogue test does the same through `flowspec validate`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_compiler_support import automation_yaml, codes, config_of, diagnostics, instant

from flowspec.compiler import compiler_diagnostics
from flowspec.config import load_config
from flowspec.diagnostics import Severity

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codes"
DAILY = 'recurrence_type: daily\nstart_date: 2025-11-20\nstart_time: "09:00"\nexecution_timezone: America/Sao_Paulo'


def position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, col) of the `occurrence`-th `needle` in `text`."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def located(schedule: str, exceptions: str = "", *, now: str = "2025-11-01") -> list[tuple[str, int, int]]:
    out = []
    for d in diagnostics(schedule, exceptions, now=now):
        assert d.location is not None
        out.append((d.code, d.location.line, d.location.col))
    return out


def test_valid_schedule_has_no_compiler_diagnostics() -> None:
    """A plain daily schedule produces nothing."""
    assert codes(DAILY) == []


def test_fs301_reschedule_matching_nothing_is_located_at_its_start_date() -> None:
    """FS301 (error) points at the exception's start_date and names the nearest occurrence."""
    exc = '- {exception_type: reschedule, start_date: "2025-11-21T10:00", rescheduled_to: "2025-11-22T10:00"}'
    (d,) = diagnostics(DAILY, exc)
    text = automation_yaml(DAILY, exc)
    assert (d.code, d.severity) == ("FS301", Severity.ERROR)
    assert d.location is not None and (d.location.line, d.location.col) == position(text, '"2025-11-21T10:00"')
    assert "2025-11-21T09:00" in d.message


def test_fs302_reschedule_matching_several() -> None:
    """FS302 (error): a whole-day reschedule over a day with two occurrences."""
    schedule = DAILY.replace('start_time: "09:00"', 'recurrence_config: {times: ["09:00", "15:00"]}')
    exc = '- {exception_type: reschedule, start_date: 2025-11-21, rescheduled_to: "2025-11-22T10:00"}'
    assert codes(schedule, exc) == ["FS302"]


def test_reschedule_matching_is_over_the_whole_schedule() -> None:
    """A reschedule years after `now` still matches (no range involved)."""
    exc = '- {exception_type: reschedule, start_date: "2031-06-02T09:00", rescheduled_to: "2031-06-03T10:00"}'
    assert codes(DAILY, exc) == []


@pytest.mark.parametrize(
    ("extra", "target"),
    [
        ("skip_weekends: true", "2025-11-22T10:00"),  # a Saturday
        ('execution_window_start: "08:00"\nexecution_window_end: "18:00"', "2025-11-24T20:00"),
        ("end_date: 2025-12-31", "2026-01-05T10:00"),
    ],
)
def test_fs303_reschedule_leaving_the_rules_is_a_warning_at_rescheduled_to(extra: str, target: str) -> None:
    """FS303 (warning): blocked day, outside the window, or outside the bounds."""
    schedule = f"{DAILY}\n{extra}"
    exc = f'- {{exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "{target}"}}'
    text = automation_yaml(schedule, exc)
    assert located(schedule, exc) == [("FS303", *position(text, f'"{target}"'))]


@pytest.mark.parametrize("kind", ["skip", "modify"])
def test_fs304_skip_or_modify_matching_nothing(kind: str) -> None:
    """FS304 (warning): an exception before the schedule starts changes nothing."""
    config = ", modified_config: {rate_limit_per_hour: 10}" if kind == "modify" else ""
    exc = f"- {{exception_type: {kind}, start_date: 2025-11-01{config}}}"
    assert codes(DAILY, exc) == ["FS304"]
    inside = exc.replace("2025-11-01", "2025-11-25")
    assert codes(DAILY, inside) == []


def test_fs304_modify_on_a_day_a_skip_already_took() -> None:
    """A modify matches what is still scheduled after the skips: nothing here."""
    exc = """
        - {exception_type: skip, start_date: 2025-11-25}
        - {exception_type: modify, start_date: 2025-11-25, modified_config: {rate_limit_per_hour: 10}}
        """
    assert codes(DAILY, exc) == ["FS304"]


def test_fs304_skip_matches_a_rescheduled_occurrence() -> None:
    """A skip on the day a reschedule moved an occurrence to does match it."""
    weekly = 'recurrence_type: weekly\nrecurrence_config: {days: [FRI]}\nstart_date: 2025-11-21\nstart_time: "09:00"'
    exc = """
        - {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-25T09:00"}
        - {exception_type: skip, start_date: 2025-11-25}
        """
    assert codes(weekly, exc) == []


def test_fs305_monthly_day_past_28_names_the_skipped_months() -> None:
    """FS305 (warning) lists the months of the next year from `now` that lack the day."""
    schedule = 'recurrence_type: monthly\nrecurrence_config: {day: 31}\nstart_date: 2025-01-31\nstart_time: "09:00"'
    (d,) = diagnostics(schedule, now="2025-11-15")
    assert (d.code, d.severity) == ("FS305", Severity.WARNING)
    # Nov 2025 .. Oct 2026 without a 31st: Nov, Feb, Apr, Jun, Sep.
    assert d.data["months"] == ["Nov 2025", "Feb 2026", "Apr 2026", "Jun 2026", "Sep 2026"]
    text = automation_yaml(schedule)
    assert d.location is not None and (d.location.line, d.location.col) == position(text, "31}")
    assert codes(schedule.replace("31}", "28}"), now="2025-11-15") == []


def test_fs306_automation_with_no_occurrence_in_the_next_year() -> None:
    """FS306 (warning): a once in the past, or a schedule whose every day is blocked."""
    past = 'recurrence_type: once\nstart_date: 2024-03-01\nstart_time: "09:00"'
    assert codes(past, now="2025-11-01") == ["FS306"]
    assert codes(past, now="2024-01-01") == []
    weekends_only = (
        'recurrence_type: weekly\nrecurrence_config: {days: [SAT, SUN]}\nstart_date: 2025-11-01\n'
        'start_time: "09:00"\nskip_weekends: true'
    )
    assert codes(weekends_only) == ["FS306"]


def test_fs306_counts_paused_and_inactive_as_occurrences() -> None:
    """A paused or inactive automation still has occurrences: no FS306."""
    assert codes(f"{DAILY}\nis_paused: true") == []
    assert codes(f"{DAILY}\nis_active: false") == []


def test_fs307_inferred_country_is_an_info_naming_zone_and_country() -> None:
    """FS307 (info): which country was inferred from which zone."""
    (d,) = diagnostics(f"{DAILY}\nskip_holidays: true")
    assert (d.code, d.severity) == ("FS307", Severity.INFO)
    assert "BR" in d.message and "America/Sao_Paulo" in d.message
    assert codes(f"{DAILY}\nskip_holidays: true\nholiday_country: BR") == []


def test_fs307_follows_zone_links() -> None:
    """A backward-compatible link (Asia/Calcutta → Asia/Kolkata) still finds its country."""
    (d,) = diagnostics(DAILY.replace("America/Sao_Paulo", "Asia/Calcutta") + "\nskip_holidays: true")
    assert d.code == "FS307" and d.data["country"] == "IN"


def test_fs308_custom_date_outside_bounds() -> None:
    """FS308 (warning) at the date entry outside [start_date, end_date]."""
    schedule = (
        'recurrence_type: custom\nrecurrence_config: {dates: ["2025-11-25T09:00", "2026-02-01T09:00"]}\n'
        "end_date: 2025-12-31"
    )
    text = automation_yaml(schedule)
    assert located(schedule) == [("FS308", *position(text, '"2026-02-01T09:00"'))]


def test_fs309_two_custom_entries_at_one_instant() -> None:
    """FS309 (error) at the second entry of a pair denoting one instant."""
    schedule = (
        'recurrence_type: custom\nrecurrence_config: {dates: ["2025-11-25T09:00", "2025-11-25T12:00:00Z"]}\n'
        "execution_timezone: America/Sao_Paulo"
    )
    text = automation_yaml(schedule)
    assert located(schedule) == [("FS309", *position(text, '"2025-11-25T12:00:00Z"'))]


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+3"])
def test_fs310_skip_holidays_in_a_zone_without_country(zone: str) -> None:
    """FS310 (error): UTC and Etc/* belong to no country; holiday_country fixes it."""
    schedule = DAILY.replace("America/Sao_Paulo", zone) + "\nskip_holidays: true"
    text = automation_yaml(schedule)
    assert located(schedule) == [("FS310", *position(text, "true"))]
    assert codes(schedule + "\nholiday_country: BR") == []


def test_fs311_unknown_country_and_subdivision_suggest_the_nearest() -> None:
    """FS311 (error) at the misspelt field, with did-you-mean or the known codes."""
    (d,) = diagnostics(f"{DAILY}\nskip_holidays: true\nholiday_country: BX")
    # No two-letter code is "close" to another, so the message lists the known ones instead.
    assert d.code == "FS311" and "knows AD, AE, AF" in d.message
    (d,) = diagnostics(f"{DAILY}\nskip_holidays: true\nholiday_country: BR\nholiday_subdivision: SPP")
    assert d.code == "FS311" and "(did you mean 'SP'?)" in d.message
    text = automation_yaml(f"{DAILY}\nskip_holidays: true\nholiday_country: BR\nholiday_subdivision: SPP")
    assert d.location is not None and (d.location.line, d.location.col) == position(text, "SPP")


def test_fs311_is_checked_without_skip_holidays_too() -> None:
    """A misspelt holiday_country is reported even while skip_holidays is off."""
    assert codes(f"{DAILY}\nholiday_country: XX") == ["FS311"]


def test_fs312_all_seven_weekend_days_even_without_skip_weekends() -> None:
    """FS312 (error) whether or not skip_weekends is set (SPEC 3)."""
    seven = "weekend_days: [MON, TUE, WED, THU, FRI, SAT, SUN]"
    assert codes(f"{DAILY}\n{seven}") == ["FS312"]
    assert codes(f"{DAILY}\n{seven}\nskip_weekends: true") == ["FS312"]


@pytest.mark.parametrize(
    ("expression", "bad"),
    [("0 9 * * FRI-MON", "FRI-MON"), ("0 25 * * *", "25"), ("0 0 30 2 *", "30 2")],
)
@pytest.mark.parametrize("quote", ['"', "'", ""])
def test_fs313_invalid_cron_points_at_the_bad_token(expression: str, bad: str, quote: str) -> None:
    """FS313 (error): the column is the bad token's, quoted or not."""
    schedule = f"recurrence_type: cron\nrecurrence_config:\n  expression: {quote}{expression}{quote}"
    text = automation_yaml(schedule)
    line, col = position(text, expression)
    assert located(schedule) == [("FS313", line, col + expression.index(bad))]


def test_fs314_missing_time_of_day() -> None:
    """FS314 (error): daily with a date-only start_date and no start_time or times."""
    assert codes("recurrence_type: daily\nstart_date: 2025-11-20") == ["FS314"]
    assert codes('recurrence_type: custom\nrecurrence_config: {dates: [2025-11-25]}') == ["FS314"]


def test_fs315_start_date_needed_to_count_from() -> None:
    """FS315 (error): once without start_date, or an interval with nothing to count from."""
    assert codes('recurrence_type: once\nstart_time: "09:00"') == ["FS315"]
    assert codes('recurrence_type: daily\nrecurrence_config: {interval: 2}\nstart_time: "09:00"') == ["FS315"]
    assert codes('recurrence_type: daily\nstart_time: "09:00"') == []


def test_fs316_two_reschedules_of_one_occurrence() -> None:
    """FS316 (error) at the second reschedule of the same occurrence."""
    exc = """
        - {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-21T10:00"}
        - {exception_type: reschedule, start_date: "2025-11-21T09:00", rescheduled_to: "2025-11-21T11:00"}
        """
    text = automation_yaml(DAILY, exc)
    assert located(DAILY, exc) == [("FS316", *position(text, '"2025-11-21T09:00"', 2))]


def test_diagnostics_are_reported_once_per_automation() -> None:
    """Two automations with the same problem give two diagnostics, each in its own file."""
    bad = f"{DAILY}\nweekend_days: [MON, TUE, WED, THU, FRI, SAT, SUN]"
    config = config_of(automation_yaml(bad, name="one"), automation_yaml(bad, name="two"))
    found = compiler_diagnostics(config, now=instant("2025-11-01"))
    assert sorted((d.code, d.location.file if d.location else "") for d in found) == [
        ("FS312", "automations/doc0.yaml"), ("FS312", "automations/doc1.yaml"),
    ]


@pytest.mark.parametrize("code", sorted(p.name for p in FIXTURES.glob("FS3*")))
def test_fixture_produces_its_code(code: str) -> None:
    """tests/fixtures/codes/FS3xx/ loads cleanly and the compiler reports that code."""
    config = load_config([FIXTURES / code])
    assert not [d for d in config.diagnostics if d.is_error], [d.render() for d in config.diagnostics]
    found = {d.code for d in compiler_diagnostics(config, now=instant("2026-06-01"))}
    assert code in found
