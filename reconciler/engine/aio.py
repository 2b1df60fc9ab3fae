"""One event loop per process, on its own thread, for every send of every worker thread.

Huey runs tasks on worker threads (or processes); channels are asyncio. A connection pool
belongs to the loop it was made on, so instead of one loop per task (a new connection pool per
batch) each process keeps ONE loop thread: every worker thread hands its sends to it and waits,
and the channel's pool and its keep-alive connections are reused by all of them.
Database work stays on the worker threads, so a slow query never stalls another thread's sends.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="flowspec-send-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result (from any thread but the loop's)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


_lock = threading.Lock()
_shared: tuple[int, LoopThread] | None = None


def shared_loop() -> LoopThread:
    """This process's loop thread (a forked child gets its own: threads do not survive fork)."""
    global _shared
    with _lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), LoopThread())
        return _shared[1]
