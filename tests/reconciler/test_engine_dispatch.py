"""Dispatch: due occurrences become executions exactly once, with catch-up, coalescing, overlap
policies and manual triggers; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from engine_support import (
    ORG,
    Enqueued,
    add_contacts,
    apply,
    automation_doc,
    engine_for,
    outbox_channel,
    rows,
    scalar,
    utc,
    write_repo,
)

from flowspec.diagnostics import UserError
from reconciler import engine as eng

T0 = utc("2026-01-05T00:00:00Z")  # a Monday
EVERY_10 = {"recurrence_type": "cron", "recurrence_config": {"expression": "*/10 * * * *"}}


def occurrence_statuses(url: str) -> dict[str, tuple[str, str | None]]:
    return {r["key"]: (r["status"], r["reason"])
            for r in rows(url, "select key, status, reason from occurrences")}


def test_racing_dispatchers_in_threads_run_each_due_occurrence_once(db_url: str, tmp_path: Path) -> None:
    """Eight threads dispatching at once: every due occurrence gets exactly one execution."""
    autos = [automation_doc(f"a{i}") for i in range(12)]
    root = write_repo(tmp_path / "cfg", outbox_channel(), autos)
    apply(root, db_url, T0)
    engine = engine_for(db_url, root)
    enqueued = Enqueued()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def dispatcher() -> None:
        try:
            start.wait()
            for _ in range(3):
                eng.dispatch_due(engine, now=utc("2026-01-05T09:00:05Z"), enqueue=enqueued)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    assert not errors
    per_occurrence = Counter(r["occurrence_id"] for r in rows(db_url, "select occurrence_id from executions"))
    assert len(per_occurrence) == 12 and set(per_occurrence.values()) == {1}
    assert sorted(enqueued) == sorted(r["id"] for r in rows(db_url, "select id from executions"))


_RACER = textwrap.dedent("""
    import sys, time, json
    from pathlib import Path
    sys.path[:0] = [sys.argv[4]]
    from engine_support import engine_for, utc
    from reconciler import engine as eng
    import os
    url, root, gate = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    engine = engine_for(url, root)
    got = []
    (gate / f"ready-{os.getpid()}").touch()
    while not (gate / "go").exists():
        time.sleep(0.001)
    for minute in range(0, 30, 10):
        now = utc(f"2026-01-05T09:{minute:02d}:05Z")
        got += eng.dispatch_due(engine, now=now, enqueue=lambda i: None).executions
    engine.close()
    print(json.dumps(got))
