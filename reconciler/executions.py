"""Read-only reports on executions and channel breakers: `flowspec executions list|show`, the
executions section of `flowspec status`, and the stats `flowspec run` prints at the end.

Everything is read from the rows the engine writes (docs/engine.md); nothing here changes state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flowspec.plan import format_utc
from reconciler import models
from reconciler import states as st

STAT_FIELDS = ("sent", "delivered", "read", "completed", "failed", "unknown")
# What the stats line says for an execution that has not finished (ExecutionSummary.final).
STATS_NOT_FINAL = "written when the execution finishes (every recipient done)"


def _utc(t: datetime | None) -> str | None:
    return format_utc(t) if t is not None else None


@dataclass(frozen=True)
class ExecutionSummary:
    id: int
    organization: str
    automation: str
    occurrence_key: str | None
    at: datetime | None  # the occurrence's planned time (None: manual without occurrence)
    manual: bool
    status: str
    reason: str | None
    channel: str | None
    started_at: datetime | None
    finished_at: datetime | None
    resume_at: datetime | None
    audience_size: int
    opted_out: int
    stats: dict[str, int]

    @property
    def label(self) -> str:
        return f"{self.organization}/{self.automation}"

    @property
    def final(self) -> bool:
        """Whether `stats` holds the execution's numbers. The fan-in writes them when the last
        recipient is terminal (SPEC 6.9); until then the columns read zero whatever was sent,
        so they are not shown (JSON: null) and live counts are read from the recipients."""
        return self.status in st.EX_FINAL

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization": self.organization,
            "automation": self.automation,
            "occurrence_key": self.occurrence_key,
            "at": _utc(self.at),
            "manual": self.manual,
            "status": self.status,
            "reason": self.reason,
            "channel": self.channel,
            "started_at": _utc(self.started_at),
            "finished_at": _utc(self.finished_at),
            "resume_at": _utc(self.resume_at),
            "audience_size": self.audience_size,
            "opted_out": self.opted_out,
            "stats": self.stats if self.final else None,
        }


def _summary_query() -> sa.Select[Any]:
    e, a, o = models.executions.c, models.automations.c, models.occurrences.c
    return (
        sa.select(
            e.id, e.organization, a.name.label("automation"), o.key.label("occurrence_key"),
            o.at, e.manual, e.status, e.reason, e.channel, e.started_at, e.finished_at,
            e.resume_at, e.audience_size, e.opted_out, *[e[f] for f in STAT_FIELDS],
        )
        .join(models.automations, sa.and_(a.id == e.automation_id, a.organization == e.organization))
        .outerjoin(models.occurrences, o.id == e.occurrence_id)
    )


def _summary(row: Any) -> ExecutionSummary:
    return ExecutionSummary(
        row.id, row.organization, row.automation, row.occurrence_key, row.at, bool(row.manual),
        row.status, row.reason, row.channel, row.started_at, row.finished_at, row.resume_at,
        row.audience_size or 0, row.opted_out or 0, {f: getattr(row, f) or 0 for f in STAT_FIELDS},
    )


def list_executions(
    conn: Connection,
    *,
    ids: Sequence[int] = (),
    organizations: Sequence[str] = (),
    statuses: Sequence[str] = (),
    automation: str | None = None,
    limit: int | None = 20,
) -> list[ExecutionSummary]:
    """Newest first (by id), filtered."""
    e, a = models.executions.c, models.automations.c
    q = _summary_query().order_by(e.id.desc())
    if ids:
        q = q.where(e.id.in_(ids))
    if organizations:
        q = q.where(e.organization.in_(organizations))
    if statuses:
        q = q.where(e.status.in_(statuses))
    if automation:
        org, _, name = automation.rpartition("/")
        q = q.where(a.name == name)
        if org:
            q = q.where(a.organization == org)
    if limit is not None:
        q = q.limit(limit)
    return [_summary(r) for r in conn.execute(q)]


def live_counts(conn: Connection, execution_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Recipients per status, counted now (an unfinished execution's columns are not final)."""
    r = models.recipients.c
    out: dict[int, dict[str, int]] = {i: {} for i in execution_ids}
    if not execution_ids:
        return out
    for eid, status, n in conn.execute(
        sa.select(r.execution_id, r.status, sa.func.count())
        .where(r.execution_id.in_(execution_ids))
        .group_by(r.execution_id, r.status)
    ):
        out[eid][status] = n
    return out


