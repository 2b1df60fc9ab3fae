"""flowspec.calendars: zone → country, holiday names that do not depend on the machine, day rules."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime

import pytest

from flowspec.calendars import (
    Blackout,
    DayRules,
    HolidayCalendar,
    HolidayError,
    check_country,
    country_for_zone,
)


@pytest.mark.parametrize(
    ("zone", "country"),
    [
        ("America/Sao_Paulo", "BR"),
        ("America/New_York", "US"),
        ("Europe/Berlin", "DE"),
        ("Australia/Lord_Howe", "AU"),
        ("Pacific/Chatham", "NZ"),
        ("Asia/Kolkata", "IN"),
        ("Asia/Calcutta", "IN"),  # a link (tzdata "backward") to Asia/Kolkata
        ("US/Eastern", "US"),
        ("UTC", None),
        ("Etc/GMT+3", None),
    ],
)
def test_country_for_zone_uses_zone_tab_and_links(zone: str, country: str | None) -> None:
    """One country per zone from zone.tab; links resolve; UTC and Etc/* have none."""
    assert country_for_zone(zone) == country


def test_holiday_names_do_not_depend_on_the_locale() -> None:
    """The holidays package would follow LANG; the calendar asks for the country's language."""
    code = (
        "from datetime import date; from flowspec.calendars import HolidayCalendar;"
        "print(HolidayCalendar('DE').name(date(2025, 12, 25)))"
    )
    names = {
        subprocess.run(
            [sys.executable, "-c", code], env={"LANG": lang, "LC_ALL": lang, "LANGUAGE": lang.split(".")[0]},
            capture_output=True, text=True, check=True,
        ).stdout
        for lang in ("C.UTF-8", "en_US.UTF-8", "pt_BR.UTF-8")
    }
    assert names == {"Erster Weihnachtstag\n"}


def test_observed_days_extra_holidays_and_subdivisions() -> None:
    """Observed days count; extra dates are holidays; a subdivision adds its own."""
    us = HolidayCalendar("US")
    assert us.name(date(2026, 7, 3)) == "Independence Day (observed)"
    assert HolidayCalendar("BR", extra=frozenset({date(2025, 3, 3)})).name(date(2025, 3, 3)) == "extra holiday"
    assert HolidayCalendar("BR").name(date(2025, 7, 9)) is None
    assert HolidayCalendar("BR", "SP").name(date(2025, 7, 9)) is not None


def test_check_country_names_what_is_wrong() -> None:
    """Unknown country or subdivision raise HolidayError with the known codes."""
    check_country("BR", "SP")
    with pytest.raises(HolidayError) as exc:
        check_country("XX", None)
    assert exc.value.field == "country" and "BR" in exc.value.candidates
    with pytest.raises(HolidayError) as exc:
        check_country("BR", "XX")
    assert exc.value.field == "subdivision" and "SP" in exc.value.candidates


def test_day_rules_first_blocking_rule_wins() -> None:
    """block() reports blackout, then weekend, then holiday; ranges block by instant."""
    sat_christmas = date(2027, 12, 25)
    noon = datetime(2027, 12, 25, 15)
    brazil = HolidayCalendar("BR")
    rules = DayRules(blackout_dates={sat_christmas: None}, weekend=frozenset({5, 6}), holidays=brazil)
    assert rules.block(sat_christmas, noon) == ("blackout", None)
    assert DayRules(weekend=frozenset({5, 6}), holidays=brazil).block(sat_christmas, noon) == ("weekend", "SAT")
    reason = DayRules(holidays=brazil).block(sat_christmas, noon)
    assert reason is not None and reason[0] == "holiday"
    ranged = DayRules(blackouts=[Blackout(datetime(2027, 12, 24, 21), datetime(2027, 12, 26, 3), date(2027, 12, 24), date(2027, 12, 25), "recess")])
    assert ranged.block(sat_christmas, noon) == ("blackout", "recess")
    assert ranged.block(date(2027, 12, 24), datetime(2027, 12, 24, 20)) is None
    assert ranged.may_block_day(date(2027, 12, 24)) and not ranged.may_block_day(date(2027, 12, 26))
