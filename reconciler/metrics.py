"""Prometheus metrics for `GET /metrics`, in the text exposition format, written by hand.

Every figure is read from the database (and the queue's own count) at scrape time, not kept in
process memory: with several workers and a service on different machines, only the database
knows the totals, and a restarted process must not reset a counter Prometheus already saw.
The send counters are running totals (`send_counts`) added to in the transaction that writes
each message row, so they only go up and a scrape costs the same at any table size; the other
figures are counts over rows that never leave their counted state (failed recipients) or over
live executions only.

Metrics (all prefixed `flowspec_`):

    messages_sent_total{organization,channel}          counter  sends the API accepted
    send_failures_total{organization,code}             counter  failed send attempts (API error,
                                                                timeout, lease expired) and
                                                                accepted messages a status
                                                                webhook reported failed, by code
    recipient_failures_total{organization,code}        counter  recipients failed/unknown, by code
    queue_depth                                        gauge    tasks waiting in the Huey queue
    recipients_waiting{organization}                   gauge    recipients held back until later
                                                                (rate limit, pair rate, messaging
                                                                limit, retry backoff, window)
    executions{status}                                 gauge    executions by status
    dispatch_lag_seconds                               gauge    claimed_at - at of the latest dispatch
    oldest_due_seconds                                 gauge    now - at of the oldest due pending
                                                                occurrence (0 when none is due)
    channel_circuit_open{organization,channel}         gauge    1 while a Channel's breaker is open
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler import models
from reconciler import states as st

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "flowspec_"


@dataclass
class Metric:
    name: str
    kind: str  # counter | gauge
    help: str
    samples: list[tuple[Mapping[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str | None) -> None:
        self.samples.append(({k: "" if v is None else str(v) for k, v in labels.items()}, float(value)))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(metrics: Iterable[Metric]) -> str:
    """The text exposition format (version 0.0.4)."""
    out: list[str] = []
    for m in metrics:
        name = PREFIX + m.name
        out.append(f"# HELP {name} {m.help}")
        out.append(f"# TYPE {name} {m.kind}")
        for labels, value in m.samples:
            if labels:
                body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                out.append(f"{name}{{{body}}} {_number(value)}")
            else:
                out.append(f"{name} {_number(value)}")
    return "\n".join(out) + "\n"


def collect(
    conn: Connection, *, now: datetime, queue_depth: Callable[[], int] | None = None
) -> list[Metric]:
    """Read every metric in one pass over a connection (read-only)."""
    out: list[Metric] = []

    sent = Metric("messages_sent_total", "counter", "Messages accepted by the channel's API.")
    failures = Metric("send_failures_total", "counter",
                      "Send attempts that failed, and accepted messages reported failed, by "
                      "error code.")
    # Running totals, added to with every message row written (0007): a scrape reads a few
    # rows, and a failed attempt stays counted when a retry overwrites its row.
    sc = models.send_counts.c
    failed_by_code: dict[tuple[str, str], int] = {}
    for org, channel, outcome, code, n in conn.execute(
        sa.select(sc.organization, sc.channel, sc.outcome, sc.code, sc.n)
        .order_by(sc.organization, sc.channel, sc.outcome, sc.code)
    ):
        if outcome == "sent":
            sent.add(n, organization=org, channel=channel)
        else:
            key = (org, code or "unknown")
            failed_by_code[key] = failed_by_code.get(key, 0) + n
    for (org, code), n in sorted(failed_by_code.items()):
        failures.add(n, organization=org, code=code)
    out += [sent, failures]

    r = models.recipients.c
    rfail = Metric(
        "recipient_failures_total", "counter",
        "Recipients that ended failed or unknown, by error code.",
    )
    q = (
        sa.select(r.organization, r.error_code, sa.func.count())
        # The partial index's own predicate, as text: only failed rows are read (0007).
        .where(sa.text(models.FAILED_RECIPIENTS))
        .group_by(r.organization, r.error_code)
    )
    for org, code, n in conn.execute(q):
        rfail.add(n, organization=org, code=code or "unknown")
    out.append(rfail)

    depth = Metric("queue_depth", "gauge", "Tasks waiting in the Huey queue.")
    if queue_depth is not None:
        depth.add(queue_depth())
    out.append(depth)

    waiting = Metric(
        "recipients_waiting", "gauge",
        "Recipients held back until a later time (rate limits, pair rate, messaging limit, "
        "retry backoff, closed window).",
    )
    e = models.executions.c
    q = (
        # Only executions still going: a finished one has nobody waiting, and its rows are
        # most of the table.
        sa.select(r.organization, sa.func.count())
        .select_from(models.recipients.join(models.executions, e.id == r.execution_id))
        .where(e.status.in_(st.EX_ACTIVE), r.status.not_in(st.R_TERMINAL),
               r.next_attempt_at > now, models.CLAIMABLE)
        .group_by(r.organization)
    )
    for org, n in conn.execute(q):
        waiting.add(n, organization=org)
    out.append(waiting)

    execs = Metric("executions", "gauge", "Executions by status.")
    for status, n in conn.execute(sa.select(e.status, sa.func.count()).group_by(e.status)):
        execs.add(n, status=status)
    out.append(execs)

    o = models.occurrences.c
    lag = Metric(
        "dispatch_lag_seconds", "gauge",
        "How late the most recently dispatched occurrence was claimed (claimed_at - at).",
    )
    last = conn.execute(
        sa.select(o.at, o.claimed_at).where(o.claimed_at.is_not(None))
        .order_by(o.claimed_at.desc()).limit(1)
    ).first()
    lag.add(max((last.claimed_at - last.at).total_seconds(), 0.0) if last else 0.0)
    out.append(lag)

    oldest = Metric(
        "oldest_due_seconds", "gauge",
        "How long the oldest due pending occurrence has waited (0 when none is due).",
    )
    first_due = conn.execute(
        sa.select(sa.func.min(o.at)).where(o.status == "pending", o.at <= now)
    ).scalar()
    oldest.add(max((now - first_due).total_seconds(), 0.0) if first_due else 0.0)
    out.append(oldest)

    c = models.channel_circuits.c
    breaker = Metric("channel_circuit_open", "gauge", "1 while a Channel's circuit breaker is open.")
    for org, channel, state in conn.execute(sa.select(c.organization, c.channel, c.state)):
        breaker.add(1 if state == "open" else 0, organization=org, channel=channel)
    out.append(breaker)
    return out


def exposition(
    conn: Connection, *, now: datetime, queue_depth: Callable[[], int] | None = None
) -> str:
    return render(collect(conn, now=now, queue_depth=queue_depth))


def parse(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for tests and the benchmark (not a full parser)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        values[key] = float(value)
    return values


__all__: Sequence[str] = (
    "CONTENT_TYPE", "Metric", "collect", "exposition", "metrics_route", "parse", "render",
)


# --------------------------------------------------------------------------- HTTP route


def metrics_route(queue_depth: Callable[[], int] | None = None, path: str = "/metrics") -> Any:
    """A Starlette route serving the exposition from the app's database (`app.state.service`).

    A queue that cannot be counted (Redis away) leaves `queue_depth` out rather than failing the
    whole scrape: the other figures are still true.
    """
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    def depth() -> int:
        assert queue_depth is not None
        return queue_depth()

    def scrape(database: Any, now: datetime) -> str:
        counted: Callable[[], int] | None = None
        if queue_depth is not None:
            try:
                value = depth()
                counted = lambda: value  # noqa: E731 - captured once per scrape
            except Exception:
                counted = None
        with database.engine.connect() as conn:
            return exposition(conn, now=now, queue_depth=counted)

    async def handler(request: Request) -> Response:
        service = request.app.state.service
        try:
            body = await run_in_threadpool(scrape, service.database, service.now())
        except sa.exc.DBAPIError as exc:
            from reconciler import db as dbmod

            return PlainTextResponse(
                f"database unavailable: {dbmod.describe_error(exc, service.database.url)}\n",
                status_code=503,
            )
        return PlainTextResponse(body, media_type=CONTENT_TYPE)

    return Route(path, handler, methods=["GET"])
