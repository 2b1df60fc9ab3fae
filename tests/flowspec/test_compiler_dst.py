"""DST gap and overlap policies (SPEC 1.3), hand-checked in every zone the compiler is tested in.

Transition dates and offsets below are written by hand from the zones' rules, not computed:
- America/New_York: EST -05:00 / EDT -04:00; 2nd Sunday of March 02:00→03:00, 1st Sunday of
  November 02:00→01:00 (2025-03-09, 2025-11-02, 2026-03-08, 2026-11-01).
- Europe/Berlin: CET +01:00 / CEST +02:00; last Sunday of March 02:00→03:00 and of October
  03:00→02:00 (2025-03-30, 2025-10-26, 2026-03-29, 2026-10-25).
- Australia/Lord_Howe: +10:30 / +11:00, a 30-minute shift; 1st Sunday of October 02:00→02:30,
  1st Sunday of April 02:00→01:30 (2025-10-05, 2025-04-06, 2026-10-04, 2026-04-05).
- Pacific/Chatham: +12:45 / +13:45; last Sunday of September 02:45→03:45, 1st Sunday of April
  03:45→02:45 (2025-09-28, 2025-04-06, 2026-09-27, 2026-04-05).
- America/Sao_Paulo: no DST since 2019; before, its changes were at midnight: 00:00→01:00 on
  2017-10-15 and 2018-11-04, 00:00→23:00 on 2018-02-18 and 2019-02-17.
- Asia/Kolkata (+05:30) and UTC: no transitions at all.

Expected instants follow SPEC 1.3: a gap time shifted forward runs at `slot - offset_before`
(which reads `slot + gap` on the new clock); an overlap time's first instance is
`slot - offset_before`, its second `slot - offset_after`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from test_compiler_support import codes, occ, occurrences


def _offset(hours: float) -> str:
    sign = "-" if hours < 0 else "+"
    minutes = round(abs(hours) * 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _utc(slot: datetime, offset_hours: float) -> str:
    return (slot - timedelta(hours=offset_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(wall: datetime, offset_hours: float) -> str:
    return wall.strftime("%Y-%m-%dT%H:%M:%S") + _offset(offset_hours)


# (zone, slot in the gap, offset before, offset after)
GAPS = [
    ("America/New_York", "2025-03-09T02:30", -5, -4),
    ("America/New_York", "2026-03-08T02:30", -5, -4),
    ("Europe/Berlin", "2025-03-30T02:30", 1, 2),
    ("Europe/Berlin", "2026-03-29T02:30", 1, 2),
    ("Australia/Lord_Howe", "2025-10-05T02:15", 10.5, 11),
    ("Australia/Lord_Howe", "2026-10-04T02:15", 10.5, 11),
    ("Pacific/Chatham", "2025-09-28T03:00", 12.75, 13.75),
    ("Pacific/Chatham", "2026-09-27T03:00", 12.75, 13.75),
    ("America/Sao_Paulo", "2017-10-15T00:30", -3, -2),
    ("America/Sao_Paulo", "2018-11-04T00:30", -3, -2),
]
# (zone, slot in the repeated hour, offset of the first instance, of the second)
FOLDS = [
    ("America/New_York", "2025-11-02T01:30", -4, -5),
    ("America/New_York", "2026-11-01T01:30", -4, -5),
    ("Europe/Berlin", "2025-10-26T02:30", 2, 1),
    ("Europe/Berlin", "2026-10-25T02:30", 2, 1),
    ("Australia/Lord_Howe", "2025-04-06T01:45", 11, 10.5),
    ("Australia/Lord_Howe", "2026-04-05T01:45", 11, 10.5),
    ("Pacific/Chatham", "2025-04-06T03:00", 13.75, 12.75),
    ("Pacific/Chatham", "2026-04-05T03:00", 13.75, 12.75),
    ("America/Sao_Paulo", "2018-02-17T23:30", -2, -3),
    ("America/Sao_Paulo", "2019-02-16T23:30", -2, -3),
]


def _daily(zone: str, slot: datetime, extra: str = "") -> str:
    return (
        f"recurrence_type: daily\nstart_date: {slot.date().isoformat()}\n"
        f'start_time: "{slot:%H:%M}"\nexecution_timezone: {zone}\n{extra}'
    )


def _day_of(zone: str, slot: datetime, extra: str) -> list[dict[str, Any]]:
    lo = (slot - timedelta(days=1)).strftime("%Y-%m-%d")
    hi = (slot + timedelta(days=2)).strftime("%Y-%m-%d")
    day = slot.strftime("%Y-%m-%d")
    return [o for o in occurrences(_daily(zone, slot, extra), lo, hi) if o["key"][7:17] == day]


@pytest.mark.parametrize(("zone", "text", "before", "after"), GAPS)
def test_gap_shift_forward_moves_by_the_gap_length(zone: str, text: str, before: float, after: float) -> None:
    """dst_gap shift_forward: a missing time runs the gap's length later (dst gap_shifted)."""
    slot = datetime.fromisoformat(text)
    wall = slot + timedelta(hours=after - before)  # 02:30 → 03:30; Lord Howe 02:15 → 02:45
    assert _day_of(zone, slot, "dst_gap: shift_forward") == [
        occ(f"{text}", _utc(slot, before), _local(wall, after), dst="gap_shifted")
    ]


