"""Pydantic validation errors → located, actionable diagnostics (the schema layer's messages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from flowspec.diagnostics import Diagnostic, Location, error

Locator = Callable[[Sequence[str | int]], Location]


def diagnostics_from_validation_error(
    exc: ValidationError, data: Any, locate: Locator
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for err in exc.errors():
        path = [p for p in err["loc"] if isinstance(p, str | int)]
        where = ".".join(str(p) for p in path) or "document"
        out.append(error("FS100", f"{where}: {err['msg']}", locate(path)))
    return out
