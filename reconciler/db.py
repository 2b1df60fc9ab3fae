"""Database access for the reconciler: one URL, two engines, one schema managed by Alembic.

`sqlite:///flowspec.db` is the embedded default and upgrades its own schema on first use.
PostgreSQL is the scale-out choice; its schema moves only with `flowspec db upgrade`, because
several hosts share it and an upgrade is an operator's decision. Every error that reaches the
user names the database by its URL with the password masked (SPEC 7).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from flowspec.diagnostics import UserError
from reconciler import fastjson

DEFAULT_URL = "sqlite:///flowspec.db"
URL_ENV = "FLOWSPEC_DATABASE_URL"
# A table name of our own, so a PostgreSQL database shared with another Alembic-managed app
# never mixes the two version histories.
VERSION_TABLE = "flowspec_schema_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock that serialises writers of desired state (apply, upgrade).
APPLY_LOCK_KEY = 0x666C6F77_73706563 & 0x7FFFFFFFFFFFFFFF  # b"flowspec"
SQLITE_BUSY_TIMEOUT_MS = 60_000
CONNECT_TIMEOUT_S = 5
_WRITE = "flowspec_write"


def resolve_url(option: str | None) -> str:
    """`--db`, else `FLOWSPEC_DATABASE_URL`, else the embedded SQLite file."""
    return option or os.environ.get(URL_ENV) or DEFAULT_URL


def normalize_url(url: str) -> URL:
    """Parse a URL; `postgresql://` and `postgres://` mean the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UserError(
            f"'{mask_url(url)}' is not a database URL; use sqlite:///path/to/file.db or "
            f"postgresql://user:password@host/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UserError(
            f"unsupported database '{mask_url(url)}': flowspec stores its state in SQLite "
            f"(sqlite:///file.db) or PostgreSQL (postgresql://...)"
        )
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL as it may be shown: the password replaced by ***."""
    if isinstance(url, URL):
        if url.drivername == "postgresql+psycopg":
            url = url.set(drivername="postgresql")  # as users write it
        return url.render_as_string(hide_password=True)
    try:
        return mask_url(make_url(url))
    except Exception:
        # Not parseable: still never echo what looks like a password.
        head, sep, tail = url.partition("://")
        if sep and "@" in tail:
            cred, _, rest = tail.rpartition("@")
            user = cred.split(":", 1)[0]
            return f"{head}://{user}:***@{rest}"
        return url


def describe_error(exc: BaseException, url: str | URL) -> str:
    """One line: the driver's first line of explanation, never the password."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    password = url.password if isinstance(url, URL) else _password_of(url)
    if password:
        text = text.replace(str(password), "***")
    return text


def _password_of(url: str) -> str | None:
    try:
        pw = make_url(url).password
    except Exception:
        return None
    return str(pw) if pw else None


# --------------------------------------------------------------------------- engines

def create_engine(url: str | URL, *, memory: bool = False) -> Engine:
    """An engine with the settings flowspec relies on (pragmas, timeouts, transaction control)."""
    parsed = normalize_url(str(url)) if not isinstance(url, URL) else url
    if parsed.get_backend_name() == "sqlite":
        kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
        if memory:
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        engine = sa.create_engine(parsed, json_deserializer=fastjson.loads, **kwargs)
        _sqlite_events(engine, wal=not memory)
        return engine
    try:
        return sa.create_engine(
            parsed,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            pool_pre_ping=True,
            json_deserializer=fastjson.loads,
        )
    except NoSuchModuleError:  # pragma: no cover - psycopg is in the scale extra
        raise UserError(
            "PostgreSQL support needs psycopg: pip install 'flowspec[scale]'"
        ) from None


