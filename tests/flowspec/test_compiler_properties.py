"""Properties of the compiler over random schedules (hypothesis).

- keys are unique, and the plan is the same whatever the order of the documents;
- compiling twice gives identical JSON;
- every scheduled occurrence satisfies the window, the day rules and the bounds, unless a
  reschedule put it there;
- adding a blackout date never adds an occurrence;
- moving `range_from` never changes an occurrence that lies in both ranges, and moving
  `range_to` never changes one before both ends (the days at a range's edges take the
  compiler's general per-slot path, the days inside it the per-day fast paths: this compares
  the two).

The day-rule check uses the `holidays` package directly, not the compiler's calendar module.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_compiler_support import automation_yaml, config_of, instant, occurrences

from flowspec.compiler import compile_plan

ZONES = {
    "America/Sao_Paulo": "BR",
    "America/New_York": "US",
    "Europe/Berlin": "DE",
    "Australia/Lord_Howe": "AU",
    "Pacific/Chatham": "NZ",
    "Asia/Kolkata": "IN",
    "UTC": "GB",
}
NO_DST = ["America/Sao_Paulo", "Asia/Kolkata", "UTC"]
WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Sched:
    """A random schedule, kept as values so tests can check rules independently."""

    zone: str
    start: date
    end: date | None
    lines: list[str]
    window: tuple[int, int] | None = None  # minutes of day
    blackouts: list[date] = field(default_factory=list)
    weekend: set[int] | None = None
    country: str | None = None
    exceptions: list[str] = field(default_factory=list)

    blackout_range: tuple[datetime, datetime] | None = None  # local, both ends blocked

    def yaml(self, extra_blackouts: list[date] | None = None) -> str:
        lines = list(self.lines)
        blackouts = [d.isoformat() for d in self.blackouts + (extra_blackouts or [])]
        if self.blackout_range is not None:
            first, last = self.blackout_range
            blackouts.append(f'{{start: "{first:%Y-%m-%dT%H:%M}", end: "{last:%Y-%m-%dT%H:%M}", reason: range}}')
        if blackouts:
            lines.append("blackout_dates: [" + ", ".join(blackouts) + "]")
        return "\n".join(lines)

    def exceptions_yaml(self) -> str:
        return "\n".join(self.exceptions)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def blackout_ranges(draw: st.DrawFn, start: date) -> tuple[datetime, datetime]:
    """A blackout range between two local datetimes up to four days apart."""
    first = datetime.combine(start, time(0)) + timedelta(minutes=15 * draw(st.integers(0, 40 * 96)))
    return first, first + timedelta(minutes=15 * draw(st.integers(0, 4 * 96)))


@st.composite
def schedules(draw: st.DrawFn, zones: list[str] | None = None, with_skips: bool = True) -> Sched:
    zone = draw(st.sampled_from(zones or list(ZONES)))
    start = draw(st.dates(date(2025, 1, 1), date(2026, 9, 30)))
    end = draw(st.one_of(st.none(), st.integers(20, 200).map(lambda n: start + timedelta(days=n))))
    minutes = st.integers(0, 95).map(lambda q: q * 15)
    times = draw(st.lists(minutes, min_size=1, max_size=3, unique=True))
    times_text = "[" + ", ".join(f'"{_hhmm(t)}"' for t in times) + "]"
    rtype = draw(st.sampled_from(["daily", "weekly", "monthly", "cron", "custom"]))
    lines = [f"recurrence_type: {rtype}", f"start_date: {start}", f"execution_timezone: {zone}"]
    if end is not None:
        lines.append(f"end_date: {end}")
    if rtype == "daily":
        lines.append(f"recurrence_config: {{interval: {draw(st.integers(1, 3))}, times: {times_text}}}")
    elif rtype == "weekly":
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=4, unique=True))
        lines.append(f"recurrence_config: {{days: [{', '.join(days)}], times: {times_text}}}")
    elif rtype == "monthly":
        day = draw(st.one_of(st.integers(1, 31), st.integers(-5, -1)))
        lines.append(f"recurrence_config: {{day: {day}, times: {times_text}}}")
    elif rtype == "cron":
        expr = draw(st.sampled_from(["0 */4 * * *", "30 9 * * MON-FRI", "*/30 1-3 * * *", "15 2,14 1,15,L * *", "0 0 * * SUN"]))
        lines.append(f'recurrence_config: {{expression: "{expr}"}}')
    else:
        offsets = draw(st.lists(st.integers(0, 80 * 96), min_size=1, max_size=8, unique=True))
        dates = [datetime.combine(start, time(0)) + timedelta(minutes=15 * o) for o in offsets]
        lines.append("recurrence_config: {dates: [" + ", ".join(f'"{d:%Y-%m-%dT%H:%M}"' for d in dates) + "]}")
    s = Sched(zone, start, end, lines)
    if draw(st.booleans()):
        ws, we = draw(minutes), draw(minutes)
        if ws != we:
            s.window = (ws, we)
            lines += [f'execution_window_start: "{_hhmm(ws)}"', f'execution_window_end: "{_hhmm(we)}"']
            lines.append(f"outside_window: {draw(st.sampled_from(['defer', 'skip']))}")
    s.blackouts = draw(st.lists(st.integers(0, 60).map(lambda n: start + timedelta(days=n)), max_size=3, unique=True))
    if draw(st.booleans()):
        weekend = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True))
        s.weekend = set(weekend)
        lines += ["skip_weekends: true", "weekend_days: [" + ", ".join(WEEKDAYS[d] for d in weekend) + "]"]
    if draw(st.booleans()):
        s.country = ZONES[zone]
        lines += ["skip_holidays: true", f"holiday_country: {s.country}"]
    lines.append(f"on_blocked_day: {draw(st.sampled_from(['skip', 'next_allowed']))}")
    s.blackout_range = draw(st.one_of(st.none(), blackout_ranges(start)))
    lines.append(f"dst_gap: {draw(st.sampled_from(['shift_forward', 'skip']))}")
    lines.append(f"dst_overlap: {draw(st.sampled_from(['first', 'last', 'both']))}")
    kinds = ["modify", "skip"] if with_skips else ["modify"]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(kinds))
        first = start + timedelta(days=draw(st.integers(0, 60)))
        last = first + timedelta(days=draw(st.integers(0, 5)))
        config = f", modified_config: {{rate_limit_per_hour: {draw(st.integers(1, 9))}}}" if kind == "modify" else ""
        s.exceptions.append(f"- {{exception_type: {kind}, start_date: {first}, end_date: {last}{config}}}")
    return s


def window_from(s: Sched) -> tuple[str, str]:
    return f"{s.start - timedelta(days=2)}", f"{s.start + timedelta(days=90)}"


@SETTINGS
@given(scheds=st.lists(schedules(), min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_keys_unique_and_plan_independent_of_document_order(scheds: list[Sched], seed: int) -> None:
    """Keys are unique; reordering documents or compiling again gives identical JSON."""
    docs = [automation_yaml(s.yaml(), s.exceptions_yaml(), name=f"auto-{i}") for i, s in enumerate(scheds)]
    lo, hi = window_from(scheds[0])
    first = compile_plan(config_of(*docs), instant(lo), instant(hi)).to_json()
    again = compile_plan(config_of(*docs), instant(lo), instant(hi)).to_json()
    shuffled = list(docs)
    random.Random(seed).shuffle(shuffled)
    reordered = compile_plan(config_of(*shuffled), instant(lo), instant(hi)).to_json()
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    # The file name follows the document's position; everything else must not.
    for a, b in zip(first["automations"], reordered["automations"], strict=True):
        assert {**a, "source": ""} == {**b, "source": ""}
    for automation in first["automations"]:
        keys = [o["key"] for o in automation["occurrences"]]
        assert len(keys) == len(set(keys))
        assert [(o["at"], o["key"]) for o in automation["occurrences"]] == sorted((o["at"], o["key"]) for o in automation["occurrences"])


def _blocked(s: Sched, local: datetime) -> bool:
    day = local.date()
    if day in s.blackouts:
        return True
    if s.blackout_range is not None:
        # A local time in a gap or fold means what SPEC 1.3 derives: shifted forward, the first.
        zone = local.tzinfo
        first, last = (t.replace(tzinfo=zone).astimezone(UTC) for t in s.blackout_range)
        if first <= local.astimezone(UTC) <= last:
            return True
    if s.weekend is not None and day.weekday() in s.weekend:
        return True
    if s.country is not None:
        return day in holidays.country_holidays(s.country, years=day.year)
    return False


def _in_window(s: Sched, local: datetime) -> bool:
    assert s.window is not None
    ws, we = s.window
    t = local.hour * 60 + local.minute
    return ws <= t < we if ws < we else (t >= ws or t < we)


@SETTINGS
@given(s=schedules())
def test_scheduled_occurrences_obey_window_day_rules_and_bounds(s: Sched) -> None:
    """Unless rescheduled, a scheduled occurrence is inside the window, on an allowed local day,
    and within [start_date, end_date]."""
    zone = ZoneInfo(s.zone)
    start = datetime.combine(s.start, time(0), tzinfo=zone)
    end = datetime.combine(s.end + timedelta(days=1), time(0), tzinfo=zone) if s.end else None
    for o in occurrences(s.yaml(), *window_from(s), s.exceptions_yaml()):
        if o["status"] != "scheduled" or o["moved_by"] == "reschedule":
            continue
        local = datetime.fromisoformat(o["local"])
        at = instant(o["at"])
        # Compared field by field: PEP 495 makes == across tzinfos False inside a fold.
        expected = at.astimezone(zone)
        assert (local.replace(tzinfo=None), local.utcoffset()) == (expected.replace(tzinfo=None), expected.utcoffset())
        assert not _blocked(s, local), o
        # A window opening that fell in a DST gap runs shifted, possibly past a short window.
        if s.window is not None and not (o["moved_by"] == "window" and o["dst"] == "gap_shifted"):
            assert _in_window(s, local), o
        assert at >= start and (end is None or at < end), o


@SETTINGS
@given(s=schedules(zones=NO_DST, with_skips=False), extra=st.integers(0, 60))
def test_adding_a_blackout_date_never_adds_an_occurrence(s: Sched, extra: int) -> None:
    """Over a whole (bounded) schedule, one more blackout date never increases the number of
    occurrences that run. (In zones without DST, and without skip exceptions: a skip exception
    at an occurrence's old time is exactly what a blackout move could escape.)"""
    if s.end is None:
        s.end = s.start + timedelta(days=120)
        s.lines.append(f"end_date: {s.end}")
    lo, hi = f"{s.start - timedelta(days=1)}", f"{s.end + timedelta(days=400)}"

    def running(blackouts: list[date]) -> int:
        got = occurrences(s.yaml(blackouts), lo, hi, s.exceptions_yaml())
        return sum(o["status"] != "skipped" for o in got)

    assert running([s.start + timedelta(days=extra)]) <= running([])


@SETTINGS
@given(s=schedules(), shift=st.integers(-3 * 24, 40 * 24), pick=st.integers(0, 10_000), to=st.integers(0, 60 * 24))
def test_moving_range_from_never_changes_shared_occurrences(s: Sched, shift: int, pick: int, to: int) -> None:
    """Plans over [f1, t) and [f2, t) agree on every occurrence at or after max(f1, f2), with a
    reschedule of a real occurrence in the mix."""
    lo, hi = window_from(s)
    base = [o for o in occurrences(s.yaml(), lo, hi, s.exceptions_yaml()) if o["status"] != "skipped"]
    exceptions = s.exceptions_yaml()
    if base:
        chosen: dict[str, Any] = base[pick % len(base)]
        target = instant(chosen["at"]) + timedelta(minutes=to * 7)
        exceptions += (
            f'\n- {{exception_type: reschedule, start_date: "{chosen["at"]}", '
            f'rescheduled_to: "{target:%Y-%m-%dT%H:%M:%SZ}"}}'
        )
    f1 = instant(lo)
    f2 = f1 + timedelta(hours=shift)
    plan1 = occurrences(s.yaml(), f1.isoformat(), hi, exceptions)
    plan2 = occurrences(s.yaml(), f2.isoformat(), hi, exceptions)
    later = max(f1, f2).astimezone(UTC)
    assert [o for o in plan1 if instant(o["at"]) >= later] == [o for o in plan2 if instant(o["at"]) >= later]


@SETTINGS
@given(s=schedules(), cut=st.integers(0, 90 * 24 * 4))
def test_moving_range_to_never_changes_occurrences_before_both_ends(s: Sched, cut: int) -> None:
    """Plans over [f, t1) and [f, t2) agree on every occurrence before min(t1, t2)."""
    lo, hi = window_from(s)
    t1 = instant(lo) + timedelta(minutes=15 * cut)
    whole = occurrences(s.yaml(), lo, hi, s.exceptions_yaml())
    part = occurrences(s.yaml(), lo, t1.isoformat(), s.exceptions_yaml())
    assert part == [o for o in whole if instant(o["at"]) < t1]
