"""flowspec.diff: config fields by dotted path, occurrences by key, regular runs folded, renderers."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowspec.config import load_config
from flowspec.diff import (
    ABSENT,
    Diff,
    Run,
    diff_configs,
    diff_occurrences,
    diff_plans,
    diff_values,
    fold_runs,
)
from flowspec.plan import AutomationPlan, Inputs, Occurrence, Plan
from flowspec.render import diff_json, diff_markdown, diff_text

SP = ZoneInfo("America/Sao_Paulo")
RANGE = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
INPUTS = Inputs("2025b", "0.83")
YEAR = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]


def occ(name: str, day: date, hh: int = 9, mm: int = 0, status: str = "scheduled", **kw: Any) -> Occurrence:
    local = datetime(day.year, day.month, day.day, hh, mm, tzinfo=SP)
    return Occurrence(
        key=f"acme/{name}/{day.isoformat()}T{hh:02d}:{mm:02d}",
        status=status,  # type: ignore[arg-type]
        at=local.astimezone(UTC),
        local=local,
        **kw,
    )


def occs(name: str, days: Iterable[date], hh: int = 9, mm: int = 0) -> list[Occurrence]:
    return [occ(name, d, hh, mm) for d in days]


def auto(name: str, occurrences: list[Occurrence], spec_hash: str = "") -> AutomationPlan:
    return AutomationPlan("acme", name, f"automations/{name}.yaml", "America/Sao_Paulo", occurrences, spec_hash)


def plan(*automations: AutomationPlan) -> Plan:
    return Plan(RANGE[0], RANGE[1], INPUTS, list(automations))


def mondays() -> list[date]:
    return [d for d in YEAR if d.weekday() == 0]


def text_of(d: Diff, **kw: Any) -> str:
    out = io.StringIO()
    diff_text.render(d, out, **kw)
    return out.getvalue()


# --------------------------------------------------------------------------- occurrences


def test_same_key_other_time_is_moved_with_the_new_occurrences_why() -> None:
    """An occurrence whose key stays but whose `at` changes is moved, explained by its moved_by."""
    old = occs("a", YEAR[:5])
    new = list(old)
    o = old[2]
    new[2] = o._replace(at=o.at + timedelta(days=1), local=o.local + timedelta(days=1),
                     moved_from=o.at, moved_by="next_allowed")
    changes = diff_occurrences(old, new)
    assert [m.key for m in changes.moved] == [o.key]
    assert changes.moved[0].to_json() == {
        "key": o.key, "old_at": "2026-01-03T12:00:00Z", "new_at": "2026-01-04T12:00:00Z",
        "moved_by": "next_allowed", "old_moved_by": None, "changes": {},
    }
    assert not changes.added and not changes.removed and not changes.modified


def test_same_time_other_status_reason_or_overrides_is_modified() -> None:
    """Status, reason, detail and overrides changes at the same `at` are listed as modified."""
    old = occs("a", YEAR[:3])
    new = [
        old[0]._replace(status="skipped", reason="holiday", detail="Confraternização Universal"),
        old[1]._replace(overrides={"rate_limit_per_hour": 3000}),
        old[2],
    ]
    changes = diff_occurrences(old, new)
    assert [m.to_json() for m in changes.modified] == [
        {"key": old[0].key, "changes": {"status": ["scheduled", "skipped"], "reason": [None, "holiday"],
                                        "detail": [None, "Confraternização Universal"]}},
        {"key": old[1].key, "changes": {"overrides": [{}, {"rate_limit_per_hour": 3000}]}},
    ]


def test_keys_only_on_one_side_are_added_or_removed() -> None:
    """Keys present only in the new plan are added, only in the old plan removed."""
    changes = diff_occurrences(occs("a", YEAR[0:3]), occs("a", YEAR[1:4]))
    assert [o.key for o in changes.removed] == ["acme/a/2026-01-01T09:00"]
    assert [o.key for o in changes.added] == ["acme/a/2026-01-04T09:00"]


def test_plans_are_merge_joined_by_organization_and_name() -> None:
    """Automations only in one plan are added/removed; identical ones are counted unchanged."""
    d = diff_plans(
        plan(auto("a", occs("a", YEAR[:3])), auto("b", occs("b", YEAR[:3]))),
        plan(auto("b", occs("b", YEAR[:3])), auto("c", occs("c", YEAR[:3]))),
    )
    assert [(a.name, a.change) for a in d.automations] == [("a", "removed"), ("c", "added")]
    assert d.unchanged == 1
    assert d.summary()["occurrences"] == {"added": 3, "removed": 3, "moved": 0, "modified": 0}


def test_equal_spec_hash_on_the_same_range_is_not_compared() -> None:
    """Two automation plans with the same spec_hash over the same range count as unchanged."""
    d = diff_plans(plan(auto("a", occs("a", YEAR[:3]), "h1")), plan(auto("a", [], "h1")))
    assert d.automations == [] and d.unchanged == 1
    # Another range: the hash says nothing about occurrences, so they are compared.
    other = Plan(RANGE[0], RANGE[1] + timedelta(days=1), INPUTS, [auto("a", [], "h1")])
    assert [a.change for a in diff_plans(plan(auto("a", occs("a", YEAR[:3]), "h1")), other).automations] == ["changed"]


def test_diff_plans_consumes_lazy_plans_once() -> None:
    """Plans whose automations are one-shot iterators are diffed in a single pass."""
    def lazy(*names: str) -> Plan:
        return Plan(RANGE[0], RANGE[1], INPUTS, (auto(n, occs(n, YEAR[:2])) for n in names))

    d = diff_plans(lazy("a", "c", "e"), lazy("b", "c", "d"))
    assert [(a.name, a.change) for a in d.automations] == [
        ("a", "removed"), ("b", "added"), ("d", "added"), ("e", "removed")]


# --------------------------------------------------------------------------- folding


def fold(items: list[Occurrence]) -> list[str]:
    out = []
    for part in fold_runs(items, lambda o: o.local):
        out.append(f"{part.count} × {part.pattern}, {part.span}" if isinstance(part, Run) else part.slot)
    return out


def test_weekly_run_folds_to_one_line() -> None:
    """52 Mondays at 09:00 are one run: count, weekday, time, first and last date."""
    assert fold(occs("a", mondays())) == ["52 × MON 09:00, 2026-01-05 … 2026-12-28"]


def test_several_weekdays_fold_together_and_gaps_split_runs() -> None:
    """MON/WED/FRI fold into one run; a missing Wednesday splits only the Wednesdays."""
    days = [d for d in YEAR if d.weekday() in (0, 2, 4)]
    assert fold(occs("a", days, 14)) == ["156 × MON/WED/FRI 14:00, 2026-01-02 … 2026-12-30"]
    holed = [d for d in days if d != date(2026, 3, 4)]
    assert fold(occs("a", holed, 14)) == [
        "104 × MON/FRI 14:00, 2026-01-02 … 2026-12-28",
        "8 × WED 14:00, 2026-01-07 … 2026-02-25",
        "43 × WED 14:00, 2026-03-11 … 2026-12-30",
    ]


def test_daily_monthly_and_intraday_rhythms_are_named() -> None:
    """Daily, weekdays, monthly by day and by weekday, and sub-day steps each read as one run."""
    assert fold(occs("a", YEAR)) == ["365 × daily 09:00, 2026-01-01 … 2026-12-31"]
    assert fold(occs("a", [d for d in YEAR if d.weekday() < 5])) == ["261 × MON-FRI 09:00, 2026-01-01 … 2026-12-31"]
    assert fold(occs("a", [d for d in YEAR if d.day == 31])) == ["7 × monthly day 31 09:00, 2026-01-31 … 2026-12-31"]
    last_fri = [d for d in YEAR if d.weekday() == 4 and (d + timedelta(days=7)).month != d.month]
    assert fold(occs("a", last_fri)) == ["12 × monthly last FRI 09:00, 2026-01-30 … 2026-12-25"]
    quarter_hours = [occ("a", date(2026, 1, 1), h, m) for h in range(24) for m in (0, 15, 30, 45)]
    assert fold(quarter_hours) == ["96 × every 15m, 2026-01-01 00:00 … 2026-01-01 23:45"]


def test_irregular_dates_stay_single() -> None:
    """Dates with no rhythm are not forced into a run."""
    days = [date(2026, 1, 1), date(2026, 1, 4), date(2026, 2, 19), date(2026, 7, 7)]
    assert fold(occs("a", days)) == [f"{d.isoformat()}T09:00" for d in days]


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=364), max_size=80))
def test_folding_never_loses_or_invents_an_occurrence(offsets: set[int]) -> None:
    """Every item ends up in exactly one line, and a run holds exactly the dates its rhythm names."""
    items = occs("a", [YEAR[i] for i in sorted(offsets)])
    parts = fold_runs(items, lambda o: o.local)
    seen: list[str] = []
    for part in parts:
        if isinstance(part, Run):
            assert part.count >= 3
            seen.extend(o.key for o in part.items)
            assert part.first == part.items[0].local and part.last == part.items[-1].local
        else:
            seen.append(part.key)
    assert sorted(seen) == sorted(o.key for o in items)


# --------------------------------------------------------------------------- text output


def test_text_folds_added_runs_and_ends_with_a_summary_line() -> None:
    """A new weekly automation reads as one folded line and the output ends with the summary."""
    d = diff_plans(plan(), plan(auto("promo", occs("promo", mondays()))))
    assert text_of(d).splitlines() == [
        "range 2026-01-01T00:00:00Z .. 2027-01-01T00:00:00Z",
        "",
        "+ acme/promo (automations/promo.yaml, America/Sao_Paulo)",
        "    + 52 × MON 09:00 America/Sao_Paulo, 2026-01-05 … 2026-12-28",
        "",
        "diff: 1 automation added; occurrences +52 -0 ~0",
    ]


def test_expand_lists_every_occurrence() -> None:
    """--expand turns the folded run back into one line per occurrence."""
    d = diff_plans(plan(), plan(auto("promo", occs("promo", mondays()))))
    lines = [x for x in text_of(d, expand=True).splitlines() if x.startswith("    + ")]
    assert len(lines) == 52
    assert lines[0] == "    + 2026-01-05T09:00  Mon 2026-01-05 09:00 -03:00"


def test_a_uniform_shift_of_every_occurrence_is_one_line() -> None:
    """A start_time change (new keys, same rhythm) and a uniform deferral both read as one line."""
    d = diff_plans(plan(auto("a", occs("a", mondays(), 14))), plan(auto("a", occs("a", mondays(), 9))))
    body = [x for x in text_of(d).splitlines() if x.startswith("    ")]
    assert body == ["    ~ all 52 occurrences move -5h: MON 14:00 → MON 09:00 America/Sao_Paulo, 2026-01-05 … 2026-12-28"]
    old = occs("a", mondays())
    new = [o._replace(at=o.at + timedelta(hours=2), local=o.local + timedelta(hours=2), moved_by="window",
                   moved_from=o.at) for o in old]
    body = [x for x in text_of(diff_plans(plan(auto("a", old)), plan(auto("a", new)))).splitlines() if x.startswith("    ")]
    assert body == ["    ~ all 52 occurrences move +2h (moved_by=window): MON 09:00 → MON 11:00 America/Sao_Paulo, 2026-01-05 … 2026-12-28"]


def test_text_has_colour_only_when_asked() -> None:
    """ANSI colour codes appear with color=True (a terminal) and never otherwise (a pipe)."""
    d = diff_plans(plan(auto("a", occs("a", YEAR[:1]))), plan())
    assert "\x1b[" in text_of(d, color=True)
    assert "\x1b[" not in text_of(d)


def test_no_changes_says_so() -> None:
    """Identical plans give a 'no changes' summary and an empty JSON automation list."""
    d = diff_plans(plan(auto("a", occs("a", YEAR[:3]))), plan(auto("a", occs("a", YEAR[:3]))))
    assert text_of(d).splitlines()[-1] == "diff: no changes (1 automation compared)"
    assert not d.has_changes


# --------------------------------------------------------------------------- json and markdown


def test_json_follows_the_flowspec_diff_v1_contract() -> None:
    """The JSON has format, range, automations with occurrences by kind, config and summary."""
    old = occs("a", YEAR[:2])
    new = [old[0]._replace(status="paused")]
    out = io.StringIO()
    diff_json.render(diff_plans(plan(auto("a", old)), plan(auto("a", new))), out)
    data = json.loads(out.getvalue())
    assert data["format"] == "flowspec.diff/v1"
    assert data["range"] == {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
    [a] = data["automations"]
    assert (a["organization"], a["name"], a["change"]) == ("acme", "a", "changed")
    assert a["occurrences"]["removed"][0]["key"] == "acme/a/2026-01-02T09:00"
    assert a["occurrences"]["modified"] == [{"key": "acme/a/2026-01-01T09:00", "changes": {"status": ["scheduled", "paused"]}}]
    assert data["summary"]["occurrences"] == {"added": 0, "removed": 1, "moved": 0, "modified": 1}
    assert data["config"] == []


def test_markdown_has_a_summary_table_and_folded_details() -> None:
    """The PR comment has a row per automation with next sends, and details in <details>."""
    d = diff_plans(plan(auto("a", occs("a", mondays(), 14))), plan(auto("a", occs("a", mondays(), 9)),
                                                                     auto("b", occs("b", YEAR[:3]))))
    md = diff_markdown.render_text(d)
    assert "| ~ `acme/a` | 52 | 52 | 0 | Mon 2026-01-05 14:00 -03:00 | Mon 2026-01-05 09:00 -03:00 |" in md
    assert "| + `acme/b` | 3 | 0 | 0 | — | Thu 2026-01-01 09:00 -03:00 |" in md
    assert md.count("<details>") == 2 and md.count("</details>") == 2
    assert "```diff\n+ acme/b" in md


def test_markdown_stays_under_the_limit_with_a_note_saying_where_the_rest_is() -> None:
    """A huge diff is cut below max_chars, keeps its tags balanced and says where the full report is."""
    many = [auto(f"a{i:04d}", occs(f"a{i:04d}", YEAR[i % 7 :: 3])) for i in range(400)]
    d = diff_plans(plan(), plan(*many))
    md = diff_markdown.render_text(d, max_chars=65_536, full_report="the step summary of run 42")
    assert len(md) <= 65_536
    assert "**Truncated**" in md and "the step summary of run 42" in md
    assert md.count("<details>") == md.count("</details>")
    assert md.count("```") % 2 == 0
    assert len(diff_markdown.render_text(d, max_chars=0)) > 65_536


# --------------------------------------------------------------------------- config fields


def test_values_diff_by_dotted_path_with_named_list_items() -> None:
    """Nested maps give dotted paths; exceptions with names match by name, not position."""
    old = {"spec": {"schedule": {"start_time": "09:00", "days": ["MON"]},
                    "exceptions": [{"name": "bf", "reason": "x"}, {"name": "cm", "reason": "y"}]}}
    new = {"spec": {"schedule": {"start_time": "10:00", "days": ["MON", "FRI"], "end_date": "2026-03-01"},
                    "exceptions": [{"name": "new", "reason": "z"}, {"name": "bf", "reason": "x2"},
                                   {"name": "cm", "reason": "y"}]}}
    assert [(c.path, c.old, c.new) for c in diff_values(old, new)] == [
        ("spec.schedule.start_time", "09:00", "10:00"),
        ("spec.schedule.days", ["MON"], ["MON", "FRI"]),
        ("spec.schedule.end_date", ABSENT, "2026-03-01"),
        ("spec.exceptions[name=new]", ABSENT, {"name": "new", "reason": "z"}),
        ("spec.exceptions[name=bf].reason", "x", "x2"),
    ]


def test_unnamed_list_items_are_aligned_so_an_insertion_is_one_change() -> None:
    """Inserting a blackout range in front reports that one item, not every item after it."""
    old = {"b": [{"start": "2026-01-01"}, {"start": "2026-02-01"}]}
    new = {"b": [{"start": "2025-12-25"}, {"start": "2026-01-01"}, {"start": "2026-02-01"}]}
    assert [(c.path, c.old, c.new) for c in diff_values(old, new)] == [("b[0]", ABSENT, {"start": "2025-12-25"})]


CONFIG = {
    "flowspec.yaml": """
        apiVersion: flowspec/v1
        kind: Defaults
        metadata: {name: defaults}
        spec:
          schedule: {execution_timezone: America/Sao_Paulo}
    """,
    "flows.yaml": """
        apiVersion: flowspec/v1
        kind: Flow
        metadata: {name: promo, organization: acme}
        spec:
          start: hi
          nodes:
            hi: {type: send_text, text: "Hello", next: done}
            done: {type: end}
        ---
        apiVersion: flowspec/v1
        kind: Channel
        metadata: {name: main, organization: acme}
        spec: {type: outbox, path: outbox.jsonl}
    """,
    "a.yaml": """
        apiVersion: flowspec/v1
        kind: Automation
        metadata: {name: a, organization: acme}
        spec:
          flow: promo
          whatsapp_number: main
          audience: {contact_ids: [c1]}
          schedule: {recurrence_type: daily, start_date: 2026-01-01, start_time: "09:00"}
    """,
    "b.yaml": """
        apiVersion: flowspec/v1
        kind: Automation
        metadata: {name: b, organization: acme}
        spec:
          flow: promo
          whatsapp_number: main
          audience: {contact_ids: [c1]}
          schedule: {recurrence_type: daily, start_date: 2026-01-01, start_time: "09:00",
                     execution_timezone: Europe/Lisbon}
    """,
}


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def edit(files: dict[str, str], name: str, change: Callable[[str], str]) -> dict[str, str]:
    return {**files, name: change(files[name])}


def test_renamed_file_with_identical_content_is_no_change(tmp_path: Path) -> None:
    """Documents are matched by kind, organization and name, never by file."""
    old = load_config([write(tmp_path / "old", CONFIG)])
    renamed = {("renamed-" + k if k != "flowspec.yaml" else k): v for k, v in CONFIG.items()}
    new = load_config([write(tmp_path / "new", renamed)])
    d = diff_configs(old, new)
    assert d.automations == {} and d.documents == []


def test_flow_change_names_the_automations_it_affects(tmp_path: Path) -> None:
    """A changed Flow lists its field change and every automation that uses it."""
    old = load_config([write(tmp_path / "old", CONFIG)])
    new_files = edit(CONFIG, "flows.yaml", lambda t: t.replace('"Hello"', '"Olá"'))
    new = load_config([write(tmp_path / "new", new_files)])
    d = diff_configs(old, new)
    [flow] = d.documents
    assert (flow.kind, flow.name, flow.change, flow.affects) == ("Flow", "promo", "changed", ["acme/a", "acme/b"])
    assert [f.to_json() for f in flow.fields] == [{"path": "spec.nodes.hi.text", "old": "Hello", "new": "Olá"}]
    assert d.affected_by() == {"acme/a": ["Flow acme/promo"], "acme/b": ["Flow acme/promo"]}


def test_defaults_change_affects_only_automations_that_inherit_the_field(tmp_path: Path) -> None:
    """A flowspec.yaml default reaches automations that do not set the field themselves."""
    old = load_config([write(tmp_path / "old", CONFIG)])
    new_files = edit(CONFIG, "flowspec.yaml", lambda t: t.replace("America/Sao_Paulo", "America/Bahia"))
    new = load_config([write(tmp_path / "new", new_files)])
    d = diff_configs(old, new)
    [defaults] = d.documents
    assert defaults.kind == "Defaults"
    assert [f.path for f in defaults.fields] == ["spec.schedule.execution_timezone"]
    assert defaults.affects == ["acme/a"]  # b sets its own timezone
    assert d.automations == {}  # the automation files themselves did not change


def test_automation_fields_are_diffed_as_written(tmp_path: Path) -> None:
    """An automation's own changed field is reported with old and new values."""
    old = load_config([write(tmp_path / "old", CONFIG)])
    new_files = edit(CONFIG, "a.yaml", lambda t: t.replace('start_time: "09:00"', 'start_time: "10:30"'))
    new = load_config([write(tmp_path / "new", new_files)])
    d = diff_configs(old, new)
    assert [f.to_json() for f in d.automations[("acme", "a")].fields] == [
        {"path": "spec.schedule.start_time", "old": "09:00", "new": "10:30"}]


