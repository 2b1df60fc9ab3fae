"""`--format calendar`: month grids per automation in the terminal, like `cal` with markers.

Each day carries a marker character, so the grid reads the same in a pipe, a file or a diff;
colour is added only when asked (the command enables it for a terminal and honours NO_COLOR).
Day classification (`day_marks`) and the grid layout (`month_grids_text`) are shared with the
HTML report and reusable by `flowspec diff`.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

import click

from flowspec.plan import AutomationPlan, Occurrence, Plan
from flowspec.render import (
    MONTH_NAMES,
    WEEKDAY_NAMES,
    RenderOptions,
    automation_title,
    plan_header,
    safe,
    sorted_occurrences,
    status_counts,
)

# Sunday first, like the calendar widget of the original design.
FIRST_WEEKDAY = _calendar.SUNDAY
MONTHS_PER_ROW = 2  # two 27-column months fit an 80-column terminal with room to spare
MONTH_WIDTH = 27  # 7 cells of "dd" + marker, one space between cells
MONTH_GAP = "    "


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # css class and legend word
    marker: str  # one character in the terminal grid
    style: Mapping[str, Any]  # click.style arguments
    meaning: str  # legend text


# Most telling first: a day shows the first kind any of its occurrences has.
KINDS: tuple[Kind, ...] = (
    Kind("modified", "~", {"fg": "yellow", "bold": True}, "modified (overrides)"),
    Kind("rescheduled", ">", {"fg": "cyan", "bold": True}, "rescheduled (moved here)"),
    Kind("scheduled", "*", {"fg": "green", "bold": True}, "scheduled"),
    Kind("paused", "p", {"fg": "magenta"}, "paused"),
    Kind("inactive", "i", {"fg": "magenta"}, "inactive"),
    Kind("skipped", "x", {"fg": "red"}, "skipped"),
)
KIND = {k.name: k for k in KINDS}
OUTSIDE = Kind("outside", ".", {"dim": True}, "outside the range")
# The legend reads in the order people ask about days, not in marker priority.
LEGEND: tuple[Kind, ...] = (
    *(KIND[name] for name in ("scheduled", "skipped", "rescheduled", "modified", "paused", "inactive")),
    OUTSIDE,
)


@dataclass(frozen=True, slots=True)
class DayMark:
    """What happens on one local day: its most telling kind, and one line per occurrence."""

    kind: str
    lines: tuple[str, ...]


def occurrence_kind(o: Occurrence) -> str:
    """scheduled, skipped, paused, inactive, or for a scheduled one: modified / rescheduled.

    Rescheduled means it runs on a day that is not its slot's (a reschedule exception, a
    window deferral past midnight or `next_allowed`); a move within the same day is not shown.
    """
    if o.status != "scheduled":
        return o.status
    if o.overrides:
        return "modified"
    if o.moved_by == "reschedule" or o.local.date().isoformat() != o.slot[:10]:
        return "rescheduled"
    return "scheduled"


def occurrence_line(o: Occurrence) -> str:
    """One line of a day's hover text: time, what happens, and why."""
    text = f"{o.local:%H:%M} {occurrence_kind(o)}"
    if o.reason:
        text += f": {o.reason}" + (f" ({o.detail})" if o.detail else "")
    elif o.detail:
        text += f" ({o.detail})"
    if o.moved_by:
        text += f", moved by {o.moved_by} from slot {o.slot}"
    if o.dst:
        text += f", dst {o.dst}"
    if o.overrides:
        text += ", overrides " + ", ".join(f"{k}={v}" for k, v in sorted(o.overrides.items()))
    return text


def day_marks(occurrences: Iterable[Occurrence]) -> dict[date, DayMark]:
    """Occurrences grouped by local date, each day marked with its most telling kind."""
    by_day: dict[date, list[Occurrence]] = {}
    for o in occurrences:
        by_day.setdefault(o.local.date(), []).append(o)
    marks: dict[date, DayMark] = {}
    for day, items in by_day.items():
        kinds = {occurrence_kind(o) for o in items}
        kind = next(k.name for k in KINDS if k.name in kinds)
        items.sort(key=lambda o: (o.at, o.key))
        marks[day] = DayMark(kind, tuple(occurrence_line(o) for o in items))
    return marks


