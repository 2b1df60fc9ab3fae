"""Cron expressions matched against naive local wall-clock time (SPEC 1.1, the `cron` row).

This module knows nothing about time zones: it answers "which local wall-clock minutes does this
expression name?" and the compiler resolves those to instants with the DST rules of SPEC 1.3.
Matching wall-clock time first and resolving afterwards is what makes the DST policy explicit
(FACTS "Schedules and time": libraries that iterate aware datetimes fire gap times at the
transition and fold times twice, each in its own way).

Grammar and semantics
---------------------
Five whitespace-separated fields (spaces and tabs, any number)::

    minute(0-59) hour(0-23) day-of-month(1-31) month(1-12|JAN-DEC) day-of-week(0-7|SUN-SAT)

- Every field takes lists `a,b`, ranges `a-b`, steps `*/s` and `a-b/s`; `a/s` means `a-max/s`
  (Vixie cron). In day-of-week max is 7, so `1/2` is MON, WED, FRI and SUN, as in Vixie cron and
  cronsim. Names are case-insensitive; 0 and 7 are both Sunday.
- Ranges never wrap: `FRI-MON` or `50-10` is an error that says how to write it. A range ending
  on the *name* `SUN` counts it as 7, so `FRI-SUN` is Friday to Sunday (it cannot mean anything
  else).
- A step larger than the field's number of values is an error: `*/90` in minutes would only
  match minute 0, because cron steps restart every hour; that is never what the author meant.
- Day-of-month: `L` is the last day of the month, alone or in a list (`1,15,L`).
- Day-of-week: `FRIL`/`5L` is the last Friday of the month, `FRI#2`/`5#2` the second (#1-#5;
  `#5` matches only in months that have five of that weekday).
- Aliases: `@hourly @daily @midnight @weekly @monthly @yearly @annually`.
- Rejected with a message: `W`/`LW`, `?`, `H`, a sixth (seconds or year) field, `@reboot`, and an
  expression that can never match (`0 0 30 2 *`). "Never" is decided over the whole Gregorian
  cycle: every (month length, weekday of the 1st) pair occurs in it, so checking the 28 pairs is
  exact (Feb 29 and `#5` are possible; February 30 is not).
- Days (`day_match`): with `or` (the default), when both day fields are restricted a day matches
  if either does; a field whose text starts with `*` (`*`, `*/2`) counts as unrestricted, so
  `*/2` with `MON` requires both (Vixie/Debian cron, cronsim). With `and` both must always match.
- Matching is at minute resolution: `matches` is False for a datetime with seconds or
  microseconds, and `iter_between` emits only whole minutes.

Deliberate differences from croniter (measured with croniter 7.0)
-----------------------------------------------------------------
- `*/2` + `MON` is AND here (Vixie); croniter makes it OR because both fields differ from `*`.
- Ranges do not wrap: croniter reads `FRI-MON` and `50-10` as wrapping ranges.
- Day-of-week `a/s` runs to 7 (Sunday): croniter's `1/2` omits Sunday.
- A sixth field is an error; croniter reads it as seconds (or a seventh as the year).
- `?` is an error (croniter reads it as `*`), `15W` is an error (croniter supports it), `H`
  needs no hash id here because it is rejected outright.
- `*/90` in minutes is an error; croniter silently runs it hourly.
- `FRIL`/`5L` and `L` in day-of-month lists are supported (croniter rejects them).
- An expression that can never match fails when parsed; croniter fails only when asked for the
  next date (`CroniterBadDateError`).
- A one-value range is that value: croniter reads `5-5` as the whole field (and cronsim reads
  `5-5/2` as `5/2`).
- Only naive wall-clock datetimes are accepted; DST is the compiler's job (SPEC 1.3).

Speed: the fields compile to sorted minute/hour tuples and a cache of matching days per
(month length, weekday of the 1st), so `iter_between` walks matching days only and emits
`day + offset` for each time of day, with no per-minute search.
"""

from __future__ import annotations

import calendar
import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

__all__ = ["CronError", "CronExpr", "parse_cron"]

DayMatch = Literal["or", "and"]


