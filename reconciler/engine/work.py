"""The work loop (SPEC 6.4-6.8): claim a batch of recipients, run their flows, send, record.

One pass of `work_execution` repeats, until nothing is claimable now:

1. **Gate.** The execution's window and day rules at the current time (closed → the execution
   becomes `waiting_window` with `resume_at` = the next allowed opening) and its Channel's
   breaker (open → `paused_circuit`), checked before every batch. A batch is taken only when
   the rate limits have a slot near (`Limiter.peek`): nothing is held waiting for one.
2. **Take** (one write transaction, docs/engine.md "Sending guarantee"). Up to `batch_size`
   claimable recipients (a current node, `next_attempt_at <= now`, no lease owner) are read
   with their contact, conversation and current step's message row, and locked (PostgreSQL:
   `FOR UPDATE SKIP LOCKED`, so concurrent workers take different rows; SQLite: the write
   lock). Contacts are read fresh (an opt-out since fan-out wins: `opted_out`);
   `flowrun.advance` says send, wait, complete or fail. Sends pass the Channel's messaging
   limit (`daily_unique_recipients`; over it a recipient waits, never fails) and reserve GCRA
   slots in every rate limit that applies (reconciler.engine.limits). Then ONE write: the
   recipients that will be sent become `sending` under this batch's lease token; every other
   one gets its outcome (wait, completion, failure, or release to a later `next_attempt_at`).
   A recipient is `sending` from then until its result is recorded; a task delivered twice
   finds nothing left to take. Under `at_most_once` the batch's send mark (marks.py) is
   written too, and no send starts before it covers it, so a worker killed mid-batch gives up
   only the sends that may have started.
3. **Send** (`Channel.send`, each message no earlier than its slot), while the next batch is
   taken: the database work of one batch overlaps the HTTP of the previous one.
4. **Record.** One write, fenced by the lease token: each recipient's result and the message
   row of each send made (`(recipient_id, step)` unique; a retry reuses its step's row), so a
   worker whose lease was taken over cannot write anything. After a successful send the flow
   continues inline: the next node's wait time, the recipient's completion, or its next send
   (spaced by the pair rate) is recorded in the same write.

The pass ends when nothing is claimable now (or after `pass_budget` seconds, to let other
executions have the worker); it finishes the execution when every recipient is terminal and
otherwise reports `next_at`, the earliest `next_attempt_at` still ahead, for a delayed task.

Every time comes from `clock` (default: `now` advanced by the real elapsed time) and every wait
from `sleep`, so tests drive a whole campaign through a fake clock.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler import flowrun
from reconciler import states as st
from reconciler.channels import Channel, ChannelError, OutgoingMessage, SendResult
from reconciler.engine import breaker, bulk, marks, permits, retry
from reconciler.engine.aio import shared_loop
from reconciler.engine.context import ChannelFactory, EngineContext
from reconciler.engine.fanin import finish_if_done
from reconciler.engine.limits import Bucket, admit_daily
from reconciler.engine.runplan import RunPlan
from reconciler.models import CLAIMABLE, contacts, conversations, executions, messages, recipients

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

# A pass that finds nothing while the fan-out is still writing recipients looks again after
# this, for at most _FANOUT_WAIT in one pass.
_FANOUT_POLL = 0.05
_FANOUT_WAIT = 2.0
# A pass whose next batch would wait longer than this for its rate slots ends and comes back
# then (a delayed task) instead of holding its worker.
_MAX_HOLD = 5.0
# Rate slots are reserved this far ahead (twice the guard's recent duration): see _lead.
_FIRST_GUARD_GUESS = 0.05
_MAX_LEAD = 0.5
# Slot arithmetic is exact (integer microseconds): a batch whose last slot would fall exactly at
# the horizon's end gets no slot, so readiness is computed this much later.
_EPSILON = 0.001
# Paced sends are released in groups at least this far apart: at 10,000 messages/s one release
# per slot (100 µs apart) cost more than the HTTP requests themselves (68 µs per message
# against 31 µs unpaced, measured). With LATE_TOLERANCE a message leaves at most ~12 ms after
# its slot, which the rate margin absorbs: any second then holds slots from at most 1.012 s,
# 0.97 x 1.012 < 1 of the limit.
PACING_QUANTUM = 0.002
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


@dataclass(slots=True)
class _Claimed:
    id: int
    contact_id: str
    phone: str | None
    status: str  # as taken: kept when the recipient is released
    node: str
    step: int
    attempts: int  # the recipient's sends so far, every step
    tried: int  # failed attempts of the current step (its message row's count)
    accepted: bool  # the current step's message was already accepted: never send it again
    # The lease its row holds: None until guarded, then the batch's token, which fences every
    # later write of the row.
    fence: str | None = None


@dataclass(slots=True)
class _Send:
    r: _Claimed
    action: flowrun.Send
    contact: Mapping[str, Any]
    variables: Mapping[str, str]
    conversation_id: int | None
    message: OutgoingMessage

    @property
    def attempt(self) -> int:
        return self.r.tried + 1


@dataclass
class _Taken:
    claimed: int
    go: list[_Send]  # guarded (`sending`), to be sent at `times`
    times: list[float]
    marked: str | None = None  # at_most_once: the lease token its send mark is kept under


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
        self._guard_seconds = _FIRST_GUARD_GUESS  # moving average: slots reserved → committed
        self._not_before: datetime | None = None  # no batch before then (rate, window close)
        self._fanned_out = True  # as of the last take: False while recipients are still written
        self._fanout_waited = 0.0
        self.token = uuid.uuid4().hex  # this pass, as holder of send permits
        self._permit_ttl = timedelta(seconds=self.settings.stale_seconds)
        self._permits_kept = now
        self._in_flight = _InFlightBound(1)
        self._due_query: sa.Select[Any] | None = None

    # ----------------------------------------------------------------------- pass

    def run(self) -> WorkReport:
        # One connection for the whole pass: a checkout per transaction cost a liveness ping
        # each, five round trips per batch.
        # Send marks move on a connection of their own, off the pass's thread (marks.Extender).
        self.extender = marks.Extender(self.engine.db)
        try:
            with dbmod.write_connection(self.engine.db) as conn:
                self.conn = conn
                return self._run()
        finally:
            self.extender.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.conn.begin():
            yield self.conn

    def _run(self) -> WorkReport:
        e = executions.c
        with self._tx() as conn:
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
        self.flow = flowrun.Program(self.plan.flow)  # compiled once for the pass
        self.delivery = self.plan.delivery
        # Guarded batches get a send mark (marks.py): only at_most_once gives recipients up.
        self.marking = self.delivery.delivery_guarantee == "at_most_once"
        self.channel_name = self.plan.channel_name
        try:
            self.channel = self.factory(self.organization, self.channel_name, self.plan.channel_spec)
        except UserError as exc:
            # A missing token is the operator's to fix; failing every recipient would burn
            # the audience. The breaker holds the execution until `channel resume`.
            with self._tx() as conn:
                breaker.open_circuit(conn, self.organization, self.channel_name,
                                     code="channel_config", reason=str(exc),
                                     execution_id=self.execution_id, now=self.clock())
            report.status, report.reason = st.EX_PAUSED_CIRCUIT, str(exc)
            return report
        self.buckets = self._buckets()
        self.claim_size = self._claim_size()
        # How long a full batch's slots span at the slowest limit.
        self._span = (self.claim_size - 1) * max(b.interval_us for b in self.buckets) / 1_000_000
        if not self._acquire_permits():
            return report
        report.status = st.EX_RUNNING
        try:
            try:
                if not self._loop():
                    return report
            finally:
                self._settle()  # nothing is left on the wire when a pass returns
        finally:
            self._release_permits()
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
            # Take a batch only when the rate limits can give all of it a slot within the
            # horizon: a batch taken earlier would mostly be released again.
            ready = max(self.engine.limiter.peek(self.buckets) + self._span + _EPSILON
                        - self.settings.rate_horizon - self._lead(),
                        self._not_before.timestamp() if self._not_before else 0.0)
            wait = ready - t.timestamp()
            if wait > _MAX_HOLD:
                # Spoken for further ahead than a worker should idle: come back then.
                self._settle()
                self._not_before = datetime.fromtimestamp(ready, UTC)
                return True
            if wait > 0:
                # The batch in flight (real time only) goes on sending meanwhile.
                shared_loop().run(_await(self.sleep(wait)))
                continue
            self._not_before = None
            taken = self._take(t)
            if taken is None:
                return False  # paused or stopped by someone else; status set
            if not taken.claimed:
                if self._fanned_out or self._fanout_waited >= _FANOUT_WAIT:
                    return True
                # The fan-out is still writing recipients: wait here for them (a delayed task
                # would wait for the queue's scheduler, up to a second), but not for a fan-out
                # that died: the sweep resumes that one.
                self._settle()
                shared_loop().run(_await(self.sleep(_FANOUT_POLL)))
                self._fanout_waited += _FANOUT_POLL
                continue
            report.batches += 1
            report.claimed += taken.claimed
            if not self._start(taken):
                return False

    def _end(self, t: datetime) -> WorkReport:
        r = recipients.c
        report = self.report
        with self._tx() as conn:
            if finish_if_done(conn, self.execution_id, now=t) is not None:
                report.finished, report.status = True, st.EX_FINISHED
                return report
            report.next_at = conn.execute(
                sa.select(sa.func.min(r.next_attempt_at)).where(
                    r.execution_id == self.execution_id, r.next_attempt_at.is_not(None),
                    CLAIMABLE, r.status.in_(st.R_CLAIMABLE),
                )
            ).scalar()
            if report.next_at is not None and self._not_before is not None:
                report.next_at = max(report.next_at, self._not_before)
            status, resume_at, fanned_out = conn.execute(
                sa.select(executions.c.status, executions.c.resume_at, executions.c.fanned_out)
                .where(executions.c.id == self.execution_id)
            ).one()
            report.status = status
            if not fanned_out:
                # Other passes took every recipient written so far while the fan-out writes
                # the rest: come back for them, or this execution loses a worker for good.
                soon = t + timedelta(seconds=_FANOUT_POLL)
                report.next_at = min(report.next_at or soon, soon)
            if status == st.EX_PAUSED_CIRCUIT:
                report.next_at = None  # `resume_channel` (or the sweep after it) restarts it
            elif status == st.EX_WAITING_WINDOW:
                report.next_at = resume_at
        return report

    def _reload_status(self) -> WorkReport:
        with self._tx() as conn:
            self.report.status = conn.execute(
                sa.select(executions.c.status).where(executions.c.id == self.execution_id)
            ).scalar_one()
        return self.report

    def _set_status(self, old: str, new: str, **values: Any) -> bool:
        e = executions.c
        with self._tx() as conn:
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

    # ----------------------------------------------------------------------- permits

    def _acquire_permits(self) -> bool:
        """This pass's share of `max_concurrent_executions` (reconciler.engine.permits): it
        runs that many senders. False, with `next_at`, when other passes hold it all."""
        bound = self.delivery.max_concurrent_executions
        want = min(permits.share(bound, self.settings.parallelism), self.claim_size)
        t = self.clock()
        with self._tx() as conn:
            grant = permits.acquire(conn, organization=self.organization,
                                    execution_id=self.execution_id, token=self.token, want=want,
                                    bound=bound, until=t + self._permit_ttl, now=t)
        if not grant.permits:
            self.report.next_at = grant.retry_at or t + self._permit_ttl
            self.report.reason = (f"all {bound} sends in flight (max_concurrent_executions) "
                                  "are held by other workers")
            return False
        # Shared by the pass's batches: the next one starts sending while the last finishes.
        self._in_flight = _InFlightBound(grant.permits)
        self._permits_kept = t
        return True

    def _keep_permits(self, conn: Connection, t: datetime) -> bool:
        if (t - self._permits_kept) < self._permit_ttl / 3:
            return True
        self._permits_kept = t
        return permits.keep(conn, execution_id=self.execution_id, token=self.token,
                            until=t + self._permit_ttl)

    def _release_permits(self) -> None:
        try:
            with self._tx() as conn:
                permits.release(conn, execution_id=self.execution_id, token=self.token)
        except sa.exc.SQLAlchemyError:
            pass  # the row runs out by itself (`until`)

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

    # ----------------------------------------------------------------------- take

    def _take(self, t: datetime) -> _Taken | None:
        """Claim, decide and guard one batch in one transaction (module docstring, step 2)."""
        token = uuid.uuid4().hex
        reserved_at: datetime | None = None
        with self._tx() as conn:
            if not self._running(conn, t):
                return None
            rows = conn.execute(self._due(conn), {"due_by": t}).all()
            if not rows:
                return _Taken(0, [], [])
            outcomes: list[dict[str, Any]] = []
            sends = self._decide(rows, outcomes, t)
            if sends and self.plan.channel.daily_unique_recipients is not None:
                sends = self._daily(conn, sends, outcomes, t)
            times: list[float] = []
            if sends:
                reserved_at = self.clock()
                sends, times = self._slots(conn, sends, outcomes, reserved_at)
            bulk.update_recipients(conn, outcomes)
            bulk.guard(conn, [s.r.id for s in sends], owner=token, until=t + self.lease, t=t)
            marked = bool(sends) and self.marking
            if marked:  # covering none of them yet (marks.py)
                marks.write(conn, token=token, organization=self.organization,
                            execution_id=self.execution_id, through_id=sends[0].r.id - 1,
                            until=t + self.lease)
        if reserved_at is not None:
            # Measured on the pass's own clock: a driven clock does not move meanwhile.
            took = (self.clock() - reserved_at).total_seconds()
            self._guard_seconds = 0.7 * self._guard_seconds + 0.3 * took
        for s in sends:
            s.r.fence = token  # from now on every write of this row is fenced by the lease
        return _Taken(len(rows), sends, times, token if marked else None)

    def _running(self, conn: Connection, t: datetime) -> bool:
        """The breaker is closed and the execution still running (else the report says why).
        One statement, as it runs before every batch: the heartbeat, whether the fan-out is
        done, and the breaker's state."""
        e = executions.c
        row = conn.execute(
            executions.update().where(e.id == self.execution_id, e.status == st.EX_RUNNING)
            .values(heartbeat_at=t)
            .returning(e.fanned_out,
                       breaker.state_of(self.organization, self.channel_name).label("circuit"))
        ).first()
        if row is None:
            self.report.status = conn.execute(
                sa.select(e.status).where(e.id == self.execution_id)).scalar_one()
            return False
        self._fanned_out = row.fanned_out
        if not self._keep_permits(conn, t):
            # This pass stalled past its permits' lifetime: another may hold them now.
            self.report.next_at = t
            return False
        if row.circuit == st.CIRCUIT_OPEN:
            breaker.pause_channel(conn, self.organization, self.channel_name, now=t)
            self.report.status = st.EX_PAUSED_CIRCUIT
            self.report.reason = breaker.reason_of(conn, self.organization, self.channel_name)
            return False
        return True

    def _due(self, conn: Connection) -> sa.Select[Any]:
        """Claimable recipients by `due_by` (a parameter) with what deciding needs: the
        contact as it is now, its conversation on this channel, the current step's message
        row. The batch is picked first, in index order, and locked on PostgreSQL, skipping rows
        another worker holds; only its rows are joined. Built once per pass: building and
        keying the statement per batch cost more than deciding ten of its recipients."""
        if self._due_query is None:
            self._due_query = self._build_due(conn)
        return self._due_query

    def _build_due(self, conn: Connection) -> sa.Select[Any]:
        r, c, v, m = recipients.c, contacts.c, conversations.c, messages.c
        due_by = sa.bindparam("due_by", type_=r.next_attempt_at.type)
        pick = (
            sa.select(r.id, r.contact_id, r.phone, r.status, r.current_node, r.step, r.attempts)
            .where(r.execution_id == self.execution_id, r.next_attempt_at <= due_by,
                   CLAIMABLE, r.status.in_(st.R_CLAIMABLE))
            .order_by(r.next_attempt_at, r.id)
            .limit(self.claim_size)
        )
        if conn.dialect.name != "postgresql":
            picked = pick.cte("picked")
            return self._joined(picked, contacts, conversations, messages)
        # Materialised once: PostgreSQL may otherwise re-run a LIMIT ... SKIP LOCKED subquery,
        # and each run skips the rows the previous one locked.
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        p = picked.c
        # One index probe per picked row (LATERAL, kept apart by LIMIT 1 on unique keys): a
        # plain join let the planner hash the whole contacts and conversations tables for
        # every batch (measured: 9 ms per 500 at 20,000 contacts, growing with the table).
        return self._joined(
            picked,
            sa.select(c.id, c.phone, *self._read_fields(), c.opted_out)
            .where(c.organization == self.organization,
                                      c.id == p.contact_id).limit(1).lateral("c"),
            sa.select(conversations.c.id).where(v.organization == self.organization,
                                                v.channel == self.channel_name,
                                                v.contact_id == p.contact_id).limit(1).lateral("v"),
            # Only a recipient that was ever sent to can have a message row: no probe for
            # the rest (a fresh campaign's every recipient).
            sa.select(m.status, m.attempts).where(p.attempts > 0, m.recipient_id == p.id,
                                                  m.step == p.step).limit(1).lateral("m"),
        )

    def _read_fields(self) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
        """The contact's `tags` and `attributes` as far as the flow and its variable mapping
        read them (PostgreSQL): tags only if `contact.tags` is read, and of the attributes only
        the fields read (a top-level field falls back to its attribute when empty). Decoding
        both whole documents for every recipient cost a worker ~2.5 µs each (measured), the
        server as much to write them out."""
        c = contacts.c
        fields = self.flow.contact_fields | flowrun.contact_fields(
            [str(v) for v in self.plan.variable_mapping.values()])
        tags = c.tags if "tags" in fields else sa.null().label("tags")
        keys = sorted(fields - {"tags"})
        if "attributes" in fields:
            attributes: sa.ColumnElement[Any] = c.attributes
        elif keys:
            attributes = sa.func.jsonb_build_object(
                *[x for k in keys for x in (sa.literal(k), c.attributes[k])],
                type_=c.attributes.type).label("attributes")
        else:
            attributes = sa.null().label("attributes")
        return tags, attributes

    def _joined(self, picked: Any, contact: Any, conversation: Any, message: Any) -> sa.Select[Any]:
        p, c, v, m = picked.c, contact.c, conversation.c, message.c
        on: tuple[sa.ColumnElement[bool], ...] = (sa.true(), sa.true(), sa.true())
        if not isinstance(contact, sa.Lateral):
            on = (sa.and_(c.organization == self.organization, c.id == p.contact_id),
                  sa.and_(v.organization == self.organization, v.channel == self.channel_name,
                          v.contact_id == p.contact_id),
                  sa.and_(p.attempts > 0, m.recipient_id == p.id, m.step == p.step))
        # The column order is `_decide`'s, which unpacks each row once (a named attribute of
        # a row costs a lookup each); in id order, the order sends start in (marks.py).
        return (
            sa.select(p.id, p.contact_id, p.phone, p.status, p.current_node, p.step, p.attempts,
                      m.attempts.label("step_attempts"), m.status.label("step_status"),
                      c.id.label("found"), c.phone.label("contact_phone"), c.tags, c.opted_out,
                      c.attributes, v.id.label("conversation_id"))
            .select_from(picked.outerjoin(contact, on[0]).outerjoin(conversation, on[1])
                         .outerjoin(message, on[2]))
            .order_by(p.id)
        )

    def _decide(self, rows: Sequence[Any], outcomes: list[dict[str, Any]], t: datetime
                ) -> list[_Send]:
        """Each taken recipient's next action: sends are returned, the rest go to `outcomes`."""
        sends: list[_Send] = []
        mapping, advance = self.plan.variable_mapping, self.flow.advance
        for (rid, contact_id, recipient_phone, status, node, step, attempts, step_attempts, step_status,
             found, contact_phone, tags, opted_out, attributes, conversation_id) in rows:
            c = _Claimed(rid, contact_id, recipient_phone, status, node, step, attempts,
                         step_attempts or 0, step_status in st.M_ACCEPTED)
            if found is None:
                outcomes.append(self._final(c, st.R_FAILED, st.CODE_UNKNOWN_CONTACT,
                                            "the contact no longer exists", t))
                continue
            if opted_out:
                outcomes.append(self._final(c, st.R_FAILED, CODE_OPTED_OUT,
                                            "the contact opted out", t))
                continue
            # Freshly decoded for this row: nothing else holds these objects.
            contact = {"id": found, "phone": contact_phone, "tags": tags or [],
                       "opted_out": False, "attributes": attributes or {}}
            variables = flowrun.resolve_variables(mapping, contact)
            action = advance(node, variables=variables, contact=contact, now=t)
            if not isinstance(action, flowrun.Send):
                outcomes.append(self._after(c, action, t, step=c.step, status=c.status))
                continue
            if c.accepted:
                outcomes.append(self._final(
                    c, st.R_UNKNOWN, CODE_STEP_CONFLICT,
                    "a message for this step was already accepted; not sent again", t))
                continue
            phone = contact_phone or recipient_phone
            if not phone:
                outcomes.append(self._final(c, st.R_FAILED, st.CODE_NO_PHONE,
                                            "the contact has no phone number", t))
                continue
            sends.append(_Send(c, action, contact, variables, conversation_id,
                               _message(c, action, phone)))
        return sends

    def _daily(self, conn: Connection, sends: list[_Send], outcomes: list[dict[str, Any]],
               t: datetime) -> list[_Send]:
        limit = self.plan.channel.daily_unique_recipients
        assert limit is not None
        admission = admit_daily(self.engine.db, organization=self.organization,
                                channel=self.channel_name, limit=limit,
                                phones=[s.message.to for s in sends], now=t, within=conn)
        keep = [s for s in sends if s.message.to in admission.allowed]
        for s in sends:
            if s.message.to not in admission.allowed:
                outcomes.append(self._release(s.r, admission.retry_at or t + timedelta(hours=1), t))
                self.report.held += 1
        return keep

    def _slots(self, conn: Connection, sends: list[_Send], outcomes: list[dict[str, Any]],
               t: datetime) -> tuple[list[_Send], list[float]]:
        """Rate slots for the sends; those without one (another worker took the horizon's
        slots, or the window closes first) wait, released to when they may go."""
        # Slots start after this transaction is expected to commit: a slot that has passed by
        # the time its message is ready would go out late, together with the next ones (a
        # burst an observer counts against the rate).
        reservation = self.engine.limiter.reserve(
            self.buckets, len(sends), now=t.timestamp() + self._lead(),
            horizon=self.settings.rate_horizon, within=conn,
        )
        times = reservation.times
        at = datetime.fromtimestamp(reservation.next_at, UTC)
        window = self.plan.window
        closes = window.closes_at(t) if window is not None else None
        if closes is not None and (not times or times[-1] >= closes.timestamp()):
            # A slot at or after the window's close is not used: those recipients wait for the
            # window to reopen, and no batch is taken before the close (the gate then pauses).
            times = [x for x in times if x < closes.timestamp()]
            at = self._not_before = closes
        rest = sends[len(times):]
        if rest and self._not_before is None:
            # Another worker took the slots: take nothing more before the next one is free,
            # or the next batches would be released the same way.
            self._not_before = at - timedelta(seconds=self._lead())
        for s in rest:
            outcomes.append(self._release(s.r, at, t))
        self.report.held += len(rest)
        return sends[: len(times)], times

    # ----------------------------------------------------------------------- send, record

    def _start(self, taken: _Taken) -> bool:
        """Put a guarded batch on the wire. In real time (or when nothing in it waits under a
        driven clock: two batches sleeping on one fake clock would each move time for the
        other) its results are recorded later, while the next batch is taken; at most one
        batch is left in flight. False if the breaker opened."""
        if not taken.go:
            return self._settle()
        t = self.clock()
        cover = None
        if taken.marked is not None:
            token = taken.marked
            extender = self.extender
            cover = marks.Cover([s.r.id for s in taken.go], self.settings.mark_ahead,
                                lambda through: extender(token, through))
        future = asyncio.run_coroutine_threadsafe(
            _send_paced(self.channel, [s.message for s in taken.go], taken.times,
                        self._in_flight, lambda: self.clock().timestamp(), self.sleep,
                        driven=not self.real_time, cover=cover),
            shared_loop().loop,
        )
        ok = self._settle()
        sending = _InFlight(taken.go, future)
        if ok and (self.real_time or taken.times[-1] <= t.timestamp()):
            self.inflight = sending
            return True
        return self._record(sending.go, *sending.future.result()) and ok

    def _lead(self) -> float:
        return min(_MAX_LEAD, 2 * self._guard_seconds)

    def _settle(self) -> bool:
        """Wait for the batch in flight, if any, and record its results; False if it tripped
        the channel's breaker."""
        inflight, self.inflight = self.inflight, None
        if inflight is None:
            return True
        return self._record(inflight.go, *inflight.future.result())

    def _record(self, go: list[_Send], results: Sequence[SendResult | None],
                when: Sequence[float]) -> bool:
        """Record a batch's results (module docstring, step 4). Each message's own send time
        (`when`) stamps it and starts its waits and backoffs; the recording time only stamps
        `updated_at`."""
        now = self.clock()
        report = self.report
        messages_: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        tripped: ChannelError | None = None
        for s, result, sent in zip(go, results, when, strict=True):
            if result is None:  # its slot was missed: never sent, claimable again at once
                outcomes.append(self._release(s.r, now, now))
                report.held += 1
                continue
            t = datetime.fromtimestamp(sent, UTC)
            s.r.attempts += 1
            row = {"org": self.organization, "rid": s.r.id, "step": s.r.step,
                   "node": s.action.node, "channel": self.channel_name,
                   "conv": s.conversation_id, "att": s.attempt, "t0": t, "t": now}
            if result.ok:
                messages_.append({**row, "status": st.M_SENT, "mid": result.message_id,
                                  "code": None, "err": None, "sent": t, "failed": None})
                report.sent += 1
                outcomes.append(self._continue(s, result.message_id, t))
                continue
            error = result.error
            assert error is not None
            messages_.append({**row, "status": st.M_FAILED, "mid": None, "code": error.code,
                              "err": error.message[:2000], "sent": None, "failed": t})
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
        with self._tx() as conn:
            bulk.record(conn, outcomes, messages_)
            if go and self.marking and go[0].r.fence:
                marks.forget(conn, go[0].r.fence)
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
        return {"rid": c.id, "fence": c.fence, "b_status": status, "b_node": node, "b_step": step,
                "b_next": next_at, "b_code": code, "b_err": error[:2000] if error else error,
                "b_mid": message_id, "b_owner": None, "b_until": None, "b_att": c.attempts,
                "b_t": t}

    def _final(self, c: _Claimed, status: str, code: str | None, error: str, t: datetime
               ) -> dict[str, Any]:
        return self._row(c, status=status, node=None, step=c.step, next_at=None, t=t, code=code,
                         error=error)

    def _release(self, c: _Claimed, at: datetime, t: datetime, *, code: str | None = None,
                 error: str | None = None) -> dict[str, Any]:
        """Back to claimable at `at`, as it was taken (status, node, step)."""
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
        following = self.flow.advance(s.action.next, variables=s.variables, contact=s.contact,
                                      now=t)
        return self._after(s.r, following, t, step=s.r.step + 1, status=st.R_SENT,
                           message_id=message_id)