def local_span(plan: Plan, timezone: str) -> tuple[date, date]:
    """First and last local dates the plan's range touches in `timezone`."""
    try:
        zone = ZoneInfo(timezone)
    except Exception:  # a plan from a foreign tzdata: fall back to UTC days
        zone = ZoneInfo("UTC")
    first = plan.range_from.astimezone(zone).date()
    last = (plan.range_to - timedelta(microseconds=1)).astimezone(zone).date()
    return first, max(first, last)


def months(first: date, last: date) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


# --------------------------------------------------------------------------- terminal grid


def month_grid_lines(
    year: int,
    month: int,
    first: date,
    last: date,
    marks: Mapping[date, DayMark],
    kinds: Mapping[str, Kind],
    color: bool,
) -> list[str]:
    """One month as fixed-width lines: title, weekday names, six week rows (padded)."""
    cal = _calendar.Calendar(FIRST_WEEKDAY)
    title = f"{MONTH_NAMES[month - 1]} {year}".center(MONTH_WIDTH)
    names = " ".join(f"{WEEKDAY_NAMES[(FIRST_WEEKDAY + i) % 7][:2]} " for i in range(7))
    lines = [title, names.rstrip().ljust(MONTH_WIDTH)]
    weeks = cal.monthdatescalendar(year, month)
    for week in weeks:
        cells = []
        for day in week:
            if day.month != month:
                cells.append("   ")
            elif not first <= day <= last:
                cells.append(_cell(" .", OUTSIDE, color))
            elif day in marks:
                kind = kinds[marks[day].kind]
                cells.append(_cell(f"{day.day:2d}{kind.marker}", kind, color))
            else:
                cells.append(f"{day.day:2d} ")
        lines.append(" ".join(cells))
    while len(lines) < 8:  # every month 6 week rows tall so months side by side line up
        lines.append(" " * MONTH_WIDTH)
    return lines


def _cell(text: str, kind: Kind, color: bool) -> str:
    core = text.rstrip()
    # Blanks stay outside the escape codes so stripping colour gives the plain text exactly.
    return (click.style(core, **kind.style) if color else core) + " " * (3 - len(core))


def month_grids_text(
    first: date,
    last: date,
    marks: Mapping[date, DayMark],
    *,
    kinds: Sequence[Kind] = KINDS,
    color: bool = False,
    per_row: int = MONTHS_PER_ROW,
) -> list[str]:
    """Month grids covering [first, last], `per_row` side by side, right blanks stripped."""
    table = {k.name: k for k in kinds}
    grids = [month_grid_lines(y, m, first, last, marks, table, color) for y, m in months(first, last)]
    lines: list[str] = []
    for start in range(0, len(grids), per_row):
        row = grids[start : start + per_row]
        if lines:
            lines.append("")
        for parts in zip(*row, strict=True):
            lines.append(MONTH_GAP.join(parts).rstrip())
        while lines and not lines[-1]:
            lines.pop()
    return lines


def legend_text(kinds: Sequence[Kind] = LEGEND, *, color: bool = False, per_line: int = 4) -> str:
    """The markers explained, a few per line so the legend fits a terminal."""
    parts = [f"{_cell(k.marker, k, color).rstrip()} {k.meaning}" for k in kinds]
    lines = ["   ".join(parts[i : i + per_line]) for i in range(0, len(parts), per_line)]
    return "Legend: " + "\n        ".join(lines)


# --------------------------------------------------------------------------- the format


def render(plan: Plan, out: IO[str], options: RenderOptions) -> None:
    out.write(f"flowspec plan  {plan_header(plan)}\n")
    empty = True
    for automation in plan.automations:
        empty = False
        out.write("\n" + render_automation(plan, automation, options) + "\n")
    if empty:
        out.write("\nno automations\n")
    else:
        out.write("\n" + legend_text(color=options.color) + "\n")


def render_automation(plan: Plan, automation: AutomationPlan, options: RenderOptions) -> str:
    occurrences = sorted_occurrences(automation)
    first, last = local_span(plan, automation.timezone)
    lines = [
        f"{automation_title(automation)}  {safe(automation.timezone)}  {safe(automation.source)}",
        status_counts(occurrences),
        "",
        *month_grids_text(first, last, day_marks(occurrences), color=options.color),
    ]
    return "\n".join(lines)