class CronError(ValueError):
    """An invalid cron expression: `message` says how to fix it, `position` where (0-based)."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return self.message


_ALIASES: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Spelled out rather than `calendar.month_name`, which follows the process locale: messages
# (and so plans and CI output) must not depend on the machine.
_MONTH_FULL = ("", "January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")  # fmt: skip
_FIELD_ORDER = "minute hour day-of-month month day-of-week"

# Month lengths that occur in the Gregorian calendar, per month (February: both).
_MONTH_LENGTHS: dict[int, tuple[int, ...]] = {
    m: ((28, 29) if m == 2 else (calendar.monthrange(2001, m)[1],)) for m in range(1, 13)
}


@dataclass(frozen=True)
class _Spec:
    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()  # names[i] has value i + name_base
    name_base: int = 0

    @property
    def allowed(self) -> str:
        text = f"{self.lo}-{self.hi}"
        if self.names:
            text += f" or {self.names[0]}-{self.names[-1]}"
        return text


_MINUTE = _Spec("minute", 0, 59)
_HOUR = _Spec("hour", 0, 23)
_DOM = _Spec("day-of-month", 1, 31)
_MONTH = _Spec("month", 1, 12, _MONTH_NAMES, 1)
_DOW = _Spec("day-of-week", 0, 7, _DAY_NAMES, 0)
_SPECS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)
_CYCLE = {"minute": "hour", "hour": "day", "day-of-month": "month", "month": "year",
          "day-of-week": "week"}  # fmt: skip

# ASCII only: `\d` and str.isdigit would accept digits of other scripts, which int() then reads.
_TOKEN = re.compile(r"(?P<num>[0-9]+)|(?P<name>[A-Za-z]+)|(?P<sym>.)", re.DOTALL)


@dataclass(frozen=True)
class _Tok:
    kind: Literal["num", "name", "sym"]
    text: str  # names upper-cased
    pos: int  # offset in the whole expression


@dataclass
class _Field:
    values: set[int] = field(default_factory=set)
    last_day: bool = False  # day-of-month `L`
    last_weekdays: set[int] = field(default_factory=set)  # day-of-week `FRIL` (0=Sunday)
    nth_weekdays: set[tuple[int, int]] = field(default_factory=set)  # `FRI#2` -> (5, 2)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(words: list[str], last: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {last} " + words[-1]


def _tokenize(text: str, offset: int, spec: _Spec) -> list[_Tok]:
    tokens: list[_Tok] = []
    for m in _TOKEN.finditer(text):
        raw, pos = m.group(), offset + m.start()
        if m.lastgroup == "num":
            tokens.append(_Tok("num", raw, pos))
        elif m.lastgroup == "name":
            up = raw.upper()
            # `FRIL` is a day name followed by the `L` suffix: split it so the grammar sees `5L`.
            if spec is _DOW and len(up) == 4 and up[:3] in _DAY_NAMES and up[3] == "L":
                tokens.append(_Tok("name", up[:3], pos))
                tokens.append(_Tok("name", "L", pos + 3))
            else:
                tokens.append(_Tok("name", up, pos))
        else:
            tokens.append(_Tok("sym", raw, pos))
    return tokens


def _reject_unsupported(tok: _Tok, spec: _Spec) -> None:
    """Turn the syntax of other cron dialects into messages that say what to write instead."""
    if tok.kind == "sym":
        if tok.text == "?":
            raise CronError(f"`?` is not supported: use `*` in {spec.name}", tok.pos)
        if tok.text not in "*-/#,":
            raise CronError(f"{spec.name}: unexpected character {tok.text!r}", tok.pos)
        return
    if tok.kind != "name" or tok.text in spec.names or tok.text == "L":
        return
    if tok.text == "H":
        raise CronError(
            f"`H` (hash) is not supported in {spec.name}: write explicit values, e.g. `17`", tok.pos
        )
    if "W" in tok.text and tok.text not in _DAY_NAMES:
        raise CronError(
            "`W` (nearest weekday) is not supported: write the days explicitly, "
            "or `L` for the last day of the month",
            tok.pos,
        )
    if not spec.names:
        other = (
            "month" if tok.text in _MONTH_NAMES else "day-of-week" if tok.text in _DAY_NAMES else ""
        )
        hint = f" (`{tok.text}` is a {other} name)" if other else ""
        raise CronError(
            f"{spec.name} takes numbers {spec.allowed}, not `{tok.text}`{hint}", tok.pos
        )
    close = difflib.get_close_matches(tok.text, spec.names, n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    raise CronError(
        f"unknown {spec.name} name `{tok.text}`{hint}; use {', '.join(spec.names)} "
        f"or {spec.lo}-{spec.hi}",
        tok.pos,
    )


class _ItemParser:
    """Recursive descent over one comma-separated item of one field."""

    def __init__(self, spec: _Spec, tokens: list[_Tok], end_pos: int) -> None:
        self.spec = spec
        self.toks = tokens
        self.i = 0
        self.end_pos = end_pos  # position reported when the item ends too early

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok | None:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.text == text

    def here(self) -> int:
        tok = self.peek()
        return tok.pos if tok is not None else self.end_pos

    def value(self) -> tuple[int, _Tok]:
        spec = self.spec
        tok = self.take()
        if tok is None or tok.kind == "sym" or tok.text == "L":
            shown = f"`{tok.text}`" if tok is not None else "nothing"
            pos = tok.pos if tok is not None else self.end_pos
            what = f"a number {spec.lo}-{spec.hi}" + (" or a name" if spec.names else "")
            raise CronError(f"{spec.name}: expected {what}, found {shown}", pos)
        if tok.kind == "name":
            return spec.names.index(tok.text) + spec.name_base, tok
        v = int(tok.text)
        if not spec.lo <= v <= spec.hi:
            raise CronError(f"{spec.name} value {v} is out of range {spec.allowed}", tok.pos)
        return v, tok

    def step(self) -> int:
        spec = self.spec
        slash = self.take()
        assert slash is not None
        tok = self.take()
        if tok is None or tok.kind != "num":
            pos = tok.pos if tok is not None else self.end_pos
            raise CronError(f"{spec.name}: `/` must be followed by a step number", pos)
        step = int(tok.text)
        # Day-of-week has 8 numbers (0-7) but 7 days; a step of 7 still means "Sundays".
        span = 7 if spec is _DOW else spec.hi - spec.lo + 1
        if step == 0:
            raise CronError(f"{spec.name} step must be at least 1, not 0", tok.pos)
        if step > span:
            # `*/90` in minutes is the classic mistake: cron steps restart every hour, so it
            # would silently mean "minute 0". Refuse rather than run something unintended.
            raise CronError(
                f"{spec.name} step {step} is larger than the {span} values of the field: cron "
                f"steps restart every {_CYCLE[spec.name]}, so it would only match the start of "
                "the range; list the values you mean",
                tok.pos,
            )
        return step

    def finish(self, after_range: bool = False) -> None:
        tok = self.peek()
        if tok is None:
            return
        if after_range and self.spec is _DOW and tok.text in ("#", "L"):
            raise CronError(
                f"`{tok.text}` applies to a single day (e.g. `FRI{tok.text}"
                f"{'2' if tok.text == '#' else ''}`), not to a range",
                tok.pos,
            )
        raise CronError(f"{self.spec.name}: unexpected `{tok.text}`", tok.pos)

    def parse_into(self, out: _Field) -> None:
        spec = self.spec
        first = self.peek()
        assert first is not None
        if first.text == "*":
            self.take()
            lo, hi = spec.lo, spec.hi
            step = self.step() if self.at("/") else 1
            self.finish()
            out.values.update(range(lo, hi + 1, step))
            return
        if first.text == "L":
            if spec is _DOW:
                raise CronError(
                    "`L` in day-of-week follows a day: `FRIL` or `5L` is the last Friday of the "
                    "month (for the last day of the month, put `L` in day-of-month)",
                    first.pos,
                )
            if spec is not _DOM:
                raise CronError(
                    f"`L` is only allowed in day-of-month and day-of-week, not {spec.name}",
                    first.pos,
                )
            self.take()
            if self.peek() is not None:
                raise CronError(
                    "`L` in day-of-month stands alone (write `L` or a list like `1,15,L`); "
                    "offsets and steps from `L` are not supported",
                    self.here(),
                )
            out.last_day = True
            return
        lo, lo_tok = self.value()
        hi = lo
        ranged = False
        if self.at("-"):
            self.take()
            hi, hi_tok = self.value()
            ranged = True
            # `FRI-SUN` cannot mean anything but Friday to Sunday: a closing SUN is day 7.
            if spec is _DOW and hi_tok.kind == "name" and hi == 0 and lo > 0:
                hi = 7
            if hi < lo:
                raise CronError(self._wrap_message(lo_tok, hi_tok, lo, hi), lo_tok.pos)
        elif self.at("L"):
            tok = self.take()
            assert tok is not None
            if spec is not _DOW:
                raise CronError(
                    "`L` in day-of-month stands alone (write `L` or a list like `1,15,L`)"
                    if spec is _DOM
                    else f"`L` is only allowed in day-of-month and day-of-week, not {spec.name}",
                    tok.pos,
                )
            self.finish()
            out.last_weekdays.add(lo % 7)
            return
        elif self.at("#"):
            tok = self.take()
            assert tok is not None
            if spec is not _DOW:
                raise CronError(
                    f"`#` is only allowed in day-of-week (e.g. `FRI#2`), not {spec.name}", tok.pos
                )
            n_tok = self.take()
            if n_tok is None or n_tok.kind != "num" or not 1 <= int(n_tok.text) <= 5:
                pos = n_tok.pos if n_tok is not None else self.end_pos
                raise CronError(
                    "`#` must be followed by 1-5 (e.g. `FRI#2`, the second Friday)", pos
                )
            self.finish()
            out.nth_weekdays.add((lo % 7, int(n_tok.text)))
            return
        step = 1
        if self.at("/"):
            step = self.step()
            if not ranged:
                hi = spec.hi  # `a/s` means `a-max/s` (Vixie cron)
        self.finish(after_range=ranged)
        out.values.update(range(lo, hi + 1, step))

    def _wrap_message(self, lo_tok: _Tok, hi_tok: _Tok, lo: int, hi: int) -> str:
        spec = self.spec
        top = 6 if spec is _DOW else spec.hi  # a day-of-week range closes on SAT (6)
        lo = lo % 7 if spec is _DOW else lo  # `7-1`: the Sunday it starts on is 0

        def span(a: int, b: int, label: Callable[[int], str]) -> str:
            return label(a) if a == b else f"{label(a)}-{label(b)}"

        def pieces(label: Callable[[int], str]) -> str:
            if lo <= hi:  # only `7-n` in day-of-week gets here: it is simply `0-n`
                return span(lo, hi, label)
            return f"{span(lo, top, label)},{span(spec.lo, hi, label)}"

        fix = pieces(str)
        if spec.names:
            fix = f"{pieces(lambda v: spec.names[v - spec.name_base])} or {fix}"
        return f"{spec.name} range {lo_tok.text}-{hi_tok.text} wraps around; write {fix}"


def _parse_field(spec: _Spec, text: str, offset: int) -> _Field:
    tokens = _tokenize(text, offset, spec)
    for t in tokens:
        _reject_unsupported(t, spec)
    out = _Field()
    item: list[_Tok] = []
    last_comma = offset
    stream: list[_Tok | None] = [*tokens, None]
    for tok in stream:
        if tok is None or tok.text == ",":
            end_pos = tok.pos if tok is not None else offset + len(text)
            if not item:
                # Point at the comma that has nothing before (or, trailing, after) it.
                where = tok.pos if tok is not None else last_comma
                raise CronError(f"{spec.name}: empty item in list (`{text}`)", where)
            _ItemParser(spec, item, end_pos).parse_into(out)
            item = []
            if tok is not None:
                last_comma = tok.pos
        else:
            item.append(tok)
    if spec is _DOW:
        out.values = {v % 7 for v in out.values}
    return out


class _Compiled:
    """The expression as sets and tuples, plus a cache of matching days per month shape."""

    __slots__ = (
        "minutes", "hours", "minute_set", "hour_set", "months", "month_set", "offsets", "times",
        "dom", "dom_last", "dow", "dow_last", "dow_nth", "both", "day_cache",
    )  # fmt: skip

    def __init__(self, fields: list[_Field], dom_star: bool, dow_star: bool, day_match: DayMatch):
        minute, hour, dom, month, dow = fields
        self.minutes = tuple(sorted(minute.values))
        self.hours = tuple(sorted(hour.values))
        self.minute_set = frozenset(self.minutes)
        self.hour_set = frozenset(self.hours)
        self.months = tuple(sorted(month.values))
        self.month_set = frozenset(self.months)
        # Adding a timedelta to a midnight datetime is the cheapest way CPython builds a datetime.
        self.offsets = tuple(
            timedelta(hours=h, minutes=m) for h in self.hours for m in self.minutes
        )
        self.times = tuple(time(h, m) for h in self.hours for m in self.minutes)
        self.dom = frozenset(dom.values)
        self.dom_last = dom.last_day
        self.dow = frozenset(dow.values)
        self.dow_last = frozenset(dow.last_weekdays)
        self.dow_nth = frozenset(dow.nth_weekdays)
        # Vixie cron: OR only when neither day field starts with `*`.
        self.both = day_match == "and" or dom_star or dow_star
        self.day_cache: dict[tuple[int, int], tuple[int, ...]] = {}

    def days_for(self, ndays: int, first_weekday: int) -> tuple[int, ...]:
        """Matching days of a month with `ndays` days whose 1st is `first_weekday` (Mon=0)."""
        key = (ndays, first_weekday)
        cached = self.day_cache.get(key)
        if cached is not None:
            return cached
        days: list[int] = []
        for d in range(1, ndays + 1):
            wd = (first_weekday + d) % 7  # cron weekday, Sunday=0: Monday (0) + day 1 -> 1
            dom_ok = d in self.dom or (self.dom_last and d == ndays)
            dow_ok = (
                wd in self.dow
                or (wd in self.dow_last and d + 7 > ndays)
                or (wd, (d - 1) // 7 + 1) in self.dow_nth
            )
            if (dom_ok and dow_ok) if self.both else (dom_ok or dow_ok):
                days.append(d)
        result = tuple(days)
        self.day_cache[key] = result
        return result

    def month_days(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, ndays = calendar.monthrange(year, month)
        return self.days_for(ndays, first_weekday)


def _check_naive(*values: datetime) -> None:
    for v in values:
        if v.tzinfo is not None:
            raise ValueError(
                f"cron matches naive local wall-clock datetimes, got an aware one: {v.isoformat()}"
            )


@dataclass(frozen=True)
class CronExpr:
    """A parsed cron expression; construct with `parse_cron` (or directly: it parses itself)."""

    expression: str
    day_match: DayMatch = "or"
    _c: _Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_c", _compile(self.expression, self.day_match))

    @property
    def times(self) -> tuple[time, ...]:
        """Times of day (sorted) at which the expression fires on every matching day."""
        return self._c.times

    def matches(self, t: datetime) -> bool:
        """Whether naive local `t` is a firing minute (False if it has seconds/microseconds)."""
        _check_naive(t)
        c = self._c
        return (
            t.second == 0
            and t.microsecond == 0
            and t.minute in c.minute_set
            and t.hour in c.hour_set
            and t.month in c.month_set
            and t.day in c.month_days(t.year, t.month)
        )

    def days_between(self, start: date, end: date) -> Iterator[date]:
        """Dates in `[start, end)` that match the month and day fields, ascending."""
        if start >= end:
            return
        for year, month, days in self._months_between(start, end - timedelta(days=1)):
            for d in days:
                day = date(year, month, d)
                if start <= day < end:
                    yield day

    def iter_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Firing minutes in `[start, end)` (naive local wall clock), ascending."""
        _check_naive(start, end)
        if start >= end:
            return
        offsets = self._c.offsets
        first_day, last_day = start.date(), end.date()
        for year, month, days in self._months_between(first_day, last_day):
            for d in days:
                base = datetime(year, month, d)
                day = base.date()
                if first_day < day < last_day:
                    # A whole day inside the window: no bound checks needed.
                    yield from map(base.__add__, offsets)
                elif first_day <= day <= last_day:
                    for off in offsets:
                        t = base + off
                        if start <= t < end:
                            yield t

    def _months_between(
        self, first: date, last: date
    ) -> Iterator[tuple[int, int, tuple[int, ...]]]:
        """(year, month, matching days) of the matching months from `first` to `last` inclusive."""
        c = self._c
        for year in range(first.year, last.year + 1):
            for month in c.months:
                if year == first.year and month < first.month:
                    continue
                if year == last.year and month > last.month:
                    break
                days = c.month_days(year, month)
                if days:
                    yield year, month, days


