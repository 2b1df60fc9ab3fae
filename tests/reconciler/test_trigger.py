"""`flowspec trigger NAME`: a manual occurrence with its own key, under the same rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from process_helpers import outbox_lines, read, write_config
from reconciler_helpers import invoke

NOW = "2026-03-02T12:00:00Z"  # a Monday; the daily 09:00 UTC occurrence is long past

WAIT_FLOW = {"start": "send", "nodes": {
    "send": {"type": "send_template", "template": "hello", "language": "en", "next": "pause"},
    "pause": {"type": "wait", "duration": "1h", "next": "again"},
    "again": {"type": "send_template", "template": "hello", "language": "en", "next": "done"},
    "done": {"type": "end"},
}}


def _setup(tmp_path: Path, automations: dict[str, dict[str, Any]], **kw: Any) -> tuple[Path, str]:
    root = write_config(tmp_path / "config", automations=automations, **kw)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    applied = invoke("apply", str(root), "--db", url, "--now", NOW, cwd=tmp_path)
    assert applied.code == 0, applied.output
    return root, url


def _trigger(root: Path, url: str, name: str, *extra: str, now: str = NOW) -> Any:
    return invoke("trigger", name, "--db", url, "--run", "--config", str(root), "--now", now,
                  *extra, cwd=root.parent)


def test_trigger_records_a_manual_occurrence_and_runs_it(tmp_path: Path) -> None:
    """The occurrence is keyed `<org>/<name>/manual-<UTC timestamp>`, its execution is manual,
    and every contact gets the message."""
    root, url = _setup(tmp_path, {"promo": {}}, contacts=4)
    result = _trigger(root, url, "promo")
    assert result.code == 0, result.output
    assert "occurrence acme/promo/manual-20260302T120000Z" in result.out
    assert len(outbox_lines(tmp_path / "outbox" / "out.jsonl")) == 4
    occ = read(url, "SELECT o.status, e.manual, e.status AS ex FROM occurrences o "
                    "JOIN executions e ON e.occurrence_id = o.id WHERE o.key LIKE '%manual-%'")
    assert occ == [{"status": "dispatched", "manual": 1, "ex": "finished"}]


def test_trigger_accepts_org_slash_name_and_names_unknown_automations(tmp_path: Path) -> None:
    """ORG/NAME selects the organization; an automation that is not applied is a user error
    with a suggestion, never a traceback."""
    root, url = _setup(tmp_path, {"promo": {}})
    assert _trigger(root, url, "acme/promo").code == 0
    missing = _trigger(root, url, "prom", now="2026-03-02T12:00:05Z")
    assert missing.code == 1
    assert "no applied automation 'prom'" in missing.err and "promo" in missing.err


def test_trigger_respects_overlap_skip(tmp_path: Path) -> None:
    """While an execution of the automation runs (its flow waits 1h), a trigger under
    overlap_policy skip starts nothing and is recorded as skipped_overlap (exit 1)."""
    root, url = _setup(tmp_path, {"promo": {"delivery": {"overlap_policy": "skip"}}},
                       flow=WAIT_FLOW, contacts=2)
    first = _trigger(root, url, "promo")
    assert first.code == 0, first.output
    assert "running, continues at 2026-03-02T13:00" in first.out
    second = _trigger(root, url, "promo", now="2026-03-02T12:10:00Z")
    assert second.code == 1
    assert "skipped" in second.err
    rows = read(url, "SELECT key, status FROM occurrences WHERE key LIKE '%manual-%' ORDER BY key")
    assert [r["status"] for r in rows] == ["dispatched", "skipped_overlap"]
    assert len(outbox_lines(tmp_path / "outbox" / "out.jsonl")) == 2  # the first send only


def test_trigger_overlap_allow_runs_alongside(tmp_path: Path) -> None:
    """overlap_policy allow: the second trigger runs although the first is still running."""
    root, url = _setup(tmp_path, {"promo": {"delivery": {"overlap_policy": "allow"}}},
                       flow=WAIT_FLOW, contacts=2)
    assert _trigger(root, url, "promo").code == 0
    second = _trigger(root, url, "promo", now="2026-03-02T12:10:00Z")
    assert second.code == 0, second.output
    assert len(outbox_lines(tmp_path / "outbox" / "out.jsonl")) == 4


def test_trigger_waits_for_the_window_unless_ignore_window(tmp_path: Path) -> None:
    """Outside the execution window the manual execution waits for it to open and sends
    nothing; with --ignore-window it sends at once."""
    window = {"schedule": {"execution_window_start": "09:00", "execution_window_end": "10:00"},
              "delivery": {"overlap_policy": "allow"}}
    root, url = _setup(tmp_path, {"promo": window}, contacts=3)
    waiting = _trigger(root, url, "promo")
    assert waiting.code == 0, waiting.output
    assert "waiting_window" in waiting.out
    assert not outbox_lines(tmp_path / "outbox" / "out.jsonl")
    forced = _trigger(root, url, "promo", "--ignore-window", now="2026-03-02T12:00:01Z")
    assert forced.code == 0, forced.output
    assert len(outbox_lines(tmp_path / "outbox" / "out.jsonl")) == 3
    ex = read(url, "SELECT status, resume_at FROM executions ORDER BY id")
    assert ex[0]["status"] == "waiting_window" and ex[0]["resume_at"].startswith("2026-03-03 09:00")
    assert ex[1]["status"] == "finished"
