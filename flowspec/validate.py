"""Validation: the schema layer's diagnostics plus every semantic check of SPEC 2.

Layers, all reported in one run (nothing stops at the first error):

1. loader (FS0xx: YAML, encoding, limits) and schema (FS1xx: the typed models, whose JSON
   Schema projection is what `schemas/` publishes) — both already in `Config.diagnostics`;
2. semantics that need no compiler, here: timezones, dates that exist, ranges, references and
   variables (FS2xx), flow graphs (FS4xx), channels and audiences (FS5xx);
3. the compiler's own checks (`flowspec.compiler.compiler_diagnostics`, FS3xx), which need the
   expanded schedule (reschedule matching, holidays, cron).

Only well-typed objects reach layer 2 (config.py drops documents that fail their model), so the
checks below can trust types; values whose *meaning* can still be wrong (2025-02-30, 99:99) are
parsed defensively here and reported once as FS111.

Every check returns diagnostics; none raises. The catalogue is docs/diagnostics.md.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from pydantic import ValidationError

from flowspec import models, timeparse
from flowspec.checks_flow import flow_start_warnings
from flowspec.compiler import compiler_diagnostics
from flowspec.config import Config, Entry, locate_merged
from flowspec.diagnostics import Diagnostic, Location, Severity, error, warning
from flowspec.schema_errors import diagnostics_from_validation_error
from flowspec.suggest import closest, did_you_mean

PathT = tuple[str | int, ...]
Report = Callable[[Diagnostic], None]

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTACT_FIELD = re.compile(r"^contact\.[A-Za-z_][A-Za-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ENV_FIELDS = ("access_token_env", "app_secret_env", "verify_token_env")
_MAX_CSV_ROW_ERRORS = 3


def validate_config(
    config: Config,
    *,
    now: datetime,
    strict: bool = False,
    roots: Sequence[Path] = (),
) -> list[Diagnostic]:
    """Every diagnostic for `config`, sorted by (file, line, col, code), duplicates removed.

    `now` is passed to the compiler's checks (which look at occurrences). `strict` turns
    warnings into errors, for callers that only look at errors. `roots` are the folders the
    config was loaded from; an Audience `file` is relative to the one holding its document.
    """
    found: list[Diagnostic] = list(config.diagnostics)
    semantic, unsound = _semantic(config, roots)
    found.extend(semantic)
    # The compiler sees only automations whose times mean something: an unknown zone or a
    # date that does not exist is reported once, here, not again as "no occurrences".
    sound = dataclasses.replace(
        config, automations=[a for a in config.automations if id(a) not in unsound]
    )
    found.extend(compiler_diagnostics(sound, now=now))
    out = _unique_sorted(found)
    if strict:
        out = [
            Diagnostic(d.code, Severity.ERROR, d.message, d.location, d.data)
            if d.severity is Severity.WARNING
            else d
            for d in out
        ]
    return out


# Dates far from now mean a typo (0026 for 2026), and near the ends of Python's date range the
# compiler's day arithmetic (a look-back before `from`, a year of FS306) would overflow.
MIN_YEAR, MAX_YEAR = 1900, 2999

# Problems that make an automation's times meaningless: the compiler skips such automations.
_TIME_CODES = frozenset({"FS104", "FS111"})


def semantic_diagnostics(config: Config, *, roots: Sequence[Path] = ()) -> list[Diagnostic]:
    """The semantic checks of SPEC 2 that need no compiler (codes FS2xx, FS4xx, FS5xx)."""
    return _semantic(config, roots)[0]


def _semantic(config: Config, roots: Sequence[Path]) -> tuple[list[Diagnostic], set[int]]:
    out: list[Diagnostic] = []
    report = out.append
    unsound: set[int] = set()
    for automation in config.automations:
        before = len(out)
        _check_automation(config, automation, report)
        if any(d.code in _TIME_CODES for d in out[before:]):
            unsound.add(id(automation))
    for flow in config.flows.values():
        _check_flow(flow, report)
    for channel in config.channels.values():
        _check_channel(channel, report)
    for audience in config.audiences.values():
        _check_audience(audience, roots, report)
    out.extend(flow_start_warnings(config))
    return out, unsound


def _unique_sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    # A bad default in flowspec.yaml is reported once, not once per automation inheriting it.
    seen: set[tuple[str, str, Location | None]] = set()
    unique = []
    for d in diagnostics:
        ident = (d.code, d.message, d.location)
        if ident not in seen:
            seen.add(ident)
            unique.append(d)
    return sorted(unique, key=sort_key)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    loc = d.location
    return (loc.file, loc.line, loc.col, d.code) if loc else ("", 0, 0, d.code)


# --------------------------------------------------------------------------- helpers


@functools.cache
def _zones() -> frozenset[str]:
    """Every IANA zone name: the tzdata package's list (fast), else a scan of the tz path."""
    try:
        listed = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        # available_timezones() stats every file of the tz database (~0.1 s): fallback only.
        return frozenset(available_timezones())
    return frozenset(listed.split())


