"""`--format text`: one occurrence per line, aligned, made to be diffed and committed.

Every column but the last has a fixed width, so changing one occurrence changes exactly one line
of a snapshot (widths never depend on the other occurrences). Nothing depends on the clock:
the header carries the plan's range and input versions, not a generation time.

    flowspec plan  range 2025-11-20T00:00:00Z .. 2025-12-20T00:00:00Z  tzdata 2025b  holidays 0.83

    acme/daily-promo  America/Sao_Paulo  automations/daily-promo.yaml
      21 scheduled, 9 skipped (not listed; --include-skipped lists them)
      SLOT              LOCAL                        UTC                   STATUS     DETAILS
      2025-11-20T09:00  Thu 2025-11-20 09:00 -03:00  2025-11-20T12:00:00Z  scheduled
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
    plan_header,
    safe,
    sorted_occurrences,
    status_counts,
    visible,
)

SLOT_WIDTH = len("2025-11-20T09:00")
FOLD_SLOT_WIDTH = len("2025-11-20T09:00+fold")
LOCAL_WIDTH = len("Thu 2025-11-20 09:00 -03:00")
UTC_WIDTH = len("2025-11-20T12:00:00Z")
STATUS_WIDTH = len("scheduled")
GAP = "  "


def render(plan: Plan, out: IO[str], options: RenderOptions) -> None:
    out.write(f"flowspec plan  {plan_header(plan)}\n")
    empty = True
    for automation in plan.automations:
        empty = False
        out.write("\n")
        out.write(render_automation(automation, options))
    if empty:
        out.write("\nno automations\n")


def render_automation(automation: AutomationPlan, options: RenderOptions) -> str:
    occurrences = sorted_occurrences(automation)
    lines = [
        f"{automation_title(automation)}  {safe(automation.timezone)}  {safe(automation.source)}",
        "  " + summary(occurrences, options),
    ]
    rows = visible(occurrences, options)
    if rows:
        # A fold suffix is rare; widen the slot column only in automations that have one.
        slot_width = FOLD_SLOT_WIDTH if any(len(o.slot) > SLOT_WIDTH for o in rows) else SLOT_WIDTH
        lines.append("  " + _row("SLOT", "LOCAL", "UTC", "STATUS", "DETAILS", slot_width))
        lines.extend("  " + occurrence_line(o, slot_width) for o in rows)
    return "\n".join(lines) + "\n"


def summary(occurrences: list[Occurrence], options: RenderOptions) -> str:
    text = status_counts(occurrences)
    if hidden_skipped(occurrences, options):
        text += " (not listed; --include-skipped lists them)"
    return text


def occurrence_line(o: Occurrence, slot_width: int = SLOT_WIDTH) -> str:
    return _row(o.slot, local_label(o.local), format_utc(o.at), o.status, " ".join(details(o)), slot_width)


def _row(slot: str, local: str, utc: str, status: str, notes: str, slot_width: int) -> str:
    cells = [
        slot.ljust(slot_width),
        local.ljust(LOCAL_WIDTH),
        utc.ljust(UTC_WIDTH),
        status.ljust(STATUS_WIDTH),
        notes,
    ]
    # No trailing blanks: editors and `git diff --check` would flag them.
    return GAP.join(cells).rstrip()
