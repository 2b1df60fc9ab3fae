"""The sweep: what the database says must happen although no task said so.

Huey delivers a task at most once and has no acknowledgement (FACTS.md): a task taken by a
worker that dies is gone. The sweep, run by the service every few seconds (any number of
sweepers may run; each step is a conditional update), makes the database the only memory:

1. **Expired leases** (SPEC 6.5). A recipient whose lease ran out while it was `sending` was
   caught mid-send: under `at_most_once` (the default) it becomes `unknown` and is never sent
   again; under `at_least_once` it is claimable again and will be re-sent. Either way its
   current step's message row says `failed` (`lease_expired`), counting the attempt. Under
   `at_most_once` the batch's send mark (reconciler.engine.marks) is revoked first: a guarded
   recipient above it was never handed to the channel and is released, not given up. A leased
   recipient that was not `sending` (left by an older worker, which leased before deciding)
   is simply released.
2. **Windows that reopened**: `waiting_window` executions whose `resume_at` passed → `running`.
3. **Lost tasks**: a `starting` execution, or a `running` one with due work or an unfinished
   fan-out, whose heartbeat is older than `stale_seconds` is enqueued again (fan-out and
   claims are idempotent).
4. **Fan-in** (SPEC 6.9): executions whose recipients are all terminal are finished, once.
5. **Queue policy**: `queued` occurrences whose predecessor finished are started.
6. **Send permits** of passes that died (their `until` passed) are deleted, and send marks a
   day after their batch's lease ran out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from reconciler import db as dbmod
from reconciler import states as st
from reconciler.engine import bulk, marks, permits
from reconciler.engine.context import EngineContext
from reconciler.engine.dispatch import start_queued
from reconciler.engine.fanin import finish_if_done
from reconciler.engine.runplan import RunPlan
from reconciler.models import (
    CLAIMABLE,
    conversations,
    executions,
    messages,
    occurrences,
    recipients,
)

Enqueue = Callable[[int], None]
_LEASE_BATCH = 5000
LEASE_EXPIRED_ERROR = ("the worker's lease expired while this message was being sent; the API may "
                       "or may not have accepted it")


@dataclass
class SweepReport:
    unknown: int = 0  # caught mid-send under at_most_once: never re-sent
    resend: int = 0  # caught mid-send under at_least_once: claimable again
    released: int = 0  # claimed, nothing in flight: claimable again
    resumed: list[int] = field(default_factory=list)  # waiting_window → running
    requeued: list[int] = field(default_factory=list)  # lost tasks, enqueued again
    finished: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)  # from queued occurrences

    @property
    def enqueued(self) -> list[int]:
        return list(dict.fromkeys(self.resumed + self.requeued + self.started))


def sweep(engine: EngineContext, *, now: datetime, enqueue: Enqueue) -> SweepReport:
    report = SweepReport()
    touched = _expired_leases(engine, now, report)
    _reopened_windows(engine, now, report)
    _lost_tasks(engine, now, report, touched)
    _fan_in(engine, now, report)
    report.started = start_queued(engine, now=now, enqueue=lambda _id: None).executions
    with dbmod.write_transaction(engine.db) as conn:
        permits.expire(conn, now=now)
        marks.expire(conn, now=now)
    for execution_id in report.enqueued:
        enqueue(execution_id)
    return report


# A recipient's status by its last accepted message's.
_CLAIMABLE_AFTER = {"sent": st.R_SENT, "delivered": st.R_DELIVERED, "read": st.R_READ}


def _expired_leases(engine: EngineContext, now: datetime, report: SweepReport) -> set[int]:
    r, m, e, v = recipients.c, messages.c, executions.c, conversations.c
    previous = messages.alias("previous")
    needs_work: set[int] = set()
    with dbmod.write_transaction(engine.db) as conn:
        rows = conn.execute(
            sa.select(r.id, r.organization, r.execution_id, r.lease_owner, r.step, r.status,
                      r.current_node, e.channel, v.id.label("conversation_id"),
                      m.status.label("message_status"), m.attempts.label("message_attempts"),
                      previous.c.status.label("previous_status"))
            .select_from(
                recipients
                .join(executions, e.id == r.execution_id)
                .outerjoin(messages, sa.and_(m.recipient_id == r.id, m.step == r.step))
                .outerjoin(previous, sa.and_(previous.c.recipient_id == r.id,
                                             previous.c.step == r.step - 1))
                .outerjoin(conversations, sa.and_(v.organization == r.organization,
                                                  v.channel == e.channel,
                                                  v.contact_id == r.contact_id))
            )
            .where(r.lease_owner.is_not(None), r.lease_until < now)
            .limit(_LEASE_BATCH)
        ).all()
        if not rows:
            return needs_work
        plans = {
            x.id: RunPlan(x.plan or {})
            for x in conn.execute(
                sa.select(e.id, e.plan).where(e.id.in_({row.execution_id for row in rows}))
            )
        }
        recipient_rows: list[dict[str, Any]] = []
        message_rows: list[dict[str, Any]] = []

        def guarantee_of(row: Any) -> str:
            plan = plans.get(row.execution_id)
            return plan.delivery.delivery_guarantee if plan else "at_most_once"

        # The batches taken over, with how far their sends may have started (marks.py).
        through = marks.revoke(conn, [row.lease_owner for row in rows
                                      if row.status == st.R_SENDING
                                      and guarantee_of(row) == "at_most_once"])
        for row in rows:
            guarantee = guarantee_of(row)
            base = {"rid": row.id, "tok": row.lease_owner, "b_t": now, "b_undo": 0}
            # An older worker inserted the message row as `sending` (its attempt counted)
            # before the recipient became `sending`.
            legacy = row.message_status == st.M_SENDING
            # What a claimable recipient at this step is (the guard wrote `sending` over it):
            # as far as its last accepted message got (a webhook may have raised it to
            # delivered or read before this step was taken).
            claimable = (st.R_PENDING if row.step == 0
                         else _CLAIMABLE_AFTER.get(row.previous_status, st.R_SENT))
            if (row.status == st.R_SENDING and not legacy and row.lease_owner in through
                    and row.id > through[row.lease_owner]):
                # Guarded, but its send never started: not sent, not an attempt.
                recipient_rows.append({**base, "b_status": claimable, "b_next": now,
                                       "b_code": None, "b_undo": 1})
                report.released += 1
                needs_work.add(row.execution_id)
            elif row.status == st.R_SENDING or legacy:
                message_rows.append({
                    "org": row.organization, "rid": row.id, "step": row.step,
                    "node": row.current_node or "", "channel": row.channel or "",
                    "conv": row.conversation_id, "status": st.M_FAILED,
                    "att": (row.message_attempts or 0) + (0 if legacy else 1), "mid": None,
                    "code": st.CODE_LEASE_EXPIRED, "err": LEASE_EXPIRED_ERROR, "sent": None,
                    "failed": now, "t0": now, "t": now,
                })
                if guarantee == "at_least_once":
                    recipient_rows.append({**base, "b_status": claimable, "b_next": now,
                                           "b_code": st.CODE_LEASE_EXPIRED})
                    report.resend += 1
                    needs_work.add(row.execution_id)
                else:
                    recipient_rows.append({**base, "b_status": st.R_UNKNOWN, "b_next": None,
                                           "b_code": st.CODE_LEASE_EXPIRED})
                    report.unknown += 1
            else:
                recipient_rows.append({**base, "b_status": row.status, "b_next": now,
                                       "b_code": None})
                report.released += 1
                needs_work.add(row.execution_id)
        for item in recipient_rows:
            item["b_clear"] = item["b_status"] in st.R_TERMINAL
        status_p = sa.bindparam("b_status", type_=sa.String())
        conn.execute(
            recipients.update()
            .where(r.id == sa.bindparam("rid"), r.lease_owner == sa.bindparam("tok"))
            .values(
                status=status_p,
                attempts=r.attempts - sa.bindparam("b_undo", type_=sa.Integer()),
                next_attempt_at=sa.bindparam("b_next", type_=r.next_attempt_at.type),
                error_code=sa.func.coalesce(sa.bindparam("b_code", type_=sa.String()), r.error_code),
                current_node=sa.case((sa.bindparam("b_clear", type_=sa.Boolean()), None),
                                     else_=r.current_node),
                lease_owner=None,
                lease_until=None,
                updated_at=sa.bindparam("b_t", type_=r.updated_at.type),
            ),
            recipient_rows,
        )
        bulk.upsert_messages(conn, message_rows)
    return needs_work


def _reopened_windows(engine: EngineContext, now: datetime, report: SweepReport) -> None:
    e = executions.c
    with dbmod.write_transaction(engine.db) as conn:
        report.resumed = list(conn.execute(
            executions.update()
            .where(e.status == st.EX_WAITING_WINDOW, e.resume_at <= now)
            .values(status=st.EX_RUNNING, resume_at=None, reason=None, heartbeat_at=now,
                    updated_at=now)
            .returning(e.id)
        ).scalars())


def _lost_tasks(engine: EngineContext, now: datetime, report: SweepReport,
                needs_work: set[int]) -> None:
    e, r = executions.c, recipients.c
    stale = now - timedelta(seconds=engine.settings.stale_seconds)
    due = sa.exists().where(
        r.execution_id == e.id, r.next_attempt_at <= stale, CLAIMABLE,
        r.status.in_(st.R_CLAIMABLE),
    )
    quiet = sa.or_(e.heartbeat_at.is_(None), e.heartbeat_at < stale)
    with dbmod.write_transaction(engine.db) as conn:
        requeued = list(conn.execute(
            executions.update()
            .where(quiet, sa.or_(
                e.status == st.EX_STARTING,
                # due work nobody took, or a fan-out that died before every recipient was in
                sa.and_(e.status == st.EX_RUNNING, sa.or_(due, e.fanned_out.is_(False))),
            ))
            .values(heartbeat_at=now)
            .returning(e.id)
        ).scalars())
        if needs_work:
            requeued += list(conn.execute(
                executions.update()
                .where(e.id.in_(needs_work), e.status == st.EX_RUNNING)
                .values(heartbeat_at=now)
                .returning(e.id)
            ).scalars())
    report.requeued = list(dict.fromkeys(requeued))


def _fan_in(engine: EngineContext, now: datetime, report: SweepReport) -> None:
    e, r = executions.c, recipients.c
    with engine.db.connect() as conn:
        done = conn.execute(
            sa.select(e.id).where(
                e.status.in_(st.EX_FANNED_OUT), e.fanned_out.is_(True),
                ~sa.exists().where(r.execution_id == e.id, r.status.not_in(st.R_TERMINAL)),
            )
        ).scalars().all()
    for execution_id in done:
        with dbmod.write_transaction(engine.db) as conn:
            if finish_if_done(conn, execution_id, now=now) is not None:
                report.finished.append(execution_id)


# --------------------------------------------------------------------------- next wakeup


def next_wakeup(engine: EngineContext, *, now: datetime) -> datetime | None:
    """The earliest time dispatch or sweep has something to do: a pending occurrence, a
    window reopening, a lease expiring. The service may sleep until then (it still polls for
    new applies and lost tasks)."""
    o, e, r = occurrences.c, executions.c, recipients.c
    with engine.db.connect() as conn:
        times = [
            conn.execute(sa.select(sa.func.min(o.at)).where(o.status == st.OCC_PENDING)).scalar(),
            conn.execute(sa.select(sa.func.min(e.resume_at))
                         .where(e.status == st.EX_WAITING_WINDOW)).scalar(),
            conn.execute(sa.select(sa.func.min(r.lease_until))
                         .where(r.lease_owner.is_not(None))).scalar(),
        ]
    found = [t for t in times if t is not None]
    return min(found) if found else None
