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

Decisions the spec leaves open are written down in docs/decisions.md ("## Compiler").
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import gc
import operator
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from datetime import tzinfo as tzinfo_t
from types import MappingProxyType
from typing import Any, Literal

from flowspec import models, timeparse
from flowspec.calendars import (
    WEEKDAY_NUMBERS,
    Blackout,
    DayRules,
    HolidayCalendar,
    HolidayError,
    check_country,
    country_for_zone,
    holidays_version,
)
from flowspec.config import Config, Entry
from flowspec.cron import CronError, parse_cron
from flowspec.diagnostics import Diagnostic, Location, error, info, warning
from flowspec.plan import AutomationPlan, Dst, Inputs, MovedBy, Occurrence, Plan, Reason, Status
from flowspec.recurrence import Recurrence, monthly_day
from flowspec.suggest import did_you_mean
from flowspec.tzresolve import Resolution, Zone, get_zone, tzdata_version

__all__ = ["compile_automation", "compile_plan", "compiler_diagnostics", "plan_inputs"]

EMPTY_OVERRIDES: Mapping[str, Any] = MappingProxyType({})
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
# How far next_allowed looks for an allowed day, and how far back a range looks for slots that
# a run of blocked days pushed into it. Ten years: beyond it a schedule is blocked "forever".
_MAX_BLOCKED_DAYS = 3660
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
    lo, hi = _as_utc(range_from), _as_utc(range_to)
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
    prepared = _prepare(entry)
    lo, hi = _as_utc(range_from), _as_utc(range_to)
    occurrences: list[Occurrence] = []
    if prepared.usable and lo < hi:
        with _gc_paused():
            if count is None:
                occurrences = _compile_range(prepared, lo.replace(tzinfo=None), hi.replace(tzinfo=None))
            elif count > 0:
                occurrences = _first_n(prepared, lo.replace(tzinfo=None), hi.replace(tzinfo=None), count)
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


def _first_n(p: _Prepared, lo: datetime, hi: datetime, count: int) -> list[Occurrence]:
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


def _as_utc(t: datetime) -> datetime:
    # Naive range bounds are UTC, as on the command line (SPEC 3).
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# =========================================================================== preparation
#
# A schedule as written (strings) → the values the steps need (dates, times, instants). Problems
# that make an automation impossible to compile are collected as diagnostics here, once.


@dataclass(frozen=True, slots=True)
class _Custom:
    """One custom slot: a local wall time, or an absolute instant (`at` set)."""

    local: datetime
    key: str
    entry_index: int
    at: datetime | None = None  # naive UTC, for entries written with Z or an offset
    fold: int = 0


@dataclass(frozen=True, slots=True)
class _Exception:
    index: int
    kind: Literal["skip", "reschedule", "modify"]
    lo: datetime  # naive UTC, inclusive
    hi: datetime  # naive UTC, exclusive
    # The same bounds aware, to compare with Occurrence.at without converting every occurrence.
    lo_at: datetime
    hi_at: datetime
    detail: str | None
    target: datetime | None = None  # reschedule: naive local target, or...
    target_at: datetime | None = None  # ...an absolute target (naive UTC)
    target_keeps_time: bool = False  # rescheduled_to is a date alone: keep the time of day
    modified_config: Mapping[str, Any] = field(default_factory=lambda: EMPTY_OVERRIDES)


@dataclass
class _Prepared:
    entry: Entry[models.Automation]
    schedule: models.Schedule
    prefix: str = ""
    zone: Zone | None = None
    tzinfo: tzinfo_t = UTC
    recurrence: Recurrence | None = None
    custom: list[_Custom] | None = None  # without entries whose key an earlier one has
    custom_entries: list[_Custom] = field(default_factory=list)  # all, for diagnostics
    time_keys: list[tuple[time, str]] = field(default_factory=list)
    start: datetime | None = None  # naive UTC, inclusive
    end: datetime | None = None  # naive UTC, exclusive
    start_day: date | None = None  # local
    end_day: date | None = None
    window: tuple[int, int] | None = None  # seconds of day [start, end)
    window_start: time = time(0)
    rules: DayRules = field(default_factory=DayRules)
    # Flags the hot path reads once per slot.
    no_rules: bool = True
    skip_outside: bool = False  # outside_window: skip
    next_allowed: bool = False  # on_blocked_day: next_allowed
    exceptions: list[_Exception] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    openings: dict[date, Resolution] = field(default_factory=dict)  # window openings by day
    settled: dict[datetime, _Final] = field(default_factory=dict)  # steps 3-4 after an opening
    notes: list[Diagnostic] = field(default_factory=list)  # warnings/infos found while preparing
    _reschedules: dict[str, Occurrence] | None = None
    _reschedule_index: dict[str, int] = field(default_factory=dict)  # key → exception index
    _reschedule_findings: list[Diagnostic] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.zone is not None and not any(d.is_error for d in self.problems) and (
            self.recurrence is not None or self.custom is not None
        )

    def locate(self, *path: str | int) -> Location:
        return self.entry.locate(["spec", "schedule", *path])


def _prepare(entry: Entry[models.Automation]) -> _Prepared:
    cache = _PREPARED.get(id(entry))
    if cache is not None and cache[0] is entry:
        return cache[1]
    p = _prepare_uncached(entry)
    if len(_PREPARED) > 4096:
        _PREPARED.clear()
    _PREPARED[id(entry)] = (entry, p)
    return p


# Entries are immutable; preparing one twice (compile, then diagnostics) should cost nothing.
_PREPARED: dict[int, tuple[Entry[models.Automation], _Prepared]] = {}


