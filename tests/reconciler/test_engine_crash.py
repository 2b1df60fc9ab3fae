"""The sending guarantee under a real crash (SPEC 6.5): a worker process killed with SIGKILL
in the middle of an execution, then the sweep and a new worker; and a pass that outlives its
lease while the sweep takes its batch over. Counted at the stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine_support import (
    ENV,
    FAST,
    ORG,
    TOKEN,
    Enqueued,
    add_contacts,
    apply,
    automation_doc,
    channel_doc,
    engine_for,
    rows,
    write_repo,
)
from process_helpers import flowspec_argv, scalar, subprocess_env, wait_for
from reconciler_helpers import invoke

from reconciler import db as dbmod
from reconciler import engine as eng
from reconciler.engine import open_engine
from reconciler.queue import make_huey
from reconciler.standin import Fault, StandIn
from reconciler.tasks import enqueue_for

N = 1500

_WORKER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    sys.path[:0] = [sys.argv[4]]
    from engine_support import engine_for
    from reconciler import engine as eng
    url, root, execution_id = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    engine = engine_for(url, root)
    while True:
        report = eng.work_execution(engine, execution_id, now=datetime.now(UTC), batch_size=200)
        if report.finished or report.next_at is None:
            break
""")


def campaign(url: str, tmp_path: Path, api: StandIn, n: int, guarantee: str) -> Path:
    """`n` contacts and an applied automation `promo` sending them one text each through the
    stand-in (no rate limit to speak of) under `guarantee`; the config root."""
    ids = add_contacts(url, n)
    root = write_repo(
        tmp_path / "cfg", channel_doc(api.base_url, api.phone_number_id, messages_per_second=10000),
        [automation_doc("promo", contact_ids=ids, delivery={"delivery_guarantee": guarantee})])
    apply(root, url, datetime(2026, 1, 5, tzinfo=UTC))
    return root