def _sqlite_events(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own implicit BEGIN is deferred and skips DDL; take control of BEGIN so
        # migrations are transactional and writers can ask for BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if wal:
            _enable_wal(cursor)
            # NORMAL is crash-safe in WAL mode (a killed process loses nothing committed).
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes can fail at once with "database is
        # locked" when another writer got in between (busy_timeout does not apply to that
        # upgrade); writers take the lock up front instead.
        if conn.get_execution_options().get(_WRITE, False):
            _begin_immediate(conn)
        else:
            conn.exec_driver_sql("BEGIN")


# How often a writer waiting for SQLite's write lock tries again. SQLite's own busy handler
# backs off to one try per 100 ms, so a waiter seldom lands in the short gap between two
# transactions of a writer that commits back to back (a fan-out's chunks): the take behind a
# 100,000-recipient fan-out waited up to 3.5 s for its first send. Each try costs ~10 µs.
SQLITE_LOCK_POLL_S = 0.001


def _begin_immediate(conn: Connection) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock in short, even steps (up to the busy
    timeout) instead of SQLite's backing-off ones, so writers take turns."""
    dbapi: Any = conn.connection.driver_connection
    dbapi.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    break
            time.sleep(SQLITE_LOCK_POLL_S)
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the last try fails through SQLAlchemy's errors
    finally:
        dbapi.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _enable_wal(cursor: Any) -> None:
    """WAL is a property of the file, set by whichever connection comes first. Switching needs
    an exclusive lock that SQLite does not wait for, so connections opening a new file together
    retry briefly instead of failing with "database is locked"."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: SQLite takes the write lock at BEGIN, so two writers
    queue instead of failing half-way. Commits on success, rolls back on any exception."""
    with write_connection(engine) as conn, conn.begin():
        yield conn


@contextlib.contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose every `conn.begin()` is a write transaction (as `write_transaction`),
    for a caller that runs many in a row: one pool checkout, and one liveness ping on
    PostgreSQL, instead of one per transaction."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        yield conn


def yield_write_lock(engine: Engine) -> None:
    """Between two transactions of a writer that commits many in a row: on SQLite, pause
    long enough for a writer waiting for the lock (it tries every `SQLITE_LOCK_POLL_S`) to
    get its turn. PostgreSQL's writers wait on row locks, not on one lock: no pause."""
    if engine.dialect.name == "sqlite":
        time.sleep(2 * SQLITE_LOCK_POLL_S)


def lock_writers(conn: Connection) -> None:
    """Serialise writers of desired state for the rest of this transaction.

    SQLite already holds its single write lock (BEGIN IMMEDIATE); PostgreSQL takes a
    transaction-level advisory lock, released at commit or rollback, even by a killed client.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK_KEY})


# --------------------------------------------------------------------------- schema versions


@lru_cache(maxsize=1)
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def alembic_config(conn: Connection | None = None) -> Any:
    """Alembic's Config built in code: no alembic.ini, works from an installed package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    return str(_script().get_current_head())


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    rev = ctx.get_current_revision()
    return str(rev) if rev else None


def _known(rev: str) -> bool:
    try:
        return _script().get_revision(rev) is not None
    except Exception:
        return False


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to head in one transaction; returns (from, to)."""
    from alembic import command

    with write_transaction(engine) as conn:
        lock_writers(conn)
        before = current_revision(conn)
        head = head_revision()
        if before is not None and not _known(before):
            raise UserError(_newer_schema(engine.url, before))
        if before != head:
            command.upgrade(alembic_config(conn), "head")
    return before, head


def _newer_schema(url: URL, rev: str) -> str:
    return (
        f"database {mask_url(url)} has schema version {rev}, newer than this flowspec knows "
        f"(head {head_revision()}); upgrade flowspec"
    )


def check_schema(engine: Engine) -> None:
    """Fail with an instruction unless the schema is at head (SQLite upgrades itself)."""
    with engine.connect() as conn:
        current = current_revision(conn)
    head = head_revision()
    if current == head:
        return
    if current is not None and not _known(current):
        raise UserError(_newer_schema(engine.url, current))
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    state = "has no flowspec schema yet" if current is None else f"has schema version {current}"
    raise UserError(
        f"database {mask_url(engine.url)} {state}; this flowspec needs {head}: run "
        f"`flowspec db upgrade` with the same --db or {URL_ENV}"
    )


# --------------------------------------------------------------------------- opening


@dataclass
class Database:
    engine: Engine
    url: URL
    # True when a missing SQLite file was stood in for by an empty in-memory database, so a
    # read-only command did not create a file.
    empty_standin: bool = False

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, create: bool = True, check: bool = True) -> Database:
    """Connect, prove the database is reachable and its schema current.

    `create=False` (read-only commands, `apply --dry-run`): a SQLite file that does not exist is
    not created; an empty in-memory database stands in for it.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite" and (parsed.database or ":memory:") == ":memory:":
        # Every command is its own process: an in-memory database would report an apply that
        # no other command can ever see.
        raise UserError(
            f"'{mask_url(parsed)}' is an in-memory SQLite database, gone when the command ends; "
            f"give a file, e.g. sqlite:///flowspec.db"
        )
    standin = False
    if parsed.get_backend_name() == "sqlite" and not create and not _sqlite_exists(parsed):
        engine = create_engine(parsed.set(database=":memory:"), memory=True)
        standin = True
    else:
        engine = create_engine(parsed)
    db = Database(engine, parsed, empty_standin=standin)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        engine.dispose()
        raise UserError(f"cannot reach database {mask_url(parsed)}: {describe_error(exc, parsed)}") from None
    if check:
        with database_errors(db):
            check_schema(engine)
    return db


def _sqlite_exists(url: URL) -> bool:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return True
    return Path(database).exists()


@contextlib.contextmanager
def database_errors(db: Database | URL) -> Iterator[None]:
    """Turn a driver error into one line naming the database (URL with password masked)."""
    url = db.url if isinstance(db, Database) else db
    try:
        yield
    except DBAPIError as exc:
        if exc.connection_invalidated or _is_connect_error(exc):
            raise UserError(f"cannot reach database {mask_url(url)}: {describe_error(exc, url)}") from None
        raise UserError(f"database {mask_url(url)}: {describe_error(exc, url)}") from None


def _is_connect_error(exc: DBAPIError) -> bool:
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and any(
        s in str(exc.orig).lower() for s in ("connect", "unable to open", "server closed")
    )
