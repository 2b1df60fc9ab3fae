"""The work loop (SPEC 6.4-6.8): claim a batch of recipients, run their flows, send, record.

One pass of `work_execution` repeats, until nothing is claimable now:

1. **Gate.** The execution's window and day rules at the current time (closed → the execution
   becomes `waiting_window` with `resume_at` = the next allowed opening) and its Channel's
   breaker (open → `paused_circuit`), checked before every batch.
2. **Claim.** A conditional UPDATE takes up to `batch_size` claimable recipients (a current node,
   `next_attempt_at <= now`, no lease owner) and stamps them with this batch's lease token and
   `lease_until`; PostgreSQL skips rows another worker is claiming (`FOR UPDATE SKIP LOCKED`),
   SQLite serialises claims (BEGIN IMMEDIATE). A task delivered twice claims nothing twice.
3. **Decide.** Contacts are read fresh (an opt-out since fan-out wins: the recipient fails with
   `opted_out`); `flowrun.advance` says send, wait, complete or fail for each recipient.
4. **Limit.** Sends pass the Channel's messaging limit (`daily_unique_recipients`; over it a
   recipient waits, never fails) and reserve GCRA slots in every rate limit that applies
   (reconciler.engine.limits); what gets no slot soon is released with `next_attempt_at` set.
5. **Guard, send, record** (docs/engine.md, "Sending guarantee"): in one transaction the
   recipients become `sending` and their `messages` rows are inserted as `sending` BEFORE any
   HTTP call; then the channel sends them (`send_many`, each message no earlier than its slot);
   then one transaction records every result, fenced by the lease token (recipient) and the
   attempt number (message), so a worker whose lease was taken over cannot overwrite anything.
   After a successful send the flow continues inline: the next node's wait time, the recipient's
   completion, or its next send (spaced by the pair rate) is recorded in the same write.

The pass ends when nothing is claimable now (or after `pass_budget` seconds, to let other
executions have the worker); it finishes the execution when every recipient is terminal and
otherwise reports `next_at`, the earliest `next_attempt_at` still ahead, for a delayed task.

Every time comes from `clock` (default: `now` advanced by the real elapsed time) and every wait
from `sleep`, so tests drive a whole campaign through a fake clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler import flowrun
from reconciler.channels import Channel, ChannelError, OutgoingMessage, SendResult
from reconciler.engine import breaker, bulk, retry
from reconciler.engine import states as st
from reconciler.engine.aio import shared_loop
from reconciler.engine.context import ChannelFactory, EngineContext
from reconciler.engine.fanin import finish_if_done
from reconciler.engine.limits import Bucket, Reservation, admit_daily
from reconciler.engine.runplan import RunPlan
from reconciler.engine.sql import among, for_update
from reconciler.models import (
    contacts,
    conversations,
    executions,
    recipients,
)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

# A recipient whose slot is further away than this is released rather than waited for.
_MAX_HOLD = 5.0
# Rate slots are reserved this far ahead (twice the guard's recent duration): see _lead.
_FIRST_GUARD_GUESS = 0.05
_MAX_LEAD = 0.5
# A message whose slot passed more than this long ago is not sent in it (see _send_paced).
LATE_TOLERANCE = 0.010
CODE_OPTED_OUT = "opted_out"
CODE_STEP_CONFLICT = "step_conflict"


@dataclass
class WorkReport:
    execution_id: int
    status: str  # the execution's status when the pass ended
    batches: int = 0
    claimed: int = 0
    sent: int = 0  # accepted by the channel
    completed: int = 0
    failed: int = 0
    unknown: int = 0
    retried: int = 0  # failed attempts that will be retried
    held: int = 0  # released to wait for a rate or messaging limit
    finished: bool = False  # this pass finished the execution
    next_at: datetime | None = None  # run again then (None: nothing left for this execution)
    reason: str | None = None


_STOP = threading.Event()


def request_stop() -> None:
    """Make every work pass in this process end after the batch in flight (its sends are
    recorded), reporting `next_at = now` so its task is re-enqueued: a worker's graceful drain."""
    _STOP.set()


