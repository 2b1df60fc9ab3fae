"""Dispatch (SPEC 6.1-6.3): due occurrences become executions, exactly once.

Any number of dispatchers may run (several `flowspec serve` processes, several machines). Each
automation is handled in one write transaction that first locks the automation's row
(PostgreSQL `SELECT ... FOR UPDATE`; SQLite's BEGIN IMMEDIATE holds the single write lock), then
re-reads its due `pending` occurrences and moves each with an update conditional on its status.
Two dispatchers therefore never both run an occurrence, and the overlap check ("is an execution
of this automation active?") cannot race with another dispatcher starting one.

Per automation, of the occurrences due now:
- more than `catchup_window` late (the service was down): `missed`, reason `catchup_window`;
- of the rest, only the latest runs; the others are `missed`, reason `coalesced`, so a restart
  after downtime never sends a storm of stale campaigns;
- the one that runs meets `overlap_policy` when an execution of the automation is still active:
  `skip` → `skipped_overlap`; `queue` → `queued` (started by `start_queued` once nothing is
  active, oldest first, still subject to the catch-up window); `allow` → runs alongside.

Each setting is the occurrence's own: the automation's `delivery` with the occurrence's `modify`
overrides on top. The execution is enqueued only after the transaction commits; if the queue
loses the task, the sweep re-enqueues it (its heartbeat goes stale).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from flowspec import models, timeparse
from flowspec.diagnostics import UserError
from flowspec.plan import format_local
from flowspec.tzresolve import get_zone
from reconciler import db as dbmod
from reconciler import states as st
from reconciler.engine.context import EngineContext
from reconciler.engine.runplan import dispatch_plan, effective_delivery
from reconciler.engine.sql import for_update
from reconciler.models import automations, executions, occurrences

Enqueue = Callable[[int], None]


@dataclass
class DispatchReport:
    executions: list[int] = field(default_factory=list)  # created and enqueued, in order
    missed: int = 0  # more than catchup_window late
    coalesced: int = 0
    skipped_overlap: int = 0
    queued: int = 0

    def merge(self, other: DispatchReport) -> None:
        self.executions += other.executions
        self.missed += other.missed
        self.coalesced += other.coalesced
        self.skipped_overlap += other.skipped_overlap
        self.queued += other.queued


@dataclass(frozen=True, slots=True)
class Due:
    """A due occurrence as the pure planner sees it."""

    id: int
    key: str
    at: datetime
    catchup: timedelta


@dataclass(frozen=True)
class CatchUp:
    run: Due | None
    missed: list[Due]  # late beyond their catch-up window
    coalesced: list[Due]  # superseded by `run`


def plan_catch_up(due: Sequence[Due], *, now: datetime) -> CatchUp:
    """SPEC 6.2 for one automation's due occurrences (pure)."""
    ordered = sorted(due, key=lambda d: (d.at, d.key))
    late = [d for d in ordered if now - d.at > d.catchup]
    fresh = [d for d in ordered if now - d.at <= d.catchup]
    return CatchUp(fresh[-1] if fresh else None, late, fresh[:-1])


# --------------------------------------------------------------------------- dispatch_due


def dispatch_due(
    engine: EngineContext, *, now: datetime, enqueue: Enqueue, limit: int = 1000
) -> DispatchReport:
    """Claim every due `pending` occurrence (at <= now), apply catch-up, coalescing and overlap,
    create executions (`starting`) and enqueue them. Safe to run in any number of processes."""
    o = occurrences.c
    with engine.db.connect() as conn:
        groups = conn.execute(
            sa.select(o.organization, o.automation_id)
            .where(o.status == st.OCC_PENDING, o.at <= now)
            .group_by(o.organization, o.automation_id)
            .limit(limit)
        ).all()
    report = DispatchReport()
    for organization, automation_id in groups:
        with dbmod.write_transaction(engine.db) as conn:
            part = _dispatch_automation(conn, engine, organization, automation_id, now)
        for execution_id in part.executions:
            enqueue(execution_id)
        report.merge(part)
    report.merge(start_queued(engine, now=now, enqueue=enqueue))
    return report


def _lock_automation(conn: Connection, organization: str, automation_id: int) -> Row[Any] | None:
    a = automations.c
    query = sa.select(a.id, a.organization, a.name, a.spec, a.timezone).where(
        a.organization == organization, a.id == automation_id
    )
    return conn.execute(for_update(conn, query)).first()


def _delivery(auto: Row[Any], overrides: Mapping[str, Any] | None) -> models.Delivery:
    spec = (auto.spec or {}).get("spec", {})
    return effective_delivery(spec.get("delivery") or {}, overrides or {})


def _catchup(delivery: models.Delivery) -> timedelta:
    return timeparse.parse_duration(delivery.catchup_window)