def _prepare_uncached(entry: Entry[models.Automation]) -> _Prepared:
    s = entry.model.spec.schedule
    p = _Prepared(entry=entry, schedule=s, prefix=f"{entry.organization}/{entry.name}/")
    try:
        p.zone = get_zone(s.execution_timezone)
    except KeyError:
        return p  # validate reports the unknown timezone (FS104)
    zone = p.zone
    p.tzinfo = zone.tzinfo

    # Bounds (SPEC 1.3): a date alone starts at 00:00 local; an end date alone is the whole day.
    start_when = _when(s.start_date)
    if start_when is not None:
        p.start, _ = _instant(zone, start_when)
        p.start_day = zone.to_local(p.start)[0].date()
    end_when = _when(s.end_date)
    if end_when is not None:
        p.end = _instant_end(zone, end_when)
        p.end_day = zone.to_local(p.end - _TICK)[0].date()

    _prepare_recurrence(p, start_when)
    _prepare_window(p)
    _prepare_day_rules(p)
    _prepare_exceptions(p)
    return p


def _when(text: str | None) -> timeparse.When | None:
    return timeparse.parse_when(text) if text is not None else None


def _instant(zone: Zone, w: timeparse.When) -> tuple[datetime, Resolution | None]:
    """A start-like value as a naive-UTC instant: local times shift out of a gap and take the
    first instance of an overlap (SPEC 1.3, "any other local time")."""
    if w.offset is not None:
        return (w.naive() - w.offset.utcoffset(None)), None
    r = zone.resolve_derived(w.naive())
    return r.at, r


def _instant_end(zone: Zone, w: timeparse.When) -> datetime:
    """An end-like value as an exclusive naive-UTC bound: a date alone is its whole local day."""
    if w.is_date:
        return zone.resolve_derived(datetime.combine(w.date + _DAY, time(0))).at
    return _instant(zone, w)[0] + _TICK


def _time_key(t: time) -> str:
    if t.second == 0 and t.microsecond == 0:
        return f"{t.hour:02d}:{t.minute:02d}"
    return t.isoformat()


def _prepare_recurrence(p: _Prepared, start_when: timeparse.When | None) -> None:
    s, zone = p.schedule, p.zone
    assert zone is not None
    rtype, cfg = s.recurrence_type, s.recurrence_config
    start_local: datetime | None = None
    if start_when is not None and p.start is not None:
        start_local = (
            zone.to_local(p.start)[0] if start_when.offset is not None else start_when.naive()
        )
    anchor = start_local.date() if start_local is not None else None

    if rtype == "cron":
        assert isinstance(cfg, models.CronConfig)
        try:
            expr = parse_cron(cfg.expression, cfg.day_match)
        except CronError as exc:
            p.problems.append(
                error(
                    "FS313",
                    f"invalid cron expression '{cfg.expression}': {exc.message}",
                    _cron_location(p, exc.position),
                    position=exc.position,
                )
            )
            return
        p.recurrence = Recurrence("cron", expr.times, anchor=anchor, cron=expr)
        p.time_keys = [(t, _time_key(t)) for t in expr.times]
        return

    if rtype == "custom":
        assert isinstance(cfg, models.CustomConfig)
        _prepare_custom(p, cfg)
        return

    # once / daily / weekly / monthly: times, else start_time, else a datetime start_date.
    times: list[time] = []
    cfg_times = getattr(cfg, "times", None)
    if cfg_times:
        times = [timeparse.parse_time_of_day(t) for t in cfg_times]
    elif s.start_time is not None:
        times = [timeparse.parse_time_of_day(s.start_time)]
    elif start_when is not None and not start_when.is_date and start_local is not None:
        times = [start_local.time()]
    else:
        p.problems.append(
            error(
                "FS314",
                f"a {rtype} schedule needs a time of day: add start_time: \"09:00\" (or "
                f"recurrence_config.times, or a datetime start_date)",
                p.locate("recurrence_type"),
            )
        )
        return
    times = sorted(set(times))
    p.time_keys = [(t, _time_key(t)) for t in times]

    interval = getattr(cfg, "interval", 1)
    if anchor is None and (rtype == "once" or interval > 1):
        why = "the date of its occurrence" if rtype == "once" else f"interval {interval} counts from it"
        p.problems.append(
            error("FS315", f"a {rtype} schedule needs start_date ({why})", p.locate("recurrence_type"))
        )
        return

    if rtype == "once":
        p.recurrence = Recurrence("once", tuple(times), anchor=anchor)
    elif rtype == "daily":
        p.recurrence = Recurrence("daily", tuple(times), anchor=anchor, interval=interval)
    elif rtype == "weekly":
        assert isinstance(cfg, models.WeeklyConfig)
        if cfg.days:
            weekdays = frozenset(WEEKDAY_NUMBERS[d] for d in cfg.days)
        elif anchor is not None:
            weekdays = frozenset([anchor.weekday()])
        else:
            p.problems.append(
                error(
                    "FS315",
                    "a weekly schedule without recurrence_config.days needs start_date (its "
                    "weekday is the default)",
                    p.locate("recurrence_type"),
                )
            )
            return
        p.recurrence = Recurrence("weekly", tuple(times), anchor=anchor, interval=interval, weekdays=weekdays)
    else:
        assert isinstance(cfg, models.MonthlyConfig)
        if cfg.weekday is not None and cfg.week is not None:
            p.recurrence = Recurrence(
                "monthly",
                tuple(times),
                anchor=anchor,
                interval=interval,
                weekday=WEEKDAY_NUMBERS[cfg.weekday],
                week=cfg.week,
            )
        else:
            day = cfg.day if cfg.day is not None else (anchor.day if anchor is not None else None)
            if day is None:
                p.problems.append(
                    error(
                        "FS315",
                        "a monthly schedule without recurrence_config.day or weekday needs "
                        "start_date (its day of month is the default)",
                        p.locate("recurrence_type"),
                    )
                )
                return
            p.recurrence = Recurrence("monthly", tuple(times), anchor=anchor, interval=interval, day=day)


