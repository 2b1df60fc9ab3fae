"""`flowspec apply`: validate, compile [now, now + horizon), and make the database match.

This command reads the clock once (`--now` replaces it for planning; the rows' write times stay
real). Everything else is in `reconciler.apply`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from flowspec.commands.params import Duration, Instant
from flowspec.config import Config, Entry
from flowspec.plan import Occurrence, format_utc
from flowspec.timeparse import format_duration
from reconciler import apply as core
from reconciler import db as dbmod
from reconciler.commands.db import db_option

APPLY_FORMAT = "flowspec.apply/v1"
DEFAULT_HORIZON = "30d"
# Stored status -> plan status, to show rows in the diff format of `flowspec diff`.
PLAN_STATUS = {"pending": "scheduled", "paused": "paused", "inactive": "inactive", "cancelled": "skipped"}


# The horizon must cover something and stay within ten years of plan.
HORIZON = Duration(what="the horizon", minimum=timedelta(seconds=1), maximum=timedelta(days=3660))


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@db_option
@click.option(
    "--horizon",
    type=HORIZON,
    default=DEFAULT_HORIZON,
    show_default=True,
    help="How far ahead occurrences are written: the plan over [now, now + horizon).",
)
@click.option("--dry-run", is_flag=True, help="Print the changes apply would make; write nothing.")
@click.option(
    "--exit-code",
    is_flag=True,
    help="With --dry-run: exit 2 when there are changes, 0 when there are none.",
)
@click.option("--now", type=Instant(), help="Plan from this instant instead of the clock.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: a summary line (with --dry-run, the changes as `flowspec diff` shows them); "
    "json: flowspec.apply/v1.",
)
@click.option("--expand", is_flag=True, help="With --dry-run: list every occurrence, no folding.")
def apply(
    paths: tuple[Path, ...],
    db_url: str | None,
    horizon: timedelta,
    dry_run: bool,
    exit_code: bool,
    now: datetime | None,
    fmt: str,
    expand: bool,
) -> int:
    """Write the plan's occurrences over [now, now + horizon) into the state database.

    Inserts new occurrences as pending, updates pending ones whose time, status or overrides
    changed, cancels pending ones no longer planned (kept, with the revision that cancelled
    them), and never alters an occurrence already dispatched or finished. Each apply records a
    revision (git commit and content hash); applying the same files again changes nothing.

    \b
    Examples:
      flowspec apply                                   automations/ into sqlite:///flowspec.db
      flowspec apply --dry-run                         what would change
      flowspec apply --db postgresql://app@db/flowspec --horizon 14d
    """
    from flowspec.commands.plan import default_path, load_checked

    if exit_code and not dry_run:
        raise click.UsageError("--exit-code reports pending changes, so it goes with --dry-run")
    written_at = datetime.now(UTC)
    clock = now if now is not None else written_at.replace(microsecond=0)
    horizon_end = clock + horizon
    sources = [str(p) for p in paths] or [default_path()]

    # Invalid files never reach the database: no revision is recorded for them.
    config = load_checked(sources, now=clock, refusal="nothing was applied")
    if config is None:
        return 1

    from flowspec.compiler import plan_inputs

    inputs = plan_inputs()
    ident = core.config_identity(sources)
    database = dbmod.open_database(dbmod.resolve_url(db_url), create=not dry_run)
    try:
        desired = desired_automations(config, clock, horizon_end)
        result = core.run_apply(
            database, desired, ident=ident, inputs=inputs, now=clock, horizon_end=horizon_end,
            written_at=written_at, dry_run=dry_run, keep_changes=dry_run,
        )
        if dry_run and result.changed:
            _attach_old_specs(database, result.changed)
    finally:
        database.dispose()

    if fmt == "json":
        _write_json(result, database, ident, clock, horizon_end, horizon)
    elif dry_run:
        _write_dry_run(result, clock, horizon_end, expand=expand)
    else:
        click.echo(summary_line(result, ident))
    if dry_run and exit_code and result.counts.any:
        return 2
    return 0


# --------------------------------------------------------------------------- desired state


def desired_automations(
    config: Config, now: datetime | None = None, horizon_end: datetime | None = None
) -> Iterator[core.DesiredAutomation]:
    """The config's automations in (organization, name) order, each compiled only if needed and
    only over the range apply asks for (`now`/`horizon_end` are accepted for older callers;
    the range comes from `run_apply`)."""
    from flowspec.compiler import compile_automation

    for entry in sorted(config.automations, key=lambda e: (e.organization, e.name)):
        schedule = entry.model.spec.schedule

        def compile(lo: datetime, hi: datetime, entry: Entry[Any] = entry) -> Any:
            return compile_automation(config, entry, lo, hi)

        def spec(entry: Entry[Any] = entry) -> Mapping[str, Any]:
            return entry.model.model_dump(mode="json", exclude_none=True)  # type: ignore[no-any-return]

        yield core.DesiredAutomation(
            organization=entry.organization,
            name=entry.name,
            source=entry.source,
            timezone=schedule.execution_timezone,
            spec_hash=config.automation_hash(entry),
            compile=compile,
            spec=spec,
            is_active=schedule.is_active,
            is_paused=schedule.is_paused,
        )


# --------------------------------------------------------------------------- output


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def counts_text(c: core.Counts) -> str:
    text = f"+{c.inserted} occurrences, ~{c.updated} updated, -{c.cancelled} cancelled"
    autos = [
        f"{n} {label}"
        for n, label in (
            (c.automations_created, "created"),
            (c.automations_updated, "changed"),
            (c.automations_removed, "removed"),
        )
        if n
    ]
    if autos:
        text += "; automations " + ", ".join(autos)
    return text


def summary_line(result: core.ApplyResult, ident: core.ConfigIdentity) -> str:
    rev = f"revision {result.revision_id}: {ident.short}"
    if not result.counts.any:
        recorded = "recorded" if result.new_revision else "unchanged"
        return f"apply: no changes ({rev}, {recorded})"
    return f"apply: {counts_text(result.counts)} ({rev})"


def row_occurrence(row: Mapping[str, Any]) -> Occurrence:
    return Occurrence(
        key=row["key"],
        status=PLAN_STATUS.get(row["status"], "skipped"),  # type: ignore[arg-type]
        at=row["at"],
        local=datetime.fromisoformat(row["local"]),
        moved_from=row["moved_from"],
        moved_by=row["moved_by"],
        reason=row["reason"],
        detail=row["detail"],
        overrides=row["overrides"] or {},
        dst=row["dst"],
    )


def _changes_of(old: Occurrence, new: Occurrence) -> dict[str, tuple[Any, Any]]:
    from flowspec.diff import MODIFIED_FIELDS

    out: dict[str, tuple[Any, Any]] = {}
    for name in MODIFIED_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if name == "overrides":
            a, b = dict(a), dict(b)
        if a != b:
            out[name] = (a, b)
    return out


def automation_diff(c: core.AutomationChanges) -> Any:
    """One automation's apply changes as a `flowspec.diff.AutomationDiff`, so a dry run reads
    exactly like `flowspec diff` (cancelled rows show as removed or as now skipped)."""
    from flowspec.diff import AutomationDiff, Modified, Moved, OccurrenceChanges, diff_values

    occ = OccurrenceChanges(added=list(c.inserts))
    for u in c.updates:
        old = row_occurrence(u.row)
        new = u.occurrence or row_occurrence({**u.row, **u.values})
        changes = _changes_of(old, new)
        if old.at != new.at:
            occ.moved.append(Moved(old, new, changes))
        else:
            occ.modified.append(Modified(old, new, changes))
    for x in c.cancels:
        old = row_occurrence(x.row)
        if x.occurrence is not None:
            occ.modified.append(Modified(old, x.occurrence, _changes_of(old, x.occurrence)))
        else:
            occ.removed.append(old)
    change = {"create": "added", "remove": "removed"}.get(c.action, "changed")
    fields = []
    if c.desired is not None and c.old_spec is not None and c.action in ("update", "restore"):
        fields = diff_values(dict(c.old_spec), dict(c.desired.spec()))
    timezone = c.desired.timezone if c.desired else c.actual.timezone if c.actual else "UTC"
    return AutomationDiff(
        c.organization, c.name, change,  # type: ignore[arg-type]
        source_old=c.actual.source if c.actual else None,
        source_new=c.desired.source if c.desired else None,
        timezone=timezone, fields=fields, occurrences=occ,
        old_count=c.live_before, new_count=c.planned, compiled=True,
    )


def _attach_old_specs(database: dbmod.Database, changed: list[core.AutomationChanges]) -> None:
    """The stored spec of each changed automation, for the field-by-field lines of a dry run."""
    import sqlalchemy as sa

    from reconciler.models import automations

    ids = {(c.actual.organization, c.actual.id): c for c in changed if c.actual is not None}
    if not ids:
        return
    a = automations.c
    with dbmod.database_errors(database), database.engine.connect() as conn:
        for org in {org for org, _ in ids}:
            wanted = [i for o, i in ids if o == org]
            for row in conn.execute(
                sa.select(a.id, a.spec).where(a.organization == org, a.id.in_(wanted))
            ):
                ids[(org, row.id)].old_spec = row.spec


def _write_dry_run(result: core.ApplyResult, now: datetime, horizon_end: datetime, *, expand: bool) -> None:
    from flowspec.render.diff_text import automation_lines

    out = sys.stdout
    out.write(f"range {format_utc(now)} .. {format_utc(horizon_end)}\n")
    if result.changed:
        out.write("\n")
    for c in result.changed:
        for sign, text in automation_lines(automation_diff(c), expand=expand):
            indent = len(text) - len(text.lstrip(" "))
            line = f"{text[:indent]}{sign} {text[indent:]}" if indent else f"{sign} {text}"
            out.write(line.rstrip() + "\n")
    out.write("\n")
    if result.counts.any:
        out.write(f"apply --dry-run: would write {counts_text(result.counts)}; nothing was written\n")
    else:
        out.write("apply --dry-run: no changes\n")


def _write_json(
    result: core.ApplyResult,
    database: dbmod.Database,
    ident: core.ConfigIdentity,
    now: datetime,
    horizon_end: datetime,
    horizon: timedelta,
) -> None:
    doc: dict[str, Any] = {
        "format": APPLY_FORMAT,
        "dry_run": result.dry_run,
        "database": database.masked_url,
        "range": {"from": format_utc(now), "to": format_utc(horizon_end)},
        "horizon": format_duration(horizon),
        "revision": {
            "id": result.revision_id,
            "new": result.new_revision,
            "content_hash": ident.content_hash,
            "git_commit": ident.git_commit,
            "git_dirty": ident.git_dirty,
        },
        "changes": result.counts.to_json(),
        "no_changes": not result.counts.any,
    }
    if result.dry_run:
        doc["automations"] = [automation_diff(c).to_json() for c in result.changed]
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
