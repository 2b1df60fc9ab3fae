"""Rate limits shared by every worker on every machine (SPEC 6.6, 6.10).

GCRA (the generic cell rate algorithm, "virtual scheduling"): each limit keeps one number, the
theoretical arrival time `tat` of its next message. A message may go at max(now, tat); then tat
moves on by the emission interval T = 1/rate. With no burst allowance (what flowspec uses),
consecutive messages are at least T apart, so no window of one second ever holds more than
`rate` of them, and a busy sender still gets the full rate (unlike a fixed-window counter such as
Huey's `rate_limit`, which admits up to 2x across a window edge; FACTS.md).

A worker reserves slots for a whole batch at once: `reserve(buckets, n, now, horizon)` admits the
first k <= n messages whose slots fall in [now, now + horizon) and returns their times; the
worker then sends each message no earlier than its slot. Several limits apply together (the
automation's `rate_limit_per_hour` and the channel's `messages_per_second`): a message needs a
slot in every bucket, so the slots are spaced by the slowest interval and every bucket moves.

Times are integer microseconds inside the algorithm (T = ceil(1e6 / rate)): float drift must never
let 81 messages fit in one second at 80/s. The state lives in the database (`rate_buckets`, one
row per limit, updated under the row lock / SQLite's write lock) or, when the queue is Redis, in
Redis (one atomic Lua script). Never in process memory.

The messaging limit (`daily_unique_recipients`, unique phone numbers per moving 24 h) is a
count, not a rate: `admit_daily` keeps the numbers counted in `daily_recipients`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reconciler import db as dbmod
from reconciler.models import daily_recipients, rate_buckets

US = 1_000_000
DAY = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit: its shared key and the interval between two messages, in microseconds."""

    key: str
    interval_us: int

    @classmethod
    def per_second(cls, key: str, rate: float) -> Bucket:
        return cls(key, max(1, math.ceil(US / rate)))

    @classmethod
    def per_hour(cls, key: str, rate: float) -> Bucket:
        return cls(key, max(1, math.ceil(3600 * US / rate)))


@dataclass(frozen=True, slots=True)
class Reservation:
    """Slots for the first `len(times)` messages (Unix seconds, ascending); `next_at`: the
    earliest time one more message could go (when nothing was admitted: when to come back)."""

    times: list[float]
    next_at: float