def _active(conn: Connection, organization: str, automation_id: int) -> bool:
    e = executions.c
    return conn.execute(
        sa.select(e.id).where(
            e.organization == organization,
            e.automation_id == automation_id,
            e.status.in_(st.EX_ACTIVE),
        ).limit(1)
    ).first() is not None


def _has_queued(conn: Connection, organization: str, automation_id: int) -> bool:
    o = occurrences.c
    return conn.execute(
        sa.select(o.id).where(
            o.organization == organization, o.automation_id == automation_id,
            o.status == st.OCC_QUEUED,
        ).limit(1)
    ).first() is not None


def _move(
    conn: Connection, ids: Sequence[int], *, to: str, now: datetime, reason: str | None = None,
    detail: str | None = None, worker: str | None = None, from_status: str = st.OCC_PENDING,
) -> int:
    if not ids:
        return 0
    o = occurrences.c
    values: dict[str, Any] = {"status": to, "updated_at": now}
    if reason is not None:
        values.update(reason=reason, detail=detail)
    if worker is not None:
        values.update(claimed_at=now, claimed_by=worker)
    result = conn.execute(
        occurrences.update().where(o.id.in_(list(ids)), o.status == from_status).values(**values)
    )
    return int(result.rowcount)


def _dispatch_automation(
    conn: Connection, engine: EngineContext, organization: str, automation_id: int, now: datetime
) -> DispatchReport:
    report = DispatchReport()
    auto = _lock_automation(conn, organization, automation_id)
    if auto is None:
        return report
    o = occurrences.c
    rows = conn.execute(
        sa.select(o.id, o.key, o.at, o.overrides).where(
            o.organization == organization, o.automation_id == automation_id,
            o.status == st.OCC_PENDING, o.at <= now,
        )
    ).all()
    if not rows:
        return report  # another dispatcher got here first
    overrides = {r.id: r.overrides or {} for r in rows}
    plan = plan_catch_up(
        [Due(r.id, r.key, r.at, _catchup(_delivery(auto, r.overrides))) for r in rows], now=now
    )
    report.missed += _move(conn, [d.id for d in plan.missed], to=st.OCC_MISSED, now=now,
                           reason=st.REASON_CATCHUP, detail="more than catchup_window late")
    if plan.run is not None:
        report.coalesced += _move(
            conn, [d.id for d in plan.coalesced], to=st.OCC_MISSED, now=now,
            reason=st.REASON_COALESCED, detail=f"superseded by {plan.run.key}",
        )
        _run_or_hold(conn, engine, auto, plan.run.id, plan.run.key, overrides[plan.run.id],
                     now, report)
    _refresh_next_scheduled(conn, organization, automation_id)
    return report


def _refresh_next_scheduled(conn: Connection, organization: str, automation_id: int) -> None:
    """The automation's next send is its earliest still-pending occurrence (SPEC 5), refreshed in
    the claiming transaction so status and the dashboard never show a time already dispatched."""
    o, a = occurrences.c, automations.c
    earliest = (
        sa.select(sa.func.min(o.at))
        .where(o.organization == organization, o.automation_id == automation_id,
               o.status == st.OCC_PENDING)
        .scalar_subquery()
    )
    conn.execute(
        automations.update()
        .where(a.organization == organization, a.id == automation_id)
        .values(next_scheduled_at=earliest)
    )


def _run_or_hold(
    conn: Connection, engine: EngineContext, auto: Row[Any], occurrence_id: int, key: str,
    overrides: Mapping[str, Any], now: datetime, report: DispatchReport, *,
    from_status: str = st.OCC_PENDING, manual: bool = False, ignore_window: bool = False,
) -> str:
    """Overlap policy for one occurrence, then the execution. Returns the occurrence's status."""
    policy = _delivery(auto, overrides).overlap_policy
    busy = _active(conn, auto.organization, auto.id)
    if policy == "queue" and from_status == st.OCC_PENDING and not busy:
        busy = _has_queued(conn, auto.organization, auto.id)  # first in, first out
    if busy and policy == "skip":
        report.skipped_overlap += _move(
            conn, [occurrence_id], to=st.OCC_SKIPPED_OVERLAP, now=now, reason=st.REASON_OVERLAP,
            detail="the previous execution was still running", from_status=from_status,
        )
        return st.OCC_SKIPPED_OVERLAP
    if busy and policy == "queue":
        if from_status != st.OCC_QUEUED:
            report.queued += _move(conn, [occurrence_id], to=st.OCC_QUEUED, now=now,
                                   from_status=from_status)
        return st.OCC_QUEUED
    if not _move(conn, [occurrence_id], to=st.OCC_DISPATCHED, now=now, worker=engine.worker,
                 from_status=from_status):
        return "lost"  # another dispatcher moved it in between (cannot happen under the lock)
    execution_id = conn.execute(
        executions.insert().values(
            organization=auto.organization,
            automation_id=auto.id,
            occurrence_id=occurrence_id,
            status=st.EX_STARTING,
            manual=manual,
            started_at=now,
            heartbeat_at=now,
            channel=((auto.spec or {}).get("spec") or {}).get("whatsapp_number"),
            plan=dispatch_plan(auto.spec or {}, overrides, key=key, ignore_window=ignore_window),
            created_at=now,
            updated_at=now,
        ).returning(executions.c.id)
    ).scalar_one()
    report.executions.append(int(execution_id))
    return st.OCC_DISPATCHED