# --------------------------------------------------------------------------- one execution


@dataclass(frozen=True)
class RecipientOutcome:
    id: int
    contact_id: str
    phone: str | None
    status: str
    attempts: int
    error_code: str | None
    error: str | None
    current_node: str | None
    next_attempt_at: datetime | None
    messages: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "phone": self.phone,
            "status": self.status,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "error": self.error,
            "current_node": self.current_node,
            "next_attempt_at": _utc(self.next_attempt_at),
            "messages": self.messages,
        }


@dataclass
class ExecutionDetail:
    summary: ExecutionSummary
    counts: dict[str, int]
    recipients: list[RecipientOutcome] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # error code -> recipients

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "flowspec.execution/v1",
            **self.summary.to_json(),
            "recipients_by_status": self.counts,
            "errors_by_code": self.errors,
            "recipients": [r.to_json() for r in self.recipients],
        }


def execution_detail(conn: Connection, execution_id: int, *, status: Sequence[str] = ()) -> ExecutionDetail | None:
    found = list_executions(conn, ids=[execution_id], limit=None)
    if not found:
        return None
    r, m = models.recipients.c, models.messages.c
    counts = live_counts(conn, [execution_id])[execution_id]
    q = sa.select(
        r.id, r.contact_id, r.phone, r.status, r.attempts, r.error_code, r.error, r.current_node,
        r.next_attempt_at,
    ).where(r.execution_id == execution_id).order_by(r.id)
    if status:
        q = q.where(r.status.in_(status))
    rows = list(conn.execute(q))
    by_recipient: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
    if rows:
        ids = list(by_recipient)
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for msg in conn.execute(
                sa.select(m.recipient_id, m.step, m.node, m.status, m.message_id, m.error_code,
                          m.sent_at)
                .where(m.recipient_id.in_(chunk)).order_by(m.recipient_id, m.step)
            ):
                by_recipient[msg.recipient_id].append({
                    "step": msg.step, "node": msg.node, "status": msg.status,
                    "message_id": msg.message_id, "error_code": msg.error_code,
                    "sent_at": _utc(msg.sent_at),
                })
    errors: dict[str, int] = {}
    for code, n in conn.execute(
        sa.select(r.error_code, sa.func.count())
        .where(r.execution_id == execution_id, r.error_code.is_not(None))
        .group_by(r.error_code)
    ):
        errors[code] = n
    recipients = [
        RecipientOutcome(row.id, row.contact_id, row.phone, row.status, row.attempts or 0,
                         row.error_code, row.error, row.current_node, row.next_attempt_at,
                         by_recipient[row.id])
        for row in rows
    ]
    return ExecutionDetail(found[0], counts, recipients, dict(sorted(errors.items())))


# --------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class CircuitInfo:
    organization: str
    channel: str
    state: str
    code: str | None
    reason: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    paused_executions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "channel": self.channel,
            "state": self.state,
            "code": self.code,
            "reason": self.reason,
            "opened_at": _utc(self.opened_at),
            "closed_at": _utc(self.closed_at),
            "paused_executions": self.paused_executions,
        }


def circuits(conn: Connection, *, organizations: Sequence[str] = (), open_only: bool = False) -> list[CircuitInfo]:
    c, e = models.channel_circuits.c, models.executions.c
    paused: dict[tuple[str, str | None], int] = {}
    for org, channel, n in conn.execute(
        sa.select(e.organization, e.channel, sa.func.count())
        .where(e.status == st.EX_PAUSED_CIRCUIT).group_by(e.organization, e.channel)
    ):
        paused[(org, channel)] = n
    q = sa.select(models.channel_circuits).order_by(c.organization, c.channel)
    if organizations:
        q = q.where(c.organization.in_(organizations))
    if open_only:
        q = q.where(c.state == "open")
    return [
        CircuitInfo(row.organization, row.channel, row.state, row.code, row.reason, row.opened_at,
                    row.closed_at, paused.get((row.organization, row.channel), 0))
        for row in conn.execute(q)
    ]


