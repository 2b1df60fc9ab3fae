"""`--format markdown`: the plan as a pull-request comment.

A table per automation, folded in `<details>` when it is long, and the whole comment kept under
GitHub's 65,536-character limit: past `MAX_CHARS` rows stop and a note says how many were left
out and how to see them all.
"""

from __future__ import annotations

from typing import IO

from flowspec.plan import AutomationPlan, Occurrence, Plan, format_utc
from flowspec.render import (
    RenderOptions,
    automation_title,
    details,
    hidden_skipped,
    local_label,
    sorted_occurrences,
    status_counts,
    visible,
)

FOLD_AFTER = 10  # rows; a longer table is folded so the comment stays readable
MAX_CHARS = 60_000  # GitHub rejects comments over 65,536 characters; leave room for the note
_ESCAPE = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~&"})


def render(plan: Plan, out: IO[str], options: RenderOptions) -> None:
    budget = _Budget(out, MAX_CHARS)
    budget.write(
        "### flowspec plan\n\n"
        f"Range `{format_utc(plan.range_from)}` .. `{format_utc(plan.range_to)}`"
        f" · tzdata `{plan.inputs.tzdata}` · holidays `{plan.inputs.holidays}`\n"
    )
    empty = True
    for automation in plan.automations:
        empty = False
        if budget.exhausted:
            budget.skip(automation, options)
            continue
        _automation(budget, automation, options)
    if empty:
        budget.write("\nNo automations.\n")
    if budget.left_out_rows or budget.left_out_automations:
        parts = []
        if budget.left_out_rows:
            parts.append(_plural(budget.left_out_rows, "more occurrence"))
        if budget.left_out_automations:
            parts.append(_plural(budget.left_out_automations, "more automation"))
        out.write(
            f"\n> [!NOTE]\n> Truncated to fit a comment: {' and '.join(parts)} not shown. "
            "Run `flowspec plan --format text` for the full plan.\n"
        )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class _Budget:
    """Counts what was written so truncation happens before GitHub's limit, never after."""

    def __init__(self, out: IO[str], limit: int) -> None:
        self.out, self.limit, self.used = out, limit, 0
        self.exhausted = False
        self.left_out_rows = 0
        self.left_out_automations = 0

    def fits(self, text: str) -> bool:
        return not self.exhausted and self.used + len(text) <= self.limit

    def write(self, text: str) -> None:
        self.out.write(text)
        self.used += len(text)

    def skip(self, automation: AutomationPlan, options: RenderOptions) -> None:
        self.left_out_automations += 1
        self.left_out_rows += len(visible(automation.occurrences, options))


def _automation(budget: _Budget, automation: AutomationPlan, options: RenderOptions) -> None:
    occurrences = sorted_occurrences(automation)
    rows = visible(occurrences, options)
    counts = status_counts(occurrences)
    if hidden_skipped(occurrences, options):
        counts += " (not listed; `--include-skipped` lists them)"
    head = (
        f"\n#### `{automation_title(automation)}`\n\n"
        f"`{automation.timezone}` · `{escape(automation.source)}` · {counts}\n"
    )
    if not budget.fits(head):
        budget.exhausted = True
        budget.skip(automation, options)
        return
    budget.write(head)
    if not rows:
        return
    folded = len(rows) > FOLD_AFTER
    opening = (f"\n<details><summary>{len(rows)} occurrences</summary>\n" if folded else "")
    closing = "\n</details>\n" if folded else ""
    table_head = "\n| slot | local | UTC | status | details |\n|---|---|---|---|---|\n"
    if not budget.fits(opening + table_head + closing):
        budget.exhausted = True
        budget.left_out_rows += len(rows)
        return
    budget.write(opening + table_head)
    budget.limit -= len(closing)  # the fold must close even if rows run out of room
    for index, occurrence in enumerate(rows):
        line = row(occurrence)
        if not budget.fits(line):
            budget.exhausted = True
            budget.left_out_rows += len(rows) - index
            break
        budget.write(line)
    budget.limit += len(closing)
    budget.write(closing)


def row(o: Occurrence) -> str:
    notes = " ".join(details(o))
    return (
        f"| `{o.slot}` | {local_label(o.local)} | {format_utc(o.at)} | {o.status} "
        f"| {escape(notes)} |\n"
    )


def escape(text: str) -> str:
    """Text inside a table cell: no markdown, HTML or column breaks from user strings."""
    return text.translate(_ESCAPE).replace("\n", " ")
