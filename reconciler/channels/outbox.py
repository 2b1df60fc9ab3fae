"""The embedded channel that needs no account: one JSON line per message, appended to a file.

Several worker processes append to the same file. `O_APPEND` makes each `write` land at the end,
but only writes up to PIPE_BUF are promised not to interleave (and a message can be longer), so
every batch is written under an exclusive `flock`: lines are never torn or mixed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from reconciler.channels.base import OutgoingMessage, SendResult

Clock = Callable[[], datetime]


def outbox_message_id(idempotency_key: str) -> str:
    """Deterministic: the same (recipient, step) always gets the same id, so a re-send is
    visible as a repeated id in the file instead of looking like a new message."""
    return "outbox-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def _default_clock() -> datetime:
    return datetime.now(UTC)


class OutboxChannel:
    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or _default_clock
        self._fd: int | None = None
        # flock is per open file description: it does not exclude threads sharing our fd.
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OutboxChannel({str(self.path)!r})"

    async def send(self, message: OutgoingMessage) -> SendResult:
        return (await self.send_many([message]))[0]

    async def send_many(
        self, messages: Sequence[OutgoingMessage], *, concurrency: int = 1
    ) -> list[SendResult]:
        # `concurrency` is part of the contract but meaningless here: a local append is one
        # write, already faster than any remote API.
        if not messages:
            return []
        now = self._clock().astimezone(UTC).isoformat().replace("+00:00", "Z")
        ids = [outbox_message_id(m.idempotency_key) for m in messages]
        data = b"".join(_line(m, i, now) for m, i in zip(messages, ids, strict=True))
        self._append(data)
        return [SendResult.success(i) for i in ids]

    def _append(self, data: bytes) -> None:
        with self._thread_lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                view = memoryview(data)
                while view:  # a regular-file write may be short (signal, quota): finish it
                    view = view[os.write(fd, view) :]
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    async def aclose(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _line(m: OutgoingMessage, message_id: str, sent_at: str) -> bytes:
    record: dict[str, object] = {"id": message_id, "to": m.to, "type": m.kind}
    if m.kind == "text":
        record["text"] = m.text
    else:
        record.update(template=m.template, language=m.language, params=list(m.params))
    record.update(idempotency_key=m.idempotency_key, sent_at=sent_at)
    # ensure_ascii keeps every line pure ASCII: no encoding question for readers of the file.
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"