@pytest.mark.parametrize(("zone", "text", "before", "after"), GAPS)
def test_gap_skip_lists_the_slot_at_the_shifted_instant(zone: str, text: str, before: float, after: float) -> None:
    """dst_gap skip: skipped with reason dst_gap, at the instant shift_forward would give."""
    slot = datetime.fromisoformat(text)
    wall = slot + timedelta(hours=after - before)
    (got,) = _day_of(zone, slot, "dst_gap: skip")
    got["detail"] = None  # a human explanation; its content is not the contract
    assert got == occ(text, _utc(slot, before), _local(wall, after), "skipped", reason="dst_gap", dst="gap_skipped")


@pytest.mark.parametrize(("zone", "text", "first", "second"), FOLDS)
def test_overlap_first(zone: str, text: str, first: float, second: float) -> None:
    """dst_overlap first (the default): once, at the first instance."""
    slot = datetime.fromisoformat(text)
    assert _day_of(zone, slot, "") == [occ(text, _utc(slot, first), _local(slot, first), dst="overlap_first")]


@pytest.mark.parametrize(("zone", "text", "first", "second"), FOLDS)
def test_overlap_last(zone: str, text: str, first: float, second: float) -> None:
    """dst_overlap last: once, at the second instance, under the plain key."""
    slot = datetime.fromisoformat(text)
    assert _day_of(zone, slot, "dst_overlap: last") == [
        occ(text, _utc(slot, second), _local(slot, second), dst="overlap_last")
    ]


@pytest.mark.parametrize(("zone", "text", "first", "second"), FOLDS)
def test_overlap_both(zone: str, text: str, first: float, second: float) -> None:
    """dst_overlap both: twice; the second instance's key ends in +fold."""
    slot = datetime.fromisoformat(text)
    assert _day_of(zone, slot, "dst_overlap: both") == [
        occ(text, _utc(slot, first), _local(slot, first), dst="overlap_both"),
        occ(text + "+fold", _utc(slot, second), _local(slot, second), dst="overlap_both"),
    ]


@pytest.mark.parametrize(("zone", "offset"), [("Asia/Kolkata", 5.5), ("UTC", 0)])
@pytest.mark.parametrize("text", ["2025-03-09T02:30", "2025-10-26T02:30", "2026-03-29T02:30", "2026-11-01T01:30"])
def test_zones_without_dst_resolve_every_time_plainly(zone: str, offset: float, text: str) -> None:
    """Kolkata and UTC have no transitions: other zones' transition times are plain there."""
    slot = datetime.fromisoformat(text)
    for policy in ("dst_gap: skip\ndst_overlap: both", ""):
        assert _day_of(zone, slot, policy) == [occ(text, _utc(slot, offset), _local(slot, offset))]


