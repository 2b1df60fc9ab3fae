"""`flowspec diff --format text`: `+ - ~` lines like `terraform plan`, ending with one summary line.

    range 2026-01-01T00:00:00Z .. 2026-04-01T00:00:00Z

    ~ Flow acme/promo (automations/flows/promo.yaml), affects acme/daily-promo
        ~ spec.nodes.greet.template: "promo_bf" → "promo_xmas"

    ~ acme/weekly-digest (automations/weekly-digest.yaml, America/Sao_Paulo)
        ~ spec.schedule.start_time: "14:00" → "09:00"
        ~ all 39 occurrences move -5h: MON/WED/FRI 14:00 → MON/WED/FRI 09:00 America/Sao_Paulo, 2026-01-02 … 2026-03-30
    + acme/new-promo (automations/new-promo.yaml, America/Sao_Paulo)
        + 13 × MON 09:00 America/Sao_Paulo, 2026-01-05 … 2026-03-30

    diff: 1 automation added, 1 changed, 998 unchanged; 1 config document changed; occurrences +13 -39 ~39

Regular runs are folded into one line (`fold_runs`); `expand=True` lists every occurrence. The
line builders are shared with the markdown renderer, which puts them in ```diff blocks.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import IO, Any, TypeVar

import click

from flowspec.diff import (
    ABSENT,
    AutomationDiff,
    Diff,
    DocumentDiff,
    FieldChange,
    Modified,
    Moved,
    Run,
    Shift,
    fold_runs,
)
from flowspec.plan import Occurrence, format_utc
from flowspec.render import compact_json, details, local_label
from flowspec.timeparse import format_duration

Line = tuple[str, str]  # (sign "+", "-", "~" or " ", text); indentation is in the text
INDENT = "    "
MAX_AFFECTS = 5  # names listed before "and N more"
COLORS = {"+": "green", "-": "red", "~": "yellow"}
T = TypeVar("T")


def render(diff: Diff, out: IO[str], *, expand: bool = False, color: bool = False) -> None:
    out.write(f"range {format_utc(diff.range_from)} .. {format_utc(diff.range_to)}\n")
    if diff.documents:
        out.write("\n")
        for doc in diff.documents:
            _write(out, document_lines(doc), color)
    if diff.automations:
        out.write("\n")
        for automation in diff.automations:
            _write(out, automation_lines(automation, expand=expand), color)
    out.write("\n" + _style(summary_line(diff), bold=True, color=color) + "\n")


def _write(out: IO[str], lines: Sequence[Line], color: bool) -> None:
    for i, (sign, text) in enumerate(lines):
        line = f"{sign} {text}" if not text.startswith(INDENT) else f"{text[:len(INDENT)]}{sign} {text[len(INDENT):]}"
        if color and sign in COLORS:
            line = click.style(line, fg=COLORS[sign], bold=i == 0)
        out.write(line.rstrip() + "\n")


def _style(text: str, *, bold: bool, color: bool) -> str:
    return click.style(text, bold=bold) if color else text


# --------------------------------------------------------------------------- summary


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_line(diff: Diff) -> str:
    s = diff.summary()
    autos = s["automations"]
    if not diff.has_changes:
        return f"diff: no changes ({_plural(autos['unchanged'], 'automation')} compared)"
    parts = [f"{autos[k]} {k}" for k in ("added", "changed", "removed") if autos[k]]
    if parts:
        first = parts[0].split(" ", 1)
        parts[0] = f"{first[0]} {'automation' if first[0] == '1' else 'automations'} {first[1]}"
    if autos["unchanged"]:
        parts.append(f"{autos['unchanged']} unchanged")
    text = "diff: " + ", ".join(parts) if parts else "diff: no automation changed"
    if s["documents"]:
        text += f"; {_plural(s['documents'], 'config document')} changed"
    occ = s["occurrences"]
    text += f"; occurrences +{occ['added']} -{occ['removed']} ~{occ['moved'] + occ['modified']}"
    return text


def counts(automation: AutomationDiff) -> tuple[int, int, int]:
    o = automation.occurrences
    return len(o.added), len(o.removed), len(o.moved) + len(o.modified)


# --------------------------------------------------------------------------- values


def value(v: Any) -> str:
    """A YAML value on one line: strings quoted, maps and lists as compact JSON."""
    if v is ABSENT:
        return "(unset)"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict | list):
        return compact_json(v)
    return json.dumps(v)


def field_line(change: FieldChange) -> Line:
    if change.old is ABSENT:
        return "+", f"{INDENT}{change.path}: {value(change.new)}"
    if change.new is ABSENT:
        return "-", f"{INDENT}{change.path}: {value(change.old)}"
    return "~", f"{INDENT}{change.path}: {value(change.old)} → {value(change.new)}"


def affects_text(names: Sequence[str]) -> str:
    if not names:
        return "affects no automation"
    shown = ", ".join(names[:MAX_AFFECTS])
    more = len(names) - MAX_AFFECTS
    if more > 0:
        return f"affects {len(names)} automations: {shown} and {more} more"
    return f"affects {shown}"


def document_lines(doc: DocumentDiff) -> list[Line]:
    sign = {"added": "+", "removed": "-"}.get(doc.change, "~")
    source = doc.source_new or doc.source_old
    head = f"{doc.ref} ({source})"
    if doc.kind != "Automation":
        head += f", {affects_text(doc.affects)}"
    return [(sign, head), *(field_line(f) for f in doc.fields)]


# --------------------------------------------------------------------------- occurrences


def signed(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    return sign + format_duration(timedelta(seconds=abs(seconds)))


def change_text(changes: dict[str, tuple[Any, Any]]) -> str:
    parts = []
    for name, (a, b) in changes.items():
        if name == "overrides":
            a, b = compact_json(a), compact_json(b)
        elif name == "detail":
            a, b = (json.dumps(x, ensure_ascii=False) if x is not None else "null" for x in (a, b))
        parts.append(f"{name}: {'null' if a is None else a} → {'null' if b is None else b}")
    return ", ".join(parts)


def occurrence_text(o: Occurrence) -> str:
    tokens = details(o)
    status = "" if o.status == "scheduled" and not tokens else f"  {o.status}"
    return f"{o.slot}  {local_label(o.local)}{status}{'  ' + ' '.join(tokens) if tokens else ''}"


def _why(m: Moved) -> str:
    if m.new.moved_by:
        return f"moved_by={m.new.moved_by}"
    if m.old.moved_by:
        return f"no longer moved_by={m.old.moved_by}"
    return ""


def moved_text(m: Moved) -> str:
    extra = " ".join(x for x in (_why(m), change_text(m.changes)) if x)
    return (
        f"{m.key.rsplit('/', 1)[1]}  {local_label(m.old.local)} → {local_label(m.new.local)}"
        f"  {signed(m.delta)}{'  ' + extra if extra else ''}"
    )


def modified_text(m: Modified) -> str:
    return f"{m.key.rsplit('/', 1)[1]}  {local_label(m.new.local)}  {change_text(m.changes)}"


def run_text(run: Run[Any], timezone: str) -> str:
    return f"{run.count} × {run.pattern} {timezone}, {run.span}"


def _folded(
    sign: str,
    items: Sequence[T],
    local: Callable[[T], datetime],
    group: Callable[[T], str],
    suffix: Callable[[T], str],
    single: Callable[[T], str],
    timezone: str,
    expand: bool,
) -> list[tuple[datetime, Line]]:
    """Lines for items alike in `group`, regular runs folded; keyed by time for ordering."""
    out: list[tuple[datetime, Line]] = []
    if expand:
        return [(_naive(local(i)), (sign, INDENT + single(i))) for i in items]
    groups: dict[str, list[T]] = defaultdict(list)
    for item in items:
        groups[group(item)].append(item)
    for members in groups.values():
        for part in fold_runs(members, local):
            if isinstance(part, Run):
                tail = suffix(part.items[0])
                out.append((_naive(part.first), (sign, f"{INDENT}{run_text(part, timezone)}{'  ' + tail if tail else ''}")))
            else:
                out.append((_naive(local(part)), (sign, INDENT + single(part))))
    return out


def _naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None)


def _occ_group(o: Occurrence) -> str:
    overrides = compact_json(dict(o.overrides)) if o.overrides else ""
    return f"{o.status}|{o.reason}|{o.moved_by}|{o.dst}|{overrides}"


def _occ_suffix(o: Occurrence) -> str:
    tokens = [t for t in details(o) if not t.startswith(("detail=", "moved_from="))]
    if o.status == "scheduled" and not tokens:
        return ""
    return " ".join([o.status, *tokens])


def _sorted(lines: list[tuple[datetime, Line]]) -> list[Line]:
    return [line for _, line in sorted(lines, key=lambda x: x[0])]


def shift_lines(shift: Shift, timezone: str, old_timezone: str | None, expand: bool) -> list[Line]:
    why = f" (moved_by={shift.moved_by})" if shift.moved_by else ""
    old_runs = fold_runs([o for o, _ in shift.pairs], lambda o: o.local)
    new_runs = fold_runs([n for _, n in shift.pairs], lambda o: o.local)
    head = f"{INDENT}all {shift.count} occurrences move {signed(shift.delta)}{why}"
    zone = f"{timezone} (was {old_timezone})" if old_timezone else timezone
    first = min(n.local for _, n in shift.pairs)
    last = max(n.local for _, n in shift.pairs)
    span = f"{first:%Y-%m-%d} … {last:%Y-%m-%d}"
    if len(old_runs) == 1 and len(new_runs) == 1 and isinstance(old_runs[0], Run) and isinstance(new_runs[0], Run):
        old_p, new_p = old_runs[0].pattern, new_runs[0].pattern
        head += f": {new_p if old_p == new_p else f'{old_p} → {new_p}'} {zone}, {span}"
    else:
        head += f": {zone}, {span}" if old_timezone else f", {span}"
    lines: list[Line] = [("~", head)]
    if expand:
        for o, n in shift.pairs:
            lines.append(("~", f"{INDENT}{INDENT}{o.slot} → {n.slot}  {local_label(o.local)} → {local_label(n.local)}"))
    return lines


def occurrence_lines(a: AutomationDiff, *, expand: bool) -> list[Line]:
    occ = a.occurrences
    tz = a.timezone
    shift = a.shift()
    if shift is not None:
        return shift_lines(shift, tz, a.old_timezone, expand)
    lines: list[Line] = []
    local: Callable[[Occurrence], datetime] = lambda o: o.local  # noqa: E731
    lines += _sorted(_folded("-", occ.removed, local, _occ_group, _occ_suffix, occurrence_text, tz, expand))
    lines += _sorted(_folded("+", occ.added, local, _occ_group, _occ_suffix, occurrence_text, tz, expand))
    # Moved and modified read as one chronological list of "~" lines.
    lines += _sorted(
        _folded(
            "~", occ.moved, lambda m: m.new.local,
            lambda m: json.dumps([m.delta.total_seconds(), _why(m), change_text(m.changes)]),
            lambda m: " ".join(x for x in (f"moved {signed(m.delta)}", _why(m), change_text(m.changes)) if x),
            moved_text, tz, expand,
        )
        + _folded(
            "~", occ.modified, lambda m: m.new.local,
            lambda m: change_text(m.changes), lambda m: change_text(m.changes),
            modified_text, tz, expand,
        )
    )
    return lines


def automation_header(a: AutomationDiff) -> Line:
    sign = {"added": "+", "removed": "-"}.get(a.change, "~")
    where = ", ".join(x for x in (a.source, a.timezone) if x)
    return sign, f"{a.ident} ({where})"


def automation_lines(a: AutomationDiff, *, expand: bool = False) -> list[Line]:
    lines: list[Line] = [automation_header(a)]
    lines.extend(field_line(f) for f in a.fields)
    lines.extend(("~", f"{INDENT}via {ref}") for ref in a.affected_by)
    lines.extend(occurrence_lines(a, expand=expand))
    if a.compiled and not a.occurrences and a.change == "changed":
        lines.append((" ", f"{INDENT}occurrences unchanged"))
    return lines