def parse_cron(expression: str, day_match: DayMatch = "or") -> CronExpr:
    """Parse and check `expression`; raises CronError with a message and a position."""
    return CronExpr(expression, day_match)


def _compile(expression: str, day_match: DayMatch) -> _Compiled:
    if day_match not in ("or", "and"):
        raise CronError(f"day_match must be `or` or `and`, not {day_match!r}", 0)
    parts = [(m.group(), m.start()) for m in re.finditer(r"\S+", expression)]
    if not parts:
        raise CronError(
            f"empty cron expression: write 5 fields ({_FIELD_ORDER}) or an alias like @daily", 0
        )
    if parts[0][0].startswith("@"):
        return _compile_alias(parts, day_match)
    if len(parts) > 5:
        extra_pos = parts[5][1]
        raise CronError(
            f"{len(parts)} fields: cron here has 5 ({_FIELD_ORDER}); seconds/year fields are "
            "not supported, remove the extra field",
            extra_pos,
        )
    if len(parts) < 5:
        end = parts[-1][1] + len(parts[-1][0])
        missing = _FIELD_ORDER.split()[len(parts) :]
        raise CronError(
            f"{len(parts)} field{'s' if len(parts) > 1 else ''}: cron needs 5 ({_FIELD_ORDER}); "
            f"missing {' '.join(missing)}",
            end,
        )
    fields = [
        _parse_field(spec, text, pos) for spec, (text, pos) in zip(_SPECS, parts, strict=True)
    ]
    compiled = _Compiled(
        fields, parts[2][0].startswith("*"), parts[4][0].startswith("*"), day_match
    )
    _check_feasible(compiled, fields, parts)
    return compiled


