"""`flowspec worker`: real consumer subprocesses draining executions to the stand-in Cloud API,
on SqliteHuey and on Redis, and a SIGTERM in the middle of a slow execution."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from process_helpers import (
    TOKEN_ENV,
    cloud_channel,
    flowspec_argv,
    read,
    scalar,
    subprocess_env,
    wait_for,
    write_config,
)
from reconciler_helpers import invoke

from reconciler.standin import Fault, StandIn

pytestmark = pytest.mark.xdist_group("processes")


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn(token="t") as standin:
        yield standin


class Setup:
    def __init__(self, tmp_path: Path, api: StandIn, *, queue: str, contacts: int,
                 channel: dict[str, Any] | None = None, delivery: dict[str, Any] | None = None) -> None:
        self.tmp = tmp_path
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.queue = queue
        self.root = write_config(
            tmp_path / "config", contacts=contacts,
            channel=channel or cloud_channel(api.base_url),
            automations={"promo": {"delivery": delivery or {}}},
        )
        applied = invoke("apply", str(self.root), "--db", self.db, cwd=tmp_path)
        assert applied.code == 0, applied.output
        self.procs: list[subprocess.Popen[str]] = []

    def trigger(self) -> int:
        result = invoke("trigger", "promo", "--db", self.db, "--queue", self.queue, cwd=self.tmp)
        assert result.code == 0, result.output
        return int(result.out.split("execution ")[1].split(",")[0])

    def worker(self, *extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            flowspec_argv("worker", "--db", self.db, "--queue", self.queue, "--config",
                          str(self.root), "--poll", "0.1", *extra),
            cwd=self.tmp, env=subprocess_env(**{TOKEN_ENV: "t"}), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def status(self, execution_id: int) -> str:
        return str(scalar(self.db, "SELECT status FROM executions WHERE id = :i", i=execution_id))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _wait_started(proc: subprocess.Popen[str]) -> None:
    """Read the worker's output up to its "worker started" line (kept for `_stop`)."""
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if "worker started" in line:
            break
    _EARLY[proc.pid] = "".join(seen)
    assert "worker started" in _EARLY[proc.pid], _EARLY[proc.pid]


_EARLY: dict[int, str] = {}


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, _EARLY.pop(proc.pid, "") + out


def test_worker_drains_an_execution_on_sqlite_huey(tmp_path: Path, api: StandIn) -> None:
    """An execution enqueued on the embedded SQLite queue is sent by a worker process, one
    message per recipient; SIGTERM then stops it cleanly (exit 0)."""
    setup = Setup(tmp_path, api, queue=f"sqlite:///{tmp_path / 'queue.db'}", contacts=20)
    try:
        proc = setup.worker("--workers", "2")
        execution = setup.trigger()
        wait_for(lambda: setup.status(execution) == "finished", timeout=60, what="the execution")
        assert api.count_by_recipient() == {f"+5511{i:09d}": 1 for i in range(1, 21)}
        code, out = _stop(proc)
        assert code == 0, out
        assert "worker stopped" in out and "Traceback" not in out
    finally:
        setup.stop_all()


@pytest.mark.redis
def test_worker_drains_executions_on_redis(tmp_path: Path, api: StandIn, redis_url: str) -> None:
    """The same through RedisHuey, with two worker processes sharing the queue: every recipient
    gets exactly one message."""
    setup = Setup(tmp_path, api, queue=redis_url, contacts=30)
    try:
        procs = [setup.worker("--workers", "2"), setup.worker("--workers", "1")]
        for proc in procs:  # a SIGTERM before its handlers are in would just kill it
            _wait_started(proc)
        execution = setup.trigger()
        wait_for(lambda: setup.status(execution) == "finished", timeout=60, what="the execution")
        assert api.count_by_recipient() == {f"+5511{i:09d}": 1 for i in range(1, 31)}
        assert not api.duplicates()
        for proc in procs:
            code, out = _stop(proc)
            assert code == 0, out
    finally:
        setup.stop_all()


def test_sigterm_drains_in_flight_sends_and_a_new_worker_finishes(tmp_path: Path, api: StandIn) -> None:
    """SIGTERM while a slow execution is sending: the worker exits 0 after the sends in flight,
    no recipient is left `sending`, and a new worker finishes the rest with no duplicate."""
    contacts = 16
    api.add_fault(Fault(action="delay", latency=0.25))
    channel = {**cloud_channel(api.base_url), "messages_per_second": 8}
    setup = Setup(tmp_path, api, queue=f"sqlite:///{tmp_path / 'queue.db'}", contacts=contacts,
                  channel=channel, delivery={"max_concurrent_executions": 2})
    try:
        proc = setup.worker("--workers", "1")
        execution = setup.trigger()
        wait_for(lambda: len(api.messages) >= 2, timeout=60, what="the first sends")
        assert len(api.messages) < contacts  # still in the middle of it
        code, out = _stop(proc)
        assert code == 0, out
        assert "Shutting down gracefully" in out
        counts = {r["status"]: r["n"] for r in read(
            setup.db, "SELECT status, count(*) AS n FROM recipients GROUP BY status")}
        assert "sending" not in counts
        assert read(setup.db, "SELECT count(*) AS n FROM messages WHERE status = 'sending'") == [{"n": 0}]
        assert sum(counts.values()) == contacts
        setup.worker("--workers", "1")
        wait_for(lambda: setup.status(execution) == "finished", timeout=60,
                 what="the new worker to finish the execution")
        assert api.count_by_recipient() == {f"+5511{i:09d}": 1 for i in range(1, contacts + 1)}
    finally:
        setup.stop_all()


def _policies(pid: int) -> dict[int, int]:
    """Each thread of process `pid`: its Linux scheduling policy."""
    return {int(tid): os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
@pytest.mark.parametrize("scheduling", ["batch", "normal"])
def test_task_threads_run_under_the_chosen_scheduling_policy(
    tmp_path: Path, api: StandIn, scheduling: str
) -> None:
    """By default (`--scheduling batch`) the worker's task threads and the send loop they start
    run under SCHED_BATCH and the consumer's own threads keep the default policy; with
    `--scheduling normal` every thread keeps it."""
    setup = Setup(tmp_path, api, queue=f"sqlite:///{tmp_path / 'queue.db'}", contacts=3)
    try:
        extra = () if scheduling == "batch" else ("--scheduling", "normal")
        proc = setup.worker("--workers", "2", *extra)
        execution = setup.trigger()
        wait_for(lambda: setup.status(execution) == "finished", timeout=60, what="the execution")
        assert api.count_by_recipient() == {f"+5511{i:09d}": 1 for i in range(1, 4)}
        policies = _policies(proc.pid)
        batch = [tid for tid, policy in policies.items() if policy == os.SCHED_BATCH]
        assert policies[proc.pid] == os.SCHED_OTHER  # the consumer's main thread
        if scheduling == "batch":
            assert len(batch) >= 3, policies  # two task threads and the send loop
            assert set(policies.values()) == {os.SCHED_OTHER, os.SCHED_BATCH}
        else:
            assert batch == []
            assert set(policies.values()) == {os.SCHED_OTHER}
    finally:
        setup.stop_all()
