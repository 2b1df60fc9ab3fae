"""`--format calendar`: month grids per automation with markers and a legend."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import click
from test_render_common import SAO_PAULO, daily_promo, occ, rendered

from flowspec.plan import Inputs, Plan
from flowspec.render.calendar import (
    DayMark,
    day_marks,
    legend_text,
    month_grids_text,
    occurrence_kind,
)


def test_month_grid_marks_each_kind_of_day() -> None:
    """Days show scheduled *, skipped x, rescheduled >, modified ~ and out-of-range '.'."""
    text = rendered("calendar")
    grid = text.split("acme/daily-promo  America/Sao_Paulo  automations/daily-promo.yaml\n6 scheduled, 3 skipped\n\n")[1]
    assert grid.startswith(
        "        October 2025                  November 2025\n"
        "Su  Mo  Tu  We  Th  Fr  Sa     Su  Mo  Tu  We  Th  Fr  Sa\n"
        "             .   .   .   .                              1\n"
        " .   .   .   .   .   .   .      2   3*  4*  5   6   7   8x\n"
        " .   .   .   .   .   .   .      9  10  11  12~ 13x 14  15\n"
        " .   .   .   .   .   .   .     16  17  18  19  20x 21  22\n"
        " .  27  28  29  30* 31         23  24> 25  26>  .   .   .\n"
        "                                .\n"
    )


def test_legend_names_the_four_kinds_of_day() -> None:
    """The legend explains scheduled, skipped, rescheduled and modified (and the rest)."""
    text = rendered("calendar")
    assert text.endswith(
        "Legend: * scheduled   x skipped   > rescheduled (moved here)   ~ modified (overrides)\n"
        "        p paused   i inactive   . outside the range\n"
    )


def test_colour_only_when_asked_and_markers_either_way() -> None:
    """Without colour there are no escape codes; with colour, stripping them gives the same text."""
    plain = rendered("calendar")
    coloured = rendered("calendar", color=True)
    assert "\x1b[" not in plain and "\x1b[" in coloured
    assert click.unstyle(coloured) == plain


def test_day_kind_priority_and_rescheduled_rule() -> None:
    """A day shows its most telling kind; a move within the same day is not a reschedule."""
    base = datetime(2025, 11, 3, 9, 0, tzinfo=SAO_PAULO)
    same_day = occ("a/b/2025-11-03T09:00", base.replace(hour=11), moved_by="window", moved_from=base.astimezone(UTC))
    next_day = occ("a/b/2025-11-02T23:00", base, moved_by="window")
    assert occurrence_kind(same_day) == "scheduled"
    assert occurrence_kind(next_day) == "rescheduled"
    skipped = occ("a/b/2025-11-03T08:00", base.replace(hour=8), "skipped", reason="blackout", detail="sale")
    modified = occ("a/b/2025-11-03T20:00", base.replace(hour=20), overrides={"max_recipients": 10})
    marks = day_marks([skipped, same_day, modified])
    assert marks == {
        date(2025, 11, 3): DayMark(
            "modified",
            (
                "08:00 skipped: blackout (sale)",
                "11:00 scheduled, moved by window from slot 2025-11-03T09:00",
                "20:00 modified, overrides max_recipients=10",
            ),
        )
    }


def test_grids_are_reusable_with_any_marks() -> None:
    """month_grids_text draws any day marks over any span (the diff command reuses it)."""
    lines = month_grids_text(date(2026, 2, 1), date(2026, 2, 28), {date(2026, 2, 14): DayMark("skipped", ("x",))})
    assert lines[0].strip() == "February 2026"
    assert lines[3] == " 8   9  10  11  12  13  14x"
    assert "x skipped" in legend_text()


def test_months_wrap_two_per_row() -> None:
    """A range over three months prints two grids side by side, then the third below."""
    automation = dataclasses.replace(daily_promo(), occurrences=[])
    plan = Plan(datetime(2025, 10, 1, 3, tzinfo=UTC), datetime(2025, 12, 31, 3, tzinfo=UTC), Inputs("a", "b"), [automation])
    text = rendered("calendar", plan)
    assert "        October 2025                  November 2025\n" in text
    assert "\n\n       December 2025\n" in text
    assert max(len(line) for line in text.splitlines() if not line.startswith(("flowspec plan", "Legend", "  "))) <= 80
