"""The execution window at send time (SPEC 6.7).

The compiler places an occurrence inside its window and off blocked days; a campaign that is
still sending when the window closes (or runs into a blackout, a weekend, a holiday) pauses and
resumes at the next allowed window opening. The window and day rules are the compiler's own
(`flowspec.compiler_prepare.prepare` builds them from the schedule: zone, window seconds,
blackout dates and ranges, weekend days, the holiday calendar; `flowspec.compiler.in_window` and
`DayRules.block` judge a time), so a plan and a running execution can never disagree about what
"inside the window" means. Openings are local times the engine derives, resolved like the
compiler's (`Zone.resolve_derived`: a gap shifts forward, an overlap takes the first instance).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flowspec import models
from flowspec.compiler import in_window
from flowspec.compiler_prepare import prepare
from flowspec.config import Entry
from flowspec.loader import Document

_DAY = timedelta(days=1)
# Ten years of blocked days: past that a schedule never opens again (the compiler's bound too).
_MAX_STEPS = 2 * 3660


class SendWindow:
    """When an automation may send: its window and day rules, from the compiler."""

    def __init__(self, automation: models.Automation, document: Mapping[str, Any]) -> None:
        entry = Entry(model=automation, doc=Document("<database>", 0, dict(document)))
        self._p = prepare(entry)
        self.constrained = self._p.zone is not None and (
            self._p.window is not None or not self._p.rules.empty
        )

    def opens_at(self, now: datetime) -> datetime | None:
        """None when sending is allowed at `now`; otherwise the next instant it is (UTC), or
        `datetime.max` (UTC) when no day in ten years is allowed."""
        if not self.constrained:
            return None
        p = self._p
        zone = p.zone
        assert zone is not None
        start = now.astimezone(UTC).replace(tzinfo=None)
        at = start
        for _ in range(_MAX_STEPS):
            local, _fold = zone.to_local(at)
            if p.window is not None and not in_window(p.window, local):
                at = self._next_opening(at, local)
                continue
            blocked = p.rules.block(local.date(), at)
            if blocked is None:
                return None if at == start else at.replace(tzinfo=UTC)
            ranges = [b.end for b in p.rules.blackouts if b.start <= at < b.end]
            if blocked[0] == "blackout" and ranges and local.date() not in p.rules.blackout_dates:
                at = max(ranges)  # a range may end mid-day: sending resumes right there
            else:
                at = zone.resolve_derived(datetime.combine(local.date() + _DAY, time(0))).at
        return datetime.max.replace(tzinfo=UTC)

    def _next_opening(self, at: datetime, local: datetime) -> datetime:
        """The first window opening after `local` (naive UTC): today's if it is still ahead,
        else tomorrow's (a fold can put today's first instance behind `at`)."""
        p = self._p
        assert p.zone is not None and p.window is not None
        t = local.hour * 3600 + local.minute * 60 + local.second
        day = local.date() if t < p.window[0] else local.date() + _DAY
        opening = p.zone.resolve_derived(datetime.combine(day, p.window_start)).at
        if opening <= at:
            opening = p.zone.resolve_derived(datetime.combine(day + _DAY, p.window_start)).at
        return opening

    def closes_at(self, now: datetime) -> datetime | None:
        """While sending is allowed at `now`: the next instant it stops being allowed (the
        window's end, a blocked day's midnight, a blackout range's start), None if never."""
        if not self.constrained:
            return None
        p = self._p
        zone = p.zone
        assert zone is not None
        at = now.astimezone(UTC).replace(tzinfo=None)
        local, _fold = zone.to_local(at)
        candidates: list[datetime] = []
        if p.window is not None:
            ws, we = p.window
            t = local.hour * 3600 + local.minute * 60 + local.second
            day = local.date() if ws < we or t < we else local.date() + _DAY
            end = time(we // 3600, we % 3600 // 60, we % 60)
            candidates.append(zone.resolve_derived(datetime.combine(day, end)).at)
        midnight = zone.resolve_derived(datetime.combine(local.date() + _DAY, time(0))).at
        if p.rules.block(local.date() + _DAY, midnight) is not None:
            candidates.append(midnight)
        candidates += [b.start for b in p.rules.blackouts if b.start > at]
        later = [c for c in candidates if c > at]
        return min(later).replace(tzinfo=UTC) if later else None
