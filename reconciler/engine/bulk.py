"""The work loop's bulk writes: one statement per batch, whatever its size.

On PostgreSQL each write is ONE statement over arrays (`unnest`), with a constant number of
parameters: a per-row executemany costs the server a statement execution per row (planning,
locking, a round of the protocol) and the client a query send per row, which measured as the
largest cost of a send at scale. The arrays travel as array literals this module writes
(`pg_array`): psycopg's own list dumpers walk every element in Python, 0.6 µs each in binary
(and a regular expression each in text), which was over a third of a worker's CPU per message
in the scale-out benchmark; a literal costs 0.1-0.3 µs per element, and a column whose value
is the same for the whole batch (the lease token, the recording time, NULLs) is one
`str.join` of copies. Times travel as integer microseconds since the epoch, exact, and become
`timestamptz` in the statement. SQLite runs in-process, where the driver's `executemany` is a
C loop over one prepared statement; the statements go to it directly with tuples, because
SQLAlchemy's per-row parameter processing cost more than the database work itself (~40 µs per
message). Times are then written in SQLAlchemy's own SQLite format (`sqlite_ts`), so every
other reader and comparison sees the same text.

Every recipient write is fenced by `lease_owner` (docs/engine.md): NULL for the rows a take
holds locked, the batch's token for a result; a message row is written only for a recipient
whose fence held, in the same statement or transaction. Each message row written adds one to
its channel's running total in `send_counts` (sent, or failed by code), in that same statement
(PostgreSQL) or transaction (SQLite): `/metrics` reads the totals, never the messages table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

# Row dicts use these keys (shared with reconciler.engine.work and sweep):
#   recipients: rid fence b_status b_node b_step b_next b_code b_err b_mid b_owner b_until b_att b_t
#   messages:   org rid step node channel conv status att mid code err sent failed t0 t


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _col(rows: Sequence[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in rows]


def sqlite_ts(t: datetime | None) -> str | None:
    """An aware time as SQLAlchemy stores it on SQLite (naive UTC, microseconds)."""
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# --------------------------------------------------------------------------- array literals

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _int(v: Any) -> str:
    return "NULL" if v is None else str(int(v))


def _text(v: Any) -> str:
    # Every element is quoted, so only the quote and the backslash need escaping.
    if v is None:
        return "NULL"
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _micros(v: Any) -> str:
    return "NULL" if v is None else str((v - _EPOCH) // _MICROSECOND)


def pg_array(values: Sequence[Any], element: Callable[[Any], str]) -> str:
    """A PostgreSQL array literal of `values`, each written by `element` (`_int`, `_text`,
    `_micros`). A column holding one value throughout is written once and repeated; the
    columns that vary (ids, message ids, send times) take the C loops of `_varied`."""
    if not values:
        return "{}"
    first = values[0]
    if values.count(first) == len(values):  # a C loop: identity first, then equality
        return "{" + ",".join([element(first)] * len(values)) + "}"
    return _varied(values, element) or "{" + ",".join(map(element, values)) + "}"


def _varied(values: Sequence[Any], element: Callable[[Any], str]) -> str | None:
    """The literal of a column whose values differ, without a Python call per value where
    the values allow (None: they do not). Array literals were a fifth of a worker's pass
    thread under load (py-spy), most of it `element` called per value of a few columns."""
    if element is _int and set(map(type, values)) == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if element is _text and set(map(type, values)) == {str}:
        # Quoted throughout, as `_text` does; only a quote or a backslash would need escaping,
        # and ids, tokens and message ids have neither. Joined on NUL, which no PostgreSQL
        # text holds (a value that does is left to `_text`, and the database's error).
        joined = "\0".join(values)
        if '"' not in joined and "\\" not in joined and joined.count("\0") == len(values) - 1:
            return '{"' + joined.replace("\0", '","') + '"}'
        return None
    if element is _micros:
        # Send times repeat (a pacing group shares one): each distinct time is converted once.
        distinct = dict.fromkeys(values)
        if len(distinct) * 2 <= len(values):
            converted = {v: _micros(v) for v in distinct}
            return "{" + ",".join(map(converted.__getitem__, values)) + "}"
    return None


def _ts(column: str) -> str:
    """SQL turning an epoch-microseconds column back into a timestamptz, exactly (integer
    microseconds are exact in the float8 the interval product uses up to 2^53: year 2255)."""
    return f"('epoch'::timestamptz + {column} * interval '1 microsecond')"


# --------------------------------------------------------------------------- recipients

# (key in the row dicts, parameter and column name, element writer, SQL type of the literal)
_RECIPIENT_COLUMNS: tuple[tuple[str, str, Callable[[Any], str], str], ...] = (
    ("rid", "rid", _int, "bigint"), ("fence", "fence", _text, "text"),
    ("b_status", "status", _text, "text"), ("b_node", "node", _text, "text"),
    ("b_step", "step", _int, "int"), ("b_next", "next", _micros, "bigint"),
    ("b_code", "code", _text, "text"), ("b_err", "err", _text, "text"),
    ("b_mid", "mid", _text, "text"), ("b_owner", "owner", _text, "text"),
    ("b_until", "until", _micros, "bigint"), ("b_att", "att", _int, "int"),
    ("b_t", "t", _micros, "bigint"),
)
_MESSAGE_KEYS: tuple[tuple[str, str, Callable[[Any], str], str], ...] = (
    ("org", "m_org", _text, "text"), ("rid", "m_rid", _int, "bigint"),
    ("step", "m_step", _int, "int"), ("node", "m_node", _text, "text"),
    ("channel", "m_channel", _text, "text"), ("conv", "m_conv", _int, "bigint"),
    ("status", "m_status", _text, "text"), ("att", "m_att", _int, "int"),
    ("mid", "m_mid", _text, "text"), ("code", "m_code", _text, "text"),
    ("err", "m_err", _text, "text"), ("sent", "m_sent", _micros, "bigint"),
    ("failed", "m_failed", _micros, "bigint"), ("t0", "m_t0", _micros, "bigint"),
    ("t", "m_t", _micros, "bigint"),
)


def _values_sql(columns: tuple[tuple[str, str, Callable[[Any], str], str], ...]) -> str:
    """`SELECT <columns> FROM unnest(<one literal per column>)`, times converted back."""
    arrays = ", ".join(f"%({name})s::{kind}[]" for _, name, _, kind in columns)
    names = ", ".join(name for _, name, _, _ in columns)
    selected = ", ".join(_ts(name) + f" AS {name}" if writer is _micros else name
                         for _, name, writer, _ in columns)
    return f"SELECT {selected} FROM unnest({arrays}) AS u({names})"


def _params(rows: Sequence[dict[str, Any]],
            columns: tuple[tuple[str, str, Callable[[Any], str], str], ...]) -> dict[str, str]:
    return {name: pg_array(_col(rows, key), writer) for key, name, writer, _ in columns}


_PG_RECIPIENT_VALUES = _values_sql(_RECIPIENT_COLUMNS)

_PG_RECIPIENT_SET = """
UPDATE recipients AS r SET
    status = v.status, current_node = v.node, step = v.step, next_attempt_at = v.next,
    error_code = v.code, error = v.err, message_id = COALESCE(v.mid, r.message_id),
    lease_owner = v.owner, lease_until = v.until, attempts = v.att, updated_at = v.t
