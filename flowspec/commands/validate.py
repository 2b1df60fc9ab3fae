"""`flowspec validate [PATHS...]`: every problem in the config, in one run (SPEC 2)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import click

from flowspec import timeparse
from flowspec.config import load_config
from flowspec.diagnostics import Diagnostic, Severity, has_errors
from flowspec.validate import validate_config

FORMAT = "flowspec.validate/v1"
# GitHub shows at most ten annotations of each kind per step (FACTS); the rest are listed in
# the log under one line that says how many there are.
GITHUB_LIMIT = 10
_GITHUB_KIND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def default_paths() -> list[str]:
    return ["automations"] if Path("automations").is_dir() else ["."]


def parse_now(value: str | None) -> datetime:
    """`--now` or the clock: the one place validate reads it."""
    if value is None:
        return datetime.now(UTC)
    try:
        return timeparse.parse_cli_instant(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: one line per problem; json: machine-readable; github: workflow annotations.",
)
@click.option("--strict", is_flag=True, help="Warnings fail validation too (exit 1).")
@click.option("--now", "now_text", metavar="T", help="Current time for time-dependent checks (ISO 8601; UTC without offset).")
def validate(paths: tuple[str, ...], fmt: str, strict: bool, now_text: str | None) -> int:
    """Check config files: YAML, schema and every semantic rule. Exit 1 if anything is wrong.

    PATHS are files or folders (default: automations/ if present, else the current folder).
    """
    now = parse_now(now_text)
    targets = list(paths) or default_paths()
    config = load_config(targets)
    diagnostics = validate_config(config, now=now, roots=[Path(p) for p in targets])
    failed = has_errors(diagnostics, strict=strict)
    files, documents = len(config.files), len(config.documents)
    if fmt == "json":
        click.echo(render_json(diagnostics, valid=not failed, files=files, documents=documents))
    elif fmt == "github":
        for line in render_github(diagnostics):
            click.echo(line)
        click.echo(summary(diagnostics, failed=failed, files=files, documents=documents))
    else:
        for d in diagnostics:
            click.echo(d.render())
        click.echo(summary(diagnostics, failed=failed, files=files, documents=documents))
    return 1 if failed else 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(diagnostics: list[Diagnostic], *, failed: bool, files: int, documents: int) -> str:
    counts = Counter(d.severity for d in diagnostics)
    errors, warnings, infos = counts[Severity.ERROR], counts[Severity.WARNING], counts[Severity.INFO]
    if failed:
        parts = [_plural(errors, "error")] if errors else []
        if warnings:
            parts.append(_plural(warnings, "warning") + (" (--strict)" if not errors else ""))
        return f"{', '.join(parts)} in {_plural(files, 'file')}"
    extra = [_plural(n, word) for n, word in ((warnings, "warning"), (infos, "note")) if n]
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"ok: {_plural(files, 'file')}, {_plural(documents, 'document')}{tail}"


def render_json(diagnostics: list[Diagnostic], *, valid: bool, files: int, documents: int) -> str:
    counts = Counter(d.severity.value for d in diagnostics)
    return json.dumps(
        {
            "format": FORMAT,
            "valid": valid,
            "files": files,
            "documents": documents,
            "counts": {s.value: counts.get(s.value, 0) for s in Severity},
            "diagnostics": [d.to_json() for d in diagnostics],
        },
        indent=2,
        ensure_ascii=False,
    )


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(d: Diagnostic) -> str:
    props = []
    if d.location is not None:
        loc = d.location
        props += [f"file={_escape_property(loc.file)}", f"line={loc.line}", f"col={loc.col}"]
    props.append(f"title={_escape_property(d.code)}")
    return f"::{_GITHUB_KIND[d.severity]} {','.join(props)}::{_escape_data(d.message)}"


def render_github(diagnostics: list[Diagnostic]) -> list[str]:
    """Up to ten annotations per kind, then one line counting the rest and the rest in plain text."""
    shown: Counter[Severity] = Counter()
    lines: list[str] = []
    rest: list[Diagnostic] = []
    for d in diagnostics:
        if shown[d.severity] < GITHUB_LIMIT:
            shown[d.severity] += 1
            lines.append(github_annotation(d))
        else:
            rest.append(d)
    if rest:
        counts = Counter(d.severity for d in rest)
        parts = [
            _plural(counts[s], f"more {word}")
            for s, word in ((Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.INFO, "note"))
            if counts[s]
        ]
        lines.append(
            f"{' and '.join(parts)} not annotated (GitHub shows {GITHUB_LIMIT} of each kind per "
            "step); all of them:"
        )
        lines.extend(d.render() for d in rest)
    return lines
