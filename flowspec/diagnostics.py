"""Errors as values: every problem a user can cause is a Diagnostic with a code and a location.

Commands collect diagnostics and return them; only the CLI renders them. The catalogue of codes
(with a bad example and its fix for each) is docs/diagnostics.md, and a test proves every code
listed there is produced by at least one fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str  # stable, "FSnnn"
    severity: Severity
    message: str
    location: Location | None = None
    # Structured extras for JSON output (e.g. {"suggestion": "America/Sao_Paulo"}).
    data: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity.value}[{self.code}]: {self.message}"

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            **({"data": self.data} if self.data else {}),
        }


def error(code: str, message: str, location: Location | None = None, **data: object) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, location, dict(data))


def warning(code: str, message: str, location: Location | None = None, **data: object) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, location, dict(data))


def info(code: str, message: str, location: Location | None = None, **data: object) -> Diagnostic:
    return Diagnostic(code, Severity.INFO, message, location, dict(data))


class UserError(Exception):
    """A mistake in the user's input or environment: the CLI prints it and exits 1.

    Raised only at I/O edges (an unreachable database, a bad option); computing code returns
    Diagnostic values instead.
    """

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = diagnostics or []


def has_errors(diagnostics: list[Diagnostic], *, strict: bool = False) -> bool:
    return any(d.is_error or (strict and d.severity is Severity.WARNING) for d in diagnostics)