# --------------------------------------------------------------------------- `flowspec status`


@dataclass
class ExecutionsReport:
    """The executions part of `flowspec status`: what runs, what waits and why, what finished."""

    active: list[ExecutionSummary] = field(default_factory=list)
    finished: list[ExecutionSummary] = field(default_factory=list)  # the latest few
    by_status: dict[str, int] = field(default_factory=dict)
    open_circuits: list[CircuitInfo] = field(default_factory=list)
    live: dict[int, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "by_status": self.by_status,
            "active": [
                {**x.to_json(), "recipients_by_status": self.live.get(x.id, {})} for x in self.active
            ],
            "recent_finished": [x.to_json() for x in self.finished],
            "open_circuits": [c.to_json() for c in self.open_circuits],
        }


def collect_executions(
    conn: Connection, *, organizations: Sequence[str] = (), recent: int = 5
) -> ExecutionsReport:
    e = models.executions.c
    report = ExecutionsReport()
    q = sa.select(e.status, sa.func.count()).group_by(e.status)
    if organizations:
        q = q.where(e.organization.in_(organizations))
    report.by_status = {status: n for status, n in conn.execute(q)}
    report.active = list_executions(conn, organizations=organizations, statuses=st.EX_ACTIVE, limit=50)
    report.active.reverse()  # oldest first: the one that has waited longest leads
    report.finished = list_executions(
        conn, organizations=organizations, statuses=st.EX_FINAL, limit=recent
    )
    report.live = live_counts(conn, [x.id for x in report.active])
    report.open_circuits = circuits(conn, organizations=organizations, open_only=True)
    return report


def _stats_text(stats: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in stats.items() if v or k in ("sent", "failed"))


def describe_wait(x: ExecutionSummary) -> str:
    if x.status == st.EX_WAITING_WINDOW:
        return f"waiting for the window, resumes {_utc(x.resume_at) or '?'}"
    if x.status == st.EX_PAUSED_CIRCUIT:
        return f"paused: channel {x.channel} circuit open (flowspec channel resume {x.channel})"
    if x.status == st.EX_STARTING:
        return "starting (resolving the audience)"
    return x.status


def render_executions_text(report: ExecutionsReport) -> list[str]:
    lines: list[str] = []
    if not report.by_status:
        lines.append("executions: none yet")
        return lines
    lines.append(
        "executions: " + ", ".join(f"{n} {s}" for s, n in sorted(report.by_status.items()))
    )
    for c in report.open_circuits:
        lines.append(
            f"  CIRCUIT OPEN  {c.organization}/{c.channel} since {_utc(c.opened_at)}: "
            f"{c.code or '-'} {c.reason or ''}".rstrip()
            + f"; {c.paused_executions} execution(s) paused; "
            f"resume with `flowspec channel resume {c.channel}`"
        )
    for x in report.active:
        live = report.live.get(x.id, {})
        total = max(sum(live.values()), x.audience_size)
        done = sum(live.get(s, 0) for s in st.R_TERMINAL)
        sent = sum(live.get(s, 0) for s in st.R_COUNTED_SENT)
        what = "manual" if x.manual else (_utc(x.at) or "")
        lines.append(
            f"  #{x.id} {x.label} {what}: {describe_wait(x)}; {sent}/{total} sent, "
            f"{done}/{total} done"
        )
    for x in report.finished:
        what = "manual" if x.manual else (_utc(x.at) or "")
        tail = f" ({x.reason})" if x.reason else ""
        lines.append(
            f"  #{x.id} {x.label} {what}: {x.status} {_utc(x.finished_at) or ''}{tail}; "
            f"{_stats_text(x.stats)}"
        )
    return lines
