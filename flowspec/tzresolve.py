"""Step 2 of the compiler: a local wall-clock time in a zone → an instant (SPEC 1.3).

Zones come from the `tzdata` package, not the system's /usr/share/zoneinfo, because the plan
records the `tzdata` version (SPEC rule 1): the same files and versions must give the same plan on
every machine.

Each zone gets, per calendar year, a table of its *danger intervals* in local wall-clock time:
`[start, end)` spans that either do not exist (a gap: clocks jumped forward) or occur twice (a
fold: clocks went back). A time outside every interval has exactly one offset, found by one
bisect; that is the hot path of the compiler. Transitions are found by probing the zone's own
`ZoneInfo`, so the tables can never disagree with `zoneinfo` itself.
"""

from __future__ import annotations

import bisect
import importlib.metadata
import importlib.resources
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache, lru_cache
from typing import Literal

__all__ = [
    "GapPolicy",
    "OverlapPolicy",
    "Resolution",
    "Zone",
    "get_zone",
    "tzdata_version",
    "zone_names",
]

GapPolicy = Literal["shift_forward", "skip"]
OverlapPolicy = Literal["first", "last", "both"]

# Probe step for finding transitions: real zones never change offset twice within it.
_PROBE = timedelta(hours=6)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)


@cache
def _zoneinfo(name: str) -> tzinfo:
    try:
        ref = importlib.resources.files("tzdata").joinpath("zoneinfo", *name.split("/"))
        with ref.open("rb") as fh:
            return zoneinfo.ZoneInfo.from_file(fh, key=name)
    except (ModuleNotFoundError, FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError):
        # Without the tzdata package (or for a name it lacks) fall back to the system database;
        # tzdata_version() then reports which one was used.
        return zoneinfo.ZoneInfo(name)


def tzdata_version() -> str:
    """The version of the tz database the compiler uses (recorded in every plan): the `tzdata`
    package's, else the system database's (`# version 2025b` heading its tzdata.zi)."""
    try:
        return importlib.metadata.version("tzdata")
    except importlib.metadata.PackageNotFoundError:
        pass
    for root in zoneinfo.TZPATH:
        try:
            with open(f"{root}/tzdata.zi", encoding="utf-8") as fh:
                first = fh.readline()
        except OSError:
            continue
        if first.startswith("# version "):
            return "system " + first[len("# version ") :].strip()
    return "system"


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@dataclass(frozen=True, slots=True)
class Resolution:
    """One instant a local wall time resolves to."""

    at: datetime  # naive UTC
    local: datetime  # naive local wall time of `at` (differs from the slot after a gap shift)
    fold: int  # 1 for the second instance of a repeated wall time
    kind: Literal["plain", "gap", "fold"]
    gap: timedelta = timedelta(0)  # length of the gap the slot fell in


@dataclass(frozen=True, slots=True)
class _Danger:
    start: datetime  # naive local, inclusive
    end: datetime  # naive local, exclusive
    before: timedelta  # UTC offset before the transition
    after: timedelta  # UTC offset after it

    @property
    def is_gap(self) -> bool:
        return self.after > self.before


@dataclass(frozen=True, slots=True)
class _YearTable:
    bounds: list[datetime]  # flattened [start0, end0, start1, end1, ...]
    offsets: list[timedelta]  # offsets[k]: the offset between danger interval k-1 and k
    dangers: list[_Danger]