@functools.cache
def _zones_lower() -> dict[str, str]:
    return {z.lower(): z for z in _zones()}


def suggest_timezone(name: str) -> str | None:
    exact = _zones_lower().get(name.lower())
    if exact is not None:
        return exact
    # Compare within the same region first: "America/Sao_Paul" against America/* only.
    region = name.split("/", 1)[0].lower()
    pool = [z for z in _zones() if z.split("/", 1)[0].lower() == region] or sorted(_zones())
    return closest(name, sorted(pool), cutoff=0.6)


def _key(entry: Entry[Any], path: PathT) -> Location:
    return locate_merged(entry.doc, entry.defaults_doc, path, key=True)


def _when(text: str) -> timeparse.When | None:
    try:
        return timeparse.parse_when(text)
    except ValueError:
        return None


def _instant(w: timeparse.When, zone: ZoneInfo | None, *, end: bool) -> datetime | None:
    """A comparable UTC instant: a date alone is its day's start, or end when `end`."""
    default = time.max if end else time(0)
    local = w.naive(default)
    if w.offset is not None:
        return local.replace(tzinfo=w.offset).astimezone(UTC)
    if zone is None:
        return local.replace(tzinfo=UTC)
    try:
        return local.replace(tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _zone(name: str) -> ZoneInfo | None:
    if name not in _zones():
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError):
        return None


# --------------------------------------------------------------------------- automations


def _check_automation(config: Config, entry: Entry[models.Automation], report: Report) -> None:
    spec = entry.model.spec
    sched = spec.schedule
    org = entry.organization
    loc = entry.locate

    zone = _zone(sched.execution_timezone)
    if zone is None:
        suggestion = suggest_timezone(sched.execution_timezone)
        hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
        report(
            error(
                "FS104",
                f"unknown timezone '{sched.execution_timezone}'{hint}",
                loc(("spec", "schedule", "execution_timezone")),
                **({"suggestion": suggestion} if suggestion else {}),
            )
        )

    # Values that fit their pattern but name no real date or time (2025-02-30, 25:00).
    whens: dict[PathT, timeparse.When] = {}
    for path, text in _when_fields(spec):
        parsed = _when(text)
        if parsed is None:
            report(
                error(
                    "FS111",
                    f"'{text}' is not a real date or time: "
                    + _why_not_a_date(text),
                    loc(path),
                )
            )
        elif not MIN_YEAR <= parsed.date.year <= MAX_YEAR:
            report(
                error(
                    "FS111",
                    f"'{text}' is outside the years {MIN_YEAR}-{MAX_YEAR} that schedules may use; "
                    "check the year",
                    loc(path),
                )
            )
        else:
            whens[path] = parsed

    _check_references(config, entry, report)
    _check_schedule(entry, sched, zone, whens, report)
    _check_exceptions(entry, spec, zone, whens, report)
    _check_variables(config, entry, org, report)
    delivery = spec.delivery
    for path, text in (
        (("spec", "delivery", "catchup_window"), delivery.catchup_window),
        (("spec", "delivery", "retry", "initial_delay"), delivery.retry.initial_delay),
        (("spec", "delivery", "retry", "max_delay"), delivery.retry.max_delay),
    ):
        _check_duration(text, ".".join(map(str, path)), functools.partial(loc, path), report)


# A duration is added to run-time instants (catch-up, retries, waits): an unbounded one passes
# the pattern and then overflows at run time. A year is longer than any of them needs.
MAX_DURATION = timedelta(days=366)


def _check_duration(text: str, what: str, locate: Callable[[], Location], report: Report) -> None:
    # `locate` is called only for a finding: a location re-reads the file's node tree.
    try:
        too_long = timeparse.parse_duration(text) > MAX_DURATION
    except (OverflowError, ValueError):
        too_long = True  # the pattern matched: only an overflow gets here
    if too_long:
        report(error("FS109", f"{what} must be at most 366d, got {text}", locate()))