@pytest.mark.parametrize("guarantee", ["at_most_once", "at_least_once"])
def test_a_worker_killed_mid_execution_loses_no_recipient_and_never_duplicates_a_settled_send(
    db_url: str, tmp_path: Path, guarantee: str
) -> None:
    """SIGKILL while sends are in flight, then sweep (leases expired) and a new worker.
    at_most_once: the recipients caught mid-send become `unknown` and are never sent again, all
    others get exactly one message. at_least_once: every recipient ends `completed`; only those
    caught mid-send may have received a second copy. Nobody is lost in either case."""
    with StandIn(token=TOKEN) as api:
        root = campaign(db_url, tmp_path, api, N, guarantee)
        engine = engine_for(db_url, root)
        started = datetime.now(UTC)
        execution_id = eng.trigger(engine, ORG, "promo", now=started, ignore_window=True).execution_id
        assert execution_id is not None
        eng.fan_out(engine, execution_id, now=started)
        api.add_fault(Fault("delay", latency=0.03))  # every send takes a while: kills land mid-send
        here = str(Path(__file__).resolve().parent)
        worker = subprocess.Popen(
            [sys.executable, "-c", _WORKER, db_url, str(root), str(execution_id), here],
            env={**os.environ, "PYTHONPATH": here}, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while api.request_count < N // 3 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.005)
        if worker.poll() is not None:
            pytest.fail(f"the worker exited before it could be killed: {worker.stderr.read() if worker.stderr else ''}")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        time.sleep(0.2)  # requests already on the wire finish at the stand-in (and count)
        killed_at = len(api.messages)
        assert 0 < killed_at < N, "the kill must land mid-execution"
        api.clear_faults()

        later = datetime.now(UTC) + timedelta(seconds=engine.settings.lease_seconds + 5)
        swept = eng.sweep(engine, now=later, enqueue=Enqueued())
        caught = swept.unknown if guarantee == "at_most_once" else swept.resend
        assert caught > 0, "some sends were in flight when the worker died"
        report = eng.work_execution(engine, execution_id, now=later, batch_size=200)
        for _ in range(20):
            if report.finished:
                break
            # As a worker would: the next pass when the engine says (a send that timed out on
            # a loaded machine is retried after its backoff).
            if report.next_at is not None and report.next_at > later:
                later = report.next_at
                eng.sweep(engine, now=later, enqueue=Enqueued())
            report = eng.work_execution(engine, execution_id, now=later, batch_size=200)
        engine.close()
        assert report.finished, report

        counts = Counter(m.to for m in api.messages)
        status = {r["phone"]: (r["status"], r["error_code"]) for r in rows(
            db_url, "select phone, status, error_code from recipients where execution_id = :e",
            e=execution_id)}
        assert len(status) == N
        # Caught mid-send: under at_most_once the message row says lease_expired; under
        # at_least_once it was started a second time (attempt 2) and then accepted.
        marker = ("m.error_code = 'lease_expired'" if guarantee == "at_most_once"
                  else "m.attempts > 1")
        lease_expired = {r["phone"] for r in rows(
            db_url, "select r.phone from messages m join recipients r on r.id = m.recipient_id "
                    f"where {marker}")}
        assert len(lease_expired) == caught
        if guarantee == "at_most_once":
            unknown = {p for p, s in status.items() if s == ("unknown", "lease_expired")}
            assert unknown == lease_expired
            assert all(s[0] == "completed" for p, s in status.items() if p not in unknown)
            assert not api.duplicates() and max(counts.values()) == 1
            assert all(counts[p] == 1 for p in status if p not in unknown)  # exactly once
            # Given up without having arrived: only sends that may have started. Per batch
            # (the one finishing, the next already sending) the send mark runs less than
            # 1.5 x `mark_ahead` ahead of the sends started (the next stretch is asked for
            # with half of one left), plus the 25 in flight; the rest of the guarded batches
            # was released by the sweep and sent once.
            ahead = FAST.mark_ahead + FAST.mark_ahead // 2
            assert len(unknown - set(counts)) <= 2 * ahead + 25
            assert swept.released > 0
        else:
            assert {s[0] for s in status.values()} == {"completed"}
            assert all(counts[p] >= 1 for p in status)  # at least once: nobody lost
            twice = {p for p, n in counts.items() if n > 1}
            assert twice <= lease_expired and max(counts.values()) <= 2


def test_a_pass_that_outlives_its_lease_starts_no_send_the_sweep_gave_back(
    db_url: str, tmp_path: Path
) -> None:
    """at_most_once, a pass still sending when the sweep takes its batch over (its lease ran
    out, as for a stalled worker): the sweep releases the recipients above the send mark, the
    pass starts no send beyond it and records nothing, and later passes send the released ones.
    Nobody gets two messages and nobody is lost: each recipient is completed, or `unknown`
    because its send may have started."""
    n = 120
    with StandIn(token=TOKEN) as api:
        root = campaign(db_url, tmp_path, api, n, "at_most_once")
        engine = engine_for(db_url, root)
        started = datetime.now(UTC)
        execution_id = eng.trigger(engine, ORG, "promo", now=started, ignore_window=True).execution_id
        assert execution_id is not None
        eng.fan_out(engine, execution_id, now=started)
        api.add_fault(Fault("delay", latency=0.05))
        stalled: list[eng.WorkReport] = []
        thread = threading.Thread(target=lambda: stalled.append(eng.work_execution(
            engine, execution_id, now=datetime.now(UTC), batch_size=n)))
        thread.start()
        wait_for(lambda: api.request_count >= 10, timeout=30, what="the first sends")
        later = datetime.now(UTC) + timedelta(seconds=engine.settings.lease_seconds + 5)
        swept = eng.sweep(engine, now=later, enqueue=Enqueued())
        arrived_at_sweep = api.request_count
        thread.join(60)
        assert not thread.is_alive() and stalled
        api.clear_faults()
        # After the sweep the stalled pass only finished the sends it had started (at most the
        # 25 permits) and started those its mark already covered (less than 1.5 x
        # `mark_ahead` past the sends started); those are `unknown`, never sent again.
        ahead = FAST.mark_ahead + FAST.mark_ahead // 2
        assert api.request_count - arrived_at_sweep <= 25 + ahead
        assert swept.unknown > 0 and swept.released > 0
        assert swept.unknown + swept.released == n
        report = eng.work_execution(engine, execution_id, now=later, batch_size=n)
        for _ in range(10):
            if report.finished:
                break
            later = max(later, report.next_at or later)
            eng.sweep(engine, now=later, enqueue=Enqueued())
            report = eng.work_execution(engine, execution_id, now=later, batch_size=n)
        engine.close()
        assert report.finished, report
        counts = Counter(m.to for m in api.messages)
        status = {r["phone"]: r["status"] for r in rows(
            db_url, "select phone, status from recipients where execution_id = :e",
            e=execution_id)}
        assert not api.duplicates() and max(counts.values()) == 1
        unknown = {p for p, s in status.items() if s == "unknown"}
        assert len(unknown) == swept.unknown
        assert all(s == "completed" and counts[p] == 1 for p, s in status.items()
                   if p not in unknown)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.xdist_group("processes")
@pytest.mark.parametrize("guarantee", ["at_most_once", "at_least_once"])
def test_a_flowspec_worker_killed_mid_execution_on_postgresql_and_redis_loses_nobody(
    tmp_path: Path, postgres_url: str, redis_url: str, guarantee: str
) -> None:
    """The scale-out setup end to end: 5,000 recipients, PostgreSQL state, Redis queue, real
    `flowspec worker` processes. SIGKILL while sends are on the wire; the sweep (as the
    service runs it) finds the expired leases and the lost task and enqueues it; a new worker
    finishes. Counted at the stand-in: under at_most_once nobody gets a message twice and only
    those caught mid-send end `unknown`; under at_least_once everyone ends `completed` and only
    those caught mid-send may have had a second copy. Nobody is lost either way."""
    n = 5000
    database = dbmod.open_database(postgres_url, check=False)
    dbmod.upgrade(database.engine)
    database.dispose()
    # Short leases so the test waits seconds, not minutes, for the sweep; small batches so a
    # kill lands between some and in the middle of one.
    timing = {"FLOWSPEC_ENGINE_LEASE_SECONDS": "4", "FLOWSPEC_ENGINE_STALE_SECONDS": "3",
              "FLOWSPEC_ENGINE_BATCH_SIZE": "250"}
    with StandIn(token=TOKEN) as api:
        root = campaign(postgres_url, tmp_path, api, n, guarantee)
        env = subprocess_env(WA_TOKEN=TOKEN, **timing)

        def worker() -> subprocess.Popen[str]:
            return subprocess.Popen(
                flowspec_argv("worker", "--db", postgres_url, "--queue", redis_url, "--config",
                              str(root), "--poll", "0.1", "--workers", "2"),
                cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)

        api.add_fault(Fault("delay", latency=0.02))  # every send takes a while: kills land mid-send
        first = worker()
        started = invoke("trigger", "promo", "--db", postgres_url, "--queue", redis_url,
                         cwd=tmp_path)
        assert started.code == 0, started.output
        execution_id = int(started.out.split("execution ")[1].split(",")[0])
        wait_for(lambda: api.request_count >= n // 3 or first.poll() is not None, timeout=120,
                 what="a third of the sends")
        assert first.poll() is None, first.communicate()[0]
        first.kill()
        first.wait()
        time.sleep(0.2)  # requests already on the wire finish at the stand-in (and count)
        assert 0 < len(api.messages) < n, "the kill must land mid-execution"
        api.clear_faults()

        time.sleep(4.5)  # the leases and the heartbeat run out
        engine = open_engine(postgres_url, env={**ENV, **timing}, redis_url=redis_url)
        queue = make_huey(redis_url, db_url=postgres_url)
        swept = eng.sweep(engine, now=datetime.now(UTC), enqueue=enqueue_for(queue))
        engine.close()
        caught = swept.unknown if guarantee == "at_most_once" else swept.resend
        assert caught > 0, "some sends were in flight when the worker died"
        assert execution_id in swept.requeued  # its task died with the worker
        second = worker()
        try:
            wait_for(lambda: scalar(postgres_url, "select status from executions where id = :e",
                                    e=execution_id) == "finished",
                     timeout=180, what="the new worker to finish the execution")
        finally:
            second.kill()
            second.wait()

        counts = Counter(m.to for m in api.messages)
        status = {r["phone"]: r["status"] for r in rows(
            postgres_url, "select phone, status from recipients where execution_id = :e",
            e=execution_id)}
        assert len(status) == n and set(counts) <= set(status)
        if guarantee == "at_most_once":
            # Caught mid-send: the API may or may not have them; never sent again.
            unknown = {p for p, s in status.items() if s == "unknown"}
            assert 0 < len(unknown) <= caught
            # Without send marks, every guarded batch of both passes (two each: 4 x 250) could
            # end here; with them, per batch less than 150 (1.5 x mark_ahead) ahead of the
            # sends started, plus those in flight (25 per pass).
            assert len(unknown - set(counts)) <= 2 * (2 * 150 + 25)
            assert all(s == "completed" for p, s in status.items() if p not in unknown)
            assert all(counts[p] == 1 for p in status if p not in unknown)  # exactly once
            assert not api.duplicates() and max(counts.values()) == 1
        else:
            assert set(status.values()) == {"completed"}
            assert set(counts) == set(status)  # at least once: nobody lost
            assert max(counts.values()) <= 2 and sum(c > 1 for c in counts.values()) <= caught
