"""The compiler: automations → occurrence plan, in the order of SPEC section 3 steps 1–7.

Pure: the range is an argument, nothing reads a clock, the zone data and holiday calendar are
versioned packages recorded in the plan (`plan_inputs`).

How a range is compiled (`_compile_range`)
------------------------------------------
Steps 1–4 are a function of one slot alone: a slot's final time after DST resolution, window
deferral and day rules depends on nothing but the slot and the schedule. So a range
`[lo, hi)` is compiled from the slots that can *land* in it. Moves only go forward in time, so
slots at or after `hi` are never needed, and a slot before `lo` can land in range only through
a window deferral (at most to the next day) or a `next_allowed` move across a run of blocked
days: the lookback is that run (walked backwards from `lo`) plus two days. This is what makes
a plan for any range exact and cheap, and a plan for range A ∪ B the union of the plans for A and
B (a property test proves it).

Reschedules (step 5) are matched against the *whole* schedule (SPEC 3, "Precise rules"): each
reschedule's own range is compiled through step 4 the same way, once per automation, and the one
occurrence it matches is moved. A range then swaps in the moved occurrences it contains.

Parsing a schedule into the values these steps need is `flowspec.compiler_prepare`; the FS3xx
checks for `validate` are `flowspec.compiler_checks`. Decisions the spec leaves open are written
down in docs/decisions.md ("## Compiler").
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import operator
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

from flowspec import models, timeparse
from flowspec.calendars import holidays_version
from flowspec.compiler_prepare import (
    DAY,
    MAX_BLOCKED_DAYS,
    NO_OVERRIDES,
    ExceptionRule,
    Placed,
    Prepared,
    prepare,
    seconds_of_day,
)
from flowspec.config import Config, Entry
from flowspec.diagnostics import Diagnostic, error
from flowspec.plan import AutomationPlan, Dst, Inputs, MovedBy, Occurrence, Plan, Reason, Status
from flowspec.tzresolve import Resolution, tzdata_version

__all__ = ["compile_automation", "compile_plan", "compiler_diagnostics", "plan_inputs"]

_FIRST_CHUNK = timedelta(days=2)  # --count compiles growing chunks until it has enough


# =========================================================================== public API


def plan_inputs() -> Inputs:
    """The versions of the data that change what a schedule means (recorded in every plan)."""
    return Inputs(tzdata=tzdata_version(), holidays=holidays_version())


def compile_plan(
    config: Config,
    range_from: datetime,
    range_to: datetime,
    *,
    names: Collection[str] | None = None,
    count: int | None = None,
) -> Plan:
    """The plan of every automation over `[range_from, range_to)`.

    `automations` is a lazy iterator sorted by (organization, name): each automation is compiled
    when the consumer reaches it, so only one automation's occurrences are in memory at a time.
    `names` keeps automations whose `name` (or `organization/name`) is listed; `count` is as in
    `compile_automation`.
    """
    lo, hi = as_utc(range_from), as_utc(range_to)
    wanted = set(names) if names is not None else None
    entries = sorted(
        (
            e
            for e in config.automations
            if wanted is None or e.name in wanted or f"{e.organization}/{e.name}" in wanted
        ),
        key=lambda e: (e.organization, e.name),
    )

    def automations() -> Iterator[AutomationPlan]:
        for entry in entries:
            yield compile_automation(config, entry, lo, hi, count=count)

    return Plan(lo, hi, plan_inputs(), automations())


def compile_automation(
    config: Config,
    entry: Entry[models.Automation],
    range_from: datetime,
    range_to: datetime,
    *,
    count: int | None = None,
) -> AutomationPlan:
    """One automation's occurrences with `range_from <= at < range_to`, sorted by (at, key).

    With `count`, the list ends at the `count`-th occurrence whose status is not `skipped`
    (scheduled, paused or inactive); skipped occurrences before it are kept, so the plan still
    explains every slot up to there. An automation whose schedule cannot be compiled (an error
    that validate reports, such as an invalid cron expression) has no occurrences.
    """
    prepared = prepare(entry)
    lo, hi = as_utc(range_from), as_utc(range_to)
    occurrences: list[Occurrence] = []
    if prepared.usable and lo < hi:
        with _gc_paused():
            if count is None:
                occurrences = _compile_range(prepared, lo.replace(tzinfo=None), hi.replace(tzinfo=None))
            elif count > 0:
                occurrences = first_n(prepared, lo.replace(tzinfo=None), hi.replace(tzinfo=None), count)
        # The per-opening and per-day memos serve one compile; prepared schedules stay cached
        # (compiler_prepare), and with them these would hold every automation's, not one's.
        prepared.settled.clear()
        prepared.openings.clear()
    return AutomationPlan(
        organization=entry.organization,
        name=entry.name,
        source=entry.source,
        timezone=entry.model.spec.schedule.execution_timezone,
        occurrences=occurrences,
        spec_hash=config.automation_hash(entry),
    )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one automation compiles.

    A compile allocates an object per occurrence and creates no reference cycles, yet the
    collector keeps rescanning the growing list of live occurrences: measured, it took half
    of the compile time (benchmarks/bench_compile.py). Collection resumes, with nothing lost,
    when the automation is done.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def first_n(p: Prepared, lo: datetime, hi: datetime, count: int) -> list[Occurrence]:
    # Ranges compose exactly (module docstring), so growing chunks give the same answer as the
    # whole range while a dense schedule stops after a few days.
    out: list[Occurrence] = []
    seen = 0
    start, size = lo, _FIRST_CHUNK
    while start < hi:
        stop = min(hi, start + size)
        for o in _compile_range(p, start, stop):
            out.append(o)
            if o.status != "skipped":
                seen += 1
                if seen == count:
                    return out
        start, size = stop, size * 2
    return out


def as_utc(t: datetime) -> datetime:
    # Naive range bounds are UTC, as on the command line (SPEC 3).
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# =========================================================================== one range


def _compile_range(p: Prepared, lo: datetime, hi: datetime) -> list[Occurrence]:
    """Occurrences with lo <= at < hi (naive UTC bounds), sorted by (at, key)."""
    occurrences = steps_1_to_4(p, lo, hi)
    occurrences = step_5_reschedule(p, occurrences, lo, hi)
    times = [o.at for o in occurrences]
    # Usually already in order with no two at one instant: then nothing needs sorting or
    # merging, and the range is a slice. These checks run at C speed over the whole list.
    ties = not all(map(operator.lt, times, times[1:]))
    if ties:
        occurrences.sort(key=_ORDER)
        times = [o.at for o in occurrences]
    i, j = bisect.bisect_left(times, _aware_utc(lo)), bisect.bisect_left(times, _aware_utc(hi))
    if i or j < len(times):
        occurrences, times = occurrences[i:j], times[i:j]
    occurrences = _step_5_skip_and_modify(p, occurrences, times)
    if ties:
        occurrences = _step_6_merge(occurrences, times)
    return _step_7_status(p, occurrences)


_ORDER = operator.attrgetter("at", "key")
_combine = datetime.combine


# An Occurrence from its ten fields in order, at C speed (see Occurrence): the hot loops call
# `_tuple_new(Occurrence, (...))` inline, everything else `_new(...)`.
_tuple_new = tuple.__new__


def _new(
    key: str, status: Status, at: datetime, local: datetime, moved_from: datetime | None,
    moved_by: MovedBy | None, reason: Reason | None, detail: str | None,
    overrides: Mapping[str, Any], dst: Dst | None,
) -> Occurrence:
    return _tuple_new(Occurrence, (key, status, at, local, moved_from, moved_by, reason, detail, overrides, dst))


def _aware_utc(naive: datetime) -> datetime:
    # combine() rather than replace(tzinfo=...): keyword parsing makes replace several times
    # slower, and this runs once per occurrence.
    return _combine(naive.date(), naive.time(), UTC)


def _aware_local(p: Prepared, naive: datetime, fold: int) -> datetime:
    t = naive.time()
    return _combine(naive.date(), t.replace(fold=1) if fold else t, p.tzinfo)


# --------------------------------------------------------------------------- steps 1–4


def steps_1_to_4(p: Prepared, lo: datetime, hi: datetime) -> list[Occurrence]:
    """Steps 1–4 for every slot that can land in [lo, hi) (and some that land before it)."""
    zone = p.zone
    assert zone is not None
    first_day = zone.to_local(lo)[0].date() - timedelta(days=_lookback_days(p, lo))
    last_day = zone.to_local(hi)[0].date() + 2 * DAY  # exclusive
    if p.start_day is not None:
        first_day = max(first_day, p.start_day - DAY)
    if p.end_day is not None:
        last_day = min(last_day, p.end_day + 2 * DAY)
    start, end = p.start, p.end
    out: list[Occurrence] = []

    if p.custom is not None:
        for c in p.custom:
            if not first_day <= c.local.date() < last_day:
                continue
            if c.at is not None:
                # An absolute instant is not a DST decision: it needs no resolution (dst null).
                if (start is None or c.at >= start) and (end is None or c.at < end) and c.at < hi:
                    out.append(_place(p, c.key, c.at, c.local, c.fold, None))
                continue
            _resolve_slot(p, c.local, c.key, hi, out)
        return out

    rec = p.recurrence
    assert rec is not None
    if first_day >= last_day:
        return out
    # The hot loop. On a day without a DST transition every slot has the day's one offset; a
    # slot inside the window on a day no date rule blocks is final after step 4, so it becomes
    # an Occurrence directly. Everything else takes the general path (_resolve_slot / _place).
    rules, no_rules = p.rules, p.no_rules
    hi_at = _aware_utc(hi)
    start_at = _aware_utc(start) if start is not None else None
    end_at = _aware_utc(end) if end is not None else None
    tz = p.tzinfo
    # (time, key part, aware local time, time of day as a duration, deferral)
    slots = [(t, tkey, t.replace(tzinfo=tz), _since_midnight(t), _deferral(p, t)) for t, tkey in p.time_keys]
    prefix = p.prefix
    empty = NO_OVERRIDES
    combine = _combine
    new, occ = _tuple_new, Occurrence
    # Local days strictly inside the bounds need no per-slot bound checks: every wall time of
    # such a day lies between start_date's day and end_date's day, and before `hi`'s day.
    all_in_window = not any(slot[4] for slot in slots)
    early = [slot for slot in slots if slot[4] == 1]
    inside = [slot for slot in slots if not slot[4]]
    late = [slot for slot in slots if slot[4] == 2]
    skip_outside = p.skip_outside
    inner_lo = p.start_day or date.min
    inner_hi = min(p.end_day or date.max, zone.to_local(hi)[0].date())
    for d in rec.days(first_day, last_day):
        off = zone.day_offset(d)
        head = prefix + d.isoformat() + "T"
        if off is not None:
            utc0 = combine(d, _MIDNIGHT_UTC) - off  # the instant of this day's 00:00 local
        open_day = no_rules or rules.day_open(d)
        if off is not None and inner_lo < d < inner_hi:
            if open_day and all_in_window:
                out += [
                    new(occ, (head + tkey, "scheduled", utc0 + since, combine(d, t_local), None, None, None, None, empty, None))
                    for _, tkey, t_local, since, _ in slots
                ]
                continue
            # Deferred slots of one day share one of two openings (today's or tomorrow's),
            # and with it their whole outcome of steps 3-4: settled once per opening. Listed
            # in time order (before the window, inside it, after it), as the slots are.
            for group, opening_day in ((early, d), (inside, d), (late, d + DAY)):
                if group is inside:
                    if open_day:
                        out += [
                            new(occ, (head + tkey, "scheduled", utc0 + since, combine(d, t_local), None, None, None, None, empty, None))
                            for _, tkey, t_local, since, _ in inside
                        ]
                        continue
                    fate = _blocked_day_fate(p, d)
                    if fate is None:
                        out += [_place(p, head + tkey, utc0.replace(tzinfo=None) + since, combine(d, t), 0, None) for t, tkey, _, since, _ in inside]
                    elif isinstance(fate, _Moved):  # every slot moves to the same time on that day
                        utc1, day1 = fate.utc0, fate.day
                        out += [
                            new(occ, (head + tkey, "scheduled", utc1 + since, combine(day1, t_local), utc0 + since, "next_allowed", None, None, empty, None))
                            for _, tkey, t_local, since, _ in inside
                        ]
                    else:
                        why, why_detail = fate
                        out += [
                            new(occ, (head + tkey, "skipped", utc0 + since, combine(d, t_local), None, None, why, why_detail, empty, None))
                            for _, tkey, t_local, since, _ in inside
                        ]
                elif not group:
                    continue
                elif skip_outside:
                    wtext = window_text(p)
                    out += [
                        new(occ, (head + tkey, "skipped", utc0 + since, combine(d, t_local), None, None, "outside_window", wtext, empty, None))
                        for _, tkey, t_local, since, _ in group
                    ]
                else:
                    status, at_, local_, moved_by, reason, detail, dst_ = _deferred(p, _opening(p, opening_day))
                    out += [
                        new(occ, (head + tkey, status, at_, local_, utc0 + since, moved_by, reason, detail, empty, dst_))
                        for _, tkey, _, since, _ in group
                    ]
            continue
        for t, tkey, t_local, since, defer in slots:
            in_window = not defer
            if off is None:
                _resolve_slot(p, combine(d, t), head + tkey, hi, out)
                continue
            at = utc0 + since
            if at >= hi_at or (start_at is not None and at < start_at) or (end_at is not None and at >= end_at):
                continue
            if in_window and open_day:
                out.append(new(occ, (head + tkey, "scheduled", at, combine(d, t_local), None, None, None, None, empty, None)))
            else:
                n = combine(d, t)
                out.append(_place(p, head + tkey, n - off, n, 0, None))
    return out


_MIDNIGHT_UTC = time(0, tzinfo=UTC)


class _Moved(NamedTuple):
    day: date  # the local day next_allowed moves a blocked day's slots to
    utc0: datetime  # the instant of that day's 00:00 local (aware UTC)


def _blocked_day_fate(p: Prepared, d: date) -> tuple[Reason, str | None] | _Moved | None:
    """Step 4 for the in-window slots of a local day `d` that a date rule blocks, when it ends
    the same way for all of them: the (reason, detail) they are skipped with, or the day
    `next_allowed` moves them all to. None when it depends on the time of day (a blackout range
    touches a day involved, or a day involved has a DST transition): each slot then takes the
    general path. `d` itself must have no transition."""
    rules, zone = p.rules, p.zone
    assert zone is not None
    if rules.range_touches(d):
        return None
    blocked = rules.block_day(d)
    if blocked is None:
        return None
    if not p.next_allowed:
        return blocked
    day = d
    for _ in range(_FAST_NEXT_ALLOWED_DAYS):
        day += DAY
        off = zone.day_offset(day)
        if off is None:
            return None
        if rules.block_day(day) is None:
            # On or after end_date's day, some slots would pass the end: the general path.
            if rules.range_touches(day) or (p.end_day is not None and day >= p.end_day):
                return None
            return _Moved(day, _combine(day, _MIDNIGHT_UTC) - off)
    return None


# A run of blocked days longer than this (a long blackout) takes the general path.
_FAST_NEXT_ALLOWED_DAYS = 62


def _since_midnight(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _lookback_days(p: Prepared, lo: datetime) -> int:
    """Days before `lo` whose slots may still land at or after it (module docstring)."""
    days = 2  # a window deferral moves at most to the next day's opening
    if not p.next_allowed or p.no_rules:
        return days
    zone = p.zone
    assert zone is not None
    d = zone.to_local(lo)[0].date() - DAY
    floor = p.start_day - DAY if p.start_day is not None else date.min + DAY
    # A move crosses blocked days, and — when a DST shift pushes a time out of the window
    # again — days with a transition; both extend the run.
    while d > floor and days < MAX_BLOCKED_DAYS and (p.rules.may_block_day(d) or zone.has_transition_on(d)):
        days += 1
        d -= DAY
    return days


# step 2 ---------------------------------------------------------------------

_OVERLAP_DST: dict[str, Dst] = {"first": "overlap_first", "last": "overlap_last", "both": "overlap_both"}


def _resolve_slot(p: Prepared, slot: datetime, key: str, hi: datetime, out: list[Occurrence]) -> None:
    """Step 2 for a slot near a transition: DST policies, then steps 3–4 per instance."""
    zone = p.zone
    assert zone is not None
    s = p.schedule
    start, end = p.start, p.end
    for r in zone.resolve(slot, s.dst_gap, s.dst_overlap):
        if r.at >= hi or (start is not None and r.at < start) or (end is not None and r.at >= end):
            continue
        dst: Dst | None = None
        k = key
        if r.kind == "gap":
            if s.dst_gap == "skip":
                detail = f"{slot:%H:%M} does not exist on {slot:%Y-%m-%d} (clocks skip {_span(r.gap)})"
                out.append(
                    _occurrence(p, key, "skipped", r.at, r.local, 0, reason="dst_gap", detail=detail, dst="gap_skipped")
                )
                continue
            dst = "gap_shifted"
        elif r.kind == "fold":
            dst = _OVERLAP_DST[s.dst_overlap]
            if r.fold and s.dst_overlap == "both":
                k = key + "+fold"
        out.append(_place(p, k, r.at, r.local, r.fold, dst))


def _span(gap: timedelta) -> str:
    return timeparse.format_duration(gap)


def _derived_dst(r: Resolution) -> Dst | None:
    """`dst` of a time the compiler derived: a gap shifts forward, an overlap takes the first."""
    if r.kind == "gap":
        return "gap_shifted"
    if r.kind == "fold":
        return "overlap_first"
    return None


# steps 3 and 4 ------------------------------------------------------------------


def _place(
    p: Prepared, key: str, at: datetime, local: datetime, fold: int, dst: Dst | None
) -> Occurrence:
    """Steps 3–4 for one resolved slot (naive UTC `at`, naive wall time `local`)."""
    window = p.window
    if window is not None and not in_window(window, local):
        if p.skip_outside:
            return _occurrence(p, key, "skipped", at, local, fold, None, None, "outside_window", window_text(p), dst)
        # Every slot deferred to one opening ends the same way (steps 3–4 depend only on the
        # time reached), so the rest is settled once per opening: dense crons defer many.
        final = _deferred(p, _next_opening(p, at, local))
    elif p.no_rules:
        return _occurrence(p, key, "scheduled", at, local, fold, dst=dst)
    else:
        final = _settle(p, at, local, fold, dst, None)
    status, at_, local_, moved_by, reason, detail, dst_ = final
    moved_from = _aware_utc(at) if moved_by is not None else None
    return _new(key, status, at_, local_, moved_from, moved_by, reason, detail, NO_OVERRIDES, dst_)


def _deferral(p: Prepared, t: time) -> int:
    """For a time of day on a day without DST change: 0 inside the window, 1 deferred to the
    same day's opening, 2 to the next day's."""
    if p.window is None or in_window(p.window, t):
        return 0
    return 1 if seconds_of_day(t) < p.window[0] else 2


def _deferred(p: Prepared, opening: Resolution) -> Placed:
    """The outcome of steps 3-4 for an occurrence deferred to `opening`, settled once."""
    final = p.settled.get(opening.at)
    if final is None:
        r = opening
        if p.end is not None and r.at >= p.end:
            final = _final(p, "skipped", r.at, r.local, r.fold, "window", "past_end", None, _derived_dst(r))
        else:
            final = _settle(p, r.at, r.local, r.fold, _derived_dst(r), "window")
        if len(p.settled) > 4096:
            p.settled.clear()
        p.settled[opening.at] = final
    return final




def _final(
    p: Prepared, status: Status, at: datetime, local: datetime, fold: int,
    moved_by: MovedBy | None, reason: Reason | None, detail: str | None, dst: Dst | None,
) -> Placed:
    return status, _aware_utc(at), _aware_local(p, local, fold), moved_by, reason, detail, dst


def _settle(
    p: Prepared, at: datetime, local: datetime, fold: int, dst: Dst | None, moved_by: MovedBy | None
) -> Placed:
    """Step 4, then step 3 again after each move, until the occurrence stays or is skipped."""
    window, rules, end = p.window, p.rules, p.end
    for _ in range(MAX_BLOCKED_DAYS):
        # Step 4: day rules on the local date (the first rule that blocks is reported).
        blocked = None if p.no_rules else rules.block(local.date(), at)
        if blocked is None:
            return _final(p, "scheduled", at, local, fold, moved_by, None, None, dst)
        reason, detail = blocked
        if not p.next_allowed:
            return _final(p, "skipped", at, local, fold, moved_by, reason, detail, dst)
        r = _next_allowed(p, local)
        if r is None:
            return _final(p, "skipped", at, local, fold, moved_by, reason, detail, dst)
        at, local, fold, dst, moved_by = r.at, r.local, r.fold, _derived_dst(r), "next_allowed"
        if end is not None and at >= end:
            return _final(p, "skipped", at, local, fold, moved_by, "past_end", None, dst)
        # Step 3 again, against the new local time (a DST shift may have moved it).
        if window is not None and not in_window(window, local):
            if p.skip_outside:
                return _final(p, "skipped", at, local, fold, moved_by, "outside_window", window_text(p), dst)
            r = _next_opening(p, at, local)
            at, local, fold, dst, moved_by = r.at, r.local, r.fold, _derived_dst(r), "window"
            if end is not None and at >= end:
                return _final(p, "skipped", at, local, fold, moved_by, "past_end", None, dst)
    return _final(p, "skipped", at, local, fold, moved_by, "blackout", None, dst)  # unreachable in practice


def in_window(window: tuple[int, int], local: datetime | time) -> bool:
    ws, we = window
    t = local.hour * 3600 + local.minute * 60 + local.second
    if ws < we:
        return ws <= t < we
    return t >= ws or t < we  # the window spans midnight


def window_text(p: Prepared) -> str:
    return f"window {p.schedule.execution_window_start}-{p.schedule.execution_window_end}"


def _next_opening(p: Prepared, at: datetime, local: datetime) -> Resolution:
    """The first window opening strictly after `local`: today if before the opening, else
    tomorrow; an opening in a gap shifts forward, in an overlap takes the first instance."""
    assert p.window is not None
    t = local.hour * 3600 + local.minute * 60 + local.second
    day = local.date() if t < p.window[0] else local.date() + DAY
    r = _opening(p, day)
    if r.at <= at:
        # Only in a fold: the opening's first instance can precede a second-instance time.
        r = _opening(p, day + DAY)
    return r


def _opening(p: Prepared, day: date) -> Resolution:
    # Many slots share one opening (a cron every 10 minutes overnight): resolve each day once.
    r = p.openings.get(day)
    if r is None:
        zone = p.zone
        assert zone is not None
        local = _combine(day, p.window_start)
        off = zone.day_offset(day)
        r = Resolution(local - off, local, 0, "plain") if off is not None else zone.resolve_derived(local)
        if len(p.openings) > 4096:
            p.openings.clear()
        p.openings[day] = r
    return r


def _next_allowed(p: Prepared, local: datetime) -> Resolution | None:
    """The same local time of day on the first later day no rule blocks (SPEC 3 step 4)."""
    zone = p.zone
    assert zone is not None
    tod = local.time()
    day = local.date()
    for _ in range(MAX_BLOCKED_DAYS):
        day += DAY
        r = zone.resolve_derived(_combine(day, tod))
        if p.rules.block(r.local.date(), r.at) is None:
            return r  # past end_date too, perhaps: the caller lists it there as past_end
    return None


def _occurrence(
    p: Prepared,
    key: str,
    status: Status,
    at: datetime,
    local: datetime,
    fold: int,
    moved_from: datetime | None = None,
    moved_by: MovedBy | None = None,
    reason: Reason | None = None,
    detail: str | None = None,
    dst: Dst | None = None,
) -> Occurrence:
    """An Occurrence from naive UTC `at` and naive local wall time `local`."""
    return _new(
        key,
        status,
        _aware_utc(at),
        _aware_local(p, local, fold),
        # moved_from explains a move; a slot that was never moved has none.
        _aware_utc(moved_from) if moved_from is not None and moved_by is not None else None,
        moved_by,
        reason,
        detail,
        NO_OVERRIDES,
        dst,
    )


def _evolve(
    o: Occurrence,
    status: Status,
    reason: Reason | None,
    detail: str | None,
    overrides: Mapping[str, Any] | None = None,
) -> Occurrence:
    # dataclasses.replace, minus its per-call introspection: steps 5-7 change few fields.
    return _new(
        o.key, status, o.at, o.local, o.moved_from, o.moved_by, reason, detail,
        o.overrides if overrides is None else overrides, o.dst,
    )


# --------------------------------------------------------------------------- step 5


def step_5_reschedule(
    p: Prepared, occurrences: list[Occurrence], lo: datetime, hi: datetime
) -> list[Occurrence]:
    moved = reschedules(p)
    if not moved:
        return occurrences
    out: list[Occurrence] = []
    present: set[str] = set()
    for o in occurrences:
        m = moved.get(o.key)
        if m is not None and o.status == "scheduled":
            present.add(o.key)
            out.append(m)
        else:
            out.append(o)
    # Occurrences moved here from slots this range did not expand (far away in time).
    lo_aware, hi_aware = lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC)
    for key, m in moved.items():
        if key not in present and lo_aware <= m.at < hi_aware:
            out.append(m)
    return out


def reschedules(p: Prepared) -> dict[str, Occurrence]:
    """Each valid reschedule's moved occurrence, by key, matched over the whole schedule."""
    if p.reschedule_cache is not None:
        return p.reschedule_cache
    zone = p.zone
    assert zone is not None
    moved: dict[str, Occurrence] = {}
    claimed: dict[str, int] = {}
    findings: list[Diagnostic] = []
    for exc in p.exceptions:
        if exc.kind != "reschedule":
            continue
        matches = _scheduled_after_step_4(p, exc.lo, exc.hi, limit=2)
        where = p.entry.locate(["spec", "exceptions", exc.index, "start_date"])
        text = p.entry.model.spec.exceptions[exc.index].start_date
        if not matches:
            findings.append(
                error(
                    "FS301",
                    f"reschedule of '{text}' matches no scheduled occurrence; start_date must be "
                    f"the occurrence's time after window and day rules{_nearest_hint(p, exc)}",
                    where,
                )
            )
            continue
        if len(matches) > 1:
            shown = ", ".join(_slot_of(o) for o in matches)
            findings.append(
                error(
                    "FS302",
                    f"reschedule of '{text}' matches more than one scheduled occurrence ({shown}, "
                    f"…); give start_date as the exact datetime of one occurrence",
                    where,
                )
            )
            continue
        original = matches[0]
        if original.key in claimed:
            findings.append(
                error(
                    "FS316",
                    f"this reschedule moves {_slot_of(original)}, which exception "
                    f"#{claimed[original.key] + 1} already reschedules; keep one of them",
                    where,
                )
            )
            continue
        claimed[original.key] = exc.index
        moved[original.key] = _moved(p, original, exc)
    p.reschedule_index = claimed
    p.reschedule_cache = moved
    p.reschedule_findings = findings
    return moved


