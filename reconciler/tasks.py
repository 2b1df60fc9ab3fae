"""Huey tasks: the engine's work, enqueued by the service and run by `flowspec worker`.

    python -m huey.bin.huey_consumer reconciler.tasks.huey -w 2 -m 0.1

The process reads its setup from the environment: `FLOWSPEC_DATABASE_URL` (state),
`FLOWSPEC_QUEUE_URL` (this queue; unset = the SQLite file beside the state database) and
`FLOWSPEC_CONFIG` (the config root(s), `os.pathsep`-separated, for fan-out), plus the channels'
secrets (`access_token_env`). One EngineContext per process: one database pool, one event-loop
thread, one aiohttp session per channel, shared by the consumer's worker threads.

Tasks carry only an execution id: "go look". Each is safe to run twice or never:
- `run_execution(id)`: fan-out (idempotent, streamed: for a large audience `parallelism - 1`
  work tasks start as soon as the first recipients are in), then one work pass;
- `work(id)`: one work pass; if the pass says when there is more (`next_at`), the task
  re-enqueues itself for then (a delayed task), so waits, backoffs and rate-limited batches
  continue without the service;
- `resume(id)`: the same pass, scheduled for a window's reopening.
A task lost with a dying worker is re-issued by the service's sweep (stale heartbeat).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from huey import Huey

from reconciler import db as dbmod
from reconciler.engine import (
    EngineContext,
    WorkReport,
    fan_out,
    open_engine,
    states,
    work_execution,
)
from reconciler.engine.context import SCHEDULING_ENV
from reconciler.queue import make_huey, redis_limits_url, resolve_queue_url

log = logging.getLogger("flowspec.tasks")

huey: Huey = make_huey(resolve_queue_url(), db_url=dbmod.resolve_url(None))

_lock = threading.Lock()
_context: tuple[int, EngineContext] | None = None


@huey.on_startup()
def _connect() -> None:
    """Open this process's engine when its consumer starts, not with the first task: schema
    check and pools took the first execution's fan-out 0.3-0.5 s longer. A failure here is
    logged by Huey and met again, with the task's own error handling, by the first task."""
    _batch_scheduling()
    context()


def _batch_scheduling() -> None:
    """Run this worker thread, and the threads it starts (the engine's event loop), under
    Linux's SCHED_BATCH: same priority, but its wake-ups do not preempt the running task.

    A worker sleeps and wakes once per HTTP response and database reply; under the default
    policy each wake-up preempted whatever ran on that core, often the database or another
    worker, mid-request. The scale-out benchmark sent ~10% more messages/s on 2 cores
    (docs/decisions.md, "Execution engine"). The cost, a wake-up delayed by up to a scheduler
    slice on a busy core, stays within the pacer's lateness tolerance. Elsewhere (or with
    `normal`) nothing changes."""
    policy = os.environ.get(SCHEDULING_ENV) or "batch"
    if policy not in ("batch", "normal"):
        log.warning("%s=%r is neither batch nor normal; using normal", SCHEDULING_ENV, policy)
    if policy != "batch" or not hasattr(os, "SCHED_BATCH"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as exc:  # a container may forbid it: run as before
        log.debug("SCHED_BATCH not set: %s", exc)


def context() -> EngineContext:
    """This process's EngineContext, built from the environment on first use."""
    global _context
    with _lock:
        if _context is None or _context[0] != os.getpid():
            engine = open_engine(
                dbmod.resolve_url(None), redis_url=redis_limits_url(resolve_queue_url())
            )
            _context = (os.getpid(), engine)
        return _context[1]


def _now() -> datetime:
    return datetime.now(UTC)


def enqueue_for(queue: Huey) -> Callable[[int], None]:
    """The `enqueue` the engine's dispatch, sweep and resume take: `run_execution` on `queue`
    (this module's `huey`, or another instance for the same queue, e.g. built by `make_huey`
    from a command's --queue option). Huey keeps a task registry per instance, so the task is
    registered on `queue` under the same name the consumer resolves."""
    wrapper = run_execution
    if queue is not huey:
        wrapper = getattr(queue, "_flowspec_run_execution", None) or queue.task()(
            run_execution.func
        )
        queue._flowspec_run_execution = wrapper  # type: ignore[attr-defined]

    def enqueue(execution_id: int) -> None:
        wrapper(int(execution_id))

    return enqueue


def _follow_up(report: WorkReport) -> None:
    """Schedule the next pass the report asks for."""
    if report.next_at is None:
        return
    delay = (report.next_at - _now()).total_seconds()
    if report.status == states.EX_WAITING_WINDOW:
        resume.schedule(args=(report.execution_id,), delay=max(0.0, delay))
    elif delay <= 0:
        work(report.execution_id)
    else:
        work.schedule(args=(report.execution_id,), delay=delay)


def _pass(execution_id: int) -> WorkReport:
    report = work_execution(context(), execution_id, now=_now())
    _follow_up(report)
    return report


@huey.task()
def run_execution(execution_id: int) -> None:
    engine = context()

    def start_workers() -> None:
        # The first recipients are in and the rest are still being written: other workers
        # start sending now, this one joins when the fan-out is done.
        for _ in range(max(0, engine.settings.parallelism - 1)):
            work(execution_id)

    fan_out(engine, execution_id, now=_now(), on_running=start_workers)
    _pass(execution_id)


@huey.task()
def work(execution_id: int) -> None:
    _pass(execution_id)


@huey.task()
def resume(execution_id: int) -> None:
    _pass(execution_id)