def _why_not_a_date(text: str) -> str:
    try:
        timeparse.parse_when(text)
    except ValueError as exc:
        message = str(exc)
    else:  # pragma: no cover - only called for values that failed to parse
        return "check it"
    if "offset" in message:
        return message
    return "check the day exists in that month and the time is between 00:00 and 23:59"


def _when_fields(spec: models.AutomationSpec) -> Iterator[tuple[PathT, str]]:
    s: PathT = ("spec", "schedule")
    sched = spec.schedule
    for name in ("start_date", "end_date"):
        value = getattr(sched, name)
        if value is not None:
            yield (*s, name), value
    for i, item in enumerate(sched.blackout_dates):
        if isinstance(item, str):
            yield (*s, "blackout_dates", i), item
        else:
            yield (*s, "blackout_dates", i, "start"), item.start
            if item.end is not None:
                yield (*s, "blackout_dates", i, "end"), item.end
    for i, day in enumerate(sched.extra_holidays):
        yield (*s, "extra_holidays", i), day
    rc = sched.recurrence_config
    if isinstance(rc, models.CustomConfig):
        for i, value in enumerate(rc.dates):
            yield (*s, "recurrence_config", "dates", i), value
    for i, exc in enumerate(spec.exceptions):
        base: PathT = ("spec", "exceptions", i)
        yield (*base, "start_date"), exc.start_date
        if exc.end_date is not None:
            yield (*base, "end_date"), exc.end_date
        if exc.rescheduled_to is not None:
            yield (*base, "rescheduled_to"), exc.rescheduled_to


def _check_references(config: Config, entry: Entry[models.Automation], report: Report) -> None:
    spec = entry.model.spec
    org = entry.organization
    refs: list[tuple[str, str, PathT, dict[tuple[str, str], Any], str]] = [
        ("FS202", "Flow", ("spec", "flow"), config.flows, spec.flow),
        ("FS203", "Channel", ("spec", "whatsapp_number"), config.channels, spec.whatsapp_number),
    ]
    if spec.audience.audience is not None:
        refs.append(
            ("FS204", "Audience", ("spec", "audience", "audience"), config.audiences, spec.audience.audience)
        )
    for code, kind, path, table, name in refs:
        if (org, name) in table:
            continue
        same_org = sorted(n for o, n in table if o == org)
        hint = did_you_mean(name, same_org)
        elsewhere = sorted(o for o, n in table if n == name and o != org)
        if elsewhere:
            hint += (
                f"; a {kind} '{name}' exists in organization '{elsewhere[0]}', but references "
                f"stay within one organization"
            )
        known = f"; known: {', '.join(same_org[:10])}" if same_org and not hint else ""
        report(
            error(
                code,
                f"{path[-1]}: no {kind} named '{name}' in organization '{org}'{hint}{known}",
                entry.locate(path),
                **({"suggestion": closest(name, same_org)} if same_org and closest(name, same_org) else {}),
            )
        )


def _check_schedule(
    entry: Entry[models.Automation],
    sched: models.Schedule,
    zone: ZoneInfo | None,
    whens: dict[PathT, timeparse.When],
    report: Report,
) -> None:
    s: PathT = ("spec", "schedule")
    loc = entry.locate
    start = whens.get((*s, "start_date"))
    end = whens.get((*s, "end_date"))
    if start is not None and end is not None:
        a, b = _instant(start, zone, end=False), _instant(end, zone, end=True)
        if a is not None and b is not None and b < a:
            report(
                error(
                    "FS205",
                    f"end_date {sched.end_date} is before start_date {sched.start_date}; "
                    "swap them or fix the date",
                    loc((*s, "end_date")),
                )
            )

    if sched.execution_window_start is not None and sched.execution_window_end is not None:
        try:
            ws = timeparse.parse_time_of_day(sched.execution_window_start)
            we = timeparse.parse_time_of_day(sched.execution_window_end)
        except ValueError:
            pass  # the pattern already rejected it
        else:
            if ws == we:
                report(
                    error(
                        "FS206",
                        f"execution window starts and ends at {sched.execution_window_start}: "
                        "it would never be open; give a later execution_window_end (a time "
                        "before the start spans midnight), or remove both for no window",
                        loc((*s, "execution_window_end")),
                    )
                )

    for i, (lo, hi) in enumerate(_blackout_ranges(sched)):
        if lo is None or hi is None:
            continue
        first = whens.get((*s, "blackout_dates", i, "start"))
        last = whens.get((*s, "blackout_dates", i, "end"))
        if first and last:
            a, b = _instant(first, zone, end=False), _instant(last, zone, end=True)
            if a is not None and b is not None and b < a:
                report(
                    error(
                        "FS209",
                        f"blackout range ends ({hi}) before it starts ({lo}); swap start and end",
                        loc((*s, "blackout_dates", i, "end")),
                    )
                )

    # All seven weekend days (FS312), a missing time of day (FS314) or start_date (FS315) and
    # monthly days past the 28th (FS305) are the compiler's: it knows the expanded schedule.
    seen: set[str] = set()
    for i, day in enumerate(sched.weekend_days):
        if day in seen:
            report(
                warning("FS212", f"weekend_days lists {day} twice; remove the repeat", loc((*s, "weekend_days", i)))
            )
        seen.add(day)