def _slot_of(o: Occurrence) -> str:
    return f"{o.local:%Y-%m-%dT%H:%M%z}"


def _nearest_hint(p: Prepared, exc: ExceptionRule) -> str:
    around = _scheduled_after_step_4(p, exc.lo - 7 * DAY, exc.hi + 7 * DAY, limit=200)
    if not around:
        return ""
    best = min(around, key=lambda o: abs(o.at - exc.lo_at))
    return f" (the nearest is {best.local.replace(tzinfo=None).isoformat()} local)"


def _target(p: Prepared, original: Occurrence, exc: ExceptionRule) -> tuple[datetime, datetime, int, Dst | None]:
    """A reschedule's target as (naive UTC, naive local, fold, dst)."""
    zone = p.zone
    assert zone is not None
    if exc.target_at is not None:
        local, fold = zone.to_local(exc.target_at)
        return exc.target_at, local, fold, None
    assert exc.target is not None
    naive = exc.target
    if exc.target_keeps_time:
        # A date alone keeps the occurrence's local time of day on that date.
        naive = datetime.combine(exc.target.date(), original.local.time())
    r = zone.resolve_derived(naive)
    return r.at, r.local, r.fold, _derived_dst(r)


def _moved(p: Prepared, original: Occurrence, exc: ExceptionRule) -> Occurrence:
    zone = p.zone
    assert zone is not None
    at, local, fold, dst = _target(p, original, exc)
    return original._replace(
        at=at.replace(tzinfo=UTC),
        local=local.replace(tzinfo=zone.tzinfo, fold=fold),
        moved_from=original.moved_from or original.at,
        moved_by="reschedule",
        detail=exc.detail,
        dst=dst,
    )


