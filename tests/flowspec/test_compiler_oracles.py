"""Differential tests: the compiler's candidate slots against independent implementations.

- dateutil `rrule` on NAIVE datetimes for daily/weekly/monthly slots (FACTS: on aware datetimes
  it mishandles DST, so it is only an oracle for wall-clock slots);
- cronsim for cron expressions (Vixie day-of-month/day-of-week semantics, like ours);
- zoneinfo for the instant of each slot.

Comparisons are restricted to local days without a DST transition, where every wall time exists
exactly once; the transition days themselves are hand-checked in test_compiler_dst.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim
from dateutil import rrule
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_compiler_support import occurrences

from flowspec.cron import CronError, parse_cron

ZONES = [
    "America/Sao_Paulo",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "UTC",
]
WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
RRULE_DAYS = [rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU]
SPAN = 120  # days compiled per example
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def transition_days(zone: str, first: date, last: date) -> set[date]:
    """Local days whose UTC offset changes, by zoneinfo alone."""
    z = ZoneInfo(zone)
    out = set()
    d = first
    while d <= last:
        a = datetime.combine(d, time(0), tzinfo=z).utcoffset()
        b = datetime.combine(d + timedelta(days=1), time(0), tzinfo=z).utcoffset()
        if a != b:
            out.add(d)
        d += timedelta(days=1)
    return out


def compiled_slots(schedule: str, zone: str, start: date) -> dict[datetime, str]:
    """Our occurrences as {naive local slot: at} on comparable days."""
    got = occurrences(schedule, f"{start - timedelta(days=1)}", f"{start + timedelta(days=SPAN)}")
    out = {}
    for o in got:
        if o["status"] != "scheduled":
            # Only a DST rule may take a slot out (a gap-shifted slot merged with the next
            # hour's, SPEC 3 step 6); those days are not compared with the oracle.
            assert o["dst"] is not None, o
            continue
        slot = datetime.fromisoformat(o["key"].split("/")[2].removesuffix("+fold"))
        out[slot] = o["at"]
    return out


def comparable(slots: dict[datetime, str] | list[datetime], zone: str, start: date) -> set[datetime]:
    last = start + timedelta(days=SPAN - 3)
    skip = transition_days(zone, start - timedelta(days=1), last)
    return {s for s in slots if start <= s.date() <= last and s.date() not in skip}


def check(schedule: str, zone: str, start: date, oracle: list[datetime]) -> None:
    ours = compiled_slots(schedule, zone, start)
    assert comparable(ours, zone, start) == comparable(oracle, zone, start)
    z = ZoneInfo(zone)
    for slot in comparable(ours, zone, start):
        assert ours[slot] == slot.replace(tzinfo=z).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


times_st = st.lists(
    st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])), min_size=1, max_size=3, unique=True
)
start_st = st.dates(date(2024, 1, 1), date(2026, 10, 31))


def times_yaml(times: list[tuple[int, int]]) -> str:
    return "[" + ", ".join(f'"{h:02d}:{m:02d}"' for h, m in times) + "]"


def oracle_rule(freq: int, start: date, times: list[tuple[int, int]], **kw: object) -> list[datetime]:
    until = datetime.combine(start + timedelta(days=SPAN), time(0))
    out: list[datetime] = []
    for h, m in times:
        out += rrule.rrule(freq, dtstart=datetime.combine(start, time(h, m)), until=until, **kw)  # type: ignore[arg-type]
    return out


@SETTINGS
@given(zone=st.sampled_from(ZONES), start=start_st, times=times_st, interval=st.integers(1, 5))
def test_daily_matches_rrule(zone: str, start: date, times: list[tuple[int, int]], interval: int) -> None:
    """daily slots equal rrule DAILY with the same interval and dtstart."""
    schedule = (
        f"recurrence_type: daily\nrecurrence_config: {{interval: {interval}, times: {times_yaml(times)}}}\n"
        f"start_date: {start}\nexecution_timezone: {zone}"
    )
    check(schedule, zone, start, oracle_rule(rrule.DAILY, start, times, interval=interval))


@SETTINGS
@given(
    zone=st.sampled_from(ZONES),
    start=start_st,
    times=times_st,
    interval=st.integers(1, 3),
    days=st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True),
)
def test_weekly_matches_rrule(zone: str, start: date, times: list[tuple[int, int]], interval: int, days: list[int]) -> None:
    """weekly slots equal rrule WEEKLY with wkst=MO (weeks start on Monday)."""
    names = ", ".join(WEEKDAYS[d] for d in days)
    schedule = (
        f"recurrence_type: weekly\nrecurrence_config: {{interval: {interval}, days: [{names}], times: {times_yaml(times)}}}\n"
        f"start_date: {start}\nexecution_timezone: {zone}"
    )
    oracle = oracle_rule(
        rrule.WEEKLY, start, times, interval=interval, byweekday=[RRULE_DAYS[d] for d in days], wkst=rrule.MO
    )
    check(schedule, zone, start, oracle)


@SETTINGS
@given(
    zone=st.sampled_from(ZONES),
    start=start_st,
    times=times_st,
    interval=st.integers(1, 3),
    by=st.one_of(
        st.integers(1, 31).map(lambda d: ("day", d)),
        st.integers(-31, -1).map(lambda d: ("day", d)),
        st.tuples(st.integers(0, 6), st.sampled_from([1, 2, 3, 4, 5, -1])).map(lambda t: ("weekday", t)),
    ),
)
def test_monthly_matches_rrule(
    zone: str, start: date, times: list[tuple[int, int]], interval: int, by: tuple[str, object]
) -> None:
    """monthly slots equal rrule MONTHLY (bymonthday / byweekday with an ordinal)."""
    kw: dict[str, object]
    if by[0] == "day":
        config, kw = f"day: {by[1]}", {"bymonthday": by[1]}
    else:
        pair = by[1]
        assert isinstance(pair, tuple)
        weekday, week = int(pair[0]), int(pair[1])
        config, kw = f"weekday: {WEEKDAYS[weekday]}, week: {week}", {"byweekday": RRULE_DAYS[weekday](week)}
    schedule = (
        f"recurrence_type: monthly\nrecurrence_config: {{interval: {interval}, {config}, times: {times_yaml(times)}}}\n"
        f"start_date: {start}\nexecution_timezone: {zone}"
    )
    check(schedule, zone, start, oracle_rule(rrule.MONTHLY, start, times, interval=interval, **kw))


MINUTES = ["0", "30", "*/15", "5,35", "0-10/5", "45"]
HOURS = ["9", "*/6", "8-17/3", "0,12", "2", "1-3"]
DOMS = ["*", "1", "15", "L", "1,15", "*/10", "10-20", "31"]
MONTHS = ["*", "1-6", "*/2", "JAN,JUL", "3", "OCT-DEC"]
DOWS = ["*", "MON-FRI", "1", "FRI#2", "5L", "SUN", "*/2", "SAT,SUN", "0-3"]


@SETTINGS
@given(
    zone=st.sampled_from(ZONES),
    start=start_st,
    fields=st.tuples(*(st.sampled_from(f) for f in (MINUTES, HOURS, DOMS, MONTHS, DOWS))),
)
def test_cron_matches_cronsim(zone: str, start: date, fields: tuple[str, ...]) -> None:
    """cron slots equal cronsim's on naive wall-clock time."""
    expression = " ".join(fields)
    try:
        parse_cron(expression)
    except CronError:
        assume(False)
    schedule = f'recurrence_type: cron\nrecurrence_config: {{expression: "{expression}"}}\nstart_date: {start}\nexecution_timezone: {zone}'
    end = datetime.combine(start + timedelta(days=SPAN), time(0))
    oracle = []
    for t in CronSim(expression, datetime.combine(start, time(0)) - timedelta(seconds=1)):
        if t >= end:
            break
        oracle.append(t)
    check(schedule, zone, start, oracle)
