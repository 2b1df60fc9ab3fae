"""The work loop against the stand-in WhatsApp API over real sockets, with a driven clock:
flows, sending guarantees under duplicate tasks, retries, pair rate, permanent errors, the
circuit breaker, rate and messaging limits, the window at send time, and fan-in."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_support import (
    ENV,
    FAST,
    ORG,
    TOKEN,
    Enqueued,
    FakeClock,
    add_contacts,
    apply,
    automation_doc,
    channel_doc,
    engine_for,
    rows,
    scalar,
    table_rows,
    utc,
    write_repo,
)
from test_engine_limits import max_in_any_second

from reconciler import db as dbmod
from reconciler import engine as eng
from reconciler import models
from reconciler.channels import Channel, OutgoingMessage, SendResult, open_channel
from reconciler.engine import EngineContext, EngineSettings, bulk, marks
from reconciler.standin import Fault, StandIn
from reconciler.webhooks import StatusUpdate, apply_statuses

T0 = utc("2026-01-05T00:00:00Z")
RUN = utc("2026-01-05T09:00:01Z")


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as server:
        yield server


@dataclass
class Run:
    engine: EngineContext
    execution_id: int
    clock: FakeClock
    url: str
    contact_ids: list[str]

    def work(self, **kw: Any) -> eng.WorkReport:
        return eng.work_execution(self.engine, self.execution_id, now=self.clock(),
                                  clock=self.clock, sleep=self.clock.sleep, **kw)

    def drain(self, passes: int = 100, **kw: Any) -> eng.WorkReport:
        """Work passes (sweeping in between) until the execution finishes or stops."""
        report = self.work(**kw)
        for _ in range(passes):
            if report.finished or report.status in ("finished", "paused_circuit"):
                return report
            if report.next_at is None:
                return report
            if report.next_at > self.clock():
                self.clock.t = report.next_at
            eng.sweep(self.engine, now=self.clock(), enqueue=Enqueued())
            report = self.work(**kw)
        raise AssertionError(f"not done after {passes} passes: {report}")

    def recipients(self) -> dict[str, dict[str, Any]]:
        return {r["contact_id"]: r for r in table_rows(
            self.url, models.recipients, execution_id=self.execution_id)}

    def execution(self) -> dict[str, Any]:
        return table_rows(self.url, models.executions, id=self.execution_id)[0]


def start(db_url: str, tmp_path: Path, api: StandIn, *, n: int = 10, flow: str = "hello",
          delivery: Mapping[str, Any] | None = None, channel: Mapping[str, Any] | None = None,
          schedule: Mapping[str, Any] | None = None, settings: EngineSettings = FAST,
          opted_out: set[int] | None = None, name: str = "promo", at: datetime = RUN,
          contacts_from: int = 0) -> Run:
    ids = add_contacts(db_url, n, start=contacts_from, opted_out=opted_out)
    root = tmp_path / "cfg"
    autos = [automation_doc(name, flow=flow, contact_ids=ids, delivery=delivery, schedule=schedule,
                            variable_mapping={"discount": "50%"} if flow == "promo" else None)]
    existing = [p for p in root.glob("*.yaml") if p.name != "base.yaml"] if root.exists() else []
    if existing:  # a second automation in the same repository
        import json
        autos += [json.loads(p.read_text()) for p in existing]
    write_repo(root, channel_doc(api.base_url, api.phone_number_id, **(channel or {})), autos)
    apply(root, db_url, T0)
    engine = engine_for(db_url, root, settings=settings)
    report = eng.dispatch_due(engine, now=at, enqueue=Enqueued())
    [execution_id] = [e for e in report.executions]
    eng.fan_out(engine, execution_id, now=at)
    return Run(engine, execution_id, FakeClock(at), db_url, ids)


# --------------------------------------------------------------------------- flows


def test_a_campaign_messages_every_recipient_once_and_finishes_with_stats(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """30 contacts, one opted out: 29 messages with the contact's name, none to the opted-out
    contact, the execution finished with its stats and the automation's aggregates."""
    run = start(db_url, tmp_path, api, n=30, opted_out={4})
    report = run.drain()
    run.engine.close()
    assert report.finished and report.sent == 29
    received = api.messages
    assert len(received) == 29 and not api.duplicates()
    assert "+5511900000004" not in {m.to for m in received}
    assert {m.content for m in received if m.to == "+5511900000007"} == {"Hello N7"}
    ex = run.execution()
    assert (ex["status"], ex["sent"], ex["completed"], ex["failed"], ex["opted_out"]) == (
        "finished", 29, 29, 0, 1)
    [auto] = rows(db_url, "select execution_count, total_sent, total_completed from automations")
    assert auto == {"execution_count": 1, "total_sent": 29, "total_completed": 29}
    assert scalar(db_url, "select count(*) from messages where status = 'sent'") == 29