def _scheduled_after_step_4(p: Prepared, lo: datetime, hi: datetime, *, limit: int) -> list[Occurrence]:
    """Up to `limit` occurrences still scheduled after step 4 with lo <= at < hi, in order."""
    found: list[Occurrence] = []
    # Nothing is still scheduled outside [start_date, end_date) after step 4.
    if p.start is not None:
        lo = max(lo, p.start)
    if p.end is not None:
        hi = min(hi, p.end)
    for chunk_lo, chunk_hi in chunks(lo, hi):
        lo_at, hi_at = chunk_lo.replace(tzinfo=UTC), chunk_hi.replace(tzinfo=UTC)
        part = [
            o
            for o in steps_1_to_4(p, chunk_lo, chunk_hi)
            if o.status == "scheduled" and lo_at <= o.at < hi_at
        ]
        part.sort(key=_ORDER)
        found += part[: limit - len(found)]
        if len(found) >= limit:
            break
    return found


def chunks(lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
    size = _FIRST_CHUNK
    while lo < hi:
        stop = min(hi, lo + size)
        yield lo, stop
        lo, size = stop, min(size * 2, timedelta(days=366))


def _step_5_skip_and_modify(p: Prepared, occurrences: list[Occurrence], times: list[datetime]) -> list[Occurrence]:
    """Skips, then modifies, by the time after reschedules; input sorted by (at, key), `times`
    their `at`."""
    skips = [e for e in p.exceptions if e.kind == "skip"]
    modifies = [e for e in p.exceptions if e.kind == "modify"]
    if not skips and not modifies:
        return occurrences
    out = list(occurrences)
    for e in skips:  # a later skip finds the occurrences an earlier one took already skipped
        for i in range(bisect.bisect_left(times, e.lo_at), bisect.bisect_left(times, e.hi_at)):
            o = out[i]
            if o.status == "scheduled":
                out[i] = _evolve(o, "skipped", "exception", e.detail)
    for e in modifies:  # file order: a later modify wins key by key
        for i in range(bisect.bisect_left(times, e.lo_at), bisect.bisect_left(times, e.hi_at)):
            o = out[i]
            if o.status == "scheduled":
                overrides = MappingProxyType({**o.overrides, **e.modified_config})
                detail = "; ".join(d for d in (o.detail, e.detail) if d) or None
                out[i] = _evolve(o, "scheduled", None, detail, overrides)
    return out


# --------------------------------------------------------------------------- steps 6 and 7


def _step_6_merge(occurrences: list[Occurrence], times: list[datetime]) -> list[Occurrence]:
    """Scheduled occurrences sharing an instant: one stays (the one not moved there, else the
    smallest key); the others are skipped with reason `merged`. Input sorted by (at, key),
    `times` their `at`."""
    out = occurrences
    n = len(occurrences)
    end = -1
    new, occ = _tuple_new, Occurrence
    # Only the positions where two neighbours share an instant (found at C speed) need a look.
    for i in itertools.compress(range(n - 1), map(operator.eq, times, times[1:])):
        if i < end:
            continue  # inside the group already handled
        at = times[i]
        end = i + 2
        while end < n and times[end] == at:
            end += 1
        members = occurrences[i:end]
        scheduled = [o for o in members if o.status == "scheduled"]
        if len(scheduled) < 2:
            continue
        # Sorted by key within one instant: the first unmoved one, else the smallest key.
        # Groups are mostly slots a window deferred (all moved): `None in` scans at C speed.
        keep = scheduled[0]
        if None in list(map(_MOVED_BY, scheduled)):
            keep = next((o for o in scheduled if _not_moved(o)), keep)
        if out is occurrences:
            out = list(occurrences)
        out[i:end] = [
            o if o.status != "scheduled" or o is keep
            else new(occ, (o.key, "skipped", o.at, o.local, o.moved_from, o.moved_by, "merged", keep.key, o.overrides, o.dst))
            for o in members
        ]
    return out


_MOVED_BY = operator.attrgetter("moved_by")


def _not_moved(o: Occurrence) -> bool:
    return o.moved_by is None and o.dst != "gap_shifted"


def _step_7_status(p: Prepared, occurrences: list[Occurrence]) -> list[Occurrence]:
    s = p.schedule
    status: Status | None = "inactive" if not s.is_active else "paused" if s.is_paused else None
    if status is None:
        return occurrences
    return [_evolve(o, status, None, o.detail) if o.status == "scheduled" else o for o in occurrences]


# =========================================================================== diagnostics


def compiler_diagnostics(config: Config, *, now: datetime) -> list[Diagnostic]:
    """Checks that need the compiler (FS3xx); see flowspec.compiler_checks."""
    from flowspec.compiler_checks import automation_diagnostics

    now_utc = as_utc(now).replace(tzinfo=None)
    out: list[Diagnostic] = []
    for entry in config.automations:
        out += automation_diagnostics(entry, now_utc)
    return out
