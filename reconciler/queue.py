"""The task queue (SPEC 6): a Huey instance chosen by `FLOWSPEC_QUEUE_URL`.

- unset (or `sqlite:///path`): `SqliteHuey`, embedded, one machine, in `flowspec-queue.db`
  beside the SQLite state database (in the working directory when the state is PostgreSQL);
- `postgresql://...`: `PostgresHuey` (SKIP LOCKED + LISTEN/NOTIFY), the same PostgreSQL that
  holds the state, so scaling out adds no component;
- `redis://...`: `RedisHuey`; the engine then keeps its rate-limit state in that Redis too.

The queue is plumbing, not memory: Huey delivers a task at most once with no acknowledgement,
so tasks only say "go look at execution N" and the database decides what is left to do
(reconciler.engine.sweep re-issues work whose task was lost). No Huey retries (their backoff has
no cap and no jitter; retry state lives on recipient rows), no result store.

SqliteHuey polls: start its consumer with a small maximum delay (`-m 0.1`) so an occurrence
starts within 2 s of its time (FACTS.md: up to 10 s otherwise).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from huey import Huey, PostgresHuey, RedisHuey
from huey.storage import SqliteStorage
from sqlalchemy.engine import make_url

from flowspec.diagnostics import UserError
from reconciler import db as dbmod

QUEUE_ENV = "FLOWSPEC_QUEUE_URL"
QUEUE_NAME_ENV = "FLOWSPEC_QUEUE_NAME"  # several deployments may share one Redis/PostgreSQL
QUEUE_FILE = "flowspec-queue.db"
QUEUE_NAME = "flowspec"
# SqliteHuey's own busy timeout (5 s) is short for several worker processes sharing a file.
SQLITE_TIMEOUT_S = 30


class LazySqliteStorage(SqliteStorage):
    """SqliteHuey's storage, creating its file and tables on first use rather than when the
    Huey object is built: importing `reconciler.tasks` (as every command that enqueues does)
    must not leave a queue file behind in whatever directory it ran from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["create_tables"] = False
        super().__init__(*args, **kwargs)

    def _create_connection(self) -> sqlite3.Connection:
        Path(self.filename).parent.mkdir(parents=True, exist_ok=True)
        conn: sqlite3.Connection = super()._create_connection()
        for ddl in self.ddl:  # all CREATE ... IF NOT EXISTS: cheap and idempotent
            conn.execute(ddl)
        return conn


class SqliteHuey(Huey):
    storage_class = LazySqliteStorage


def resolve_queue_url(option: str | None = None) -> str | None:
    """`--queue`, else `FLOWSPEC_QUEUE_URL`, else None (the embedded SQLite queue)."""
    return option or os.environ.get(QUEUE_ENV) or None


def queue_kind(url: str | None) -> str:
    """'sqlite', 'postgresql' or 'redis' (raises UserError for anything else)."""
    if not url:
        return "sqlite"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql"
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    raise UserError(
        f"unsupported queue URL '{dbmod.mask_url(url)}' ({QUEUE_ENV}): use redis://host:6379/0, "
        f"postgresql://user:password@host/dbname, or leave it unset for the embedded SQLite queue"
    )


def default_queue_path(db_url: str) -> Path:
    """`flowspec-queue.db` beside a SQLite state database, else in the working directory."""
    try:
        parsed = dbmod.normalize_url(db_url)
    except UserError:
        return Path.cwd() / QUEUE_FILE
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not (
        database.startswith("file:")
    ):
        return Path(database).resolve().parent / QUEUE_FILE
    return Path.cwd() / QUEUE_FILE


def make_huey(url: str | None, *, db_url: str, name: str | None = None, **options: Any) -> Huey:
    """The Huey instance for a queue URL (None: the embedded default beside `db_url`); its
    name is `name`, else FLOWSPEC_QUEUE_NAME, else "flowspec". Errors name the URL with its
    password masked."""
    kind = queue_kind(url)
    name = name or os.environ.get(QUEUE_NAME_ENV) or QUEUE_NAME
    common: dict[str, Any] = {"results": False, "utc": True, **options}
    try:
        if kind == "sqlite":
            path = default_queue_path(db_url)
            if url:
                database = make_url(url).database or ""
                if database:
                    path = Path(database)
            return SqliteHuey(name, filename=str(path), timeout=SQLITE_TIMEOUT_S, **common)
        assert url is not None
        if kind == "postgresql":
            # Huey speaks psycopg directly: a libpq DSN, without SQLAlchemy's +driver suffix.
            dsn = "postgresql://" + url.split("://", 1)[1]
            return PostgresHuey(name, dsn=dsn, **common)
        return RedisHuey(name, url=url, **common)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot open queue {dbmod.mask_url(url or 'sqlite')}: "
                        f"{dbmod.describe_error(exc, url or '')}") from None


def check_queue(huey: Huey, url: str | None) -> None:
    """Prove the queue is reachable (a cheap read); UserError naming the masked URL if not."""
    try:
        huey.pending_count()
    except Exception as exc:
        shown = dbmod.mask_url(url) if url else "the embedded SQLite queue"
        raise UserError(f"cannot reach queue {shown}: {dbmod.describe_error(exc, url or '')}") from None


def redis_limits_url(url: str | None) -> str | None:
    """Where rate-limit state lives besides the database: the Redis queue's server, if any."""
    return url if url and queue_kind(url) == "redis" else None
