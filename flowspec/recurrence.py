"""Step 1 of the compiler: the candidate local wall-clock slots of a recurrence (SPEC 1.1).

Every recurrence type except `custom` is "these local dates × these times of day": daily,
weekly and monthly pick dates by interval and rule and take their times from `times`,
`start_time` or the datetime `start_date` (SPEC 1.3); cron picks dates by its day fields and
times by its minute and hour fields. So a `Recurrence` answers two questions — which dates in a
range, and which times — and the compiler does its per-day work (offset, day rules, key prefix)
once per date. Nothing here knows about time zones: slots are naive wall-clock times, resolved
to instants by `flowspec.tzresolve` (step 2).

Counting rules (SPEC 1.1):
- daily: every `interval` days counted from the anchor date (start_date's local date);
- weekly: weeks start on Monday; every `interval`-th week counted from the week holding the
  anchor date;
- monthly: every `interval` months from the anchor's month; a month without the day (31 in
  April, 29 in a common February, a fifth Friday) is skipped, as in RFC 5545; a negative day
  counts from the month's end (-1 is the last day).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flowspec.cron import CronExpr

__all__ = ["Recurrence", "monthly_day", "nth_weekday"]

_DAY = timedelta(days=1)
# Interval counting without start_date (allowed only where it cannot matter: interval 1):
# a Monday, so week counting is well defined too.
_EPOCH = date(1970, 1, 5)


def monthly_day(year: int, month: int, day: int) -> int | None:
    """The day of month `day` names (negative: from the end), or None if the month lacks it."""
    length = calendar.monthrange(year, month)[1]
    d = day if day > 0 else length + day + 1
    return d if 1 <= d <= length else None


def nth_weekday(year: int, month: int, weekday: int, week: int) -> int | None:
    """Day of month of the `week`-th `weekday` (0=MON) of a month; week -1 is the last one."""
    first_wd, length = calendar.monthrange(year, month)
    if week > 0:
        d = 1 + (weekday - first_wd) % 7 + (week - 1) * 7
        return d if d <= length else None
    last_wd = (first_wd + length - 1) % 7
    return length - (last_wd - weekday) % 7


@dataclass(frozen=True)
class Recurrence:
    """Which local dates a schedule fires on, and at which times of day (sorted)."""

    kind: str  # once | daily | weekly | monthly | cron
    times: tuple[time, ...]
    anchor: date | None = None  # start_date's local date
    interval: int = 1
    weekdays: frozenset[int] = frozenset()  # weekly: 0=MON..6=SUN
    day: int | None = None  # monthly by day
    weekday: int | None = None  # monthly by weekday + week
    week: int | None = None
    cron: CronExpr | None = field(default=None, compare=False)

    def days(self, lo: date, hi: date) -> Iterator[date]:
        """Matching local dates in [lo, hi), ascending."""
        if lo >= hi:
            return iter(())
        if self.kind == "once":
            return iter([self.anchor] if self.anchor is not None and lo <= self.anchor < hi else [])
        if self.kind == "daily":
            return self._daily(lo, hi)
        if self.kind == "weekly":
            return self._weekly(lo, hi)
        if self.kind == "monthly":
            return self._monthly(lo, hi)
        if self.kind == "cron":
            assert self.cron is not None
            return self.cron.days_between(lo, hi)
        raise ValueError(f"no date rule for recurrence type {self.kind!r}")

    def slots(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        """Candidate slots (naive local) in [lo, hi), ascending."""
        combine = datetime.combine
        for d in self.days(lo.date(), hi.date() + _DAY):
            for t in self.times:
                s = combine(d, t)
                if lo <= s < hi:
                    yield s

    # ------------------------------------------------------------------ per type

    def _daily(self, lo: date, hi: date) -> Iterator[date]:
        anchor = self.anchor or _EPOCH
        step = self.interval
        offset = (lo - anchor).days % step
        d = lo if offset == 0 else lo + timedelta(days=step - offset)
        delta = timedelta(days=step)
        while d < hi:
            yield d
            d += delta

    def _weekly(self, lo: date, hi: date) -> Iterator[date]:
        anchor = self.anchor or _EPOCH
        anchor_monday = anchor - timedelta(days=anchor.weekday())
        monday = lo - timedelta(days=lo.weekday())
        offsets = sorted(self.weekdays)
        week = timedelta(days=7)
        while monday < hi:
            if ((monday - anchor_monday).days // 7) % self.interval == 0:
                for wd in offsets:
                    d = monday + timedelta(days=wd)
                    if lo <= d < hi:
                        yield d
            monday += week

    def _monthly(self, lo: date, hi: date) -> Iterator[date]:
        anchor = self.anchor or _EPOCH
        anchor_index = anchor.year * 12 + anchor.month - 1
        index = lo.year * 12 + lo.month - 1
        last = hi.year * 12 + hi.month - 1
        while index <= last:
            if (index - anchor_index) % self.interval == 0:
                year, month0 = divmod(index, 12)
                month = month0 + 1
                if self.day is not None:
                    dom = monthly_day(year, month, self.day)
                else:
                    assert self.weekday is not None and self.week is not None
                    dom = nth_weekday(year, month, self.weekday, self.week)
                if dom is not None:
                    d = date(year, month, dom)
                    if lo <= d < hi:
                        yield d
            index += 1
