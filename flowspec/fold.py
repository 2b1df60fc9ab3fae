"""Regular runs of occurrences folded into one line: "52 × MON 09:00, 2026-01-05 … 2026-12-28".

A diff of a weekly automation over a year lists 52 added occurrences; a reviewer reads them as
one fact. `fold_runs` finds few runs that describe a set exactly (each run claims every date of
its rhythm between its first and last item, no more), and leaves what fits no rhythm as single
items, so folding never hides an irregularity.
"""

from __future__ import annotations

import calendar
import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")
WEEKDAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONDAY = date(2001, 1, 1)  # a Monday: week numbers count from it
_DAY = timedelta(days=1)


@dataclass
class Run(Generic[T]):
    """Three or more items at one regular rhythm: one line instead of many."""

    items: list[T]
    pattern: str  # "daily 09:00", "MON/WED/FRI 14:00", "monthly day 15 09:00", "every 15m"
    first: datetime  # local wall time of the first and last item
    last: datetime
    intraday: bool = False  # a step under a day: the span needs times, the pattern has none

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def span(self) -> str:
        fmt = "%Y-%m-%d %H:%M" if self.intraday else "%Y-%m-%d"
        return f"{self.first.strftime(fmt)} … {self.last.strftime(fmt)}"


@dataclass(frozen=True, slots=True)
class _P(Generic[T]):
    """An item with its local wall time computed once (naive for arithmetic, aware for display)."""

    wall: datetime
    local: datetime
    item: T


Part = Run[T] | _P[T]


def fold_runs(items: Sequence[T], local: Callable[[T], datetime], *, min_run: int = 3) -> list[Run[T] | T]:
    """Group items (already alike in status and change) into regular runs, few lines first.

    `local(item)` gives the item's local wall time. Tried in turn, stopping at the first that
    gives a single run: one constant step over all items (every 15 minutes, daily, weekly); then
    per time of day a constant step in days, per-weekday runs merged across weekdays
    (MON/WED/FRI), and monthly runs (day 15, last day, 2nd TUE, last FRI). Otherwise the
    candidate with the fewest lines wins; what fits no run stays an item.
    """
    ps = sorted((_P(t.replace(tzinfo=None), t, i) for i in items for t in (local(i),)), key=lambda p: p.wall)
    if len(ps) < min_run:
        return [p.item for p in ps]
    best = _segments(ps, min_run)
    if len(best) > 1:
        by_time: dict[time, list[_P[T]]] = defaultdict(list)
        for p in ps:
            by_time[p.wall.time()].append(p)
        per_time: list[Part[T]] = []
        for group in by_time.values():
            per_time.extend(_best_daily(group, min_run))
        if len(per_time) < len(best):
            best = per_time
    best.sort(key=lambda x: x.first.replace(tzinfo=None) if isinstance(x, Run) else x.wall)
    return [x if isinstance(x, Run) else x.item for x in best]


def _run(ps: Sequence[_P[T]], pattern: str, intraday: bool = False) -> Run[T]:
    return Run([p.item for p in ps], pattern, ps[0].local, ps[-1].local, intraday)


