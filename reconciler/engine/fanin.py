"""Fan-in (SPEC 6.9): an execution finishes when every recipient is terminal.

One conditional UPDATE does it: the execution moves to `finished` only if it is still active and
no recipient is non-terminal, and its stats are computed by the same statement from the
recipient and message rows. Only the transaction whose UPDATE matched the row adds the stats to
the automation's aggregates, so a worker and the sweep racing to finish the same execution count
it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reconciler import db as dbmod
from reconciler import states as st
from reconciler.models import UTCDateTime, automations, executions, messages, recipients


@dataclass(frozen=True)
class Stats:
    sent: int
    delivered: int
    read: int
    completed: int
    failed: int
    unknown: int


def _count_recipients(execution_id: int, status: str) -> sa.ScalarSelect[int]:
    r = recipients.c
    return (
        sa.select(sa.func.count()).select_from(recipients)
        .where(r.execution_id == execution_id, r.status == status).scalar_subquery()
    )


def _count_messages(execution_id: int, condition: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    m, r = messages.c, recipients.c
    return (
        sa.select(sa.func.count()).select_from(messages.join(recipients, r.id == m.recipient_id))
        .where(r.execution_id == execution_id, condition).scalar_subquery()
    )


def finish_if_done(conn: Connection, execution_id: int, *, now: datetime) -> Stats | None:
    """Finish the execution if every recipient is terminal; the stats when THIS call did it."""
    e, r, m = executions.c, recipients.c, messages.c
    pending = sa.exists().where(r.execution_id == execution_id, r.status.not_in(st.R_TERMINAL))
    row = conn.execute(
        executions.update()
        .where(e.id == execution_id, e.status.in_(st.EX_FANNED_OUT), e.fanned_out.is_(True), ~pending)
        .values(
            status=st.EX_FINISHED,
            finished_at=now,
            updated_at=now,
            resume_at=None,
            reason=None,
            # Accepted by the API = has a wamid; delivered/read as far as webhooks said so far.
            sent=_count_messages(execution_id, m.message_id.is_not(None)),
            delivered=_count_messages(execution_id, m.status.in_(("delivered", "read"))),
            read=_count_messages(execution_id, m.status == "read"),
            completed=_count_recipients(execution_id, st.R_COMPLETED),
            failed=_count_recipients(execution_id, st.R_FAILED),
            unknown=_count_recipients(execution_id, st.R_UNKNOWN),
        )
        .returning(e.organization, e.automation_id, e.started_at, e.sent, e.delivered, e.read,
                   e.completed, e.failed, e.unknown)
    ).first()
    if row is None:
        return None
    a = automations.c
    started = sa.literal(row.started_at or now, type_=UTCDateTime())
    conn.execute(
        automations.update()
        .where(a.organization == row.organization, a.id == row.automation_id)
        .values(
            execution_count=a.execution_count + 1,
            last_executed_at=sa.case(
                (sa.or_(a.last_executed_at.is_(None), a.last_executed_at < started), started),
                else_=a.last_executed_at,
            ),
            total_sent=a.total_sent + row.sent,
            total_delivered=a.total_delivered + row.delivered,
            total_read=a.total_read + row.read,
            total_completed=a.total_completed + row.completed,
            total_failed=a.total_failed + row.failed,
        )
    )
    return Stats(row.sent, row.delivered, row.read, row.completed, row.failed, row.unknown)


def try_finish(engine: Engine, execution_id: int, *, now: datetime) -> Stats | None:
    with dbmod.write_transaction(engine) as conn:
        return finish_if_done(conn, execution_id, now=now)