def _blackout_ranges(sched: models.Schedule) -> Iterator[tuple[str | None, str | None]]:
    for item in sched.blackout_dates:
        if isinstance(item, str):
            yield None, None
        else:
            yield item.start, item.end


def _check_exceptions(
    entry: Entry[models.Automation],
    spec: models.AutomationSpec,
    zone: ZoneInfo | None,
    whens: dict[PathT, timeparse.When],
    report: Report,
) -> None:
    names: dict[str, int] = {}
    for i, exc in enumerate(spec.exceptions):
        base: PathT = ("spec", "exceptions", i)
        start = whens.get((*base, "start_date"))
        end = whens.get((*base, "end_date"))
        if start is not None and end is not None:
            a, b = _instant(start, zone, end=False), _instant(end, zone, end=True)
            if a is not None and b is not None and b < a:
                report(
                    error(
                        "FS209",
                        f"exception range ends ({exc.end_date}) before it starts "
                        f"({exc.start_date}); swap start_date and end_date",
                        entry.locate((*base, "end_date")),
                    )
                )
        if exc.name is not None:
            if exc.name in names:
                first = entry.locate(("spec", "exceptions", names[exc.name], "name"))
                report(
                    error(
                        "FS210",
                        f"exception name '{exc.name}' is used twice (first at line {first.line}); "
                        "names identify exceptions and must be unique within the automation",
                        entry.locate((*base, "name")),
                    )
                )
            else:
                names[exc.name] = i
        if exc.modified_config:
            _check_modified_config(entry, base, exc.modified_config, report)


def _check_modified_config(
    entry: Entry[models.Automation], base: PathT, config: dict[str, Any], report: Report
) -> None:
    path = (*base, "modified_config")
    known: dict[str, Any] = {}
    for key, value in config.items():
        if key in models.DELIVERY_KEYS:
            known[key] = value
            continue
        report(
            error(
                "FS211",
                f"modified_config key '{key}' is not a delivery setting"
                f"{did_you_mean(key, models.DELIVERY_KEYS)}; a modify exception may change "
                f"{', '.join(models.DELIVERY_KEYS)}",
                _key(entry, (*path, key)),
            )
        )
    try:
        models.DeliveryDefaults.model_validate(known)
    except ValidationError as exc:
        for d in diagnostics_from_validation_error(
            exc,
            known,
            lambda p: entry.locate((*path, *p)),
            locate_key=lambda p: _key(entry, (*path, *p)),
            model=models.DeliveryDefaults,
        ):
            report(Diagnostic(d.code, d.severity, f"modified_config.{d.message}", d.location, d.data))
        return
    retry = known.get("retry") or {}
    for sub, text in (
        (("catchup_window",), known.get("catchup_window")),
        (("retry", "initial_delay"), retry.get("initial_delay")),
        (("retry", "max_delay"), retry.get("max_delay")),
    ):
        if isinstance(text, str):
            where = functools.partial(entry.locate, (*path, *sub))
            _check_duration(text, "modified_config." + ".".join(sub), where, report)


