"""Day rules of step 4 (SPEC 3): blackout dates and ranges, weekends, holidays.

Holidays come from the `holidays` package with observed days included (SPEC 1.3). Its names are
asked for in the country's own default language explicitly, because otherwise the package picks
the language from the process locale (LANG), and the plan would depend on the machine.

The holiday country, when not given, is inferred from the IANA `zone.tab` of the `tzdata`
package (one country per zone), following tzdata's links so that `Asia/Calcutta` finds India.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any, Literal

__all__ = [
    "BlockReason",
    "DayRules",
    "HolidayCalendar",
    "HolidayError",
    "Blackout",
    "country_for_zone",
    "holidays_version",
    "supported_countries",
    "WEEKDAY_NUMBERS",
]

BlockReason = Literal["blackout", "weekend", "holiday"]
WEEKDAY_NUMBERS = {"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4, "SAT": 5, "SUN": 6}
WEEKDAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


# --------------------------------------------------------------------------- zone → country


def _tzdata_text(name: str) -> str:
    try:
        return importlib.resources.files("tzdata").joinpath("zoneinfo", name).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return ""


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    countries: dict[str, str] = {}
    for line in _tzdata_text("zone.tab").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            countries.setdefault(parts[2], parts[0])
    return countries


@lru_cache(maxsize=1)
def _zone_links() -> dict[str, str]:
    links: dict[str, str] = {}
    for line in _tzdata_text("tzdata.zi").splitlines():
        if line.startswith("L "):
            parts = line.split()
            if len(parts) == 3:
                links[parts[2]] = parts[1]
    return links


def country_for_zone(zone: str) -> str | None:
    """ISO 3166-1 alpha-2 country of an IANA zone per zone.tab, or None (UTC, Etc/*, oceans)."""
    countries, links = _zone_countries(), _zone_links()
    seen: set[str] = set()
    name: str | None = zone
    while name is not None and name not in seen:
        if name in countries:
            return countries[name]
        seen.add(name)
        name = links.get(name)
    return None


# --------------------------------------------------------------------------- holidays


class HolidayError(ValueError):
    """Unknown country or subdivision; `field` says which, `suggestions` what exists."""

    def __init__(self, message: str, field: Literal["country", "subdivision"], candidates: list[str]):
        super().__init__(message)
        self.field = field
        self.candidates = candidates


def holidays_version() -> str:
    import holidays

    return str(holidays.__version__)


@lru_cache(maxsize=1)
def supported_countries() -> dict[str, list[str]]:
    import holidays

    return {k: list(v) for k, v in holidays.list_supported_countries(include_aliases=True).items()}


def check_country(country: str, subdivision: str | None) -> None:
    """Raise HolidayError when the `holidays` package does not know the country or subdivision."""
    supported = supported_countries()
    if country not in supported:
        codes = sorted(c for c in supported if len(c) == 2)
        raise HolidayError(f"unknown holiday country '{country}'", "country", codes)
    if subdivision is not None and subdivision not in _subdivisions(country):
        raise HolidayError(
            f"unknown holiday subdivision '{subdivision}' for {country}",
            "subdivision",
            sorted(_subdivisions(country)),
        )


@cache
def _subdivisions(country: str) -> frozenset[str]:
    import holidays

    cls: Any = holidays.country_holidays(country).__class__
    subs = set(getattr(cls, "subdivisions", ()) or ())
    subs |= set(getattr(cls, "subdivisions_aliases", {}) or {})
    return frozenset(subs)


@lru_cache(maxsize=512)
def _holiday_year(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    import holidays

    probe: Any = holidays.country_holidays(country)
    language = getattr(probe, "default_language", None)
    table: Any = holidays.country_holidays(
        country, subdiv=subdivision, years=year, observed=True, language=language
    )
    return {d: "; ".join(table.get_list(d)) for d in sorted(table.keys())}


@dataclass(frozen=True)
class HolidayCalendar:
    """Public holidays of one country (and subdivision), plus the automation's extra dates."""

    country: str | None
    subdivision: str | None = None
    extra: frozenset[date] = frozenset()

    def name(self, day: date) -> str | None:
        if self.country is not None:
            found = _holiday_year(self.country, self.subdivision, day.year).get(day)
            if found is not None:
                return found
        if day in self.extra:
            return "extra holiday"
        return None

    def in_year(self, year: int) -> dict[date, str]:
        out = dict(_holiday_year(self.country, self.subdivision, year)) if self.country else {}
        for d in self.extra:
            if d.year == year:
                out.setdefault(d, "extra holiday")
        return out


# --------------------------------------------------------------------------- day rules


@dataclass(frozen=True, slots=True)
class Blackout:
    """A blackout range as instants: [start, end) in naive UTC; `reason` for the plan."""

    start: datetime
    end: datetime
    first_day: date  # local dates it touches, for the cheap whole-day test
    last_day: date
    reason: str | None = None


@dataclass
class DayRules:
    """Which local days (and instants) step 4 blocks, and why."""

    blackout_dates: dict[date, str | None] = field(default_factory=dict)
    blackouts: list[Blackout] = field(default_factory=list)
    weekend: frozenset[int] = frozenset()  # weekday numbers blocked (empty: skip_weekends off)
    holidays: HolidayCalendar | None = None  # None: skip_holidays off
    _by_day: dict[date, tuple[BlockReason, str | None] | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def empty(self) -> bool:
        return not (self.blackout_dates or self.blackouts or self.weekend or self.holidays)

    def block(self, day: date, at: datetime) -> tuple[BlockReason, str | None] | None:
        """The first rule blocking an occurrence on local `day` at naive-UTC `at`, in the order
        blackout, weekend, holiday (SPEC 3); None when the day is allowed."""
        if self.blackouts:
            if day in self.blackout_dates:
                return "blackout", self.blackout_dates[day]
            for b in self.blackouts:
                if b.start <= at < b.end:
                    return "blackout", b.reason
        return self.block_day(day)

    def block_day(self, day: date) -> tuple[BlockReason, str | None] | None:
        """`block` for the rules that depend on the date alone (all but blackout ranges)."""
        try:
            return self._by_day[day]
        except KeyError:
            pass
        found = self._block_day(day)
        if len(self._by_day) > 20_000:
            self._by_day.clear()
        self._by_day[day] = found
        return found

    def _block_day(self, day: date) -> tuple[BlockReason, str | None] | None:
        if day in self.blackout_dates:
            return "blackout", self.blackout_dates[day]
        if day.weekday() in self.weekend:
            return "weekend", WEEKDAY_NAMES[day.weekday()]
        if self.holidays is not None:
            name = self.holidays.name(day)
            if name is not None:
                return "holiday", name
        return None

    def day_open(self, day: date) -> bool:
        """Whether no rule blocks any time of `day` (blackout ranges with times included)."""
        if self.block_day(day) is not None:
            return False
        return not self.range_touches(day)

    def range_touches(self, day: date) -> bool:
        """Whether a blackout range (which may block only some times) touches local `day`."""
        return any(b.first_day <= day <= b.last_day for b in self.blackouts)

    def may_block_day(self, day: date) -> bool:
        """Whether any rule could block some time of `day` (conservative: ranges by date)."""
        if day in self.blackout_dates or day.weekday() in self.weekend:
            return True
        if self.range_touches(day):
            return True
        return self.holidays is not None and self.holidays.name(day) is not None

    def blocked_dates(self, days: Iterable[date]) -> list[date]:
        return [d for d in days if self.may_block_day(d)]
