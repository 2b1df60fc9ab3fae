"""Helpers shared by the compiler tests: YAML text in, plan JSON out (no tests here)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from flowspec.compiler import compile_plan, compiler_diagnostics
from flowspec.config import Config, load_config_sources
from flowspec.diagnostics import Diagnostic

ENVELOPE = """\
apiVersion: flowspec/v1
kind: Automation
metadata: {{name: {name}, organization: {org}}}
spec:
  flow: promo
  whatsapp_number: main
  audience: {{contact_ids: [c-1]}}
  schedule:
{schedule}
"""


def automation_yaml(schedule: str, exceptions: str = "", *, name: str = "a", org: str = "acme") -> str:
    """An Automation document with `schedule` (and `exceptions`) given as YAML mapping text."""
    text = ENVELOPE.format(name=name, org=org, schedule=textwrap.indent(textwrap.dedent(schedule).strip(), "    "))
    if exceptions.strip():
        text += "  exceptions:\n" + textwrap.indent(textwrap.dedent(exceptions).strip(), "    ") + "\n"
    return text


def config_of(*documents: str) -> Config:
    config = load_config_sources([(f"automations/doc{i}.yaml", d.encode()) for i, d in enumerate(documents)])
    assert not [d for d in config.diagnostics if d.is_error], [d.render() for d in config.diagnostics]
    return config


def instant(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def plan_json(config: Config, range_from: str, range_to: str, **kw: Any) -> dict[str, Any]:
    return compile_plan(config, instant(range_from), instant(range_to), **kw).to_json()


def occurrences(
    schedule: str, range_from: str, range_to: str, exceptions: str = "", **kw: Any
) -> list[dict[str, Any]]:
    """JSON occurrences of one automation `acme/a` over [range_from, range_to)."""
    plan = plan_json(config_of(automation_yaml(schedule, exceptions)), range_from, range_to, **kw)
    (automation,) = plan["automations"]
    return list(automation["occurrences"])


def brief(occs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(slot, status, at) triples: the shape most expectations are written in."""
    return [(o["key"].split("/", 2)[2], o["status"], o["at"]) for o in occs]


def diagnostics(schedule: str, exceptions: str = "", *, now: str = "2025-11-01") -> list[Diagnostic]:
    return compiler_diagnostics(config_of(automation_yaml(schedule, exceptions)), now=instant(now))


def codes(schedule: str, exceptions: str = "", *, now: str = "2025-11-01") -> list[str]:
    return [d.code for d in diagnostics(schedule, exceptions, now=now)]


def occ(
    slot: str,
    at: str,
    local: str,
    status: str = "scheduled",
    *,
    moved_from: str | None = None,
    moved_by: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
    overrides: dict[str, Any] | None = None,
    dst: str | None = None,
    prefix: str = "acme/a/",
) -> dict[str, Any]:
    """A full expected occurrence in the plan's JSON shape (SPEC 3)."""
    return {
        "key": prefix + slot,
        "status": status,
        "at": at,
        "local": local,
        "moved_from": moved_from,
        "moved_by": moved_by,
        "reason": reason,
        "detail": detail,
        "overrides": overrides or {},
        "dst": dst,
    }
