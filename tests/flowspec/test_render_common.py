"""Hand-built plans shared by the renderer tests, and the renderers' shared helpers."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from flowspec.plan import AutomationPlan, Inputs, Occurrence, Plan
from flowspec.render import FORMATS, RenderOptions, details, local_label, render

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NEW_YORK = ZoneInfo("America/New_York")
RANGE_FROM = datetime(2025, 10, 28, tzinfo=UTC)
RANGE_TO = datetime(2025, 11, 27, tzinfo=UTC)


def occ(
    key: str,
    local: datetime,
    status: str = "scheduled",
    **extra: object,
) -> Occurrence:
    return Occurrence(key=key, status=status, at=local.astimezone(UTC), local=local, **extra)  # type: ignore[arg-type]


def daily_promo() -> AutomationPlan:
    """Sao Paulo, 09:00 daily: every kind of occurrence the renderers must show."""

    def sp(day: int, hour: int = 9, minute: int = 0, month: int = 11) -> datetime:
        return datetime(2025, month, day, hour, minute, tzinfo=SAO_PAULO)

    key = "acme/daily-promo/2025-{:02d}-{:02d}T09:00".format
    occurrences = [
        occ(key(11, 3), sp(3)),
        occ(key(11, 4), sp(4, 10, 30), moved_by="window", moved_from=sp(4).astimezone(UTC)),
        occ(key(11, 8), sp(8), "skipped", reason="weekend"),
        occ(
            key(11, 20),
            sp(20),
            "skipped",
            reason="holiday",
            detail="Dia Nacional de Zumbi e da Consciência Negra; feriado, nacional",
        ),
        occ(key(11, 21), sp(24), moved_by="next_allowed", moved_from=sp(21).astimezone(UTC)),
        occ(key(11, 25), sp(26, 14), moved_by="reschedule", moved_from=sp(25).astimezone(UTC)),
        occ(key(11, 12), sp(12), overrides={"max_per_second": 5, "template": "promo|big"}),
        occ(key(11, 13), sp(13), "skipped", reason="exception", detail="maintenance\nwindow"),
        occ(key(10, 30), sp(30, month=10)),
    ]
    return AutomationPlan("acme", "daily-promo", "automations/daily-promo.yaml", "America/Sao_Paulo", occurrences)


def dst_report() -> AutomationPlan:
    """New York 01:30 around the fall-back day: a +fold key and DST annotations."""
    first = datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK)
    second = datetime(2025, 11, 2, 1, 30, fold=1, tzinfo=NEW_YORK)
    return AutomationPlan(
        "acme",
        "dst-report",
        "automations/dst.yaml",
        "America/New_York",
        [
            occ("acme/dst-report/2025-11-02T01:30", first, dst="overlap_both"),
            occ("acme/dst-report/2025-11-02T01:30+fold", second, dst="overlap_both"),
            occ("acme/dst-report/2025-11-03T01:30", datetime(2025, 11, 3, 1, 30, tzinfo=NEW_YORK)),
        ],
    )


def paused_digest() -> AutomationPlan:
    local = datetime(2025, 11, 10, 8, 0, tzinfo=ZoneInfo("Europe/Lisbon"))
    return AutomationPlan(
        "beta",
        "weekly-digest",
        "automations/weekly digest.yaml",
        "Europe/Lisbon",
        [occ("beta/weekly-digest/2025-11-10T08:00", local, "paused")],
    )


def sample_plan(*, lazy: bool = False) -> Plan:
    automations = [daily_promo(), dst_report(), paused_digest()]
    return Plan(
        RANGE_FROM,
        RANGE_TO,
        Inputs(tzdata="2025b", holidays="0.83"),
        iter(automations) if lazy else automations,
    )


def rendered(fmt: str, plan: Plan | None = None, **options: bool) -> str:
    out = io.StringIO()
    render(plan or sample_plan(), fmt, out, RenderOptions(**options))  # type: ignore[arg-type]
    return out.getvalue()


# --------------------------------------------------------------------------- shared helpers


def test_local_label_has_weekday_time_and_offset() -> None:
    """The local column names the weekday and the zone's offset at that instant."""
    assert local_label(datetime(2025, 11, 20, 9, 0, tzinfo=SAO_PAULO)) == "Thu 2025-11-20 09:00 -03:00"
    assert local_label(datetime(2025, 11, 2, 1, 30, fold=1, tzinfo=NEW_YORK)) == "Sun 2025-11-02 01:30 -05:00"


def test_details_use_the_json_field_names() -> None:
    """Details are `field=value` tokens named like the JSON contract, values quoted when free text."""
    o = occ(
        "acme/a/2025-11-20T09:00",
        datetime(2025, 11, 21, 9, 0, tzinfo=SAO_PAULO),
        "skipped",
        reason="holiday",
        detail='Natal "25"',
        moved_by="next_allowed",
        moved_from=datetime(2025, 11, 20, 12, 0, tzinfo=UTC),
        dst="gap_shifted",
        overrides={"b": 1, "a": "x y"},
    )
    assert details(o) == [
        "reason=holiday",
        'detail="Natal \\"25\\""',
        "moved_by=next_allowed",
        "moved_from=2025-11-20T12:00:00Z",
        "dst=gap_shifted",
        'overrides={"a":"x y","b":1}',
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_deterministic_and_streams_a_lazy_plan(fmt: str) -> None:
    """Each format renders a lazy plan exactly like a materialised one, and twice the same."""
    once = rendered(fmt, sample_plan(lazy=True))
    assert once == rendered(fmt, sample_plan()) == rendered(fmt, sample_plan(lazy=True))
    assert once


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_empty_plan(fmt: str) -> None:
    """A plan with no automations still renders a complete, valid document."""
    plan = Plan(RANGE_FROM, RANGE_TO, Inputs("2025b", "0.83"), [])
    assert "2025-10-28" in rendered(fmt, plan)


def test_unknown_format_is_rejected() -> None:
    """Asking for a format that does not exist fails loudly instead of rendering nothing."""
    with pytest.raises(ValueError, match="unknown plan format"):
        render(sample_plan(), "yaml", io.StringIO())  # type: ignore[arg-type]