def test_a_wait_node_resumes_the_flow_at_its_time(db_url: str, tmp_path: Path, api: StandIn) -> None:
    """promo: a template now, then after the 2 h wait a text; the pass reports when to return."""
    run = start(db_url, tmp_path, api, n=6, flow="promo")
    first = run.work()
    assert first.sent == 6 and not first.finished
    assert first.next_at is not None and first.next_at >= RUN + timedelta(hours=2)
    assert {m.type for m in api.messages} == {"template"}
    run.clock.t = first.next_at
    last = run.drain()
    run.engine.close()
    assert last.finished
    assert Counter(m.type for m in api.messages) == {"template": 6, "text": 6}
    assert not api.duplicates()
    assert {r["step"] for r in run.recipients().values()} == {2}


@pytest.mark.parametrize("guarantee", ["at_most_once", "at_least_once"])
def test_a_recipient_the_sweep_gives_back_keeps_the_status_its_last_message_reached(
    db_url: str, tmp_path: Path, api: StandIn, guarantee: str
) -> None:
    """promo's second send taken by a worker that then died (its guard written, nothing
    sent): the sweep gives each recipient back as its first message left it, `delivered` or
    `read` where a webhook had raised it, `sent` otherwise (not back to `sent` for all); then
    every one gets its second message once."""
    run = start(db_url, tmp_path, api, n=4, flow="promo",
                delivery={"delivery_guarantee": guarantee})
    first = run.work()
    assert first.sent == 4 and first.next_at is not None
    wamids = {r["contact_id"]: r["message_id"] for r in run.recipients().values()}
    a, b, _, _ = run.contact_ids
    with dbmod.write_transaction(run.engine.db) as conn:
        apply_statuses(conn, [StatusUpdate(ORG, wamids[a], "delivered"),
                              StatusUpdate(ORG, wamids[b], "delivered"),
                              StatusUpdate(ORG, wamids[b], "read")], now=first.next_at)
    before = {c: r["status"] for c, r in run.recipients().items()}
    assert before == {a: "delivered", b: "read"} | {c: "sent" for c in run.contact_ids[2:]}
    # The dead worker's take: the guard (and, under at_most_once, a send mark covering none).
    ids = sorted(r["id"] for r in run.recipients().values())
    taken = first.next_at
    with dbmod.write_transaction(run.engine.db) as conn:
        bulk.guard(conn, ids, owner="dead-worker", until=taken + timedelta(seconds=FAST.lease_seconds),
                   t=taken)
        if guarantee == "at_most_once":
            marks.write(conn, token="dead-worker", organization=ORG, execution_id=run.execution_id,
                        through_id=ids[0] - 1, until=taken + timedelta(seconds=FAST.lease_seconds))
    assert {r["status"] for r in run.recipients().values()} == {"sending"}
    run.clock.t = taken + timedelta(seconds=FAST.lease_seconds + 1)
    swept = eng.sweep(run.engine, now=run.clock(), enqueue=Enqueued())
    assert (swept.released, swept.resend, swept.unknown) == (
        (4, 0, 0) if guarantee == "at_most_once" else (0, 4, 0))
    assert {c: r["status"] for c, r in run.recipients().items()} == before
    last = run.drain()
    run.engine.close()
    assert last.finished
    assert Counter(m.type for m in api.messages) == {"template": 4, "text": 4}
    assert not api.duplicates()


