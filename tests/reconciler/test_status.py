"""`flowspec status` (SPEC 5): revisions, drift and per-automation state, text and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler_helpers import apply_args, execute, invoke

ConfigDir = Callable[..., Path]


def status_json(root: Path, url: str, *extra: str) -> dict[str, Any]:
    result = invoke("status", str(root), "--db", url, "--format", "json", *extra)
    assert result.code == 0, result.output
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def test_status_after_apply_reports_revision_and_each_automation(db_url: str, config_dir: ConfigDir) -> None:
    """After an apply: the applied revision, files in sync, next send and pending per automation."""
    root = config_dir(daily=None, paused={"schedule": {"is_paused": True}})
    assert invoke(*apply_args(root, db_url)).code == 0
    execute(db_url, "UPDATE automations SET execution_count = 4, last_executed_at = next_scheduled_at "
                    "WHERE name = 'daily'")
    doc = status_json(root, db_url)
    assert doc["format"] == "flowspec.status/v1"
    assert doc["applied_revision"]["id"] == 1 and doc["applied_revision"]["status"] == "applied"
    assert doc["applied_revision"]["changes"] == {"inserted": 20, "updated": 0, "cancelled": 0}
    assert doc["attempted_revision"] is None
    assert doc["drift"]["state"] == "in_sync"
    daily, paused = doc["automations"]
    assert (daily["name"], daily["state"], daily["pending_occurrences"]) == ("daily", "active", 10)
    assert daily["next_scheduled_at"] == "2026-01-05T09:00:00Z"
    assert daily["last_executed_at"] == "2026-01-05T09:00:00Z" and daily["execution_count"] == 4
    assert (paused["state"], paused["pending_occurrences"], paused["held_occurrences"]) == ("paused", 0, 10)
    assert paused["next_scheduled_at"] is None

    text = invoke("status", str(root), "--db", db_url).out
    assert "applied:  revision 1 (content sha256:" in text
    assert "files:    in sync with the applied revision" in text
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("acme/")}
    assert lines["acme/daily"][1:6] == ["active", "2026-01-05T09:00:00Z", "2026-01-05T09:00:00Z", "4", "10"]
    assert lines["acme/paused"][1] == "paused" and "(+10 held)" in text


def test_status_shows_drift_when_files_change_after_apply(db_url: str, config_dir: ConfigDir) -> None:
    """Editing a file after apply is reported as drift until the next apply."""
    root = config_dir(daily=None)
    assert invoke(*apply_args(root, db_url)).code == 0
    config_dir(daily={"schedule": {"start_time": "10:00"}})
    doc = status_json(root, db_url)
    assert doc["drift"]["state"] == "drifted"
    assert doc["drift"]["files_content_hash"] != doc["applied_revision"]["content_hash"]
    assert "DRIFTED" in invoke("status", str(root), "--db", db_url).out
    assert invoke(*apply_args(root, db_url)).code == 0
    assert status_json(root, db_url)["drift"]["state"] == "in_sync"


def test_status_keeps_attempted_and_applied_apart(db_url: str, config_dir: ConfigDir) -> None:
    """An unfinished apply shows as attempted next to the applied revision that is still live."""
    root = config_dir(daily=None)
    assert invoke(*apply_args(root, db_url)).code == 0
    execute(db_url, "INSERT INTO revisions (status, content_hash, git_dirty, inserted, updated, "
                    "cancelled, created_at) VALUES ('attempted', 'sha256:feed', false, 0, 0, 0, "
                    "'2026-01-05 00:00:00')")
    doc = status_json(root, db_url)
    assert doc["applied_revision"]["id"] == 1
    assert doc["attempted_revision"]["id"] == 2 and doc["attempted_revision"]["status"] == "attempted"
    text = invoke("status", str(root), "--db", db_url).out
    assert "attempted: revision 2" in text and "not finished" in text


def test_status_before_any_apply(sqlite_url: str, config_dir: ConfigDir) -> None:
    """On a database never applied to, status says so and creates no file."""
    root = config_dir(daily=None)
    doc = status_json(root, sqlite_url)
    assert doc["applied_revision"] is None and doc["drift"]["state"] == "not_applied"
    assert doc["automations"] == []
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()
    assert "applied:  none (run `flowspec apply`)" in invoke("status", str(root), "--db", sqlite_url).out


def test_status_filters_by_organization_and_lists_removed_on_request(db_url: str, config_dir: ConfigDir) -> None:
    """--organization scopes the automations listed; removed ones appear with --include-removed."""
    root = config_dir(daily=None, other={"organization": "globex"}, gone=None)
    assert invoke(*apply_args(root, db_url)).code == 0
    config_dir(daily=None, other={"organization": "globex"})
    assert invoke(*apply_args(root, db_url)).code == 0
    doc = status_json(root, db_url, "--organization", "globex")
    assert [a["name"] for a in doc["automations"]] == ["other"]
    doc = status_json(root, db_url, "--include-removed")
    assert {a["name"]: a["state"] for a in doc["automations"]} == {
        "daily": "active", "gone": "removed", "other": "active",
    }
    assert doc["removed_automations"] == 1