def _cron_location(p: _Prepared, position: int) -> Location:
    path = ["spec", "schedule", "recurrence_config", "expression"]
    loc = p.entry.locate(path)
    # The node's column is its first character; a quoted scalar starts with the quote.
    doc = p.entry.defaults_doc if loc.file != p.entry.doc.file else p.entry.doc
    source = getattr(doc, "_source", None)
    text = getattr(source, "text", None)
    quote = 0
    if isinstance(text, str):
        lines = text.splitlines()
        if 0 < loc.line <= len(lines):
            line = lines[loc.line - 1]
            if 0 < loc.col <= len(line) and line[loc.col - 1] in "'\"":
                quote = 1
    return Location(loc.file, loc.line, loc.col + quote + position)


def _prepare_custom(p: _Prepared, cfg: models.CustomConfig) -> None:
    s, zone = p.schedule, p.zone
    assert zone is not None
    if cfg.times:
        date_times = [timeparse.parse_time_of_day(t) for t in cfg.times]
    elif s.start_time is not None:
        date_times = [timeparse.parse_time_of_day(s.start_time)]
    else:
        date_times = []
    out: list[_Custom] = []
    for i, text in enumerate(cfg.dates):
        w = timeparse.parse_when(text)
        if w.offset is not None:
            at = w.naive() - w.offset.utcoffset(None)
            local, fold = zone.to_local(at)
            key = p.prefix + _slot_text(local) + ("+fold" if fold else "")
            out.append(_Custom(local, key, i, at, fold))
        elif w.is_date:
            if not date_times:
                p.problems.append(
                    error(
                        "FS314",
                        f"custom date '{text}' has no time of day: write a datetime "
                        f"({text}T09:00), or give start_time or recurrence_config.times",
                        p.locate("recurrence_config", "dates", i),
                    )
                )
                continue
            for t in sorted(set(date_times)):
                local = datetime.combine(w.date, t)
                out.append(_Custom(local, p.prefix + _slot_text(local), i))
        else:
            local = w.naive()
            out.append(_Custom(local, p.prefix + _slot_text(local), i))
    p.custom_entries = out
    # Keys must be unique: an entry giving a key an earlier entry gave (the same instant, or the
    # same wall time under `last`) is dropped here and reported by validate (FS309).
    keys: set[str] = set()
    p.custom = []
    for c in out:
        produced = {c.key}
        if c.at is None and s.dst_overlap == "both":
            produced |= {c.key + "+fold"} if zone.danger(c.local) is not None else set()
        if produced & keys:
            continue
        keys |= produced
        p.custom.append(c)


def _slot_text(local: datetime) -> str:
    return f"{local.date().isoformat()}T{_time_key(local.time())}"


def _prepare_window(p: _Prepared) -> None:
    s = p.schedule
    if s.execution_window_start is None or s.execution_window_end is None:
        return
    ws = timeparse.parse_time_of_day(s.execution_window_start)
    we = timeparse.parse_time_of_day(s.execution_window_end)
    if ws == we:
        return  # validate rejects an empty window; the compiler treats it as no window
    p.window = (_seconds(ws), _seconds(we))
    p.window_start = ws
    p.skip_outside = s.outside_window == "skip"


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _prepare_day_rules(p: _Prepared) -> None:
    s, zone = p.schedule, p.zone
    assert zone is not None
    rules = DayRules()
    for item in s.blackout_dates:
        if isinstance(item, str):
            rules.blackout_dates.setdefault(timeparse.parse_date(item), None)
            continue
        start = timeparse.parse_when(item.start)
        end = timeparse.parse_when(item.end) if item.end is not None else None
        if start.is_date and (end is None or end.is_date):
            # Whole local days: the same as listing each date, and date lookups are cheap.
            last = end.date if end is not None else start.date
            if 0 <= (last - start.date).days <= _MAX_BLOCKED_DAYS:
                day = start.date
                while day <= last:
                    rules.blackout_dates.setdefault(day, item.reason)
                    day += _DAY
                continue
        lo, _ = _instant(zone, start)
        # A range without `end` blocks to the end of its start's local day.
        hi = _instant_end(zone, end) if end is not None else _instant_end(
            zone, timeparse.When(zone.to_local(lo)[0].date(), None, None)
        )
        if hi <= lo:
            continue  # validate reports a range that ends before it starts
        rules.blackouts.append(
            Blackout(lo, hi, zone.to_local(lo)[0].date(), zone.to_local(hi - _TICK)[0].date(), item.reason)
        )

    weekend = frozenset(WEEKDAY_NUMBERS[d] for d in s.weekend_days)
    if len(weekend) == 7:
        p.problems.append(
            error(
                "FS312",
                "weekend_days lists all seven days, so no day could ever be allowed; list the "
                "days that are weekend where you send (e.g. [SAT, SUN])",
                p.locate("weekend_days"),
            )
        )
    if s.skip_weekends:
        rules.weekend = weekend

    country = s.holiday_country
    if country is None and s.skip_holidays:
        country = country_for_zone(zone.name)
        if country is None:
            p.problems.append(
                error(
                    "FS310",
                    f"skip_holidays needs a country, and zone '{zone.name}' belongs to none; "
                    f"add holiday_country (ISO 3166-1 alpha-2, e.g. BR)",
                    p.locate("skip_holidays"),
                )
            )
        else:
            p.notes.append(
                info(
                    "FS307",
                    f"holiday country {country} inferred from execution_timezone "
                    f"'{zone.name}' (zone.tab); set holiday_country to make it explicit",
                    p.locate("skip_holidays"),
                    country=country,
                    zone=zone.name,
                )
            )
    if country is not None:
        # Checked even without skip_holidays: a misspelt country is wrong wherever it is.
        try:
            check_country(country, s.holiday_subdivision)
        except HolidayError as exc:
            field_name = "holiday_country" if exc.field == "country" else "holiday_subdivision"
            where = field_name if getattr(s, field_name) is not None else "skip_holidays"
            wrong = country if exc.field == "country" else str(s.holiday_subdivision)
            inferred = "" if s.holiday_country else f" (inferred from '{zone.name}')"
            p.problems.append(
                error(
                    "FS311",
                    f"{exc}{inferred}{did_you_mean(wrong, exc.candidates)}; the holidays "
                    f"package knows {_sample(exc.candidates)}",
                    p.locate(where),
                )
            )
            country = None
    if s.skip_holidays:
        extra = frozenset(timeparse.parse_date(d) for d in s.extra_holidays)
        rules.holidays = HolidayCalendar(country, s.holiday_subdivision, extra)
    p.rules = rules
    p.no_rules = rules.empty
    p.next_allowed = s.on_blocked_day == "next_allowed"


