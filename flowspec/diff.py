"""What changes between two configs: documents field by field, occurrences key by key (SPEC 4).

Pure: configs and plans in, values out. Three layers:

* `diff_configs(old, new)`: every document by (kind, organization, name), as written, by dotted
  path. Flow, Channel, Audience and `flowspec.yaml` Defaults changes name the automations they
  affect. Files do not matter, only identities: a file renamed with the same content is no change.
* `diff_plans(old, new)`: occurrences by stable key. Same key with a different `at` is moved (the
  why is the new occurrence's `moved_by`); same `at` with a different status, reason, detail,
  overrides or dst is modified.
* `diff(old, new, range_from, range_to)`: both, joined per automation. The automations are a
  merge join in (organization, name) order, compiled one pair at a time, and an automation whose
  typed model is equal on both sides is not compiled at all: the compiler reads nothing else (the
  range and the tzdata/holidays versions are the same in one process), so its occurrences cannot
  differ. That keeps a diff of a large repo with a few changed files far cheaper than two plans.

`fold_runs` (in `flowspec.fold`) turns a regular run of occurrences (52 Mondays at 09:00) into
one `Run` so renderers can print one line instead of 52.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from flowspec.config import Config, Entry
from flowspec.fold import Run, fold_runs, weekday_label
from flowspec.plan import AutomationPlan, Occurrence, Plan, format_utc

__all__ = [
    "ABSENT", "AutomationDiff", "ConfigDiff", "Diff", "DocumentDiff", "FieldChange", "Modified",
    "Moved", "OccurrenceChanges", "Run", "Shift", "detect_shift", "diff", "diff_configs",
    "diff_occurrences", "diff_plans", "fold_runs", "weekday_label",
]

DIFF_FORMAT = "flowspec.diff/v1"

Change = Literal["added", "removed", "changed", "unchanged"]
KIND_ORDER = ("Defaults", "Flow", "Channel", "Audience")
# Occurrence fields whose change at an unchanged `at` makes it "modified". moved_by/moved_from
# are left out: they explain a time, and the time is the same.
MODIFIED_FIELDS = ("status", "reason", "detail", "overrides", "dst")


# --------------------------------------------------------------------------- field changes


class _Absent:
    """A key that is not there (distinct from an explicit null)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()


@dataclass(frozen=True, slots=True)
class Named:
    """A path step into a list of mappings matched by their `name` (exceptions)."""

    name: str


PathPart = str | int | Named


@dataclass(frozen=True, slots=True)
class FieldChange:
    parts: tuple[PathPart, ...]
    old: Any  # ABSENT when the field was added
    new: Any  # ABSENT when the field was removed

    @property
    def path(self) -> str:
        return format_path(self.parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "old": None if self.old is ABSENT else self.old,
            "new": None if self.new is ABSENT else self.new,
        }


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(parts: Sequence[PathPart]) -> str:
    """`spec.exceptions[name=black-friday].reason`, `spec.schedule.blackout_dates[1]`."""
    out = ""
    for part in parts:
        if isinstance(part, Named):
            out += f"[name={part.name}]"
        elif isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def diff_values(old: Any, new: Any, parts: tuple[PathPart, ...] = ()) -> list[FieldChange]:
    """Leaf-level changes between two plain-data trees, in document order."""
    if old == new and type(old) is type(new):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in list(old) + [k for k in new if k not in old]:
            changes.extend(diff_values(old.get(key, ABSENT), new.get(key, ABSENT), (*parts, key)))
        return changes
    if isinstance(old, list) and isinstance(new, list) and _has_mappings(old, new):
        return _diff_lists(old, new, parts)
    # Scalars, and lists of scalars (days: [MON, WED] → [MON, FRI]), read best whole.
    return [FieldChange(parts, old, new)]


def _has_mappings(old: list[Any], new: list[Any]) -> bool:
    return any(isinstance(item, dict) for item in (*old, *new))


