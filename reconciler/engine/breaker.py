"""The Channel circuit breaker (SPEC 6.8): "stop sending from this number".

An error of kind `circuit` (spam-rate limit 131048, an expired token 190, ...) opens the
breaker of the Channel in `channel_circuits` and moves every active execution on it to
`paused_circuit`. Nothing is lost: the recipient whose send was refused stays claimable, the
others were never claimed. Work passes check the breaker before every batch, so an execution
that starts while it is open pauses too. Only an operator closes it (`resume_channel`, the CLI's
`flowspec channel resume NAME`); the paused executions then run again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler import db as dbmod
from reconciler import states as st
from reconciler.engine.context import EngineContext
from reconciler.engine.sql import insert
from reconciler.models import channel_circuits, executions

_PAUSABLE = (st.EX_RUNNING, st.EX_WAITING_WINDOW)


def state_of(organization: str, channel: str) -> sa.ScalarSelect[str]:
    """The breaker's state as a scalar subquery (NULL: never opened), for a statement that
    reads it along with other things."""
    c = channel_circuits.c
    return sa.select(c.state).where(c.organization == organization,
                                    c.channel == channel).scalar_subquery()


def reason_of(conn: Connection, organization: str, channel: str) -> str:
    c = channel_circuits.c
    row = conn.execute(
        sa.select(c.code, c.reason).where(c.organization == organization, c.channel == channel)
    ).first()
    return _reason(row.code, row.reason) if row else "channel circuit open"


def _reason(code: str | None, reason: str | None) -> str:
    return f"channel circuit open: {code or '-'} {reason or ''}".rstrip()


def open_circuit(
    conn: Connection, organization: str, channel: str, *, code: str, reason: str,
    execution_id: int | None, now: datetime,
) -> None:
    """Open the breaker (keeping the first opening's time and cause when already open) and
    pause every active execution on the Channel."""
    c = channel_circuits.c
    stmt = insert(conn, channel_circuits).values(
        organization=organization, channel=channel, state=st.CIRCUIT_OPEN, code=code,
        reason=reason[:2000], execution_id=execution_id, opened_at=now, closed_at=None,
        updated_at=now,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["organization", "channel"],
            set_={"state": st.CIRCUIT_OPEN, "code": code, "reason": reason[:2000],
                  "execution_id": execution_id, "opened_at": now, "closed_at": None,
                  "updated_at": now},
            where=c.state != st.CIRCUIT_OPEN,
        )
    )
    pause_channel(conn, organization, channel, now=now)


def pause_channel(conn: Connection, organization: str, channel: str, *, now: datetime) -> list[int]:
    e = executions.c
    why = reason_of(conn, organization, channel)
    rows = conn.execute(
        executions.update()
        .where(e.organization == organization, e.channel == channel, e.status.in_(_PAUSABLE))
        .values(status=st.EX_PAUSED_CIRCUIT, reason=why, resume_at=None, updated_at=now)
        .returning(e.id)
    ).scalars().all()
    return list(rows)


def resume_channel(
    engine: EngineContext, organization: str, channel: str, *, now: datetime,
    enqueue: Callable[[int], None] | None = None,
) -> list[int]:
    """Close the breaker; the executions it paused run again (enqueued when `enqueue` is given,
    otherwise the sweep picks them up). Returns their ids; [] when the breaker was not open."""
    c, e = channel_circuits.c, executions.c
    with dbmod.write_transaction(engine.db) as conn:
        closed = conn.execute(
            channel_circuits.update()
            .where(c.organization == organization, c.channel == channel, c.state == st.CIRCUIT_OPEN)
            .values(state=st.CIRCUIT_CLOSED, closed_at=now, updated_at=now)
        ).rowcount
        resumed = conn.execute(
            executions.update()
            .where(e.organization == organization, e.channel == channel,
                   e.status == st.EX_PAUSED_CIRCUIT)
            .values(status=st.EX_RUNNING, reason=None, heartbeat_at=now, updated_at=now)
            .returning(e.id)
        ).scalars().all()
    if not closed and not resumed:
        return []
    if enqueue is not None:
        for execution_id in resumed:
            enqueue(execution_id)
    return list(resumed)
