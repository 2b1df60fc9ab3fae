"""Send marks (0008): under `at_most_once`, how far into a guarded batch sends may have started.

A batch's recipients are `sending` from the take's guard until their results are recorded,
which is up to a second of sends at the channel's rate. A worker killed in between used to
leave every one of them `unknown`, also those the pacer had not released yet. The mark says
which of them may have reached the channel: a batch's sends start in recipient id order, and
`through_id` is the last id whose send may have started. It is written with the guard,
covering none, and moved forward, durably, before a send beyond it starts, `ahead` sends at a
time; the next stretch is asked for while half of `ahead` is still covered, so a send seldom
waits for it. The sweep, taking over a batch whose lease expired, revokes its mark in the same
statement that reads it: the recipients above it were never sent and are released; a pacer
still alive (stalled past its lease) can no longer move it, and stops.

`at_least_once` batches have no mark: their caught recipients are sent again either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from reconciler import db as dbmod
from reconciler.engine.bulk import sqlite_ts
from reconciler.models import send_marks

# Marks of batches whose lease ran out this long ago are deleted by the sweep: by then it has
# resolved every recipient they covered.
KEEP = timedelta(days=1)

# Plain driver SQL for the per-batch writes (a mark written with each guard, forgotten with
# each record, extended every `ahead` sends): building and compiling the expression forms cost
# more than the statements (measured per extension: 236 µs of CPU against 434 µs).
_PG_WRITE = ("INSERT INTO send_marks (token, organization, execution_id, through_id, revoked, "
             "until) VALUES (%(token)s, %(org)s, %(execution)s, %(through)s, false, %(until)s)")
_SQLITE_WRITE = ("INSERT INTO send_marks (token, organization, execution_id, through_id, revoked, "
                 "until) VALUES (?, ?, ?, ?, 0, ?)")
_PG_FORGET = "DELETE FROM send_marks WHERE token = %(token)s"
_SQLITE_FORGET = "DELETE FROM send_marks WHERE token = ?"
_PG_EXTEND = ("UPDATE send_marks SET through_id = GREATEST(through_id, %(through)s) "
              "WHERE token = %(token)s AND NOT revoked")
_SQLITE_EXTEND = "UPDATE send_marks SET through_id = max(through_id, ?) WHERE token = ? AND NOT revoked"


def write(conn: Connection, *, token: str, organization: str, execution_id: int,
          through_id: int, until: datetime) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_WRITE, {"token": token, "org": organization,
                                         "execution": execution_id, "through": through_id,
                                         "until": until})
    else:
        conn.exec_driver_sql(_SQLITE_WRITE, (token, organization, execution_id, through_id,
                                             sqlite_ts(until)))


def extend(conn: Connection, *, token: str, through_id: int) -> bool:
    """Move the mark forward (never back); False when the sweep revoked it (or it is gone)."""
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(_PG_EXTEND, {"through": through_id, "token": token})
    else:
        result = conn.exec_driver_sql(_SQLITE_EXTEND, (through_id, token))
    return bool(result.rowcount)


class Extender:
    """`extend` in a transaction of its own, committed, on one connection kept for a work pass:
    a pool checkout per extension cost a liveness ping each. Callable from any thread, one
    extension at a time (a pass's two batches on the wire may both ask). A connection that
    failed is dropped and the next extension opens a new one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._stack: contextlib.ExitStack | None = None
        self._conn: Connection | None = None

    def __call__(self, token: str, through_id: int) -> bool:
        with self._lock:
            if self._conn is None:
                self._stack = contextlib.ExitStack()
                self._conn = self._stack.enter_context(dbmod.write_connection(self._engine))
            try:
                with self._conn.begin():
                    return extend(self._conn, token=token, through_id=through_id)
            except BaseException:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        stack, self._stack, self._conn = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):  # a broken connection is discarded anyway
                stack.close()


def forget(conn: Connection, token: str) -> None:
    """The batch's results are recorded: its mark has nothing left to say."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_FORGET, {"token": token})
    else:
        conn.exec_driver_sql(_SQLITE_FORGET, (token,))


def revoke(conn: Connection, tokens: Sequence[str]) -> dict[str, int]:
    """Take these batches over: each mark's last `through_id`, after which no pacer moves it.
    One UPDATE, so on PostgreSQL it waits for a pacer's extension in progress and reads it."""
    if not tokens:
        return {}
    m = send_marks.c
    return {token: through for token, through in conn.execute(
        send_marks.update().where(m.token.in_(sorted(set(tokens))))
        .values(revoked=True).returning(m.token, m.through_id)
    )}


def expire(conn: Connection, *, now: datetime) -> None:
    conn.execute(send_marks.delete().where(send_marks.c.until < now - KEEP))


class Cover:
    """The senders' side: `await cover(k + 1)` before handing the batch's send `k` to the
    channel (sends start in index order).

    `ids` are the batch's recipient ids in that order (ascending); the mark written with the
    guard covers none of them. `extend(through_id) -> bool` writes and commits a new mark and
    is run off the event loop (`run_in_executor`). One extension is in flight at a time, and
    every caller waiting for one awaits the same future; the stretch after it is asked for
    while half of `ahead` is still covered."""

    def __init__(self, ids: Sequence[int], ahead: int, extend: Callable[[int], bool]) -> None:
        self.ids = ids
        self.covered = 0
        self.ahead = max(1, ahead)
        self._extend = extend
        self._pending: tuple[int, asyncio.Future[bool]] | None = None
        self.revoked = False

    def start(self) -> None:
        """Ask for the first stretch now: the first send then seldom waits for it."""
        if self._pending is None and self.ids:
            self._ask(1)

    async def cover(self, j: int) -> bool:
        """True once the first `j` sends are covered; False (for good) if the mark was revoked."""
        while self.covered < j and not self.revoked:
            if self._pending is None:
                self._ask(j)
            assert self._pending is not None
            future = self._pending[1]
            await asyncio.wait([future])  # several senders may wait on one extension
            self._finish(future)
        if self.revoked:
            return False
        if self._pending is None and self.covered < len(self.ids) and self.covered - j < self.ahead // 2:
            self._ask(self.covered)
        return True

    async def close(self) -> None:
        """Wait for an extension still being written (a pacer returns with none in flight)."""
        if self._pending is not None:
            future = self._pending[1]
            await asyncio.wait([future])
            self._finish(future)

    def _ask(self, start: int) -> None:
        target = min(len(self.ids), max(start, self.covered) + self.ahead)
        loop = asyncio.get_running_loop()
        self._pending = (target, loop.run_in_executor(None, self._extend, self.ids[target - 1]))

    def _finish(self, future: asyncio.Future[bool]) -> None:
        """Take a finished extension's result, once (whichever waiter comes first)."""
        if self._pending is None or self._pending[1] is not future:
            return
        target = self._pending[0]
        self._pending = None
        if future.exception() is None and future.result():
            self.covered = max(self.covered, target)
        else:
            # Revoked, or the write failed (a database error): start no more sends. Nothing is
            # lost: the batch's record releases the unsent ones under its lease.
            self.revoked = True