FROM v WHERE r.id = v.rid AND r.lease_owner IS NOT DISTINCT FROM v.fence
"""

_PG_RECIPIENTS = f"WITH v AS ({_PG_RECIPIENT_VALUES}) {_PG_RECIPIENT_SET}"

_SQLITE_RECIPIENTS = """
UPDATE recipients SET status = ?, current_node = ?, step = ?, next_attempt_at = ?,
    error_code = ?, error = ?, message_id = COALESCE(?, message_id), lease_owner = ?,
    lease_until = ?, attempts = ?, updated_at = ?
WHERE id = ? AND lease_owner IS ?
"""


def update_recipients(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Each recipient's new state, only where `lease_owner` is still the row's `fence`."""
    if not rows:
        return
    if _pg(conn):
        conn.exec_driver_sql(_PG_RECIPIENTS, _params(rows, _RECIPIENT_COLUMNS))
        return
    conn.exec_driver_sql(_SQLITE_RECIPIENTS, [
        (r["b_status"], r["b_node"], r["b_step"], sqlite_ts(r["b_next"]), r["b_code"],
         r["b_err"], r["b_mid"], r["b_owner"], sqlite_ts(r["b_until"]), r["b_att"],
         sqlite_ts(r["b_t"]), r["rid"], r["fence"])
        for r in rows
    ])


