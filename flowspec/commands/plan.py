"""`flowspec plan`: validate, compile a range, render it — or check a committed snapshot.

This command is the one place `plan` reads the clock (`--now` replaces it). Everything it prints
on stdout depends only on the files, the options and the recorded tzdata/holidays versions, so
`flowspec plan > plan.lock` can be committed and `flowspec plan --check plan.lock` keeps it honest.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import click

from flowspec.commands.params import Instant, bounded_instant  # noqa: F401 - re-exported
from flowspec.config import Config, load_config
from flowspec.diagnostics import Diagnostic, UserError, has_errors
from flowspec.plan import Plan, format_utc
from flowspec.render import FORMATS, Format, RenderOptions, render
from flowspec.suggest import did_you_mean
from flowspec.timeparse import parse_cli_instant

DEFAULT_DAYS = 30
DEFAULT_DAYS_WITH_COUNT = 90  # the original design's preview: days_ahead=90
DEFAULT_COUNT = 10  # ... and num_executions=10
MAX_DAYS = 36_600  # a century: far enough for any plan, safely inside datetime's range

_INSTANT = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
# Every format states its range near the word "range" (text/calendar header, JSON "range",
# markdown/HTML "Range", ICS X-FLOWSPEC-RANGE): --check reads it back from the snapshot.
_SNAPSHOT_RANGE = re.compile(rf"\brange\b.{{0,200}}?({_INSTANT}).{{0,80}}?({_INSTANT})", re.I | re.S)


@click.command("plan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--from",
    "range_from",
    type=Instant(),
    help="Start of the range (inclusive): YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM]; "
    "UTC when no offset is given.  [default: now]",
)
@click.option(
    "--to",
    "range_to",
    type=Instant(),
    help="End of the range (exclusive), same syntax as --from. Not with --days.",
)
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    metavar="N",
    help=f"Length of the range in days.  [default: {DEFAULT_DAYS}; {DEFAULT_DAYS_WITH_COUNT} with --count]",
)
@click.option(
    "--count",
    type=click.IntRange(1),
    is_flag=False,
    flag_value=DEFAULT_COUNT,
    metavar="[N]",
    help=f"Keep only the first N scheduled occurrences of each automation (--count alone: "
    f"{DEFAULT_COUNT}), like the original preview's num_executions.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: aligned, diffable; json: the machine contract (flowspec.plan/v1); markdown: a "
    "pull-request comment; ics: an RFC 5545 calendar of scheduled sends; calendar: month grids "
    "in the terminal; html: a self-contained report.",
)
@click.option(
    "--automation",
    "automations",
    multiple=True,
    metavar="NAME",
    help="Only this automation, as NAME or ORGANIZATION/NAME. Repeat for several.",
)
@click.option(
    "--include-skipped",
    is_flag=True,
    help="Also list skipped occurrences in text and markdown (json lists them always; "
    "calendar and html always mark them).",
)
@click.option(
    "--now",
    type=Instant(),
    help="Use this as the current time instead of the clock (--from defaults to it); makes "
    "runs reproducible.",
)
@click.option(
    "--check",
    "check_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Render as usual and compare with FILE, a committed snapshot: exit 0 if identical, "
    "else print a unified diff and exit 1. Without --from/--to/--days the range is read "
    "from FILE.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write to FILE (replaced atomically) instead of stdout.",
)
def plan(
    paths: tuple[Path, ...],
    range_from: datetime | None,
    range_to: datetime | None,
    days: int | None,
    count: int | None,
    fmt: Format,
    automations: tuple[str, ...],
    include_skipped: bool,
    now: datetime | None,
    check_file: Path | None,
    output: Path | None,
) -> int:
    """Compile automations into the occurrences they will run, for a range of time.

    Validates first: invalid config prints its diagnostics on stderr and exits 1. PATHS are
    files or folders (default: automations/ if it exists, else the current folder). An
    occurrence is in range when FROM <= at < TO.

    \b
    Examples:
      flowspec plan                                  next 30 days, as text
      flowspec plan --count                          next 10 sends of each automation
      flowspec plan --from 2026-01-01 --days 90 --format json
      flowspec plan --format html -o plan.html       report to open in a browser
      flowspec plan --format ics -o plan.ics         import into a calendar app

    \b
    Keep the plan under review like a lock file:
      flowspec plan --from 2026-01-01 --to 2026-04-01 -o plan.lock
      flowspec plan --check plan.lock                exit 1 and a diff when stale
    """
    if range_to is not None and days is not None:
        raise click.UsageError("--to and --days both set the end of the range; give one of them")
    if check_file is not None and output is not None:
        raise click.UsageError("--check compares with FILE and writes nothing; drop --output")

    clock = now if now is not None else datetime.now(UTC).replace(microsecond=0)
    snapshot: bytes | None = None
    if check_file is not None:
        snapshot = _read_snapshot(check_file)
        if range_from is None and range_to is None and days is None:
            range_from, range_to = _snapshot_range(snapshot) or (None, None)
    start, end = resolve_range(range_from, range_to, days, count, clock)

    sources = [str(p) for p in paths] or [default_path()]
    config = load_checked(sources, now=clock, refusal="fix them and run plan again")
    if config is None:
        return 1

    names = select_automations(config, automations)
    the_plan = compile_range(config, start, end, names=names, count=count)
    options = RenderOptions(include_skipped=include_skipped)

    if check_file is not None and snapshot is not None:
        buffer = io.StringIO()
        render(the_plan, fmt, buffer, options)
        refresh = refresh_command(sources, start, end, count, fmt, automations, include_skipped, check_file)
        return check_snapshot(check_file, snapshot, buffer.getvalue(), refresh)
    if output is not None:
        with atomic_write(output) as out:
            render(the_plan, fmt, out, options)
        click.echo(f"wrote {output}", err=True)
        return 0
    stdout = sys.stdout
    color = fmt == "calendar" and _wants_color(stdout)
    render(the_plan, fmt, stdout, RenderOptions(include_skipped=include_skipped, color=color))
    stdout.flush()
    return 0


# --------------------------------------------------------------------------- steps


def default_path() -> str:
    return "automations" if Path("automations").is_dir() else "."


def resolve_range(
    range_from: datetime | None,
    range_to: datetime | None,
    days: int | None,
    count: int | None,
    now: datetime,
) -> tuple[datetime, datetime]:
    """[from, to) from the options: --from defaults to now, the end to 30 days (90 with --count)."""
    start = range_from if range_from is not None else now
    if range_to is not None:
        end = range_to
    else:
        if days is None:
            days = DEFAULT_DAYS_WITH_COUNT if count is not None else DEFAULT_DAYS
        end = start + timedelta(days=days)
    if end <= start:
        raise click.UsageError(
            f"the range is empty: --to {format_utc(end)} is not after --from {format_utc(start)}"
        )
    return start, end


def load_checked(sources: Sequence[str], *, now: datetime, refusal: str) -> Config | None:
    """The config roots loaded and validated, every diagnostic printed to stderr; None, after a
    line counting the errors and ending with `refusal`, when there are errors."""
    config = load_config(list(sources))
    diagnostics = validation(config, now=now, roots=[Path(s) for s in sources])
    for diagnostic in diagnostics:
        click.echo(diagnostic.render(), err=True)
    if has_errors(diagnostics):
        errors = sum(1 for d in diagnostics if d.is_error)
        click.echo(f"error: {errors} error(s) in the config; {refusal}", err=True)
        return None
    return config


def validation(config: Config, *, now: datetime, roots: Sequence[Path]) -> list[Diagnostic]:
    """Everything `flowspec validate` would report (warnings included, not strict)."""
    from flowspec.validate import validate_config

    return list(validate_config(config, now=now, strict=False, roots=roots))


def select_automations(config: Config, wanted: Sequence[str]) -> list[str] | None:
    """The automations named by --automation (NAME or ORG/NAME); unknown names are errors."""
    if not wanted:
        return None
    known = {f"{e.organization}/{e.name}" for e in config.automations}
    short = {e.name for e in config.automations}
    selected: set[str] = set()
    for name in wanted:
        matches = {k for k in known if k == name or k.split("/", 1)[1] == name}
        if not matches:
            hint = did_you_mean(name, sorted(known)) if "/" in name else did_you_mean(name, sorted(short))
            raise UserError(
                f"no automation named '{name}'{hint}; "
                f"see the names with `flowspec plan --count 1`"
            )
        selected |= matches
    return sorted(selected)


def compile_range(
    config: Config, start: datetime, end: datetime, *, names: list[str] | None, count: int | None
) -> Plan:
    from flowspec.compiler import compile_plan

    return compile_plan(config, start, end, names=names, count=count)


# --------------------------------------------------------------------------- snapshots


def _read_snapshot(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(
            f"snapshot {path} does not exist; create it with `flowspec plan ... --output {path}` "
            f"and commit it"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read snapshot {path}: {exc.strerror or exc}") from None


def _snapshot_range(snapshot: bytes) -> tuple[datetime, datetime] | None:
    found = _SNAPSHOT_RANGE.search(snapshot[:20_000].decode("utf-8", errors="replace"))
    if not found:
        return None
    return parse_cli_instant(found.group(1)), parse_cli_instant(found.group(2))


def check_snapshot(path: Path, snapshot: bytes, current: str, refresh: str) -> int:
    """0 when FILE is byte for byte what plan renders now; else a unified diff and 1."""
    if current.encode("utf-8") == snapshot:
        click.echo(f"ok: plan snapshot {path} is up to date")
        return 0
    old = snapshot.decode("utf-8", errors="replace").splitlines(keepends=True)
    new = current.splitlines(keepends=True)
    out = sys.stdout
    for line in difflib.unified_diff(old, new, fromfile=f"{path} (committed)", tofile=f"{path} (current plan)"):
        out.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    out.flush()
    click.echo(f"error: plan snapshot {path} is out of date; refresh it with:\n  {refresh}", err=True)
    return 1


def refresh_command(
    sources: Sequence[str],
    start: datetime,
    end: datetime,
    count: int | None,
    fmt: str,
    automations: Sequence[str],
    include_skipped: bool,
    target: Path,
) -> str:
    """The command line that rewrites the snapshot with the same range and options."""
    args = ["flowspec", "plan", *sources, "--from", format_utc(start), "--to", format_utc(end)]
    if count is not None:
        args += ["--count", str(count)]
    if fmt != "text":
        args += ["--format", fmt]
    for name in automations:
        args += ["--automation", name]
    if include_skipped:
        args.append("--include-skipped")
    args += ["--output", str(target)]
    return shlex.join(args)


class atomic_write:  # noqa: N801 - used like open()
    """Write to a temporary file beside the target and rename it into place on success.

    A failed or interrupted plan never leaves a half-written snapshot or report behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = ""
        self.stream: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, self.name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
            # mkstemp creates 0600; a report or snapshot is an ordinary file.
            os.chmod(self.name, self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644)
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        # newline="": the CRLF of an ICS file and the LF of the rest are written as rendered.
        self.stream = os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self.stream

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.stream is not None
        self.stream.close()
        if exc_type is not None:
            os.unlink(self.name)
            return
        try:
            os.replace(self.name, self.path)
        except OSError as error:
            os.unlink(self.name)
            raise UserError(f"cannot write {self.path}: {error.strerror or error}") from None


def _wants_color(stream: IO[str]) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
