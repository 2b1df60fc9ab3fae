"""`--format html`: one self-contained report file (no network, no script, no CDN).

Per automation: a month calendar with days marked scheduled / skipped / rescheduled / modified
(hover a day for its occurrences and reasons), like the calendar widget of the original design,
then the occurrence table. A Content-Security-Policy forbids every fetch, so the file renders the
same offline, from a CI artifact or an e-mail attachment.

`month_grids_html`, `legend_html` and `document` are the reusable pieces (`flowspec diff` can
draw its own day marks with them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from typing import IO

from flowspec.plan import AutomationPlan, Occurrence, Plan, format_utc
from flowspec.render import (
    MONTH_NAMES,
    WEEKDAY_NAMES,
    RenderOptions,
    automation_title,
    details,
    local_label,
    sorted_occurrences,
    status_counts,
)
from flowspec.render.calendar import (
    FIRST_WEEKDAY,
    LEGEND,
    DayMark,
    Kind,
    day_marks,
    local_span,
    months,
    occurrence_kind,
)

# default-src 'none': no script, font, image or frame may load, from anywhere.
CSP = "default-src 'none'; style-src 'unsafe-inline'"

STYLE = """
:root { color-scheme: light dark; --fg: #1f2328; --muted: #656d76; --line: #d0d7de;
  --bg: #ffffff; --panel: #f6f8fa;
  --scheduled: #2da44e; --skipped: #cf222e; --rescheduled: #0969da; --modified: #bf8700;
  --paused: #8250df; --inactive: #8c959f; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --line: #3d444d;
  --bg: #0d1117; --panel: #151b23; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 2px; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.meta { color: var(--muted); margin: 0 0 12px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; list-style: none; padding: 0;
  margin: 8px 0 20px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 22px; height: 18px; border-radius: 4px; margin: 0 3px; }
section.automation { border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  margin: 0 0 20px; background: var(--panel); }
.months { display: flex; flex-wrap: wrap; gap: 20px; margin: 8px 0 12px; }
table.month { border-collapse: separate; border-spacing: 3px; }
table.month caption { font-weight: 600; padding-bottom: 2px; }
table.month th { font-weight: 500; color: var(--muted); font-size: 12px; width: 30px; }
table.month td { width: 30px; height: 26px; text-align: center; border-radius: 4px;
  font-variant-numeric: tabular-nums; }