def clear_stop() -> None:
    _STOP.clear()


class OffsetClock:
    """`start` advanced by the real time elapsed since creation: the default clock."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t0 = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)


@dataclass
class _Claimed:
    token: str  # the claim's lease token: every later write of this row is fenced by it
    id: int
    contact_id: str
    phone: str | None
    status: str  # before the claim: restored when the recipient is released
    node: str
    step: int
    attempts: int


@dataclass
class _Send:
    r: _Claimed
    action: flowrun.Send
    contact: Mapping[str, Any]
    variables: Mapping[str, str]
    conversation_id: int | None
    message: OutgoingMessage
    attempt: int = 0  # the message row's attempt number, set by the guard


@dataclass
class _InFlight:
    """Sends on the wire (on the loop thread) while this thread prepares the next batch."""

    go: list[_Send]
    future: concurrent.futures.Future[tuple[list[SendResult | None], list[float]]]


# --------------------------------------------------------------------------- entry point


def work_execution(
    engine: EngineContext,
    execution_id: int,
    *,
    now: datetime,
    channel_factory: ChannelFactory | None = None,
    batch_size: int | None = None,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    rng: Any = None,
) -> WorkReport:
    """One work pass over an execution (module docstring). Safe to run concurrently for the
    same execution, in threads or processes: claims never overlap."""
    pass_ = _Pass(engine, execution_id, now=now, channel_factory=channel_factory,
                  batch_size=batch_size, clock=clock, sleep=sleep, rng=rng)
    return pass_.run()


class _Pass:
    def __init__(
        self, engine: EngineContext, execution_id: int, *, now: datetime,
        channel_factory: ChannelFactory | None, batch_size: int | None, clock: Clock | None,
        sleep: Sleep | None, rng: Any,
    ) -> None:
        self.engine = engine
        self.execution_id = execution_id
        self.clock = clock or OffsetClock(now)
        self.sleep = sleep or asyncio.sleep
        self.real_time = sleep is None
        self.rng = rng or engine.rng
        self.factory = channel_factory or engine.channel_factory()
        self.batch_size = batch_size or engine.settings.batch_size
        self.settings = engine.settings
        self.report = WorkReport(execution_id, "missing")
        self.lease = timedelta(seconds=self.settings.lease_seconds)
        self.inflight: _InFlight | None = None
        self._guard_seconds = _FIRST_GUARD_GUESS  # moving average of the guard's duration

    # ----------------------------------------------------------------------- pass

    def run(self) -> WorkReport:
        e = executions.c
        with self.engine.db.connect() as conn:
            ex = conn.execute(
                sa.select(e.id, e.organization, e.status, e.plan, e.channel, e.resume_at)
                .where(e.id == self.execution_id)
            ).first()
        if ex is None:
            raise UserError(f"execution {self.execution_id} does not exist")
        report = self.report
        report.status = ex.status
        if ex.status == st.EX_WAITING_WINDOW:
            if ex.resume_at is not None and ex.resume_at > self.clock():
                report.next_at = ex.resume_at
                return report
            if not self._set_status(st.EX_WAITING_WINDOW, st.EX_RUNNING, resume_at=None, reason=None):
                return self._reload_status()
        elif ex.status != st.EX_RUNNING:
            return report  # starting (fan-out first), paused, finished or failed: nothing to do
        self.organization = ex.organization
        self.plan = RunPlan(ex.plan or {})
        self.flow = self.plan.flow
        self.delivery = self.plan.delivery
        self.channel_name = self.plan.channel_name
        try:
            self.channel = self.factory(self.organization, self.channel_name, self.plan.channel_spec)
        except UserError as exc:
            # A missing token is the operator's to fix; failing every recipient would burn
            # the audience. The breaker holds the execution until `channel resume`.
            with dbmod.write_transaction(self.engine.db) as conn:
                breaker.open_circuit(conn, self.organization, self.channel_name,
                                     code="channel_config", reason=str(exc),
                                     execution_id=self.execution_id, now=self.clock())
            report.status, report.reason = st.EX_PAUSED_CIRCUIT, str(exc)
            return report
        self.buckets = self._buckets()
        self.concurrency = max(1, min(self.delivery.max_concurrent_executions, self.batch_size))
        self.claim_size = self._claim_size()
        report.status = st.EX_RUNNING
        try:
            if not self._loop():
                return report
        finally:
            self._settle()  # nothing is left on the wire when a pass returns
        if report.status == st.EX_PAUSED_CIRCUIT:
            return report
        return self._end(self.clock())

    def _loop(self) -> bool:
        """Batches until nothing is claimable; False when the pass must stop as it is."""
        report = self.report
        deadline = time.monotonic() + self.settings.pass_budget
        while True:
            t = self.clock()
            if time.monotonic() > deadline or _STOP.is_set():
                report.next_at = t  # more to do: the caller re-enqueues at once
                return False
            if self.plan.window is not None:
                opens = self.plan.window.opens_at(t)
                if opens is not None:
                    self._settle()
                    self._wait_for_window(opens, t)
                    return False
            batch = self._claim(t)
            if batch is None:
                return False  # paused or stopped by someone else; status set
            if not batch:
                return True
            report.batches += 1
            report.claimed += len(batch)
            if not self._process(batch):
                return False

    def _end(self, t: datetime) -> WorkReport:
        r = recipients.c
        report = self.report
        with dbmod.write_transaction(self.engine.db) as conn:
            if finish_if_done(conn, self.execution_id, now=t) is not None:
                report.finished, report.status = True, st.EX_FINISHED
                return report
            report.next_at = conn.execute(
                sa.select(sa.func.min(r.next_attempt_at)).where(
                    r.execution_id == self.execution_id, r.next_attempt_at.is_not(None),
                    r.lease_owner.is_(None), r.status.in_(st.R_CLAIMABLE),
                )
            ).scalar()
            status, resume_at = conn.execute(
                sa.select(executions.c.status, executions.c.resume_at)
                .where(executions.c.id == self.execution_id)
            ).one()
            report.status = status
            if status == st.EX_PAUSED_CIRCUIT:
                report.next_at = None  # `resume_channel` (or the sweep after it) restarts it
            elif status == st.EX_WAITING_WINDOW:
                report.next_at = resume_at
        return report

    def _reload_status(self) -> WorkReport:
        with self.engine.db.connect() as conn:
            self.report.status = conn.execute(
                sa.select(executions.c.status).where(executions.c.id == self.execution_id)
            ).scalar_one()
        return self.report

    def _set_status(self, old: str, new: str, **values: Any) -> bool:
        e = executions.c
        with dbmod.write_transaction(self.engine.db) as conn:
            return bool(conn.execute(
                executions.update().where(e.id == self.execution_id, e.status == old)
                .values(status=new, updated_at=self.clock(), **values)
            ).rowcount)

    def _wait_for_window(self, opens: datetime, t: datetime) -> None:
        when = opens.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        reason = f"outside the execution window or on a blocked day; resumes at {when}"
        if self._set_status(st.EX_RUNNING, st.EX_WAITING_WINDOW, resume_at=opens, reason=reason):
            self.report.status, self.report.next_at, self.report.reason = (
                st.EX_WAITING_WINDOW, opens, reason)
        else:
            self._reload_status()

    # ----------------------------------------------------------------------- limits

    def _buckets(self) -> list[Bucket]:
        rate = self.plan.channel.messages_per_second * (1 - self.settings.rate_margin)
        out = [Bucket.per_second(f"channel:{self.organization}/{self.channel_name}", rate)]
        per_hour = self.delivery.rate_limit_per_hour
        if per_hour is not None:
            out.append(Bucket.per_hour(f"automation:{self.organization}/{self.plan.name}", per_hour))
        return out

    def _claim_size(self) -> int:
        # About one rate horizon of sends per batch: claiming more would only release them.
        slowest = max(b.interval_us for b in self.buckets)
        horizon = round(self.settings.rate_horizon * 1_000_000)
        per_horizon = -(-horizon // slowest) if slowest else self.batch_size
        return max(1, min(self.batch_size, per_horizon))

    # ----------------------------------------------------------------------- claim

    def _claim(self, t: datetime) -> list[_Claimed] | None:
        r, e = recipients.c, executions.c
        token = uuid.uuid4().hex
        self.token = token
        with dbmod.write_transaction(self.engine.db) as conn:
            if breaker.is_open(conn, self.organization, self.channel_name):
                breaker.pause_channel(conn, self.organization, self.channel_name, now=t)
                self.report.status = st.EX_PAUSED_CIRCUIT
                self.report.reason = breaker.reason_of(conn, self.organization, self.channel_name)
                return None
            status = conn.execute(
                sa.select(e.status).where(e.id == self.execution_id)
            ).scalar_one()
            if status != st.EX_RUNNING:
                self.report.status = status
                return None
            due = (
                sa.select(r.id).where(
                    r.execution_id == self.execution_id, r.next_attempt_at <= t,
                    r.lease_owner.is_(None), r.status.in_(st.R_CLAIMABLE),
                    r.current_node.is_not(None),
                ).order_by(r.next_attempt_at, r.id).limit(self.claim_size)
            )
            due = for_update(conn, due, skip_locked=True)
            if conn.dialect.name == "postgresql":
                # Materialised once: PostgreSQL may re-run an `IN (SELECT ... LIMIT n FOR
                # UPDATE SKIP LOCKED)` for every outer row, and each run skips the rows the
                # previous one locked, so the UPDATE would claim far more than n.
                picked = due.cte("picked").prefix_with("MATERIALIZED")
                chosen: Any = r.id.in_(sa.select(picked.c.id).scalar_subquery())
            else:
                chosen = r.id.in_(due.scalar_subquery())
            rows = conn.execute(
                recipients.update()
                .where(chosen, r.lease_owner.is_(None))
                .values(lease_owner=token, lease_until=t + self.lease)
                .returning(r.id, r.contact_id, r.phone, r.status, r.current_node, r.step,
                           r.attempts)
            ).all()
            conn.execute(
                executions.update().where(e.id == self.execution_id).values(heartbeat_at=t)
            )
        return [_Claimed(token, x.id, x.contact_id, x.phone, x.status, x.current_node, x.step,
                         x.attempts)
                for x in sorted(rows, key=lambda x: x.id)]

    # ----------------------------------------------------------------------- one batch

    def _process(self, batch: list[_Claimed]) -> bool:
        """Run one claimed batch; False when the execution stopped (breaker opened)."""
        t = self.clock()
        with self.engine.db.connect() as conn:
            found = _load_contacts(conn, self.organization, self.channel_name,
                                   [c.contact_id for c in batch])
        outcomes: list[dict[str, Any]] = []
        sends: list[_Send] = []
        for c in batch:
            contact, conversation_id = found.get(c.contact_id, (None, None))
            if contact is None:
                outcomes.append(self._final(c, st.R_FAILED, st.CODE_UNKNOWN_CONTACT,
                                            "the contact no longer exists", t))
                continue
            if contact.get("opted_out"):
                outcomes.append(self._final(c, st.R_FAILED, CODE_OPTED_OUT,
                                            "the contact opted out", t))
                continue
            variables = flowrun.resolve_variables(self.plan.variable_mapping, contact)
            action = flowrun.advance(self.flow, c.node, variables=variables, contact=contact, now=t)
            if isinstance(action, flowrun.Send):
                phone = contact.get("phone") or c.phone
                if not phone:
                    outcomes.append(self._final(c, st.R_FAILED, st.CODE_NO_PHONE,
                                                "the contact has no phone number", t))
                    continue
                sends.append(_Send(c, action, contact, variables, conversation_id,
                                   _message(c, action, phone)))
            else:
                outcomes.append(self._after(c, action, t, step=c.step, status=c.status))
        if sends and self.plan.channel.daily_unique_recipients is not None:
            sends = self._daily(sends, outcomes, t)
        if not sends:
            self._write_outcomes(outcomes)
            return True
        return self._send_all(sends, outcomes)

    def _daily(self, sends: list[_Send], outcomes: list[dict[str, Any]], t: datetime) -> list[_Send]:
        limit = self.plan.channel.daily_unique_recipients
        assert limit is not None
        admission = admit_daily(self.engine.db, organization=self.organization,
                                channel=self.channel_name, limit=limit,
                                phones=[s.message.to for s in sends], now=t)
        keep = [s for s in sends if s.message.to in admission.allowed]
        for s in sends:
            if s.message.to not in admission.allowed:
                outcomes.append(self._release(s.r, admission.retry_at or t + timedelta(hours=1), t))
                self.report.held += 1
        return keep

    def _send_all(self, sends: list[_Send], outcomes: list[dict[str, Any]]) -> bool:
        remaining = sends
        window = self.plan.window
        closes = window.closes_at(self.clock()) if window is not None else None
        while remaining:
            t = self.clock()
            # Slots start after the guard transaction that precedes every send is expected to
            # be done: a slot that has passed by the time its message is ready would go out
            # late, together with the next ones (a burst an observer counts against the rate).
            lead = self._lead()
            reservation = self.engine.limiter.reserve(
                self.buckets, len(remaining), now=t.timestamp() + lead,
                horizon=self.settings.rate_horizon,
            )
            times = reservation.times
            if closes is not None:
                # A slot at or after the window's close is not used: those recipients wait
                # for the window to reopen (the next gate pauses the execution).
                times = [x for x in times if x < closes.timestamp()]
                if not times and (reservation.times or reservation.next_at >= closes.timestamp()):
                    outcomes += [self._release(s.r, closes, t) for s in remaining]
                    self.report.held += len(remaining)
                    self._write_outcomes(outcomes)
                    shared_loop().run(_await(self.sleep(max(0.0, (closes - t).total_seconds()))))
                    return True
            if not times:
                # Come back `lead` before the next free slot, so the slot is not left idle.
                wait = reservation.next_at - (t.timestamp() + lead)
                if wait > _MAX_HOLD:
                    at = datetime.fromtimestamp(reservation.next_at, UTC)
                    outcomes += [self._release(s.r, at, t) for s in remaining]
                    self.report.held += len(remaining)
                    break
                shared_loop().run(_await(self.sleep(max(0.0, wait))))
                continue
            chunk, remaining = remaining[: len(times)], remaining[len(times):]
            # The last chunk stays in flight while the next batch is prepared. Under a driven
            # clock only when nothing in it waits: two chunks sleeping on one fake clock would
            # each move time for the other.
            ok = self._send_chunk(chunk, Reservation(times, reservation.next_at), outcomes,
                                  pipeline=not remaining and (self.real_time
                                                              or times[-1] <= t.timestamp()))
            outcomes = []  # written with the chunk's guard transaction
            if not ok:
                # The breaker opened: what this batch still holds goes back, untouched.
                t = self.clock()
                self._write_outcomes([self._release(s.r, t, t) for s in remaining])
                return False
        self._write_outcomes(outcomes)
        return True

    # ----------------------------------------------------------------------- guard, send, record

    def _send_chunk(self, chunk: list[_Send], reservation: Reservation,
                    outcomes: list[dict[str, Any]], *, pipeline: bool) -> bool:
        """Guard, then put the chunk on the wire. With `pipeline` the results are recorded
        later (while the next batch is claimed and guarded), so the database work of one batch
        overlaps the HTTP of the previous one; at most one chunk is left in flight."""
        t = self.clock()
        go, conflicts = self._guard(chunk, outcomes, t)
        # Measured on the pass's own clock: a driven clock does not move during the guard.
        took = (self.clock() - t).total_seconds()
        self._guard_seconds = 0.7 * self._guard_seconds + 0.3 * took
        if conflicts:
            self._write_outcomes([
                self._final(s.r, st.R_UNKNOWN, CODE_STEP_CONFLICT,
                            "a message row for this step already exists; not sent again", t)
                for s in conflicts
            ])
        if not go:
            return self._settle()
        times = reservation.times[: len(go)]
        future = asyncio.run_coroutine_threadsafe(
            _send_paced(self.channel, [s.message for s in go], times, self.concurrency,
                        lambda: self.clock().timestamp(), self.sleep),
            shared_loop().loop,
        )
        ok = self._settle()
        sending = _InFlight(go, future)
        if pipeline and ok:
            self.inflight = sending
            return True
        return self._record(sending.go, *sending.future.result()) and ok

    def _lead(self) -> float:
        return min(_MAX_LEAD, 2 * self._guard_seconds)

    def _settle(self) -> bool:
        """Wait for the chunk in flight, if any, and record its results; False if it tripped
        the channel's breaker."""
        inflight, self.inflight = self.inflight, None
        if inflight is None:
            return True
        return self._record(inflight.go, *inflight.future.result())

    def _guard(self, chunk: list[_Send], outcomes: list[dict[str, Any]], t: datetime
               ) -> tuple[list[_Send], list[_Send]]:
        """Recipients `sending` and message rows `sending`, committed before any HTTP call."""
        r = recipients.c
        by_id = {s.r.id: s for s in chunk}
        token = chunk[0].r.token
        with dbmod.write_transaction(self.engine.db) as conn:
            if outcomes:
                bulk.update_recipients(conn, outcomes)
            mine = set(conn.execute(
                recipients.update()
                .where(among(conn, r.id, list(by_id)), r.lease_owner == token,
                       r.status.in_(st.R_CLAIMABLE))
                .values(status=st.R_SENDING, lease_until=t + self.lease,
                        attempts=r.attempts + 1, updated_at=t)
                .returning(r.id)
            ).scalars().all())
            if len(mine) < len(by_id):
                # Became terminal since the claim (a webhook said its last message failed):
                # not sent, lease given back.
                conn.execute(
                    recipients.update()
                    .where(among(conn, r.id, [i for i in by_id if i not in mine]),
                           r.lease_owner == token)
                    .values(lease_owner=None, lease_until=None, updated_at=t)
                )
            if not mine:
                return [], []
            rows = [
                {"organization": self.organization, "recipient_id": s.r.id, "step": s.r.step,
                 "node": s.action.node, "channel": self.channel_name,
                 "conversation_id": s.conversation_id, "status": st.M_SENDING, "attempts": 1,
                 "created_at": t, "updated_at": t}
                for s in chunk if s.r.id in mine
            ]
            started = bulk.start_messages(conn, rows)
        go, conflicts = [], []
        for s in chunk:
            if s.r.id in started:
                s.attempt = started[s.r.id]
                go.append(s)
            elif s.r.id in mine:
                conflicts.append(s)
        return go, conflicts

    def _record(self, go: list[_Send], results: Sequence[SendResult | None],
                when: Sequence[float]) -> bool:
        """Record a chunk's results. Each message's own send time (`when`) stamps it and
        starts its waits and backoffs; the recording time only stamps `updated_at`."""
        now = self.clock()
        report = self.report
        message_updates: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        tripped: ChannelError | None = None
        missed: list[dict[str, Any]] = []
        for s, result, sent in zip(go, results, when, strict=True):
            t = datetime.fromtimestamp(sent, UTC)
            base = {"rid": s.r.id, "b_step": s.r.step, "b_attempt": s.attempt, "b_t": now}
            if result is None:  # its slot was missed: never sent, claimable again at once
                missed.append({**base, "tok": s.r.token})
                outcomes.append(self._release(s.r, now, now))
                report.held += 1
                continue
            if result.ok:
                message_updates.append({**base, "b_status": st.M_SENT, "b_mid": result.message_id,
                                        "b_code": None, "b_err": None, "b_sent": t, "b_failed": None})
                report.sent += 1
                outcomes.append(self._continue(s, result.message_id, t))
                continue
            error = result.error
            assert error is not None
            message_updates.append({**base, "b_status": st.M_FAILED, "b_mid": None,
                                    "b_code": error.code, "b_err": error.message[:2000],
                                    "b_sent": None, "b_failed": t})
            decision = retry.decide(error, attempt=s.attempt, retry=self.delivery.retry,
                                    guarantee=self.delivery.delivery_guarantee, rng=self.rng)
            if decision.verdict == "retry":
                report.retried += 1
                outcomes.append(self._release(s.r, t + timedelta(seconds=decision.delay), t,
                                              code=error.code, error=error.message))
            elif decision.verdict == "circuit":
                tripped = tripped or error
                outcomes.append(self._release(s.r, t, t, code=error.code, error=error.message))
            elif decision.verdict == "unknown":
                outcomes.append(self._final(s.r, st.R_UNKNOWN, error.code, error.message, t))
            else:
                outcomes.append(self._final(s.r, st.R_FAILED, error.code, decision.message or "", t))
        with dbmod.write_transaction(self.engine.db) as conn:
            bulk.update_messages(conn, message_updates)
            bulk.unstart(conn, missed)
            bulk.update_recipients(conn, outcomes)
            if tripped is not None:
                breaker.open_circuit(conn, self.organization, self.channel_name, code=tripped.code,
                                     reason=tripped.message, execution_id=self.execution_id,
                                     now=now)
        if tripped is not None:
            report.status, report.reason = st.EX_PAUSED_CIRCUIT, f"{tripped.code} {tripped.message}"
            return False
        return True

    # ----------------------------------------------------------------------- outcomes

    def _count(self, status: str) -> None:
        if status == st.R_COMPLETED:
            self.report.completed += 1
        elif status == st.R_FAILED:
            self.report.failed += 1
        elif status == st.R_UNKNOWN:
            self.report.unknown += 1

    def _row(self, c: _Claimed, *, status: str, node: str | None, step: int, next_at: datetime | None,
             t: datetime, code: str | None = None, error: str | None = None,
             message_id: str | None = None) -> dict[str, Any]:
        self._count(status)
        return {"rid": c.id, "tok": c.token, "b_status": status, "b_node": node, "b_step": step,
                "b_next": next_at, "b_code": code, "b_err": error[:2000] if error else error,
                "b_mid": message_id, "b_t": t}

    def _final(self, c: _Claimed, status: str, code: str | None, error: str, t: datetime
               ) -> dict[str, Any]:
        return self._row(c, status=status, node=None, step=c.step, next_at=None, t=t, code=code,
                         error=error)

    def _release(self, c: _Claimed, at: datetime, t: datetime, *, code: str | None = None,
                 error: str | None = None) -> dict[str, Any]:
        """Back to claimable at `at`, as it was before the claim (status, node, step)."""
        return self._row(c, status=c.status, node=c.node, step=c.step, next_at=at, t=t, code=code,
                         error=error)

    def _after(self, c: _Claimed, action: flowrun.Action, t: datetime, *, step: int, status: str,
               message_id: str | None = None) -> dict[str, Any]:
        """The recipient's row after a non-send action at its current node."""
        if isinstance(action, flowrun.Wait):
            return self._row(c, status=status, node=action.next, step=step, next_at=action.resume_at,
                             t=t, message_id=message_id)
        if isinstance(action, flowrun.Complete):
            return self._row(c, status=st.R_COMPLETED, node=None, step=step, next_at=None, t=t,
                             message_id=message_id)
        if isinstance(action, flowrun.Fail):
            return self._row(c, status=st.R_FAILED, node=None, step=step, next_at=None, t=t,
                             code=action.code, error=action.message, message_id=message_id)
        assert isinstance(action, flowrun.Send)
        # The next node sends again: WhatsApp's pair rate wants ~6 s between two messages.
        return self._row(c, status=status, node=action.node, step=step,
                         next_at=t + timedelta(seconds=self.settings.pair_gap), t=t,
                         message_id=message_id)

    def _continue(self, s: _Send, message_id: str | None, t: datetime) -> dict[str, Any]:
        """After an accepted send: the flow's next node, recorded in the same write."""
        following = flowrun.advance(self.flow, s.action.next, variables=s.variables,
                                    contact=s.contact, now=t)
        return self._after(s.r, following, t, step=s.r.step + 1, status=st.R_SENT,
                           message_id=message_id)

    def _write_outcomes(self, outcomes: list[dict[str, Any]]) -> None:
        if not outcomes:
            return
        with dbmod.write_transaction(self.engine.db) as conn:
            bulk.update_recipients(conn, outcomes)


