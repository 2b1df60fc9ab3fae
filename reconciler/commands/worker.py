"""`flowspec worker`: the Huey consumer that runs executions (SPEC 6).

Tasks only say "go look at execution N" (reconciler.tasks); the database says what is left to
send, so any number of workers on any number of machines share the work safely.

Shutdown: SIGTERM (what systemd, Kubernetes and `docker stop` send) and Ctrl+C both drain
gracefully: no new task is taken, each task in flight finishes its work pass, which finishes
the sends it started and records them, so nothing is left `sending`; work not started stays
in the database and in the queue for the next worker. A second signal stops at once (what is in
flight then is resolved by the leases, SPEC 6.5). Huey's own default treats SIGTERM as
"stop now"; here it is the graceful one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click

from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler.commands.db import db_option
from reconciler.logs import LOG_FORMATS, setup_logging

log = logging.getLogger("flowspec.worker")

WORKER_TYPES = ("thread", "process", "greenlet")
# SqliteHuey and PostgresHuey are polled: an idle worker looks again at most this often, so an
# execution starts well inside SPEC 6's 2 seconds (Huey's default backs off to 10 s).
DEFAULT_POLL = 0.5


def make_consumer(
    huey: Any,
    *,
    workers: int,
    worker_type: str = "thread",
    poll: float = DEFAULT_POLL,
    shutdown_timeout: float | None = None,
) -> Any:
    """A Huey consumer with flowspec's settings: no periodic tasks (the service owns periodic
    work), a short poll, SIGTERM graceful."""
    import inspect
    import signal

    from huey.consumer import Consumer

    # graceful_signal="TERM" also makes process workers ignore SIGTERM (a systemd stop signals
    # the whole group) and finish their task; older Huey releases lack the option.
    extra: dict[str, Any] = {}
    if "graceful_signal" in inspect.signature(Consumer.__init__).parameters:
        extra["graceful_signal"] = "TERM"
    consumer = Consumer(
        huey,
        workers=workers,
        periodic=False,
        initial_delay=min(0.05, poll),
        backoff=1.15,
        max_delay=poll,
        worker_type=worker_type,
        check_worker_health=True,
        shutdown_timeout=shutdown_timeout,
        **extra,
    )
    # SIGTERM and Ctrl+C both drain (Huey makes one of them "stop now"); a second signal of
    # either kind interrupts the drain (Huey re-arms the handler after the first).
    consumer._signal_actions[signal.SIGINT] = (False, True)
    consumer._signal_actions[signal.SIGTERM] = (False, True)
    huey_handler = consumer._handle_signal

    def handle(signum: int, frame: Any) -> None:
        # A work pass may run for `pass_budget` seconds; asking the engine to end its passes
        # after the batch in flight makes the drain prompt (their follow-up tasks stay queued).
        from reconciler import engine

        request_stop = getattr(engine, "request_stop", None)
        if callable(request_stop):
            request_stop()
        huey_handler(signum, frame)

    consumer._handle_signal = handle  # read by Consumer.start() when it installs handlers
    return consumer


@click.command("worker")
@db_option
@click.option("--queue", "queue_url", metavar="URL",
              help="Task queue: sqlite path/URL, redis://..., postgresql://... (default: "
                   "$FLOWSPEC_QUEUE_URL, else the embedded SQLite queue).")
@click.option("--config", "config_paths", multiple=True, metavar="PATH",
              help="Config root(s) executions start from (default: $FLOWSPEC_CONFIG, else "
                   "automations/). Repeat for several.")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=2, show_default=True,
              help="Tasks run at once in this process.")
@click.option("--worker-type", "-k", type=click.Choice(WORKER_TYPES), default="thread",
              show_default=True,
              help="thread: sends share one event loop per process (the default, best on few "
                   "cores); process: one process per worker; greenlet: needs gevent.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=DEFAULT_POLL, show_default=True,
              help="Longest pause between looks at a polled queue (SQLite, PostgreSQL).")
@click.option("--shutdown-timeout", type=click.FloatRange(min=0), default=None,
              help="Seconds a graceful stop waits for tasks in flight (default: as long as "
                   "they take; a work pass is bounded).")
@click.option("--scheduling", type=click.Choice(["batch", "normal"]), default="batch",
              show_default=True,
              help="Linux scheduling policy of the task threads: batch (SCHED_BATCH) keeps a "
                   "worker's many wake-ups from preempting the database or API server on the "
                   "same cores; normal is the system default.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def worker(
    db_url: str | None,
    queue_url: str | None,
    config_paths: tuple[str, ...],
    workers: int,
    worker_type: str,
    poll: float,
    shutdown_timeout: float | None,
    scheduling: str,
    log_format: str,
    log_level: str,
) -> int:
    """Run executions from the queue: fan-out, sending, retries, until stopped.

    \b
    Examples:
      flowspec worker                                         embedded SQLite queue and state
      flowspec worker -w 8 --queue redis://cache:6379/0 --db postgresql://app@db/flowspec
    """
    from flowspec.commands.plan import default_path
    from reconciler.engine.context import CONFIG_ENV, SCHEDULING_ENV
    from reconciler.queue import QUEUE_ENV, check_queue, resolve_queue_url
    from reconciler.serve import describe_queue

    setup_logging(log_format, level=log_level)  # type: ignore[arg-type]
    if worker_type == "greenlet":
        try:
            import gevent  # noqa: F401
        except ImportError:
            raise UserError("--worker-type greenlet needs gevent: pip install gevent") from None
    sources = list(config_paths) or [
        s for s in (os.environ.get(CONFIG_ENV) or "").split(os.pathsep) if s
    ] or [default_path()]
    missing = [s for s in sources if not Path(s).exists()]
    if missing:
        raise UserError(f"config path {', '.join(missing)} does not exist; give the config root "
                        f"with --config or {CONFIG_ENV}")
    url = dbmod.resolve_url(db_url)
    qurl = resolve_queue_url(queue_url)
    # reconciler.tasks builds its queue and engine from the environment, in this process and in
    # forked workers alike: say where everything is once, before it is imported.
    os.environ[CONFIG_ENV] = os.pathsep.join(str(Path(s).resolve()) for s in sources)
    os.environ[dbmod.URL_ENV] = url
    os.environ[SCHEDULING_ENV] = scheduling
    if qurl:
        os.environ[QUEUE_ENV] = qurl
    # Fail now, naming the URL, rather than in every worker thread.
    dbmod.open_database(url).dispose()
    from reconciler import tasks

    huey = tasks.huey
    check_queue(huey, qurl)
    consumer = make_consumer(huey, workers=workers, worker_type=worker_type, poll=poll,
                             shutdown_timeout=shutdown_timeout)
    log.info("worker started: %d %s worker(s), queue %s, database %s", workers, worker_type,
             describe_queue(qurl, url), dbmod.mask_url(url),
             extra={"event": "started", "workers": workers, "worker_type": worker_type})
    try:
        consumer.run()
    finally:
        _close_engine(tasks)
    log.info("worker stopped", extra={"event": "stopped"})
    return 0


def _close_engine(tasks: Any) -> None:
    """Close this process's engine (channel sessions, database pool) after the last task.

    reconciler.tasks keeps it in a private slot; a public `close()` there is preferred.
    """
    close = getattr(tasks, "close", None)
    if callable(close):
        close()
        return
    held = getattr(tasks, "_context", None)
    if held is not None and held[0] == os.getpid():
        held[1].close()
