"""Regular runs of occurrences folded into one line: "52 × MON 09:00, 2026-01-05 … 2026-12-28".

A diff of a weekly automation over a year lists 52 added occurrences; a reviewer reads them as
one fact. `fold_runs` finds the fewest runs that describe a set exactly (each run claims every
date of its rhythm between its first and last item, no more), and leaves what fits no rhythm as
single items, so folding never hides an irregularity.
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


def fold_runs(items: Sequence[T], local: Callable[[T], datetime], *, min_run: int = 3) -> list[Run[T] | T]:
    """Group items (already alike in status and change) into regular runs, fewest lines first.

    `local(item)` gives the item's local wall time. Tried in turn: one constant step over all
    items (every 15 minutes, daily, weekly); and per time of day: a constant step in days,
    per-weekday runs merged across weekdays (MON/WED/FRI), and monthly runs (day 15, last day,
    2nd TUE, last FRI). The candidate with the fewest lines wins; what fits no run stays an item.
    """
    ordered = sorted(items, key=lambda i: local(i).replace(tzinfo=None))
    if len(ordered) < min_run:
        return list(ordered)
    whole = _segments(ordered, local, min_run)
    by_time: dict[time, list[T]] = defaultdict(list)
    for item in ordered:
        by_time[local(item).time()].append(item)
    per_time: list[Run[T] | T] = []
    for group in by_time.values():
        per_time.extend(_best_daily(group, local, min_run))
    best = min((whole, per_time), key=len)
    return sorted(best, key=lambda x: (x.first if isinstance(x, Run) else local(x)).replace(tzinfo=None))


def _naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None)


def _segments(ordered: list[T], local: Callable[[T], datetime], min_run: int) -> list[Run[T] | T]:
    """Greedy maximal segments of one constant step in local wall time."""
    out: list[Run[T] | T] = []
    i, n = 0, len(ordered)
    while i < n:
        j = i + 1
        if j < n:
            step = _naive(local(ordered[j])) - _naive(local(ordered[i]))
            while j + 1 < n and _naive(local(ordered[j + 1])) - _naive(local(ordered[j])) == step:
                j += 1
        if j - i + 1 >= min_run and j < n:
            seg = ordered[i : j + 1]
            intraday = bool(step % timedelta(days=1))
            out.append(Run(seg, _step_pattern(step, local(seg[0])), local(seg[0]), local(seg[-1]), intraday))
            i = j + 1
        else:
            out.append(ordered[i])
            i += 1
    return out


def _step_pattern(step: timedelta, first: datetime) -> str:
    hhmm = first.strftime("%H:%M")
    if step % timedelta(days=1):
        from flowspec.timeparse import format_duration

        return f"every {format_duration(step)}"
    days = step.days
    if days == 1:
        return f"daily {hhmm}"
    if days % 7 == 0:
        every = "" if days == 7 else f"every {days // 7} weeks "
        return f"{every}{WEEKDAY_NAMES[first.weekday()]} {hhmm}"
    return f"every {days} days {hhmm}"


def _best_daily(group: list[T], local: Callable[[T], datetime], min_run: int) -> list[Run[T] | T]:
    candidates = [_segments(group, local, min_run), _weekday_runs(group, local, min_run)]
    for key in _MONTH_KEYS:
        candidates.append(_month_runs(group, local, min_run, key))
    return min(candidates, key=len)


def _week(d: date) -> int:
    return (d - _MONDAY).days // 7


def _weekday_runs(group: list[T], local: Callable[[T], datetime], min_run: int) -> list[Run[T] | T]:
    """Per weekday, constant-step segments; then segments of one step whose weekdays together
    form "every MON/WED/FRI between first and last" merge into one run."""
    per_day: dict[int, list[T]] = defaultdict(list)
    for item in group:
        per_day[local(item).weekday()].append(item)
    segments: list[Run[T]] = []
    singles: list[Run[T] | T] = []
    for items in per_day.values():
        for part in _segments(items, local, 2):
            if isinstance(part, Run) and part.count >= 2:
                segments.append(part)
            else:
                singles.append(part)
    groups: list[list[Run[T]]] = []
    for seg in sorted(segments, key=lambda s: (s.first, s.first.weekday())):
        for g in groups:
            if _can_merge(g, seg, local):
                g.append(seg)
                break
        else:
            groups.append([seg])
    out: list[Run[T] | T] = list(singles)
    for g in groups:
        items = sorted((i for s in g for i in s.items), key=lambda i: _naive(local(i)))
        if len(items) < min_run:
            out.extend(items)
            continue
        step_weeks = _seg_step(g[0], local).days // 7
        days = weekday_label(sorted({s.first.weekday() for s in g}))
        every = "" if step_weeks == 1 else f"every {step_weeks} weeks "
        hhmm = local(items[0]).strftime("%H:%M")
        out.append(Run(items, f"{every}{days} {hhmm}", local(items[0]), local(items[-1])))
    return out


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


def _seg_step(seg: Run[T], local: Callable[[T], datetime]) -> timedelta:
    return _naive(local(seg.items[1])) - _naive(local(seg.items[0]))


def _can_merge(group: list[Run[T]], seg: Run[T], local: Callable[[T], datetime]) -> bool:
    step = _seg_step(seg, local)
    if step.days % 7 or step % timedelta(days=1) or any(_seg_step(s, local) != step for s in group):
        return False
    if any(s.first.weekday() == seg.first.weekday() for s in group):
        return False
    k = step.days // 7
    members = [*group, seg]
    phase = _week(members[0].first.date()) % k
    if any(_week(s.first.date()) % k != phase for s in members):
        return False
    lo = min(s.first.date() for s in members)
    hi = max(s.last.date() for s in members)
    # Merged, the run claims every listed weekday in phase between lo and hi: check each
    # weekday's segment starts and ends exactly where that claim says.
    for s in members:
        wd = s.first.weekday()
        first = lo + timedelta(days=(wd - lo.weekday()) % 7)
        while _week(first) % k != phase:
            first += timedelta(days=7)
        last = hi - timedelta(days=(hi.weekday() - wd) % 7)
        while _week(last) % k != phase:
            last -= timedelta(days=7)
        if s.first.date() != first or s.last.date() != last:
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


def _month_runs(
    group: list[T],
    local: Callable[[T], datetime],
    min_run: int,
    key: Callable[[date], str | None],
) -> list[Run[T] | T]:
    """Runs on one day of the month. Months without that day (31, 5th FRI) do not break a run,
    as they do not break the schedule (RFC 5545): the step counts only months that have it."""
    by_key: dict[str, list[T]] = defaultdict(list)
    out: list[Run[T] | T] = []
    for item in group:
        k = key(local(item).date())
        if k is None:
            out.append(item)
        else:
            by_key[k].append(item)
    for k, items in by_key.items():
        months = [_month_index(local(i).date()) for i in items]

        def step(a: int, b: int, k: str = k, months: list[int] = months) -> int:
            return sum(1 for m in range(months[a] + 1, months[b] + 1) if _month_has(m, key, k))

        i, n = 0, len(items)
        while i < n:
            j = i + 1
            s = step(i, j) if j < n else 0
            while j + 1 < n and s > 0 and step(j, j + 1) == s:
                j += 1
            if j < n and s > 0 and j - i + 1 >= min_run:
                seg = items[i : j + 1]
                every = "monthly" if s == 1 else f"every {s} months"
                hhmm = local(seg[0]).strftime("%H:%M")
                out.append(Run(list(seg), f"{every} {k} {hhmm}", local(seg[0]), local(seg[-1])))
                i = j + 1
            else:
                out.append(items[i])
                i += 1
    return out
