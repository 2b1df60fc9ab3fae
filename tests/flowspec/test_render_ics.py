"""`--format ics`: RFC 5545 that calendar apps import, checked by parsing it with `icalendar`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import icalendar
import pytest
from test_render_common import daily_promo, rendered, sample_plan

from flowspec.plan import Inputs, Plan
from flowspec.render.ics import fold, text, uid


def _events(text: str) -> list[icalendar.cal.Component]:
    calendar = icalendar.Calendar.from_ical(text)
    return [c for c in calendar.walk("VEVENT")]


def test_one_event_per_scheduled_occurrence_with_key_uid() -> None:
    """Every scheduled occurrence (and nothing else) is a VEVENT whose UID derives from its key."""
    text = rendered("ics", include_skipped=True)
    events = _events(text)
    scheduled = [
        o for a in sample_plan().automations for o in a.occurrences if o.status == "scheduled"
    ]
    assert sorted(str(e["UID"]) for e in events) == sorted(uid(o.key) for o in scheduled)
    assert len({str(e["UID"]) for e in events}) == len(events) == 9
    by_key = {str(e["X-FLOWSPEC-KEY"]): e for e in events}
    for o in scheduled:
        event = by_key[o.key]
        assert event.decoded("DTSTART") == o.at
        assert event.decoded("DTSTAMP") == datetime(2025, 10, 28, tzinfo=UTC)


def test_events_describe_the_occurrence() -> None:
    """SUMMARY names the automation; DESCRIPTION carries key, local time, moves and overrides."""
    events = {str(e["X-FLOWSPEC-KEY"]): e for e in _events(rendered("ics"))}
    modified = events["acme/daily-promo/2025-11-12T09:00"]
    assert str(modified["SUMMARY"]) == "acme/daily-promo (modified)"
    assert str(modified["DESCRIPTION"]).splitlines() == [
        "key: acme/daily-promo/2025-11-12T09:00",
        "local: Wed 2025-11-12 09:00 -03:00 (America/Sao_Paulo)",
        "source: automations/daily-promo.yaml",
        'overrides={"max_per_second":5,"template":"promo|big"}',
    ]
    moved = events["acme/daily-promo/2025-11-21T09:00"]
    assert "moved_by=next_allowed" in str(moved["DESCRIPTION"]).splitlines()


def test_calendar_header_and_raw_format() -> None:
    """VERSION/PRODID present; CRLF line endings; no line longer than 75 octets."""
    text = rendered("ics")
    calendar = icalendar.Calendar.from_ical(text)
    assert str(calendar["VERSION"]) == "2.0" and "flowspec" in str(calendar["PRODID"])
    assert text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert max(len(line.encode()) for line in text.split("\r\n")) <= 75


def test_folding_keeps_multibyte_characters_whole() -> None:
    """Folding counts octets and never splits a UTF-8 sequence; unfolding restores the line."""
    line = "DESCRIPTION:" + "ção🙂" * 40
    folded = fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts) and len(parts) > 3
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == line


def test_special_characters_survive_a_round_trip() -> None:
    """Commas, semicolons, backslashes and non-ASCII in overrides come back exactly."""
    automation = daily_promo()
    odd = {"text": "Olá, mundo; C:\\temp — 50% off " * 3}
    changed = [o._replace(overrides=odd) if o.slot == "2025-11-03T09:00" else o for o in automation.occurrences]
    plan = Plan(sample_plan().range_from, sample_plan().range_to, Inputs("a", "b"), [dataclasses.replace(automation, occurrences=changed)])
    events = {str(e["X-FLOWSPEC-KEY"]): e for e in _events(rendered("ics", plan))}
    description = str(events["acme/daily-promo/2025-11-03T09:00"]["DESCRIPTION"])
    assert description.splitlines()[-1] == 'overrides={"text":"' + odd["text"].replace("\\", "\\\\") + '"}'


def test_empty_plan_is_a_valid_calendar() -> None:
    """No automations still gives a calendar that parses, with no events."""
    plan = Plan(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), Inputs("a", "b"), [])
    assert _events(rendered("ics", plan)) == []


@pytest.mark.parametrize("length", [74, 75, 76, 148, 149, 150, 151, 300])
def test_folding_ascii_lines_at_every_boundary(length: int) -> None:
    """ASCII lines fold at exactly 75 octets, continuations at 74 plus the leading space."""
    line = "".join(chr(ord("a") + i % 26) for i in range(length))
    parts = fold(line).split("\r\n")
    assert all(len(p) <= 75 for p in parts)
    assert all(len(p) == 75 for p in parts[:-1])
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == line


def test_text_values_are_escaped_and_stripped_of_controls() -> None:
    """TEXT escapes backslash, ';', ',' and newlines, keeps tabs and drops other controls."""
    assert text("a\x00b\tc\x7fd\r\ne;f,g\\") == "ab\tcd\\ne\\;f\\,g\\\\"