def gcra(
    tats_us: Sequence[int], intervals_us: Sequence[int], n: int, now_us: int, horizon_us: int
) -> tuple[list[int], list[int], int]:
    """The pure algorithm: (slot times, new tats, next possible time), all in microseconds."""
    start = max(now_us, *tats_us) if tats_us else now_us
    step = max(intervals_us) if intervals_us else 0
    end = now_us + max(1, horizon_us)  # slots in [now, now + horizon): half-open
    if n <= 0 or start >= end:
        return [], list(tats_us), start
    k = n if step == 0 else min(n, -(-(end - start) // step))
    times = [start + i * step for i in range(k)]
    last = times[-1]
    new_tats = [last + t for t in intervals_us]
    return times, new_tats, max([now_us, *new_tats])


class Limiter(Protocol):
    def reserve(
        self, buckets: Sequence[Bucket], n: int, *, now: float, horizon: float,
        within: Connection | None = None,
    ) -> Reservation:
        """`within`: the caller's open write transaction. Only a SQLite database limiter uses
        it (SQLite has one writer: a second transaction would wait for the caller's)."""
        ...

    def peek(self, buckets: Sequence[Bucket]) -> float:
        """The earliest time (Unix seconds) a slot may be free in every bucket, reserving
        nothing: a worker claims recipients only when their slots are near."""
        ...


def _us(seconds: float) -> int:
    return round(seconds * US)


def _reservation(times: list[int], next_us: int) -> Reservation:
    return Reservation([t / US for t in times], next_us / US)


class DatabaseLimiter:
    """GCRA state in `rate_buckets`, one row per limit, locked for the read-modify-write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reserve(
        self, buckets: Sequence[Bucket], n: int, *, now: float, horizon: float,
        within: Connection | None = None,
    ) -> Reservation:
        if not buckets:
            return Reservation([now] * n, now)
        with _own_or(self.engine, within) as conn:
            return self._reserve(conn, buckets, n, now=now, horizon=horizon)

    def peek(self, buckets: Sequence[Bucket]) -> float:
        if not buckets:
            return 0.0
        with self.engine.connect() as conn:
            tats = conn.execute(
                sa.select(rate_buckets.c.tat).where(rate_buckets.c.key.in_([b.key for b in buckets]))
            ).scalars().all()
        return max(tats, default=0.0)

    def _reserve(
        self, conn: Connection, buckets: Sequence[Bucket], n: int, *, now: float, horizon: float
    ) -> Reservation:
        ordered = sorted(buckets, key=lambda b: b.key)  # one lock order: no deadlocks
        keys = [b.key for b in ordered]
        now_us = _us(now)
        tats = _locked_tats(conn, keys, now)
        times, new_tats, next_us = gcra(
            [tats[k] for k in keys], [b.interval_us for b in ordered], n, now_us, _us(horizon)
        )
        if times:
            stamp = datetime.fromtimestamp(now, UTC)
            conn.execute(
                rate_buckets.update()
                .where(rate_buckets.c.key == sa.bindparam("k"))
                .values(tat=sa.bindparam("t"), updated_at=stamp),
                [{"k": k, "t": t / US} for k, t in zip(keys, new_tats, strict=True)],
            )
        return _reservation(times, next_us)


@contextmanager
def _own_or(engine: Engine, within: Connection | None) -> Iterator[Connection]:
    """The caller's transaction on SQLite (one writer: our own would wait for theirs);
    otherwise a transaction of our own, so bucket rows are locked only for the reservation."""
    if within is not None and within.dialect.name == "sqlite":
        yield within
        return
    with dbmod.write_transaction(engine) as conn:
        yield conn


def _locked_tats(conn: Connection, keys: Sequence[str], now: float) -> dict[str, int]:
    """Each key's tat (µs), its row locked until commit; missing rows are created first."""
    stamp = datetime.fromtimestamp(now, UTC)
    query = sa.select(rate_buckets.c.key, rate_buckets.c.tat).where(rate_buckets.c.key.in_(keys))
    if conn.dialect.name == "postgresql":
        query = query.order_by(rate_buckets.c.key).with_for_update()
    found = {r.key: _us(r.tat) for r in conn.execute(query)}
    missing = [k for k in keys if k not in found]
    if missing:
        conn.execute(
            _insert(conn).values([{"key": k, "tat": 0.0, "updated_at": stamp} for k in missing])
            .on_conflict_do_nothing(index_elements=["key"])
        )
        found = {r.key: _us(r.tat) for r in conn.execute(query)}
    return found


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(rate_buckets)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(rate_buckets)


# Atomic in Redis: read every bucket, admit, write every bucket. Integers in microseconds; Lua
# numbers are doubles, exact to 2^53 (year 2255 in µs), formatted with %.0f so that no
# exponent notation loses digits.
_LUA = """
local now = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local start = now
local step = 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat > start then start = tat end
  local t = tonumber(ARGV[3 + i])
  if t > step then step = t end
end
if horizon < 1 then horizon = 1 end
if n <= 0 or start >= now + horizon then
  return {0, string.format('%.0f', start), string.format('%.0f', start), 0}
end
local k = n
if step > 0 then
  k = math.ceil((now + horizon - start) / step)
  if k > n then k = n end
end
local last = start + (k - 1) * step
local nxt = now
for i, key in ipairs(KEYS) do
  local tat = last + tonumber(ARGV[3 + i])
  if tat > nxt then nxt = tat end
  local ttl = math.floor((tat - now) / 1000) + 60000
  redis.call('SET', key, string.format('%.0f', tat), 'PX', ttl)
end
return {k, string.format('%.0f', start), string.format('%.0f', nxt), string.format('%.0f', step)}
"""


class RedisLimiter:
    """GCRA state in Redis (the queue's server), one key per limit, updated by one Lua script."""

    def __init__(self, client: Any, *, prefix: str = "flowspec:rate:") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_LUA)

    @classmethod
    def from_url(cls, url: str) -> RedisLimiter:
        import redis

        return cls(redis.Redis.from_url(url))

    def peek(self, buckets: Sequence[Bucket]) -> float:
        if not buckets:
            return 0.0
        tats = self.client.mget([self.prefix + b.key for b in buckets])
        return max((int(t) for t in tats if t is not None), default=0) / US

    def reserve(
        self, buckets: Sequence[Bucket], n: int, *, now: float, horizon: float,
        within: Connection | None = None,
    ) -> Reservation:
        if not buckets:
            return Reservation([now] * n, now)
        now_us = _us(now)
        k, start, nxt, step = self._script(
            keys=[self.prefix + b.key for b in buckets],
            args=[now_us, _us(horizon), n, *[b.interval_us for b in buckets]],
        )
        k, start, nxt, step = int(k), int(start), int(nxt), int(step)
        times = [start + i * step for i in range(k)]
        return _reservation(times, nxt if k else start)


# --------------------------------------------------------------------------- messaging limit


@dataclass(frozen=True, slots=True)
class DailyAdmission:
    allowed: frozenset[str]  # phone numbers that may be messaged now
    retry_at: datetime | None  # for the others: when the oldest counted number leaves the 24 h


def admit_daily(
    engine: Engine,
    *,
    organization: str,
    channel: str,
    limit: int,
    phones: Iterable[str],
    now: datetime,
    within: Connection | None = None,
) -> DailyAdmission:
    """Admit phone numbers against a channel's unique-recipients-per-24h budget.

    A number already counted within the last 24 h costs nothing; a new one takes one unit while
    units remain. Serialised per channel by a lock row in `rate_buckets`, so two workers cannot
    both spend the last unit. `within`: as for `Limiter.reserve`.
    """
    wanted = list(dict.fromkeys(phones))
    if not wanted:
        return DailyAdmission(frozenset(), None)
    since = now - DAY
    d = daily_recipients.c
    scope = (d.organization == organization) & (d.channel == channel)
    with _own_or(engine, within) as conn:
        _locked_tats(conn, [f"daily:{organization}/{channel}"], now.timestamp())
        counted: set[str] = set()
        for chunk in _chunks(wanted, 500):
            counted.update(
                conn.execute(
                    sa.select(d.phone).where(scope, d.phone.in_(chunk), d.counted_at > since)
                ).scalars()
            )
        used = conn.execute(
            sa.select(sa.func.count()).select_from(daily_recipients).where(scope, d.counted_at > since)
        ).scalar_one()
        fresh = [p for p in wanted if p not in counted]
        budget = max(0, limit - used)
        admitted = fresh[:budget]
        if admitted:
            rows = [
                {"organization": organization, "channel": channel, "phone": p, "counted_at": now}
                for p in admitted
            ]
            ins = _daily_insert(conn)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["organization", "channel", "phone"],
                    set_={"counted_at": ins.excluded.counted_at},
                ),
                rows,
            )
        retry_at = None
        if len(fresh) > budget:
            oldest = conn.execute(
                sa.select(sa.func.min(d.counted_at)).where(scope, d.counted_at > since)
            ).scalar_one()
            retry_at = (oldest + DAY) if oldest is not None else now
    return DailyAdmission(frozenset(counted) | frozenset(admitted), retry_at)


def _daily_insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(daily_recipients)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(daily_recipients)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