# --------------------------------------------------------------------------- SQL


def _load_contacts(
    conn: Connection, organization: str, channel: str, ids: Sequence[str]
) -> dict[str, tuple[dict[str, Any], int | None]]:
    """Each contact as a flow reads it, with its conversation on this channel (one query)."""
    c, v = contacts.c, conversations.c
    rows = conn.execute(
        sa.select(c.id, c.phone, c.tags, c.opted_out, c.attributes, v.id.label("conversation_id"))
        .select_from(contacts.outerjoin(conversations, sa.and_(
            v.organization == c.organization, v.channel == channel, v.contact_id == c.id)))
        .where(c.organization == organization, among(conn, c.id, ids))
    ).all()  # fetchall: iterating the result fetches row by row, 3x the cost per contact
    return {
        row.id: ({"id": row.id, "phone": row.phone, "tags": list(row.tags or []),
                  "opted_out": bool(row.opted_out), "attributes": dict(row.attributes or {})},
                 row.conversation_id)
        for row in rows
    }


def _message(c: _Claimed, action: flowrun.Send, phone: str) -> OutgoingMessage:
    kind: Literal["text", "template"] = "template" if action.kind == "template" else "text"
    return OutgoingMessage(
        idempotency_key=f"{c.id}:{c.step}", to=phone, kind=kind, text=action.text,
        template=action.template, language=action.language, params=action.params,
    )