def _check_variables(config: Config, entry: Entry[models.Automation], org: str, report: Report) -> None:
    spec = entry.model.spec
    mapping = spec.variable_mapping
    for key, value in mapping.items():
        if isinstance(value, str):
            for problem in _placeholder_problems(value, allow_variables=False, declared=()):
                report(error(problem[0], problem[1], entry.locate(("spec", "variable_mapping", key))))
    flow = config.flows.get((org, spec.flow))
    if flow is None:
        return  # FS202 already says the flow is missing
    declared = flow.model.spec.variables
    for name in declared:
        if name not in mapping:
            where: PathT = ("spec", "variable_mapping") if "variable_mapping" in _spec_data(entry) else ("spec", "flow")
            report(
                error(
                    "FS207",
                    f"flow '{spec.flow}' declares variable '{name}' but variable_mapping does not "
                    f"map it; add variable_mapping: {{{name}: ...}}",
                    _key(entry, where),
                )
            )
    for key in mapping:
        if key not in declared:
            declared_list = ", ".join(declared) if declared else "none"
            report(
                error(
                    "FS208",
                    f"variable_mapping maps '{key}', which flow '{spec.flow}' does not declare"
                    f"{did_you_mean(key, declared)} (its variables: {declared_list}); remove it "
                    "or declare it in the flow",
                    _key(entry, ("spec", "variable_mapping", key)),
                )
            )


def _spec_data(entry: Entry[Any]) -> dict[str, Any]:
    spec = entry.doc.data.get("spec") if isinstance(entry.doc.data, dict) else None
    return spec if isinstance(spec, dict) else {}


def _placeholder_problems(
    text: str, *, allow_variables: bool, declared: Sequence[str]
) -> Iterator[tuple[str, str, str | None]]:
    """(code, message, variable) for each bad {{...}} in `text`."""
    for match in _PLACEHOLDER.finditer(text):
        inner = match.group(1).strip()
        if _CONTACT_FIELD.match(inner):
            continue
        if not _VARIABLE.match(inner):
            yield (
                "FS407",
                f"placeholder '{match.group(0)}' is not {{{{variable}}}} or "
                "{{contact.<field>}}; fix the name inside the braces",
                None,
            )
        elif not allow_variables:
            yield (
                "FS213",
                f"'{match.group(0)}': variable_mapping values may use {{{{contact.<field>}}}} "
                f"only; write the value itself, or {{{{contact.{inner}}}}} for a contact field",
                inner,
            )
        elif inner not in declared:
            yield (
                "FS405",
                f"'{match.group(0)}' uses variable '{inner}', which the flow does not declare"
                f"{did_you_mean(inner, declared)}; add it to spec.variables",
                inner,
            )
    rest = _PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        yield ("FS407", "unbalanced '{{' or '}}'; placeholders are written {{name}}", None)


# --------------------------------------------------------------------------- flows


def _targets(node: Any) -> list[tuple[str, str]]:
    """(field as written, target node) for each edge out of `node`."""
    if isinstance(node, models.ConditionNode):
        return [("then", node.then), ("else", node.else_)]
    if isinstance(node, models.EndNode):
        return []
    return [("next", node.next)]


