"""`flowspec run`: apply, dispatch what is due now and drain it in this process.

For people without a service: no queue, no worker, one command (the README's first one ends
with it). Live progress on a terminal, one line per change otherwise; the executions' stats at
the end. Work that is due later than `--max-wait` (a flow's `wait` node, a retry backoff, a
window that opens tomorrow) stays in the database: the next `flowspec run`, or a `flowspec
worker` with `flowspec serve`, continues it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click
import sqlalchemy as sa

from flowspec.commands.params import Duration, Instant
from flowspec.plan import format_utc
from flowspec.timeparse import format_duration
from reconciler import db as dbmod
from reconciler import states as st
from reconciler.commands.apply import DEFAULT_HORIZON, HORIZON
from reconciler.commands.db import db_option
from reconciler.executions import STATS_NOT_FINAL, ExecutionSummary, list_executions, live_counts

# A work pass in `run` yields after this long so Ctrl+C is answered quickly (a pass always
# finishes the sends it started).
RUN_PASS_BUDGET = 2.0
POLL_SECONDS = 0.25


@click.command("run")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@db_option
@click.option("--now", type=Instant(),
              help="Run as if the clock said this instant (tests, rehearsals).")
@click.option("--horizon", type=HORIZON, default=DEFAULT_HORIZON, show_default=True,
              help="How far ahead apply writes occurrences, as in `flowspec apply`.")
@click.option("--max-wait", type=Duration(what="--max-wait"), default="60s", show_default=True,
              help="Longest pause `run` sits through for held-back recipients (rate limits, "
                   "retries); work due later stays in the database for the next run.")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Live progress bars (default: when stdout is a terminal; plain lines otherwise).")
def run(
    paths: tuple[Path, ...],
    db_url: str | None,
    now: datetime | None,
    horizon: timedelta,
    max_wait: timedelta,
    show_progress: bool | None,
) -> int:
    """Apply the config in PATHS (default automations/), start every occurrence that is due now
    and send it from this process, then print each execution's stats.

    Occurrences up to their `catchup_window` late still start (SPEC 6.2), so `run` applies from
    now minus the longest catch-up window. Executions left unfinished by an earlier run or by a
    stopped worker are continued too.

    \b
    Examples:
      flowspec run                               automations/ on sqlite:///flowspec.db
      flowspec run --now 2026-11-25T12:00:00Z    as if it were that instant
    """
    from reconciler import engine as eng
    from reconciler.serve import apply_files, config_sources

    sources = config_sources(paths)
    started_wall = datetime.now(UTC)
    clock = eng.OffsetClock(now if now is not None else started_wall)
    url = dbmod.resolve_url(db_url)
    # One pass at a time per execution here (Drain): it may keep all of
    # max_concurrent_executions in flight.
    context = eng.open_engine(url, settings=eng.EngineSettings(pass_budget=RUN_PASS_BUDGET,
                                                               parallelism=1))
    try:
        t0 = clock().replace(microsecond=0)
        with dbmod.database_errors(context.database):
            outcome = apply_files(context.database, sources, now=t0, horizon=horizon,
                                  written_at=started_wall, include_catchup=True)
        for d in outcome.diagnostics:
            click.echo(d.render(), err=True)
        if not outcome.ok:
            click.echo(f"error: {outcome.summary}", err=True)
            return 1
        click.echo(outcome.summary)
        config = outcome.config
        context.config_source = config
        drained = Drain(context, clock=clock, max_wait=max_wait)
        with dbmod.database_errors(context.database), _graceful_interrupt(drained):
            drained.start(now=clock())
            if not drained.ids:
                click.echo(_nothing_due(context, clock()))
                return 0
            drained.run(show_progress)
        with dbmod.database_errors(context.database), context.db.connect() as conn:
            summaries = list_executions(conn, ids=drained.ids, limit=None)
            live = live_counts(conn, drained.ids)
        click.echo("")
        for x in sorted(summaries, key=lambda s: s.id):
            click.echo(_stats_lines(x, live.get(x.id, {}), drained))
        click.echo(_outboxes(summaries, config))
        if drained.interrupted:
            click.echo("interrupted: in-flight sends finished; the rest stays queued in the "
                       "database for the next `flowspec run`", err=True)
            return 130
    finally:
        context.close()
    return 0


# --------------------------------------------------------------------------- draining


@dataclass
class Drain:
    """Runs executions in this process until each is finished or waits past `max_wait`."""

    context: Any
    clock: Any
    max_wait: timedelta
    ids: list[int] = field(default_factory=list)
    dispatch_lines: list[str] = field(default_factory=list)
    waiting_until: dict[int, datetime] = field(default_factory=dict)  # left for later
    interrupted: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self, *, now: datetime) -> None:
        """Dispatch what is due and pick up unfinished work (sweep)."""
        from reconciler import engine as eng

        found: list[int] = []
        report = eng.dispatch_due(self.context, now=now, enqueue=found.append)
        swept = eng.sweep(self.context, now=now, enqueue=found.append)
        self.ids = list(dict.fromkeys(found))
        parts = [f"{len(report.executions)} started"]
        for n, what in ((report.missed, "missed (more than their catch-up window late)"),
                        (report.coalesced, "coalesced into a later occurrence"),
                        (report.skipped_overlap, "skipped (previous execution still running)"),
                        (report.queued, "queued behind a running execution")):
            if n:
                parts.append(f"{n} {what}")
        continued = [i for i in self.ids if i not in report.executions]
        if continued:
            parts.append(f"{len(continued)} unfinished execution(s) continued")
        if swept.unknown:
            parts.append(f"{swept.unknown} recipient(s) marked unknown (a send was interrupted)")
        self.dispatch_lines.append("dispatch: " + ", ".join(parts))
        click.echo(self.dispatch_lines[-1])

    def stop(self) -> None:
        self.interrupted = True
        self._stop.set()

    def run(self, show_progress: bool | None) -> None:
        from reconciler.progress import Display, read_progress

        display = Display(live=show_progress)
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                try:
                    with self.context.db.connect() as conn:
                        rows = read_progress(conn, self.ids, now=self.clock())
                    display.update(rows)
                except sa.exc.DBAPIError:
                    pass  # a busy moment; the next poll shows it
                done.wait(POLL_SECONDS)

        poller = threading.Thread(target=poll, name="flowspec-progress", daemon=True)
        poller.start()
        try:
            self._work()
        finally:
            done.set()
            poller.join(5)
            with self.context.db.connect() as conn:
                display.update(read_progress(conn, self.ids, now=self.clock()), force=True)
            display.close()

    def _work(self) -> None:
        from reconciler import engine as eng

        # (due time, execution id): the next pass of each execution.
        schedule: list[tuple[datetime, int]] = [(self.clock(), i) for i in self.ids]
        while schedule and not self._stop.is_set():
            schedule.sort()
            due, execution_id = schedule.pop(0)
            delay = (due - self.clock()).total_seconds()
            if delay > 0 and self._stop.wait(delay):
                break
            report = eng.run_execution(self.context, execution_id, now=self.clock(),
                                       clock=self.clock)
            if report.finished or report.next_at is None:
                self._start_queued()
                if report.next_at is None:
                    continue
            if report.next_at is not None:
                if report.next_at - self.clock() <= self.max_wait:
                    schedule.append((report.next_at, execution_id))
                else:
                    self.waiting_until[execution_id] = report.next_at
        for _due, execution_id in schedule:
            self.waiting_until.setdefault(execution_id, _due)

    def _start_queued(self) -> None:
        """An execution ended: an occurrence queued behind it (overlap_policy queue) may start."""
        from reconciler import engine as eng

        more: list[int] = []
        eng.start_queued(self.context, now=self.clock(), enqueue=more.append)
        for i in more:
            if i not in self.ids:
                self.ids.append(i)


@contextmanager
def _graceful_interrupt(drain: Drain) -> Iterator[None]:
    """First Ctrl+C (or SIGTERM): finish the sends in flight, then stop; the second aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if drain.interrupted:
            raise KeyboardInterrupt
        click.echo("\nstopping: finishing the sends in flight (Ctrl+C again to abort)", err=True)
        drain.stop()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------- output