# --------------------------------------------------------------------------- pacing


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


async def _send_paced(
    channel: Channel, messages_: Sequence[OutgoingMessage], times: Sequence[float],
    concurrency: int, now: Callable[[], float], sleep: Sleep,
) -> tuple[list[SendResult | None], list[float]]:
    """Send each message no earlier than its slot and at most LATE_TOLERANCE after it; what is
    due together goes in one call. A slot missed by more (the process stalled) is not used: the
    message comes back as None and gets a new slot, because sending it late would put it in the
    same second as the slots after it. Returns the results and the time each message went out."""
    n = len(messages_)
    if not n:
        return [], []
    results: list[SendResult | None] = [None] * n
    when = [0.0] * n

    async def group(idx: list[int]) -> None:
        # The full concurrency, not the group's size: a channel may size its connection pool
        # by the first call, and a paced group may hold a single message.
        sent = await channel.send_many([messages_[k] for k in idx], concurrency=concurrency)
        for k, result in zip(idx, sent, strict=True):
            results[k] = result

    tasks: list[asyncio.Task[None]] = []
    i = 0
    while i < n:
        t = now()
        j = i
        while j < n and times[j] <= t:
            j += 1
        if j == i:
            await sleep(times[i] - t)
            continue
        due = [k for k in range(i, j) if times[k] >= t - LATE_TOLERANCE]
        when[i:j] = [t] * (j - i)
        if due:
            tasks.append(asyncio.ensure_future(group(due)))
            await asyncio.sleep(0)  # let the group's request start at its slot
        i = j
    await asyncio.gather(*tasks)
    return results, when
