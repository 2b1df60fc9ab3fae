"""`flowspec run`: apply, dispatch what is due and drain it in-process, on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

from process_helpers import copy_examples, outbox_lines, read, write_config
from reconciler_helpers import invoke

# 11:30 UTC on a Wednesday: daily-checkin's 08:00 São Paulo (11:00 UTC) occurrence is 30 min
# late, inside its 24 h catch-up window; every other example's next send is later today.
NOW = "2026-12-02T11:30:00Z"


def test_run_sends_the_due_example_to_the_csv_audience(tmp_path: Path) -> None:
    """On a fresh SQLite file, run applies automations/, starts the one due occurrence, writes
    one outbox line per CSV contact that has not opted out, and prints the stats."""
    copy_examples(tmp_path / "automations")
    result = invoke("run", "automations", "--now", NOW, "--no-progress", cwd=tmp_path)
    assert result.code == 0, result.output
    lines = outbox_lines(tmp_path / "outbox" / "main-br.jsonl")
    assert sorted(m["to"] for m in lines) == [
        "+5511999990001", "+5511999990002", "+5521999990003", "+5531999990004",
    ]  # c-005 opted out in the CSV
    assert {m["template"] for m in lines} == {"reminder_generic"}
    assert "dispatch: 1 started" in result.out
    assert "acme/daily-checkin 2026-12-02T11:00:00Z  finished" in result.out
    assert "4 sent, 0 failed, 1 opted out" in result.out
    assert "stats: sent 4, delivered 0, read 0, completed 4, failed 0, unknown 0" in result.out
    assert "messages written to outbox/main-br.jsonl" in result.out
    url = f"sqlite:///{tmp_path / 'flowspec.db'}"
    rows = read(url, "SELECT status, sent, completed FROM executions")
    assert rows == [{"status": "finished", "sent": 4, "completed": 4}]


def test_an_execution_still_waiting_shows_no_stats_yet(tmp_path: Path) -> None:
    """An execution whose recipients still wait in their flow ends the run `running`, with
    what it sent so far and no stats: those are written when it finishes (SPEC 6.9), and
    zeros beside "4 sent" would contradict it."""
    copy_examples(tmp_path / "automations")
    # 12:30 UTC: daily-promo's 09:00 São Paulo (12:00 UTC) send is due; its flow then waits.
    result = invoke("run", "automations", "--now", "2026-12-02T12:30:00Z", "--no-progress",
                    cwd=tmp_path)
    assert result.code == 0, result.output
    lines = result.out.splitlines()
    at = next(i for i, line in enumerate(lines)
              if line.startswith("execution ") and "  acme/daily-promo 2026-12-02T12:00:00Z  " in line)
    header, audience, stats = lines[at:at + 3]
    assert "running, continues at" in header
    assert "4 sent, 0 failed, 1 opted out" in audience
    assert stats == "  stats: written when the execution finishes (every recipient done)"
    url = f"sqlite:///{tmp_path / 'flowspec.db'}"
    assert read(url, "SELECT status, sent FROM executions WHERE status = 'running'") == [
        {"status": "running", "sent": 0}]


def test_second_run_sends_nothing_again(tmp_path: Path) -> None:
    """A second run at the same moment finds nothing due: the occurrence was dispatched once,
    and the outbox keeps exactly one line per recipient."""
    copy_examples(tmp_path / "automations")
    assert invoke("run", "automations", "--now", NOW, "--no-progress", cwd=tmp_path).code == 0
    again = invoke("run", "automations", "--now", NOW, "--no-progress", cwd=tmp_path)
    assert again.code == 0, again.output
    assert "nothing is due now; next: acme/" in again.out
    assert len(outbox_lines(tmp_path / "outbox" / "main-br.jsonl")) == 4


def test_run_outside_every_catchup_window_starts_nothing(tmp_path: Path) -> None:
    """An occurrence later than its catch-up window is missed, not run (SPEC 6.2)."""
    root = write_config(tmp_path / "config", automations={
        "late": {"delivery": {"catchup_window": "10m"}},
    })
    url = f"sqlite:///{tmp_path / 'state.db'}"
    result = invoke("run", str(root), "--db", url, "--now", "2026-03-02T09:30:00Z",
                    "--no-progress", cwd=tmp_path)
    assert result.code == 0, result.output
    assert "nothing is due now" in result.out
    assert not outbox_lines(tmp_path / "outbox" / "out.jsonl")


def test_run_within_the_catchup_window_starts_the_late_occurrence(tmp_path: Path) -> None:
    """An occurrence 20 minutes late with a 1h catch-up window runs although apply alone
    (which starts at now) would not have written it."""
    root = write_config(tmp_path / "config", contacts=5, automations={"late": {}})
    url = f"sqlite:///{tmp_path / 'state.db'}"
    result = invoke("run", str(root), "--db", url, "--now", "2026-03-02T09:20:00Z",
                    "--no-progress", cwd=tmp_path)
    assert result.code == 0, result.output
    assert len(outbox_lines(tmp_path / "outbox" / "out.jsonl")) == 5
    occ = read(url, "SELECT key, status FROM occurrences WHERE status != 'pending'")
    assert occ == [{"key": "acme/late/2026-03-02T09:00", "status": "dispatched"}]


def test_run_with_config_errors_applies_and_sends_nothing(tmp_path: Path) -> None:
    """Invalid files: the errors are printed with their location, exit 1, no revision."""
    root = write_config(tmp_path / "config", automations={"late": {"flow": "no-such-flow"}})
    url = f"sqlite:///{tmp_path / 'state.db'}"
    result = invoke("run", str(root), "--db", url, "--now", "2026-03-02T09:20:00Z", cwd=tmp_path)
    assert result.code == 1
    assert "no-such-flow" in result.err
    assert "nothing was applied" in result.err
    assert read(url, "SELECT count(*) AS n FROM revisions") == [{"n": 0}]
