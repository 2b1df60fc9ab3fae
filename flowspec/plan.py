"""The occurrence plan: what the compiler produces and every renderer, diff and apply consume.

`to_json` is the machine contract of SPEC 3 (`flowspec.plan/v1`): keys may be added, never
renamed. A Plan's automations may be a lazy iterator so a plan of a million occurrences streams
to JSON holding one automation's occurrences at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any, Literal, NamedTuple

PLAN_FORMAT = "flowspec.plan/v1"

Status = Literal["scheduled", "skipped", "paused", "inactive"]
Reason = Literal[
    "outside_window", "blackout", "weekend", "holiday", "exception", "merged", "dst_gap", "past_end"
]
MovedBy = Literal["window", "next_allowed", "reschedule"]
Dst = Literal["gap_shifted", "gap_skipped", "overlap_first", "overlap_last", "overlap_both"]

NO_OVERRIDES: Mapping[str, Any] = MappingProxyType({})


class Occurrence(NamedTuple):
    """One occurrence of an automation (SPEC 3).

    A NamedTuple rather than a frozen dataclass: the compiler builds a million of these per
    plan, and `tuple.__new__(Occurrence, fields)` builds one at C speed, about twice as fast as
    any Python-level constructor (measured in benchmarks/bench_compile.py). Compare and copy
    through field names (`o.at`, `o._replace(...)`), never by position.
    """

    key: str  # <organization>/<automation>/<slot>[+fold]
    status: Status
    at: datetime  # aware, UTC
    local: datetime  # aware, in the automation's execution_timezone
    moved_from: datetime | None = None  # aware UTC: the instant after step 2, before any move
    moved_by: MovedBy | None = None
    reason: Reason | None = None
    detail: str | None = None
    overrides: Mapping[str, Any] = NO_OVERRIDES
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

    def header_json(self) -> dict[str, Any]:
        """`to_json` without its last key, `occurrences` (streamed by `Plan.write_json`)."""
        return {
            "organization": self.organization,
            "name": self.name,
            "source": self.source,
            "timezone": self.timezone,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.header_json(), "occurrences": [o.to_json() for o in self.occurrences]}


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
            # Byte for byte `json.dumps(..., indent=2)`, but one occurrence at a time: that
            # encoder is pure Python when indenting (several times slower than the values'
            # own encoding) and would hold the automation's whole text, in several copies.
            text = _indent(json.dumps({**automation.header_json(), "occurrences": []}, indent=2), 4)
            occurrences = iter(automation.occurrences)
            o = next(occurrences, None)
            if o is None:
                out.write(("\n" if first else ",\n") + text)
            else:
                assert text.endswith(_EMPTY_TAIL)
                out.write(("\n" if first else ",\n") + text[: -len(_EMPTY_TAIL)] + "[\n" + _occurrence_text(o))
                for o in occurrences:
                    out.write(",\n" + _occurrence_text(o))
                out.write("\n      ]\n    }")
            first = False
        out.write("\n  ]\n}\n" if not first else "]\n}\n")


_EMPTY_TAIL = "[]\n    }"  # an automation's text ends with its empty "occurrences" list
_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str (ensure_ascii)


def _occurrence_text(o: Occurrence) -> str:
    """`o.to_json()` as `json.dumps(..., indent=2)` writes it at the depth of a plan's
    occurrences (8 spaces; its keys at 10)."""
    parts = []
    for k, v in o.to_json().items():
        if v is None:
            value = "null"
        elif type(v) is str:
            value = _encode_str(v)
        elif v == {}:
            value = "{}"
        else:
            value = json.dumps(v, indent=2).replace("\n", "\n          ")
        parts.append("          " + _encode_str(k) + ": " + value)
    return "        {\n" + ",\n".join(parts) + "\n        }"


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


def format_utc(t: datetime) -> str:
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    if t.year < 1000:  # strftime does not pad such years to four digits; isoformat does
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    # isoformat is several times faster than strftime, and this runs twice per occurrence.
    return t.isoformat(timespec="seconds")[:19] + "Z"


def format_local(t: datetime) -> str:
    return (t.replace(microsecond=0) if t.microsecond else t).isoformat()


def iter_occurrences(plan: Plan) -> Iterator[tuple[AutomationPlan, Occurrence]]:
    for automation in plan.automations:
        for occurrence in automation.occurrences:
            yield automation, occurrence
