"""A one-page HTML dashboard for `flowspec serve` (GET /): read-only, no JavaScript framework.

What an operator checks first: is the applied revision the one on disk, what runs or waits and
why, which Channel's breaker is open, what each automation sends next. The page reloads itself
every few seconds; everything on it is read from the database per request.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from flowspec.plan import format_utc
from reconciler import states as st
from reconciler.executions import ExecutionsReport, collect_executions, describe_wait
from reconciler.status import StatusReport, collect_status

REFRESH_SECONDS = 5

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fafbfc}
h1{font-size:1.3rem;margin:0 0 .2rem} h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;background:#fff;min-width:40rem}
th,td{border:1px solid #d8dee4;padding:.25rem .55rem;text-align:left;white-space:nowrap}
th{background:#f0f3f6;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b42318;font-weight:600} .warn{color:#9a6700} .ok{color:#1a7f37} .muted{color:#656d76}
.bar{display:inline-block;width:8rem;height:.6rem;background:#e6e9ed;vertical-align:middle}
.bar>span{display:block;height:100%;background:#2da44e}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _t(value: Any) -> str:
    return format_utc(value) if value is not None else "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(status: StatusReport, runs: ExecutionsReport) -> str:
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        f"<title>flowspec</title><style>{_CSS}</style></head><body>",
        "<h1>flowspec</h1>",
        f'<div class="muted">database {_e(status.database)}</div>',
    ]
    applied = status.applied
    if applied is None:
        parts.append('<p class="warn">Nothing applied yet.</p>')
    else:
        parts.append(f"<p>Applied: {_e(applied.label)} at {_e(_t(applied.finished_at))}</p>")
    if status.attempted is not None and status.attempted.status == "failed":
        parts.append(
            f'<p class="bad">Last attempt failed ({_e(status.attempted.label)}): '
            f"{_e(status.attempted.error)}</p>"
        )
    if status.drift.state == "drifted":
        parts.append('<p class="warn">The files on disk differ from the applied revision.</p>')

    if runs.open_circuits:
        parts.append("<h2>Open circuit breakers</h2>")
        parts.append(_table(
            ("channel", "since", "code", "reason", "paused executions", "to resume"),
            [(_e(f"{c.organization}/{c.channel}"), _e(_t(c.opened_at)), _e(c.code), _e(c.reason),
              _e(c.paused_executions), f"<code>flowspec channel resume {_e(c.channel)}</code>")
             for c in runs.open_circuits],
            numeric=(4,),
        ))

    parts.append("<h2>Active executions</h2>")
    if not runs.active:
        parts.append('<p class="muted">None.</p>')
    else:
        rows = []
        for x in runs.active:
            live = runs.live.get(x.id, {})
            total = max(sum(live.values()), x.audience_size)
            done = sum(live.get(s, 0) for s in st.R_TERMINAL)
            pct = int(100 * done / total) if total else 0
            cls = ("bad" if x.status == st.EX_PAUSED_CIRCUIT
                   else "warn" if x.status == st.EX_WAITING_WINDOW else "")
            rows.append((
                _e(x.id), _e(x.label), _e("manual" if x.manual else _t(x.at)),
                f'<span class="{cls}">{_e(describe_wait(x))}</span>',
                f'<span class="bar"><span style="width:{pct}%"></span></span> {done}/{total}',
                _e(sum(live.get(s, 0) for s in st.R_COUNTED_SENT)),
                _e(sum(live.get(s, 0) for s in st.R_COUNTED_FAILED)),
            ))
        parts.append(_table(("id", "automation", "occurrence", "state", "progress", "sent", "failed"),
                            rows, numeric=(0, 5, 6)))

    parts.append("<h2>Recently finished</h2>")
    if not runs.finished:
        parts.append('<p class="muted">None.</p>')
    else:
        parts.append(_table(
            ("id", "automation", "occurrence", "status", "finished", "sent", "delivered", "read",
             "completed", "failed"),
            [(_e(x.id), _e(x.label), _e("manual" if x.manual else _t(x.at)),
              _e(x.status + (f" ({x.reason})" if x.reason else "")), _e(_t(x.finished_at)),
              *(_e(x.stats[k]) for k in ("sent", "delivered", "read", "completed", "failed")))
             for x in runs.finished],
            numeric=(0, 5, 6, 7, 8, 9),
        ))

    parts.append("<h2>Automations</h2>")
    parts.append(_table(
        ("automation", "state", "next send", "last execution", "executions", "pending", "sent",
         "failed"),
        [(_e(f"{a.organization}/{a.name}"), _e(a.state), _e(_t(a.next_scheduled_at)),
          _e(_t(a.last_executed_at)), _e(a.executions_text), _e(a.pending),
          _e(a.totals.get("sent", 0)), _e(a.totals.get("failed", 0)))
         for a in status.automations],
        numeric=(4, 5, 6, 7),
    ))
    parts.append('<p class="muted">Also: <a href="/metrics">/metrics</a> · '
                 '<a href="/api/automations">/api/automations</a> · '
                 '<a href="/healthz">/healthz</a></p></body></html>')
    return "".join(parts)


def dashboard_route(path: str = "/") -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    def build(database: Any) -> str:
        with database.engine.connect() as conn:
            status = collect_status(conn, database=database.masked_url, files=None)
            runs = collect_executions(conn)
        return render(status, runs)

    async def handler(request: Request) -> Response:
        service = request.app.state.service
        body = await run_in_threadpool(build, service.database)
        return HTMLResponse(body)

    return Route(path, handler, methods=["GET"])