def test_days_after_a_transition_are_plain() -> None:
    """The day after New York's spring-forward, 02:30 exists again (dst null, EDT)."""
    got = occurrences(_daily("America/New_York", datetime(2026, 3, 8, 2, 30)), "2026-03-09", "2026-03-10")
    assert got == [occ("2026-03-09T02:30", "2026-03-09T06:30:00Z", "2026-03-09T02:30:00-04:00")]


def test_window_is_checked_after_the_gap_shift() -> None:
    """02:30 shifted to 03:30 is inside a 03:00–18:00 window: not deferred (SPEC 3 step 3)."""
    schedule = _daily("America/New_York", datetime(2026, 3, 8, 2, 30), 'execution_window_start: "03:00"\nexecution_window_end: "18:00"')
    got = occurrences(schedule, "2026-03-08", "2026-03-09")
    assert got == [occ("2026-03-08T02:30", "2026-03-08T07:30:00Z", "2026-03-08T03:30:00-04:00", dst="gap_shifted")]


def test_window_opening_in_a_gap_is_shifted_forward() -> None:
    """A window opening at 02:15 on spring-forward day runs at 03:15 (moved, dst gap_shifted)."""
    schedule = _daily(
        "America/New_York", datetime(2026, 3, 8, 1, 0), 'execution_window_start: "02:15"\nexecution_window_end: "18:00"'
    )
    got = occurrences(schedule, "2026-03-08", "2026-03-09")
    assert got == [
        occ(
            "2026-03-08T01:00", "2026-03-08T07:15:00Z", "2026-03-08T03:15:00-04:00",
            moved_from="2026-03-08T06:00:00Z", moved_by="window", dst="gap_shifted",
        )
    ]


def test_deferral_out_of_the_gap_loses_the_slot_dst() -> None:
    """dst describes the final local time: a gap slot deferred to a plain opening has dst null."""
    schedule = _daily(
        "America/New_York", datetime(2026, 3, 8, 2, 30), 'execution_window_start: "09:00"\nexecution_window_end: "18:00"'
    )
    (got,) = occurrences(schedule, "2026-03-08", "2026-03-09")
    assert (got["at"], got["moved_from"], got["moved_by"], got["dst"]) == (
        "2026-03-08T13:00:00Z", "2026-03-08T07:30:00Z", "window", None,
    )


def test_next_allowed_into_a_gap_shifts_and_merges_the_smallest_key() -> None:
    """Saturday 02:30 moved to gap-day Sunday shifts to 03:30, as does Sunday's own slot: both
    were moved (a DST shift counts), so the smaller key stays (SPEC 3 merging)."""
    schedule = _daily(
        "America/New_York", datetime(2026, 3, 7, 2, 30), "skip_weekends: true\nweekend_days: [SAT]\non_blocked_day: next_allowed"
    )
    got = occurrences(schedule, "2026-03-07", "2026-03-09")
    assert got == [
        occ(
            "2026-03-07T02:30", "2026-03-08T07:30:00Z", "2026-03-08T03:30:00-04:00",
            moved_from="2026-03-07T07:30:00Z", moved_by="next_allowed", dst="gap_shifted",
        ),
        occ(
            "2026-03-08T02:30", "2026-03-08T07:30:00Z", "2026-03-08T03:30:00-04:00", "skipped",
            reason="merged", detail="acme/a/2026-03-07T02:30", dst="gap_shifted",
        ),
    ]


def test_gap_shift_collision_keeps_the_unshifted_slot() -> None:
    """times 02:30 and 03:30 on spring-forward day: 02:30 shifts onto 03:30 and is merged."""
    schedule = (
        'recurrence_type: daily\nrecurrence_config: {times: ["02:30", "03:30"]}\nstart_date: 2026-03-08\n'
        "end_date: 2026-03-08\nexecution_timezone: America/New_York"
    )
    got = occurrences(schedule, "2026-03-08", "2026-03-09")
    assert [(o["key"][7:], o["status"], o["reason"], o["dst"]) for o in got] == [
        ("2026-03-08T02:30", "skipped", "merged", "gap_shifted"),
        ("2026-03-08T03:30", "scheduled", None, None),
    ]


