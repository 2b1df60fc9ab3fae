"""The state database: URLs, masking, reachability, schema versions and migrations (SPEC 5, 7)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from reconciler_helpers import apply_args, execute, invoke, invoke_subprocess, read

from flowspec.diagnostics import UserError
from reconciler import db as dbmod

ConfigDir = Callable[..., Path]


# --------------------------------------------------------------------------- URLs


def test_postgresql_urls_use_the_psycopg_driver() -> None:
    """postgresql:// and postgres:// select psycopg 3; explicit drivers are kept."""
    assert dbmod.normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert dbmod.normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert dbmod.normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_unsupported_or_malformed_urls_are_user_errors() -> None:
    """A MySQL URL or a non-URL is refused with what to write instead, password masked."""
    with pytest.raises(UserError, match=r"unsupported database 'mysql://u:\*\*\*@h/db'"):
        dbmod.normalize_url("mysql://u:pw@h/db")
    with pytest.raises(UserError, match="is not a database URL"):
        dbmod.normalize_url("not a url")


def test_malformed_url_through_the_cli_is_one_line_with_the_password_masked(config_dir: ConfigDir) -> None:
    """A URL whose port is not a number, or whose host is cut short, is a user error (exit 1), not a crash."""
    root = config_dir(daily=None)
    for url in ("postgresql://u:s3cret@127.0.0.1:notaport/x", "postgresql://u:s3cret@[::1/x"):
        result = invoke(*apply_args(root, url))
        assert result.code == 1, result.output
        assert "s3cret" not in result.output and "internal error" not in result.output
        assert result.err.strip().splitlines()[-1].startswith("error: 'postgresql://u:***@")
        assert "is not a database URL" in result.err


def test_in_memory_sqlite_is_refused(config_dir: ConfigDir) -> None:
    """sqlite:// and sqlite:///:memory: would vanish with the process: apply and status refuse them."""
    root = config_dir(daily=None)
    for url in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        for args in (apply_args(root, url), ["status", str(root), "--db", url]):
            result = invoke(*args)
            assert result.code == 1, result.output
            assert "in-memory" in result.err and "sqlite:///flowspec.db" in result.err
            assert not result.out.startswith("apply:")


def test_mask_url_hides_the_password() -> None:
    """The password never appears in a URL flowspec prints."""
    assert dbmod.mask_url("postgresql://app:s3cret@db.example:5432/flow") == "postgresql://app:***@db.example:5432/flow"
    assert dbmod.mask_url("postgresql+psycopg://app:s3cret@h/x") == "postgresql://app:***@h/x"
    assert dbmod.mask_url("sqlite:///flowspec.db") == "sqlite:///flowspec.db"
    assert "s3cret" not in dbmod.mask_url("weird://app:s3cret@h@x")


