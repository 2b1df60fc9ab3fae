"""`flowspec channel list | resume`: a breaker opened by the API is shown and cleared, and the
paused execution then finishes with nothing lost (SPEC 6.8)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from process_helpers import (
    TOKEN_ENV,
    cloud_channel,
    flowspec_argv,
    scalar,
    subprocess_env,
    wait_for,
    write_config,
)
from reconciler_helpers import invoke

from reconciler.standin import Fault, StandIn

pytestmark = pytest.mark.xdist_group("processes")
NOW = "2026-03-02T09:05:00Z"


def test_breaker_is_listed_then_resumed_and_the_execution_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """131048 (spam-rate limit) pauses the execution and opens the breaker; `channel list` and
    `status` say so; `channel resume` closes it and enqueues the execution, which a worker then
    finishes: every contact gets exactly one message."""
    monkeypatch.setenv(TOKEN_ENV, "t")
    db = f"sqlite:///{tmp_path / 'state.db'}"
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    with StandIn(token="t") as api:
        api.add_fault(Fault(code=131048, times=1))
        root = write_config(tmp_path / "config", automations={"promo": {}}, contacts=3,
                            channel=cloud_channel(api.base_url))
        ran = invoke("run", str(root), "--db", db, "--now", NOW, "--no-progress", cwd=tmp_path)
        assert ran.code == 0, ran.output
        assert "paused_circuit" in ran.out

        listed = invoke("channel", "list", str(root), "--db", db)
        assert listed.code == 0, listed.output
        line = next(x for x in listed.out.splitlines() if x.startswith("acme/out"))
        assert "OPEN since" in line and "131048" in line and "1 execution(s) paused" in line
        status = json.loads(invoke("status", str(root), "--db", db, "--format", "json").out)
        assert status["executions"]["open_circuits"][0]["code"] == "131048"

        resumed = invoke("channel", "resume", "out", "--db", db, "--queue", queue, cwd=tmp_path)
        assert resumed.code == 0, resumed.output
        assert "circuit closed" in resumed.out and "1 execution(s) resumed" in resumed.out
        again = invoke("channel", "resume", "out", "--db", db, "--queue", queue, cwd=tmp_path)
        assert "already closed" in again.out

        worker = subprocess.Popen(
            flowspec_argv("worker", "--db", db, "--queue", queue, "--config", str(root),
                          "--poll", "0.1"),
            cwd=tmp_path, env=subprocess_env(**{TOKEN_ENV: "t"}),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: scalar(db, "SELECT status FROM executions") == "finished",
                     timeout=60, what="the resumed execution to finish")
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0
        assert api.count_by_recipient() == {f"+5511{i:09d}": 1 for i in range(1, 4)}


def test_resume_of_an_unknown_channel_is_a_user_error(tmp_path: Path) -> None:
    """A channel name with no breaker: exit 1, and where to look."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    result = invoke("channel", "resume", "nope", "--db", db, cwd=tmp_path)
    assert result.code == 1
    assert "no circuit breaker for channel 'nope'" in result.err
