"""Compiler preparation: a schedule as written (strings) → the values SPEC 3's steps need.

Dates, times and instants are parsed once per automation (SPEC 1.3: local unless an offset or
`Z` is given; a date alone starts at 00:00, an end date alone is its whole day). Problems that
make an automation impossible to compile (FS310–FS315) are collected here as diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
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
)
from flowspec.config import Entry
from flowspec.cron import CronError, parse_cron
from flowspec.diagnostics import Diagnostic, Location, error, info
from flowspec.plan import NO_OVERRIDES, Dst, MovedBy, Occurrence, Reason, Status
from flowspec.recurrence import Recurrence
from flowspec.suggest import did_you_mean
from flowspec.tzresolve import Resolution, Zone, get_zone

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
# How far next_allowed looks for an allowed day, and how far back a range looks for slots that
# a run of blocked days pushed into it. Ten years: beyond it a schedule is blocked "forever".
MAX_BLOCKED_DAYS = 3660

# (status, at, local, moved_by, reason, detail, dst) of a placed occurrence, `at`/`local` aware.
Placed = tuple[Status, datetime, datetime, MovedBy | None, Reason | None, str | None, Dst | None]


# =========================================================================== preparation
#
# A schedule as written (strings) → the values the steps need (dates, times, instants). Problems
# that make an automation impossible to compile are collected as diagnostics here, once.


@dataclass(frozen=True, slots=True)
class CustomSlot:
    """One custom slot: a local wall time, or an absolute instant (`at` set)."""

    local: datetime
    key: str
    entry_index: int
    at: datetime | None = None  # naive UTC, for entries written with Z or an offset
    fold: int = 0


@dataclass(frozen=True, slots=True)
class ExceptionRule:
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
    modified_config: Mapping[str, Any] = field(default_factory=lambda: NO_OVERRIDES)


@dataclass
class Prepared:
    entry: Entry[models.Automation]
    schedule: models.Schedule
    prefix: str = ""
    zone: Zone | None = None
    tzinfo: tzinfo_t = UTC
    recurrence: Recurrence | None = None
    custom: list[CustomSlot] | None = None  # without entries whose key an earlier one has
    custom_entries: list[CustomSlot] = field(default_factory=list)  # all, for diagnostics
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
    exceptions: list[ExceptionRule] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    openings: dict[date, Resolution] = field(default_factory=dict)  # window openings by day
    settled: dict[datetime, Placed] = field(default_factory=dict)  # steps 3-4 after an opening
    notes: list[Diagnostic] = field(default_factory=list)  # warnings/infos found while preparing
    reschedule_cache: dict[str, Occurrence] | None = None  # reschedules(): moved by key
    reschedule_index: dict[str, int] = field(default_factory=dict)  # key → exception index
    reschedule_findings: list[Diagnostic] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.zone is not None and not any(d.is_error for d in self.problems) and (
            self.recurrence is not None or self.custom is not None
        )

    def locate(self, *path: str | int) -> Location:
        return self.entry.locate(["spec", "schedule", *path])


def prepare(entry: Entry[models.Automation]) -> Prepared:
    cache = _PREPARED.get(id(entry))
    if cache is not None and cache[0] is entry:
        return cache[1]
    p = _prepare_uncached(entry)
    if len(_PREPARED) > 4096:
        _PREPARED.clear()
    _PREPARED[id(entry)] = (entry, p)
    return p


# Entries are immutable; preparing one twice (compile, then diagnostics) should cost nothing.
_PREPARED: dict[int, tuple[Entry[models.Automation], Prepared]] = {}


def _prepare_uncached(entry: Entry[models.Automation]) -> Prepared:
    s = entry.model.spec.schedule
    p = Prepared(entry=entry, schedule=s, prefix=f"{entry.organization}/{entry.name}/")
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
        p.end_day = zone.to_local(p.end - TICK)[0].date()

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
        return zone.resolve_derived(datetime.combine(w.date + DAY, time(0))).at
    return _instant(zone, w)[0] + TICK


def _time_key(t: time) -> str:
    if t.second == 0 and t.microsecond == 0:
        return f"{t.hour:02d}:{t.minute:02d}"
    return t.isoformat()


def _prepare_recurrence(p: Prepared, start_when: timeparse.When | None) -> None:
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


def _cron_location(p: Prepared, position: int) -> Location:
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


def _prepare_custom(p: Prepared, cfg: models.CustomConfig) -> None:
    s, zone = p.schedule, p.zone
    assert zone is not None
    if cfg.times:
        date_times = [timeparse.parse_time_of_day(t) for t in cfg.times]
    elif s.start_time is not None:
        date_times = [timeparse.parse_time_of_day(s.start_time)]
    else:
        date_times = []
    out: list[CustomSlot] = []
    for i, text in enumerate(cfg.dates):
        w = timeparse.parse_when(text)
        if w.offset is not None:
            at = w.naive() - w.offset.utcoffset(None)
            local, fold = zone.to_local(at)
            key = p.prefix + _slot_text(local) + ("+fold" if fold else "")
            out.append(CustomSlot(local, key, i, at, fold))
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
                out.append(CustomSlot(local, p.prefix + _slot_text(local), i))
        else:
            local = w.naive()
            out.append(CustomSlot(local, p.prefix + _slot_text(local), i))
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


def _prepare_window(p: Prepared) -> None:
    s = p.schedule
    if s.execution_window_start is None or s.execution_window_end is None:
        return
    ws = timeparse.parse_time_of_day(s.execution_window_start)
    we = timeparse.parse_time_of_day(s.execution_window_end)
    if ws == we:
        return  # validate rejects an empty window; the compiler treats it as no window
    p.window = (seconds_of_day(ws), seconds_of_day(we))
    p.window_start = ws
    p.skip_outside = s.outside_window == "skip"


def seconds_of_day(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _prepare_day_rules(p: Prepared) -> None:
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
            if 0 <= (last - start.date).days <= MAX_BLOCKED_DAYS:
                day = start.date
                while day <= last:
                    rules.blackout_dates.setdefault(day, item.reason)
                    day += DAY
                continue
        lo, _ = _instant(zone, start)
        # A range without `end` blocks to the end of its start's local day.
        hi = _instant_end(zone, end) if end is not None else _instant_end(
            zone, timeparse.When(zone.to_local(lo)[0].date(), None, None)
        )
        if hi <= lo:
            continue  # validate reports a range that ends before it starts
        rules.blackouts.append(
            Blackout(lo, hi, zone.to_local(lo)[0].date(), zone.to_local(hi - TICK)[0].date(), item.reason)
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


def _prepare_exceptions(p: Prepared) -> None:
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
            hi = lo + TICK  # a datetime alone: that instant only
        detail = exc.reason or exc.name
        bounds = (lo, hi, lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC))
        if exc.exception_type == "reschedule":
            assert exc.rescheduled_to is not None
            to = timeparse.parse_when(exc.rescheduled_to)
            if to.offset is not None:
                target_at = to.naive() - to.offset.utcoffset(None)  # type: ignore[operator]
                p.exceptions.append(ExceptionRule(i, "reschedule", *bounds, detail, target_at=target_at))
            else:
                p.exceptions.append(
                    ExceptionRule(
                        i, "reschedule", *bounds, detail, target=to.naive(), target_keeps_time=to.is_date
                    )
                )
        elif exc.exception_type == "modify":
            config = MappingProxyType(dict(exc.modified_config or {}))
            p.exceptions.append(ExceptionRule(i, "modify", *bounds, detail, modified_config=config))
        else:
            p.exceptions.append(ExceptionRule(i, "skip", *bounds, detail))