# --------------------------------------------------------------------------- queue policy


def start_queued(engine: EngineContext, *, now: datetime, enqueue: Enqueue) -> DispatchReport:
    """Start the oldest `queued` occurrence of each automation that has nothing active (its
    predecessor finished). A queued occurrence more than catchup_window late is `missed`."""
    o = occurrences.c
    report = DispatchReport()
    with engine.db.connect() as conn:
        groups = conn.execute(
            sa.select(o.organization, o.automation_id).where(o.status == st.OCC_QUEUED)
            .group_by(o.organization, o.automation_id)
        ).all()
    for organization, automation_id in groups:
        part = DispatchReport()
        with dbmod.write_transaction(engine.db) as conn:
            auto = _lock_automation(conn, organization, automation_id)
            if auto is None or _active(conn, organization, automation_id):
                continue
            rows = conn.execute(
                sa.select(o.id, o.key, o.at, o.overrides, o.slot).where(
                    o.organization == organization, o.automation_id == automation_id,
                    o.status == st.OCC_QUEUED,
                ).order_by(o.at, o.key)
            ).all()
            for r in rows:
                if now - r.at > _catchup(_delivery(auto, r.overrides)):
                    part.missed += _move(conn, [r.id], to=st.OCC_MISSED, now=now,
                                         reason=st.REASON_CATCHUP, from_status=st.OCC_QUEUED,
                                         detail="more than catchup_window late when its turn came")
                    continue
                _run_or_hold(conn, engine, auto, r.id, r.key, r.overrides or {}, now, part,
                             from_status=st.OCC_QUEUED, manual=r.slot.startswith("manual-"))
                break
        for execution_id in part.executions:
            enqueue(execution_id)
        report.merge(part)
    return report


# --------------------------------------------------------------------------- manual trigger


@dataclass(frozen=True)
class TriggerResult:
    key: str  # <org>/<name>/manual-<UTC YYYYmmddTHHMMSSZ>
    status: str  # dispatched | queued | skipped_overlap
    execution_id: int | None  # set when dispatched


def manual_key(organization: str, name: str, now: datetime) -> str:
    return f"{organization}/{name}/manual-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def trigger(
    engine: EngineContext,
    organization: str,
    automation: str,
    *,
    now: datetime,
    ignore_window: bool = False,
    enqueue: Enqueue | None = None,
) -> TriggerResult:
    """Run an automation now (`flowspec trigger`): a `manual-` occurrence subject to the
    overlap policy; its execution honours the window and day rules (unless `ignore_window`)
    and, always, the rate limits. Raises UserError when the automation is not applied."""
    a = automations.c
    key = manual_key(organization, automation, now)
    report = DispatchReport()
    with dbmod.write_transaction(engine.db) as conn:
        found = conn.execute(
            sa.select(a.id).where(a.organization == organization, a.name == automation,
                                  a.removed_at.is_(None))
        ).first()
        if found is None:
            raise UserError(
                f"automation '{automation}' (organization '{organization}') is not in the "
                f"database; run `flowspec apply` first"
            )
        auto = _lock_automation(conn, organization, found.id)
        assert auto is not None
        o = occurrences.c
        if conn.execute(sa.select(o.id).where(o.organization == organization, o.key == key)).first():
            raise UserError(f"{key} already exists: one manual trigger per automation per second")
        zone = get_zone(auto.timezone)
        occurrence_id = conn.execute(
            occurrences.insert().values(
                organization=organization, key=key, automation_id=auto.id,
                slot=key.rsplit("/", 1)[1], at=now,
                local=format_local(now.astimezone(zone.tzinfo)), status=st.OCC_PENDING,
                overrides={}, detail="manual trigger" + (" (ignore_window)" if ignore_window else ""),
                created_at=now, updated_at=now,
            ).returning(o.id)
        ).scalar_one()
        status = _run_or_hold(conn, engine, auto, occurrence_id, key, {}, now, report,
                              manual=True, ignore_window=ignore_window)
    if enqueue is not None:
        for execution_id in report.executions:
            enqueue(execution_id)
    return TriggerResult(key, status, report.executions[0] if report.executions else None)