def _check_flow(entry: Entry[models.Flow], report: Report) -> None:
    spec = entry.model.spec
    nodes = spec.nodes
    names = list(nodes)
    loc = entry.locate
    base: PathT = ("spec", "nodes")

    if spec.start not in nodes:
        report(
            error(
                "FS401",
                f"start node '{spec.start}' is not one of the nodes{did_you_mean(spec.start, names)}; "
                f"nodes: {', '.join(names[:10])}",
                loc(("spec", "start")),
            )
        )
    for name, node in nodes.items():
        if isinstance(node, models.WaitNode):
            _check_duration(
                node.duration, f"spec.nodes.{name}.duration", functools.partial(loc, (*base, name, "duration")), report
            )
        for field, target in _targets(node):
            if target not in nodes:
                report(
                    error(
                        "FS402",
                        f"node '{name}' goes {field} to '{target}', which is not a node"
                        f"{did_you_mean(target, names)}",
                        loc((*base, name, field)),
                    )
                )

    if spec.start in nodes:
        reached = _reachable(spec.start, nodes)
        for name in names:
            if name not in reached:
                report(
                    error(
                        "FS403",
                        f"node '{name}' is unreachable from start node '{spec.start}'; "
                        "link it from another node or remove it",
                        _key(entry, (*base, name)),
                    )
                )
        for cycle in _cycles_without_wait(nodes):
            loop = " -> ".join([*cycle, cycle[0]])
            report(
                error(
                    "FS404",
                    f"cycle without a wait node ({loop}): a recipient would loop forever "
                    "sending at once; put a wait node in the loop or break it",
                    _key(entry, (*base, cycle[0])),
                )
            )

    declared = spec.variables
    used: set[str] = set()
    for name, node in nodes.items():
        for field, text, path in _node_texts(name, node):
            for code, message, variable in _placeholder_problems(text, allow_variables=True, declared=declared):
                if variable:
                    used.add(variable)
                report(error(code, f"node '{name}' {field}: {message}", loc(path)))
            for match in _PLACEHOLDER.finditer(text):
                used.add(match.group(1).strip())
        if isinstance(node, models.ConditionNode):
            fld = node.if_.field
            if not fld.startswith("contact."):
                used.add(fld)
                if fld not in declared:
                    report(
                        error(
                            "FS405",
                            f"node '{name}' tests '{fld}', which is neither contact.<field> nor "
                            f"a declared variable{did_you_mean(fld, declared)}; add it to "
                            "spec.variables or write contact.<field>",
                            loc((*base, name, "if", "field")),
                        )
                    )
    seen: set[str] = set()
    for i, variable in enumerate(declared):
        if variable in seen:
            report(warning("FS406", f"variable '{variable}' is declared twice", loc(("spec", "variables", i))))
        elif variable not in used:
            report(
                warning(
                    "FS406",
                    f"variable '{variable}' is declared but no node uses it; remove it, or use "
                    f"{{{{{variable}}}}} in a message",
                    loc(("spec", "variables", i)),
                )
            )
        seen.add(variable)


def _node_texts(name: str, node: Any) -> Iterator[tuple[str, str, PathT]]:
    base: PathT = ("spec", "nodes", name)
    if isinstance(node, models.SendTextNode):
        yield "text", node.text, (*base, "text")
    elif isinstance(node, models.SendTemplateNode):
        for i, param in enumerate(node.params):
            yield f"params[{i}]", param, (*base, "params", i)


def _reachable(start: str, nodes: dict[str, Any]) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for _field, target in _targets(nodes[stack.pop()]):
            if target in nodes and target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _cycles_without_wait(nodes: dict[str, Any]) -> list[list[str]]:
    """One representative cycle per strongly connected component that holds no wait node."""
    # Tarjan's algorithm, iterative (a flow may be long).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter([t for _f, t in _targets(nodes[root]) if t in nodes])))
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter([t for _f, t in _targets(nodes[child]) if t in nodes])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    out = []
    order = {name: i for i, name in enumerate(nodes)}
    for component in components:
        members = set(component)
        looped = len(component) > 1 or any(t == component[0] for _f, t in _targets(nodes[component[0]]))
        if not looped or any(isinstance(nodes[m], models.WaitNode) for m in component):
            continue
        out.append(_cycle_path(min(component, key=order.__getitem__), members, nodes))
    return sorted(out, key=lambda c: order[c[0]])


def _cycle_path(start: str, members: set[str], nodes: dict[str, Any]) -> list[str]:
    """A simple cycle through `start` inside one component, for the message."""
    parents: dict[str, str] = {}
    queue = [start]
    seen = {start}
    while queue:
        node = queue.pop(0)
        for _f, target in _targets(nodes[node]):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return list(reversed(path))
            if target in members and target not in seen:
                seen.add(target)
                parents[target] = node
                queue.append(target)
    return [start]


# --------------------------------------------------------------------------- channels


def _looks_like_token(value: str) -> bool:
    """Heuristic for a credential pasted where an environment variable name belongs."""
    if value.startswith("EAA") and len(value) >= 20:  # Meta access tokens
        return True
    lower = any(c.islower() for c in value)
    upper = any(c.isupper() for c in value)
    digit = any(c.isdigit() for c in value)
    if len(value) >= 24 and lower and upper and digit:
        return True
    # Hex or base64 secrets: long, letters and digits, no word separators.
    return len(value) >= 32 and digit and (lower or upper) and "_" not in value


