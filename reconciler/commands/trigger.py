"""`flowspec trigger NAME`: one execution of an automation now, outside its schedule.

The original design's `POST /flow-automations/{id}/start`; like `kubectl create job
--from=cronjob/...` or a Temporal schedule trigger. The run is recorded as an occurrence of its
own, `<org>/<name>/manual-<UTC timestamp>`, and meets the same rules as a scheduled one: the
overlap policy when it starts, the rate limits always, the execution window and day rules
unless `--ignore-window`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
import sqlalchemy as sa

from flowspec.commands.params import Duration, Instant
from flowspec.diagnostics import UserError
from flowspec.suggest import did_you_mean
from reconciler import db as dbmod
from reconciler.commands.db import db_option
from reconciler.commands.run import Drain, _stats_lines


@click.command("trigger")
@click.argument("name", metavar="[ORG/]NAME")
@db_option
@click.option("--organization", metavar="ORG", help="The automation's organization (needed only "
              "when several organizations have an automation NAME; ORG/NAME works too).")
@click.option("--ignore-window", is_flag=True,
              help="Send even outside the execution window and on blocked days (weekends, "
                   "holidays, blackout dates). Rate limits and the overlap policy still apply.")
@click.option("--run", "in_process", is_flag=True,
              help="Run the execution in this process and print its stats (no worker needed), "
                   "as `flowspec run` does.")
@click.option("--queue", "queue_url", metavar="URL",
              help="Queue for the execution's work without --run (default: $FLOWSPEC_QUEUE_URL, "
                   "else the embedded SQLite queue).")
@click.option("--max-wait", type=Duration(what="--max-wait"), default="60s", show_default=True,
              help="With --run: longest pause for held-back recipients; later work stays queued "
                   "in the database.")
@click.option("--config", "config_paths", multiple=True, metavar="PATH",
              help="With --run: the config root the automation comes from (default: "
                   "$FLOWSPEC_CONFIG, else automations/).")
@click.option("--now", type=Instant(), help="Trigger as if the clock said this instant.")
def trigger(
    name: str,
    db_url: str | None,
    organization: str | None,
    ignore_window: bool,
    in_process: bool,
    queue_url: str | None,
    max_wait: timedelta,
    config_paths: tuple[str, ...],
    now: datetime | None,
) -> int:
    """Start one execution of automation NAME now, outside its schedule.

    Exit 0 when it started (or was queued behind a running execution under overlap_policy
    queue), 1 when the overlap policy skipped it or the automation is not applied.

    \b
    Examples:
      flowspec trigger daily-promo                 workers send it
      flowspec trigger acme/daily-promo --run      send it from this process
      flowspec trigger daily-promo --ignore-window
    """
    from reconciler import engine as eng

    if "/" in name:
        org_part, _, name = name.partition("/")
        if organization and organization != org_part:
            raise click.UsageError(f"--organization {organization} contradicts {org_part}/{name}")
        organization = org_part
    url = dbmod.resolve_url(db_url)
    clock = eng.OffsetClock(now if now is not None else datetime.now(UTC))
    context = eng.open_engine(url, config=_config_loader(config_paths) if in_process else None)
    try:
        with dbmod.database_errors(context.database):
            organization = _organization_of(context, name, organization)
            enqueue, where = _enqueue(in_process, queue_url, url)
            result = eng.trigger(context, organization, name, now=clock(),
                                 ignore_window=ignore_window, enqueue=enqueue)
        label = f"{organization}/{name}"
        if result.status == eng.states.OCC_SKIPPED_OVERLAP:
            click.echo(
                f"skipped: {label} has an execution still running and its overlap_policy is "
                f"skip; recorded as {result.key} (skipped_overlap)", err=True,
            )
            return 1
        if result.status == eng.states.OCC_QUEUED:
            click.echo(
                f"queued: {result.key} starts when the running execution of {label} ends "
                f"(overlap_policy queue)"
            )
            return 0
        assert result.execution_id is not None
        click.echo(f"triggered {label}: occurrence {result.key}, execution {result.execution_id}"
                   + ("" if in_process else f", enqueued on {where}"))
        if not in_process:
            return 0
        from reconciler.executions import list_executions, live_counts

        drain = Drain(context, clock=clock, max_wait=max_wait, ids=[result.execution_id])
        context.settings = eng.EngineSettings(pass_budget=2.0, parallelism=1)  # as `run`
        with dbmod.database_errors(context.database):
            drain.run(None)
            with context.db.connect() as conn:
                summary = list_executions(conn, ids=drain.ids, limit=None)
                live = live_counts(conn, drain.ids)
        click.echo("")
        for x in summary:
            click.echo(_stats_lines(x, live.get(x.id, {}), drain))
    finally:
        context.close()
    return 0


def _config_loader(paths: tuple[str, ...]) -> Any:
    """The config for fan-out in this process: --config, else $FLOWSPEC_CONFIG, else the default
    root, read once when the execution starts."""
    import os

    from flowspec.commands.plan import default_path
    from flowspec.config import load_config
    from reconciler.engine.context import CONFIG_ENV

    sources = list(paths) or (os.environ.get(CONFIG_ENV) or "").split(os.pathsep)
    sources = [s for s in sources if s] or [default_path()]
    return lambda: load_config(sources)


def _organization_of(context: Any, name: str, organization: str | None) -> str:
    from reconciler.models import automations

    a = automations.c
    with context.db.connect() as conn:
        rows = conn.execute(
            sa.select(a.organization, a.name).where(a.removed_at.is_(None))
        ).all()
    orgs = sorted({r.organization for r in rows if r.name == name
                   and (organization is None or r.organization == organization)})
    if not orgs:
        names = sorted({r.name for r in rows})
        where = f" in organization '{organization}'" if organization else ""
        raise UserError(
            f"no applied automation '{name}'{where} in {context.database.masked_url}"
            f"{did_you_mean(name, names) if names else ''}; run `flowspec apply` first, "
            f"or see the names with `flowspec status`"
        )
    if len(orgs) > 1:
        raise UserError(
            f"automation '{name}' exists in several organizations ({', '.join(orgs)}); "
            f"say which with ORG/{name} or --organization"
        )
    return orgs[0]


def _enqueue(in_process: bool, queue_url: str | None, db_url: str) -> tuple[Any, str]:
    """Where the execution's work goes: nowhere (this process drains it) or the queue."""
    if in_process:
        return None, "this process"
    from reconciler.queue import make_huey, resolve_queue_url
    from reconciler.serve import describe_queue, tasks_module

    url = resolve_queue_url(queue_url)
    tasks = tasks_module(url, db_url)
    return tasks.enqueue_for(make_huey(url, db_url=db_url)), describe_queue(url, db_url)