def test_database_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--db wins over FLOWSPEC_DATABASE_URL, which wins over the embedded default."""
    monkeypatch.delenv(dbmod.URL_ENV, raising=False)
    assert dbmod.resolve_url(None) == "sqlite:///flowspec.db"
    monkeypatch.setenv(dbmod.URL_ENV, "sqlite:///env.db")
    assert dbmod.resolve_url(None) == "sqlite:///env.db"
    assert dbmod.resolve_url("sqlite:///opt.db") == "sqlite:///opt.db"


def test_apply_uses_the_environment_url(tmp_path: Path, config_dir: ConfigDir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --db, apply writes to FLOWSPEC_DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv(dbmod.URL_ENV, url)
    root = config_dir(daily=None)
    args = [a for a in apply_args(root, "x") if a not in ("--db", "x")]
    assert invoke(*args).code == 0
    assert read(url, "SELECT count(*) AS n FROM occurrences")[0]["n"] == 10


# --------------------------------------------------------------------------- reachability


def test_unreachable_postgresql_is_one_line_with_the_password_masked(config_dir: ConfigDir) -> None:
    """A database that cannot be reached: exit 1, one line naming the URL, password masked."""
    root = config_dir(daily=None)
    # The real entry point once (a child process costs ~1 s); the others through the same
    # boundary in-process.
    for run, args in ((invoke_subprocess, apply_args(root, "postgresql://u:secret@127.0.0.1:1/x")),
                      (invoke, ["status", str(root), "--db", "postgresql://u:secret@127.0.0.1:1/x"]),
                      (invoke, ["db", "upgrade", "--db", "postgresql://u:secret@127.0.0.1:1/x"])):
        result = run(*args)
        assert result.code == 1, result.output
        assert "secret" not in result.output
        lines = result.err.strip().splitlines()
        assert lines[-1].startswith("error: cannot reach database postgresql://u:***@127.0.0.1:1/x: ")
        assert len([line for line in lines if line.startswith("error:")]) == 1
        assert "Traceback" not in result.output


def test_unreachable_sqlite_file_is_a_user_error(tmp_path: Path, config_dir: ConfigDir) -> None:
    """A SQLite file in a folder that does not exist: exit 1 and the URL, no traceback."""
    url = f"sqlite:///{tmp_path / 'missing' / 'state.db'}"
    result = invoke(*apply_args(config_dir(daily=None), url))
    assert result.code == 1
    assert f"error: cannot reach database {url}: unable to open database file" in result.err


# --------------------------------------------------------------------------- schema versions


def test_sqlite_upgrades_itself_on_first_use(sqlite_url: str, config_dir: ConfigDir) -> None:
    """The embedded default needs no `db upgrade`: the first apply creates the schema, and an
    apply against a file left at an older schema brings it to head."""
    from alembic import command

    assert invoke(*apply_args(config_dir(daily=None), sqlite_url)).code == 0
    result = invoke("db", "current", "--db", sqlite_url)
    assert result.out.strip() == f"{dbmod.head_revision()} (head)"

    older = sqlite_url.replace("fresh.db", "older.db")
    database = dbmod.open_database(older, check=False)
    with dbmod.write_transaction(database.engine) as conn:
        command.upgrade(dbmod.alembic_config(conn), "0001")
    database.dispose()
    assert invoke("db", "current", "--db", older).out.startswith("0001 ")
    assert invoke(*apply_args(config_dir(daily=None), older)).code == 0
    assert invoke("db", "current", "--db", older).out.strip() == f"{dbmod.head_revision()} (head)"


def test_a_sqlite_file_with_sent_messages_migrates_down_and_up_keeping_every_row(
    tmp_path: Path
) -> None:
    """Migrations that rebuild SQLite tables (0005) work on a file holding a finished campaign
    with foreign keys enforced: down to 0004 and back to head (by the next run's own upgrade),
    every recipient and message kept and no reference broken."""
    from alembic import command
    from process_helpers import copy_examples

    copy_examples(tmp_path / "automations")
    now = "2026-12-02T11:30:00Z"  # the daily check-in is due (test_cli_run)
    assert invoke("run", "automations", "--now", now, "--no-progress", cwd=tmp_path).code == 0
    url = f"sqlite:///{tmp_path / 'flowspec.db'}"
    counted = "SELECT (SELECT count(*) FROM recipients) AS r, (SELECT count(*) FROM messages) AS m"
    before = read(url, counted)
    assert before == [{"r": 4, "m": 4}]
    database = dbmod.open_database(url, check=False)
    with dbmod.write_transaction(database.engine) as conn:
        command.downgrade(dbmod.alembic_config(conn), "0004")
    database.dispose()
    assert read(url, counted) == before
    again = invoke("run", "automations", "--now", now, "--no-progress", cwd=tmp_path)
    assert again.code == 0, again.output
    assert invoke("db", "current", "--db", url).out.strip() == f"{dbmod.head_revision()} (head)"
    assert read(url, counted) == before
    assert read(url, "PRAGMA foreign_key_check") == []


def test_concurrent_first_use_of_sqlite_migrates_once(sqlite_url: str) -> None:
    """Several processes opening a new SQLite file at once all end up on one migrated schema."""
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            dbmod.open_database(sqlite_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    rows = read(sqlite_url, f"SELECT version_num FROM {dbmod.VERSION_TABLE}")
    assert rows == [{"version_num": dbmod.head_revision()}]


def test_postgresql_without_schema_asks_for_db_upgrade(postgres_url: str, config_dir: ConfigDir) -> None:
    """PostgreSQL is never migrated behind the operator's back: commands say to run db upgrade."""
    root = config_dir(daily=None)
    result = invoke(*apply_args(root, postgres_url))
    assert result.code == 1
    assert "has no flowspec schema yet" in result.err and "run `flowspec db upgrade`" in result.err
    assert invoke("db", "current", "--db", postgres_url).out.startswith("empty")

    result = invoke("db", "upgrade", "--db", postgres_url)
    assert result.code == 0 and f"schema upgraded empty → {dbmod.head_revision()}" in result.out
    assert "already at" in invoke("db", "upgrade", "--db", postgres_url).out
    assert invoke(*apply_args(root, postgres_url)).code == 0


def test_outdated_postgresql_schema_is_named_with_both_versions(postgres_url: str, config_dir: ConfigDir) -> None:
    """A schema behind head: apply, its dry run and status give its version, the one needed and
    the command to run, and leave the schema as it was."""
    from alembic import command

    database = dbmod.open_database(postgres_url, check=False)
    with dbmod.write_transaction(database.engine) as conn:
        command.upgrade(dbmod.alembic_config(conn), "0001")
    database.dispose()
    root = config_dir(daily=None)
    for args in (apply_args(root, postgres_url), apply_args(root, postgres_url, "--dry-run"),
                 ["status", str(root), "--db", postgres_url]):
        result = invoke(*args)
        assert result.code == 1, result.output
        assert f"has schema version 0001; this flowspec needs {dbmod.head_revision()}: run " \
               "`flowspec db upgrade`" in result.err
    assert read(postgres_url, f"SELECT version_num FROM {dbmod.VERSION_TABLE}") == [{"version_num": "0001"}]


def test_schema_newer_than_the_code_is_refused(db_url: str, config_dir: ConfigDir) -> None:
    """A database migrated by a newer flowspec is not touched by an older one."""
    execute(db_url, f"UPDATE {dbmod.VERSION_TABLE} SET version_num = 'ffff'")
    result = invoke(*apply_args(config_dir(daily=None), db_url))
    assert result.code == 1 and "schema version ffff, newer than this flowspec knows" in result.err


def test_models_and_migrations_agree(db_url: str) -> None:
    """The migrated schema is exactly what the models declare (no autogenerate diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from reconciler.models import Base

    engine = dbmod.create_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": dbmod.VERSION_TABLE}
            )
            diffs = [d for d in compare_metadata(ctx, Base.metadata)
                     if not (d[0] == "remove_table" and d[1].name == dbmod.VERSION_TABLE)]
    finally:
        engine.dispose()
    assert diffs == []


# Tables without an organization column, each with the reason. A new table lands here only with
# a reason a reviewer accepts; everything else is scoped per tenant.
UNSCOPED = {
    "revisions": "one apply of a config root, which may hold several organizations",
    "rate_buckets": "engine (0003): GCRA state keyed by a rate-limit key, not a tenant row",
}


def test_every_table_is_scoped_by_organization(db_url: str) -> None:
    """Tenant scoping: every table carries an organization column, but the listed exceptions."""
    engine = dbmod.create_engine(db_url)
    try:
        inspector = sa.inspect(engine)
        tables = [t for t in inspector.get_table_names() if t != dbmod.VERSION_TABLE]
        unscoped = {t for t in tables if "organization" not in {c["name"] for c in inspector.get_columns(t)}}
    finally:
        engine.dispose()
    assert unscoped <= set(UNSCOPED)
    assert "revisions" in unscoped and {"occurrences", "automations", "executions"} <= set(tables)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    """SQLite connections get WAL, a busy timeout and enforced foreign keys."""
    database = dbmod.open_database(sqlite_url)
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == dbmod.SQLITE_BUSY_TIMEOUT_MS
    finally:
        database.dispose()


def test_a_sqlite_writer_waiting_for_the_lock_gets_it_between_a_bulk_writers_transactions(
    tmp_path: Path,
) -> None:
    """A writer that commits back to back (a fan-out's chunks) lets a waiting writer in at its
    next pause, not after its whole run (SQLite's own busy handler backs off to 100 ms tries)."""
    engine = dbmod.create_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with dbmod.write_transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (seq INTEGER, who TEXT)")
    first_in = threading.Event()

    def bulk_writer() -> None:
        for seq in range(40):
            with dbmod.write_transaction(engine) as conn:
                conn.exec_driver_sql(f"INSERT INTO t VALUES ({seq}, 'bulk')")
                first_in.set()
                time.sleep(0.01)  # a chunk's worth of writing, holding the lock
            dbmod.yield_write_lock(engine)

    writer = threading.Thread(target=bulk_writer)
    writer.start()
    assert first_in.wait(10)
    with dbmod.write_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (-1, 'waiter')")
    writer.join(30)
    with engine.connect() as conn:
        order = [who for (who,) in conn.exec_driver_sql("SELECT who FROM t ORDER BY rowid")]
    engine.dispose()
    assert len(order) == 41
    # In at one of the bulk writer's first pauses (a loaded machine may miss a few), where the
    # old backing-off wait came in near the end of the 40 or after it.
    assert order.index("waiter") <= 8


def test_a_sqlite_writer_gives_up_after_the_busy_timeout_with_a_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write lock held longer than the busy timeout fails the waiting writer with
    SQLAlchemy's OperationalError, and its connection keeps the busy timeout."""
    path = tmp_path / "held.db"
    engine = dbmod.create_engine(f"sqlite:///{path}")
    with dbmod.write_transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(dbmod, "SQLITE_BUSY_TIMEOUT_MS", 200)
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="locked"), \
            dbmod.write_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert time.monotonic() - started < 10
    holder.rollback()
    holder.close()
    monkeypatch.undo()
    with dbmod.write_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == dbmod.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()
