"""flowspec.tzresolve: local wall time → instant with explicit DST policies (SPEC 1.3).

The oracle is zoneinfo itself (PEP 495): a wall time with fold=0 maps a gap time with the offset
before the jump (= shift_forward) and a repeated time to its first instance; fold=1 gives the
second instance. The table-driven resolver must agree with it everywhere.
"""

from __future__ import annotations

import importlib.metadata
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowspec.tzresolve import get_zone, tzdata_version

ZONES = [
    "America/Sao_Paulo",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "UTC",
]


def _utc(local: datetime, zone: str, fold: int) -> datetime:
    return local.replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC).replace(tzinfo=None)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    local=st.datetimes(datetime(1990, 1, 1), datetime(2060, 12, 31)).map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_resolution_agrees_with_zoneinfo(zone: str, local: datetime) -> None:
    """shift_forward/first equals fold=0, last equals fold=1, for any wall time."""
    z = get_zone(zone)
    (first,) = z.resolve(local, "shift_forward", "first")
    assert first.at == _utc(local, zone, 0)
    (last,) = z.resolve(local, "shift_forward", "last")
    assert last.at == _utc(local, zone, 1 if first.kind == "fold" else 0)
    assert z.to_local(first.at)[0] == first.local


@pytest.mark.parametrize(
    ("zone", "gap_slot", "gap"),
    [
        ("America/New_York", datetime(2026, 3, 8, 2, 30), timedelta(hours=1)),
        ("Australia/Lord_Howe", datetime(2025, 10, 5, 2, 15), timedelta(minutes=30)),
        ("Pacific/Chatham", datetime(2025, 9, 28, 3, 0), timedelta(hours=1)),
    ],
)
def test_gap_reports_its_length_and_the_shifted_wall_time(zone: str, gap_slot: datetime, gap: timedelta) -> None:
    """A gap time resolves once, `gap` later on the wall clock (Lord Howe: 30 minutes)."""
    (r,) = get_zone(zone).resolve(gap_slot, "skip", "both")
    assert (r.kind, r.gap, r.local) == ("gap", gap, gap_slot + gap)


def test_overlap_both_gives_two_instants_in_order() -> None:
    """New York's 01:30 on 2025-11-02 is 05:30Z (EDT) then 06:30Z (EST)."""
    rs = get_zone("America/New_York").resolve(datetime(2025, 11, 2, 1, 30), "shift_forward", "both")
    assert [(r.at, r.fold) for r in rs] == [(datetime(2025, 11, 2, 5, 30), 0), (datetime(2025, 11, 2, 6, 30), 1)]


@pytest.mark.parametrize("zone", ZONES)
def test_day_offset_is_none_exactly_on_transition_days(zone: str) -> None:
    """day_offset gives the offset of a whole day, or None when the offset changes that day."""
    z, zi = get_zone(zone), ZoneInfo(zone)
    d = date(2025, 1, 1)
    while d < date(2027, 1, 1):
        start = datetime.combine(d, time(0), tzinfo=zi).utcoffset()
        end = datetime.combine(d + timedelta(days=1), time(0), tzinfo=zi).utcoffset()
        expected = start if start == end else None
        assert z.day_offset(d) == expected, d
        d += timedelta(days=1)


def test_transition_days_of_2026() -> None:
    """New York changes on 2026-03-08 and 2026-11-01; Kolkata never."""
    assert get_zone("America/New_York").transition_days(2026) == [date(2026, 3, 8), date(2026, 11, 1)]
    assert get_zone("Asia/Kolkata").transition_days(2026) == []


def test_zones_come_from_the_tzdata_package() -> None:
    """The recorded tzdata version is the package's, and unknown names raise KeyError."""
    assert tzdata_version() == importlib.metadata.version("tzdata")
    assert str(get_zone("Europe/Berlin").tzinfo) == "Europe/Berlin"
    with pytest.raises(KeyError):
        get_zone("Mars/Olympus_Mons")
    with pytest.raises(KeyError):
        get_zone("../../etc/passwd")
