"""The engine's handle: database, shared rate-limit state, config, secrets, and settings.

One `EngineContext` per process (the service, each worker process). It owns nothing that
decides: every decision is a database row; this object only says where those rows are, where
the config and the secrets come from, and how long leases last.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from flowspec.config import Config, load_config
from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler.channels import Channel, open_channel
from reconciler.engine.limits import DatabaseLimiter, Limiter, RedisLimiter

CONFIG_ENV = "FLOWSPEC_CONFIG"
# `batch` (the default) or `normal`: the Linux scheduling policy of a worker's task threads
# (reconciler.tasks).
SCHEDULING_ENV = "FLOWSPEC_WORKER_SCHEDULING"

ChannelFactory = Callable[[str, str, Mapping[str, Any]], Channel]


@dataclass(frozen=True)
class EngineSettings:
    """Timings and sizes; the defaults suit a production service, tests shorten them."""

    # How long a claimed batch is held before the sweep may resolve it (SPEC 6.5). Longer than
    # any batch takes to send, including pacing under rate limits (a batch is sized to ~2 s).
    lease_seconds: float = 120.0
    # A running execution with due work and no heartbeat for this long has lost its task.
    stale_seconds: float = 30.0
    # Recipients taken per batch, fewer when the rate limits would not give them slots
    # within `rate_horizon`. Per-batch costs (a dozen statements, two commits) made 500 send
    # ~10% slower than 1,000 in the scale-out benchmark; a worker that dies loses the outcome
    # of at most one batch in flight (at most once: `unknown`), which the horizon bounds to a
    # second of sends at the channel's rate.
    batch_size: int = 1000
    # A worker reserves rate-limit slots at most this far ahead, then sleeps until each slot.
    rate_horizon: float = 1.0
    # A work pass yields its worker after this long (re-enqueued at once): fairness between
    # executions sharing few workers.
    pass_budget: float = 20.0
    # Work tasks kept in flight for one execution (more than one spreads it across workers).
    parallelism: int = 2
    # Consecutive sends of one flow to one user are spaced by WhatsApp's pair rate (~6 s).
    pair_gap: float = 6.0
    # messages_per_second is a ceiling never to be crossed as the API counts: slots are spaced
    # for (1 - margin) of it, so scheduling and network jitter (a late message arriving with the
    # next one) cannot push any second over.
    rate_margin: float = 0.03
    # Under at_most_once, how many of a batch's sends its send mark is moved ahead at a time
    # (reconciler.engine.marks): a killed worker gives up fewer than 1.5 times this many
    # never-started sends per batch it was sending (plus those in flight); one mark write per
    # this many sends.
    mark_ahead: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EngineSettings:
        """Defaults, overridden by FLOWSPEC_ENGINE_<FIELD> (e.g. FLOWSPEC_ENGINE_BATCH_SIZE)."""
        values: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            raw = env.get(f"FLOWSPEC_ENGINE_{name.upper()}")
            if raw is None or raw == "":
                continue
            kind = int if f.type in ("int", int) else float
            try:
                values[name] = kind(raw)
            except ValueError:
                raise UserError(
                    f"FLOWSPEC_ENGINE_{name.upper()}={raw!r} is not a number"
                ) from None
        return cls(**values)


class ChannelCache:
    """Channels by (organization, name, spec): one per process, so one connection pool."""

    def __init__(self, env: Mapping[str, str], outbox_dir: Path) -> None:
        self.env = env
        self.outbox_dir = outbox_dir
        self._channels: dict[tuple[str, str, str], Channel] = {}
        self._lock = threading.Lock()

    def __call__(self, organization: str, name: str, spec: Mapping[str, Any]) -> Channel:
        key = (organization, name, repr(sorted(spec.items())))
        with self._lock:
            channel = self._channels.get(key)
            if channel is None:
                channel = open_channel(spec, env=self.env, outbox_dir=self.outbox_dir)
                self._channels[key] = channel
            return channel

    def all(self) -> list[Channel]:
        with self._lock:
            return list(self._channels.values())


@dataclass
class EngineContext:
    database: dbmod.Database
    limiter: Limiter
    config_source: Config | Callable[[], Config] | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    outbox_dir: Path = field(default_factory=Path.cwd)
    settings: EngineSettings = field(default_factory=EngineSettings)
    rng: random.Random = field(default_factory=random.Random)
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    channels: ChannelCache | None = None

    def __post_init__(self) -> None:
        if self.channels is None:
            self.channels = ChannelCache(self.env, self.outbox_dir)

    @property
    def db(self) -> Engine:
        return self.database.engine

    @property
    def is_postgres(self) -> bool:
        return self.db.dialect.name == "postgresql"

    def config(self) -> Config:
        source = self.config_source
        if source is None:
            paths = self.env.get(CONFIG_ENV)
            if not paths:
                raise UserError(
                    f"the engine needs the config to start an execution: set {CONFIG_ENV} to the "
                    f"config root (the folder `flowspec apply` was given)"
                )
            return load_config(paths.split(os.pathsep))
        return source if isinstance(source, Config) else source()

    def channel_factory(self) -> ChannelFactory:
        assert self.channels is not None
        return self.channels

    def close(self) -> None:
        from reconciler.engine.aio import shared_loop

        assert self.channels is not None
        channels = self.channels.all()
        if channels:

            async def close_all() -> None:
                for channel in channels:
                    await channel.aclose()

            shared_loop().run(close_all())
        self.database.dispose()


def open_engine(
    db_url: str | None = None,
    *,
    config: Config | Callable[[], Config] | None = None,
    env: Mapping[str, str] | None = None,
    outbox_dir: Path | None = None,
    redis_url: str | None = None,
    settings: EngineSettings | None = None,
    rng: random.Random | None = None,
) -> EngineContext:
    """An EngineContext for a database URL (default: `FLOWSPEC_DATABASE_URL`, then the embedded
    SQLite file). Rate-limit state goes to Redis when `redis_url` is given (the Redis queue's
    server), else to the database. Raises UserError naming the URL (password masked)."""
    environ = dict(os.environ if env is None else env)
    url = db_url or environ.get(dbmod.URL_ENV) or dbmod.DEFAULT_URL
    database = dbmod.open_database(url)
    limiter: Limiter = (
        RedisLimiter.from_url(redis_url) if redis_url else DatabaseLimiter(database.engine)
    )
    return EngineContext(
        database=database,
        limiter=limiter,
        config_source=config,
        env=environ,
        outbox_dir=outbox_dir or Path.cwd(),
        settings=settings or EngineSettings.from_env(environ),
        rng=rng or random.Random(),
    )
