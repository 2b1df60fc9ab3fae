"""Plan renderers: one module per `flowspec plan --format`, all streaming, all deterministic.

Every renderer writes to a text stream and consumes `Plan.automations` once, holding one
automation's occurrences at a time. Output depends only on the Plan and the options — never on
the clock, the machine or the order files were read in — so a rendering can be committed and
checked like a lock file (`flowspec plan --check`).
"""

from __future__ import annotations

import importlib
import json as _json  # the submodule flowspec.render.json shadows the name `json`
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, Literal, Protocol

from flowspec.plan import AutomationPlan, Occurrence, Plan, format_utc

Format = Literal["text", "json", "markdown", "ics", "calendar", "html"]
FORMATS: tuple[Format, ...] = ("text", "json", "markdown", "ics", "calendar", "html")

# Fixed English names: strftime's %a/%B follow the process locale, and output must not.
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)

# Order in which status counts are listed everywhere.
STATUS_ORDER = ("scheduled", "paused", "inactive", "skipped")


@dataclass(frozen=True, slots=True)
class RenderOptions:
    include_skipped: bool = False  # text, markdown: list skipped occurrences too
    color: bool = False  # calendar: ANSI colours (only for a terminal)


class Renderer(Protocol):
    def __call__(self, plan: Plan, out: IO[str], options: RenderOptions) -> None: ...


def render(plan: Plan, fmt: Format, out: IO[str], options: RenderOptions | None = None) -> None:
    """Write `plan` to `out` in format `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown plan format {fmt!r}; use one of {', '.join(FORMATS)}")
    module = importlib.import_module(f"flowspec.render.{fmt}")
    renderer: Renderer = module.render
    renderer(plan, out, options or RenderOptions())


# --------------------------------------------------------------------------- shared pieces


def sorted_occurrences(automation: AutomationPlan) -> list[Occurrence]:
    """The contract's order (at, key), whatever order the producer used."""
    return sorted(automation.occurrences, key=lambda o: (o.at, o.key))


def visible(occurrences: Iterable[Occurrence], options: RenderOptions) -> list[Occurrence]:
    return [o for o in occurrences if options.include_skipped or o.status != "skipped"]


def status_counts(occurrences: Iterable[Occurrence]) -> str:
    """'21 scheduled, 9 skipped' in a fixed status order; 'no occurrences in range' if empty."""
    counts: Counter[str] = Counter(o.status for o in occurrences)
    parts = [f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s]]
    return ", ".join(parts) if parts else "no occurrences in range"


def hidden_skipped(occurrences: Iterable[Occurrence], options: RenderOptions) -> int:
    if options.include_skipped:
        return 0
    return sum(1 for o in occurrences if o.status == "skipped")


def format_offset(delta: timedelta | None) -> str:
    """±HH:MM (±HH:MM:SS for the odd historical offset that has seconds)."""
    seconds = int((delta or timedelta()).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def local_label(local: datetime) -> str:
    """'Thu 2025-11-20 09:00 -03:00': weekday, wall time and offset (fixed width).

    Seconds are left out: slots are whole minutes, and the UTC column carries the exact second.
    """
    weekday = WEEKDAY_NAMES[local.weekday()]
    return f"{weekday} {local:%Y-%m-%d %H:%M} {format_offset(local.utcoffset())}"


def quote(value: str) -> str:
    """A string as a JSON literal: unambiguous, one line whatever it contains."""
    return _json.dumps(value, ensure_ascii=False)


def compact_json(value: Any) -> str:
    return _json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def safe(value: str) -> str:
    """A name or path as is, or JSON-quoted if it holds whitespace or control characters."""
    if value and value.isprintable() and not any(c.isspace() for c in value):
        return value
    return quote(value)


def details(occurrence: Occurrence) -> list[str]:
    """What explains an occurrence beyond its time and status, as `field=value` tokens.

    The field names are the JSON contract's, so text, markdown and JSON speak one language.
    """
    tokens: list[str] = []
    if occurrence.reason:
        tokens.append(f"reason={occurrence.reason}")
    if occurrence.detail:
        tokens.append(f"detail={quote(occurrence.detail)}")
    if occurrence.moved_by:
        tokens.append(f"moved_by={occurrence.moved_by}")
    if occurrence.moved_from:
        tokens.append(f"moved_from={format_utc(occurrence.moved_from)}")
    if occurrence.dst:
        tokens.append(f"dst={occurrence.dst}")
    if occurrence.overrides:
        tokens.append(f"overrides={compact_json(dict(occurrence.overrides))}")
    return tokens


def plan_header(plan: Plan) -> str:
    """Range and inputs: everything besides the files that decides the plan (no clock)."""
    return (
        f"range {format_utc(plan.range_from)} .. {format_utc(plan.range_to)}"
        f"  tzdata {plan.inputs.tzdata}  holidays {plan.inputs.holidays}"
    )


def automation_title(automation: AutomationPlan) -> str:
    return f"{automation.organization}/{automation.name}"
