"""Live progress of executions for `flowspec run`: rich bars on a terminal, plain lines otherwise.

The figures come from the recipients' rows (the database is the truth), read by the caller's
polling loop; this module only draws them. A bar per execution: recipients sent / failed /
waiting out of the audience, and the send rate since the bar appeared.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flowspec.plan import format_utc
from reconciler import models
from reconciler import states as st

SENT = st.R_COUNTED_SENT
FAILED = st.R_COUNTED_FAILED
TERMINAL = st.R_TERMINAL


@dataclass(frozen=True)
class ExecutionProgress:
    execution_id: int
    label: str  # "acme/daily-checkin 2026-11-25T11:00:00Z"
    status: str
    total: int
    sent: int
    failed: int
    waiting: int  # not terminal, held back until later (rate limit, retry, window)
    done: int  # terminal

    @property
    def finished(self) -> bool:
        return self.status == "finished" or (self.total > 0 and self.done >= self.total and self.status != "starting")


def read_progress(conn: Connection, execution_ids: Sequence[int], *, now: datetime) -> list[ExecutionProgress]:
    """One row per execution, in the order given."""
    if not execution_ids:
        return []
    e, r, a, o = models.executions.c, models.recipients.c, models.automations.c, models.occurrences.c
    heads = {
        row.id: row
        for row in conn.execute(
            sa.select(e.id, e.status, e.audience_size, e.manual, a.organization, a.name, o.at)
            .join(models.automations, sa.and_(a.id == e.automation_id, a.organization == e.organization))
            .outerjoin(models.occurrences, o.id == e.occurrence_id)
            .where(e.id.in_(execution_ids))
        )
    }
    counts: dict[int, dict[str, int]] = {i: {} for i in execution_ids}
    waiting: dict[int, int] = dict.fromkeys(execution_ids, 0)
    for eid, status, n in conn.execute(
        sa.select(r.execution_id, r.status, sa.func.count())
        .where(r.execution_id.in_(execution_ids))
        .group_by(r.execution_id, r.status)
    ):
        counts[eid][status] = n
    for eid, n in conn.execute(
        sa.select(r.execution_id, sa.func.count())
        # Waiting = claimable later: unleased with a node to run (the take's index, 0010).
        .where(r.execution_id.in_(execution_ids), r.status.not_in(TERMINAL), r.next_attempt_at > now,
               models.CLAIMABLE)
        .group_by(r.execution_id)
    ):
        waiting[eid] = n
    out = []
    for eid in execution_ids:
        head = heads.get(eid)
        if head is None:
            continue
        c = counts[eid]
        total = max(sum(c.values()), head.audience_size or 0)
        what = "manual" if head.manual else (format_utc(head.at) if head.at else "")
        out.append(
            ExecutionProgress(
                eid, f"{head.organization}/{head.name} {what}".rstrip(), head.status, total,
                sum(c.get(s, 0) for s in SENT), sum(c.get(s, 0) for s in FAILED), waiting[eid],
                sum(c.get(s, 0) for s in TERMINAL),
            )
        )
    return out


class Display:
    """Draws progress; `update` is called with fresh figures, `close` at the end."""

    def __init__(self, stream: IO[str] | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._started = time.monotonic()
        self._first_seen: dict[int, float] = {}
        self._last_line: dict[int, tuple[Any, ...]] = {}
        self._last_print = 0.0
        self._progress: Any = None
        self._tasks: dict[int, Any] = {}
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=20),
                TextColumn("[green]{task.fields[sent]} sent[/] [red]{task.fields[failed]} failed[/]"
                           " [yellow]{task.fields[waiting]} waiting[/] of {task.fields[of]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()

    def _rate(self, p: ExecutionProgress) -> str:
        since = self._first_seen.setdefault(p.execution_id, time.monotonic())
        elapsed = time.monotonic() - since
        return f"{p.sent / elapsed:.1f}/s" if elapsed > 0.05 and p.sent else "-"

    def update(self, rows: Iterable[ExecutionProgress], *, force: bool = False) -> None:
        for p in rows:
            rate = self._rate(p)
            if self._progress is not None:
                task = self._tasks.get(p.execution_id)
                fields = {"sent": p.sent, "failed": p.failed, "waiting": p.waiting, "rate": rate,
                          "of": p.total or "?"}
                if task is None:
                    self._tasks[p.execution_id] = self._progress.add_task(
                        f"#{p.execution_id} {p.label}", total=p.total or None,
                        completed=p.done, **fields,
                    )
                else:
                    self._progress.update(task, total=p.total or None, completed=p.done, **fields)
                continue
            key = (p.status, p.total, p.sent, p.failed, p.waiting)
            now = time.monotonic()
            # Plain output (a pipe, CI log): one line when something changed, at most one a
            # second per execution unless it is the last word.
            if self._last_line.get(p.execution_id) == key and not force:
                continue
            if not force and not p.finished and now - self._last_print < 1.0:
                continue
            self._last_line[p.execution_id] = key
            self._last_print = now
            self.stream.write(
                f"execution {p.execution_id} {p.label}: {p.sent}/{p.total} sent, {p.failed} failed, "
                f"{p.waiting} waiting ({rate}) [{p.status}]\n"
            )
            self.stream.flush()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