def test_a_task_delivered_twice_never_sends_twice(db_url: str, tmp_path: Path, api: StandIn) -> None:
    """Two work passes on the same execution at the same time (a duplicated task) claim
    disjoint recipients: every contact gets exactly one message."""
    run = start(db_url, tmp_path, api, n=240)
    api.add_fault(Fault("delay", latency=0.005))
    results: list[eng.WorkReport] = []
    barrier = threading.Barrier(3)

    def one() -> None:
        barrier.wait()
        results.append(eng.work_execution(run.engine, run.execution_id, now=RUN))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and sum(r.sent for r in results) > 0
    # On a loaded machine a send can time out and be retried later, after the three passes:
    # the rest is drained, and still every contact has exactly one message.
    run.drain()
    run.engine.close()
    assert len(api.messages) == 240 and not api.duplicates()
    assert len({m.to for m in api.messages}) == 240
    assert run.execution()["status"] == "finished"


# --------------------------------------------------------------------------- errors


def test_a_throttling_storm_is_retried_with_backoff_until_everything_is_sent(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """130429 answered 90 times to 40 recipients: each is retried with growing jittered
    delays and in the end every one is sent exactly once."""
    retry = {"max_attempts": 10, "initial_delay": "1s", "max_delay": "30s", "multiplier": 2}
    run = start(db_url, tmp_path, api, n=40, delivery={"retry": retry})
    api.add_fault(Fault(code=130429, times=90))
    report = run.drain()
    run.engine.close()
    assert report.finished
    assert len(api.messages) == 40 and not api.duplicates()
    assert run.execution()["completed"] == 40
    attempts = [r["attempts"] for r in run.recipients().values()]
    assert sum(attempts) == 40 + 90 and max(attempts) > 2
    assert scalar(db_url, "select max(attempts) from messages") == max(attempts)


def test_pair_rate_retries_that_recipient_alone_after_six_seconds(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """131056 for one recipient: the others complete; it waits at least 6 s, then is sent."""
    run = start(db_url, tmp_path, api, n=5)
    api.add_fault(Fault(code=131056, recipient="+5511900000003", times=1))
    first = run.work()
    r = run.recipients()["c-3"]
    assert r["status"] == "pending" and r["error_code"] == "131056"
    assert r["next_attempt_at"] >= run.clock() + timedelta(seconds=6) - timedelta(seconds=1)
    assert first.next_at == r["next_attempt_at"] and first.sent == 4
    assert run.drain().finished
    run.engine.close()
    assert Counter(m.to for m in api.messages)["+5511900000003"] == 1 and len(api.messages) == 5


def test_a_permanent_error_fails_the_recipient_at_once_with_the_code(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """131026 (undeliverable) fails that recipient on its first attempt, code on its row."""
    run = start(db_url, tmp_path, api, n=4)
    api.add_fault(Fault(code=131026, recipient="+5511900000002"))
    report = run.drain()
    run.engine.close()
    assert report.finished
    r = run.recipients()["c-2"]
    assert (r["status"], r["error_code"], r["attempts"]) == ("failed", "131026", 1)
    ex = run.execution()
    assert (ex["sent"], ex["completed"], ex["failed"]) == (3, 3, 1)


def test_spam_rate_limit_opens_the_breaker_pauses_every_execution_and_resume_loses_nothing(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """131048 opens the channel's breaker: this execution and another on the same channel pause
    with their recipients pending; `resume_channel` runs both to the end, nobody twice."""
    small = EngineSettings(**{**FAST.__dict__, "batch_size": 5})
    second = start(db_url, tmp_path, api, n=12, name="other", settings=small,
                   contacts_from=100)
    run = start(db_url, tmp_path, api, n=20, settings=small,
                at=utc("2026-01-05T09:00:02Z"))
    api.add_fault(Fault(code=131048, times=1))
    report = run.work()
    assert report.status == "paused_circuit"
    assert run.execution()["status"] == "paused_circuit"
    other = second.work()
    assert other.status == "paused_circuit" and other.sent == 0
    [circuit] = rows(db_url, "select state, code from channel_circuits")
    assert circuit == {"state": "open", "code": "131048"}
    before = len(api.messages)
    assert before < 20
    enqueued = Enqueued()
    resumed = eng.resume_channel(run.engine, ORG, "wa", now=run.clock(), enqueue=enqueued)
    assert sorted(resumed) == sorted(enqueued) == sorted([run.execution_id, second.execution_id])
    assert run.drain().finished and second.drain().finished
    run.engine.close()
    second.engine.close()
    assert len(api.messages) == 32 and not api.duplicates()
    assert rows(db_url, "select state from channel_circuits") == [{"state": "closed"}]


# --------------------------------------------------------------------------- limits


class Recording:
    """The real channel, with the (driven) time each message left at."""

    def __init__(self, inner: Channel, clock: FakeClock) -> None:
        self.inner, self.clock, self.times = inner, clock, []  # type: ignore[var-annotated]

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.times.append(self.clock().timestamp())
        return await self.inner.send(message)

    async def send_many(self, messages: Sequence[OutgoingMessage], *, concurrency: int
                        ) -> list[SendResult]:
        self.times += [self.clock().timestamp()] * len(messages)
        return await self.inner.send_many(messages, concurrency=concurrency)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_messages_per_second_80_holds_in_every_second_of_a_driven_clock(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """400 recipients at messages_per_second 80, one worker: no one-second window sees more
    than 80 messages leave, and the campaign runs at >= 90% of the rate (slots are spaced for
    98%, and a lone worker leaves a short gap between batches; with 4 workers the benchmark
    measures >= 95% by arrival at the stand-in)."""
    run = start(db_url, tmp_path, api, n=400, channel={"messages_per_second": 80},
                settings=EngineSettings(**{**FAST.__dict__, "batch_size": 200}))
    recorder: list[Recording] = []

    def factory(org: str, name: str, spec: Mapping[str, Any]) -> Channel:
        recorder.append(Recording(open_channel(spec, env=ENV, outbox_dir=tmp_path), run.clock))
        return recorder[-1]

    report = run.drain(channel_factory=factory)
    run.engine.close()
    assert report.finished and len(api.messages) == 400
    times = [t for r in recorder for t in r.times]
    assert max_in_any_second(times) <= 80
    assert len(times) / (max(times) - min(times) + 1 / 80) >= 0.90 * 80


def test_an_hourly_limit_ends_the_pass_until_the_next_slot_instead_of_holding_anyone(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """rate_limit_per_hour 60 (one a minute), 3 recipients: each pass sends what has a slot
    now and ends with next_at at the next slot, leasing nobody to wait; the three sends are a
    minute apart and the campaign finishes."""
    run = start(db_url, tmp_path, api, n=3, delivery={"rate_limit_per_hour": 60})
    first = run.work()
    assert first.sent == 1 and not first.finished
    assert first.next_at is not None and first.next_at >= run.clock() + timedelta(seconds=50)
    assert [r for r in run.recipients().values() if r["lease_owner"] is not None] == []
    assert run.drain().finished
    run.engine.close()
    sent_at = sorted(r["sent_at"] for r in table_rows(db_url, models.messages))
    assert len(sent_at) == 3 and len(api.messages) == 3
    assert all(b - a >= timedelta(seconds=60) for a, b in itertools.pairwise(sent_at))


def test_max_concurrent_executions_bounds_sends_in_flight_across_concurrent_passes(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """max_concurrent_executions 4, three passes at once (parallelism 2: a share of 2 each), the
    API answering in 50 ms, batches of 50: the stand-in never sees more than 4 requests at
    once (but more than one pass's share), the third pass finds no share left and says so, and
    everyone gets exactly one message."""
    run = start(db_url, tmp_path, api, n=200, delivery={"max_concurrent_executions": 4})
    api.add_fault(Fault(action="delay", latency=0.05))
    barrier = threading.Barrier(3)
    reports: list[eng.WorkReport] = []

    def one_pass() -> None:
        barrier.wait()
        reports.append(eng.work_execution(run.engine, run.execution_id, now=run.clock()))

    threads = [threading.Thread(target=one_pass) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert 2 < api.most_in_flight <= 4
    refused = [r for r in reports if "max_concurrent_executions" in (r.reason or "")]
    assert len(refused) == 1 and refused[0].claimed == 0 and refused[0].sent == 0
    assert refused[0].next_at is not None  # it comes back when a share may be free
    assert run.drain().status == "finished"
    run.engine.close()
    assert len(api.messages) == 200 and not api.duplicates()
    assert rows(db_url, "select count(*) as n from send_permits") == [{"n": 0}]


def test_the_share_of_a_pass_that_died_comes_back_when_its_permits_run_out(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """A pass that died holding the whole bound (its send_permits row is still there): the next
    pass gets nothing until that row's `until`, then takes its share and finishes the run."""
    run = start(db_url, tmp_path, api, n=5, delivery={"max_concurrent_executions": 2})
    until = run.clock() + timedelta(seconds=30)
    with dbmod.write_transaction(run.engine.db) as conn:
        conn.execute(models.send_permits.insert().values(
            organization=ORG, execution_id=run.execution_id, token="dead", permits=2,
            until=until))
    blocked = run.work()
    assert blocked.claimed == 0 and blocked.next_at == until
    run.clock.t = until
    assert run.drain().finished
    run.engine.close()
    assert len(api.messages) == 5
    assert rows(db_url, "select count(*) as n from send_permits") == [{"n": 0}]


def test_daily_unique_recipients_hold_recipients_back_without_failing_them(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """A messaging limit of 5 per 24 h: 5 of 8 are sent, 3 wait (pending, not failed) until the
    first ones are 24 h old, then go."""
    run = start(db_url, tmp_path, api, n=8, channel={"daily_unique_recipients": 5})
    first = run.work()
    assert first.sent == 5 and first.held == 3
    waiting = [r for r in run.recipients().values() if r["status"] == "pending"]
    assert len(waiting) == 3 and all(r["error_code"] is None for r in waiting)
    assert first.next_at is not None and first.next_at >= RUN + timedelta(hours=24)
    assert run.drain().finished
    run.engine.close()
    assert len(api.messages) == 8 and not api.duplicates()


# --------------------------------------------------------------------------- window


def test_a_campaign_pauses_when_the_window_closes_and_resumes_monday_morning(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """Window 09:00-18:00 in São Paulo, weekends skipped, 1 message/s: triggered Friday 17:59:55
    it sends 5, pauses at 18:00 (waiting_window, resume_at Monday 09:00), and the rest go out
    from Monday 09:00; nothing is lost or skipped."""
    schedule = {"execution_timezone": "America/Sao_Paulo", "execution_window_start": "09:00",
                "execution_window_end": "18:00", "skip_weekends": True}
    ids = add_contacts(db_url, 8)
    root = write_repo(tmp_path / "cfg", channel_doc(api.base_url, api.phone_number_id,
                                                    messages_per_second=1),
                      [automation_doc("promo", contact_ids=ids, schedule=schedule)])
    apply(root, db_url, T0)
    engine = engine_for(db_url, root)
    friday = utc("2026-01-09T20:59:55Z")  # 17:59:55 in São Paulo
    result = eng.trigger(engine, ORG, "promo", now=friday)
    assert result.execution_id is not None
    eng.fan_out(engine, result.execution_id, now=friday)
    run = Run(engine, result.execution_id, FakeClock(friday), db_url, ids)
    report = run.work()
    monday = utc("2026-01-12T12:00:00Z")  # 09:00 in São Paulo
    assert report.status == "waiting_window" and report.next_at == monday
    assert len(api.messages) == 5
    ex = run.execution()
    assert (ex["status"], ex["resume_at"]) == ("waiting_window", monday)
    assert run.work().sent == 0  # a pass before Monday does nothing
    run.clock.t = monday
    enqueued = Enqueued()
    assert eng.sweep(engine, now=monday, enqueue=enqueued).resumed == [run.execution_id]
    assert enqueued == [run.execution_id]
    assert run.drain().finished
    engine.close()
    assert len(api.messages) == 8 and not api.duplicates()
    sent_at = sorted(r["sent_at"] for r in table_rows(db_url, models.messages))
    assert sent_at[4] < utc("2026-01-09T21:00:00Z") <= monday <= sent_at[5]


# --------------------------------------------------------------------------- fan-in


def test_fan_in_is_counted_once_when_the_sweep_and_workers_race(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """Three work passes and three sweepers racing on one execution: it is finished exactly
    once, and the automation's execution_count and totals move once."""
    run = start(db_url, tmp_path, api, n=6)
    barrier = threading.Barrier(6)
    finished: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        report = eng.work_execution(run.engine, run.execution_id, now=RUN, batch_size=2)
        if report.finished:
            with lock:
                finished.append(run.execution_id)

    def sweeper() -> None:
        barrier.wait()
        for k in range(30):
            done = eng.sweep(run.engine, now=RUN + timedelta(seconds=k), enqueue=Enqueued()).finished
            with lock:
                finished.extend(done)

    threads = [threading.Thread(target=f) for f in (worker, worker, worker, sweeper, sweeper, sweeper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not finished:
        # A loaded machine can push a send into a retry past the race: the rest is drained,
        # and the automation's counters below still prove a single fan-in.
        run.drain()
        finished += [run.execution_id] if run.execution()["status"] == "finished" else []
    run.engine.close()
    assert finished == [run.execution_id]
    assert len(api.messages) == 6 and not api.duplicates()
    [auto] = rows(db_url, "select execution_count, total_sent from automations")
    assert auto == {"execution_count": 1, "total_sent": 6}


def test_request_stop_ends_a_pass_after_its_batch_with_nothing_left_sending(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """A graceful drain: `request_stop` makes a running pass finish the batch in flight,
    record it, and return `next_at` so its task is re-enqueued; no recipient stays `sending`."""
    run = start(db_url, tmp_path, api, n=300)
    api.add_fault(Fault("delay", latency=0.02))
    reports: list[eng.WorkReport] = []
    worker = threading.Thread(target=lambda: reports.append(
        eng.work_execution(run.engine, run.execution_id, now=RUN, batch_size=20)))
    worker.start()
    deadline = time.monotonic() + 30
    while len(api.messages) < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    eng.request_stop()
    try:
        worker.join(30)
    finally:
        eng.clear_stop()
    [report] = reports
    assert not report.finished and report.next_at is not None
    statuses = Counter(r["status"] for r in run.recipients().values())
    assert statuses["sending"] == 0 and 0 < statuses["completed"] < 300
    assert statuses["completed"] == len(api.messages)
    assert run.drain().finished
    run.engine.close()
    assert len(api.messages) == 300 and not api.duplicates()


def test_a_fan_out_that_dies_half_way_is_resumed_and_the_execution_cannot_finish_early(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """Fan-out streams: sending starts after the first chunk. If the process dies after it, the
    execution is running but not fanned out: finishing the first recipients does not finish it,
    a pass that finds nothing more asks to run again shortly (a worker never drops out while
    recipients are still being written), the sweep re-issues it once its heartbeat is stale,
    and the resumed fan-out adds exactly the missing recipients."""
    ids = add_contacts(db_url, 1300)
    root = write_repo(tmp_path / "cfg", channel_doc(api.base_url, api.phone_number_id,
                                                    messages_per_second=10_000),
                      [automation_doc("promo", contact_ids=ids)])
    apply(root, db_url, T0)
    engine = engine_for(db_url, root)
    [execution_id] = eng.dispatch_due(engine, now=RUN, enqueue=Enqueued()).executions

    class Died(Exception):
        pass

    def die() -> None:
        raise Died

    with pytest.raises(Died):
        eng.fan_out(engine, execution_id, now=RUN, on_running=die)
    run = Run(engine, execution_id, FakeClock(RUN), db_url, ids)
    assert (run.execution()["status"], run.execution()["fanned_out"]) == ("running", False)
    assert len(run.recipients()) == 1000
    first = run.work()
    assert first.sent == 1000 and not first.finished and run.execution()["status"] == "running"
    assert first.next_at is not None and first.next_at <= run.clock() + timedelta(seconds=1)
    # The pass waited a little for the fan-out before it ended: its heartbeat is that recent.
    ended = run.clock()
    assert eng.sweep(engine, now=ended + timedelta(seconds=5), enqueue=Enqueued()).requeued == []
    stale = ended + timedelta(seconds=FAST.stale_seconds + 1)
    assert eng.sweep(engine, now=stale, enqueue=Enqueued()).requeued == [execution_id]
    assert eng.fan_out(engine, execution_id, now=stale).recipients == 300
    assert run.drain().finished
    engine.close()
    assert len(api.messages) == 1300 and not api.duplicates()
    assert run.execution()["audience_size"] == 1300


def test_a_large_segment_starts_sending_after_its_first_chunk_and_counts_everyone_once(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """A segment's first chunk (its first contacts by id) is read and written alone, then the
    whole segment: every sendable contact becomes a recipient exactly once, opted-out contacts
    on either side of the chunk are counted, and a first-chunk contact that opts out while the
    rest is written stays a recipient (failed `opted_out` at its turn), not counted twice."""
    vip = sorted(f"c-{i}" for i in range(0, 2600, 2))  # the segment, in the order it is read
    before = {vip[10], vip[1200]}  # opted out already: one in the first chunk, one after
    late = vip[20]  # in the first chunk; opts out once that chunk is in
    add_contacts(db_url, 2600, opted_out={int(i[2:]) for i in before})
    doc = automation_doc("promo")
    doc["spec"]["audience"] = {"segment": {"tags": ["vip"]}}
    root = write_repo(tmp_path / "cfg", channel_doc(api.base_url, api.phone_number_id,
                                                    messages_per_second=10_000), [doc])
    apply(root, db_url, T0)
    engine = engine_for(db_url, root)
    [execution_id] = eng.dispatch_due(engine, now=RUN, enqueue=Enqueued()).executions
    run = Run(engine, execution_id, FakeClock(RUN), db_url, vip)
    in_first_chunk: list[int] = []

    def opt_out_late() -> None:
        in_first_chunk.append(len(run.recipients()))
        with dbmod.write_transaction(engine.db) as conn:
            conn.execute(models.contacts.update().where(models.contacts.c.id == late)
                         .values(opted_out=True))

    report = eng.fan_out(engine, execution_id, now=RUN, on_running=opt_out_late)
    assert in_first_chunk == [999]  # the first 1,000 contacts by id, less the one opted out
    assert report.recipients == 1298 and report.opted_out == 2
    recipients = run.recipients()
    assert sorted(recipients) == sorted(set(vip) - before)
    assert (run.execution()["audience_size"], run.execution()["opted_out"]) == (1298, 2)
    assert run.drain().finished
    engine.close()
    assert sorted(m.to for m in api.messages) == sorted(
        f"+55119{int(i[2:]):08d}" for i in set(vip) - before - {late})
    assert not api.duplicates()
    assert (run.recipients()[late]["status"], run.recipients()[late]["error_code"]) == (
        "failed", "opted_out")


def test_a_flow_reads_the_contact_fields_it_uses_however_it_uses_them(
    db_url: str, tmp_path: Path, api: StandIn
) -> None:
    """A condition on tags, an attribute in a text and an attribute reached through the
    automation's variable mapping all see the contact as stored (the take reads only the
    fields the flow and its mapping use)."""
    ids = add_contacts(db_url, 6)  # even ones are tagged vip
    database = dbmod.create_engine(db_url)
    with dbmod.write_transaction(database) as conn:
        for i in range(6):  # first_name is read only through the variable, city by the flow
            conn.execute(models.contacts.update().where(models.contacts.c.id == f"c-{i}")
                         .values(attributes={"first_name": f"N{i}", "city": f"C{i}"}))
    database.dispose()
    doc = automation_doc("promo", flow="segmented", contact_ids=ids,
                         variable_mapping={"who": "{{contact.first_name}}"})
    root = write_repo(tmp_path / "cfg", channel_doc(api.base_url, api.phone_number_id), [doc])
    apply(root, db_url, T0)
    engine = engine_for(db_url, root)
    [execution_id] = eng.dispatch_due(engine, now=RUN, enqueue=Enqueued()).executions
    eng.fan_out(engine, execution_id, now=RUN)
    run = Run(engine, execution_id, FakeClock(RUN), db_url, ids)
    assert run.drain().finished
    engine.close()
    assert sorted((m.to, m.content) for m in api.messages) == sorted(
        (f"+55119{i:08d}", f"VIP N{i}" if i % 2 == 0 else f"Hi C{i}!") for i in range(6))
