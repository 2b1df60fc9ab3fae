"""`flowspec diff OLD NEW` | `flowspec diff --base REF [PATHS]` (SPEC 4).

Both sides are loaded and validated. The new side is the change under review: its diagnostics
are printed as `plan` prints them, and any error exits 1. The old side is what is already
there: its errors are printed as a warning and the diff goes on with what loaded (a pull request
that repairs a broken main branch still gets its preview; the compiler gives an automation it
cannot compile no occurrences). The range options are `plan`'s. The clock is read once, here.
"""

from __future__ import annotations

import io
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from flowspec.config import Config, load_config, load_config_sources
from flowspec.diagnostics import Diagnostic, Severity, UserError
from flowspec.diff import Diff
from flowspec.diff import diff as compute_diff

EXIT_OK, EXIT_USER, EXIT_CHANGES = 0, 1, 2
# Audience CSV checks read the working tree: for a side read from git they would judge the
# wrong files, so they are left out there.
DISK_ONLY_CODES = frozenset({"FS505", "FS506", "FS507", "FS508"})
OLD_ERRORS_SHOWN = 5
DEFAULT_DAYS = 30
MAX_DAYS = 36_600  # a century, as for plan
FORMATS = ("text", "json", "markdown", "html")


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from flowspec.commands.params import bounded_instant

    try:
        return bounded_instant(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def resolve_range(
    from_: str | None, to: str | None, days: int | None, now: str | None
) -> tuple[datetime, datetime, datetime]:
    """(now, from, to): `--from` defaults to now, `--to` to `--days` (30) after it."""
    if to is not None and days is not None:
        raise click.UsageError("give --to or --days, not both")
    at = _instant(now, "--now") or datetime.now(UTC).replace(microsecond=0)
    start = _instant(from_, "--from") or at
    end = _instant(to, "--to") or start + timedelta(days=days if days is not None else DEFAULT_DAYS)
    if end <= start:
        raise click.UsageError(f"--to ({to}) must be after --from ({start:%Y-%m-%dT%H:%M:%SZ})")
    return at, start, end


def default_root() -> str:
    return "automations" if Path("automations").is_dir() else "."


def _validate(config: Config, now: datetime, roots: list[str]) -> list[Diagnostic]:
    from flowspec.validate import validate_config

    return list(validate_config(config, now=now, strict=False, roots=[Path(r) for r in roots]))


def _validate_old(config: Config, roots: list[str], *, from_git: bool) -> list[Diagnostic]:
    """The old side's load, schema and semantic errors, for a warning. The compiler's checks are
    left out: they are the costliest layer, and the compiler gives what it cannot compile no
    occurrences, so the diff stays correct without them."""
    from flowspec.validate import semantic_diagnostics

    found = [*config.diagnostics, *semantic_diagnostics(config, roots=[Path(r) for r in roots])]
    return [d for d in found if not (from_git and d.code in DISK_ONLY_CODES)]


def _errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]


def _report_new(diagnostics: list[Diagnostic], side: str) -> bool:
    # Errors and warnings, as plan shows them; notes (info) are validate's to show, not the diff's.
    for d in diagnostics:
        if d.severity is not Severity.INFO:
            click.echo(d.render(), err=True)
    errors = len(_errors(diagnostics))
    if errors:
        click.echo(f"error: {errors} error(s) in the {side}; fix them and run diff again", err=True)
    return bool(errors)


def _report_old(diagnostics: list[Diagnostic], side: str) -> None:
    errors = _errors(diagnostics)
    if not errors:
        return
    click.echo(
        f"warning: the {side} has {len(errors)} error(s); the diff compares what could be "
        "loaded from it (automations it could not load count as added):",
        err=True,
    )
    for d in errors[:OLD_ERRORS_SHOWN]:
        click.echo(f"  {d.render()}", err=True)
    if len(errors) > OLD_ERRORS_SHOWN:
        click.echo(f"  ... and {len(errors) - OLD_ERRORS_SHOWN} more", err=True)


