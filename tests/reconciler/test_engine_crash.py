"""The sending guarantee under a real crash (SPEC 6.5): a worker process killed with SIGKILL
in the middle of an execution, then the sweep and a new worker. Counted at the stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine_support import (
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

from reconciler import engine as eng
from reconciler.standin import Fault, StandIn

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


@pytest.mark.parametrize("guarantee", ["at_most_once", "at_least_once"])
def test_a_worker_killed_mid_execution_loses_no_recipient_and_never_duplicates_a_settled_send(
    db_url: str, tmp_path: Path, guarantee: str
) -> None:
    """SIGKILL while sends are in flight, then sweep (leases expired) and a new worker.
    at_most_once: the recipients caught mid-send become `unknown` and are never sent again, all
    others get exactly one message. at_least_once: every recipient ends `completed`; only those
    caught mid-send may have received a second copy. Nobody is lost in either case."""
    with StandIn(token=TOKEN) as api:
        ids = add_contacts(db_url, N)
        root = write_repo(
            tmp_path / "cfg", channel_doc(api.base_url, api.phone_number_id, messages_per_second=10000),
            [automation_doc("promo", contact_ids=ids, delivery={"delivery_guarantee": guarantee})])
        apply(root, db_url, datetime(2026, 1, 5, tzinfo=UTC))
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
        else:
            assert {s[0] for s in status.values()} == {"completed"}
            assert all(counts[p] >= 1 for p in status)  # at least once: nobody lost
            twice = {p for p, n in counts.items() if n > 1}
            assert twice <= lease_expired and max(counts.values()) <= 2
