"""The work loop's bulk writes: one statement per batch, whatever its size.

On PostgreSQL each write is ONE statement over arrays (`unnest`), with a constant number of
parameters: a per-row executemany costs the server a statement execution per row (planning,
locking, a round of the protocol) and the client a query send per row, which measured as the
largest cost of a send at scale. SQLite runs in-process, where `executemany` is already a C
loop over one prepared statement, so it keeps the Core statements.

Every write is fenced exactly as docs/engine.md says: recipients by `lease_owner`, messages by
`status = 'sending'` and their attempt number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.engine import states as st
from reconciler.engine.sql import insert
from reconciler.models import UTCDateTime, messages, recipients

# Row dicts use these keys (shared with reconciler.engine.work):
#   recipients: rid tok b_status b_node b_step b_next b_code b_err b_mid b_t
#   messages (result): rid b_step b_attempt b_status b_mid b_code b_err b_sent b_failed b_t
#   messages (guard): organization recipient_id step node channel conversation_id status
#                     attempts created_at updated_at


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _col(rows: Sequence[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in rows]


# --------------------------------------------------------------------------- recipients

_PG_RECIPIENTS = """
UPDATE recipients AS r SET
    status = v.status, current_node = v.node, step = v.step, next_attempt_at = v.next,
    error_code = v.code, error = v.err, message_id = COALESCE(v.mid, r.message_id),
    lease_owner = NULL, lease_until = NULL, updated_at = v.t
FROM unnest(%(rid)s::bigint[], %(tok)s::text[], %(status)s::text[], %(node)s::text[],
            %(step)s::int[], %(next)s::timestamptz[], %(code)s::text[], %(err)s::text[],
            %(mid)s::text[], %(t)s::timestamptz[])
     AS v(rid, tok, status, node, step, next, code, err, mid, t)
WHERE r.id = v.rid AND r.lease_owner = v.tok
"""


def _ts(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=UTCDateTime())


_CORE_RECIPIENTS = (
    recipients.update()
    .where(recipients.c.id == sa.bindparam("rid"), recipients.c.lease_owner == sa.bindparam("tok"))
    .values(
        status=sa.bindparam("b_status"),
        current_node=sa.bindparam("b_node"),
        step=sa.bindparam("b_step"),
        next_attempt_at=_ts("b_next"),
        error_code=sa.bindparam("b_code"),
        error=sa.bindparam("b_err"),
        message_id=sa.func.coalesce(sa.bindparam("b_mid", type_=sa.String()),
                                    recipients.c.message_id),
        lease_owner=None,
        lease_until=None,
        updated_at=_ts("b_t"),
    )
)


def update_recipients(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """A recipient's new state after its claim, lease released; only while the lease is ours."""
    if not rows:
        return
    if not _pg(conn):
        conn.execute(_CORE_RECIPIENTS, list(rows))
        return
    conn.exec_driver_sql(_PG_RECIPIENTS, {
        "rid": _col(rows, "rid"), "tok": _col(rows, "tok"), "status": _col(rows, "b_status"),
        "node": _col(rows, "b_node"), "step": _col(rows, "b_step"),
        "next": _col(rows, "b_next"), "code": _col(rows, "b_code"), "err": _col(rows, "b_err"),
        "mid": _col(rows, "b_mid"), "t": _col(rows, "b_t"),
    })


# --------------------------------------------------------------------------- message results

_PG_MESSAGES = """
UPDATE messages AS m SET
    status = v.status, message_id = v.mid, error_code = v.code, error = v.err,
    sent_at = v.sent, failed_at = v.failed, updated_at = v.t
FROM unnest(%(rid)s::bigint[], %(step)s::int[], %(att)s::int[], %(status)s::text[],
            %(mid)s::text[], %(code)s::text[], %(err)s::text[], %(sent)s::timestamptz[],
            %(failed)s::timestamptz[], %(t)s::timestamptz[])
     AS v(rid, step, att, status, mid, code, err, sent, failed, t)
WHERE m.recipient_id = v.rid AND m.step = v.step AND m.status = 'sending' AND m.attempts = v.att
"""

_CORE_MESSAGES = (
    messages.update()
    .where(messages.c.recipient_id == sa.bindparam("rid"), messages.c.step == sa.bindparam("b_step"),
           messages.c.status == st.M_SENDING, messages.c.attempts == sa.bindparam("b_attempt"))
    .values(
        status=sa.bindparam("b_status"),
        message_id=sa.bindparam("b_mid"),
        error_code=sa.bindparam("b_code"),
        error=sa.bindparam("b_err"),
        sent_at=_ts("b_sent"),
        failed_at=_ts("b_failed"),
        updated_at=_ts("b_t"),
    )
)


def update_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Results of sends: only a row still `sending` at the attempt that was made."""
    if not rows:
        return
    if not _pg(conn):
        conn.execute(_CORE_MESSAGES, list(rows))
        return
    conn.exec_driver_sql(_PG_MESSAGES, {
        "rid": _col(rows, "rid"), "step": _col(rows, "b_step"), "att": _col(rows, "b_attempt"),
        "status": _col(rows, "b_status"), "mid": _col(rows, "b_mid"),
        "code": _col(rows, "b_code"), "err": _col(rows, "b_err"), "sent": _col(rows, "b_sent"),
        "failed": _col(rows, "b_failed"), "t": _col(rows, "b_t"),
    })


# --------------------------------------------------------------------------- message guard

_PG_START = """
INSERT INTO messages (organization, recipient_id, step, node, channel, conversation_id,
                      status, attempts, created_at, updated_at)
SELECT v.org, v.rid, v.step, v.node, v.channel, v.conv, 'sending', 1, v.t, v.t
FROM unnest(%(org)s::text[], %(rid)s::bigint[], %(step)s::int[], %(node)s::text[],
            %(channel)s::text[], %(conv)s::bigint[], %(t)s::timestamptz[])
     AS v(org, rid, step, node, channel, conv, t)
ON CONFLICT (recipient_id, step) DO UPDATE SET
    status = 'sending', attempts = messages.attempts + 1, error_code = NULL, error = NULL,
    failed_at = NULL, node = EXCLUDED.node, updated_at = EXCLUDED.updated_at
WHERE messages.status = 'failed'
RETURNING recipient_id, attempts
"""


def start_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[int, int]:
    """Insert each step's message row as `sending` (or restart a `failed` one); the attempt
    number of each row that may now be sent, by recipient id. A row already `sending` or
    accepted is left alone and absent from the result: that step is never sent twice."""
    if not rows:
        return {}
    if _pg(conn):
        result = conn.exec_driver_sql(_PG_START, {
            "org": _col(rows, "organization"), "rid": _col(rows, "recipient_id"),
            "step": _col(rows, "step"), "node": _col(rows, "node"),
            "channel": _col(rows, "channel"), "conv": _col(rows, "conversation_id"),
            "t": _col(rows, "created_at"),
        })
        return {int(rid): int(attempts) for rid, attempts in result}
    m = messages.c
    stmt = insert(conn, messages)
    stmt = stmt.on_conflict_do_update(
        index_elements=["recipient_id", "step"],
        set_={"status": st.M_SENDING, "attempts": m.attempts + 1, "error_code": None,
              "error": None, "failed_at": None, "node": stmt.excluded.node,
              "updated_at": stmt.excluded.updated_at},
        where=m.status == st.M_FAILED,
    ).returning(m.recipient_id, m.attempts)
    # executemany ("insertmanyvalues"): one cached statement, batched VALUES on the wire.
    return {row.recipient_id: row.attempts for row in conn.execute(stmt, list(rows))}
