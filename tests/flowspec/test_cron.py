"""flowspec.cron: the cron row of SPEC 1.1, matched against naive local wall-clock time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Literal

import pytest
from croniter import croniter
from cronsim import CronSim
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flowspec.cron import CronError, CronExpr, parse_cron

FAR = datetime(2100, 1, 1)
DayMatch = Literal["or", "and"]


def first(expr: str, start: datetime, n: int, day_match: DayMatch = "or") -> list[str]:
    """The first `n` firing minutes from `start`, as `YYYY-MM-DD HH:MM`."""
    got = islice(parse_cron(expr, day_match).iter_between(start, FAR), n)
    return [t.strftime("%Y-%m-%d %H:%M") for t in got]


# Hand-derived: 2025-11-20 is a Thursday; 2024 is a leap year, 2025 is not.
VALID: list[tuple[str, DayMatch, datetime, list[str]]] = [
    (
        "0 9 * * MON-FRI",
        "or",
        datetime(2025, 11, 20),
        ["2025-11-20 09:00", "2025-11-21 09:00", "2025-11-24 09:00"],
    ),
    ("0 0 L * *", "or", datetime(2025, 11, 20), ["2025-11-30 00:00", "2025-12-31 00:00"]),
    (
        "0 8 1,15,L 2 *",
        "or",
        datetime(2024, 2, 10),
        [
            "2024-02-15 08:00",
            "2024-02-29 08:00",
            "2025-02-01 08:00",
            "2025-02-15 08:00",
            "2025-02-28 08:00",
        ],
    ),
    ("0 0 L 2 *", "or", datetime(2025, 1, 1), ["2025-02-28 00:00", "2026-02-28 00:00"]),
    ("0 18 * * FRIL", "or", datetime(2025, 11, 20), ["2025-11-28 18:00", "2025-12-26 18:00"]),
    ("0 18 * * 5L", "or", datetime(2025, 11, 29), ["2025-12-26 18:00", "2026-01-30 18:00"]),
    ("0 10 * * 5#2", "or", datetime(2025, 11, 20), ["2025-12-12 10:00", "2026-01-09 10:00"]),
    ("0 10 * * fri#2", "or", datetime(2025, 11, 14), ["2025-11-14 10:00", "2025-12-12 10:00"]),
    # Fifth Fridays exist only in some months: Jan, May, Jul, Oct in 2026.
    (
        "0 0 * * FRI#5",
        "or",
        datetime(2025, 11, 20),
        ["2026-01-30 00:00", "2026-05-29 00:00", "2026-07-31 00:00", "2026-10-30 00:00"],
    ),
    ("@daily", "or", datetime(2025, 11, 20, 0, 1), ["2025-11-21 00:00", "2025-11-22 00:00"]),
    ("@midnight", "or", datetime(2025, 11, 20), ["2025-11-20 00:00", "2025-11-21 00:00"]),
    ("@hourly", "or", datetime(2025, 11, 20, 9, 30), ["2025-11-20 10:00", "2025-11-20 11:00"]),
    ("@weekly", "or", datetime(2025, 11, 20), ["2025-11-23 00:00", "2025-11-30 00:00"]),
    ("@monthly", "or", datetime(2025, 11, 20), ["2025-12-01 00:00", "2026-01-01 00:00"]),
    ("@yearly", "or", datetime(2025, 11, 20), ["2026-01-01 00:00", "2027-01-01 00:00"]),
    ("@ANNUALLY", "or", datetime(2025, 11, 20), ["2026-01-01 00:00"]),
    ("0 0 * * 7", "or", datetime(2025, 11, 20), ["2025-11-23 00:00", "2025-11-30 00:00"]),
    ("0 0 * * 0", "or", datetime(2025, 11, 20), ["2025-11-23 00:00", "2025-11-30 00:00"]),
    (
        "5/20 9 * * *",
        "or",
        datetime(2025, 11, 20),
        ["2025-11-20 09:05", "2025-11-20 09:25", "2025-11-20 09:45", "2025-11-21 09:05"],
    ),
    (
        "0 20/2 * * *",
        "or",
        datetime(2025, 11, 20),
        ["2025-11-20 20:00", "2025-11-20 22:00", "2025-11-21 20:00"],
    ),
    # `1/2` in day-of-week runs to 7, so Sunday is in it (Vixie, cronsim).
    (
        "0 0 * * 1/2",
        "or",
        datetime(2025, 11, 20),
        ["2025-11-21 00:00", "2025-11-23 00:00", "2025-11-24 00:00"],
    ),
    # `*/2` starts with `*`: it counts as unrestricted, so both day fields must match.
    (
        "0 0 */2 * MON",
        "or",
        datetime(2025, 11, 20),
        ["2025-12-01 00:00", "2025-12-15 00:00", "2025-12-29 00:00", "2026-01-05 00:00"],
    ),
    ("0 0 */2 * MON", "and", datetime(2025, 11, 20), ["2025-12-01 00:00", "2025-12-15 00:00"]),
    # Both restricted: OR by default (the 13th or any Friday), AND on request.
    (
        "0 0 13 * FRI",
        "or",
        datetime(2025, 11, 20),
        [
            "2025-11-21 00:00",
            "2025-11-28 00:00",
            "2025-12-05 00:00",
            "2025-12-12 00:00",
            "2025-12-13 00:00",
        ],
    ),
    ("0 0 13 * FRI", "and", datetime(2025, 11, 20), ["2026-02-13 00:00", "2026-03-13 00:00"]),
    ("0 0 1-7 * MON", "and", datetime(2025, 11, 20), ["2025-12-01 00:00", "2026-01-05 00:00"]),
    ("0 9 29 2 *", "or", datetime(2025, 1, 1), ["2028-02-29 09:00", "2032-02-29 09:00"]),
    # A fifth Monday in February needs a leap year whose Feb 29 is a Monday.
    ("0 0 * 2 MON#5", "or", datetime(2025, 1, 1), ["2044-02-29 00:00", "2072-02-29 00:00"]),
    (
        "0 0 * * FRI-SUN",
        "or",
        datetime(2025, 11, 20),
        ["2025-11-21 00:00", "2025-11-22 00:00", "2025-11-23 00:00", "2025-11-28 00:00"],
    ),
    ("0 0 * * SUN-SUN", "or", datetime(2025, 11, 20), ["2025-11-23 00:00", "2025-11-30 00:00"]),
    (
        "30 6 1 jan-mar,Dec *",
        "or",
        datetime(2025, 11, 20),
        ["2025-12-01 06:30", "2026-01-01 06:30", "2026-02-01 06:30"],
    ),
    ("\t0  9\t* *   1 ", "or", datetime(2025, 11, 20), ["2025-11-24 09:00"]),
    ("0 12 * * SAT,sun", "or", datetime(2025, 11, 20), ["2025-11-22 12:00", "2025-11-23 12:00"]),
    # One-value ranges are that value (croniter reads `5-5` as every minute, cronsim
    # `5-5/2` as `5/2`).
    ("5-5 9 * * *", "or", datetime(2025, 11, 20), ["2025-11-20 09:05", "2025-11-21 09:05"]),
    ("5-5/2 9 * * *", "or", datetime(2025, 11, 20), ["2025-11-20 09:05", "2025-11-21 09:05"]),
    ("0 0 * * 1-1/1", "or", datetime(2025, 11, 20), ["2025-11-24 00:00", "2025-12-01 00:00"]),
    (
        "0-2 0 1 1 *",
        "or",
        datetime(2026, 1, 1),
        ["2026-01-01 00:00", "2026-01-01 00:01", "2026-01-01 00:02", "2027-01-01 00:00"],
    ),
]


@pytest.mark.parametrize(("expr", "day_match", "start", "expected"), VALID)
def test_valid_expressions_fire_at_hand_derived_times(
    expr: str, day_match: DayMatch, start: datetime, expected: list[str]
) -> None:
    """Each valid expression yields exactly the hand-derived first firing minutes."""
    assert first(expr, start, len(expected), day_match) == expected


INVALID: list[tuple[str, str, int]] = [
    ("0 0 * * FRI-MON", "write FRI-SAT,SUN-MON or 5-6,0-1", 8),
    ("10-5 * * * *", "minute range 10-5 wraps around; write 10-59,0-5", 0),
    ("0 0 * NOV-FEB *", "write NOV-DEC,JAN-FEB or 11-12,1-2", 6),
    ("0 0 30 2 *", "never matches: February has no 30th", 4),
    ("0 0 31 4,6,9,11 *", "April, June, September and November have no 31st", 4),
    ("0 0 31 2 *", "February has no 31st", 4),
    ("0 0 */10 2 MON#5", "never matches: no day in February has both", 4),
    ("0 0 * * * *", "seconds/year fields are not supported", 10),
    ("0 0 * *", "missing day-of-week", 7),
    ("0 0 LW * *", "`W` (nearest weekday) is not supported", 4),
    ("0 0 15W * *", "`W` (nearest weekday) is not supported", 6),
    ("0 0 ? * MON", "`?` is not supported: use `*`", 4),
    ("H * * * *", "`H` (hash) is not supported", 0),
    ("0 H(0-5) * * *", "`H` (hash) is not supported", 2),
    ("60 * * * *", "minute value 60 is out of range 0-59", 0),
    ("0 24 * * *", "hour value 24 is out of range 0-23", 2),
    ("0 0 0 * *", "day-of-month value 0 is out of range 1-31", 4),
    ("0 0 32 * *", "day-of-month value 32 is out of range 1-31", 4),
    ("0 0 * 13 *", "month value 13 is out of range 1-12", 6),
    ("0 0 * * 8", "day-of-week value 8 is out of range 0-7", 8),
    ("*/0 * * * *", "step must be at least 1", 2),
    ("*/90 * * * *", "step 90 is larger", 2),
    ("@reboot", "`@reboot` is not supported", 0),
    ("@fortnightly", "unknown alias", 0),
    ("@dayly", "did you mean `@daily`?", 0),
    ("@daily 5", "an alias stands alone", 7),
    ("", "empty cron expression", 0),
    ("   ", "empty cron expression", 0),
    ("0 0 * * L", "`L` in day-of-week follows a day", 8),
    ("0 0 15L * *", "`L` in day-of-month stands alone", 6),
    ("0 0 L-2 * *", "`L` in day-of-month stands alone", 5),
    ("0 L * * *", "`L` is only allowed in day-of-month and day-of-week", 2),
    ("0 0 * * 5#6", "`#` must be followed by 1-5", 10),
    ("0 0 1#2 * *", "`#` is only allowed in day-of-week", 5),
    ("0 0 * * MON-FRI#2", "applies to a single day", 15),
    ("0 0 * MON *", "unknown month name `MON`", 6),
    ("0 0 * * THUR", "did you mean `THU`?", 8),
    ("JAN * * * *", "minute takes numbers 0-59, not `JAN` (`JAN` is a month name)", 0),
    ("0 0 1,,2 * *", "empty item in list", 6),
    ("0 0 1, * *", "empty item in list", 5),
    ("0 0 1- * *", "expected a number 1-31, found nothing", 6),
    ("0 0 1/ * *", "`/` must be followed by a step number", 6),
    ("0 0 1 % *", "unexpected character", 6),
]


@pytest.mark.parametrize(("expr", "fragment", "position"), INVALID)
def test_invalid_expressions_raise_with_message_and_position(
    expr: str, fragment: str, position: int
) -> None:
    """Each invalid expression raises CronError naming the fix, at the offending offset."""
    with pytest.raises(CronError) as info:
        parse_cron(expr)
    assert fragment in info.value.message
    assert info.value.position == position
    assert str(info.value) == info.value.message


def test_cron_error_is_a_value_error() -> None:
    """CronError is a ValueError, so generic validation code can catch it."""
    with pytest.raises(ValueError, match="never matches"):
        parse_cron("0 0 30 2 *")


def test_never_matching_with_and_is_an_error_but_or_is_not() -> None:
    """Day fields that cannot coincide are an error only when both must match."""
    assert first("0 0 1-7 * MON#2", datetime(2025, 11, 20), 2) == [
        "2025-12-01 00:00",
        "2025-12-02 00:00",
    ]
    with pytest.raises(CronError, match="never matches: no day in any month"):
        parse_cron("0 0 1-7 * MON#2", "and")


def test_rare_but_possible_days_are_accepted() -> None:
    """Feb 29, a fifth weekday of February and the 31st of some months parse, and the days
    they name really occur (hand-checked first dates from 2016)."""
    first = {
        ("0 0 29 2 *", "or"): date(2016, 2, 29),
        ("0 0 * 2 SUN#5", "or"): date(2032, 2, 29),  # the next February with five Sundays
        ("0 0 31 2,3 *", "or"): date(2016, 3, 31),
        ("0 0 L 2 *", "or"): date(2016, 2, 29),
        ("0 0 29 2 MON", "and"): date(2016, 2, 29),  # Feb 29 on a Monday: 2016, 2044
    }
    for (expr, match), expected in first.items():
        days = parse_cron(expr, match).days_between(date(2016, 1, 1), date(2050, 1, 1))
        assert next(iter(days)) == expected, expr


def test_invalid_day_match_is_rejected() -> None:
    """day_match other than `or`/`and` is an error, not a silent default."""
    with pytest.raises(CronError, match="day_match"):
        parse_cron("0 0 * * *", "xor")


def test_expr_keeps_the_written_expression_and_compares_by_it() -> None:
    """CronExpr records the expression as written and is hashable and comparable by value."""
    a, b = parse_cron("0 9 * * mon"), CronExpr("0 9 * * mon")
    assert a == b and hash(a) == hash(b) and a.expression == "0 9 * * mon"
    assert a != parse_cron("0 9 * * mon", "and")
    assert repr(a) == "CronExpr(expression='0 9 * * mon', day_match='or')"


def test_matches_is_minute_precise() -> None:
    """matches is True only on a firing minute with zero seconds and microseconds."""
    c = parse_cron("30 9 * * *")
    assert c.matches(datetime(2025, 11, 20, 9, 30))
    assert not c.matches(datetime(2025, 11, 20, 9, 30, 1))
    assert not c.matches(datetime(2025, 11, 20, 9, 30, 0, 1))
    assert not c.matches(datetime(2025, 11, 20, 9, 31))


def test_aware_datetimes_are_refused() -> None:
    """The engine is wall-clock only: an aware datetime is a caller bug."""

    c = parse_cron("0 9 * * *")
    with pytest.raises(ValueError, match="naive"):
        c.matches(datetime(2025, 11, 20, 9, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        list(c.iter_between(datetime(2025, 1, 1, tzinfo=UTC), FAR))


def test_iter_between_bounds_are_half_open() -> None:
    """start is inclusive (rounded up to a whole minute), end is exclusive."""
    c = parse_cron("*/15 9 * * *")
    day = datetime(2025, 11, 20)
    got = list(c.iter_between(day.replace(hour=9), day.replace(hour=9, minute=45)))
    assert [t.minute for t in got] == [0, 15, 30]
    got = list(c.iter_between(day.replace(hour=9, second=1), day.replace(hour=9, minute=46)))
    assert [t.minute for t in got] == [15, 30, 45]
    assert list(c.iter_between(day.replace(hour=10), day.replace(hour=9))) == []


def test_sparse_expression_over_a_century() -> None:
    """`0 9 29 2 *` over a century gives exactly the 25 leap days (2000 is leap, 2100 is not)."""
    c = parse_cron("0 9 29 2 *")
    got = list(c.iter_between(datetime(2000, 1, 1), datetime(2100, 1, 1)))
    assert len(got) == 25 and all(t.month == 2 and t.day == 29 and t.hour == 9 for t in got)


def test_days_between_and_times() -> None:
    """days_between lists matching dates in [start, end); times lists the firing times of day."""
    c = parse_cron("0,30 9 * * MON,WED")
    assert list(c.days_between(date(2025, 11, 20), date(2025, 12, 1))) == [
        date(2025, 11, 24),
        date(2025, 11, 26),
    ]
    assert [t.isoformat() for t in c.times] == ["09:00:00", "09:30:00"]
    assert list(c.days_between(date(2025, 12, 1), date(2025, 12, 1))) == []


def test_every_month_shape_occurs_in_the_gregorian_cycle() -> None:
    """The never-matches check relies on every (month, length, weekday of the 1st) occurring."""
    seen = set()
    for year in range(2000, 2400):
        for month in range(1, 13):
            first_day = date(year, month, 1)
            length = ((first_day + timedelta(days=31)).replace(day=1) - first_day).days
            seen.add((month, length, first_day.weekday()))
    assert len(seen) == 11 * 7 + 2 * 7


# ---------------------------------------------------------------------------------------------
# Differential tests against independent implementations, on naive datetimes (no DST involved).

NAMES = {
    3: ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    4: ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
}
BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
SPAN = [60, 24, 31, 12, 7]


@st.composite
def cron_item(
    draw: st.DrawFn, index: int, names: bool = True, dow_steps: bool = True, single: bool = False
) -> str:
    """One list item of field `index`: `*`, `*/s`, `a`, `a-b`, `a-b/s` or `a/s`.

    `single` allows one-value ranges (`5-5`, `5-5/2`): the oracles misread them (croniter takes
    `5-5` as the whole field, cronsim `5-5/2` as `5/2`), so only our own properties use them.
    """
    lo, hi = BOUNDS[index]
    step = st.integers(1, SPAN[index])

    def show(v: int, range_end: bool = False) -> str:
        # A range closing on the name SUN is our extension (cronsim reads SUN as 0 there).
        if names and index in NAMES and draw(st.booleans()):
            value = v % 7 if index == 4 else v - 1
            if not (range_end and index == 4 and value == 0):
                return NAMES[index][value].lower() if draw(st.booleans()) else NAMES[index][value]
        return str(v)

    kind = draw(st.sampled_from(["*", "*/s", "a", "a-b", "a-b/s", "a/s"]))
    if index == 4 and not dow_steps and kind in ("a/s",):
        kind = "a"
    if kind == "*":
        return "*"
    if kind == "*/s":
        return f"*/{draw(step)}"
    a = draw(st.integers(lo, hi))
    if kind == "a":
        return show(a)
    if kind == "a/s":
        return f"{show(a)}/{draw(step)}"
    if a == hi and not single:
        return show(a)
    b = draw(st.integers(a if single else a + 1, hi))
    text = f"{show(a)}-{show(b, range_end=True)}"
    return text if kind == "a-b" else f"{text}/{draw(step)}"


@st.composite
def cron_field(draw: st.DrawFn, index: int, **kw: bool) -> str:
    return ",".join(draw(st.lists(cron_item(index, **kw), min_size=1, max_size=3)))


@st.composite
def cron_expr(draw: st.DrawFn, **kw: bool) -> str:
    fields = [draw(cron_field(i, **kw)) for i in range(5)]
    return " ".join(fields)


@st.composite
def window(draw: st.DrawFn, max_minutes: int) -> tuple[datetime, datetime]:
    start = draw(st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1))).replace(
        second=0, microsecond=0
    )
    # Mix short windows (the end bound cuts a day) with long ones (sparse expressions fire).
    length = draw(st.integers(1, 60 * 24 * 3) | st.integers(1, max_minutes))
    return start, start + timedelta(minutes=length)


def parsed_or_skip(expr: str, day_match: DayMatch = "or") -> CronExpr:
    try:
        return parse_cron(expr, day_match)
    except CronError as err:
        # Random fields may name days no month has (`31 2`); that rejection is tested above.
        assert "never matches" in err.message, (expr, err.message)
        assume(False)
        raise


def cronsim_between(expr: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    out: list[datetime] = []
    # CronSim steps one second before matching, so start one second early to include `start`.
    for t in CronSim(expr, start - timedelta(seconds=1)):
        if t >= end or len(out) >= limit:
            break
        out.append(t)
    return out


LIMIT = 200
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(expr=cron_expr(), win=window(60 * 24 * 400))
def test_sequences_equal_cronsim(expr: str, win: tuple[datetime, datetime]) -> None:
    """Random expressions fire at exactly the minutes cronsim (Vixie day semantics) gives."""
    start, end = win
    ours = list(islice(parsed_or_skip(expr).iter_between(start, end), LIMIT))
    assert ours == cronsim_between(expr, start, end, LIMIT)


@st.composite
def day_item(draw: st.DrawFn, index: int, single: bool = False) -> str:
    """A day-field item that may use `L` (day-of-month) or `nL` / `n#k` (day-of-week)."""
    if index == 2 and draw(st.integers(0, 3)) == 0:
        return "L"
    if index == 4:
        special = draw(st.integers(0, 4))
        if special == 0:
            return f"{draw(st.integers(0, 7))}L"
        if special == 1:
            return f"{draw(st.integers(0, 7))}#{draw(st.integers(1, 5))}"
    return draw(cron_item(index, names=False, single=single))


@st.composite
def day_fields(draw: st.DrawFn, single: bool = False) -> tuple[str, str, str]:
    dom = ",".join(draw(st.lists(day_item(2, single), min_size=1, max_size=3)))
    month = draw(cron_field(3, single=single))
    dow = ",".join(draw(st.lists(day_item(4, single), min_size=1, max_size=3)))
    return dom, month, dow


def cronsim_days(expr: str, start: date, end: date) -> list[date]:
    at = datetime.combine(start, datetime.min.time())
    until = datetime.combine(end, datetime.min.time())
    return [t.date() for t in cronsim_between(expr, at, until, 10_000)]


DAY_WINDOW = st.dates(date(1990, 1, 1), date(2060, 1, 1))


@FAST
@given(fields=day_fields(), start=DAY_WINDOW, length=st.integers(1, 400))
def test_day_fields_with_l_and_nth_equal_cronsim(
    fields: tuple[str, str, str], start: date, length: int
) -> None:
    """With `L`, `nL` and `n#k`, matching days equal cronsim's (day_match `or`)."""
    dom, month, dow = fields
    expr = f"0 0 {dom} {month} {dow}"
    end = start + timedelta(days=length)
    ours = list(parsed_or_skip(expr).days_between(start, end))
    assert ours == cronsim_days(expr, start, end)


