"""Dispatch latency: how long after its `at` an occurrence really starts (SPEC 6: within 2 s).

`flowspec serve` and `flowspec worker` run as real subprocesses on each queue backend
(SqliteHuey, RedisHuey, PostgresHuey; a backend whose server is absent is skipped). A config of
40 automations holds 200 occurrences due over the next ~3 minutes (`--quick`: 50 within one
minute), spaced so no automation has two due in the same dispatch tick (they would coalesce,
SPEC 6.2). Each occurrence sends one message to one contact through the outbox channel.

Two figures per occurrence, read from the database afterwards:

    dispatch  executions.started_at - occurrences.at   the service loop claiming it (baseline:
                                                       no queue involved)
    start     first messages.created_at - occurrences.at   a worker picked the task up, fanned
                                                           out and began the send: what a
                                                           recipient experiences

p50/p99 of both, and the ratio start/dispatch (what the queue and the worker add).

    .venv/bin/python benchmarks/bench_dispatch_latency.py [--quick] [--backend sqlite|redis|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from reconciler import db as dbmod  # noqa: E402

POSTGRES = os.environ.get("FLOWSPEC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
LEAD = 25.0  # seconds between writing the config and the first occurrence (startup + apply)
AUTOMATIONS = 40


def write_config(root: Path, t0: datetime, *, occurrences: int, span: float) -> None:
    """`occurrences` due between t0 and t0 + span, round-robin over the automations."""
    root.mkdir(parents=True)
    (root / "contacts.csv").write_text("id,phone,first_name\nc-1,+5511999990001,Ana\n")
    docs: list[dict[str, Any]] = [
        {"apiVersion": "flowspec/v1", "kind": "Channel", "metadata": {"name": "out"},
         "spec": {"type": "outbox", "path": str(root.parent / "outbox.jsonl"),
                  "messages_per_second": 1000}},
        {"apiVersion": "flowspec/v1", "kind": "Flow", "metadata": {"name": "hello"},
         "spec": {"start": "send", "nodes": {
             "send": {"type": "send_template", "template": "t", "language": "en", "next": "done"},
             "done": {"type": "end"}}}},
        {"apiVersion": "flowspec/v1", "kind": "Audience", "metadata": {"name": "one"},
         "spec": {"file": "contacts.csv"}},
    ]
    step = span / max(occurrences - 1, 1)
    dates: dict[int, list[str]] = {}
    for k in range(occurrences):
        at = t0 + timedelta(seconds=k * step)
        dates.setdefault(k % AUTOMATIONS, []).append(at.strftime("%Y-%m-%dT%H:%M:%S"))
    for i, ds in sorted(dates.items()):
        docs.append({
            "apiVersion": "flowspec/v1", "kind": "Automation", "metadata": {"name": f"lat-{i:03d}"},
            "spec": {"flow": "hello", "whatsapp_number": "out", "audience": {"audience": "one"},
                     "schedule": {"recurrence_type": "custom", "execution_timezone": "UTC",
                                  "recurrence_config": {"dates": ds}},
                     "delivery": {"overlap_policy": "allow", "catchup_window": "1h"}},
        })
    (root / "config.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs))


def backends(selected: list[str]) -> list[tuple[str, str | None]]:
    """(name, skip reason)."""
    out: list[tuple[str, str | None]] = []
    for name in selected:
        reason = None
        if name == "redis":
            try:
                import redis

                redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                reason = f"Redis not reachable at {REDIS}: {exc}"
        if name == "postgres":
            try:
                import psycopg

                with psycopg.connect(POSTGRES.replace("+psycopg", ""), connect_timeout=2):
                    pass
            except Exception as exc:  # noqa: BLE001
                reason = f"PostgreSQL not reachable: {exc}"
        out.append((name, reason))
    return out


def fresh_postgres() -> tuple[str, str]:
    import psycopg

    admin = POSTGRES.replace("+psycopg", "")
    name = f"flowspec_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}", name


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_backend(name: str, *, occurrences: int, span: float, workers: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"flowspec-lat-{name}-"))
    pg_name = None
    try:
        if name == "sqlite":
            db_url, queue_url = f"sqlite:///{work / 'state.db'}", f"sqlite:///{work / 'queue.db'}"
        elif name == "redis":
            import redis

            redis.Redis.from_url(REDIS).flushdb()
            db_url, queue_url = f"sqlite:///{work / 'state.db'}", REDIS
        else:
            db_url, pg_name = fresh_postgres()
            queue_url = db_url
        t0 = (datetime.now(UTC) + timedelta(seconds=LEAD)).replace(microsecond=0)
        write_config(work / "config", t0, occurrences=occurrences, span=span)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # The schema first, so the two processes and this one's polling find it.
        flowspec(["db", "upgrade", "--db", db_url], cwd=work)
        with open(work / "serve.log", "w") as serve_log, open(work / "worker.log", "w") as worker_log:
            serve = subprocess.Popen(
                [sys.executable, "-m", "flowspec", "serve", str(work / "config"), "--db", db_url,
                 "--queue", queue_url, "--port", "0", "--log-format", "json"],
                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=serve_log,
            )
            worker = subprocess.Popen(
                [sys.executable, "-m", "flowspec", "worker", "--db", db_url, "--queue", queue_url,
                 "--config", str(work / "config"), "--workers", str(workers), "--log-format",
                 "json"],
                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=worker_log,
            )
        deadline = t0 + timedelta(seconds=span + 60)
        engine = dbmod.create_engine(db_url)
        done = 0
        try:
            while datetime.now(UTC) < deadline:
                time.sleep(1)
                for proc, label in ((serve, "serve"), (worker, "worker")):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{label} exited with {proc.returncode}; see "
                                           f"{work / (label + '.log')}")
                with engine.connect() as conn:
                    done = conn.execute(sa.text(
                        "SELECT count(*) FROM executions WHERE status = 'finished'")).scalar_one()
                if done >= occurrences:
                    break
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT o.at, e.started_at, (SELECT min(m.created_at) FROM messages m "
                    " JOIN recipients r ON r.id = m.recipient_id WHERE r.execution_id = e.id) AS first "
                    "FROM executions e JOIN occurrences o ON o.id = e.occurrence_id")).all()
                statuses: dict[str, int] = {status: n for status, n in conn.execute(sa.text(
                    "SELECT status, count(*) FROM occurrences GROUP BY status"))}
        finally:
            engine.dispose()
            for proc in (serve, worker):
                proc.send_signal(signal.SIGTERM)
            for proc in (serve, worker):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        dispatch = [(_aware(r.started_at) - _aware(r.at)).total_seconds() for r in rows]
        start = [(_aware(r.first) - _aware(r.at)).total_seconds() for r in rows if r.first]
        return {"backend": name, "occurrences": occurrences, "executions": len(rows),
                "finished": done, "occurrence_statuses": statuses,
                "dispatch_p50": percentile(dispatch, 50), "dispatch_p99": percentile(dispatch, 99),
                "start_p50": percentile(start, 50), "start_p99": percentile(start, 99),
                "start_max": max(start, default=float("nan")),
                "mean_start": statistics.fmean(start) if start else float("nan")}
    finally:
        if pg_name:
            drop_postgres(pg_name)
        shutil.rmtree(work, ignore_errors=True)


def _aware(t: Any) -> datetime:
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def flowspec(args: list[str], *, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "flowspec", *args], cwd=cwd, check=True,
                   capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 occurrences within one minute")
    parser.add_argument("--backend", action="append", choices=["sqlite", "redis", "postgres"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    occurrences, span = (50, 60.0) if args.quick else (200, 180.0)
    print(f"dispatch latency: {occurrences} occurrences over {span:.0f}s, serve (--interval 0.5) "
          f"+ worker (--workers {args.workers}, --poll 0.5) as subprocesses")
    print(f"{'backend':<9} {'execs':>5} {'dispatch p50':>12} {'p99':>6} {'start p50':>10} "
          f"{'p99':>6} {'max':>6} {'start/dispatch p99':>19}  target p99<=2s")
    for name, skip in backends(args.backend or ["sqlite", "redis", "postgres"]):
        if skip:
            print(f"{name:<9} skipped: {skip}")
            continue
        r = run_backend(name, occurrences=occurrences, span=span, workers=args.workers)
        ratio = r["start_p99"] / r["dispatch_p99"] if r["dispatch_p99"] > 0 else float("nan")
        verdict = "ok" if r["start_p99"] <= 2.0 else "MISSED"
        print(f"{name:<9} {r['executions']:>5} {r['dispatch_p50']:>11.2f}s {r['dispatch_p99']:>5.2f}s "
              f"{r['start_p50']:>9.2f}s {r['start_p99']:>5.2f}s {r['start_max']:>5.2f}s "
              f"{ratio:>18.1f}x  {verdict}")
        if r["executions"] < occurrences:
            print(f"          only {r['executions']}/{occurrences} executions; occurrences by "
                  f"status: {r['occurrence_statuses']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
