"""`flowspec serve` as a real subprocess: dispatch when due, status webhooks, /healthz,
/metrics, the dashboard, re-apply on file change, and a clean SIGTERM."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from process_helpers import (
    TOKEN_ENV,
    automation_doc,
    cloud_channel,
    flowspec_argv,
    read,
    scalar,
    subprocess_env,
    wait_for,
    write_config,
)
from reconciler_helpers import invoke

from reconciler.metrics import parse
from reconciler.standin import StandIn, Status

pytestmark = pytest.mark.xdist_group("processes")
SECRET_ENV = "FLOWSPEC_TEST_APP_SECRET"


class Served:
    """A `flowspec serve` child whose JSON log lines are collected from stderr."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, text=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(line))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [x for x in list(self.lines) if x.get("event") == name]

    @property
    def url(self) -> str:
        started = wait_for(lambda: self.events("started") or self.proc.poll() is not None,
                           timeout=60, what="serve to start")
        assert self.proc.poll() is None, "".join(self.raw)
        return f"http://127.0.0.1:{started[0]['port']}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self._reader.join(10)
        return code


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_serve_dispatches_takes_webhooks_reports_and_reapplies(tmp_path: Path) -> None:
    """The occurrence due a few seconds after start is dispatched and sent by the embedded
    workers; signed delivered/read webhooks (shuffled, duplicated) move the messages forward and
    a mis-signed one changes nothing; /healthz, /metrics and the dashboard answer; a new file is
    applied and a broken one is not; SIGTERM exits 0."""
    due = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    once = {"schedule": {"recurrence_type": "once", "start_date": due.strftime("%Y-%m-%dT%H:%M:%S")}}
    with StandIn(token="t") as api:
        channel = {**cloud_channel(api.base_url), "app_secret_env": SECRET_ENV}
        root = write_config(tmp_path / "config", contacts=3, channel=channel,
                            automations={"soon": once})
        db = f"sqlite:///{tmp_path / 'state.db'}"
        # Applied before the service starts, so the occurrence is pending however slowly the
        # child starts; serve's own first apply then finds nothing to change.
        assert invoke("apply", str(root), "--db", db, cwd=tmp_path).code == 0
        served = Served(
            flowspec_argv("serve", str(root), "--db", db, "--queue", f"sqlite:///{tmp_path / 'q.db'}",
                          "--port", "0", "--interval", "0.2", "--with-workers", "2",
                          "--log-format", "json"),
            cwd=tmp_path, env=subprocess_env(**{TOKEN_ENV: "t", SECRET_ENV: "s"}),
        )
        try:
            base = served.url
            assert _get(f"{base}/healthz")[0] == 200

            wait_for(lambda: scalar(db, "SELECT status FROM executions") == "finished",
                     timeout=60, what="the due occurrence to be dispatched and sent",
                     detail=lambda: "".join(served.raw))
            assert len(api.messages) == 3
            hook = f"{base}/webhooks/whatsapp"
            statuses = [Status(m.id, name, m.to) for m in api.messages for name in ("delivered", "read")]
            assert set(api.send_statuses(hook, "wrong-secret", statuses[:1])) != {200}
            assert scalar(db, "SELECT count(*) FROM messages WHERE status = 'delivered'") == 0
            codes = api.send_statuses(hook, "s", statuses, shuffle=True, duplicate=True)
            assert set(codes) == {200}
            wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE status = 'read'") == 3,
                     timeout=60, what="delivered/read webhooks to be applied")

            status, text = _get(f"{base}/metrics")
            metrics = parse(text)
            assert status == 200
            assert metrics['flowspec_messages_sent_total{channel="out",organization="acme"}'] == 3
            assert metrics['flowspec_executions{status="finished"}'] == 1
            assert "flowspec_queue_depth" in metrics and "flowspec_dispatch_lag_seconds" in metrics
            page = _get(f"{base}/")[1]
            assert "acme/soon" in page and "<table>" in page

            later = automation_doc("later", {})
            (root / "later.yaml").write_text(json.dumps(later))
            wait_for(lambda: read(db, "SELECT name FROM automations WHERE name = 'later'"),
                     timeout=60, what="the new file to be applied")
            (root / "broken.yaml").write_text("apiVersion: flowspec/v1\nkind: Automation\n")
            wait_for(lambda: served.events("apply_rejected"), timeout=60,
                     what="the broken file to be rejected")
            assert _get(f"{base}/healthz")[0] == 200
        finally:
            code = served.stop()
    assert code == 0, "".join(served.raw)
    assert served.events("stopped")
    assert not any("Traceback" in line for line in served.raw), "".join(served.raw)


def test_serve_names_a_busy_port(tmp_path: Path) -> None:
    """A port already in use is a user error naming it (exit 1), not a traceback."""
    import socket

    root = write_config(tmp_path / "config", automations={})
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            flowspec_argv("serve", str(root), "--db", f"sqlite:///{tmp_path / 's.db'}",
                          "--port", str(port)),
            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