def _compile_alias(parts: list[tuple[str, int]], day_match: DayMatch) -> _Compiled:
    alias, _ = parts[0]
    key = alias.lower()
    if key == "@reboot":
        raise CronError(
            "`@reboot` is not supported: a schedule fires at times of day, not at startup", 0
        )
    if key not in _ALIASES:
        close = difflib.get_close_matches(key, list(_ALIASES), n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        raise CronError(
            f"unknown alias `{alias}`{hint}; use one of {' '.join(_ALIASES)} or 5 fields", 0
        )
    if len(parts) > 1:
        raise CronError(
            f"an alias stands alone: remove `{parts[1][0]}` after `{alias}`", parts[1][1]
        )
    return _compile(_ALIASES[key], day_match)


def _check_feasible(c: _Compiled, fields: list[_Field], parts: list[tuple[str, int]]) -> None:
    """Raise if no date can ever match the month and day fields.

    Over the 400-year Gregorian cycle every month starts on every weekday, in leap and common
    years alike for February, so (month length, weekday of the 1st) covers every month there is.
    """
    for month in c.months:
        for ndays in _MONTH_LENGTHS[month]:
            for first_weekday in range(7):
                if c.days_for(ndays, first_weekday):
                    return
    dom, dow = fields[2], fields[4]
    dom_text, dom_pos = parts[2]
    dow_text = parts[4][0]
    month_names = [_MONTH_FULL[m] for m in c.months]
    dow_unrestricted = (
        dow.values == set(range(7)) and not dow.last_weekdays and not dow.nth_weekdays
    )
    if dow_unrestricted and dom.values and not dom.last_day:
        # Only the day-of-month numbers can be at fault: name the months and the missing days.
        missing = sorted(dom.values)
        subject = _join(month_names, "and")
        verb = "has" if len(month_names) == 1 else "have"
        days = _join([_ordinal(d) for d in missing], "or")
        raise CronError(f"never matches: {subject} {verb} no {days}", dom_pos)
    where = "any month" if len(c.months) == 12 else _join(month_names, "or")
    raise CronError(
        f"never matches: no day in {where} has both day-of-month `{dom_text}` and "
        f"day-of-week `{dow_text}`",
        dom_pos,
    )
