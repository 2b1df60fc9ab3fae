"""The queue: Huey chosen by FLOWSPEC_QUEUE_URL, and a real `huey_consumer` process draining a
real execution to the stand-in API (SqliteHuey on a SQLite state database; RedisHuey on
PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from engine_support import (
    ENV,
    ORG,
    TOKEN,
    add_contacts,
    apply,
    automation_doc,
    channel_doc,
    engine_for,
    scalar,
    write_repo,
)
from huey import PostgresHuey, RedisHuey

from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler import engine as eng
from reconciler.queue import SqliteHuey, default_queue_path, make_huey, queue_kind
from reconciler.standin import StandIn


def test_the_queue_url_picks_the_huey_backend(tmp_path: Path, redis_url: str,
                                              postgres_url: str) -> None:
    """Unset: SqliteHuey in flowspec-queue.db beside the SQLite state; postgresql:// (with or
    without +psycopg): PostgresHuey; redis://: RedisHuey."""
    db = f"sqlite:///{tmp_path / 'state' / 'flowspec.db'}"
    h = make_huey(None, db_url=db)
    assert isinstance(h, SqliteHuey)
    assert default_queue_path(db) == tmp_path / "state" / "flowspec-queue.db"
    assert not (tmp_path / "state" / "flowspec-queue.db").exists()  # nothing until first use
    assert h.pending_count() == 0
    assert (tmp_path / "state" / "flowspec-queue.db").exists()
    assert isinstance(make_huey(redis_url, db_url=db), RedisHuey)
    assert isinstance(make_huey(postgres_url, db_url=db), PostgresHuey)
    assert isinstance(make_huey(postgres_url.replace("+psycopg", ""), db_url=db), PostgresHuey)


def test_a_bad_queue_url_is_named_with_its_password_masked(tmp_path: Path) -> None:
    """An unknown scheme or an unreachable server is a UserError that shows the URL without
    the password."""
    with pytest.raises(UserError, match=r"amqp://u:\*\*\*@host") as bad:
        queue_kind("amqp://u:secret@host/x")
    assert "secret" not in str(bad.value)
    with pytest.raises(UserError, match=r"cannot open queue postgresql://u:\*\*\*@127.0.0.1:1/x") as down:
        make_huey("postgresql://u:secret@127.0.0.1:1/x", db_url="sqlite:///x.db")
    assert "secret" not in str(down.value)


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as server:
        yield server


def _drain_with_consumer(db_url: str, queue_url: str | None, tmp_path: Path, api: StandIn,
                         n: int) -> None:
    ids = add_contacts(db_url, n)
    root = write_repo(tmp_path / "cfg", channel_doc(api.base_url, api.phone_number_id),
                      [automation_doc("promo", contact_ids=ids)])
    apply(root, db_url, datetime(2026, 1, 5, tzinfo=UTC))
    # A queue name of its own: other tests may share (and flush) the same Redis database.
    name = f"flowspec-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **ENV, "FLOWSPEC_DATABASE_URL": db_url, "FLOWSPEC_CONFIG": str(root),
           "FLOWSPEC_QUEUE_NAME": name}
    env.pop("FLOWSPEC_QUEUE_URL", None)
    if queue_url:
        env["FLOWSPEC_QUEUE_URL"] = queue_url
    consumer = subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "reconciler.tasks.huey", "-w", "2",
         "-m", "0.1"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        engine = engine_for(db_url, root)
        from reconciler.tasks import enqueue_for

        queue = make_huey(queue_url, db_url=db_url, name=name)
        result = eng.trigger(engine, ORG, "promo", now=datetime.now(UTC), ignore_window=True,
                             enqueue=enqueue_for(queue))
        engine.close()
        deadline = time.monotonic() + 45
        status = None
        while time.monotonic() < deadline:
            status = scalar(db_url, "select status from executions where id = :e",
                            e=result.execution_id)
            if status == "finished":
                break
            time.sleep(0.1)
    finally:
        os.kill(consumer.pid, signal.SIGINT)
        try:
            out = consumer.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            consumer.kill()
            out = consumer.communicate()[0]
    assert status == "finished", out[-3000:]
    assert len(api.messages) == n and not api.duplicates()
    assert scalar(db_url, "select sent from executions where id = :e", e=result.execution_id) == n


def test_a_real_sqlite_huey_consumer_drains_an_execution(tmp_path: Path, api: StandIn) -> None:
    """`huey_consumer reconciler.tasks.huey -w 2 -m 0.1` over the embedded SQLite queue sends a
    triggered execution's 300 messages, each once."""
    url = f"sqlite:///{tmp_path / 'flowspec.db'}"
    dbmod.upgrade(dbmod.open_database(url, check=False).engine)
    _drain_with_consumer(url, None, tmp_path, api, 300)


@pytest.mark.redis
@pytest.mark.postgres
def test_a_real_redis_huey_consumer_drains_an_execution_on_postgresql(
    tmp_path: Path, api: StandIn, redis_url: str, postgres_url: str
) -> None:
    """The scale-out setup: PostgreSQL state, Redis queue (and Redis rate-limit state)."""
    dbmod.upgrade(dbmod.open_database(postgres_url, check=False).engine)
    _drain_with_consumer(postgres_url, redis_url, tmp_path, api, 300)