@pytest.mark.parametrize("count", [0, 3, 7])
def test_affects_text_lists_a_few_names_then_counts(count: int) -> None:
    """Long 'affects' lists name five automations and count the rest."""
    names = [f"acme/a{i}" for i in range(count)]
    text = diff_text.affects_text(names)
    if count == 0:
        assert text == "affects no automation"
    elif count <= 5:
        assert text == "affects " + ", ".join(names)
    else:
        assert text == f"affects {count} automations: {', '.join(names[:5])} and {count - 5} more"


def test_only_automations_whose_model_changed_are_compiled(tmp_path: Path) -> None:
    """diff() compiles both sides of a changed automation and nothing for unchanged ones."""
    from flowspec.diff import diff

    old = load_config([write(tmp_path / "old", CONFIG)])
    new_files = edit(CONFIG, "a.yaml", lambda t: t.replace('start_time: "09:00"', 'start_time: "10:30"'))
    new_files = edit(new_files, "flows.yaml", lambda t: t.replace('"Hello"', '"Olá"'))
    new = load_config([write(tmp_path / "new", new_files)])
    result = diff(old, new, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC))
    assert result.compiled == 2  # a, old and new; b changed only through its Flow
    a, b = result.automations
    assert (a.name, len(a.occurrences.added), len(a.occurrences.removed), a.affected_by) == ("a", 10, 10, ["Flow acme/promo"])
    assert (b.name, b.change, b.compiled, b.affected_by) == ("b", "changed", False, ["Flow acme/promo"])
    assert [d.ref for d in result.documents] == ["Flow acme/promo"]
