"""Occurrences/s of the compiler, against two baselines measured in the same run.

Run: `.venv/bin/python benchmarks/bench_compile.py [--quick] [--automations N] [--days D]`.

A generated repo of 1,000 automations (30% daily, 25% weekly, 15% monthly, 20% cron of varied
density, 10% custom; windows, day rules and exceptions on half of them) is compiled over 365
days from 2026-01-01. Figures:

- compile: `compile_plan` over every automation, occurrences/s (the compile step alone: the
  config is loaded before the clock starts);
- floor: dateutil `rrule` generating the same candidate times on naive datetimes (daily, weekly,
  monthly and rrule-expressible cron; custom dates are a list), candidates/s. Target: compile
  ≥ 0.5× the floor's rate, although compile also resolves DST, applies every rule and builds the
  plan's objects;
- cron: the cron automations alone, compile vs a croniter `get_next` loop over the same
  expressions. Target: ≥ 5× faster;
- end to end: `flowspec plan DIR --from 2026-01-01 --days 365 --format json > /dev/null` in a
  child process (loading, validation, compile, JSON), occurrences/s and the child's peak RSS;
- peak memory of the compile step (tracemalloc, measured in a separate pass since tracing slows
  it down): plans stream one automation at a time, so it stays near the largest automation.

The process uses the CLI's GC thresholds (`flowspec.cli.tune_gc`), as `flowspec plan`, `apply`
and the service do. Rounds alternate compile and its baseline so machine noise hits both alike (compile and the
floor get 2 × rounds − 1 rounds, the slow croniter pair rounds − 1); the best round of each is
reported, and the ratios of best to best.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from croniter import croniter  # noqa: E402
from dateutil import rrule  # noqa: E402

from flowspec.cli import tune_gc  # noqa: E402
from flowspec.compiler import compile_plan  # noqa: E402
from flowspec.config import Config, load_config_sources  # noqa: E402

START = datetime(2026, 1, 1)
ZONES = ["America/Sao_Paulo", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
COUNTRIES = {"America/Sao_Paulo": "BR", "America/New_York": "US", "Europe/Berlin": "DE",
             "Australia/Lord_Howe": "AU", "Asia/Kolkata": "IN", "UTC": "GB"}
WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
RR_DAYS = [rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU]
# (expression, weight, rrule kwargs giving the same wall-clock times)
CRONS: list[tuple[str, int, dict[str, object]]] = [
    ("0 9 * * MON-FRI", 4, {"freq": rrule.DAILY, "byweekday": RR_DAYS[:5], "byhour": 9, "byminute": 0}),
    ("30 8,17 * * *", 3, {"freq": rrule.DAILY, "byhour": (8, 17), "byminute": 30}),
    ("0 */2 * * *", 2, {"freq": rrule.DAILY, "byhour": tuple(range(0, 24, 2)), "byminute": 0}),
    ("*/15 9-17 * * MON-FRI", 2, {"freq": rrule.DAILY, "byweekday": RR_DAYS[:5], "byhour": tuple(range(9, 18)), "byminute": (0, 15, 30, 45)}),
    ("*/10 * * * *", 1, {"freq": rrule.DAILY, "byhour": tuple(range(24)), "byminute": tuple(range(0, 60, 10))}),
    ("0 10 1,15 * *", 2, {"freq": rrule.MONTHLY, "bymonthday": (1, 15), "byhour": 10, "byminute": 0}),
]

HEAD = """apiVersion: flowspec/v1
kind: Automation
metadata: {{name: {name}, organization: bench}}
spec:
  flow: promo
  whatsapp_number: main
  audience: {{contact_ids: [c-1]}}
  variable_mapping: {{discount: "10%"}}
  schedule:
"""
BASE = """apiVersion: flowspec/v1
kind: Flow
metadata: {name: promo, organization: bench}
spec:
  variables: [discount]
  start: greet
  nodes:
    greet: {type: send_text, text: "Today {{discount}} off", next: done}
    done: {type: end}
