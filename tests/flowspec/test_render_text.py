"""`--format text`: aligned, stable, one occurrence per line, diffable byte for byte."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from test_render_common import SAO_PAULO, daily_promo, occ, rendered, sample_plan

from flowspec.plan import Inputs, Plan


def test_lists_each_visible_occurrence_on_one_aligned_line() -> None:
    """Each occurrence is one line with slot, weekday local time, UTC, status and details."""
    text = rendered("text")
    assert text.splitlines()[0] == (
        "flowspec plan  range 2025-10-28T00:00:00Z .. 2025-11-27T00:00:00Z  tzdata 2025b  holidays 0.83"
    )
    assert (
        "  2025-11-21T09:00  Mon 2025-11-24 09:00 -03:00  2025-11-24T12:00:00Z  scheduled  "
        "moved_by=next_allowed moved_from=2025-11-21T12:00:00Z\n"
    ) in text
    assert (
        '  2025-11-12T09:00  Wed 2025-11-12 09:00 -03:00  2025-11-12T12:00:00Z  scheduled  '
        'overrides={"max_per_second":5,"template":"promo|big"}\n'
    ) in text
    assert "  2025-11-10T08:00  Mon 2025-11-10 08:00 +00:00  2025-11-10T08:00:00Z  paused\n" in text
    for block in text.split("\n\n")[1:]:
        rows = [line for line in block.splitlines() if line.startswith("  2025-")]
        assert len({line.index("Z  ") for line in rows}) == 1  # the status column lines up


def test_skipped_occurrences_only_with_include_skipped() -> None:
    """Skipped occurrences are counted but listed only with --include-skipped."""
    plain = rendered("text")
    assert "reason=weekend" not in plain
    assert "6 scheduled, 3 skipped (not listed; --include-skipped lists them)" in plain
    full = rendered("text", include_skipped=True)
    assert "2025-11-08T09:00  Sat 2025-11-08 09:00 -03:00  2025-11-08T12:00:00Z  skipped    reason=weekend\n" in full
    assert (
        'reason=holiday detail="Dia Nacional de Zumbi e da Consciência Negra; feriado, nacional"' in full
    )
    assert 'reason=exception detail="maintenance\\nwindow"' in full  # still one line
    assert "6 scheduled, 3 skipped\n" in full


def test_automations_are_headed_and_dst_folds_annotated() -> None:
    """Each automation is headed by its key prefix, zone and file; DST rules show as `dst=`."""
    text = rendered("text")
    assert "\nacme/dst-report  America/New_York  automations/dst.yaml\n" in text
    assert "  2025-11-02T01:30+fold  Sun 2025-11-02 01:30 -05:00  2025-11-02T06:30:00Z  scheduled  dst=overlap_both\n" in text
    # A path with a blank is quoted so the header still splits into three fields.
    assert '\nbeta/weekly-digest  Europe/Lisbon  "automations/weekly digest.yaml"\n' in text


def test_output_has_no_trailing_blanks_and_ends_with_a_newline() -> None:
    """Snapshots pass `git diff --check`: no trailing whitespace, final newline."""
    text = rendered("text", include_skipped=True)
    assert text.endswith("\n")
    assert all(line == line.rstrip() for line in text.splitlines())


def test_order_of_occurrences_given_does_not_matter() -> None:
    """Occurrences are listed by (at, key) whatever order they arrive in."""
    automation = daily_promo()
    shuffled = dataclasses.replace(automation, occurrences=list(reversed(automation.occurrences)))
    plan = sample_plan()
    assert isinstance(plan.automations, list)
    reordered = Plan(plan.range_from, plan.range_to, plan.inputs, [shuffled, *plan.automations[1:]])
    assert rendered("text", reordered, include_skipped=True) == rendered("text", include_skipped=True)


def test_one_changed_occurrence_changes_exactly_one_line() -> None:
    """Widths never depend on other occurrences: a long override changes only its own line."""
    automation = daily_promo()
    changed = [
        o._replace(overrides={"template": "x" * 80}) if o.slot == "2025-11-03T09:00" else o
        for o in automation.occurrences
    ]
    before = rendered("text", Plan(sample_plan().range_from, sample_plan().range_to, Inputs("a", "b"), [automation]))
    after = rendered(
        "text",
        Plan(sample_plan().range_from, sample_plan().range_to, Inputs("a", "b"), [dataclasses.replace(automation, occurrences=changed)]),
    )
    differing = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(differing) == 1 and differing[0][1].endswith('overrides={"template":"' + "x" * 80 + '"}')


def test_automation_without_occurrences_says_so() -> None:
    """An automation with nothing in range still appears, saying it has no occurrences."""
    automation = dataclasses.replace(daily_promo(), occurrences=[])
    plan = Plan(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), Inputs("a", "b"), [automation])
    assert rendered("text", plan).endswith(
        "acme/daily-promo  America/Sao_Paulo  automations/daily-promo.yaml\n  no occurrences in range\n"
    )


def test_no_automations() -> None:
    """An empty plan renders its header and says there are no automations."""
    plan = Plan(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), Inputs("a", "b"), [])
    assert rendered("text", plan).endswith("\n\nno automations\n")


def test_seconds_are_kept_in_the_utc_column() -> None:
    """A rescheduled time with seconds shows them in UTC, the column with full precision."""
    local = datetime(2025, 11, 3, 9, 0, 30, tzinfo=SAO_PAULO)
    automation = dataclasses.replace(daily_promo(), occurrences=[occ("acme/daily-promo/2025-11-03T09:00", local)])
    plan = Plan(local.astimezone(UTC), local.astimezone(UTC) + timedelta(days=1), Inputs("a", "b"), [automation])
    assert "Mon 2025-11-03 09:00 -03:00  2025-11-03T12:00:30Z  scheduled\n" in rendered("text", plan)
