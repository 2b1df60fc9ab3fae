"""`flowspec contacts import | opt-out | opt-in`: the contacts audiences resolve to.

Reads the clock once, for the rows' write times. The rules are in `reconciler.contacts`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from flowspec.models import SLUG_PATTERN
from reconciler import contacts as core
from reconciler import db as dbmod
from reconciler.commands.db import db_option

DEFAULT_ORGANIZATION = "default"


def _organization(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not re.fullmatch(SLUG_PATTERN, value) or len(value) > 63:
        raise click.BadParameter(
            f"'{value}' is not an organization name: lowercase letters, digits and '-', "
            f"e.g. acme", ctx, param,
        )
    return value


def organization_option(func: Any) -> Any:
    return click.option(
        "--organization",
        default=DEFAULT_ORGANIZATION,
        show_default=True,
        callback=_organization,
        help="Organization (tenant) the contacts belong to.",
    )(func)


@click.group("contacts")
def contacts() -> None:
    """Import contacts and record opt-outs (audiences resolve to these contacts)."""


@contacts.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@organization_option
@db_option
@click.option("--strict", is_flag=True, help="Write nothing when any row is bad.")
def import_(file: Path, organization: str, db_url: str | None, strict: bool) -> int:
    """Upsert contacts from a CSV file, keyed by its `id` column.

    `phone` must be E.164 (+5511999990001), `tags` is split on ';', `opted_out` is true/false,
    and every other column (first_name, city, ...) is kept as an attribute a flow can use as
    {{contact.<column>}}. A bad row is reported with its line number and skipped (exit 1);
    with --strict nothing is written. An opted_out=false cell never re-subscribes a contact
    who opted out: use `flowspec contacts opt-in`.

    \b
    Examples:
      flowspec contacts import contacts.csv
      flowspec contacts import vip.csv --organization acme --strict
    """
    now = datetime.now(UTC)
    parsed = core.read_csv(file)  # a file-level problem fails before the database opens
    database = dbmod.open_database(dbmod.resolve_url(db_url))
    try:
        with dbmod.database_errors(database), dbmod.write_transaction(database.engine) as conn:
            result = core.import_parsed(conn, organization=organization, parsed=parsed, now=now,
                                        strict=strict)
    finally:
        database.dispose()
    for problem in result.problems:
        click.echo(problem.render(), err=True)
    _summary(result, organization, database.masked_url)
    return 1 if result.problems else 0


def _summary(result: core.ImportResult, organization: str, url: str) -> None:
    skipped = f"{result.skipped} bad row{'s' if result.skipped != 1 else ''}"
    if not result.written:
        click.echo(
            f"{result.file}: nothing written: {skipped} (--strict); fix them and import again",
            err=True,
        )
        return
    click.echo(
        f"{result.file}: {result.rows} rows into organization '{organization}' ({url}): "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
        + (f", {skipped} skipped" if result.skipped else "")
    )
    if result.kept_opted_out:
        n = result.kept_opted_out
        click.echo(
            f"note: {n} contact{'s' if n != 1 else ''} stay{'s' if n == 1 else ''} opted out although "
            f"the file says opted_out=false; `flowspec contacts opt-in ID` opts a contact back in",
            err=True,
        )
    if result.skipped:
        click.echo(f"error: {skipped} skipped; use --strict to write nothing when a row is bad",
                   err=True)


def _set(ids: tuple[str, ...], organization: str, db_url: str | None, opted_out: bool) -> int:
    now = datetime.now(UTC)
    database = dbmod.open_database(dbmod.resolve_url(db_url))
    try:
        with dbmod.database_errors(database), dbmod.write_transaction(database.engine) as conn:
            result = core.set_opt_out(conn, organization=organization, contact_ids=list(ids),
                                      opted_out=opted_out, now=now)
    finally:
        database.dispose()
    verb = "opted out" if opted_out else "opted in"
    if result.missing:
        for contact_id in result.missing:
            click.echo(f"error: no contact '{contact_id}' in organization '{organization}'",
                       err=True)
        click.echo("nothing changed; import the contact first or fix the id", err=True)
        return 1
    for contact_id in result.changed:
        click.echo(f"{contact_id}: {verb}")
    for contact_id in result.unchanged:
        click.echo(f"{contact_id}: already {verb}")
    return 0


@contacts.command("opt-out")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@organization_option
@db_option
def opt_out(ids: tuple[str, ...], organization: str, db_url: str | None) -> int:
    """Opt contacts out: no automation messages them again (executions already running
    check before every send). Nothing changes unless every id exists."""
    return _set(ids, organization, db_url, True)


@contacts.command("opt-in")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@organization_option
@db_option
def opt_in(ids: tuple[str, ...], organization: str, db_url: str | None) -> int:
    """Opt contacts back in (only this command does; an import never does)."""
    return _set(ids, organization, db_url, False)