def _names(items: list[Any]) -> list[str] | None:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return names  # type: ignore[return-value]
    return None


def _diff_lists(old: list[Any], new: list[Any], parts: tuple[PathPart, ...]) -> list[FieldChange]:
    old_names, new_names = _names(old), _names(new)
    if old_names is not None and new_names is not None:
        # Named items (exceptions with `name`) are matched by name: inserting one does not make
        # every later item look changed.
        by_name = dict(zip(old_names, old, strict=True))
        changes: list[FieldChange] = []
        for name in old_names:
            if name not in new_names:
                changes.append(FieldChange((*parts, Named(name)), by_name[name], ABSENT))
        for name, item in zip(new_names, new, strict=True):
            changes.extend(diff_values(by_name.get(name, ABSENT), item, (*parts, Named(name))))
        return changes
    # Unnamed items are aligned like lines of a text diff, so an insertion is one change.
    keys_old = [json.dumps(item, sort_keys=True) for item in old]
    keys_new = [json.dumps(item, sort_keys=True) for item in new]
    matcher = difflib.SequenceMatcher(a=keys_old, b=keys_new, autojunk=False)
    changes = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                changes.extend(diff_values(old[i1 + k], new[j1 + k], (*parts, j1 + k)))
            continue
        for i in range(i1, i2):
            changes.append(FieldChange((*parts, i), old[i], ABSENT))
        for j in range(j1, j2):
            changes.append(FieldChange((*parts, j), ABSENT, new[j]))
    return changes


def get_path(data: Any, parts: Sequence[PathPart]) -> Any:
    node = data
    for part in parts:
        if isinstance(part, Named):
            found = [i for i in node if isinstance(i, dict) and i.get("name") == part.name] if isinstance(node, list) else []
            if not found:
                return ABSENT
            node = found[0]
        elif isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                return ABSENT
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                return ABSENT
            node = node[part]
    return node


# --------------------------------------------------------------------------- config diff


@dataclass(frozen=True, slots=True)
class DocumentDiff:
    kind: str  # Automation | Flow | Channel | Audience | Defaults
    organization: str
    name: str
    change: Change
    fields: list[FieldChange]
    source_old: str | None
    source_new: str | None
    # Flow/Channel/Audience/Defaults: "organization/name" of every automation the change reaches.
    affects: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return "Defaults" if self.kind == "Defaults" else f"{self.kind} {self.organization}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "organization": self.organization,
            "name": self.name,
            "change": self.change,
            "source": self.source_new or self.source_old,
            "fields": [f.to_json() for f in self.fields],
            "affects": list(self.affects),
        }


@dataclass
class ConfigDiff:
    automations: dict[tuple[str, str], DocumentDiff]  # only those that differ
    documents: list[DocumentDiff]  # Defaults, Flows, Channels, Audiences that differ

    def affected_by(self) -> dict[str, list[str]]:
        """"organization/name" of an automation → refs of the documents whose change reaches it."""
        out: dict[str, list[str]] = defaultdict(list)
        for doc in self.documents:
            for name in doc.affects:
                out[name].append(doc.ref)
        return out


def _document_diff(
    kind: str, key: tuple[str, str], old: Entry[Any] | None, new: Entry[Any] | None
) -> DocumentDiff | None:
    old_data = old.doc.data if old is not None else ABSENT
    new_data = new.doc.data if new is not None else ABSENT
    change: Change
    if old is None:
        change, fields = "added", list[FieldChange]()
    elif new is None:
        change, fields = "removed", []
    else:
        fields = diff_values(old_data, new_data)
        if not fields:
            return None
        change = "changed"
    return DocumentDiff(
        kind, key[0], key[1], change, fields,
        old.source if old is not None else None,
        new.source if new is not None else None,
    )


