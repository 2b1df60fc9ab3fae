"""`flowspec executions list | show ID`: what ran, what is running, and each recipient's outcome."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import click

from flowspec.diagnostics import UserError
from flowspec.plan import format_utc
from reconciler import db as dbmod
from reconciler import states as st
from reconciler.commands.db import db_option
from reconciler.executions import (
    STATS_NOT_FINAL,
    ExecutionDetail,
    ExecutionSummary,
    describe_wait,
    execution_detail,
    list_executions,
)

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text: a table; json: machine-readable.",
)


@click.group("executions")
def executions() -> None:
    """Executions of automations: one per dispatched occurrence or manual trigger."""


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
            for cells in (header, *rows)]


def _when(x: ExecutionSummary) -> str:
    return "manual" if x.manual and x.at is None else format_utc(x.at) if x.at else "-"


@executions.command("list")
@db_option
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Only executions in this status (starting, running, waiting_window, "
                   "paused_circuit, finished, failed). Repeat for several.")
@click.option("--automation", metavar="[ORG/]NAME", help="Only this automation's executions.")
@click.option("--organization", "organizations", multiple=True, metavar="ORG",
              help="Only this organization. Repeat for several.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@FORMAT
def list_cmd(db_url: str | None, statuses: tuple[str, ...], automation: str | None,
             organizations: tuple[str, ...], limit: int, fmt: str) -> int:
    """The latest executions, newest first, with their stats."""
    database = dbmod.open_database(dbmod.resolve_url(db_url), create=False)
    try:
        with dbmod.database_errors(database), database.engine.connect() as conn:
            found = list_executions(conn, organizations=organizations, statuses=statuses,
                                    automation=automation, limit=limit)
    finally:
        database.dispose()
    if fmt == "json":
        json.dump({"format": "flowspec.executions/v1", "executions": [x.to_json() for x in found]},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not found:
        click.echo("no executions")
        return 0
    rows = [
        (str(x.id), x.label, _when(x), x.status, str(x.audience_size),
         *(str(x.stats[k]) if x.final else "-" for k in ("sent", "delivered", "read", "failed")),
         format_utc(x.finished_at) if x.finished_at else "-")
        for x in found
    ]
    header = ("ID", "AUTOMATION", "OCCURRENCE", "STATUS", "AUDIENCE", "SENT", "DELIVERED", "READ",
              "FAILED", "FINISHED")
    for line in _table(header, rows):
        click.echo(line)
    return 0


@executions.command("show")
@click.argument("execution_id", metavar="ID", type=int)
@db_option
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Only recipients in this status (e.g. failed). Repeat for several.")
@FORMAT
def show(execution_id: int, db_url: str | None, statuses: tuple[str, ...], fmt: str) -> int:
    """One execution: its state and stats, error codes, and every recipient's outcome."""
    database = dbmod.open_database(dbmod.resolve_url(db_url), create=False)
    try:
        with dbmod.database_errors(database), database.engine.connect() as conn:
            detail = execution_detail(conn, execution_id, status=statuses)
    finally:
        database.dispose()
    if detail is None:
        raise UserError(
            f"no execution {execution_id} in {database.masked_url}; "
            f"see the ids with `flowspec executions list`"
        )
    if fmt == "json":
        json.dump(detail.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        click.echo(render_detail(detail))
    return 0


def render_detail(d: ExecutionDetail) -> str:
    x = d.summary
    lines = [
        f"execution {x.id}: {x.label}",
        f"occurrence: {x.occurrence_key or '-'}" + (" (manual)" if x.manual else "")
        + (f" at {format_utc(x.at)}" if x.at else ""),
        f"status:     {describe_wait(x)}" + (f" ({x.reason})" if x.reason and x.status != st.EX_PAUSED_CIRCUIT else ""),
        f"channel:    {x.channel or '-'}",
        f"started:    {format_utc(x.started_at) if x.started_at else '-'}",
        f"finished:   {format_utc(x.finished_at) if x.finished_at else '-'}",
        f"audience:   {x.audience_size} recipient(s), {x.opted_out} opted out (not messaged)",
        "stats:      " + (", ".join(f"{k} {v}" for k, v in x.stats.items()) if x.final
                             else STATS_NOT_FINAL),
        "recipients: " + (", ".join(f"{n} {s}" for s, n in sorted(d.counts.items())) or "none"),
    ]
    if d.errors:
        lines.append("errors:     " + ", ".join(f"{code} ×{n}" for code, n in d.errors.items()))
    if d.recipients:
        rows = []
        for r in d.recipients:
            sent = [m for m in r.messages if m["message_id"]]
            rows.append((
                r.contact_id, r.phone or "-", r.status, str(r.attempts), r.error_code or "-",
                ", ".join(f"{m['node']}:{m['status']}" for m in r.messages) or "-",
                (r.error or "")[:60] if r.error_code else (sent[-1]["message_id"] if sent else ""),
            ))
        lines.append("")
        lines += _table(("CONTACT", "PHONE", "STATUS", "ATTEMPTS", "ERROR", "MESSAGES", "DETAIL"), rows)
    return "\n".join(lines)
