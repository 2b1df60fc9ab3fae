"""`/metrics` read from real databases after real sends to the stand-in API: the send counters
are running totals that only go up (a retried step's failed attempt stays counted), status
webhooks add the failures they report once, and migration 0007 starts the totals from the
messages already there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from engine_support import scalar
from test_engine_work import Run, api, start  # noqa: F401 - `api` is a fixture

from reconciler import db as dbmod
from reconciler import metrics
from reconciler.standin import Fault, StandIn
from reconciler.webhooks import StatusUpdate, apply_statuses

SENT = 'flowspec_messages_sent_total{channel="wa",organization="acme"}'


def failures(code: str) -> str:
    return f'flowspec_send_failures_total{{code="{code}",organization="acme"}}'


def scrape(run: Run) -> dict[str, float]:
    with run.engine.db.connect() as conn:
        return metrics.parse(metrics.exposition(conn, now=run.clock()))


def test_a_failed_attempt_stays_counted_after_its_retry_is_accepted(
    db_url: str, tmp_path: Path, api: StandIn  # noqa: F811
) -> None:
    """30 throttled attempts over 20 recipients, all retried until accepted: 20 sends and 30
    failures with code 130429, though every failed row was overwritten by its retry; a
    permanent error counts once as a send failure and once as a recipient failure."""
    retry = {"max_attempts": 10, "initial_delay": "1s", "max_delay": "10s", "multiplier": 2}
    run = start(db_url, tmp_path, api, n=21, delivery={"retry": retry})
    api.add_fault(Fault(code=131026, recipient="+5511900000020"))
    api.add_fault(Fault(code=130429, times=30))
    assert run.drain().finished
    values = scrape(run)
    run.engine.close()
    assert scalar(db_url, "select count(*) from messages where status = 'failed'") == 1
    assert values[SENT] == 20 == len(api.messages)
    assert values[failures("130429")] == 30
    assert values[failures("131026")] == 1
    assert values['flowspec_recipient_failures_total{code="131026",organization="acme"}'] == 1


def test_webhook_failures_are_added_once_on_both_apply_paths(
    db_url: str, tmp_path: Path, api: StandIn  # noqa: F811
) -> None:
    """A `failed` status for an accepted message adds one failure with the status's code, on
    the one-by-one path (up to 4 statuses) and on the bulk path; the same status again, and a
    status for a message already failed, add nothing; the sent counter does not move."""
    run = start(db_url, tmp_path, api, n=8)
    assert run.drain().finished
    wamids = [m.id for m in api.messages]
    now = run.clock() + timedelta(minutes=1)

    def apply(*updates: StatusUpdate) -> None:
        with dbmod.write_transaction(run.engine.db) as conn:
            apply_statuses(conn, list(updates), now=now)

    def failed(wamid: str, code: str = "131049") -> StatusUpdate:
        return StatusUpdate("acme", wamid, "failed", now, code, "not delivered")

    apply(failed(wamids[0]), failed(wamids[0]))  # small path; Meta repeats itself
    assert scrape(run)[failures("131049")] == 1
    bulk = [StatusUpdate("acme", w, "delivered", now) for w in wamids[1:5]]
    apply(*bulk, failed(wamids[5]), failed(wamids[6], "131026"), failed(wamids[0]),
          StatusUpdate("acme", wamids[7], "read", now))
    values = scrape(run)
    run.engine.close()
    assert values[failures("131049")] == 2
    assert values[failures("131026")] == 1
    assert values[SENT] == 8


def test_migration_0007_starts_the_totals_from_the_messages_already_there(
    db_url: str, tmp_path: Path, api: StandIn  # noqa: F811
) -> None:
    """Down to 0006 (no totals) and up again: the counters read what the messages table
    holds, accepted sends by channel and failed rows by code."""
    from alembic import command

    run = start(db_url, tmp_path, api, n=5)
    api.add_fault(Fault(code=131026, recipient="+5511900000002"))
    assert run.drain().finished
    before = scrape(run)
    assert (before[SENT], before[failures("131026")]) == (4, 1)
    with dbmod.write_transaction(run.engine.db) as conn:
        command.downgrade(dbmod.alembic_config(conn), "0006")
    with run.engine.db.connect() as conn:
        assert "send_counts" not in sa.inspect(conn).get_table_names()
    with dbmod.write_transaction(run.engine.db) as conn:
        command.upgrade(dbmod.alembic_config(conn), "head")
    after = scrape(run)
    run.engine.close()
    assert {k: v for k, v in after.items() if "_total" in k} == {
        k: v for k, v in before.items() if "_total" in k}
