"""Send marks (reconciler.engine.marks): the rows on both databases, and the senders' side that
keeps a mark ahead of the sends starting, one durable write at a time."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from reconciler import db as dbmod
from reconciler.engine import marks

T = datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_a_mark_only_moves_forward_until_revoked_and_revoke_reads_its_last_value(
    db_url: str,
) -> None:
    """extend never lowers `through_id`; revoke returns the last value and stops every later
    extend; forget and expire delete marks."""
    database = dbmod.open_database(db_url)
    try:
        with dbmod.write_transaction(database.engine) as conn:
            for token in ("a", "b", "old"):
                marks.write(conn, token=token, organization="acme", execution_id=1,
                            through_id=9, until=T)
            assert marks.extend(conn, token="a", through_id=30)
            assert marks.extend(conn, token="a", through_id=20)  # a late, smaller write
            assert marks.revoke(conn, ["a", "a", "missing"]) == {"a": 30}
            assert not marks.extend(conn, token="a", through_id=50)
            assert marks.revoke(conn, ["a"]) == {"a": 30}
            marks.forget(conn, "b")
            assert marks.revoke(conn, ["b"]) == {}
            marks.expire(conn, now=T + marks.KEEP + timedelta(seconds=1))
            assert marks.revoke(conn, ["old", "a"]) == {}
    finally:
        database.dispose()


class Recorder:
    """An `extend` that records what it was asked, one call at a time, and can refuse."""

    def __init__(self, answer: bool | Exception = True) -> None:
        self.calls: list[int] = []
        self.answer = answer
        self.busy = threading.Lock()
        self.overlapped = False

    def __call__(self, through_id: int) -> bool:
        if not self.busy.acquire(blocking=False):
            self.overlapped = True
            self.busy.acquire()
        try:
            self.calls.append(through_id)
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer
        finally:
            self.busy.release()


def test_senders_wait_for_cover_and_the_mark_moves_in_stretches_ahead_of_them() -> None:
    """Ten senders start sends 0..299 in order: each starts only once the mark covers it, the
    mark is written in increasing stretches one at a time, and it never runs more than 1.5 x
    `ahead` past the sends started."""
    ids = list(range(1000, 1300))
    recorder = Recorder()
    started: list[int] = []
    lead: list[int] = []

    async def main() -> None:
        cover = marks.Cover(ids, 20, recorder)
        cover.start()
        queue = iter(range(len(ids)))

        async def sender() -> None:
            for k in queue:
                assert await cover.cover(k + 1)
                assert cover.covered >= k + 1
                started.append(k)
                lead.append(cover.covered - (max(started) + 1))
                await asyncio.sleep(0)

        await asyncio.gather(*(sender() for _ in range(10)))
        await cover.close()

    asyncio.run(main())
    assert sorted(started) == list(range(300))
    assert recorder.calls == sorted(set(recorder.calls)) and recorder.calls[-1] == ids[-1]
    assert not recorder.overlapped
    assert max(lead) < 30  # 1.5 x ahead
    assert len(recorder.calls) <= 300 // 10  # stretches, not a write per send


@pytest.mark.parametrize("answer", [False, RuntimeError("database is locked")])
def test_a_revoked_or_failed_mark_starts_no_further_send(answer: bool | Exception) -> None:
    """Once an extension is refused (the sweep revoked the mark) or fails, cover() answers
    False for every later send, and only the sends already covered went ahead."""
    recorder = Recorder()
    results: list[bool] = []

    async def main() -> None:
        cover = marks.Cover(list(range(100)), 10, recorder)
        assert await cover.cover(1)
        recorder.answer = answer
        for k in range(1, 100):
            results.append(await cover.cover(k + 1))
        await cover.close()

    asyncio.run(main())
    assert results[:9] == [True] * 9  # covered by the first stretch
    assert not any(results[-50:])
