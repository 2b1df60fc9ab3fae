"""`flowspec serve`: the reconciler as a service (SPEC 6).

One process, three parts:

- the service loop thread (reconciler.serve): re-apply when the files change, dispatch due
  occurrences and sweep every `--interval`;
- uvicorn serving the HTTP app (reconciler.service): status webhooks, `/healthz`, `/api/...`,
  `/metrics` (Prometheus) and a dashboard at `/`;
- optionally (`--with-workers N`) an embedded Huey consumer, for a single machine.

SIGTERM or Ctrl+C stops cleanly: the loop finishes its tick (each dispatch is one
transaction), the HTTP server finishes the requests in flight, embedded workers finish their
tasks (and so their in-flight sends); work not started stays queued.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler.commands.apply import DEFAULT_HORIZON, HORIZON
from reconciler.commands.db import db_option
from reconciler.logs import LOG_FORMATS, setup_logging

log = logging.getLogger("flowspec.serve")


@click.command("serve")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@db_option
@click.option("--queue", "queue_url", metavar="URL",
              help="Task queue: sqlite path/URL, redis://..., postgresql://... (default: "
                   "$FLOWSPEC_QUEUE_URL, else the embedded SQLite queue).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True,
              help="Seconds between dispatch passes.")
@click.option("--horizon", type=HORIZON, default=DEFAULT_HORIZON, show_default=True,
              help="How far ahead apply writes occurrences.")
@click.option("--reapply-every", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds between applies when the files did not change (moves the horizon).")
@click.option("--with-workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also run N worker threads in this process (single-machine setups).")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def serve(
    paths: tuple[Path, ...],
    db_url: str | None,
    queue_url: str | None,
    host: str,
    port: int,
    interval: float,
    horizon: timedelta,
    reapply_every: float,
    with_workers: int,
    log_format: str,
    log_level: str,
) -> int:
    """Run the reconciler as a service on the config in PATHS (default automations/).

    Applies the files and re-applies when they change, starts every occurrence when it is due,
    and serves HTTP: POST/GET /webhooks/whatsapp (signed status callbacks), /healthz,
    /api/automations, /api/executions/ID, /metrics and a dashboard at /. Workers
    (`flowspec worker`, or --with-workers) do the sending.
    """
    from flowspec.config import load_config
    from reconciler import engine as eng
    from reconciler.dashboard import dashboard_route
    from reconciler.metrics import metrics_route
    from reconciler.queue import QUEUE_ENV, check_queue, resolve_queue_url
    from reconciler.serve import ServiceLoop, config_sources, describe_queue
    from reconciler.service import create_app

    setup_logging(log_format, level=log_level)  # type: ignore[arg-type]
    sources = config_sources(paths)
    missing = [s for s in sources if not Path(s).exists()]
    if missing:
        raise UserError(f"config path {', '.join(missing)} does not exist")
    url = dbmod.resolve_url(db_url)
    qurl = resolve_queue_url(queue_url)
    # Workers started from here (and the engine in this process) read the config from the
    # same place the loop applies it from.
    os.environ[eng.context.CONFIG_ENV] = os.pathsep.join(str(Path(s).resolve()) for s in sources)
    os.environ[dbmod.URL_ENV] = url
    if qurl:
        os.environ[QUEUE_ENV] = qurl
    sock = _listen(host, port)
    context = eng.open_engine(url, config=lambda: load_config(sources))
    from reconciler import tasks  # its Huey is built from the environment set above

    huey = tasks.huey
    check_queue(huey, qurl)
    enqueue = tasks.enqueue_for(huey)
    app = create_app(db_url=url, config_paths=sources,
                     routes=[metrics_route(huey.pending_count), dashboard_route()])

    def dispatch(now: Any) -> list[int]:
        return list(eng.dispatch_due(context, now=now, enqueue=enqueue).executions)

    def sweep(now: Any) -> Any:
        report = eng.sweep(context, now=now, enqueue=enqueue)
        if report.unknown or report.resend or report.requeued or report.resumed:
            log.info("sweep: %d unknown, %d to re-send, %d re-enqueued, %d resumed",
                     report.unknown, report.resend, len(report.requeued), len(report.resumed),
                     extra={"event": "swept"})
        return report

    def applied(config: Any) -> None:
        app.state.service.set_config(config, os.environ)

    loop = ServiceLoop(database=context.database, sources=sources, dispatch=dispatch, sweep=sweep,
                       interval=interval, horizon=horizon, reapply_every=reapply_every,
                       on_applied=applied)
    stop = threading.Event()
    consumer = None
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="flowspec-http",
                              daemon=True)
    with _stop_on_signals(stop):
        try:
            loop.maybe_apply(force=True)  # the first apply before anything is served
            loop.start()
            if with_workers:
                from reconciler.commands.worker import make_consumer

                consumer = make_consumer(huey, workers=with_workers, worker_type="thread")
                consumer.start()
                _restore_stop_handlers(stop)  # Huey's start() installs its own
            thread.start()
            _wait_started(server, thread)
            bound = sock.getsockname()
            log.info("serving http://%s:%d (database %s, queue %s)", bound[0], bound[1],
                     dbmod.mask_url(url), describe_queue(qurl, url),
                     extra={"event": "started", "port": bound[1]})
            while not stop.wait(0.5):
                if not thread.is_alive():
                    raise UserError("the HTTP server stopped unexpectedly; see the log above")
        finally:
            log.info("stopping: finishing the current dispatch, requests and tasks",
                     extra={"event": "stopping"})
            loop.stop()
            server.should_exit = True
            if thread.is_alive():
                thread.join(30)
            if consumer is not None:
                consumer.stop(graceful=True)
            context.close()
            log.info("stopped", extra={"event": "stopped"})
    return 0


def _listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another "
                        f"--port, or stop the process using it") from None


def _server(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    return server


def _wait_started(server: Any, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise UserError("the HTTP server did not start; see the log above")
        time.sleep(0.02)


def _stop_handler(stop: threading.Event) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop waiting for the drain
        log.info("received %s", signal.Signals(signum).name, extra={"event": "signal"})
        stop.set()

    return handler


def _restore_stop_handlers(stop: threading.Event) -> None:
    handler = _stop_handler(stop)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


class _stop_on_signals:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.old: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        handler = _stop_handler(self.stop)
        for s in (signal.SIGINT, signal.SIGTERM):
            self.old[s] = signal.signal(s, handler)

    def __exit__(self, *exc: object) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
