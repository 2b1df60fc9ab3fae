"""The service loop of `flowspec serve` and the apply step that `run` and `serve` share.

One thread does all periodic work, in this order each tick:

1. re-apply when the config files changed (polled: size + mtime per file, then the content
   hash, so a `touch` or a checkout of the same content changes nothing), and every
   `reapply_every` anyway so the horizon keeps moving forward;
2. `dispatch` (claim due occurrences, enqueue their work) with `now` from the clock;
3. `sweep` (expired leases, lost tasks, reopened windows) every `sweep_every`.

The loop never dies on a bad tick: a config with errors keeps the last applied revision live
(logged, as Argo CD keeps the last synced one); a database that went away is logged and retried
on the next tick. Only the service loops read the clock (docs/architecture.md).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flowspec.config import Config, load_config
from flowspec.diagnostics import Diagnostic, UserError, has_errors
from flowspec.timeparse import parse_duration
from reconciler import apply as core
from reconciler import db as dbmod

log = logging.getLogger("flowspec.serve")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- apply


@dataclass
class ApplyOutcome:
    ok: bool
    summary: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    result: core.ApplyResult | None = None
    config: Config | None = None


def max_catchup(config: Config) -> timedelta:
    """The longest `catchup_window` of the config's automations (0 when there are none)."""
    windows = [parse_duration(e.model.spec.delivery.catchup_window) for e in config.automations]
    return max(windows, default=timedelta(0))


def apply_files(
    database: dbmod.Database,
    sources: Sequence[str],
    *,
    now: datetime,
    horizon: timedelta,
    written_at: datetime,
    include_catchup: bool = False,
) -> ApplyOutcome:
    """Validate, compile and apply the files, as `flowspec apply` does.

    `include_catchup`: compile from `now - max(catchup_window)` instead of `now`, so occurrences
    that are late but may still start (SPEC 6.2) are in the database for the dispatcher to
    decide on (`flowspec run`, docs/decisions.md "Processes"). The horizon still ends at
    `now + horizon`. Invalid files change nothing and record no revision.
    """
    from flowspec.commands.plan import validation
    from flowspec.compiler import plan_inputs
    from reconciler.commands.apply import desired_automations, summary_line

    config = load_config(list(sources))
    diagnostics = validation(config, now=now, roots=[Path(s) for s in sources])
    if has_errors(diagnostics):
        errors = sum(1 for d in diagnostics if d.is_error)
        return ApplyOutcome(False, f"{errors} error(s) in the config; nothing was applied",
                            diagnostics, config=config)
    start = now - max_catchup(config) if include_catchup else now
    horizon_end = now + horizon
    ident = core.config_identity(list(sources))
    result = core.run_apply(
        database, desired_automations(config, start, horizon_end), ident=ident,
        inputs=plan_inputs(), now=start, horizon_end=horizon_end, written_at=written_at,
    )
    return ApplyOutcome(True, summary_line(result, ident), diagnostics, result, config)


# --------------------------------------------------------------------------- file watching


class FileWatcher:
    """Has anything under the config paths changed since the last look?

    Stat first (cheap, every tick), hash only when the stat signature moved: an editor that
    rewrites a file with the same bytes, or a `git checkout` back and forth, is not a change.
    """

    def __init__(self, sources: Sequence[str]) -> None:
        self.sources = list(sources)
        self._stat: tuple[tuple[str, int, int], ...] | None = None
        self._hash: str | None = None

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        _, files = core.config_files(self.sources)
        out = []
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def changed(self) -> bool:
        """True the first time, then whenever the files' content differs from the last call."""
        sig = self._signature()
        if sig == self._stat:
            return False
        self._stat = sig
        _, digest = core.content_hash(self.sources)
        if digest == self._hash:
            return False
        self._hash = digest
        return True


# --------------------------------------------------------------------------- the loop


@dataclass
class LoopStats:
    ticks: int = 0
    applies: int = 0
    dispatched: int = 0
    last_apply: str | None = None
    last_error: str | None = None


