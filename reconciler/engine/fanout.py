"""Fan-out (SPEC 6.4): an execution's audience becomes recipient rows, in bulk, once.

The audience is resolved by `reconciler.audience.resolve_audience` (contact_ids, segment,
Audience document or CSV file; opted-out contacts excluded and counted). Recipients are inserted
with INSERT ... ON CONFLICT (execution_id, contact_id) DO NOTHING in chunks, conversations are
created or reused, the Flow and Channel are frozen into the execution's plan, and the execution
moves `starting → running` with a conditional update, all in ONE transaction: a fan-out killed
half-way leaves nothing, and a fan-out run twice (a task delivered twice) inserts nothing twice.

Listed ids without a stored contact, and contacts without a phone, become `failed` recipients
(`unknown_contact`, `no_phone`): visible in the execution, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler import states as st
from reconciler.audience import resolve_audience
from reconciler.engine.context import EngineContext
from reconciler.engine.fanin import finish_if_done
from reconciler.engine.runplan import RunPlan, with_flow_and_channel
from reconciler.engine.sql import chunks, for_update, insert
from reconciler.models import conversations, executions, recipients

CHUNK = 1000
FIRST_CHUNK = 1000  # committed with the move to running: sending starts after this many
STREAM_CHUNK = 5_000
ANALYZE_AFTER = 1000


@dataclass(frozen=True)
class FanoutReport:
    execution_id: int
    status: str  # the execution's status afterwards
    recipients: int = 0  # rows inserted by this call (0 when it had been done before)
    opted_out: int = 0
    missing: int = 0
    done_now: bool = False  # this call fanned out (False: already done, or not startable)


def fan_out(
    engine: EngineContext, execution_id: int, *, now: datetime,
    on_running: Callable[[], None] | None = None,
) -> FanoutReport:
    """Resolve the audience of a `starting` execution into recipients and make it `running`.

    Streamed: the first chunk of recipients is committed together with the move to `running`
    (then `on_running` is called, e.g. to enqueue work tasks), so sending starts while the rest
    of a large audience is still being written; `fanned_out` is set when every recipient is in,
    and only then can the execution finish. Idempotent and resumable: every chunk is an
    INSERT ... ON CONFLICT DO NOTHING, and a fan-out that died half-way is run again by the
    sweep (a running execution that is not fanned out and has a stale heartbeat). An execution
    that cannot start (its Flow or Channel is gone, the audience cannot be read) becomes
    `failed` with the reason."""
    e = executions.c
    with engine.db.connect() as conn:
        ex = conn.execute(
            sa.select(e.id, e.organization, e.status, e.plan, e.fanned_out).where(e.id == execution_id)
        ).first()
    if ex is None:
        raise UserError(f"execution {execution_id} does not exist")
    if ex.status not in (st.EX_STARTING, *st.EX_FANNED_OUT) or ex.fanned_out:
        return FanoutReport(execution_id, ex.status)
    plan = RunPlan(ex.plan or {})
    try:
        spec = plan.automation.spec
        config = engine.config()
        flow = config.flows.get((ex.organization, spec.flow))
        channel = config.channels.get((ex.organization, spec.whatsapp_number))
        if flow is None or channel is None:
            missing = f"Flow '{spec.flow}'" if flow is None else f"Channel '{spec.whatsapp_number}'"
            raise UserError(f"{missing} is not in the config (organization '{ex.organization}')")
        with dbmod.write_transaction(engine.db) as conn:
            locked = conn.execute(
                for_update(conn, sa.select(e.status, e.fanned_out).where(e.id == execution_id))
            ).first()
            if locked is None or locked.fanned_out or locked.status not in (
                st.EX_STARTING, *st.EX_FANNED_OUT
            ):
                return FanoutReport(execution_id, locked.status if locked else "missing")
            # A segment's first chunk is read alone (its first contacts by id), so sending
            # starts before the whole audience is read: 0.2 s sooner at 100,000 contacts.
            audience = resolve_audience(
                conn, organization=ex.organization, spec=spec, config=config, now=now,
                fields=False,  # the work loop reads each contact fresh when it gets to it
                limit=FIRST_CHUNK,
            )
            rows = _recipient_rows(ex.organization, execution_id, flow.model.spec.start,
                                   audience.contacts, audience.missing, now)
            # The rest is built after the first chunk is in and sending has started.
            first = list(islice(rows, FIRST_CHUNK))
            inserted = _insert_chunk(conn, ex.organization, spec.whatsapp_number, first, now)
            conn.execute(
                executions.update()
                .where(e.id == execution_id, e.status.in_((st.EX_STARTING, *st.EX_FANNED_OUT)))
                .values(
                    status=sa.case((e.status == st.EX_STARTING, st.EX_RUNNING), else_=e.status),
                    plan=with_flow_and_channel(ex.plan or {}, flow.model.spec, channel.model.spec),
                    heartbeat_at=now,
                    updated_at=now,
                )
            )
    except UserError as exc:
        _fail(engine, execution_id, str(exc), now)
        return FanoutReport(execution_id, st.EX_FAILED)
    if not audience.complete:
        if on_running is not None:
            on_running()
            on_running = None
        with engine.db.connect() as conn:
            audience = resolve_audience(conn, organization=ex.organization, spec=spec,
                                        config=config, now=now, fields=False)
        # The whole audience in the same order: the first chunk's contacts are in already.
        # Counted once each: a contact of the first chunk that opted out since is a
        # recipient (failed when its turn comes), not an exclusion.
        taken = {r["contact_id"] for r in first}
        rows = (r for r in _recipient_rows(ex.organization, execution_id, flow.model.spec.start,
                                           audience.contacts, audience.missing, now)
                if r["contact_id"] not in taken)
        audience.opted_out = sum(1 for i in audience.opted_out_ids if i not in taken)
    rest = list(rows)
    if on_running is not None and rest:
        on_running()
    analyzed = False
    for part in chunks(rest, STREAM_CHUNK):
        with dbmod.write_transaction(engine.db) as conn:
            inserted += _insert_chunk(conn, ex.organization, spec.whatsapp_number, list(part), now)
            conn.execute(executions.update().where(e.id == execution_id).values(heartbeat_at=now))
        dbmod.yield_write_lock(engine.db)  # on SQLite, a waiting take gets in between chunks
        if not analyzed and inserted >= ANALYZE_AFTER:
            _analyze(engine)  # early, so the claims running alongside get good plans
            analyzed = True
    with dbmod.write_transaction(engine.db) as conn:
        conn.execute(
            executions.update().where(e.id == execution_id, e.fanned_out.is_(False)).values(
                fanned_out=True, audience_size=len(first) + len(rest),
                opted_out=audience.opted_out,
                heartbeat_at=now, updated_at=now,
            )
        )
        finish_if_done(conn, execution_id, now=now)  # an empty audience is done at once
        status = conn.execute(sa.select(e.status).where(e.id == execution_id)).scalar_one()
    if inserted >= ANALYZE_AFTER:
        _analyze(engine)
    return FanoutReport(execution_id, status, inserted, audience.opted_out, len(audience.missing),
                        True)


def _analyze(engine: EngineContext) -> None:
    """A bulk insert leaves PostgreSQL's statistics describing the tables as they were (empty,
    right after an import): the claim and contact lookups would then scan whole tables per
    batch. Refresh them now rather than when autovacuum gets to it (contacts are not written
    by fan-out: theirs are as good as before)."""
    if not engine.is_postgres:
        return
    with engine.db.connect() as conn:
        conn.exec_driver_sql("ANALYZE conversations, recipients")
        conn.commit()


def _insert_chunk(conn: Connection, organization: str, channel: str, rows: list[dict[str, Any]],
                  now: datetime) -> int:
    """Insert a chunk's recipients that are not there yet and create their missing
    conversations (SPEC 6.4: create or reuse); how many recipients went in. Write-only: the
    work loop reads each batch's conversation with its contacts. Other executions may create
    the same conversations concurrently and a resumed fan-out may meet its own recipients,
    hence ON CONFLICT DO NOTHING everywhere."""
    if conn.dialect.name == "postgresql":
        return _insert_chunk_pg(conn, organization, channel, rows, now)
    _create_conversations(conn, organization, channel,
                          [r["contact_id"] for r in rows if r["phone"]], now)
    return _insert_recipients(conn, rows)


_RECIPIENT_COLUMNS = ("organization", "execution_id", "contact_id", "phone", "status", "attempts",
                      "step", "current_node", "next_attempt_at", "error_code", "error",
                      "created_at", "updated_at")


def _insert_chunk_pg(conn: Connection, organization: str, channel: str,
                     rows: list[dict[str, Any]], now: datetime) -> int:
    """PostgreSQL: the sendable recipients (all but a few) differ only in contact and phone,
    so only those two travel, by COPY into a temporary table, and two INSERT ... SELECT fill in
    the rest: copying every column cost the client a formatted row each and as much server
    time as the inserts. The table is emptied at commit (a chunk is one transaction; were two
    in one, the second would only meet the first one's rows again in ON CONFLICT DO NOTHING)."""
    pending = [r for r in rows if r["status"] == st.R_PENDING]
    others = [r for r in rows if r["status"] != st.R_PENDING]
    inserted = _insert_recipients(conn, others)
    if not pending:
        return inserted
    first = pending[0]
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS fanout_contacts "
                       "(contact_id text, phone text) ON COMMIT DELETE ROWS")
        with cursor.copy("COPY fanout_contacts (contact_id, phone) FROM STDIN") as copy:
            for r in pending:
                copy.write_row((r["contact_id"], r["phone"]))
        cursor.execute(
            "INSERT INTO conversations (organization, channel, contact_id, created_at, "
            "updated_at) SELECT %(org)s, %(channel)s, contact_id, %(now)s, %(now)s "
            "FROM fanout_contacts ON CONFLICT (organization, channel, contact_id) DO NOTHING",
            {"org": organization, "channel": channel, "now": now},
        )
        cursor.execute(
            f"INSERT INTO recipients ({', '.join(_RECIPIENT_COLUMNS)}) "
            "SELECT %(org)s, %(execution)s, contact_id, phone, %(status)s, 0, 0, %(node)s, "
            "%(now)s, NULL, NULL, %(now)s, %(now)s FROM fanout_contacts "
            "ON CONFLICT (execution_id, contact_id) DO NOTHING",
            {"org": organization, "execution": first["execution_id"], "status": st.R_PENDING,
             "node": first["current_node"], "now": now},
        )
        count = cursor.rowcount
    return inserted + (count if count >= 0 else len(pending))