def _references(entry: Entry[Any], kind: str, name: str) -> bool:
    spec = entry.model.spec
    if kind == "Flow":
        return bool(spec.flow == name)
    if kind == "Channel":
        return bool(spec.whatsapp_number == name)
    return bool(spec.audience.audience == name)


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """Field changes of every document, and which automations each non-Automation change affects."""
    old_autos = {(e.organization, e.name): e for e in old.automations}
    new_autos = {(e.organization, e.name): e for e in new.automations}
    automations: dict[tuple[str, str], DocumentDiff] = {}
    for key in sorted(old_autos.keys() | new_autos.keys()):
        d = _document_diff("Automation", key, old_autos.get(key), new_autos.get(key))
        if d is not None:
            automations[key] = d

    documents: list[DocumentDiff] = []
    if old.defaults is not None or new.defaults is not None:
        d = _document_diff("Defaults", ("", "defaults"), old.defaults, new.defaults)
        if d is not None:
            documents.append(
                DocumentDiff(
                    d.kind,
                    (new.defaults or old.defaults).organization,  # type: ignore[union-attr]
                    (new.defaults or old.defaults).name,  # type: ignore[union-attr]
                    d.change, d.fields, d.source_old, d.source_new,
                    _defaults_affect(old_autos, new_autos),
                )
            )
    for kind, old_table, new_table in (
        ("Flow", old.flows, new.flows),
        ("Channel", old.channels, new.channels),
        ("Audience", old.audiences, new.audiences),
    ):
        for key in sorted(old_table.keys() | new_table.keys()):
            d = _document_diff(kind, key, old_table.get(key), new_table.get(key))
            if d is None:
                continue
            org, name = key
            affects = sorted(
                {
                    f"{e.organization}/{e.name}"
                    for autos in (old_autos, new_autos)
                    for e in autos.values()
                    if e.organization == org and _references(e, kind, name)
                }
            )
            documents.append(
                DocumentDiff(kind, org, name, d.change, d.fields, d.source_old, d.source_new, affects)
            )
    return ConfigDiff(automations, documents)


def _defaults_affect(
    old_autos: Mapping[tuple[str, str], Entry[Any]], new_autos: Mapping[tuple[str, str], Entry[Any]]
) -> list[str]:
    """Automations on both sides whose merged schedule/delivery differ but whose own text does not
    explain it: the defaults did."""
    out = []
    for key in sorted(old_autos.keys() & new_autos.keys()):
        o, n = old_autos[key], new_autos[key]
        for section in ("schedule", "delivery"):
            merged_old = get_path(o.raw, ("spec", section))
            merged_new = get_path(n.raw, ("spec", section))
            own_old = get_path(o.doc.data, ("spec", section))
            own_new = get_path(n.doc.data, ("spec", section))
            if merged_old != merged_new and _differs_outside(own_old, own_new, merged_old, merged_new):
                out.append(f"{key[0]}/{key[1]}")
                break
    return out


def _differs_outside(own_old: Any, own_new: Any, merged_old: Any, merged_new: Any) -> bool:
    """True when some merged change is at a path the automation does not set on either side."""
    for change in diff_values(merged_old, merged_new):
        if get_path(own_old, change.parts) is ABSENT or get_path(own_new, change.parts) is ABSENT:
            return True
    return False


# --------------------------------------------------------------------------- occurrence diff


@dataclass(frozen=True, slots=True)
class Moved:
    old: Occurrence
    new: Occurrence
    changes: dict[str, tuple[Any, Any]]  # MODIFIED_FIELDS that also changed

    @property
    def key(self) -> str:
        return self.new.key

    @property
    def delta(self) -> timedelta:
        return self.new.at - self.old.at

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "old_at": format_utc(self.old.at),
            "new_at": format_utc(self.new.at),
            "moved_by": self.new.moved_by,
            "old_moved_by": self.old.moved_by,
            "changes": {k: list(v) for k, v in self.changes.items()},
        }