def _sample(candidates: list[str]) -> str:
    codes = [c for c in candidates if len(c) <= 3] or candidates  # codes, not aliases
    shown = ", ".join(codes[:12])
    return shown + (", …" if len(codes) > 12 else "") if codes else "none"


def _prepare_exceptions(p: _Prepared) -> None:
    zone = p.zone
    assert zone is not None
    for i, exc in enumerate(p.entry.model.spec.exceptions):
        start = timeparse.parse_when(exc.start_date)
        lo, _ = _instant(zone, start)
        if exc.end_date is not None:
            hi = _instant_end(zone, timeparse.parse_when(exc.end_date))
        elif start.is_date:
            hi = _instant_end(zone, start)
        else:
            hi = lo + _TICK  # a datetime alone: that instant only
        detail = exc.reason or exc.name
        bounds = (lo, hi, lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC))
        if exc.exception_type == "reschedule":
            assert exc.rescheduled_to is not None
            to = timeparse.parse_when(exc.rescheduled_to)
            if to.offset is not None:
                target_at = to.naive() - to.offset.utcoffset(None)  # type: ignore[operator]
                p.exceptions.append(_Exception(i, "reschedule", *bounds, detail, target_at=target_at))
            else:
                p.exceptions.append(
                    _Exception(
                        i, "reschedule", *bounds, detail, target=to.naive(), target_keeps_time=to.is_date
                    )
                )
        elif exc.exception_type == "modify":
            config = MappingProxyType(dict(exc.modified_config or {}))
            p.exceptions.append(_Exception(i, "modify", *bounds, detail, modified_config=config))
        else:
            p.exceptions.append(_Exception(i, "skip", *bounds, detail))


# =========================================================================== one range


def _compile_range(p: _Prepared, lo: datetime, hi: datetime) -> list[Occurrence]:
    """Occurrences with lo <= at < hi (naive UTC bounds), sorted by (at, key)."""
    occurrences = _steps_1_to_4(p, lo, hi)
    occurrences = _step_5_reschedule(p, occurrences, lo, hi)
    lo_at, hi_at = _aware_utc(lo), _aware_utc(hi)
    occurrences = [o for o in occurrences if lo_at <= o.at < hi_at]
    times = [o.at for o in occurrences]
    if not all(map(operator.lt, times, times[1:])):  # usually already in order, and no ties
        occurrences.sort(key=_ORDER)
    occurrences = _step_5_skip_and_modify(p, occurrences)
    occurrences = _step_6_merge(occurrences)
    return _step_7_status(p, occurrences)


_ORDER = operator.attrgetter("at", "key")
_combine = datetime.combine


def _occurrence_factory() -> Callable[..., Occurrence]:
    """Occurrence(...) by its ten fields in order, about twice as fast as the constructor.

    A frozen dataclass's __init__ sets each field through object.__setattr__; filling the
    slots through their descriptors builds the very same object in half the time, which is a
    third of the compiler's time per occurrence. If the fields ever change, this falls back to
    the constructor rather than build an object with a slot missing.
    """
    names = ("key", "status", "at", "local", "moved_from", "moved_by", "reason", "detail", "overrides", "dst")
    if tuple(f.name for f in dataclasses.fields(Occurrence)) != names or not hasattr(Occurrence, "__slots__"):
        return Occurrence
    new = object.__new__
    k, st, at, lo, mf, mb, r, de, ov, ds = (getattr(Occurrence, n).__set__ for n in names)

    def make(
        key: str, status: Status, at_: datetime, local: datetime, moved_from: datetime | None,
        moved_by: MovedBy | None, reason: Reason | None, detail: str | None,
        overrides: Mapping[str, Any], dst: Dst | None,
    ) -> Occurrence:
        o = new(Occurrence)
        k(o, key)
        st(o, status)
        at(o, at_)
        lo(o, local)
        mf(o, moved_from)
        mb(o, moved_by)
        r(o, reason)
        de(o, detail)
        ov(o, overrides)
        ds(o, dst)
        return o

    return make