td.scheduled, .swatch.scheduled { background: var(--scheduled); color: #fff; font-weight: 600; }
td.skipped, .swatch.skipped { background: var(--skipped); color: #fff; text-decoration: line-through; }
td.rescheduled, .swatch.rescheduled { background: var(--rescheduled); color: #fff; font-weight: 600;
  outline: 2px dashed var(--rescheduled); outline-offset: 1px; }
td.modified, .swatch.modified { background: var(--modified); color: #fff; font-weight: 600;
  box-shadow: inset 0 -4px 0 rgba(0, 0, 0, .35); }
td.paused, .swatch.paused { background: var(--paused); color: #fff; }
td.inactive, .swatch.inactive { background: var(--inactive); color: #fff; }
td.outside, .swatch.outside { color: var(--muted); opacity: .35; }
.swatch.outside { border: 1px dashed var(--muted); }
td[title] { cursor: help; }
details summary { cursor: pointer; color: var(--muted); margin: 4px 0; }
table.occurrences { border-collapse: collapse; width: 100%; margin-top: 6px; }
table.occurrences th, table.occurrences td { text-align: left; padding: 3px 10px 3px 0;
  border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
table.occurrences td.details { white-space: normal; word-break: break-word; }
table.occurrences th { color: var(--muted); font-weight: 500; }
.status { font-weight: 600; }
tr.skipped .status { color: var(--skipped); }
tr.scheduled .status { color: var(--scheduled); }
tr.rescheduled .status { color: var(--rescheduled); }
tr.modified .status { color: var(--modified); }
tr.paused .status { color: var(--paused); }
tr.inactive .status { color: var(--inactive); }
p.empty { color: var(--muted); }
"""


def render(plan: Plan, out: IO[str], options: RenderOptions) -> None:
    title = f"flowspec plan {format_utc(plan.range_from)} .. {format_utc(plan.range_to)}"
    head, tail = document(title, "\x00").split("\x00")
    out.write(head)
    out.write(
        "<header>\n<h1>flowspec plan</h1>\n"
        f'<p class="meta" id="range">Range <code>{format_utc(plan.range_from)}</code> .. '
        f"<code>{format_utc(plan.range_to)}</code> · tzdata <code>{escape(plan.inputs.tzdata)}</code>"
        f" · holidays <code>{escape(plan.inputs.holidays)}</code></p>\n"
        f"{legend_html()}\n</header>\n<main>\n"
    )
    empty = True
    for automation in plan.automations:
        empty = False
        out.write(automation_section(plan, automation))
    if empty:
        out.write('<p class="empty">No automations.</p>\n')
    out.write("</main>\n" + tail)


def document(title: str, body: str, *, extra_style: str = "") -> str:
    """A complete HTML page around `body`: inline style, no external resource allowed."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}{extra_style}</style>\n</head>\n<body>\n"
        f"{body}"
        "</body>\n</html>\n"
    )


def legend_html(kinds: Sequence[Kind] = LEGEND) -> str:
    items = "".join(
        f'<li><span class="swatch {k.name}"></span>{escape(k.meaning)}</li>' for k in kinds
    )
    return f'<ul class="legend">{items}</ul>'


def month_grids_html(first: date, last: date, marks: Mapping[date, DayMark]) -> str:
    """Month tables covering [first, last]; a marked day gets its kind as class and hover text."""
    import calendar as _calendar

    cal = _calendar.Calendar(FIRST_WEEKDAY)
    names = "".join(f"<th>{WEEKDAY_NAMES[(FIRST_WEEKDAY + i) % 7][:2]}</th>" for i in range(7))
    tables = []
    for year, month in months(first, last):
        rows = []
        for week in cal.monthdatescalendar(year, month):
            cells = []
            for day in week:
                if day.month != month:
                    cells.append("<td></td>")
                    continue
                attrs = f' data-date="{day.isoformat()}"'
                if not first <= day <= last:
                    attrs += ' class="outside"'
                elif day in marks:
                    mark = marks[day]
                    tip = f"{day.isoformat()}\n" + "\n".join(mark.lines)
                    attrs += f' class="{mark.kind}" title="{escape(tip)}"'
                cells.append(f"<td{attrs}>{day.day}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        tables.append(
            f'<table class="month"><caption>{MONTH_NAMES[month - 1]} {year}</caption>'
            f"<thead><tr>{names}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    return '<div class="months">' + "\n".join(tables) + "</div>"


def automation_section(plan: Plan, automation: AutomationPlan) -> str:
    occurrences = sorted_occurrences(automation)
    title = automation_title(automation)
    first, last = local_span(plan, automation.timezone)
    parts = [
        f'<section class="automation" id="{escape(title)}">',
        f"<h2>{escape(title)}</h2>",
        f'<p class="meta"><code>{escape(automation.timezone)}</code> · '
        f"<code>{escape(automation.source)}</code> · {status_counts(occurrences)}</p>",
        month_grids_html(first, last, day_marks(occurrences)),
    ]
    if occurrences:
        rows = "\n".join(occurrence_row(o) for o in occurrences)
        parts.append(
            f"<details open><summary>{len(occurrences)} occurrences</summary>\n"
            '<table class="occurrences"><thead><tr><th>slot</th><th>local</th><th>UTC</th>'
            f"<th>status</th><th>details</th></tr></thead><tbody>\n{rows}\n</tbody></table>\n"
            "</details>"
        )
    parts.append("</section>\n")
    return "\n".join(parts)


def occurrence_row(o: Occurrence) -> str:
    notes = " ".join(details(o))
    return (
        f'<tr class="{occurrence_kind(o)}" data-key="{escape(o.key)}"><td><code>{escape(o.slot)}</code></td>'
        f"<td>{local_label(o.local)}</td><td><code>{format_utc(o.at)}</code></td>"
        f'<td class="status">{o.status}</td><td class="details"><code>{escape(notes)}</code></td></tr>'
    )