def _insert_recipients(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the recipient rows that are not there yet (an executemany of INSERT ... ON
    CONFLICT DO NOTHING); how many went in."""
    if not rows:
        return 0
    stmt = insert(conn, recipients).on_conflict_do_nothing(
        index_elements=["execution_id", "contact_id"]
    )
    inserted = 0
    for part in chunks(rows, CHUNK):
        count = conn.execute(stmt, list(part)).rowcount
        # Some drivers cannot count an executemany (-1): then assume all went in.
        inserted += len(part) if count is None or count < 0 else count
    return inserted


def _create_conversations(
    conn: Connection, organization: str, channel: str, contact_ids: list[str], now: datetime
) -> None:
    """SQLite: create the missing conversations."""
    stmt = insert(conn, conversations).on_conflict_do_nothing(
        index_elements=["organization", "channel", "contact_id"]
    )
    rows = [{"organization": organization, "channel": channel, "contact_id": c,
             "created_at": now, "updated_at": now} for c in dict.fromkeys(contact_ids)]
    for part in chunks(rows, CHUNK):
        conn.execute(stmt, list(part))


def _recipient_rows(
    organization: str, execution_id: int, start: str, contacts: list[dict[str, Any]],
    missing: list[str], now: datetime,
) -> Iterator[dict[str, Any]]:
    base = {"organization": organization, "execution_id": execution_id, "attempts": 0, "step": 0,
            "created_at": now, "updated_at": now}
    for c in contacts:
        if c.get("phone"):
            yield {**base, "contact_id": c["id"], "phone": c["phone"], "status": st.R_PENDING,
                   "current_node": start, "next_attempt_at": now, "error_code": None,
                   "error": None}
        else:
            yield {**base, "contact_id": c["id"], "phone": None, "status": st.R_FAILED,
                   "current_node": None, "next_attempt_at": None,
                   "error_code": st.CODE_NO_PHONE, "error": "the contact has no phone number"}
    for contact_id in missing:
        yield {**base, "contact_id": contact_id, "phone": None, "status": st.R_FAILED,
               "current_node": None, "next_attempt_at": None,
               "error_code": st.CODE_UNKNOWN_CONTACT, "error": "no stored contact has this id"}


def _fail(engine: EngineContext, execution_id: int, reason: str, now: datetime) -> None:
    e = executions.c
    with dbmod.write_transaction(engine.db) as conn:
        conn.execute(
            executions.update().where(e.id == execution_id, e.status == st.EX_STARTING).values(
                status=st.EX_FAILED, reason=reason[:2000], finished_at=now, updated_at=now,
            )
        )
