"""`--format ics`: an RFC 5545 calendar with one VEVENT per scheduled occurrence.

Reproducible like every format: DTSTAMP is the plan's range start (not the time of rendering) and
each UID derives from the occurrence key, so re-importing an updated plan updates events in place
instead of duplicating them. CRLF line endings and 75-octet folding as the RFC requires.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

from flowspec.plan import AutomationPlan, Occurrence, Plan, format_utc
from flowspec.render import (
    RenderOptions,
    automation_title,
    details,
    local_label,
    sorted_occurrences,
)

PRODID = "-//flowspec//flowspec plan//EN"
UID_DOMAIN = "flowspec"
MAX_OCTETS = 75
CRLF = "\r\n"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # not allowed in TEXT (HTAB is)


def render(plan: Plan, out: IO[str], options: RenderOptions) -> None:
    stamp = ics_datetime(plan.range_from)
    _write(
        out,
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            f"PRODID:{PRODID}",
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            "X-WR-CALNAME:flowspec plan",
            f"X-FLOWSPEC-RANGE:{format_utc(plan.range_from)}/{format_utc(plan.range_to)}",
            f"X-FLOWSPEC-TZDATA:{text(plan.inputs.tzdata)}",
            f"X-FLOWSPEC-HOLIDAYS:{text(plan.inputs.holidays)}",
        ],
    )
    for automation in plan.automations:
        for occurrence in sorted_occurrences(automation):
            if occurrence.status == "scheduled":
                _write(out, event(automation, occurrence, stamp))
    _write(out, ["END:VCALENDAR"])


def uid(key: str) -> str:
    """Stable per occurrence: org and automation names are slugs, so '.' cannot collide."""
    return f"{key.replace('/', '.')}@{UID_DOMAIN}"


def event(automation: AutomationPlan, o: Occurrence, stamp: str) -> list[str]:
    summary = automation_title(automation) + (" (modified)" if o.overrides else "")
    description = "\n".join(
        [
            f"key: {o.key}",
            f"local: {local_label(o.local)} ({automation.timezone})",
            f"source: {automation.source}",
            *details(o),
        ]
    )
    return [
        "BEGIN:VEVENT",
        f"UID:{text(uid(o.key))}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{ics_datetime(o.at)}",
        f"SUMMARY:{text(summary)}",
        f"DESCRIPTION:{text(description)}",
        # A send is not a meeting: importing the plan must not mark anyone busy.
        "TRANSP:TRANSPARENT",
        f"X-FLOWSPEC-KEY:{text(o.key)}",
        "END:VEVENT",
    ]


def ics_datetime(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def text(value: str) -> str:
    """RFC 5545 3.3.11 TEXT: escape backslash, ';', ',' and newlines; drop other controls."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return _CONTROL.sub("", value)


def fold(line: str) -> str:
    """Split a content line into lines of at most 75 octets, never inside a UTF-8 sequence."""
    encoded = line.encode("utf-8")
    if len(encoded) <= MAX_OCTETS:
        return line
    if len(encoded) == len(line):  # ASCII, the usual case: one octet per character
        rest = [line[i : i + MAX_OCTETS - 1] for i in range(MAX_OCTETS, len(line), MAX_OCTETS - 1)]
        return (CRLF + " ").join([line[:MAX_OCTETS], *rest])
    parts: list[str] = []
    current: list[str] = []
    size, limit = 0, MAX_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append("".join(current))
            # Continuation lines start with one space, which counts toward their 75 octets.
            current, size, limit = [], 0, MAX_OCTETS - 1
        current.append(char)
        size += width
    parts.append("".join(current))
    return (CRLF + " ").join(parts)


def _write(out: IO[str], lines: Iterable[str]) -> None:
    out.write("".join(fold(line) + CRLF for line in lines))
