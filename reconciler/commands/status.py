"""`flowspec status`: applied and attempted revisions, drift of the files, each automation's state."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler import apply as core
from reconciler import db as dbmod
from reconciler.commands.db import db_option
from reconciler.executions import collect_executions, render_executions_text
from reconciler.status import collect_status, render_text


@click.command("status")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: a summary and a table; json: flowspec.status/v1.",
)
@click.option(
    "--organization",
    "organizations",
    multiple=True,
    metavar="ORG",
    help="Only automations of this organization. Repeat for several.",
)
@click.option("--include-removed", is_flag=True, help="Also list automations removed from the files.")
def status(
    paths: tuple[Path, ...],
    db_url: str | None,
    fmt: str,
    organizations: tuple[str, ...],
    include_removed: bool,
) -> int:
    """Show the applied revision, the last attempted one when it differs, whether the files in
    PATHS (default: automations/) have drifted from what is applied, and per automation: next
    send, last execution, execution count and pending occurrences."""
    from flowspec.commands.plan import default_path

    sources = [str(p) for p in paths] or [default_path()]
    missing = [s for s in sources if not Path(s).exists()]
    # Drift needs the files; without them status still reports the database.
    files = None if missing else core.config_identity(sources)
    database = dbmod.open_database(dbmod.resolve_url(db_url), create=False)
    try:
        with dbmod.database_errors(database), database.engine.connect() as conn:
            report = collect_status(
                conn, database=database.masked_url, files=files, organizations=organizations,
                include_removed=include_removed,
            )
            # Executions, waits and open breakers (issue 7): reconciler.executions.
            runs = collect_executions(conn, organizations=organizations)
    finally:
        database.dispose()
    if fmt == "json":
        json.dump({**report.to_json(), "executions": runs.to_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        click.echo(render_text(report))
        click.echo("\n".join(["", *render_executions_text(runs)]))
        if missing:
            click.echo(f"files:    {', '.join(missing)} not found; drift not checked", err=True)
    return 0
