"""Dates, datetimes, times of day and durations exactly as users write them in YAML.

The loader keeps them as strings (YAML 1.2 core schema); these functions give them meaning
(SPEC 1.3). A value with an explicit offset or `Z` is an absolute instant; anything else is local
wall-clock time in the automation's `execution_timezone`, resolved later by the compiler.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

_WHEN = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)"
    r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?)?$"
)
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")
_DURATION = re.compile(r"^(?:(\d+)(ms|s|m|h|d|w))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# The schema patterns avoid named groups: editors evaluate them as ECMA-262 regexes.
WHEN_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})?)?$"
TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"
DURATION_PATTERN = r"^(\d+(ms|s|m|h|d|w))+$"


@dataclass(frozen=True, slots=True)
class When:
    """A date or datetime as written: local unless `offset` is set."""

    date: _dt.date
    time: _dt.time | None  # None: a date alone
    offset: timezone | None  # explicit offset or Z: an absolute instant

    @property
    def is_date(self) -> bool:
        return self.time is None

    def naive(self, default_time: _dt.time = _dt.time(0)) -> datetime:
        return datetime.combine(self.date, self.time or default_time)


def parse_when(text: str) -> When:
    """Parse `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.f]]` with optional `Z`/`±HH:MM`."""
    m = _WHEN.match(text.strip())
    if not m:
        raise ValueError(
            f"'{text}' is not a date or datetime; write YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM]"
        )
    d = date.fromisoformat(m["date"])
    if m["time"] is None:
        return When(d, None, None)
    t = time.fromisoformat(m["time"])
    tz = m["tz"]
    offset: timezone | None = None
    if tz:
        if tz in ("Z", "z"):
            offset = _dt.UTC
        else:
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 23 or minutes > 59:
                raise ValueError(f"'{text}' has an invalid UTC offset '{tz}'")
            offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return When(d, t, offset)


def parse_date(text: str) -> date:
    w = parse_when(text)
    if not w.is_date:
        raise ValueError(f"'{text}' must be a date alone (YYYY-MM-DD)")
    return w.date


def parse_time_of_day(text: str) -> time:
    """Parse `HH:MM` or `HH:MM:SS` (24-hour)."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not a time of day; write HH:MM (24-hour), e.g. \"09:00\"")
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    if h > 23 or mi > 59 or s > 59:
        raise ValueError(f"'{text}' is not a valid time of day (00:00 to 23:59)")
    return time(h, mi, s)


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `1h`, `1h30m`, `2d`, `500ms`."""
    s = text.strip()
    if not _DURATION.match(s):
        raise ValueError(f"'{text}' is not a duration; write e.g. 30s, 5m, 1h, 1h30m, 2d")
    total = timedelta()
    for number, unit in _DURATION_PART.findall(s):
        total += int(number) * _UNIT[unit]
    return total


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def parse_cli_instant(text: str) -> datetime:
    """`--from`/`--to`/`--now`: ISO date or datetime; without an offset it is UTC (SPEC 3)."""
    w = parse_when(text)
    naive = w.naive()
    return naive.replace(tzinfo=w.offset or _dt.UTC).astimezone(_dt.UTC)
