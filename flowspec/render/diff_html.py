"""`flowspec diff --format html`: one self-contained report (a CI artifact) of a diff.

Built from the plan report's pieces (`flowspec.render.html`: page shell with a CSP that forbids
every fetch, month grids, legend styling): a summary table, then per changed automation a month
calendar whose days are marked added / removed / moved / modified (hover a day for what changed)
and the same `+ - ~` lines as the text report (`--expand` lists every occurrence). No size limit: this is where the full report is
when a pull-request comment had to be truncated.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from html import escape
from typing import IO
from zoneinfo import ZoneInfo

from flowspec.diff import AutomationDiff, Diff
from flowspec.plan import format_utc
from flowspec.render import local_label
from flowspec.render.calendar import DayMark
from flowspec.render.diff_text import (
    Line,
    automation_lines,
    counts,
    document_lines,
    summary_line,
)
from flowspec.render.html import document, month_grids_html

# Day kinds of a diff calendar, most telling first when a day has several.
DIFF_KINDS = (
    ("modified", "status, reason or overrides changed"),
    ("moved", "an occurrence moved here or away"),
    ("added", "occurrence added"),
    ("removed", "occurrence removed"),
)

DIFF_STYLE = """
:root { --added: #2da44e; --removed: #cf222e; --moved: #0969da; --changed: #bf8700; }
td.added, .swatch.added { background: var(--added); color: #fff; font-weight: 600; }
td.removed, .swatch.removed { background: var(--removed); color: #fff; text-decoration: line-through; }
td.moved, .swatch.moved { background: var(--moved); color: #fff; font-weight: 600; }
td.modified, .swatch.modified { background: var(--changed); color: #fff; font-weight: 600; }
pre.diff { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
  overflow-x: auto; font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre.diff .add { color: var(--added); } pre.diff .del { color: var(--removed); }
pre.diff .chg { color: var(--changed); }
table.summary { border-collapse: collapse; margin: 8px 0 20px; }
table.summary th, table.summary td { text-align: left; padding: 3px 14px 3px 0;
  border-bottom: 1px solid var(--line); white-space: nowrap; }
table.summary td.n { text-align: right; font-variant-numeric: tabular-nums; }
"""

_LINE_CLASS = {"+": "add", "-": "del", "~": "chg"}


def render(diff: Diff, out: IO[str], *, expand: bool = False) -> None:
    title = f"flowspec diff {format_utc(diff.range_from)} .. {format_utc(diff.range_to)}"
    parts = [
        "<header>\n<h1>flowspec diff</h1>\n",
        f'<p class="meta" id="range">Range <code>{format_utc(diff.range_from)}</code> .. '
        f"<code>{format_utc(diff.range_to)}</code></p>\n",
        f'<p id="summary"><strong>{escape(summary_line(diff))}</strong></p>\n',
        _legend(),
        "</header>\n<main>\n",
    ]
    if diff.automations:
        parts.append(_summary_table(diff))
    if diff.documents:
        parts.append('<section class="automation" id="config"><h2>Config documents</h2>\n')
        for doc in diff.documents:
            parts.append(_pre(document_lines(doc)))
        parts.append("</section>\n")
    for a in diff.automations:
        parts.append(_automation(diff, a, expand))
    parts.append("</main>\n")
    out.write(document(title, "".join(parts), extra_style=DIFF_STYLE))


def _legend() -> str:
    items = "".join(f'<li><span class="swatch {k}"></span>{escape(m)}</li>' for k, m in DIFF_KINDS)
    return f'<ul class="legend">{items}</ul>\n'


def _summary_table(diff: Diff) -> str:
    rows = []
    for a in diff.automations:
        plus, minus, tilde = counts(a)
        before = local_label(a.next_before.local) if a.next_before else "—"
        after = local_label(a.next_after.local) if a.next_after else "—"
        rows.append(
            f'<tr class="{a.change}"><td><a href="#{escape(a.ident)}"><code>{escape(a.ident)}</code></a></td>'
            f"<td>{a.change}</td><td class=n>{plus}</td><td class=n>{minus}</td><td class=n>{tilde}</td>"
            f"<td>{before}</td><td>{after}</td></tr>"
        )
    return (
        '<table class="summary"><thead><tr><th>automation</th><th>change</th><th>+</th><th>−</th>'
        "<th>~</th><th>next send before</th><th>next send after</th></tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n"
    )


def _pre(lines: list[Line]) -> str:
    body = "\n".join(
        f'<span class="{_LINE_CLASS.get(sign, "ctx")}">{escape(f"{sign} {text}".rstrip())}</span>'
        for sign, text in lines
    )
    return f'<pre class="diff">{body}</pre>\n'


def day_marks(a: AutomationDiff) -> dict[date, DayMark]:
    """Each local day an occurrence changed on, with one hover line per change."""
    kinds: dict[date, set[str]] = defaultdict(set)
    lines: dict[date, list[str]] = defaultdict(list)

    def mark(day: date, kind: str, text: str) -> None:
        kinds[day].add(kind)
        lines[day].append(text)

    occ = a.occurrences
    for o in occ.added:
        mark(o.local.date(), "added", f"+ {o.local:%H:%M} {o.status} ({o.slot})")
    for o in occ.removed:
        mark(o.local.date(), "removed", f"- {o.local:%H:%M} {o.status} ({o.slot})")
    for m in occ.moved:
        mark(m.old.local.date(), "moved", f"~ {m.old.local:%H:%M} moved away to {m.new.local:%Y-%m-%d %H:%M}")
        mark(m.new.local.date(), "moved", f"~ {m.new.local:%H:%M} moved here from {m.old.local:%Y-%m-%d %H:%M}")
    for md in occ.modified:
        what = ", ".join(f"{k}: {v[0]} → {v[1]}" for k, v in md.changes.items())
        mark(md.new.local.date(), "modified", f"~ {md.new.local:%H:%M} {what}")
    order = [k for k, _ in DIFF_KINDS]
    return {
        day: DayMark(next(k for k in order if k in ks), tuple(lines[day])) for day, ks in kinds.items()
    }


def _span(diff: Diff, timezone: str) -> tuple[date, date]:
    try:
        zone = ZoneInfo(timezone)
    except Exception:  # an unknown zone never got this far, but a report must still render
        zone = ZoneInfo("UTC")
    first = diff.range_from.astimezone(zone).date()
    last = (diff.range_to - timedelta(microseconds=1)).astimezone(zone).date()
    return first, max(first, last)


def _automation(diff: Diff, a: AutomationDiff, expand: bool) -> str:
    parts = [
        f'<section class="automation" id="{escape(a.ident)}">',
        f"<h2>{escape(a.ident)}</h2>",
        f'<p class="meta">{a.change} · <code>{escape(a.timezone)}</code> · '
        f"<code>{escape(a.source or '')}</code></p>",
    ]
    if a.occurrences:
        first, last = _span(diff, a.timezone)
        marks = day_marks(a)
        # Occurrences moved outside the range still mark their day: widen the grid to show it.
        if marks:
            first, last = min(first, min(marks)), max(last, max(marks))
        parts.append(month_grids_html(first, last, marks))
    parts.append(_pre(automation_lines(a, expand=expand)))
    parts.append("</section>\n")
    return "\n".join(parts)