# --------------------------------------------------------------------------- SQL


def _message(c: _Claimed, action: flowrun.Send, phone: str) -> OutgoingMessage:
    kind: Literal["text", "template"] = "template" if action.kind == "template" else "text"
    return OutgoingMessage(
        idempotency_key=f"{c.id}:{c.step}", to=phone, kind=kind, text=action.text,
        template=action.template, language=action.language, params=action.params,
    )


# --------------------------------------------------------------------------- pacing


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


class _InFlightBound:
    """A pass's sends in flight, at most `limit` across its batches (its share of
    max_concurrent_executions); used on the event-loop thread only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # made on the loop that uses it
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore


async def _send_paced(
    channel: Channel, messages_: Sequence[OutgoingMessage], times: Sequence[float],
    in_flight: _InFlightBound, now: Callable[[], float], sleep: Sleep, *, driven: bool = False,
    cover: marks.Cover | None = None,
) -> tuple[list[SendResult | None], list[float]]:
    """Send each message no earlier than its slot, with at most `in_flight.limit` sends in
    flight, counting the pass's other batch still finishing. One pacer releases what is due
    (at most every PACING_QUANTUM) and is the only one that sleeps; that many long-lived
    senders send released messages in slot order (a task per message cost more than its
    request). A message whose slot passed more than LATE_TOLERANCE before its release (the
    process stalled) is not sent: it comes back as None and gets a new slot, because sending it
    late would put it in the same second as the slots after it. On a `driven` clock, where
    nothing happens between two readings, the pacer moves time on only once every released
    message has started. With a `cover` (at_most_once), no send starts before the batch's
    send mark covers it; once the sweep revoked the mark (this pass outlived its lease), none
    starts beyond the stretch already covered, and those never started come back as None.
    Returns the results and each message's release time."""
    n = len(messages_)
    results: list[SendResult | None] = [None] * n
    when = [0.0] * n
    if not n:
        return results, when
    loop = asyncio.get_running_loop()
    queue: deque[int] = deque()  # released, not yet taken
    idle: deque[asyncio.Future[None]] = deque()  # senders waiting for a release
    drained: list[asyncio.Future[None]] = []  # the pacer, waiting for the queue to empty
    starting = [0]  # taken from the queue, waiting for a permit or the send mark
    pacing = True

    bound = in_flight.semaphore

    async def sender() -> None:
        while True:
            if queue:
                k = queue.popleft()
                starting[0] += 1
                async with bound:
                    # Sends start in index order (the queue's): covering k + 1 covers k. Asked
                    # for once a send permit is held, so the mark follows the sends on the
                    # wire, not those waiting for a permit.
                    covered = cover is None or await cover.cover(k + 1)
                    starting[0] -= 1
                    if not queue and not starting[0] and drained:
                        drained.pop().set_result(None)
                    if covered:
                        results[k] = await channel.send(messages_[k])
                    # else: taken over by the sweep; not sent (None)
            elif pacing:
                waiter = loop.create_future()
                idle.append(waiter)
                await waiter
            else:
                return

    def wake(count: int) -> None:
        while idle and count > 0:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    if cover is not None:
        cover.start()
    senders = [asyncio.ensure_future(sender()) for _ in range(min(in_flight.limit, n))]
    i = 0
    last = float("-inf")
    while i < n:
        if (queue or starting[0]) and driven:  # released messages not started yet
            drained.append(loop.create_future())
            await drained[-1]
            continue
        t = now()
        ready = max(times[i], last + PACING_QUANTUM)
        if ready > t:
            # At least a microsecond: `last + PACING_QUANTUM` is not always a whole number of
            # microseconds, and a clock that counts them would never get past it.
            await sleep(max(ready - t, 1e-6))
            continue
        j = bisect.bisect_right(times, t, i)
        when[i:j] = [t] * (j - i)
        due = [k for k in range(i, j) if times[k] >= t - LATE_TOLERANCE]
        queue.extend(due)
        wake(len(due))
        last, i = t, j
        await asyncio.sleep(0)  # let the woken senders start their requests at their slots
    pacing = False
    wake(len(idle))
    await asyncio.gather(*senders)
    if cover is not None:
        await cover.close()
    return results, when
