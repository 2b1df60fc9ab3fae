"""`flowspec db upgrade | current`: the schema of the state database, by Alembic migration.

Also home of `db_option`, the `--db URL` option every reconciler command shares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler import db as dbmod

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    """`--db URL`: the state database (else FLOWSPEC_DATABASE_URL, else sqlite:///flowspec.db)."""
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        help=f"State database: sqlite:///file.db or postgresql://user:password@host/db. "
        f"Default: ${dbmod.URL_ENV}, else {dbmod.DEFAULT_URL}.",
    )(func)


@click.group("db")
def db() -> None:
    """Manage the state database's schema (Alembic migrations shipped with flowspec).

    The embedded SQLite database upgrades itself on first use. A PostgreSQL database is
    shared by every host running flowspec, so its schema moves only with `flowspec db upgrade`.
    """


@db.command("upgrade")
@db_option
def upgrade(db_url: str | None) -> int:
    """Bring the schema to the version this flowspec needs (safe to run twice)."""
    database = dbmod.open_database(dbmod.resolve_url(db_url), check=False)
    try:
        with dbmod.database_errors(database):
            before, head = dbmod.upgrade(database.engine)
    finally:
        database.dispose()
    if before == head:
        click.echo(f"database {database.masked_url}: schema already at {head}")
    else:
        click.echo(f"database {database.masked_url}: schema upgraded {before or 'empty'} → {head}")
    return 0


@db.command("current")
@db_option
def current(db_url: str | None) -> int:
    """Show the schema version of the database and the one this flowspec needs."""
    database = dbmod.open_database(dbmod.resolve_url(db_url), create=False, check=False)
    try:
        with dbmod.database_errors(database), database.engine.connect() as conn:
            rev = None if database.empty_standin else dbmod.current_revision(conn)
    finally:
        database.dispose()
    head = dbmod.head_revision()
    if rev == head:
        click.echo(f"{rev} (head)")
    elif rev is None:
        click.echo(f"empty (this flowspec needs {head}; run `flowspec db upgrade`)")
    else:
        click.echo(f"{rev} (this flowspec needs {head}; run `flowspec db upgrade`)")
    return 0