_PG_GUARD = f"""
UPDATE recipients SET status = 'sending', lease_owner = %(owner)s,
    lease_until = {_ts('%(until)s::bigint')}, next_attempt_at = {_ts('%(t)s::bigint')},
    attempts = attempts + 1, error_code = NULL, error = NULL, updated_at = {_ts('%(t)s::bigint')}
WHERE id = ANY(%(ids)s::bigint[]) AND lease_owner IS NULL
"""

_SQLITE_GUARD = """
UPDATE recipients SET status = 'sending', lease_owner = ?, lease_until = ?, next_attempt_at = ?,
    attempts = attempts + 1, error_code = NULL, error = NULL, updated_at = ?
WHERE id = ? AND lease_owner IS NULL
"""


def guard(conn: Connection, ids: Sequence[int], *, owner: str, until: datetime, t: datetime
          ) -> None:
    """The take's guard: these recipients (locked by this transaction, not leased) become
    `sending` under the lease `owner` until `until`, one more attempt each; their node and
    step stay as they are. Committed before any of their messages is sent."""
    if not ids:
        return
    if _pg(conn):
        conn.exec_driver_sql(_PG_GUARD, {"ids": pg_array(ids, _int), "owner": owner,
                                         "until": _micros(until), "t": _micros(t)})
        return
    values = (owner, sqlite_ts(until), sqlite_ts(t), sqlite_ts(t))
    conn.exec_driver_sql(_SQLITE_GUARD, [(*values, rid) for rid in ids])


# --------------------------------------------------------------------------- messages

# A step's row is written once its send was made; a retry of a step reuses the row of its
# failed attempt (attempt count carried by the caller). An accepted row is never overwritten.
_MESSAGE_COLUMNS = """organization, recipient_id, step, node, channel, conversation_id, status,
    attempts, message_id, error_code, error, sent_at, failed_at, created_at, updated_at"""
_MESSAGE_CONFLICT = """
ON CONFLICT (recipient_id, step) DO UPDATE SET
    status = excluded.status, attempts = excluded.attempts, message_id = excluded.message_id,
    error_code = excluded.error_code, error = excluded.error, sent_at = excluded.sent_at,
    failed_at = excluded.failed_at, node = excluded.node, updated_at = excluded.updated_at
WHERE messages.status IN ('sending', 'failed')
"""

_PG_MESSAGE_VALUES = _values_sql(_MESSAGE_KEYS)
_W = ", ".join(f"w.{name}" for _, name, _, _ in _MESSAGE_KEYS)
_WRITTEN = "RETURNING organization, channel, status, error_code"

# The totals of the message rows the statement wrote (`written`), last and in key order (byte
# order, as the status webhooks sort theirs): every writer takes the total rows it shares with
# others after its other rows and in one order, so none waits for another while holding one.
_PG_COUNT = """
INSERT INTO send_counts (organization, channel, outcome, code, n)
SELECT organization, channel, status, COALESCE(error_code, ''), count(*) FROM written
WHERE status IN ('sent', 'failed')
GROUP BY organization, channel, status, COALESCE(error_code, '')
ORDER BY organization COLLATE "C", channel COLLATE "C", status COLLATE "C",
    COALESCE(error_code, '') COLLATE "C"
ON CONFLICT (organization, channel, outcome, code) DO UPDATE SET n = send_counts.n + excluded.n
"""