_new = _occurrence_factory()


def _aware_utc(naive: datetime) -> datetime:
    # combine() rather than replace(tzinfo=...): keyword parsing makes replace several times
    # slower, and this runs once per occurrence.
    return _combine(naive.date(), naive.time(), UTC)


def _aware_local(p: _Prepared, naive: datetime, fold: int) -> datetime:
    t = naive.time()
    return _combine(naive.date(), t.replace(fold=1) if fold else t, p.tzinfo)


# --------------------------------------------------------------------------- steps 1–4


def _steps_1_to_4(p: _Prepared, lo: datetime, hi: datetime) -> list[Occurrence]:
    """Steps 1–4 for every slot that can land in [lo, hi) (and some that land before it)."""
    zone = p.zone
    assert zone is not None
    first_day = zone.to_local(lo)[0].date() - timedelta(days=_lookback_days(p, lo))
    last_day = zone.to_local(hi)[0].date() + 2 * _DAY  # exclusive
    if p.start_day is not None:
        first_day = max(first_day, p.start_day - _DAY)
    if p.end_day is not None:
        last_day = min(last_day, p.end_day + 2 * _DAY)
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
    slots = [(t, tkey, t.replace(tzinfo=tz), t.replace(tzinfo=UTC), _deferral(p, t)) for t, tkey in p.time_keys]
    prefix = p.prefix
    empty = EMPTY_OVERRIDES
    combine = _combine
    new = _new
    # Local days strictly inside the bounds need no per-slot bound checks: every wall time of
    # such a day lies between start_date's day and end_date's day, and before `hi`'s day.
    all_in_window = not any(slot[4] for slot in slots)
    skip_outside = p.skip_outside
    inner_lo = p.start_day or date.min
    inner_hi = min(p.end_day or date.max, zone.to_local(hi)[0].date())
    for d in rec.days(first_day, last_day):
        off = zone.day_offset(d)
        head = prefix + d.isoformat() + "T"
        open_day = no_rules or rules.day_open(d)
        if off is not None and inner_lo < d < inner_hi:
            if open_day and all_in_window:
                out += [
                    new(head + tkey, "scheduled", combine(d, t_utc) - off, combine(d, t_local), None, None, None, None, empty, None)
                    for _, tkey, t_local, t_utc, _ in slots
                ]
                continue
            # Deferred slots of one day share one of two openings (today's or tomorrow's),
            # and with it their whole outcome of steps 3-4: look each up once per day.
            finals: dict[int, _Final] = {}
            for t, tkey, t_local, t_utc, defer in slots:
                if not defer and open_day:
                    out.append(new(head + tkey, "scheduled", combine(d, t_utc) - off, combine(d, t_local), None, None, None, None, empty, None))
                elif not defer or skip_outside:
                    n = combine(d, t)
                    out.append(_place(p, head + tkey, n - off, n, 0, None))
                else:
                    final = finals.get(defer)
                    if final is None:
                        final = finals[defer] = _deferred(p, _opening(p, d if defer == 1 else d + _DAY))
                    status, at_, local_, moved_by, reason, detail, dst_ = final
                    moved_from = combine(d, t_utc) - off
                    out.append(new(head + tkey, status, at_, local_, moved_from, moved_by, reason, detail, empty, dst_))
            continue
        for t, tkey, t_local, t_utc, defer in slots:
            in_window = not defer
            if off is None:
                _resolve_slot(p, combine(d, t), head + tkey, hi, out)
                continue
            at = combine(d, t_utc) - off
            if at >= hi_at or (start_at is not None and at < start_at) or (end_at is not None and at >= end_at):
                continue
            if in_window and open_day:
                out.append(new(head + tkey, "scheduled", at, combine(d, t_local), None, None, None, None, empty, None))
            else:
                n = combine(d, t)
                out.append(_place(p, head + tkey, n - off, n, 0, None))
    return out


def _lookback_days(p: _Prepared, lo: datetime) -> int:
    """Days before `lo` whose slots may still land at or after it (module docstring)."""
    days = 2  # a window deferral moves at most to the next day's opening
    if not p.next_allowed or p.no_rules:
        return days
    zone = p.zone
    assert zone is not None
    d = zone.to_local(lo)[0].date() - _DAY
    floor = p.start_day - _DAY if p.start_day is not None else date.min + _DAY
    # A move crosses blocked days, and — when a DST shift pushes a time out of the window
    # again — days with a transition; both extend the run.
    while d > floor and days < _MAX_BLOCKED_DAYS and (p.rules.may_block_day(d) or zone.has_transition_on(d)):
        days += 1
        d -= _DAY
    return days


# step 2 ---------------------------------------------------------------------

_OVERLAP_DST: dict[str, Dst] = {"first": "overlap_first", "last": "overlap_last", "both": "overlap_both"}


def _resolve_slot(p: _Prepared, slot: datetime, key: str, hi: datetime, out: list[Occurrence]) -> None:
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
    p: _Prepared, key: str, at: datetime, local: datetime, fold: int, dst: Dst | None
) -> Occurrence:
    """Steps 3–4 for one resolved slot (naive UTC `at`, naive wall time `local`)."""
    window = p.window
    if window is not None and not _in_window(window, local):
        if p.skip_outside:
            return _occurrence(p, key, "skipped", at, local, fold, None, None, "outside_window", _window_text(p), dst)
        # Every slot deferred to one opening ends the same way (steps 3–4 depend only on the
        # time reached), so the rest is settled once per opening: dense crons defer many.
        final = _deferred(p, _next_opening(p, at, local))
    elif p.no_rules:
        return _occurrence(p, key, "scheduled", at, local, fold, dst=dst)
    else:
        final = _settle(p, at, local, fold, dst, None)
    status, at_, local_, moved_by, reason, detail, dst_ = final
    moved_from = _aware_utc(at) if moved_by is not None else None
    return _new(key, status, at_, local_, moved_from, moved_by, reason, detail, EMPTY_OVERRIDES, dst_)