def _check_channel(entry: Entry[models.Channel], report: Report) -> None:
    spec = entry.model.spec
    loc = entry.locate
    for field in _ENV_FIELDS:
        value = getattr(spec, field)
        if value is None:
            continue
        path: PathT = ("spec", field)
        if _looks_like_token(value):
            report(
                error(
                    "FS501",
                    f"{field} holds what looks like a literal secret; secrets never go in YAML: "
                    f"put the value in an environment variable and write its name here "
                    f"(e.g. {field}: WA_TOKEN)",
                    loc(path),
                )
            )
        elif not _ENV_NAME.fullmatch(value):
            report(
                error(
                    "FS502",
                    f"{field}: '{value}' is not an environment variable name (letters, digits "
                    "and '_', not starting with a digit; e.g. WA_TOKEN)",
                    loc(path),
                )
            )
    if re.search(r"access_token=|[?&]token=", spec.api_base_url):
        report(
            error(
                "FS501",
                "api_base_url carries a token in its query string; secrets never go in YAML: "
                "remove it and set access_token_env",
                loc(("spec", "api_base_url")),
            )
        )
    elif not re.match(r"^https?://[^\s/]+", spec.api_base_url):
        report(
            error(
                "FS504",
                f"api_base_url '{spec.api_base_url}' is not an http(s) URL; write e.g. "
                "https://graph.facebook.com/v21.0",
                loc(("spec", "api_base_url")),
            )
        )
    if spec.type == "whatsapp_cloud":
        for field in ("phone_number_id", "access_token_env"):
            if getattr(spec, field) is None:
                report(
                    error(
                        "FS503",
                        f"a whatsapp_cloud channel needs {field}"
                        + (" (the sender's phone number id, quoted)" if field == "phone_number_id" else
                           " (the name of the environment variable holding the token)"),
                        _key(entry, ("spec",)),
                    )
                )


# --------------------------------------------------------------------------- audiences


def audience_file_path(entry: Entry[models.Audience], roots: Sequence[Path] = ()) -> Path | None:
    """Where an Audience's `file` is on disk: relative to the config root holding its document.

    The config root is the deepest of `roots` (the folders given on the command line; a file
    given directly counts as its folder) that contains the document; without one, the
    document's own folder.
    """
    name = entry.model.spec.file
    if name is None:
        return None
    if Path(name).is_absolute():
        return Path(name)
    doc = Path(entry.doc.file).absolute()
    best: Path | None = None
    for root in roots:
        base = root.absolute()
        if not base.is_dir():
            base = base.parent
        if doc.is_relative_to(base) and (best is None or len(base.parts) > len(best.parts)):
            best = base
    return (best or doc.parent) / name


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _check_audience(entry: Entry[models.Audience], roots: Sequence[Path], report: Report) -> None:
    path = audience_file_path(entry, roots)
    if path is None:
        return
    where = entry.locate(("spec", "file"))
    name = entry.model.spec.file
    if not path.is_file():
        report(
            error(
                "FS505",
                f"audience file '{name}' does not exist (looked for {_shown(path)}); paths are "
                "relative to the config root",
                where,
            )
        )
        return
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                report(error("FS506", f"audience file '{name}' is empty; it needs a header with an id column", where))
                return
            columns = [c.strip() for c in header]
            if "id" not in columns:
                hint = did_you_mean("id", columns, cutoff=0.3) if columns else ""
                report(
                    error(
                        "FS507",
                        f"audience file '{name}' has no 'id' column{hint} (header: "
                        f"{', '.join(columns)[:120]}); the first line must name the columns, "
                        "one of them id",
                        where,
                    )
                )
                return
            phone = columns.index("phone") if "phone" in columns else None
            if phone is not None:
                _check_phones(reader, phone, name, where, report)
    except (UnicodeDecodeError, csv.Error) as exc:
        report(error("FS506", f"audience file '{name}' is not a UTF-8 CSV file: {exc}", where))
    except OSError as exc:
        report(error("FS506", f"cannot read audience file '{name}': {exc.strerror or exc}", where))


def _check_phones(
    reader: Iterator[list[str]], column: int, name: str | None, where: Location, report: Report
) -> None:
    bad: list[str] = []
    count = 0
    for row_number, row in enumerate(reader, start=2):
        if column < len(row):
            value = row[column].strip()
            if value and not _E164.match(value):
                count += 1
                if len(bad) < _MAX_CSV_ROW_ERRORS:
                    bad.append(f"line {row_number}: '{value}'")
    if count:
        more = f" and {count - len(bad)} more" if count > len(bad) else ""
        report(
            error(
                "FS508",
                f"audience file '{name}' has phone numbers not in E.164 (+ country code and "
                f"number, digits only, e.g. +5511999990000): {'; '.join(bad)}{more}",
                where,
            )
        )