""")


def test_racing_dispatchers_in_processes_run_each_due_occurrence_once(db_url: str, tmp_path: Path) -> None:
    """Four processes dispatching the same due occurrences at the same instant: each
    occurrence runs once, and each execution is reported by exactly one process."""
    autos = [automation_doc(f"a{i}", schedule=EVERY_10, delivery={"overlap_policy": "allow"})
             for i in range(8)]
    root = write_repo(tmp_path / "cfg", outbox_channel(), autos)
    apply(root, db_url, T0, horizon="1d")
    here = str(Path(__file__).resolve().parent)
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, db_url, str(root), str(gate), here],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": here})
             for _ in range(4)]
    deadline = time.monotonic() + 60
    while len(list(gate.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    (gate / "go").touch()  # all four are loaded: release them at the same instant
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    import json

    reported = [i for out, _ in outs for i in json.loads(out.strip().splitlines()[-1])]
    executions = rows(db_url, "select id, occurrence_id from executions")
    assert len(executions) == 8 * 3  # 09:00, 09:10, 09:20 for each automation
    assert len({e["occurrence_id"] for e in executions}) == len(executions)
    assert sorted(reported) == sorted(e["id"] for e in executions)


def test_catch_up_after_downtime_misses_stale_occurrences_and_coalesces_the_rest(
    db_url: str, tmp_path: Path
) -> None:
    """Service down from 00:00 to 10:35 with catchup_window 1h: everything older than an hour
    is missed, of the rest only the latest (10:30) runs, the others are coalesced."""
    root = write_repo(tmp_path / "cfg", outbox_channel(),
                      [automation_doc("tick", schedule=EVERY_10, delivery={"catchup_window": "1h"})])
    apply(root, db_url, T0, horizon="1d")
    engine = engine_for(db_url, root)
    report = eng.dispatch_due(engine, now=utc("2026-01-05T10:35:00Z"), enqueue=Enqueued())
    engine.close()
    status = occurrence_statuses(db_url)
    assert status["acme/tick/2026-01-05T10:30"] == ("dispatched", None)
    coalesced = [k for k, v in status.items() if v == ("missed", "coalesced")]
    assert sorted(coalesced) == [f"acme/tick/2026-01-05T{t}" for t in
                                 ("09:40", "09:50", "10:00", "10:10", "10:20")]
    missed = [k for k, v in status.items() if v == ("missed", "catchup_window")]
    assert len(missed) == 58 and "acme/tick/2026-01-05T09:30" in missed  # 00:00 .. 09:30
    assert status["acme/tick/2026-01-05T10:40"] == ("pending", None)
    assert (report.missed, report.coalesced, len(report.executions)) == (58, 5, 1)


def test_modify_override_of_catchup_window_is_in_force_for_that_occurrence(
    db_url: str, tmp_path: Path
) -> None:
    """A `modify` exception widening catchup_window to 6h lets that day's run start 3 h late,
    while another day's occurrence, as late, is missed."""
    auto = automation_doc("daily", delivery={"catchup_window": "1h"}, exceptions=[
        {"exception_type": "modify", "start_date": "2026-01-06",
         "modified_config": {"catchup_window": "6h"}}])
    root = write_repo(tmp_path / "cfg", outbox_channel(), [auto])
    apply(root, db_url, T0)
    engine = engine_for(db_url, root)
    eng.dispatch_due(engine, now=utc("2026-01-05T12:00:00Z"), enqueue=Enqueued())
    eng.dispatch_due(engine, now=utc("2026-01-06T12:00:00Z"), enqueue=Enqueued())
    engine.close()
    status = occurrence_statuses(db_url)
    assert status["acme/daily/2026-01-05T09:00"] == ("missed", "catchup_window")
    assert status["acme/daily/2026-01-06T09:00"] == ("dispatched", None)


def _run_to_end(engine: eng.EngineContext, execution_id: int, now: str) -> None:
    report = eng.run_execution(engine, execution_id, now=utc(now))
    assert report.finished, report


def test_overlap_skip_marks_the_next_occurrence_skipped_overlap(db_url: str, tmp_path: Path) -> None:
    """While the 09:00 execution is still active, 09:10 is skipped_overlap; once it has finished,
    09:20 runs."""
    add_contacts(db_url, 1)
    root = write_repo(tmp_path / "cfg", outbox_channel(),
                      [automation_doc("tick", schedule=EVERY_10, delivery={"overlap_policy": "skip"})])
    apply(root, db_url, T0, horizon="1d")
    engine = engine_for(db_url, root)
    first = eng.dispatch_due(engine, now=utc("2026-01-05T09:00:01Z"), enqueue=Enqueued()).executions
    second = eng.dispatch_due(engine, now=utc("2026-01-05T09:10:01Z"), enqueue=Enqueued())
    assert second.skipped_overlap == 1 and not second.executions
    _run_to_end(engine, first[0], "2026-01-05T09:10:02Z")
    third = eng.dispatch_due(engine, now=utc("2026-01-05T09:20:01Z"), enqueue=Enqueued())
    engine.close()
    assert len(third.executions) == 1
    status = occurrence_statuses(db_url)
    assert status["acme/tick/2026-01-05T09:10"] == ("skipped_overlap", "overlap")


