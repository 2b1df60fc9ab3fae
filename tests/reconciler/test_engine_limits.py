"""Rate limits shared by every worker: GCRA in the database and in Redis, and the messaging limit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from reconciler import db as dbmod
from reconciler.engine.limits import (
    Bucket,
    DatabaseLimiter,
    Limiter,
    RedisLimiter,
    admit_daily,
    gcra,
)

US = 1_000_000


def max_in_any_second(times: list[float]) -> int:
    """The most slots inside any half-open one-second window [t, t + 1), counted in whole
    microseconds (the limiter's unit) so float rounding cannot move a slot across the edge."""
    us = sorted(round(t * US) for t in times)
    best, lo = 0, 0
    for hi, t in enumerate(us):
        while us[lo] <= t - US:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def drive(reserve: Callable[[int, float], list[float]], *, workers: int, seconds: float,
          batch: int) -> list[float]:
    """`workers` senders taking turns on a driven clock, each reserving `batch` slots and coming
    back when its last slot has passed; the slots they got."""
    got: list[float] = []
    ready = [0.0] * workers  # when each worker asks again
    while True:
        w = min(range(workers), key=lambda i: ready[i])
        now = ready[w]
        if now >= seconds:
            return [t for t in got if t < seconds]
        times = reserve(batch, now)
        got += times
        ready[w] = (times[-1] if times else now) + 0.01


def test_gcra_never_exceeds_the_rate_in_any_second_and_keeps_95_percent() -> None:
    """With messages_per_second 80 over a driven clock, 4 workers: no second holds more than 80
    slots and at least 95% of 80/s is achieved."""
    bucket = Bucket.per_second("channel:acme/wa", 80)
    state = {"tat": 0}

    def reserve(n: int, now: float) -> list[float]:
        times, tats, _ = gcra([state["tat"]], [bucket.interval_us], n, round(now * US), US)
        if times:
            state["tat"] = tats[0]
        return [t / US for t in times]

    times = drive(reserve, workers=4, seconds=60, batch=80)
    assert max_in_any_second(times) <= 80
    assert len(times) / 60 >= 0.95 * 80


def test_gcra_with_two_limits_follows_the_slower_and_moves_both() -> None:
    """A message needs a slot in every bucket: slots are spaced by the slower interval and every
    bucket's theoretical arrival time moves past the last slot."""
    fast, slow = 10_000, 3_600 * US // 1000  # 100/s and 1000/h
    times, tats, next_at = gcra([0, 0], [fast, slow], 5, 0, 10 * US)
    assert times == [0, slow, 2 * slow]  # only three fit in the 10 s horizon
    assert tats == [2 * slow + fast, 3 * slow]
    assert next_at == 3 * slow


def test_gcra_admits_nothing_beyond_the_horizon_and_says_when_to_return() -> None:
    """When the next slot lies beyond the horizon nothing is admitted and `next_at` is that slot."""
    times, tats, next_at = gcra([5 * US], [US], 3, 0, US)
    assert times == [] and tats == [5 * US] and next_at == 5 * US


def _limiters(db_url: str, request: pytest.FixtureRequest, kind: str) -> Limiter:
    if kind == "redis":
        return RedisLimiter.from_url(request.getfixturevalue("redis_url"))
    return DatabaseLimiter(dbmod.create_engine(db_url))


@pytest.mark.parametrize("kind", ["database", pytest.param("redis", marks=pytest.mark.redis)])
def test_shared_limiter_gives_disjoint_evenly_spaced_slots_to_racing_threads(
    db_url: str, request: pytest.FixtureRequest, kind: str
) -> None:
    """Eight threads reserving at once from one bucket never get two slots closer than the
    interval: the state is shared and updated atomically (row lock, or one Lua script)."""
    if kind == "redis" and "postgres" in db_url:
        pytest.skip("the Redis limiter does not depend on the database")
    limiter = _limiters(db_url, request, kind)
    bucket = Bucket.per_second("channel:acme/race", 200)
    got: list[float] = []
    lock = threading.Lock()
    base = datetime(2026, 1, 5, tzinfo=UTC).timestamp()

    def worker(k: int) -> None:
        for i in range(15):
            res = limiter.reserve([bucket], 7, now=base + i * 0.01 + k * 0.001, horizon=1000)
            with lock:
                got.extend(res.times)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got.sort()
    assert len(got) == 8 * 15 * 7
    gaps = [b - a for a, b in zip(got, got[1:], strict=False)]
    assert min(gaps) >= 1 / 200 - 1e-6
    if isinstance(limiter, DatabaseLimiter):
        limiter.engine.dispose()


@pytest.mark.redis
def test_redis_limiter_matches_the_pure_algorithm(redis_url: str) -> None:
    """The Lua script admits the same slots as `gcra` for the same requests."""
    limiter = RedisLimiter.from_url(redis_url)
    buckets = [Bucket.per_second("channel:acme/wa", 80), Bucket.per_hour("automation:acme/a", 7200)]
    tats = [0, 0]
    for i in range(20):
        now = 1_767_600_000 + i * 0.3
        res = limiter.reserve(buckets, 4, now=now, horizon=1.0)
        times, tats_new, next_us = gcra(tats, [b.interval_us for b in buckets], 4, round(now * US), US)
        if times:
            tats = tats_new
        assert res.times == [t / US for t in times]
        assert res.next_at == pytest.approx(next_us / US)


def test_daily_unique_recipients_admit_up_to_the_budget_and_say_when_to_retry(db_url: str) -> None:
    """Budget 3: three new numbers pass, the others wait until the first counted one is 24 h
    old; a number already counted costs nothing; after 24 h the budget is back."""
    engine = dbmod.create_engine(db_url)
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    try:
        first = admit_daily(engine, organization="acme", channel="wa", limit=3,
                            phones=["+1", "+2", "+3", "+4", "+5"], now=t0)
        assert first.allowed == {"+1", "+2", "+3"}
        assert first.retry_at == t0 + timedelta(hours=24)
        again = admit_daily(engine, organization="acme", channel="wa", limit=3,
                            phones=["+2", "+4"], now=t0 + timedelta(hours=1))
        assert again.allowed == {"+2"} and again.retry_at == t0 + timedelta(hours=24)
        other = admit_daily(engine, organization="acme", channel="other", limit=3,
                            phones=["+4"], now=t0 + timedelta(hours=1))
        assert other.allowed == {"+4"}
        later = admit_daily(engine, organization="acme", channel="wa", limit=3,
                            phones=["+4", "+5", "+6", "+7"], now=t0 + timedelta(hours=24, seconds=1))
        assert later.allowed == {"+4", "+5", "+6"} and later.retry_at is not None
    finally:
        engine.dispose()