def _deferral(p: _Prepared, t: time) -> int:
    """For a time of day on a day without DST change: 0 inside the window, 1 deferred to the
    same day's opening, 2 to the next day's."""
    if p.window is None or _in_window(p.window, t):
        return 0
    return 1 if _seconds(t) < p.window[0] else 2


def _deferred(p: _Prepared, opening: Resolution) -> _Final:
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


# (status, at, local, moved_by, reason, detail, dst) of a placed occurrence, `at`/`local` aware.
_Final = tuple[Status, datetime, datetime, "MovedBy | None", "Reason | None", "str | None", "Dst | None"]


def _final(
    p: _Prepared, status: Status, at: datetime, local: datetime, fold: int,
    moved_by: MovedBy | None, reason: Reason | None, detail: str | None, dst: Dst | None,
) -> _Final:
    return status, _aware_utc(at), _aware_local(p, local, fold), moved_by, reason, detail, dst


def _settle(
    p: _Prepared, at: datetime, local: datetime, fold: int, dst: Dst | None, moved_by: MovedBy | None
) -> _Final:
    """Step 4, then step 3 again after each move, until the occurrence stays or is skipped."""
    window, rules, end = p.window, p.rules, p.end
    for _ in range(_MAX_BLOCKED_DAYS):
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
        if window is not None and not _in_window(window, local):
            if p.skip_outside:
                return _final(p, "skipped", at, local, fold, moved_by, "outside_window", _window_text(p), dst)
            r = _next_opening(p, at, local)
            at, local, fold, dst, moved_by = r.at, r.local, r.fold, _derived_dst(r), "window"
            if end is not None and at >= end:
                return _final(p, "skipped", at, local, fold, moved_by, "past_end", None, dst)
    return _final(p, "skipped", at, local, fold, moved_by, "blackout", None, dst)  # unreachable in practice


def _in_window(window: tuple[int, int], local: datetime | time) -> bool:
    ws, we = window
    t = local.hour * 3600 + local.minute * 60 + local.second
    if ws < we:
        return ws <= t < we
    return t >= ws or t < we  # the window spans midnight


def _window_text(p: _Prepared) -> str:
    return f"window {p.schedule.execution_window_start}-{p.schedule.execution_window_end}"


def _next_opening(p: _Prepared, at: datetime, local: datetime) -> Resolution:
    """The first window opening strictly after `local`: today if before the opening, else
    tomorrow; an opening in a gap shifts forward, in an overlap takes the first instance."""
    assert p.window is not None
    t = local.hour * 3600 + local.minute * 60 + local.second
    day = local.date() if t < p.window[0] else local.date() + _DAY
    r = _opening(p, day)
    if r.at <= at:
        # Only in a fold: the opening's first instance can precede a second-instance time.
        r = _opening(p, day + _DAY)
    return r


def _opening(p: _Prepared, day: date) -> Resolution:
    # Many slots share one opening (a cron every 10 minutes overnight): resolve each day once.
    r = p.openings.get(day)
    if r is None:
        assert p.zone is not None
        r = p.zone.resolve_derived(_combine(day, p.window_start))
        if len(p.openings) > 4096:
            p.openings.clear()
        p.openings[day] = r
    return r


def _next_allowed(p: _Prepared, local: datetime) -> Resolution | None:
    """The same local time of day on the first later day no rule blocks (SPEC 3 step 4)."""
    zone = p.zone
    assert zone is not None
    tod = local.time()
    day = local.date()
    for _ in range(_MAX_BLOCKED_DAYS):
        day += _DAY
        r = zone.resolve_derived(_combine(day, tod))
        if p.rules.block(r.local.date(), r.at) is None:
            return r  # past end_date too, perhaps: the caller lists it there as past_end
    return None