class Zone:
    """One IANA zone: resolution of local wall times with explicit DST policies."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tzinfo = _zoneinfo(name)
        self._years: dict[int, _YearTable] = {}
        self._days: dict[date, timedelta | None] = {}  # day_offset, asked once per slot day

    # ------------------------------------------------------------------ tables

    def _offset_at_utc(self, utc_naive: datetime) -> timedelta:
        local = utc_naive.replace(tzinfo=UTC).astimezone(self.tzinfo)
        off = local.utcoffset()
        assert off is not None
        return off

    def _transitions(self, lo: datetime, hi: datetime) -> list[tuple[datetime, timedelta, timedelta]]:
        """(UTC instant, offset before, offset after) of every offset change in [lo, hi)."""
        out: list[tuple[datetime, timedelta, timedelta]] = []
        t, prev = lo, self._offset_at_utc(lo)
        while t < hi:
            nxt = t + _PROBE
            cur = self._offset_at_utc(nxt)
            if cur != prev:
                a, b = t, nxt  # offset(a) == prev, offset(b) == cur: bisect to the second
                while b - a > _SECOND:
                    mid = a + (b - a) / 2
                    mid = mid.replace(microsecond=0)
                    if mid <= a:
                        break
                    if self._offset_at_utc(mid) == prev:
                        a = mid
                    else:
                        b = mid
                out.append((b, prev, cur))
                prev = cur
            t = nxt
        return out

    def table(self, year: int) -> _YearTable:
        table = self._years.get(year)
        if table is None:
            table = self._build(year)
            self._years[year] = table
        return table

    def _build(self, year: int) -> _YearTable:
        first = datetime(max(year, 2), 1, 1) - 3 * _DAY
        last = datetime(min(year, 9998) + 1, 1, 1) + 3 * _DAY
        dangers: list[_Danger] = []
        base = self._offset_at_utc(first)
        for at, before, after in self._transitions(first, last):
            wall_before, wall_after = at + before, at + after
            start, end = min(wall_before, wall_after), max(wall_before, wall_after)
            if dangers and start < dangers[-1].end:
                # Two transitions closer than their own size (never in modern data): merge them
                # into one interval so the table stays sorted; times in it resolve via zoneinfo.
                prev = dangers.pop()
                start, end, before = min(prev.start, start), max(prev.end, end), prev.before
            dangers.append(_Danger(start, end, before, after))
        bounds: list[datetime] = []
        offsets = [base]
        for d in dangers:
            bounds += (d.start, d.end)
            offsets.append(d.after)
        return _YearTable(bounds, offsets, dangers)

    # ------------------------------------------------------------------ queries

    def plain_offset(self, local: datetime) -> timedelta | None:
        """The UTC offset of a local time that occurs exactly once, else None."""
        t = self.table(local.year)
        i = bisect.bisect_right(t.bounds, local)
        return None if i & 1 else t.offsets[i >> 1]

    def day_offset(self, day: date) -> timedelta | None:
        """The offset of every wall time of `day` if no transition touches that day, else None."""
        try:
            return self._days[day]
        except KeyError:
            pass
        found = self._day_offset(day)
        if len(self._days) > 200_000:
            self._days.clear()
        self._days[day] = found
        return found

    def _day_offset(self, day: date) -> timedelta | None:
        t = self.table(day.year)
        start = datetime(day.year, day.month, day.day)
        i = bisect.bisect_right(t.bounds, start)
        if i & 1:
            return None
        # Each year's table reaches three days into the next, so Dec 31 needs no second look.
        if i < len(t.bounds) and t.bounds[i] < start + _DAY:
            return None
        return t.offsets[i >> 1]

    def has_transition_on(self, day: date) -> bool:
        return self.day_offset(day) is None

    def danger(self, local: datetime) -> _Danger | None:
        t = self.table(local.year)
        i = bisect.bisect_right(t.bounds, local)
        return t.dangers[i >> 1] if i & 1 else None

    def resolve(
        self, local: datetime, gap: GapPolicy = "shift_forward", overlap: OverlapPolicy = "first"
    ) -> list[Resolution]:
        """All instants a candidate slot runs at under the given policies (SPEC 1.3).

        A gap time resolves to the instant `shift_forward` gives (kind "gap"); whether it is
        then dropped (`skip`) is the caller's decision, because a skipped slot is still listed at
        that instant. An overlap time gives one Resolution, or two for `both`.
        """
        d = self.danger(local)
        if d is None:
            off = self.plain_offset(local)
            assert off is not None
            return [Resolution(local - off, local, 0, "plain")]
        if d.is_gap:
            # PEP 495: a nonexistent time with fold=0 maps with the offset before the jump,
            # which is exactly "moved forward by the length of the gap".
            at = local - d.before
            return [Resolution(at, at + d.after, 0, "gap", d.after - d.before)]
        first = Resolution(local - d.before, local, 0, "fold")
        second = Resolution(local - d.after, local, 1, "fold")
        if overlap == "first":
            return [first]
        if overlap == "last":
            return [second]
        return [first, second]

    def resolve_derived(self, local: datetime) -> Resolution:
        """A local time the compiler derived (window opening, next_allowed day, reschedule
        target): a gap shifts forward, an overlap takes the first instance (SPEC 1.3)."""
        return self.resolve(local, "shift_forward", "first")[0]

    def to_local(self, utc_naive: datetime) -> tuple[datetime, int]:
        """Naive local wall time of a UTC instant, and its fold (1: second instance)."""
        aware = utc_naive.replace(tzinfo=UTC).astimezone(self.tzinfo)
        return aware.replace(tzinfo=None), aware.fold

    def aware(self, local: datetime, fold: int = 0) -> datetime:
        """An aware local datetime in this zone (what the plan's `local` field holds)."""
        return local.replace(tzinfo=self.tzinfo, fold=fold)

    def transition_days(self, year: int) -> list[date]:
        """Local dates on which a transition happens in `year` (for tests and lookback)."""
        return sorted({d.start.date() for d in self.table(year).dangers if d.start.year == year})


@cache
def get_zone(name: str) -> Zone:
    """The Zone for an IANA name (cached: tables are built once per zone and year).

    Raises KeyError for a name that is not a zone (validate reports those as FS104).
    """
    if name not in zone_names():
        raise KeyError(name)
    return Zone(name)


def utc_aware(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC)