def _bounds(ps: list[_P[T]], min_run: int) -> list[tuple[int, int]]:
    """Greedy maximal segments of one constant step in local wall time, as (first, last)
    indexes; a segment shorter than `min_run` is split into single items (first == last)."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(ps)
    while i < n:
        j = i + 1
        if j < n:
            step = ps[j].wall - ps[i].wall
            while j + 1 < n and ps[j + 1].wall - ps[j].wall == step:
                j += 1
        if j < n and j - i + 1 >= min_run:
            out.append((i, j))
            i = j + 1
        else:
            out.append((i, i))
            i += 1
    return out


def _segments(ps: list[_P[T]], min_run: int) -> list[Part[T]]:
    out: list[Part[T]] = []
    for i, j in _bounds(ps, min_run):
        if i == j:
            out.append(ps[i])
            continue
        step = ps[i + 1].wall - ps[i].wall
        out.append(_run(ps[i : j + 1], _step_pattern(step, ps[i].wall), bool(step % _DAY)))
    return out


def _step_pattern(step: timedelta, first: datetime) -> str:
    hhmm = first.strftime("%H:%M")
    if step % _DAY:
        from flowspec.timeparse import format_duration

        return f"every {format_duration(step)}"
    days = step.days
    if days == 1:
        return f"daily {hhmm}"
    if days % 7 == 0:
        every = "" if days == 7 else f"every {days // 7} weeks "
        return f"{every}{WEEKDAY_NAMES[first.weekday()]} {hhmm}"
    return f"every {days} days {hhmm}"


def _best_daily(group: list[_P[T]], min_run: int) -> list[Part[T]]:
    best = _segments(group, min_run)
    if len(best) <= 1:
        return best
    for candidate in (lambda: _weekday_runs(group, min_run), *(
        (lambda key=key: _month_runs(group, min_run, key)) for key in _MONTH_KEYS
    )):
        found = candidate()
        if len(found) < len(best):
            best = found
            if len(best) == 1:
                break
    return best


def _week(d: date) -> int:
    return (d - _MONDAY).days // 7


def weekday_label(days: Sequence[int]) -> str:
    """MON/WED/FRI; three or more consecutive days as a range: MON-FRI, MON-WED/FRI."""
    parts: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and days[j + 1] == days[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{WEEKDAY_NAMES[days[i]]}-{WEEKDAY_NAMES[days[j]]}")
        else:
            parts.extend(WEEKDAY_NAMES[d] for d in days[i : j + 1])
        i = j + 1
    return "/".join(parts)


@dataclass
class _Seg(Generic[T]):
    ps: list[_P[T]]

    @property
    def first(self) -> date:
        return self.ps[0].wall.date()

    @property
    def last(self) -> date:
        return self.ps[-1].wall.date()

    @property
    def weekday(self) -> int:
        return self.ps[0].wall.weekday()

    @property
    def step(self) -> timedelta:
        return self.ps[1].wall - self.ps[0].wall


def _weekday_runs(group: list[_P[T]], min_run: int) -> list[Part[T]]:
    """Per weekday, constant-step segments; then segments of one step whose weekdays together
    form "every MON/WED/FRI between first and last" merge into one run."""
    per_day: dict[int, list[_P[T]]] = defaultdict(list)
    for p in group:
        per_day[p.wall.weekday()].append(p)
    segments: list[_Seg[T]] = []
    singles: list[Part[T]] = []
    for ps in per_day.values():
        for i, j in _bounds(ps, 2):
            if i == j:
                singles.append(ps[i])
            else:
                segments.append(_Seg(ps[i : j + 1]))
    groups: list[list[_Seg[T]]] = []
    for seg in sorted(segments, key=lambda s: (s.first, s.weekday)):
        for g in groups:
            if _can_merge(g, seg):
                g.append(seg)
                break
        else:
            groups.append([seg])
    out: list[Part[T]] = list(singles)
    for g in groups:
        ps = sorted((p for s in g for p in s.ps), key=lambda p: p.wall)
        if len(ps) < min_run:
            out.extend(ps)
            continue
        weeks = g[0].step.days // 7
        every = "" if weeks == 1 else f"every {weeks} weeks "
        days = weekday_label(sorted({s.weekday for s in g}))
        out.append(_run(ps, f"{every}{days} {ps[0].wall:%H:%M}"))
    return out


def _can_merge(group: list[_Seg[T]], seg: _Seg[T]) -> bool:
    step = seg.step
    if step.days % 7 or step % _DAY or any(s.step != step for s in group):
        return False
    if any(s.weekday == seg.weekday for s in group):
        return False
    k = step.days // 7
    members = [*group, seg]
    phase = _week(members[0].first) % k
    if any(_week(s.first) % k != phase for s in members):
        return False
    lo = min(s.first for s in members)
    hi = max(s.last for s in members)
    # Merged, the run claims every listed weekday in phase between lo and hi: check each
    # weekday's segment starts and ends exactly where that claim says.
    for s in members:
        wd = s.weekday
        first = lo + timedelta(days=(wd - lo.weekday()) % 7)
        while _week(first) % k != phase:
            first += timedelta(days=7)
        last = hi - timedelta(days=(hi.weekday() - wd) % 7)
        while _week(last) % k != phase:
            last -= timedelta(days=7)
        if s.first != first or s.last != last:
            return False
    return True


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _month_len(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _key_day(d: date) -> str:
    return f"day {d.day}"


def _key_last_day(d: date) -> str | None:
    back = _month_len(d) - d.day
    return "last day" if back == 0 else f"{back + 1}th-last day" if back < 3 else None


def _key_nth(d: date) -> str | None:
    nth = (d.day - 1) // 7 + 1
    return f"{('1st', '2nd', '3rd', '4th', '5th')[nth - 1]} {WEEKDAY_NAMES[d.weekday()]}"


def _key_last_weekday(d: date) -> str | None:
    return f"last {WEEKDAY_NAMES[d.weekday()]}" if d.day + 7 > _month_len(d) else None


_MONTH_KEYS: list[Callable[[date], str | None]] = [_key_day, _key_last_day, _key_nth, _key_last_weekday]


@functools.lru_cache(maxsize=4096)
def _month_has(month: int, key: Callable[[date], str | None], k: str) -> bool:
    year, m = divmod(month, 12)
    return any(key(date(year, m + 1, d)) == k for d in range(1, calendar.monthrange(year, m + 1)[1] + 1))


def _month_steps(months: list[int], key: Callable[[date], str | None], k: str) -> list[int]:
    """Months from each item to the next, counting only months that have day `k`."""
    return [
        sum(1 for m in range(a + 1, b + 1) if _month_has(m, key, k)) for a, b in zip(months, months[1:], strict=False)
    ]


def _month_runs(group: list[_P[T]], min_run: int, key: Callable[[date], str | None]) -> list[Part[T]]:
    """Runs on one day of the month. Months without that day (31, 5th FRI) do not break a run,
    as they do not break the schedule (RFC 5545): the step counts only months that have it."""
    by_key: dict[str, list[_P[T]]] = defaultdict(list)
    out: list[Part[T]] = []
    for p in group:
        k = key(p.wall.date())
        if k is None:
            out.append(p)
        else:
            by_key[k].append(p)
    for k, ps in by_key.items():
        if len(ps) < min_run:
            out.extend(ps)
            continue
        steps = _month_steps([_month_index(p.wall.date()) for p in ps], key, k)
        i, n = 0, len(ps)
        while i < n:
            j = i + 1
            s = steps[i] if j < n else 0
            while j + 1 < n and s > 0 and steps[j] == s:
                j += 1
            if j < n and s > 0 and j - i + 1 >= min_run:
                seg = ps[i : j + 1]
                every = "monthly" if s == 1 else f"every {s} months"
                out.append(_run(seg, f"{every} {k} {seg[0].wall:%H:%M}"))
                i = j + 1
            else:
                out.append(ps[i])
                i += 1
    return out