@dataclass(frozen=True, slots=True)
class Modified:
    old: Occurrence
    new: Occurrence
    changes: dict[str, tuple[Any, Any]]

    @property
    def key(self) -> str:
        return self.new.key

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "changes": {k: list(v) for k, v in self.changes.items()}}


@dataclass
class OccurrenceChanges:
    added: list[Occurrence] = field(default_factory=list)
    removed: list[Occurrence] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    modified: list[Modified] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.moved or self.modified)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [o.to_json() for o in self.added],
            "removed": [o.to_json() for o in self.removed],
            "moved": [m.to_json() for m in self.moved],
            "modified": [m.to_json() for m in self.modified],
        }


def _modified_fields(old: Occurrence, new: Occurrence) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for name in MODIFIED_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if name == "overrides":
            a, b = dict(a), dict(b)
        if a != b:
            changes[name] = (a, b)
    return changes


def diff_occurrences(old: Sequence[Occurrence], new: Sequence[Occurrence]) -> OccurrenceChanges:
    """By stable key: added, removed, moved (same key, other `at`), modified (same `at`)."""
    out = OccurrenceChanges()
    old_by_key = {o.key: o for o in old}
    new_keys = set()
    for n in new:
        new_keys.add(n.key)
        o = old_by_key.get(n.key)
        if o is None:
            out.added.append(n)
            continue
        changes = _modified_fields(o, n)
        if o.at != n.at:
            out.moved.append(Moved(o, n, changes))
        elif changes:
            out.modified.append(Modified(o, n, changes))
    out.removed = [o for o in old if o.key not in new_keys]
    return out


@dataclass(frozen=True, slots=True)
class Shift:
    """Every occurrence moved by the same amount (a start_time or timezone change, a window)."""

    delta: timedelta
    count: int
    moved_by: str | None  # set when every new occurrence has this moved_by and no old one had it
    rekeyed: bool  # keys changed (a new slot time) rather than the same keys at a new `at`
    pairs: list[tuple[Occurrence, Occurrence]]


def detect_shift(changes: OccurrenceChanges, old_count: int, new_count: int) -> Shift | None:
    """The one-line story for "everything moved by Δ", or None when the change is anything else."""
    if old_count != new_count or old_count == 0 or changes.modified:
        return None
    if changes.moved and not changes.added and not changes.removed:
        if len(changes.moved) != old_count or any(m.changes for m in changes.moved):
            return None
        pairs = [(m.old, m.new) for m in changes.moved]
        rekeyed = False
    elif changes.added and changes.removed and not changes.moved:
        if len(changes.added) != old_count or len(changes.removed) != old_count:
            return None
        old_sorted = sorted(changes.removed, key=lambda o: (o.at, o.key))
        new_sorted = sorted(changes.added, key=lambda o: (o.at, o.key))
        pairs = list(zip(old_sorted, new_sorted, strict=True))
        if any(_modified_fields(o, n).keys() - {"dst"} for o, n in pairs):
            return None
        rekeyed = True
    else:
        return None
    deltas = {n.at - o.at for o, n in pairs}
    if len(deltas) != 1:
        return None
    new_why = {n.moved_by for _, n in pairs}
    old_why = {o.moved_by for o, _ in pairs}
    why = next(iter(new_why)) if len(new_why) == 1 and not (new_why & old_why) else None
    return Shift(deltas.pop(), old_count, why, rekeyed, pairs)


# --------------------------------------------------------------------------- per automation


