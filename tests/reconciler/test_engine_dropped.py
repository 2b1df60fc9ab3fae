"""A dropped connection mid-send, end to end through the engine and the stand-in API: the
message is recorded by the API exactly once under either guarantee (SPEC 6.5, issue 6)."""

from __future__ import annotations

from pathlib import Path

from test_engine_work import api, start  # noqa: F401 - `api` is a fixture

from reconciler.standin import Fault, StandIn

PHONE = "+5511900000001"


def _received(server: StandIn, to: str) -> int:
    return sum(1 for m in server.messages if m.to == to)


def test_a_send_dropped_before_acceptance_is_retried_and_recorded_once(
    db_url: str, tmp_path: Path, api: StandIn  # noqa: F811
) -> None:
    """at_least_once: the dropped request is retried; the API holds one message, the row is done."""
    run = start(db_url, tmp_path, api, n=3, delivery={"delivery_guarantee": "at_least_once"})
    api.add_fault(Fault(action="drop", times=1, recipient=PHONE))
    report = run.drain()
    run.engine.close()
    assert report.finished
    assert _received(api, PHONE) == 1 and not api.duplicates()
    r = run.recipients()["c-1"]
    assert r["status"] == "completed" and r["attempts"] == 2


def test_a_send_dropped_after_acceptance_is_never_sent_again_at_most_once(
    db_url: str, tmp_path: Path, api: StandIn  # noqa: F811
) -> None:
    """at_most_once: the API accepted it but the client saw a drop; the recipient becomes
    unknown and is never re-sent, so the API holds exactly one message."""
    run = start(db_url, tmp_path, api, n=3)
    api.add_fault(Fault(action="drop_after_accept", times=1, recipient=PHONE))
    report = run.drain()
    run.engine.close()
    assert report.finished
    assert _received(api, PHONE) == 1 and not api.duplicates()
    assert run.recipients()["c-1"]["status"] == "unknown"
    assert {c: r["status"] for c, r in run.recipients().items() if c != "c-1"} == {
        "c-0": "completed", "c-2": "completed"
    }