def _nothing_due(context: Any, now: datetime) -> str:
    from reconciler.models import automations, occurrences

    o, a = occurrences.c, automations.c
    with context.db.connect() as conn:
        nxt = conn.execute(
            sa.select(a.organization, a.name, o.at)
            .join(automations, sa.and_(a.id == o.automation_id, a.organization == o.organization))
            .where(o.status == "pending", o.at > now).order_by(o.at).limit(1)
        ).first()
    if nxt is None:
        return "nothing is due now, and nothing is scheduled"
    wait = format_duration(timedelta(seconds=int((nxt.at - now).total_seconds())))
    return (f"nothing is due now; next: {nxt.organization}/{nxt.name} at {format_utc(nxt.at)} "
            f"(in {wait})")


def _stats_lines(x: ExecutionSummary, live: dict[str, int], drain: Drain) -> str:
    what = "manual" if x.manual and x.at is None else (format_utc(x.at) if x.at else "")
    took = ""
    if x.started_at and x.finished_at:
        took = f" in {(x.finished_at - x.started_at).total_seconds():.1f}s"
    state = x.status
    if x.id in drain.waiting_until and x.status != "finished":
        state = f"{x.status}, continues at {format_utc(drain.waiting_until[x.id])}"
    elif x.reason:
        state = f"{x.status}: {x.reason}"
    sent = sum(live.get(s, 0) for s in st.R_COUNTED_SENT)
    failed = sum(live.get(s, 0) for s in st.R_COUNTED_FAILED)
    total = max(sum(live.values()), x.audience_size)
    lines = [
        f"execution {x.id}  {x.label} {what}  {state}{took}",
        f"  audience {total + x.opted_out}: {sent} sent, {failed} failed, "
        f"{x.opted_out} opted out (not messaged)",
        "  stats: " + (", ".join(f"{k} {v}" for k, v in x.stats.items()) if x.final
                       else STATS_NOT_FINAL),
    ]
    if failed:
        lines.append(f"  details: flowspec executions show {x.id}")
    return "\n".join(lines)


def _outboxes(summaries: Sequence[ExecutionSummary], config: Any) -> str:
    files = []
    for x in summaries:
        entry = config.channels.get((x.organization, x.channel)) if config and x.channel else None
        if entry is not None and entry.model.spec.type == "outbox" and entry.model.spec.path:
            files.append(entry.model.spec.path)
    if not files:
        return ""
    return "messages written to " + ", ".join(sorted(set(files)))
