"""The execution engine (SPEC 6, docs/engine.md): the public API the processes build on.

Every function takes `now` (and work passes a `clock`/`sleep`); only service loops read the
clock. The database decides everything; Huey tasks (reconciler.tasks) only say "go look", so a
lost or duplicated task never loses or repeats a send.

Setup::

    engine = open_engine(db_url, config=..., env=..., redis_url=None | "redis://...")
    # EngineContext: .db (SQLAlchemy Engine), .database, .settings (EngineSettings), .close()

Service loop (`flowspec serve`), every second or so::

    dispatch_due(engine, now=now, enqueue=enqueue) -> DispatchReport
        # due pending occurrences → executions (catch-up, coalescing, overlap); enqueue(id)
    sweep(engine, now=now, enqueue=enqueue) -> SweepReport
        # expired leases, reopened windows, lost tasks, fan-in, queued occurrences
    next_wakeup(engine, now=now) -> datetime | None

Workers (reconciler.tasks wraps these in Huey tasks)::

    run_execution(engine, execution_id, now=now, ...) -> WorkReport   # fan_out, then a pass
    fan_out(engine, execution_id, now=now) -> FanoutReport
    work_execution(engine, execution_id, now=now, channel_factory=None, batch_size=None,
                   clock=None, sleep=None, rng=None) -> WorkReport
        # WorkReport.next_at: schedule the next pass then (None: nothing left to do)
    request_stop() / clear_stop()   # graceful drain: passes end after their batch in flight

Operators (`flowspec trigger`, `flowspec channel resume`)::

    trigger(engine, organization, automation, now=now, ignore_window=False, enqueue=None)
        -> TriggerResult(key, status, execution_id)
    resume_channel(engine, organization, channel, now=now, enqueue=None) -> list[int]

`enqueue(execution_id)` must schedule `run_execution` for that id (reconciler.tasks.enqueue_for).
"""

from __future__ import annotations

from datetime import datetime

from reconciler import states
from reconciler.engine.breaker import open_circuit, resume_channel
from reconciler.engine.context import EngineContext, EngineSettings, open_engine
from reconciler.engine.dispatch import (
    DispatchReport,
    TriggerResult,
    dispatch_due,
    manual_key,
    start_queued,
    trigger,
)
from reconciler.engine.fanin import Stats, try_finish
from reconciler.engine.fanout import FanoutReport, fan_out
from reconciler.engine.limits import Bucket, DatabaseLimiter, RedisLimiter, Reservation, gcra
from reconciler.engine.sweep import SweepReport, next_wakeup, sweep
from reconciler.engine.work import (
    OffsetClock,
    WorkReport,
    clear_stop,
    request_stop,
    work_execution,
)

__all__ = [
    "Bucket",
    "DatabaseLimiter",
    "DispatchReport",
    "EngineContext",
    "EngineSettings",
    "FanoutReport",
    "OffsetClock",
    "RedisLimiter",
    "Reservation",
    "Stats",
    "SweepReport",
    "TriggerResult",
    "WorkReport",
    "dispatch_due",
    "fan_out",
    "gcra",
    "manual_key",
    "next_wakeup",
    "open_circuit",
    "open_engine",
    "clear_stop",
    "request_stop",
    "resume_channel",
    "run_execution",
    "start_queued",
    "states",
    "sweep",
    "trigger",
    "try_finish",
    "work_execution",
]


def run_execution(engine: EngineContext, execution_id: int, *, now: datetime, **work: object
                  ) -> WorkReport:
    """Fan the execution out if it has not been, then one work pass (keyword arguments go to
    `work_execution`). What a freshly dispatched execution's task does."""
    fan_out(engine, execution_id, now=now)
    return work_execution(engine, execution_id, now=now, **work)  # type: ignore[arg-type]
