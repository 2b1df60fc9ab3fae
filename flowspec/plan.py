"""The occurrence plan: what the compiler produces and every renderer, diff and apply consume.

`to_json` is the machine contract of SPEC 3 (`flowspec.plan/v1`): keys may be added, never
renamed. A Plan's automations may be a lazy iterator so a plan of a million occurrences streams
to JSON holding one automation's occurrences at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Literal

PLAN_FORMAT = "flowspec.plan/v1"

Status = Literal["scheduled", "skipped", "paused", "inactive"]
Reason = Literal[
    "outside_window", "blackout", "weekend", "holiday", "exception", "merged", "dst_gap", "past_end"
]
MovedBy = Literal["window", "next_allowed", "reschedule"]
Dst = Literal["gap_shifted", "gap_skipped", "overlap_first", "overlap_last", "overlap_both"]


@dataclass(frozen=True, slots=True)
class Occurrence:
    key: str  # <organization>/<automation>/<slot>[+fold]
    status: Status
    at: datetime  # aware, UTC
    local: datetime  # aware, in the automation's execution_timezone
    moved_from: datetime | None = None  # aware UTC: the instant after step 2, before any move
    moved_by: MovedBy | None = None
    reason: Reason | None = None
    detail: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    dst: Dst | None = None

    @property
    def slot(self) -> str:
        return self.key.rsplit("/", 1)[1]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "at": format_utc(self.at),
            "local": format_local(self.local),
            "moved_from": format_utc(self.moved_from) if self.moved_from else None,
            "moved_by": self.moved_by,
            "reason": self.reason,
            "detail": self.detail,
            "overrides": dict(self.overrides),
            "dst": self.dst,
        }


@dataclass(frozen=True, slots=True)
class AutomationPlan:
    organization: str
    name: str
    source: str  # file the Automation was loaded from
    timezone: str
    occurrences: list[Occurrence]
    # Content hash of the resolved Automation (defaults merged, referenced Flow/Channel/Audience
    # included): apply and diff use it to skip automations that did not change.
    spec_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "name": self.name,
            "source": self.source,
            "timezone": self.timezone,
            "occurrences": [o.to_json() for o in self.occurrences],
        }


@dataclass(frozen=True, slots=True)
class Inputs:
    tzdata: str
    holidays: str


@dataclass(slots=True)
class Plan:
    range_from: datetime  # aware UTC, inclusive
    range_to: datetime  # aware UTC, exclusive
    inputs: Inputs
    automations: Iterable[AutomationPlan]  # sorted by (organization, name); may be lazy

    def header_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "range": {"from": format_utc(self.range_from), "to": format_utc(self.range_to)},
            "inputs": {"tzdata": self.inputs.tzdata, "holidays": self.inputs.holidays},
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.header_json(), "automations": [a.to_json() for a in self.automations]}

    def write_json(self, out: IO[str]) -> None:
        """Stream the plan: one automation's occurrences in memory at a time."""
        header = json.dumps(self.header_json(), indent=2)
        out.write(header[:-2] + ',\n  "automations": [')
        first = True
        for automation in self.automations:
            text = json.dumps(automation.to_json(), indent=2)
            out.write(("\n" if first else ",\n") + _indent(text, 4))
            first = False
        out.write("\n  ]\n}\n" if not first else "]\n}\n")


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


def format_utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_local(t: datetime) -> str:
    return t.replace(microsecond=0).isoformat()


def iter_occurrences(plan: Plan) -> Iterator[tuple[AutomationPlan, Occurrence]]:
    for automation in plan.automations:
        for occurrence in automation.occurrences:
            yield automation, occurrence