def test_reschedule_target_in_a_gap_or_overlap_follows_the_derived_rule() -> None:
    """A rescheduled_to without offset shifts out of a gap and takes an overlap's first instance."""
    base = _daily("America/New_York", datetime(2026, 3, 1, 12, 0))
    gap = '- {exception_type: reschedule, start_date: "2026-03-02T12:00", rescheduled_to: "2026-03-08T02:10"}'
    (moved,) = [o for o in occurrences(base, "2026-03-08", "2026-03-09", gap) if o["moved_by"]]
    assert (moved["at"], moved["local"], moved["dst"]) == ("2026-03-08T07:10:00Z", "2026-03-08T03:10:00-04:00", "gap_shifted")
    fold = '- {exception_type: reschedule, start_date: "2026-03-02T12:00", rescheduled_to: "2026-11-01T01:10"}'
    (moved,) = [o for o in occurrences(base, "2026-11-01", "2026-11-02", fold) if o["moved_by"]]
    assert (moved["at"], moved["local"], moved["dst"]) == ("2026-11-01T05:10:00Z", "2026-11-01T01:10:00-04:00", "overlap_first")


def test_exception_local_time_in_an_overlap_means_the_first_instance() -> None:
    """A skip at local 01:30 on fall-back day matches the first instance only."""
    schedule = _daily("America/New_York", datetime(2025, 11, 2, 1, 30), "dst_overlap: both")
    exc = '- {exception_type: skip, start_date: "2025-11-02T01:30"}'
    got = occurrences(schedule, "2025-11-02", "2025-11-03", exc)
    assert [(o["key"][7:], o["status"]) for o in got] == [
        ("2025-11-02T01:30", "skipped"), ("2025-11-02T01:30+fold", "scheduled"),
    ]
    # With an explicit offset the second instance can be named.
    exc = '- {exception_type: skip, start_date: "2025-11-02T01:30:00-05:00"}'
    got = occurrences(schedule, "2025-11-02", "2025-11-03", exc)
    assert [o["status"] for o in got] == ["scheduled", "skipped"]


def test_custom_absolute_time_in_the_repeated_hour_gets_the_fold_suffix() -> None:
    """06:30Z on NY fall-back day is the second 01:30: key +fold, no DST rule applied."""
    schedule = (
        'recurrence_type: custom\nrecurrence_config: {dates: ["2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z"]}\n'
        "execution_timezone: America/New_York"
    )
    assert occurrences(schedule, "2025-11-02", "2025-11-03") == [
        occ("2025-11-02T01:30", "2025-11-02T05:30:00Z", "2025-11-02T01:30:00-04:00"),
        occ("2025-11-02T01:30+fold", "2025-11-02T06:30:00Z", "2025-11-02T01:30:00-05:00"),
    ]
    assert codes(schedule) == []


def test_cron_every_quarter_hour_over_fall_back_with_both() -> None:
    """A cron over New York's repeated hour with both: four slots twice, keys unique."""
    schedule = (
        'recurrence_type: cron\nrecurrence_config: {expression: "*/15 1 * * *"}\n'
        "execution_timezone: America/New_York\ndst_overlap: both"
    )
    got = occurrences(schedule, "2025-11-02T05:00:00Z", "2025-11-02T07:00:00Z")
    assert [(o["key"][18:], o["at"][11:16]) for o in got] == [
        ("01:00", "05:00"), ("01:15", "05:15"), ("01:30", "05:30"), ("01:45", "05:45"),
        ("01:00+fold", "06:00"), ("01:15+fold", "06:15"), ("01:30+fold", "06:30"), ("01:45+fold", "06:45"),
    ]
