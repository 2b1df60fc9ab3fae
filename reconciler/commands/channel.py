"""`flowspec channel list | resume NAME`: the Channels, their circuit breakers, and clearing one.

A breaker opens when the API says "stop sending from this number" (spam-rate limit 131048, an
expired token, ...; SPEC 6.8). Every execution on that Channel pauses with nothing lost; only an
operator clears it, after fixing the cause, with `flowspec channel resume NAME`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from flowspec.diagnostics import UserError
from flowspec.plan import format_utc
from flowspec.suggest import did_you_mean
from reconciler import db as dbmod
from reconciler.commands.db import db_option
from reconciler.executions import CircuitInfo, circuits


@click.group("channel")
def channel() -> None:
    """Channels (WhatsApp numbers, outbox files) and their circuit breakers."""


def _config_channels(paths: Sequence[Path]) -> dict[tuple[str, str], dict[str, Any]]:
    from flowspec.commands.plan import default_path
    from flowspec.config import load_config

    sources = [str(p) for p in paths] or [default_path()]
    if any(not Path(s).exists() for s in sources):
        return {}
    config = load_config(sources)
    return {key: entry.model.spec.model_dump(mode="json") for key, entry in config.channels.items()}


@channel.command("list")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@db_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_cmd(paths: tuple[Path, ...], db_url: str | None, fmt: str) -> int:
    """Every Channel of the config in PATHS (default automations/) and every breaker the database
    knows, with its state, the error that opened it and the executions it holds."""
    specs = _config_channels(paths)
    database = dbmod.open_database(dbmod.resolve_url(db_url), create=False)
    try:
        with dbmod.database_errors(database), database.engine.connect() as conn:
            known = {(c.organization, c.channel): c for c in circuits(conn)}
    finally:
        database.dispose()
    keys = sorted(set(specs) | set(known))
    if fmt == "json":
        doc = {
            "format": "flowspec.channels/v1",
            "channels": [
                {
                    "organization": org, "name": name, "in_config": (org, name) in specs,
                    "type": specs.get((org, name), {}).get("type"),
                    "messages_per_second": specs.get((org, name), {}).get("messages_per_second"),
                    "daily_unique_recipients": specs.get((org, name), {}).get("daily_unique_recipients"),
                    "circuit": known[(org, name)].to_json() if (org, name) in known else None,
                }
                for org, name in keys
            ],
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not keys:
        click.echo("no channels")
        return 0
    rows = []
    for org, name in keys:
        spec = specs.get((org, name), {})
        c = known.get((org, name))
        rows.append((
            f"{org}/{name}", str(spec.get("type", "(not in config)")),
            f"{spec['messages_per_second']}/s" if spec.get("messages_per_second") else "-",
            str(spec.get("daily_unique_recipients") or "-"), _circuit_text(c),
        ))
    header = ("CHANNEL", "TYPE", "RATE", "DAILY UNIQUE", "CIRCUIT")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for cells in (header, *rows):
        click.echo("  ".join(x.ljust(w) for x, w in zip(cells, widths, strict=True)).rstrip())
    return 0


def _circuit_text(c: CircuitInfo | None) -> str:
    if c is None or c.state != "open":
        return "closed"
    when = format_utc(c.opened_at) if c.opened_at else "?"
    return (f"OPEN since {when}: {c.code or '-'} {c.reason or ''}".rstrip()
            + f"; {c.paused_executions} execution(s) paused")


@channel.command("resume")
@click.argument("name")
@db_option
@click.option("--organization", metavar="ORG",
              help="The Channel's organization (needed only when several have a Channel NAME).")
@click.option("--queue", "queue_url", metavar="URL",
              help="Queue the paused executions' work goes to (default: $FLOWSPEC_QUEUE_URL, "
                   "else the embedded SQLite queue).")
def resume(name: str, db_url: str | None, organization: str | None, queue_url: str | None) -> int:
    """Close the circuit breaker of Channel NAME: the executions it paused continue sending.

    Fix the cause first (a new access token, the number's quality rating): resuming a Channel
    the API still refuses opens the breaker again at the first send.
    """
    from reconciler import engine as eng
    from reconciler.queue import make_huey, resolve_queue_url
    from reconciler.serve import tasks_module

    url = dbmod.resolve_url(db_url)
    context = eng.open_engine(url)
    try:
        with dbmod.database_errors(context.database), context.db.connect() as conn:
            everything = circuits(conn)
        matches = [c for c in everything if c.channel == name
                   and (organization is None or c.organization == organization)]
        if not matches:
            names = sorted({c.channel for c in everything})
            hint = did_you_mean(name, names) if names else ""
            raise UserError(
                f"no circuit breaker for channel '{name}'"
                f"{' in organization ' + organization if organization else ''} in "
                f"{context.database.masked_url}{hint}; `flowspec channel list` shows them"
            )
        orgs = sorted({c.organization for c in matches})
        if len(orgs) > 1:
            raise UserError(
                f"channel '{name}' exists in several organizations ({', '.join(orgs)}); "
                f"say which with --organization"
            )
        target = matches[0]
        if target.state != "open":
            click.echo(f"channel {target.organization}/{name}: circuit already closed; nothing to do")
            return 0
        qurl = resolve_queue_url(queue_url)
        enqueue = tasks_module(qurl, url).enqueue_for(make_huey(qurl, db_url=url))
        now = datetime.now(UTC)
        with dbmod.database_errors(context.database):
            resumed = eng.resume_channel(context, target.organization, name, now=now,
                                         enqueue=enqueue)
    finally:
        context.close()
    n = _count(resumed)
    click.echo(
        f"channel {target.organization}/{name}: circuit closed (was open since "
        f"{format_utc(target.opened_at) if target.opened_at else '?'}: {target.code or '-'}); "
        f"{n} execution(s) resumed"
    )
    return 0


def _count(result: Any) -> int:
    if isinstance(result, int):
        return result
    try:
        return len(result)
    except TypeError:
        return 0
