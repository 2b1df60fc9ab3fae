"""`--format json`: SPEC 3's contract, streamed, identical to the one-shot serialisation."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from test_render_common import dst_report, paused_digest, rendered, sample_plan

from flowspec.plan import AutomationPlan, Inputs, Occurrence, Plan

OCCURRENCE_KEYS = [
    "key", "status", "at", "local", "moved_from", "moved_by", "reason", "detail", "overrides", "dst",
]


def test_streamed_json_equals_json_dumps_of_to_json() -> None:
    """write_json writes byte for byte `json.dumps(plan.to_json(), indent=2)` plus a newline."""
    assert rendered("json", sample_plan(lazy=True)) == json.dumps(sample_plan().to_json(), indent=2) + "\n"
    empty = Plan(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), Inputs("a", "b"), [])
    assert rendered("json", empty) == json.dumps(empty.to_json(), indent=2) + "\n"


def test_json_has_exactly_the_contract_fields() -> None:
    """Top level, automation and occurrence objects carry the keys of SPEC 3, in that order."""
    data = json.loads(rendered("json"))
    assert list(data) == ["format", "range", "inputs", "automations"]
    assert data["format"] == "flowspec.plan/v1"
    assert data["range"] == {"from": "2025-10-28T00:00:00Z", "to": "2025-11-27T00:00:00Z"}
    assert data["inputs"] == {"tzdata": "2025b", "holidays": "0.83"}
    first = data["automations"][0]
    assert list(first) == ["organization", "name", "source", "timezone", "occurrences"]
    assert all(list(o) == OCCURRENCE_KEYS for a in data["automations"] for o in a["occurrences"])
    fold = data["automations"][1]["occurrences"][1]
    assert fold == {
        "key": "acme/dst-report/2025-11-02T01:30+fold",
        "status": "scheduled",
        "at": "2025-11-02T06:30:00Z",
        "local": "2025-11-02T01:30:00-05:00",
        "moved_from": None,
        "moved_by": None,
        "reason": None,
        "detail": None,
        "overrides": {},
        "dst": "overlap_both",
    }


def test_json_lists_skipped_occurrences_whatever_the_options() -> None:
    """The machine contract lists every status; --include-skipped only affects the list formats."""
    statuses = [o["status"] for a in json.loads(rendered("json"))["automations"] for o in a["occurrences"]]
    assert statuses.count("skipped") == 3 and "paused" in statuses


def test_json_is_written_one_automation_at_a_time() -> None:
    """An automation is on the stream before the next one is even produced (bounded memory)."""
    out = io.StringIO()
    seen: list[str] = []

    def automations() -> Iterator[AutomationPlan]:
        for automation in (dst_report(), paused_digest()):
            seen.append(out.getvalue())
            yield automation

    plan = Plan(datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC), Inputs("a", "b"), automations())
    plan.write_json(out)
    assert '"acme/dst-report/2025-11-03T01:30"' not in seen[0]
    assert '"acme/dst-report/2025-11-03T01:30"' in seen[1]
    assert json.loads(out.getvalue())["automations"][1]["name"] == "weekly-digest"


_text = st.text(st.characters(codec="utf-8"), max_size=12)
_occurrence = st.builds(
    lambda minutes, status, detail, overrides: Occurrence(
        key=f"o/a/{minutes}",
        status=status,
        at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        local=(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)).astimezone(ZoneInfo("Asia/Kolkata")),
        detail=detail,
        overrides=overrides,
    ),
    st.integers(0, 10**6),
    st.sampled_from(["scheduled", "skipped", "paused", "inactive"]),
    st.none() | _text,
    st.dictionaries(_text, st.none() | st.integers() | _text, max_size=3),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(_occurrence, max_size=4), max_size=3))
def test_streaming_matches_one_shot_for_any_content(occurrence_lists: list[list[Occurrence]]) -> None:
    """For any strings (quotes, newlines, unicode, line separators) streaming equals json.dumps."""
    automations = [AutomationPlan("o", f"a{i}", "f.yaml", "Asia/Kolkata", occ) for i, occ in enumerate(occurrence_lists)]
    plan = Plan(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), Inputs("x", "y"), automations)
    out = io.StringIO()
    Plan(plan.range_from, plan.range_to, plan.inputs, iter(automations)).write_json(out)
    assert out.getvalue() == json.dumps(plan.to_json(), indent=2) + "\n"
