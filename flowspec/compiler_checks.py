"""The compiler's checks for `flowspec validate` (FS3xx, catalogue in docs/diagnostics.md).

They need the expanded schedule: whether a reschedule matches exactly one occurrence of the whole
schedule, whether an exception acts on anything, whether an automation ever runs. `now` (an
argument, never the clock) decides "the next year".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flowspec import models
from flowspec.compiler import (
    chunks,
    first_n,
    in_window,
    reschedules,
    steps_1_to_4,
    window_text,
)
from flowspec.compiler_prepare import ExceptionRule, Prepared, prepare
from flowspec.config import Entry
from flowspec.diagnostics import Diagnostic, Location, error, warning
from flowspec.plan import Occurrence
from flowspec.recurrence import monthly_day


def automation_diagnostics(entry: Entry[models.Automation], now: datetime) -> list[Diagnostic]:
    """Every FS3xx finding for one automation (`now`: naive UTC)."""
    p = prepare(entry)
    out = list(p.problems) + list(p.notes)
    if p.zone is None:
        return out
    out += _custom_findings(p)
    out += _monthly_findings(p, now)
    if not p.usable:
        return out
    reschedules(p)
    out += p.reschedule_findings
    out += _reschedule_target_findings(p)
    out += _unmatched_findings(p)
    year_end = now + timedelta(days=365)
    if all(o.status == "skipped" for o in first_n(p, now, year_end, 1)):
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


def _custom_findings(p: Prepared) -> list[Diagnostic]:
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
    collided: set[int] = set()  # entries already reported as FS309
    for c in p.custom_entries:
        text = dates.dates[c.entry_index]
        # Locating re-reads the file's node tree, so only do it for a date that is reported.
        def where(i: int = c.entry_index) -> Location:
            return p.locate("recurrence_config", "dates", i)

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
                        where(),
                    )
                )
            seen = first.get(at)
            if seen is None:
                first[at] = (c.entry_index, shifted)
            elif seen[0] != c.entry_index and not (shifted or seen[1]):
                # Colliding only because a DST gap shifted one of them is fine: step 6 merges.
                collided.add(c.entry_index)
                out.append(
                    error(
                        "FS309",
                        f"custom dates '{dates.dates[seen[0]]}' and '{text}' are the same instant "
                        f"({at:%Y-%m-%dT%H:%M:%SZ}); remove one",
                        where(),
                    )
                )
        other_key = keys.get(c.key)  # the same key without the same instant (under `last`)
        if other_key is not None and other_key != c.entry_index and c.entry_index not in collided:
            out.append(
                error(
                    "FS309",
                    f"custom dates '{dates.dates[other_key]}' and '{text}' give the same occurrence "
                    f"key {c.key}; remove one",
                    where(),
                )
            )
        keys.setdefault(c.key, c.entry_index)
    return out


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _monthly_findings(p: Prepared, now: datetime) -> list[Diagnostic]:
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


def _reschedule_target_findings(p: Prepared) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for key, m in reschedules(p).items():
        local, at = m.local.replace(tzinfo=None), m.at.replace(tzinfo=None)
        problems = []
        blocked = p.rules.block(local.date(), at)
        if blocked is not None:
            reason, detail = blocked
            problems.append(f"on a blocked day ({reason}{': ' + detail if detail else ''})")
        if p.window is not None and not in_window(p.window, local):
            problems.append(f"outside the {window_text(p)}")
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
                    p.entry.locate(["spec", "exceptions", p.reschedule_index[key], "rescheduled_to"]),
                )
            )
    return out


def _unmatched_findings(p: Prepared) -> list[Diagnostic]:
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


def _matches_any(p: Prepared, e: ExceptionRule) -> bool:
    """Whether exception `e` acts on a scheduled occurrence (a skip: after reschedules; a
    modify: after reschedules and skips)."""
    skips = [x for x in p.exceptions if x.kind == "skip"]

    def acts_on(o: Occurrence) -> bool:
        return (
            o.status == "scheduled"
            and e.lo_at <= o.at < e.hi_at
            and not (e.kind == "modify" and any(x.lo_at <= o.at < x.hi_at for x in skips))
        )

    moved = reschedules(p)
    if any(acts_on(m) for m in moved.values()):
        return True
    lo, hi = e.lo, e.hi
    if p.start is not None:
        lo = max(lo, p.start)
    if p.end is not None:
        hi = min(hi, p.end)
    for chunk_lo, chunk_hi in chunks(lo, hi):
        for o in steps_1_to_4(p, chunk_lo, chunk_hi):
            if o.key not in moved and acts_on(o):
                return True
    return False

