"""Benchmark `flowspec apply` against a raw SQLAlchemy Core bulk insert of the same rows.

    .venv/bin/python benchmarks/bench_apply.py [--quick] [--engine sqlite|postgres|both]

1,000 automations (4 sends a day for 25 days: 100,000 occurrences in the horizon), on SQLite
and on PostgreSQL. In the same run, for each engine:

* raw      one `conn.execute(occurrences.insert(), rows)` of the prebuilt rows, in a fresh
           database (the baseline: the least any writer of these rows must pay);
* first    `run_apply` of the compiled plans into a fresh database  (target <= 2x raw);
* no-op    the same apply again                                      (target <= 0.25x raw);
* edit 10  10 automations' times moved by one hour (1,000 rows updated) (target <= 0.25x raw);
           --quick (100 automations) edits 1, the same share.

Plans are compiled once beforehand (compile time is reported on its own), so the figures are the
reconciler's. Peak memory is the Python heap's peak during the first apply (tracemalloc, in a
separate pass so it does not slow the timed one), beside the process's peak RSS. The end-to-end
CLI (load, validate, compile, apply) is timed too, on SQLite.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowspec.compiler import compile_automation, plan_inputs  # noqa: E402
from flowspec.config import load_config  # noqa: E402
from flowspec.plan import AutomationPlan  # noqa: E402
from reconciler import apply as core  # noqa: E402
from reconciler import db as dbmod  # noqa: E402
from reconciler.models import automations, occurrences  # noqa: E402

NOW = datetime(2026, 3, 2, tzinfo=UTC)
HORIZON = timedelta(days=25)
TIMES = ["08:00", "12:00", "16:00", "20:00"]
ZONES = ["UTC", "America/Sao_Paulo", "Europe/Lisbon", "Asia/Tokyo", "America/New_York"]
PG_ADMIN = os.environ.get("FLOWSPEC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# --------------------------------------------------------------------------- inputs


def write_config(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    base = [
        {"apiVersion": "flowspec/v1", "kind": "Channel", "metadata": {"name": "out", "organization": "bench"},
         "spec": {"type": "outbox", "path": "outbox/bench.jsonl", "messages_per_second": 80}},
        {"apiVersion": "flowspec/v1", "kind": "Flow", "metadata": {"name": "hello", "organization": "bench"},
         "spec": {"start": "send", "nodes": {"send": {"type": "send_text", "text": "hi", "next": "done"},
                                            "done": {"type": "end"}}}},
    ]
    (root / "base.yaml").write_text("\n---\n".join(json.dumps(d) for d in base))
    for i in range(n):
        doc = {
            "apiVersion": "flowspec/v1", "kind": "Automation",
            "metadata": {"name": f"auto-{i:04d}", "organization": "bench"},
            "spec": {
                "flow": "hello", "whatsapp_number": "out", "audience": {"contact_ids": ["c-1"]},
                "schedule": {
                    "recurrence_type": "daily", "recurrence_config": {"times": TIMES},
                    "start_date": "2026-01-01", "execution_timezone": ZONES[i % len(ZONES)],
                },
            },
        }
        (root / f"auto-{i:04d}.yaml").write_text(json.dumps(doc))


def compile_all(root: Path) -> tuple[list[core.DesiredAutomation], float]:
    config = load_config([str(root)])
    assert not config.diagnostics, config.diagnostics[:3]
    t = time.perf_counter()
    desired = []
    for entry in config.automations:
        plan = compile_automation(config, entry, NOW, NOW + HORIZON)
        plan = replace(plan, spec_hash=config.automation_hash(entry))
        desired.append(core.DesiredAutomation.of_plan(plan, spec=_spec_of(entry)))
    return desired, time.perf_counter() - t


def _occ(d: core.DesiredAutomation) -> list[Any]:
    return d.plan_in(NOW, NOW + HORIZON).occurrences


def _spec_of(entry: Any) -> Callable[[], dict[str, Any]]:
    return lambda: entry.model.model_dump(mode="json")  # type: ignore[no-any-return]


def edit_count(desired: list[core.DesiredAutomation]) -> int:
    return max(1, len(desired) // 100)


def edited(desired: list[core.DesiredAutomation], count: int) -> list[core.DesiredAutomation]:
    """`count` automations with every occurrence one hour later (same keys: rows updated)."""
    out = list(desired)
    for i in range(count):
        p = desired[i * (len(desired) // count)].plan_in(NOW, NOW + HORIZON)
        moved = [o._replace(at=o.at + timedelta(hours=1), local=o.local + timedelta(hours=1))
                 for o in p.occurrences]
        plan = AutomationPlan(p.organization, p.name, p.source, p.timezone, moved, spec_hash=p.spec_hash + "-edited")
        out[i * (len(desired) // count)] = core.DesiredAutomation.of_plan(plan)
    return out


# --------------------------------------------------------------------------- databases


class Engine:
    def __init__(self, name: str, make: Callable[[], Iterator[str]]) -> None:
        self.name = name
        self.make = make


def sqlite_dbs(tmp: Path) -> Iterator[str]:
    while True:
        yield f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"


def postgres_dbs() -> Generator[str, None, None]:
    import psycopg

    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    base = admin.rsplit("/", 1)[0]
    made: list[str] = []
    try:
        while True:
            name = f"flowspec_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            made.append(name)
            yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh(url: str) -> dbmod.Database:
    database = dbmod.open_database(url, check=False)
    dbmod.upgrade(database.engine)
    return database


# --------------------------------------------------------------------------- measurements


def raw_insert(url: str, desired: list[core.DesiredAutomation]) -> float:
    """Seconds for one Core executemany of every occurrence row, rows built beforehand."""
    database = fresh(url)
    ts = datetime.now(UTC)
    try:
        with dbmod.write_transaction(database.engine) as conn:
            ids = conn.execute(
                automations.insert().returning(automations.c.id, sort_by_parameter_order=True),
                [{"organization": d.organization, "name": d.name, "source": d.source, "spec": {},
                  "spec_hash": d.spec_hash, "timezone": d.timezone, "is_active": True, "is_paused": False,
                  "execution_count": 0, "total_sent": 0, "total_delivered": 0, "total_read": 0,
                  "total_completed": 0, "total_failed": 0, "created_at": ts, "updated_at": ts}
                 for d in desired],
            ).scalars().all()
            if conn.dialect.name == "postgresql":
                # As apply does: without statistics every FK check scans automations.
                conn.exec_driver_sql("ANALYZE automations")
        rows = [
            {**core.desired_values(o), "organization": d.organization, "automation_id": auto_id,
             "created_revision_id": None, "changed_revision_id": None, "cancelled_revision_id": None,
             "claimed_at": None, "claimed_by": None, "created_at": ts, "updated_at": ts}
            for d, auto_id in zip(desired, ids, strict=True) for o in _occ(d)
        ]
        gc.collect()
        t = time.perf_counter()
        with dbmod.write_transaction(database.engine) as conn:
            conn.execute(occurrences.insert(), rows)
        return time.perf_counter() - t
    finally:
        database.dispose()


def timed_apply(database: dbmod.Database, desired: list[core.DesiredAutomation], label: str) -> tuple[float, core.Counts]:
    gc.collect()
    t = time.perf_counter()
    result = core.run_apply(
        database, desired, ident=core.ConfigIdentity(f"sha256:{label}"), inputs=plan_inputs(),
        now=NOW, horizon_end=NOW + HORIZON, written_at=datetime.now(UTC),
    )
    return time.perf_counter() - t, result.counts


def heap_peak_of_first_apply(url: str, desired: list[core.DesiredAutomation]) -> float:
    database = fresh(url)
    try:
        gc.collect()
        tracemalloc.start()
        core.run_apply(
            database, desired, ident=core.ConfigIdentity("sha256:mem"), inputs=plan_inputs(),
            now=NOW, horizon_end=NOW + HORIZON, written_at=datetime.now(UTC),
        )
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak / 2**20
    finally:
        database.dispose()


def bench_engine(name: str, urls: Iterator[str], desired: list[core.DesiredAutomation], repeat: int) -> dict[str, Any]:
    total = sum(len(_occ(d)) for d in desired)
    raws, firsts, noops, edits = [], [], [], []
    for _ in range(repeat):
        raws.append(raw_insert(next(urls), desired))
        database = fresh(next(urls))
        try:
            t, c = timed_apply(database, desired, "first")
            assert c.inserted == total, c
            firsts.append(t)
            t, c = timed_apply(database, desired, "first")
            assert not c.any, c
            noops.append(t)
            # 1% of the automations, as the target is set (10 of 1,000): --quick edits 1 of 100.
            count = edit_count(desired)
            t, c = timed_apply(database, edited(desired, count), "edit")
            assert c.updated == sum(len(_occ(d)) for d in desired[:: len(desired) // count][:count]), c
            edits.append(t)
        finally:
            database.dispose()
    raw = statistics.median(raws)
    return {
        "engine": name,
        "occurrences": total,
        "raw": raw,
        "first": statistics.median(firsts),
        "noop": statistics.median(noops),
        "edit10": statistics.median(edits),
        "edited": edit_count(desired),
        "heap_peak_mib": heap_peak_of_first_apply(next(urls), desired),
    }


def end_to_end(root: Path, tmp: Path) -> dict[str, float]:
    from flowspec.cli import run

    url = f"sqlite:///{tmp / 'cli.db'}"
    args = ["apply", str(root), "--db", url, "--now", NOW.isoformat(), "--horizon", "25d"]
    out: dict[str, float] = {}
    for label in ("cli_first", "cli_noop"):
        t = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = devnull
            try:
                code = run(args)
            finally:
                sys.stdout, sys.stderr = stdout, stderr
        assert code == 0, code
        out[label] = time.perf_counter() - t
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 automations, one repetition")
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (median reported)")
    args = parser.parse_args()
    n = 100 if args.quick else 1000
    repeat = args.repeat or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="flowspec-bench-") as tmpdir:
        tmp = Path(tmpdir)
        root = tmp / "config"
        write_config(root, n)
        desired, compile_s = compile_all(root)
        total = sum(len(_occ(d)) for d in desired)
        print(f"bench_apply: {n} automations, {total:,} occurrences in a {HORIZON.days}-day horizon; "
              f"compiled in {compile_s:.2f}s (not counted below)")
        results = []
        if args.engine in ("sqlite", "both"):
            results.append(bench_engine("sqlite", sqlite_dbs(tmp), desired, repeat))
        if args.engine in ("postgres", "both"):
            try:
                urls = postgres_dbs()
                results.append(bench_engine("postgres", urls, desired, repeat))
                urls.close()
            except Exception as exc:  # the figure is missing, say why
                print(f"postgres: skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        ok = True
        for r in results:
            raw = r["raw"]
            print(f"\n{r['engine']}: raw Core executemany of {r['occurrences']:,} rows: {raw:.3f}s "
                  f"({r['occurrences'] / raw:,.0f} rows/s)")
            for key, label, limit in (("first", "first apply", 2.0), ("noop", "no-op re-apply", 0.25),
                                      ("edit10", f"apply after editing {r['edited']}", 0.25)):
                ratio = r[key] / raw
                verdict = "ok" if ratio <= limit else "OVER TARGET"
                ok &= ratio <= limit
                print(f"  {label:<24} {r[key]:8.3f}s  {ratio:5.2f}x raw  (target <= {limit}x: {verdict})")
            print(f"  python heap peak during the first apply: {r['heap_peak_mib']:.1f} MiB")
        e2e = end_to_end(root, tmp)
        print(f"\nend to end, sqlite, `flowspec apply` (load + validate + compile + apply): "
              f"first {e2e['cli_first']:.2f}s, no-op re-apply {e2e['cli_noop']:.2f}s")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"process peak RSS (plans of every automation held in memory): {rss:.0f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
