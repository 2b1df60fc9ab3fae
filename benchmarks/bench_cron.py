"""Cron expansion speed: flowspec.cron against croniter get_next and cronsim, same naive windows.

Run: .venv/bin/python benchmarks/bench_cron.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from croniter import croniter
from cronsim import CronSim

from flowspec.cron import parse_cron

START = datetime(2025, 1, 1)
CASES = [
    ("*/5 * * * *", 365),
    ("* * * * *", 60),
    ("0 9 * * MON-FRI", 3650),
    ("0,30 8-18 * * *", 365),
    ("0 9 29 2 *", 3650),
    ("0 0 * * FRI#5", 3650),
]


def best_rate(fn: Callable[[], int]) -> tuple[int, float]:
    best, n = 0.0, 0
    for _ in range(3):
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / max(time.perf_counter() - t0, 1e-9))
    return n, best


def ours(expr: str, end: datetime) -> int:
    return sum(1 for _ in parse_cron(expr).iter_between(START, end))


def with_croniter(expr: str, end: datetime) -> int:
    it, n = croniter(expr, START - timedelta(seconds=1)), 0
    while n < 200_000 and it.get_next(datetime) < end:
        n += 1
    return n


def with_cronsim(expr: str, end: datetime) -> int:
    n = 0
    for t in CronSim(expr, START - timedelta(seconds=1)):
        if t >= end or n >= 200_000:
            break
        n += 1
    return n


def main() -> None:
    print(f"{'expression':<20} {'n':>8} {'flowspec/s':>12} {'croniter/s':>12} {'cronsim/s':>12} {'x croniter':>10}")
    for expr, days in CASES:
        end = START + timedelta(days=days)
        n, r_ours = best_rate(lambda e=expr, d=end: ours(e, d))  # type: ignore[misc]
        _, r_ci = best_rate(lambda e=expr, d=end: with_croniter(e, d))  # type: ignore[misc]
        _, r_cs = best_rate(lambda e=expr, d=end: with_cronsim(e, d))  # type: ignore[misc]
        print(f"{expr:<20} {n:>8} {r_ours:>12,.0f} {r_ci:>12,.0f} {r_cs:>12,.0f} {r_ours / r_ci:>9.0f}x")


if __name__ == "__main__":
    main()
