"""`--format markdown`: a pull-request comment, folded when long, never over GitHub's limit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from test_render_common import SAO_PAULO, daily_promo, occ, rendered

from flowspec.plan import AutomationPlan, Inputs, Plan
from flowspec.render import markdown

GITHUB_COMMENT_LIMIT = 65_536


def _many(n: int, name: str = "daily-promo") -> AutomationPlan:
    start = datetime(2025, 1, 1, 9, 0, tzinfo=SAO_PAULO)
    days = [start + timedelta(days=i) for i in range(n)]
    return AutomationPlan(
        "acme", name, f"automations/{name}.yaml", "America/Sao_Paulo",
        [occ(f"acme/{name}/{d:%Y-%m-%dT%H:%M}", d, overrides={"note": "a | b"}) for d in days],
    )


def _plan(*automations: AutomationPlan) -> Plan:
    return Plan(datetime(2025, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC), Inputs("2025b", "0.83"), list(automations))


def test_a_table_per_automation_with_escaped_cells() -> None:
    """Each automation gets a heading, a summary line and a table whose cells cannot break it."""
    text = rendered("markdown", include_skipped=True)
    assert text.startswith("### flowspec plan\n\nRange `2025-10-28T00:00:00Z` .. `2025-11-27T00:00:00Z`")
    assert "#### `acme/daily-promo`\n\n`America/Sao_Paulo` · `automations/daily-promo.yaml` · 6 scheduled, 3 skipped\n" in text
    assert "| slot | local | UTC | status | details |\n|---|---|---|---|---|\n" in text
    assert (
        "| `2025-11-12T09:00` | Wed 2025-11-12 09:00 -03:00 | 2025-11-12T12:00:00Z | scheduled "
        '| overrides={"max\\_per\\_second":5,"template":"promo\\|big"} |\n'
    ) in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert all(line.replace("\\|", "").count("|") == 6 for line in rows)


def test_skipped_rows_only_with_include_skipped() -> None:
    """Like text, skipped occurrences are counted always and listed only on request."""
    assert "reason=weekend" not in rendered("markdown")
    assert "3 skipped (not listed; `--include-skipped` lists them)" in rendered("markdown")
    assert "| skipped | reason=weekend |" in rendered("markdown", include_skipped=True)


def test_long_tables_are_folded() -> None:
    """More than FOLD_AFTER rows go inside <details>; short tables stay open."""
    text = rendered("markdown", _plan(_many(markdown.FOLD_AFTER + 1)))
    assert f"<details><summary>{markdown.FOLD_AFTER + 1} occurrences</summary>" in text
    assert text.rstrip().endswith("</details>")
    assert "<details>" not in rendered("markdown", _plan(_many(markdown.FOLD_AFTER)))


def test_huge_plans_are_truncated_under_the_comment_limit() -> None:
    """A plan too big for one comment is cut with a note; folds stay closed, output stays valid."""
    text = rendered("markdown", _plan(_many(3000, "a-first"), _many(3000, "b-second"), _many(10, "c-third")))
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert text.count("<details>") == text.count("</details>")
    assert "Truncated to fit a comment:" in text and "more automations" in text
    assert "Run `flowspec plan --format text` for the full plan." in text
    shown = sum(1 for line in text.splitlines() if line.startswith("| `"))
    note = text.split("Truncated to fit a comment: ")[1]
    assert note.startswith(f"{6010 - shown} more occurrences and 2 more automations not shown.")


def test_automation_without_rows_has_no_table() -> None:
    """An automation whose occurrences are all hidden shows its counts and no empty table."""
    only_skipped = dataclasses.replace(daily_promo(), occurrences=[o for o in daily_promo().occurrences if o.status == "skipped"])
    text = rendered("markdown", _plan(only_skipped))
    assert "3 skipped (not listed" in text and "| slot |" not in text