def _occurrence(
    p: _Prepared,
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
        EMPTY_OVERRIDES,
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


def _step_5_reschedule(
    p: _Prepared, occurrences: list[Occurrence], lo: datetime, hi: datetime
) -> list[Occurrence]:
    moved = _reschedules(p)
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


def _reschedules(p: _Prepared) -> dict[str, Occurrence]:
    """Each valid reschedule's moved occurrence, by key, matched over the whole schedule."""
    if p._reschedules is not None:
        return p._reschedules
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
    p._reschedule_index = claimed
    p._reschedules = moved
    p._reschedule_findings = findings
    return moved


def _slot_of(o: Occurrence) -> str:
    return f"{o.local:%Y-%m-%dT%H:%M%z}"


def _nearest_hint(p: _Prepared, exc: _Exception) -> str:
    around = _scheduled_after_step_4(p, exc.lo - 7 * _DAY, exc.hi + 7 * _DAY, limit=200)
    if not around:
        return ""
    best = min(around, key=lambda o: abs(o.at - exc.lo_at))
    return f" (the nearest is {best.local.replace(tzinfo=None).isoformat()} local)"


def _target(p: _Prepared, original: Occurrence, exc: _Exception) -> tuple[datetime, datetime, int, Dst | None]:
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


def _moved(p: _Prepared, original: Occurrence, exc: _Exception) -> Occurrence:
    zone = p.zone
    assert zone is not None
    at, local, fold, dst = _target(p, original, exc)
    return dataclasses.replace(
        original,
        at=at.replace(tzinfo=UTC),
        local=local.replace(tzinfo=zone.tzinfo, fold=fold),
        moved_from=original.moved_from or original.at,
        moved_by="reschedule",
        detail=exc.detail,
        dst=dst,
    )


def _scheduled_after_step_4(p: _Prepared, lo: datetime, hi: datetime, *, limit: int) -> list[Occurrence]:
    """Up to `limit` occurrences still scheduled after step 4 with lo <= at < hi, in order."""
    found: list[Occurrence] = []
    # Nothing is still scheduled outside [start_date, end_date) after step 4.
    if p.start is not None:
        lo = max(lo, p.start)
    if p.end is not None:
        hi = min(hi, p.end)
    for chunk_lo, chunk_hi in _chunks(lo, hi):
        lo_at, hi_at = chunk_lo.replace(tzinfo=UTC), chunk_hi.replace(tzinfo=UTC)
        part = [
            o
            for o in _steps_1_to_4(p, chunk_lo, chunk_hi)
            if o.status == "scheduled" and lo_at <= o.at < hi_at
        ]
        part.sort(key=_ORDER)
        found += part[: limit - len(found)]
        if len(found) >= limit:
            break
    return found


def _chunks(lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
    size = _FIRST_CHUNK
    while lo < hi:
        stop = min(hi, lo + size)
        yield lo, stop
        lo, size = stop, min(size * 2, timedelta(days=366))


def _step_5_skip_and_modify(p: _Prepared, occurrences: list[Occurrence]) -> list[Occurrence]:
    """Skips, then modifies, by the time after reschedules; input sorted by (at, key)."""
    skips = [e for e in p.exceptions if e.kind == "skip"]
    modifies = [e for e in p.exceptions if e.kind == "modify"]
    if not skips and not modifies:
        return occurrences
    times = [o.at for o in occurrences]
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


def _step_6_merge(occurrences: list[Occurrence]) -> list[Occurrence]:
    """Scheduled occurrences sharing an instant: one stays (the one not moved there, else the
    smallest key); the others are skipped with reason `merged`. Input sorted by (at, key)."""
    out = occurrences
    n = len(occurrences)
    i = 0
    while i < n - 1:
        at = occurrences[i].at
        if occurrences[i + 1].at != at:
            i += 1
            continue
        j = i + 2
        while j < n and occurrences[j].at == at:
            j += 1
        group = [k for k in range(i, j) if occurrences[k].status == "scheduled"]
        if len(group) > 1:
            unmoved = [k for k in group if _not_moved(occurrences[k])]
            keep = (unmoved or group)[0]  # sorted by key within one instant: the smallest
            if out is occurrences:
                out = list(occurrences)
            for k in group:
                if k != keep:
                    out[k] = _evolve(occurrences[k], "skipped", "merged", occurrences[keep].key)
        i = j
    return out


def _not_moved(o: Occurrence) -> bool:
    return o.moved_by is None and o.dst != "gap_shifted"


def _step_7_status(p: _Prepared, occurrences: list[Occurrence]) -> list[Occurrence]:
    s = p.schedule
    status: Status | None = "inactive" if not s.is_active else "paused" if s.is_paused else None
    if status is None:
        return occurrences
    return [_evolve(o, status, None, o.detail) if o.status == "scheduled" else o for o in occurrences]


# =========================================================================== diagnostics


def compiler_diagnostics(config: Config, *, now: datetime) -> list[Diagnostic]:
    """Checks that need the compiler (FS3xx): reschedule matching, exceptions matching nothing,
    schedules that never run, holiday countries, cron expressions, custom dates.

    `now` decides "the next year" for FS305 and FS306; nothing here reads a clock.
    """
    now_utc = _as_utc(now).replace(tzinfo=None)
    out: list[Diagnostic] = []
    for entry in config.automations:
        out += _automation_diagnostics(entry, now_utc)
    return out


def _automation_diagnostics(entry: Entry[models.Automation], now: datetime) -> list[Diagnostic]:
    p = _prepare(entry)
    out = list(p.problems) + list(p.notes)
    if p.zone is None:
        return out
    out += _custom_findings(p)
    out += _monthly_findings(p, now)
    if not p.usable:
        return out
    _reschedules(p)
    out += p._reschedule_findings
    out += _reschedule_target_findings(p)
    out += _unmatched_findings(p)
    year_end = now + timedelta(days=365)
    if all(o.status == "skipped" for o in _first_n(p, now, year_end, 1)):
        out.append(
            warning(
                "FS306",
                f"automation '{entry.name}' has no occurrence between {now:%Y-%m-%d} and "
                f"{year_end:%Y-%m-%d}; check start_date/end_date, the recurrence and the day rules "
                f"(or remove the automation)",
                entry.locate(["spec", "schedule"]),
            )
        )
    return out


def _custom_findings(p: _Prepared) -> list[Diagnostic]:
    if p.custom is None:
        return []
    zone = p.zone
    assert zone is not None
    out: list[Diagnostic] = []
    dates = p.entry.model.spec.schedule.recurrence_config
    assert isinstance(dates, models.CustomConfig)
    first: dict[datetime, tuple[int, bool]] = {}  # instant → (entry, whether gap-shifted)
    keys: dict[str, int] = {}
    reported: set[int] = set()
    for c in p.custom_entries:
        text = dates.dates[c.entry_index]
        where = p.locate("recurrence_config", "dates", c.entry_index)
        instants: list[tuple[datetime, bool]]
        if c.at is not None:
            instants = [(c.at, False)]
        else:
            s = p.schedule
            rs = zone.resolve(c.local, s.dst_gap, s.dst_overlap)
            instants = [(r.at, r.kind == "gap") for r in rs]
        for at, shifted in instants:
            if c.entry_index not in reported and (
                (p.start is not None and at < p.start) or (p.end is not None and at >= p.end)
            ):
                reported.add(c.entry_index)
                out.append(
                    warning(
                        "FS308",
                        f"custom date '{text}' is outside [start_date, end_date], so it never runs; "
                        f"move it inside or widen the bounds",
                        where,
                    )
                )
            seen = first.get(at)
            if seen is None:
                first[at] = (c.entry_index, shifted)
            elif seen[0] != c.entry_index and not (shifted or seen[1]):
                # Colliding only because a DST gap shifted one of them is fine: step 6 merges.
                out.append(
                    error(
                        "FS309",
                        f"custom dates '{dates.dates[seen[0]]}' and '{text}' are the same instant "
                        f"({at:%Y-%m-%dT%H:%M:%SZ}); remove one",
                        where,
                    )
                )
        other_key = keys.get(c.key)  # the same key without the same instant (under `last`)
        if other_key is not None and other_key != c.entry_index and not any(
            d.code == "FS309" and d.location == where for d in out
        ):
            out.append(
                error(
                    "FS309",
                    f"custom dates '{dates.dates[other_key]}' and '{text}' give the same occurrence "
                    f"key {c.key}; remove one",
                    where,
                )
            )
        keys.setdefault(c.key, c.entry_index)
    return out


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _monthly_findings(p: _Prepared, now: datetime) -> list[Diagnostic]:
    rec = p.recurrence
    if rec is None or rec.kind != "monthly" or rec.day is None or abs(rec.day) <= 28:
        return []
    zone = p.zone
    assert zone is not None
    local_now = zone.to_local(now)[0].date()
    index = local_now.year * 12 + local_now.month - 1
    anchor = rec.anchor
    anchor_index = anchor.year * 12 + anchor.month - 1 if anchor else index
    skipped = []
    for k in range(index, index + 12):
        if (k - anchor_index) % rec.interval:
            continue
        year, month0 = divmod(k, 12)
        if monthly_day(year, month0 + 1, rec.day) is None:
            skipped.append(f"{_MONTHS[month0]} {year}")
    what = f"day {rec.day}" if rec.day > 0 else f"day {rec.day} (counted from the month's end)"
    months = ", ".join(skipped) if skipped else "none in the next 12 months"
    return [
        warning(
            "FS305",
            f"monthly {what} does not exist in every month; months without it are skipped "
            f"(RFC 5545): {months}. Use day: -1 for the last day of every month",
            p.locate("recurrence_config", "day")
            if p.schedule.recurrence_config.day is not None  # type: ignore[union-attr]
            else p.locate("start_date"),
            months=skipped,
        )
    ]


def _reschedule_target_findings(p: _Prepared) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for key, m in _reschedules(p).items():
        local, at = m.local.replace(tzinfo=None), m.at.replace(tzinfo=None)
        problems = []
        blocked = p.rules.block(local.date(), at)
        if blocked is not None:
            reason, detail = blocked
            problems.append(f"on a blocked day ({reason}{': ' + detail if detail else ''})")
        if p.window is not None and not _in_window(p.window, local):
            problems.append(f"outside the {_window_text(p)}")
        if (p.start is not None and at < p.start) or (p.end is not None and at >= p.end):
            problems.append("outside [start_date, end_date]")
        if problems:
            out.append(
                warning(
                    "FS303",
                    f"reschedule to {local.isoformat()} local lands "
                    + " and ".join(problems)
                    + "; a reschedule is exempt from those rules, so it will run there — "
                    "make sure that is intended",
                    p.entry.locate(["spec", "exceptions", p._reschedule_index[key], "rescheduled_to"]),
                )
            )
    return out


def _unmatched_findings(p: _Prepared) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for e in p.exceptions:
        if e.kind == "reschedule":
            continue
        if not _matches_any(p, e):
            verb = "skip" if e.kind == "skip" else "modify"
            out.append(
                warning(
                    "FS304",
                    f"{verb} exception matches no scheduled occurrence, so it changes nothing; "
                    f"check start_date/end_date against the plan (`flowspec plan --include-skipped`)",
                    p.entry.locate(["spec", "exceptions", e.index, "start_date"]),
                )
            )
    return out


def _matches_any(p: _Prepared, e: _Exception) -> bool:
    """Whether exception `e` acts on a scheduled occurrence (a skip: after reschedules; a
    modify: after reschedules and skips)."""
    skips = [x for x in p.exceptions if x.kind == "skip"]

    def acts_on(o: Occurrence) -> bool:
        return (
            o.status == "scheduled"
            and e.lo_at <= o.at < e.hi_at
            and not (e.kind == "modify" and any(x.lo_at <= o.at < x.hi_at for x in skips))
        )

    moved = _reschedules(p)
    if any(acts_on(m) for m in moved.values()):
        return True
    lo, hi = e.lo, e.hi
    if p.start is not None:
        lo = max(lo, p.start)
    if p.end is not None:
        hi = min(hi, p.end)
    for chunk_lo, chunk_hi in _chunks(lo, hi):
        for o in _steps_1_to_4(p, chunk_lo, chunk_hi):
            if o.key not in moved and acts_on(o):
                return True
    return False