class ServiceLoop:
    """Apply on change, dispatch and sweep every `interval` seconds, until `stop()`."""

    def __init__(
        self,
        *,
        database: dbmod.Database,
        sources: Sequence[str],
        dispatch: Callable[[datetime], Any],
        sweep: Callable[[datetime], Any] | None = None,
        interval: float = 0.5,
        horizon: timedelta = timedelta(days=30),
        reapply_every: float = 300.0,
        sweep_every: float = 5.0,
        clock: Clock = utc_now,
        on_applied: Callable[[Config], None] | None = None,
    ) -> None:
        self.database = database
        self.on_applied = on_applied
        self.sources = list(sources)
        self.watcher = FileWatcher(self.sources)
        self._dispatch = dispatch
        self._sweep = sweep
        self.interval = interval
        self.horizon = horizon
        self.reapply_every = reapply_every
        self.sweep_every = sweep_every
        self.clock = clock
        self.stats = LoopStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_apply = float("-inf")
        self._last_sweep = float("-inf")

    # -- one tick, callable directly from tests ------------------------------------------------

    def maybe_apply(self, *, force: bool = False) -> ApplyOutcome | None:
        changed = self.watcher.changed()
        due = time.monotonic() - self._last_apply >= self.reapply_every
        if not (changed or due or force):
            return None
        self._last_apply = time.monotonic()
        now = self.clock().replace(microsecond=0)
        try:
            outcome = apply_files(self.database, self.sources, now=now, horizon=self.horizon,
                                  written_at=utc_now())
        except UserError as exc:
            self.stats.last_error = exc.message
            log.error("apply failed; the last applied revision stays live: %s", exc.message,
                      extra={"event": "apply_failed"})
            return None
        self.stats.applies += 1
        for d in outcome.diagnostics:
            if d.is_error:
                log.error("%s", d.render(), extra={"event": "config_error"})
        if outcome.ok:
            self.stats.last_apply = outcome.summary
            log.info("%s", outcome.summary, extra={"event": "applied", "changed": changed})
            if self.on_applied is not None and outcome.config is not None:
                self.on_applied(outcome.config)
        else:
            self.stats.last_error = outcome.summary
            log.error("config not applied, the last applied revision stays live: %s",
                      outcome.summary, extra={"event": "apply_rejected"})
        return outcome

    def tick(self) -> None:
        self.stats.ticks += 1
        try:
            self.maybe_apply()
        except Exception:
            log.exception("apply step failed", extra={"event": "apply_crashed"})
        try:
            result = self._dispatch(self.clock())
            n = _count(result)
            if n:
                self.stats.dispatched += n
                log.info("dispatched %d occurrence(s)", n, extra={"event": "dispatched", "count": n})
        except UserError as exc:
            log.error("dispatch failed: %s", exc.message, extra={"event": "dispatch_failed"})
        except Exception:
            log.exception("dispatch failed", extra={"event": "dispatch_crashed"})
        if self._sweep is not None and time.monotonic() - self._last_sweep >= self.sweep_every:
            self._last_sweep = time.monotonic()
            try:
                self._sweep(self.clock())
            except UserError as exc:
                log.error("sweep failed: %s", exc.message, extra={"event": "sweep_failed"})
            except Exception:
                log.exception("sweep failed", extra={"event": "sweep_crashed"})

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick()
            self._stop.wait(max(self.interval - (time.monotonic() - started), 0.0))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="flowspec-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the current tick (a dispatch is one transaction), then return."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()


def _count(result: Any) -> int:
    if result is None:
        return 0
    if isinstance(result, int):
        return result
    try:
        return len(result)
    except TypeError:
        return 0


def config_sources(paths: Sequence[os.PathLike[str] | str]) -> list[str]:
    from flowspec.commands.plan import default_path

    return [str(p) for p in paths] or [default_path()]


def describe_queue(url: str | None, db_url: str) -> str:
    """The queue as it may be shown: its URL with the password masked, or the embedded file."""
    if url:
        return dbmod.mask_url(url)
    from reconciler.queue import default_queue_path

    return f"the embedded SQLite queue {default_queue_path(db_url)}"


def tasks_module(queue_url: str | None, db_url: str) -> Any:
    """`reconciler.tasks`, imported with the environment naming this queue and database: its
    Huey is built at import from `FLOWSPEC_QUEUE_URL`/`FLOWSPEC_DATABASE_URL`, and a short-lived
    command must neither create the default queue file nor leave the variables changed."""
    import importlib
    import sys

    from reconciler.queue import QUEUE_ENV

    if "reconciler.tasks" in sys.modules:
        return sys.modules["reconciler.tasks"]
    saved = {k: os.environ.get(k) for k in (QUEUE_ENV, dbmod.URL_ENV)}
    try:
        if queue_url:
            os.environ[QUEUE_ENV] = queue_url
        os.environ[dbmod.URL_ENV] = db_url
        return importlib.import_module("reconciler.tasks")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
