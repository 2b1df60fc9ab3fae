"""`flowspec status`: what is live, what was last attempted, and whether the files have drifted.

Read-only. The applied and attempted revisions are reported apart (as Flux and Argo CD do), so
a failing or interrupted apply never hides which revision is running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from flowspec.plan import format_utc
from reconciler import states as st
from reconciler.apply import ConfigIdentity, latest_applied
from reconciler.models import automations, executions, occurrences, revisions

STATUS_FORMAT = "flowspec.status/v1"
DriftState = Literal["in_sync", "drifted", "not_applied", "unknown"]


@dataclass(frozen=True)
class RevisionInfo:
    id: int
    status: str
    content_hash: str
    git_commit: str | None
    git_dirty: bool
    created_at: datetime
    finished_at: datetime | None
    checked_at: datetime | None
    error: str | None
    inserted: int
    updated: int
    cancelled: int

    @classmethod
    def of(cls, row: Row[Any]) -> RevisionInfo:
        return cls(
            row.id, row.status, row.content_hash, row.git_commit, row.git_dirty, row.created_at,
            row.finished_at, row.checked_at, row.error, row.inserted, row.updated, row.cancelled,
        )

    @property
    def label(self) -> str:
        git = f"git {self.git_commit[:7]}{'+dirty' if self.git_dirty else ''}, " if self.git_commit else ""
        return f"revision {self.id} ({git}content {self.content_hash[:19]})"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "content_hash": self.content_hash,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "created_at": _utc(self.created_at),
            "finished_at": _utc(self.finished_at),
            "checked_at": _utc(self.checked_at),
            "error": self.error,
            "changes": {"inserted": self.inserted, "updated": self.updated, "cancelled": self.cancelled},
        }


@dataclass(frozen=True)
class Drift:
    state: DriftState
    files_hash: str | None = None
    files_git_commit: str | None = None
    files_git_dirty: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "files_content_hash": self.files_hash,
            "files_git_commit": self.files_git_commit,
            "files_git_dirty": self.files_git_dirty,
        }


@dataclass(frozen=True)
class AutomationStatus:
    organization: str
    name: str
    source: str
    state: Literal["active", "paused", "inactive", "removed"]
    next_scheduled_at: datetime | None
    last_executed_at: datetime | None
    execution_count: int  # finished ones: the fan-in counts an execution when it finishes
    running: int  # executions started and not finished (starting, running, waiting, paused)
    pending: int
    held: int  # paused or inactive occurrences kept for when the automation resumes
    totals: dict[str, int]

    @property
    def executions_text(self) -> str:
        """Finished executions, and those under way beside them: a running campaign does not
        read as an automation that never ran."""
        return str(self.execution_count) + (f" (+{self.running} running)" if self.running else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "name": self.name,
            "source": self.source,
            "state": self.state,
            "next_scheduled_at": _utc(self.next_scheduled_at),
            "last_executed_at": _utc(self.last_executed_at),
            "execution_count": self.execution_count,
            "running_executions": self.running,
            "pending_occurrences": self.pending,
            "held_occurrences": self.held,
            "totals": self.totals,
        }


@dataclass
class StatusReport:
    database: str
    applied: RevisionInfo | None
    attempted: RevisionInfo | None  # the latest revision when it is not the applied one
    drift: Drift
    automations: list[AutomationStatus] = field(default_factory=list)
    removed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATUS_FORMAT,
            "database": self.database,
            "applied_revision": self.applied.to_json() if self.applied else None,
            "attempted_revision": self.attempted.to_json() if self.attempted else None,
            "drift": self.drift.to_json(),
            "automations": [a.to_json() for a in self.automations],
            "removed_automations": self.removed,
        }


def _utc(t: datetime | None) -> str | None:
    return format_utc(t) if t is not None else None


def drift_of(applied: RevisionInfo | None, files: ConfigIdentity | None) -> Drift:
    if files is None:
        return Drift("unknown")
    if applied is None:
        return Drift("not_applied", files.content_hash, files.git_commit, files.git_dirty)
    state: DriftState = "in_sync" if applied.content_hash == files.content_hash else "drifted"
    return Drift(state, files.content_hash, files.git_commit, files.git_dirty)


def collect_status(
    conn: Connection,
    *,
    database: str,
    files: ConfigIdentity | None,
    organizations: Sequence[str] = (),
    include_removed: bool = False,
) -> StatusReport:
    applied_row = latest_applied(conn)
    applied = RevisionInfo.of(applied_row) if applied_row is not None else None
    last = conn.execute(sa.select(revisions).order_by(revisions.c.id.desc()).limit(1)).first()
    attempted = None
    if last is not None and (applied is None or last.id != applied.id) and last.status != "applied":
        attempted = RevisionInfo.of(last)
    report = StatusReport(database, applied, attempted, drift_of(applied, files))

    a, o = automations.c, occurrences.c
    counts_q = (
        sa.select(o.organization, o.automation_id, o.status, sa.func.count())
        .where(o.status.in_(("pending", "paused", "inactive")))
        .group_by(o.organization, o.automation_id, o.status)
    )
    e = executions.c
    running_q = (
        sa.select(e.organization, e.automation_id, sa.func.count())
        .where(e.status.in_(st.EX_ACTIVE))
        .group_by(e.organization, e.automation_id)
    )
    autos_q = sa.select(automations).order_by(a.organization, a.name)
    if organizations:
        counts_q = counts_q.where(o.organization.in_(organizations))
        running_q = running_q.where(e.organization.in_(organizations))
        autos_q = autos_q.where(a.organization.in_(organizations))
    counts: dict[tuple[str, int], dict[str, int]] = {}
    for org, auto_id, status, n in conn.execute(counts_q):
        counts.setdefault((org, auto_id), {})[status] = n
    running = {(org, auto_id): n for org, auto_id, n in conn.execute(running_q)}
    for r in conn.execute(autos_q):
        if r.removed_at is not None:
            report.removed += 1
            if not include_removed:
                continue
        c = counts.get((r.organization, r.id), {})
        state: Literal["active", "paused", "inactive", "removed"]
        if r.removed_at is not None:
            state = "removed"
        elif not r.is_active:
            state = "inactive"
        elif r.is_paused:
            state = "paused"
        else:
            state = "active"
        report.automations.append(
            AutomationStatus(
                r.organization, r.name, r.source, state, r.next_scheduled_at, r.last_executed_at,
                r.execution_count, running.get((r.organization, r.id), 0), c.get("pending", 0),
                c.get("paused", 0) + c.get("inactive", 0),
                {
                    "sent": r.total_sent, "delivered": r.total_delivered, "read": r.total_read,
                    "completed": r.total_completed, "failed": r.total_failed,
                },
            )
        )
    return report


def render_text(report: StatusReport) -> str:
    lines = [f"database: {report.database}"]
    if report.applied is None:
        lines.append("applied:  none (run `flowspec apply`)")
    else:
        r = report.applied
        when = _utc(r.finished_at)
        checked_at = _utc(r.checked_at)
        checked = f", last checked {checked_at}" if checked_at and checked_at != when else ""
        lines.append(f"applied:  {r.label} at {when}{checked}")
    if report.attempted is not None:
        r = report.attempted
        if r.status == "failed":
            lines.append(f"attempted: {r.label} FAILED at {_utc(r.created_at)}: {r.error}")
        else:
            lines.append(
                f"attempted: {r.label} started {_utc(r.created_at)}, not finished "
                f"(in progress, or interrupted: nothing of it was written)"
            )
    d = report.drift
    if d.state == "in_sync":
        lines.append("files:    in sync with the applied revision")
    elif d.state == "drifted":
        lines.append(
            f"files:    DRIFTED: files on disk ({(d.files_hash or '')[:19]}) differ from the "
            f"applied revision; run `flowspec apply`"
        )
    elif d.state == "not_applied":
        lines.append("files:    never applied; run `flowspec apply`")
    if not report.automations:
        lines.append("automations: none")
    else:
        header = ("AUTOMATION", "STATE", "NEXT SEND", "LAST EXECUTION", "EXECUTIONS", "PENDING")
        rows = [
            (
                f"{x.organization}/{x.name}", x.state, _utc(x.next_scheduled_at) or "-",
                _utc(x.last_executed_at) or "-", x.executions_text,
                str(x.pending) + (f" (+{x.held} held)" if x.held else ""),
            )
            for x in report.automations
        ]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        lines.append("")
        for cells in (header, *rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    if report.removed:
        lines.append(f"({report.removed} removed automation(s) kept for their history)")
    return "\n".join(lines)