@dataclass
class AutomationDiff:
    organization: str
    name: str
    change: Change
    source_old: str | None = None
    source_new: str | None = None
    timezone: str = "UTC"
    old_timezone: str | None = None  # when the old side had another execution_timezone
    fields: list[FieldChange] = field(default_factory=list)
    affected_by: list[str] = field(default_factory=list)  # refs of changed Flow/Channel/... docs
    occurrences: OccurrenceChanges = field(default_factory=OccurrenceChanges)
    old_count: int = 0  # occurrences in range on each side (0 when not compiled)
    new_count: int = 0
    next_before: Occurrence | None = None  # first scheduled occurrence in range
    next_after: Occurrence | None = None
    compiled: bool = False

    @property
    def ident(self) -> str:
        return f"{self.organization}/{self.name}"

    @property
    def source(self) -> str | None:
        return self.source_new or self.source_old

    def shift(self) -> Shift | None:
        return detect_shift(self.occurrences, self.old_count, self.new_count)

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "name": self.name,
            "change": self.change,
            "source": self.source,
            "timezone": self.timezone,
            "old_timezone": self.old_timezone,
            "fields": [f.to_json() for f in self.fields],
            "affected_by": list(self.affected_by),
            "occurrences": self.occurrences.to_json(),
            "next": {
                "before": format_utc(self.next_before.at) if self.next_before else None,
                "after": format_utc(self.next_after.at) if self.next_after else None,
            },
        }


def _first_scheduled(plan: AutomationPlan | None) -> Occurrence | None:
    if plan is None:
        return None
    return next((o for o in plan.occurrences if o.status == "scheduled"), None)


def diff_automation_plans(old: AutomationPlan | None, new: AutomationPlan | None) -> AutomationDiff:
    """One automation's occurrence changes; either side may be missing (added / removed)."""
    if old is None and new is None:
        raise ValueError("diff_automation_plans needs at least one side")
    some = new if new is not None else old
    assert some is not None
    change: Change
    if old is None:
        change = "added"
    elif new is None:
        change = "removed"
    else:
        change = "changed"
    occ = diff_occurrences(old.occurrences if old else [], new.occurrences if new else [])
    if change == "changed" and not occ:
        change = "unchanged"
    return AutomationDiff(
        organization=some.organization,
        name=some.name,
        change=change,
        source_old=old.source if old else None,
        source_new=new.source if new else None,
        timezone=some.timezone,
        old_timezone=old.timezone if old is not None and new is not None and old.timezone != new.timezone else None,
        occurrences=occ,
        old_count=len(old.occurrences) if old else 0,
        new_count=len(new.occurrences) if new else 0,
        next_before=_first_scheduled(old),
        next_after=_first_scheduled(new),
        compiled=True,
    )


A = TypeVar("A")
B = TypeVar("B")


def merge_join(
    left: Iterable[A], right: Iterable[B], key_a: Callable[[A], Any], key_b: Callable[[B], Any]
) -> Iterator[tuple[A | None, B | None]]:
    """Pairs of two sorted streams by key, holding one item of each at a time."""
    it_a, it_b = iter(left), iter(right)
    a, b = next(it_a, None), next(it_b, None)
    while a is not None or b is not None:
        if b is None or (a is not None and key_a(a) < key_b(b)):
            yield a, None
            a = next(it_a, None)
        elif a is None or key_b(b) < key_a(a):
            yield None, b
            b = next(it_b, None)
        else:
            yield a, b
            a, b = next(it_a, None), next(it_b, None)


def _plan_key(p: AutomationPlan) -> tuple[str, str]:
    return (p.organization, p.name)


@dataclass
class Diff:
    range_from: datetime
    range_to: datetime
    automations: list[AutomationDiff]  # changed ones only, sorted by (organization, name)
    documents: list[DocumentDiff] = field(default_factory=list)  # Defaults, Flows, ...
    unchanged: int = 0  # automations with no change at all
    compiled: int = 0  # automation plans the diff compiled (two per changed automation at most)

    @property
    def has_changes(self) -> bool:
        return bool(self.automations or self.documents)

    def summary(self) -> dict[str, Any]:
        counts = {"added": 0, "removed": 0, "changed": 0}
        for a in self.automations:
            counts[a.change] = counts.get(a.change, 0) + 1
        occ = {"added": 0, "removed": 0, "moved": 0, "modified": 0}
        for a in self.automations:
            occ["added"] += len(a.occurrences.added)
            occ["removed"] += len(a.occurrences.removed)
            occ["moved"] += len(a.occurrences.moved)
            occ["modified"] += len(a.occurrences.modified)
        return {
            "changes": self.has_changes,
            "automations": {**counts, "unchanged": self.unchanged},
            "occurrences": occ,
            "documents": len(self.documents),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": DIFF_FORMAT,
            "range": {"from": format_utc(self.range_from), "to": format_utc(self.range_to)},
            "automations": [a.to_json() for a in self.automations],
            "config": [d.to_json() for d in self.documents],
            "summary": self.summary(),
        }