def _default_full_report() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repo and run:
        return f"the step summary and artifacts of [workflow run {run}]({server}/{repo}/actions/runs/{run})"
    return None


@click.command()
@click.argument("paths", nargs=-1, metavar="[OLD NEW | PATHS...]")
@click.option("--base", metavar="REF", help="Compare the config at this git revision with the files on disk.")
@click.option("--from", "from_", metavar="T", help="Range start, ISO date or datetime (UTC without offset). Default: now.")
@click.option("--to", metavar="T", help="Range end (exclusive).")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), help=f"Range length in days (default {DEFAULT_DAYS}).")
@click.option("--now", metavar="T", help="The current time, instead of the clock.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--expand", is_flag=True, help="List every occurrence instead of folding regular runs.")
@click.option("--exit-code", is_flag=True, help="Exit 2 when there are changes, 0 when none (1 on error).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE.")
@click.option(
    "--max-chars",
    type=click.IntRange(min=0),
    help="markdown: truncate to this many characters (default 65536, GitHub's comment limit; 0: none).",
)
@click.option("--full-report", metavar="TEXT", help="markdown: where the truncation note says the full report is.")
def diff(
    paths: tuple[str, ...],
    base: str | None,
    from_: str | None,
    to: str | None,
    days: int | None,
    now: str | None,
    fmt: str,
    expand: bool,
    exit_code: bool,
    output: Path | None,
    max_chars: int | None,
    full_report: str | None,
) -> int:
    """Show what changes between two configs: automations, fields and occurrences.

    \b
      flowspec diff old/ new/                  two config roots
      flowspec diff --base main [PATHS]        the config at a git revision vs. the files on disk
    """
    at, start, end = resolve_range(from_, to, days, now)
    if base is not None:
        from flowspec.gitsource import read_tree

        roots = list(paths) or [default_root()]
        tree = read_tree(base, roots)
        for missing in tree.missing:
            click.echo(f"note: '{missing}' holds no YAML files at {base}; everything in it is new", err=True)
        old = load_config_sources(tree.files)
        new = load_config(roots)
        if _report_new(_validate(new, at, roots), "config on disk"):
            return EXIT_USER
        _report_old(_validate_old(old, roots, from_git=True), f"config at {base}")
    else:
        if len(paths) != 2:
            raise click.UsageError("give two config roots (flowspec diff OLD NEW) or --base REF [PATHS]")
        for p in paths:
            if not Path(p).exists():
                raise UserError(f"path '{p}' does not exist; give two config folders or files")
        old, new = load_config([paths[0]]), load_config([paths[1]])
        if _report_new(_validate(new, at, [paths[1]]), f"new config ({paths[1]})"):
            return EXIT_USER
        _report_old(_validate_old(old, [paths[0]], from_git=False), f"old config ({paths[0]})")

    result = compute_diff(old, new, start, end)
    color = output is None and fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = render(result, fmt, expand=expand, color=color, max_chars=max_chars,
                  full_report=full_report or _default_full_report())
    if output is None:
        click.echo(text, nl=False, color=color)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {output}: {exc.strerror}") from None
    return EXIT_CHANGES if exit_code and result.has_changes else EXIT_OK


def render(
    result: Diff,
    fmt: str,
    *,
    expand: bool = False,
    color: bool = False,
    max_chars: int | None = None,
    full_report: str | None = None,
) -> str:
    out = io.StringIO()
    if fmt == "json":
        from flowspec.render import diff_json

        diff_json.render(result, out)
    elif fmt == "markdown":
        from flowspec.render import diff_markdown

        limit = diff_markdown.GITHUB_COMMENT_LIMIT if max_chars is None else max_chars
        diff_markdown.render(result, out, expand=expand, max_chars=limit, full_report=full_report)
    elif fmt == "html":
        from flowspec.render import diff_html

        diff_html.render(result, out, expand=expand)
    else:
        from flowspec.render import diff_text

        diff_text.render(result, out, expand=expand, color=color)
    return out.getvalue()