def test_overlap_queue_starts_the_next_when_the_previous_finishes_oldest_first(
    db_url: str, tmp_path: Path
) -> None:
    """With `queue`, 09:10 and 09:20 wait while 09:00 runs; when it finishes the sweep starts
    09:10 (not 09:20), and 09:20 only after 09:10 finishes."""
    add_contacts(db_url, 1)
    root = write_repo(tmp_path / "cfg", outbox_channel(),
                      [automation_doc("tick", schedule=EVERY_10, delivery={"overlap_policy": "queue"})])
    apply(root, db_url, T0, horizon="1d")
    engine = engine_for(db_url, root)
    [first] = eng.dispatch_due(engine, now=utc("2026-01-05T09:00:01Z"), enqueue=Enqueued()).executions
    assert eng.dispatch_due(engine, now=utc("2026-01-05T09:10:01Z"), enqueue=Enqueued()).queued == 1
    assert eng.dispatch_due(engine, now=utc("2026-01-05T09:20:01Z"), enqueue=Enqueued()).queued == 1
    assert eng.sweep(engine, now=utc("2026-01-05T09:20:02Z"), enqueue=Enqueued()).started == []
    _run_to_end(engine, first, "2026-01-05T09:20:03Z")
    enqueued = Enqueued()
    report = eng.sweep(engine, now=utc("2026-01-05T09:20:04Z"), enqueue=enqueued)
    assert len(report.started) == 1 and report.started == enqueued
    status = occurrence_statuses(db_url)
    assert status["acme/tick/2026-01-05T09:10"][0] == "dispatched"
    assert status["acme/tick/2026-01-05T09:20"][0] == "queued"
    _run_to_end(engine, report.started[0], "2026-01-05T09:20:05Z")
    assert len(eng.sweep(engine, now=utc("2026-01-05T09:20:06Z"), enqueue=enqueued).started) == 1
    engine.close()
    assert occurrence_statuses(db_url)["acme/tick/2026-01-05T09:20"][0] == "dispatched"


def test_overlap_allow_runs_both(db_url: str, tmp_path: Path) -> None:
    """With `allow`, a second execution starts while the first is still active."""
    root = write_repo(tmp_path / "cfg", outbox_channel(),
                      [automation_doc("tick", schedule=EVERY_10, delivery={"overlap_policy": "allow"})])
    apply(root, db_url, T0, horizon="1d")
    engine = engine_for(db_url, root)
    a = eng.dispatch_due(engine, now=utc("2026-01-05T09:00:01Z"), enqueue=Enqueued()).executions
    b = eng.dispatch_due(engine, now=utc("2026-01-05T09:10:01Z"), enqueue=Enqueued()).executions
    engine.close()
    assert len(a) == len(b) == 1
    assert scalar(db_url, "select count(*) from executions where status = 'starting'") == 2


def test_manual_trigger_creates_a_keyed_occurrence_and_follows_the_overlap_policy(
    db_url: str, tmp_path: Path
) -> None:
    """`trigger` records <org>/<name>/manual-<UTC stamp>, dispatches it and enqueues it; a second
    trigger while it runs is skipped_overlap under `skip`; an unknown automation is a UserError."""
    root = write_repo(tmp_path / "cfg", outbox_channel(), [automation_doc("promo")])
    apply(root, db_url, T0)
    engine = engine_for(db_url, root)
    enqueued = Enqueued()
    now = utc("2026-01-05T14:03:07Z")
    first = eng.trigger(engine, ORG, "promo", now=now, ignore_window=True, enqueue=enqueued)
    assert first.key == "acme/promo/manual-20260105T140307Z" and first.status == "dispatched"
    assert enqueued == [first.execution_id]
    second = eng.trigger(engine, ORG, "promo", now=utc("2026-01-05T14:03:08Z"))
    assert second.status == "skipped_overlap" and second.execution_id is None
    with pytest.raises(UserError, match="run `flowspec apply` first"):
        eng.trigger(engine, ORG, "nope", now=now)
    engine.close()
    [row] = rows(db_url, "select manual, status from executions")
    assert row == {"manual": True, "status": "starting"}