@FAST
@given(fields=day_fields(), start=DAY_WINDOW, length=st.integers(1, 400))
def test_day_match_and_is_the_intersection_of_both_fields(
    fields: tuple[str, str, str], start: date, length: int
) -> None:
    """day_match `and` gives the days cronsim gives for each day field alone, intersected."""
    dom, month, dow = fields
    end = start + timedelta(days=length)
    ours = list(parsed_or_skip(f"0 0 {dom} {month} {dow}", "and").days_between(start, end))
    by_dom = set(cronsim_days(f"0 0 {dom} {month} *", start, end))
    by_dow = set(cronsim_days(f"0 0 * {month} {dow}", start, end))
    assert ours == sorted(by_dom & by_dow)


@st.composite
def croniter_expr(draw: st.DrawFn) -> str:
    """Expressions where croniter agrees by design: at most one day field restricted."""
    fields = [draw(cron_field(i, dow_steps=False)) for i in range(5)]
    if draw(st.booleans()):
        fields[2] = "*"
    else:
        fields[4] = "*"
    return " ".join(fields)


def croniter_between(expr: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    it = croniter(expr, start - timedelta(seconds=1))
    out: list[datetime] = []
    while len(out) < limit:
        t = it.get_next(datetime)
        if t >= end:
            break
        out.append(t)
    return out


@FAST
@given(expr=croniter_expr(), win=window(60 * 24 * 400))
def test_sequences_equal_croniter_when_one_day_field_is_free(
    expr: str, win: tuple[datetime, datetime]
) -> None:
    """With at most one day field restricted, we fire exactly when croniter does."""
    start, end = win
    ours = list(islice(parsed_or_skip(expr).iter_between(start, end), LIMIT))
    assert ours == croniter_between(expr, start, end, LIMIT)


# ---------------------------------------------------------------------------------------------
# Self-consistency: iter_between, matches and days_between describe the same set of minutes.


@st.composite
def any_expr(draw: st.DrawFn) -> str:
    dom, month, dow = draw(day_fields(single=True))
    minute, hour = draw(cron_field(0, single=True)), draw(cron_field(1, single=True))
    return f"{minute} {hour} {dom} {month} {dow}"


@FAST
@given(
    expr=any_expr(),
    day_match=st.sampled_from(["or", "and"]),
    win=window(60 * 24 * 3),
)
def test_iter_between_is_exactly_the_matching_minutes(
    expr: str, day_match: DayMatch, win: tuple[datetime, datetime]
) -> None:
    """Every emitted minute matches, they ascend strictly, and no unemitted minute matches."""
    start, end = win
    c = parsed_or_skip(expr, day_match)
    emitted = list(c.iter_between(start, end))
    assert all(a < b for a, b in zip(emitted, emitted[1:], strict=False))
    assert all(start <= t < end and c.matches(t) for t in emitted)
    minutes = (end - start) // timedelta(minutes=1)
    every = (start + timedelta(minutes=i) for i in range(minutes))
    assert [t for t in every if c.matches(t)] == emitted
    days = set(c.days_between(start.date(), end.date() + timedelta(days=1)))
    assert {t.date() for t in emitted} <= days