# The recipients' fenced update, their message rows and the totals in one statement: a
# message row is written only for a recipient whose lease was still this batch's.
_PG_RECORD = f"""
WITH v AS ({_PG_RECIPIENT_VALUES}),
rec AS ({_PG_RECIPIENT_SET} RETURNING r.id),
written AS (
INSERT INTO messages ({_MESSAGE_COLUMNS})
SELECT {_W} FROM ({_PG_MESSAGE_VALUES}) AS w JOIN rec ON rec.id = w.m_rid
{_MESSAGE_CONFLICT} {_WRITTEN})
{_PG_COUNT}
"""

_PG_MESSAGES = f"""
WITH written AS (
INSERT INTO messages ({_MESSAGE_COLUMNS})
SELECT {_W} FROM ({_PG_MESSAGE_VALUES}) AS w
{_MESSAGE_CONFLICT} {_WRITTEN})
{_PG_COUNT}
"""

_SQLITE_MESSAGES = f"""
INSERT INTO messages ({_MESSAGE_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
{_MESSAGE_CONFLICT}
"""

_SQLITE_COUNT = """
INSERT INTO send_counts (organization, channel, outcome, code, n) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (organization, channel, outcome, code) DO UPDATE SET n = n + excluded.n
"""


def upsert_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write each step's message row (insert, or overwrite a `sending`/`failed` one) and add
    the rows written to `send_counts`."""
    if not rows:
        return
    if _pg(conn):
        conn.exec_driver_sql(_PG_MESSAGES, _params(rows, _MESSAGE_KEYS))
        return
    # One executemany per total it adds to (a batch has one or a few): its row count is how
    # many rows were written, without the ones the conflict clause left alone.
    groups: dict[tuple[str, str, str, str], list[tuple[Any, ...]]] = {}
    for m in rows:
        key = (m["org"], m["channel"], m["status"], m["code"] or "")
        groups.setdefault(key, []).append(
            (m["org"], m["rid"], m["step"], m["node"], m["channel"], m["conv"], m["status"],
             m["att"], m["mid"], m["code"], m["err"], sqlite_ts(m["sent"]),
             sqlite_ts(m["failed"]), sqlite_ts(m["t0"]), sqlite_ts(m["t"])))
    counts = []
    for (org, channel, status, code), params in sorted(groups.items()):
        written = conn.exec_driver_sql(_SQLITE_MESSAGES, params).rowcount
        if status in ("sent", "failed") and written > 0:
            counts.append((org, channel, status, code if status == "failed" else "", written))
    if counts:
        conn.exec_driver_sql(_SQLITE_COUNT, counts)


def record(conn: Connection, recipients_: Sequence[dict[str, Any]],
           messages_: Sequence[dict[str, Any]]) -> None:
    """A batch's results: recipients fenced by their lease token, and the message row of each
    send that was made, only for recipients whose fence held."""
    if not recipients_:
        return
    if _pg(conn):
        conn.exec_driver_sql(_PG_RECORD, {**_params(recipients_, _RECIPIENT_COLUMNS),
                                          **_params(messages_, _MESSAGE_KEYS)})
        return
    # SQLite: this transaction holds the single write lock, so what is ours now stays ours.
    held = _held(conn, recipients_)
    update_recipients(conn, recipients_)
    upsert_messages(conn, [m for m in messages_ if m["rid"] in held])


_SQLITE_MAX_IDS = 30_000  # below SQLite's 32,766 parameters


def _held(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[int]:
    """The ids among `rows` still leased to their (one, shared) fence token."""
    fence = rows[0]["fence"]
    assert all(r["fence"] == fence for r in rows), "one batch, one lease token"
    held: set[int] = set()
    ids = _col(rows, "rid")
    for lo in range(0, len(ids), _SQLITE_MAX_IDS):
        part = ids[lo:lo + _SQLITE_MAX_IDS]
        held.update(rid for (rid,) in conn.exec_driver_sql(
            f"SELECT id FROM recipients WHERE id IN ({', '.join('?' * len(part))}) "
            "AND lease_owner = ?", (*part, fence)))
    return held
