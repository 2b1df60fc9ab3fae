"""Option types shared by every command: instants and durations, parsed once, errors as usage
errors (exit 1) that say what to write."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click

from flowspec.timeparse import format_duration, parse_cli_instant, parse_duration


def bounded_instant(text: str) -> datetime:
    """parse_cli_instant, limited to the years a schedule may use (validate's FS111 bounds):
    near the ends of Python's date range the compiler's day arithmetic would overflow."""
    from flowspec.validate import MAX_YEAR, MIN_YEAR

    value = parse_cli_instant(text)
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"'{text}' is outside the years {MIN_YEAR}-{MAX_YEAR}; check the year")
    return value


class Instant(click.ParamType):
    """An ISO date or datetime; UTC unless it carries an offset (SPEC 3)."""

    name = "T"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return bounded_instant(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Duration(click.ParamType):
    """A duration such as 30s, 1h or 30d, optionally bounded (`what` names it in errors)."""

    name = "DURATION"

    def __init__(
        self, *, what: str = "the duration", minimum: timedelta | None = None,
        maximum: timedelta | None = None, example: str = "30d",
    ) -> None:
        self.what, self.minimum, self.maximum, self.example = what, minimum, maximum, example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            delta = parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self.minimum is not None and delta < self.minimum:
            self.fail(f"{self.what} must be at least {format_duration(self.minimum)}, e.g. {self.example}", param, ctx)
        if self.maximum is not None and delta > self.maximum:
            self.fail(f"{self.what} is at most {format_duration(self.maximum)}", param, ctx)
        return delta