def diff_plans(old: Plan, new: Plan) -> Diff:
    """Occurrence changes of two plans of the same range, merge-joined per automation.

    When both plans cover the same range with the same inputs, an automation whose `spec_hash`
    is set and equal on both sides has the same occurrences and is not compared.
    """
    same_basis = (old.range_from, old.range_to, old.inputs) == (new.range_from, new.range_to, new.inputs)
    result = Diff(new.range_from, new.range_to, [])
    for a, b in merge_join(old.automations, new.automations, _plan_key, _plan_key):
        if a is not None and b is not None and same_basis and a.spec_hash and a.spec_hash == b.spec_hash:
            result.unchanged += 1
            continue
        d = diff_automation_plans(a, b)
        if d.change == "unchanged":
            result.unchanged += 1
        else:
            result.automations.append(d)
    return result


CompileFn = Callable[[Config, Entry[Any], datetime, datetime], AutomationPlan]


def _default_compile(config: Config, entry: Entry[Any], range_from: datetime, range_to: datetime) -> AutomationPlan:
    from flowspec.compiler import compile_automation

    return compile_automation(config, entry, range_from, range_to)


def _entry_key(e: Entry[Any]) -> tuple[str, str]:
    return (e.organization, e.name)


def diff(
    old: Config,
    new: Config,
    range_from: datetime,
    range_to: datetime,
    *,
    compile: CompileFn | None = None,
) -> Diff:
    """Config and occurrence changes per automation; compiles only automations that changed."""
    compile_fn = compile or _default_compile
    config_diff = diff_configs(old, new)
    affected_by = config_diff.affected_by()
    result = Diff(range_from, range_to, [], config_diff.documents)
    for o, n in merge_join(old.automations, new.automations, _entry_key, _entry_key):
        some = n if n is not None else o
        assert some is not None
        key = _entry_key(some)
        doc_diff = config_diff.automations.get(key)
        via = affected_by.get(f"{key[0]}/{key[1]}", [])
        if o is not None and n is not None and o.model == n.model:
            if doc_diff is None and not via:
                result.unchanged += 1
                continue
            # Changed text with the same meaning (a default written out, a comment-only reorder),
            # or a changed Flow/Channel/Audience: reported, but the schedule is the same.
            result.automations.append(
                AutomationDiff(
                    key[0], key[1], "changed", o.source, n.source,
                    n.model.spec.schedule.execution_timezone,
                    fields=doc_diff.fields if doc_diff else [], affected_by=via,
                )
            )
            continue
        old_plan = compile_fn(old, o, range_from, range_to) if o is not None else None
        new_plan = compile_fn(new, n, range_from, range_to) if n is not None else None
        result.compiled += (old_plan is not None) + (new_plan is not None)
        d = diff_automation_plans(old_plan, new_plan)
        d.fields = doc_diff.fields if doc_diff else []
        # An added or removed automation is explained by itself, not by what it references.
        d.affected_by = via if d.change != "added" and d.change != "removed" else []
        if d.change == "unchanged":
            if not d.fields and not via:
                # Equal models compile equally; different models may too (an unreachable
                # exception added): then only the model changed, still worth showing.
                result.unchanged += 1
                continue
            d.change = "changed"
        result.automations.append(d)
    return result