---
apiVersion: flowspec/v1
kind: Channel
metadata: {name: main, organization: bench}
spec: {type: outbox, path: outbox.jsonl}
"""


@dataclass
class Generated:
    sources: list[tuple[str, bytes]]
    floor: list[Callable[[], int]]  # each returns the number of candidates it generated
    crons: list[str]  # cron expressions (their automations are the cron-only config)
    cron_sources: list[tuple[str, bytes]]
    plain_sources: list[tuple[str, bytes]]  # the half without window, day rules, exceptions
    plain_floor: list[Callable[[], int]]


def rule_counter(end: datetime, **kw: object) -> Callable[[], int]:
    """Counts the candidates rrule generates in [START, end) for a schedule from 2025-06-01."""

    def count() -> int:
        rule = rrule.rrule(dtstart=datetime(2025, 6, 1), until=end, **kw)  # type: ignore[arg-type]
        return sum(1 for t in rule if t >= START)

    return count


def _constant(n: int) -> Callable[[], int]:
    return lambda: n


def generate(n: int, days: int, seed: int = 7) -> Generated:
    rng = random.Random(seed)
    end = START + timedelta(days=days)
    sources: list[tuple[str, bytes]] = [("automations/base.yaml", BASE.encode())]
    cron_sources = list(sources)
    plain_sources = list(sources)
    plain_floor: list[Callable[[], int]] = []
    floor: list[Callable[[], int]] = []
    crons: list[str] = []
    kinds = ["daily"] * 30 + ["weekly"] * 25 + ["monthly"] * 15 + ["cron"] * 20 + ["custom"] * 10
    for i in range(n):
        kind = kinds[i % 100]
        zone = rng.choice(ZONES)
        # One minute for all times of day, so rrule's hour × minute product is exactly `times`.
        minute = rng.choice([0, 15, 30, 45])
        hours = sorted(rng.sample(range(6, 22), rng.choice([1, 1, 2, 3])))
        hhmm = [f"{h:02d}:{minute:02d}" for h in hours]
        lines = [f"recurrence_type: {kind}", f"execution_timezone: {zone}", "start_date: 2025-06-01"]

        if kind == "daily":
            lines.append(f"recurrence_config: {{times: [{', '.join(repr(h) for h in hhmm)}]}}")
            floor.append(rule_counter(end, freq=rrule.DAILY, byhour=tuple(hours), byminute=minute))
        elif kind == "weekly":
            wd = sorted(rng.sample(range(7), rng.choice([1, 2, 3, 5])))
            lines.append(f"recurrence_config: {{days: [{', '.join(WEEKDAYS[d] for d in wd)}]}}")
            lines.append(f'start_time: "{hhmm[0]}"')
            floor.append(rule_counter(end, freq=rrule.WEEKLY, byweekday=[RR_DAYS[d] for d in wd], wkst=rrule.MO,
                                      byhour=hours[0], byminute=minute))
        elif kind == "monthly":
            day = rng.choice([1, 5, 15, 28, -1])
            lines.append(f"recurrence_config: {{day: {day}}}")
            lines.append(f'start_time: "{hhmm[0]}"')
            floor.append(rule_counter(end, freq=rrule.MONTHLY, bymonthday=day, byhour=hours[0], byminute=minute))
        elif kind == "cron":
            expr, _, kw = rng.choices(CRONS, weights=[c[1] for c in CRONS])[0]
            lines.append(f'recurrence_config: {{expression: "{expr}"}}')
            floor.append(rule_counter(end, **kw))
            crons.append(expr)
        else:
            dates = sorted({START + timedelta(days=rng.randrange(days), hours=rng.randrange(8, 20)) for _ in range(12)})
            lines.append("recurrence_config: {dates: [" + ", ".join(f'"{d:%Y-%m-%dT%H:%M}"' for d in dates) + "]}")
            floor.append(_constant(len(dates)))
        if i % 2:
            lines += ['execution_window_start: "09:00"', 'execution_window_end: "18:00"',
                      "skip_weekends: true", "skip_holidays: true", f"holiday_country: {COUNTRIES[zone]}",
                      "blackout_dates: [2026-02-16, {start: 2026-12-24, end: 2026-12-26, reason: xmas}]",
                      f"on_blocked_day: {rng.choice(['skip', 'next_allowed'])}"]
        text = HEAD.format(name=f"auto-{i:04d}") + "".join(f"    {line}\n" for line in lines)
        if i % 2:
            d = date(2026, 1, 1) + timedelta(days=rng.randrange(days))
            text += (
                "  exceptions:\n"
                f"    - {{exception_type: skip, start_date: {d}, reason: maintenance}}\n"
                f"    - {{exception_type: modify, start_date: {d + timedelta(days=3)}, end_date: {d + timedelta(days=9)},"
                f" modified_config: {{rate_limit_per_hour: 3000}}}}\n"
            )
        source = (f"automations/auto-{i:04d}.yaml", text.encode())
        sources.append(source)
        if kind == "cron":
            cron_sources.append(source)
        if not i % 2:
            plain_sources.append(source)
            plain_floor.append(floor[-1])
    return Generated(sources, floor, crons, cron_sources, plain_sources, plain_floor)


def compile_all(config: Config, days: int) -> int:
    lo = START.replace(tzinfo=UTC)
    plan = compile_plan(config, lo, lo + timedelta(days=days))
    return sum(len(a.occurrences) for a in plan.automations)


def croniter_loop(crons: list[str], days: int) -> int:
    end = START + timedelta(days=days)
    n = 0
    for expr in crons:
        it = croniter(expr, START - timedelta(seconds=1))
        while it.get_next(datetime) < end:
            n += 1
    return n


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    # CPU time of this process: every measured loop is single-threaded and CPU-bound, and on a
    # shared machine wall time also counts the spells another tenant holds the core.
    t0 = time.process_time()
    n = fn()
    return n, time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 automations over 90 days, one round")
    parser.add_argument("--automations", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    n = args.automations or (200 if args.quick else 1000)
    days = args.days or (90 if args.quick else 365)
    rounds = args.rounds or (1 if args.quick else 3)
    # The cyclic GC as every flowspec process runs it (flowspec.cli.tune_gc): with Python's
    # default thresholds it rescans the growing plan and costs compile about a tenth more.
    tune_gc()

    gen = generate(n, days)
    config = load_config_sources(gen.sources)
    errors = [d for d in config.diagnostics if d.is_error]
    assert not errors, [d.render() for d in errors]
    cron_config = load_config_sources(gen.cron_sources)
    plain_config = load_config_sources(gen.plain_sources)
    print(f"{n} automations ({len(gen.crons)} cron) over {days} days, {rounds * 2 - 1} round(s) of compile vs floor")
    compile_all(config, 2)  # warm caches (zone tables, holidays) outside the measurement

    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    # Each pair alternates so noise hits both alike. The croniter loop takes ~50 s a round at
    # full size, so its pair gets fewer rounds than the two cheap ones.
    pairs: list[tuple[int, tuple[tuple[str, Callable[[], int]], ...]]] = [
        (rounds * 2 - 1, (("compile", lambda: compile_all(config, days)),
                          ("rrule floor", lambda: sum(f() for f in gen.floor)))),
        (max(1, rounds - 1), (("compile (cron only)", lambda: compile_all(cron_config, days)),
                              ("croniter loop", lambda: croniter_loop(gen.crons, days)))),
        (rounds, (("compile (no rules)", lambda: compile_all(plain_config, days)),
                  ("rrule (no rules)", lambda: sum(f() for f in gen.plain_floor)))),
    ]
    for n_rounds, pair in pairs:
        for _ in range(n_rounds):
            for label, fn in pair:
                count, seconds = timed(fn)
                counts[label] = count
                best[label] = max(best.get(label, 0.0), count / seconds)
    for label, rate in best.items():
        print(f"  {label:<22} {counts[label]:>10,} occurrences  {rate:>12,.0f}/s")
    print(f"  compile / rrule floor    {best['compile'] / best['rrule floor']:.2f}x  (target >= 0.5x)")
    print(f"  cron compile / croniter  {best['compile (cron only)'] / best['croniter loop']:.1f}x  (target >= 5x)")
    print(f"  no-rules half / its rrule {best['compile (no rules)'] / best['rrule (no rules)']:.2f}x  (information: the cost of the rules)")

    tracemalloc.start()
    compile_all(config, days)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  compile peak memory (tracemalloc): {peak / 2**20:.1f} MiB")

    with tempfile.TemporaryDirectory() as tmp:
        for path, data in gen.sources:
            target = Path(tmp) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        cli = [sys.executable, "-m", "flowspec", "plan", str(Path(tmp) / "automations"),
               "--from", "2026-01-01", "--days", str(days), "--format", "json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run(cli, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        seconds = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if proc.returncode != 0:
            print(f"  flowspec plan failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
        else:
            print(f"  flowspec plan --format json (end to end): {seconds:.1f} s, "
                  f"{counts['compile'] / seconds:,.0f} occurrences/s, peak RSS {max(rss, before) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
