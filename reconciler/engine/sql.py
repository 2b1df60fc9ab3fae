"""Small SQL helpers shared by the engine modules: dialect inserts, row locks, id lists,
chunking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

T = TypeVar("T")


def insert(conn: Connection, table: sa.Table) -> Any:
    """An INSERT with `on_conflict_do_nothing/update` for this connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def for_update(conn: Connection, query: sa.Select[Any], *, skip_locked: bool = False) -> sa.Select[Any]:
    """Lock the selected rows until commit on PostgreSQL. SQLite needs nothing: a write
    transaction (BEGIN IMMEDIATE) already holds the database's single write lock."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=skip_locked)
    return query


def among(conn: Connection, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`column IN values`. On PostgreSQL as `column = ANY(:array)`: one parameter whatever the
    batch size, so the statement text is the same every time and both SQLAlchemy and psycopg
    reuse it (an expanding IN of 500 ids re-rendered and re-parsed the query per batch: a
    tenth of a worker's CPU, measured)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
