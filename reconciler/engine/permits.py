"""`max_concurrent_executions` (SPEC 1.1): recipients in flight at once for one execution,
however many work passes send it on however many machines.

Each pass holds a share of the bound as a row of `send_permits` and runs exactly that many
senders (reconciler.engine.work). The shares of one execution's live rows never add up to more
than the bound: a pass takes its share under a lock on the execution's row, out of what the
other live rows leave. The share is the bound split between the passes an execution is meant
to have at once (`EngineSettings.parallelism`): splitting lets several processes send one
campaign, where a first pass taking everything would leave the others nothing to do. A pass
keeps its row alive while it works (`until`, moved on with its heartbeat) and deletes it when
it ends; a pass that dies stops counting when `until` passes, so its share comes back after
`stale_seconds`, when the sweep also re-issues its work.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.engine.sql import for_update
from reconciler.models import executions, send_permits


def share(bound: int, parallelism: int) -> int:
    """One pass's share of an execution's bound: at least one send."""
    return max(1, -(-bound // max(1, parallelism)))


class Grant(NamedTuple):
    permits: int  # sends this pass may have in flight (0: none left)
    retry_at: datetime | None  # with none: when the first other holder's row runs out


def acquire(conn: Connection, *, organization: str, execution_id: int, token: str, want: int,
            bound: int, until: datetime, now: datetime) -> Grant:
    """Take up to `want` permits for the pass `token`, out of what the live holders of the
    execution leave of `bound`. Call inside a write transaction."""
    p = send_permits.c
    conn.execute(for_update(conn, sa.select(executions.c.id).where(executions.c.id == execution_id)))
    conn.execute(send_permits.delete().where(p.execution_id == execution_id, p.until <= now))
    held, first_until = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(p.permits), 0), sa.func.min(p.until))
        .where(p.execution_id == execution_id, p.token != token)
    ).one()
    granted = max(0, min(want, bound - int(held)))
    conn.execute(send_permits.delete().where(p.execution_id == execution_id, p.token == token))
    if granted:
        conn.execute(send_permits.insert().values(
            organization=organization, execution_id=execution_id, token=token, permits=granted,
            until=until))
    return Grant(granted, None if granted else first_until)


def expire(conn: Connection, *, now: datetime) -> int:
    """Delete every row past its `until` (passes that died); how many."""
    return int(conn.execute(send_permits.delete().where(send_permits.c.until <= now)).rowcount or 0)


def keep(conn: Connection, *, execution_id: int, token: str, until: datetime) -> bool:
    """Move the pass's row on to `until`; False when it is gone (it expired and its share
    may be another pass's now: this pass must stop sending)."""
    p = send_permits.c
    return bool(conn.execute(
        send_permits.update().where(p.execution_id == execution_id, p.token == token)
        .values(until=until)
    ).rowcount)


def release(conn: Connection, *, execution_id: int, token: str) -> None:
    p = send_permits.c
    conn.execute(send_permits.delete().where(p.execution_id == execution_id, p.token == token))
