"""`flowspec plan` end to end: the real CLI on a small config repo, every option and format."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import icalendar
import pytest
from cli_support import invoke, invoke_on_terminal

BASE = """\
apiVersion: flowspec/v1
kind: Flow
metadata: {name: hello, organization: acme}
spec:
  start: done
  nodes:
    done: {type: end}
---
apiVersion: flowspec/v1
kind: Channel
metadata: {name: main, organization: acme}
spec: {type: outbox, path: outbox/main.jsonl}
---
apiVersion: flowspec/v1
kind: Flow
metadata: {name: hello, organization: beta}
spec:
  start: done
  nodes:
    done: {type: end}
---
apiVersion: flowspec/v1
kind: Channel
metadata: {name: main, organization: beta}
spec: {type: outbox, path: outbox/beta.jsonl}
"""
DAILY = """\
apiVersion: flowspec/v1
kind: Automation
metadata: {name: daily, organization: acme}
spec:
  flow: hello
  whatsapp_number: main
  audience: {contact_ids: [c1]}
  schedule:
    recurrence_type: daily
    start_date: 2026-11-02
    start_time: "09:00"
    execution_timezone: America/Sao_Paulo
    skip_weekends: true
  exceptions:
    - {name: holiday-off, exception_type: skip, start_date: 2026-11-20, reason: Consciência Negra}
    - name: faster
      exception_type: modify
      start_date: 2026-11-10
      modified_config: {rate_limit_per_hour: 3000}
    - {name: moved, exception_type: reschedule, start_date: "2026-11-12T09:00", rescheduled_to: "2026-11-13T15:00"}
"""
WEEKLY = """\
apiVersion: flowspec/v1
kind: Automation
metadata: {name: weekly, organization: beta}
spec:
  flow: hello
  whatsapp_number: main
  audience: {contact_ids: [c1]}
  schedule:
    recurrence_type: weekly
    recurrence_config: {days: [MON]}
    start_date: 2026-11-02
    start_time: "14:00"
    execution_timezone: Europe/Lisbon
    is_paused: true
"""
RANGE = ("--from", "2026-11-01", "--to", "2026-12-01")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A config repo with automations/ holding two automations (one paused) and their refs."""
    folder = tmp_path / "automations"
    folder.mkdir()
    (folder / "base.yaml").write_text(BASE)
    (folder / "daily.yaml").write_text(DAILY)
    (folder / "weekly.yaml").write_text(WEEKLY)
    return tmp_path


def test_text_plan_of_the_default_folder(repo: Path) -> None:
    """Without PATHS plan reads automations/ and prints one aligned line per occurrence."""
    result = invoke("plan", *RANGE, cwd=repo)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("flowspec plan  range 2026-11-01T00:00:00Z .. 2026-12-01T00:00:00Z  tzdata ")
    assert "acme/daily  America/Sao_Paulo  automations/daily.yaml" in lines
    assert "  20 scheduled, 9 skipped (not listed; --include-skipped lists them)" in lines
    assert (
        "  2026-11-12T09:00  Fri 2026-11-13 15:00 -03:00  2026-11-13T18:00:00Z  scheduled  "
        'detail="moved" moved_by=reschedule moved_from=2026-11-12T12:00:00Z'
    ) in lines
    assert any(line.startswith("  2026-11-10T09:00") and 'overrides={"rate_limit_per_hour":3000}' in line for line in lines)
    assert "  2026-11-02T14:00  Mon 2026-11-02 14:00 +00:00  2026-11-02T14:00:00Z  paused" in lines
    assert "reason=weekend" not in result.out


def test_include_skipped_lists_skipped_with_reasons(repo: Path) -> None:
    """--include-skipped adds the skipped occurrences with their reason and detail."""
    out = invoke("plan", *RANGE, "--include-skipped", cwd=repo).out
    assert "  2026-11-20T09:00  Fri 2026-11-20 09:00 -03:00  2026-11-20T12:00:00Z  skipped    reason=exception" in out
    assert out.count("reason=weekend") == 8


def test_text_is_byte_stable_whatever_the_file_order(repo: Path, tmp_path: Path) -> None:
    """The same config gives the same bytes: run twice, files named in another order, documents reordered."""
    first = invoke("plan", *RANGE, "--include-skipped", cwd=repo).out
    assert invoke("plan", *RANGE, "--include-skipped", cwd=repo).out == first
    files = ["automations/weekly.yaml", "automations/daily.yaml", "automations/base.yaml"]
    assert invoke("plan", *files, *RANGE, "--include-skipped", cwd=repo).out == first
    shuffled = repo / "automations" / "base.yaml"
    shuffled.write_text("---\n".join(reversed(BASE.split("---\n"))))
    assert invoke("plan", *RANGE, "--include-skipped", cwd=repo).out == first


def test_json_is_the_contract(repo: Path) -> None:
    """--format json prints flowspec.plan/v1 with range, inputs and every status."""
    from flowspec.compiler import plan_inputs

    result = invoke("plan", *RANGE, "--format", "json", cwd=repo)
    data = json.loads(result.out)
    inputs = plan_inputs()
    assert data["format"] == "flowspec.plan/v1"
    assert data["range"] == {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    assert data["inputs"] == {"tzdata": inputs.tzdata, "holidays": inputs.holidays}
    assert [(a["organization"], a["name"]) for a in data["automations"]] == [("acme", "daily"), ("beta", "weekly")]
    statuses = {o["status"] for a in data["automations"] for o in a["occurrences"]}
    assert statuses == {"scheduled", "skipped", "paused"}
    assert all("dst" in o for a in data["automations"] for o in a["occurrences"])
    assert result.out.endswith("}\n")


def test_count_alone_keeps_ten_over_ninety_days(repo: Path) -> None:
    """--count alone is the original preview: 10 scheduled per automation, range 90 days."""
    data = json.loads(invoke("plan", "--from", "2026-11-01", "--count", "--format", "json", cwd=repo).out)
    assert data["range"] == {"from": "2026-11-01T00:00:00Z", "to": "2027-01-30T00:00:00Z"}
    daily = data["automations"][0]["occurrences"]
    assert sum(o["status"] == "scheduled" for o in daily) == 10
    assert daily[-1]["status"] == "scheduled"
    two = json.loads(invoke("plan", *RANGE, "--count", "2", "--format", "json", cwd=repo).out)
    assert [o["key"] for o in two["automations"][0]["occurrences"]] == [
        "acme/daily/2026-11-02T09:00",
        "acme/daily/2026-11-03T09:00",
    ]


def test_days_and_now_set_the_range(repo: Path) -> None:
    """--now replaces the clock for the default --from, --days sets the length, offsets are honoured."""
    out = invoke("plan", "--now", "2026-11-05T10:00:00Z", "--days", "3", "--format", "json", cwd=repo).out
    assert json.loads(out)["range"] == {"from": "2026-11-05T10:00:00Z", "to": "2026-11-08T10:00:00Z"}
    out = invoke("plan", "--from", "2026-11-05T09:00-03:00", "--format", "json", cwd=repo).out
    assert json.loads(out)["range"] == {"from": "2026-11-05T12:00:00Z", "to": "2026-12-05T12:00:00Z"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--to", "2026-12-01", "--days", "3"), "--to and --days both set the end of the range"),
        (("--from", "2026-12-01", "--to", "2026-11-01"), "the range is empty"),
        (("--from", "tomorrow"), "'tomorrow' is not a date or datetime"),
        (("--days", "0"), "--days"),
        (("--format", "yaml"), "--format"),
        (("--check", "plan.lock", "--output", "x"), "drop --output"),
        (("--from", "0001-01-01", "--days", "2"), "'0001-01-01' is outside the years 1900-2999"),
        (("--to", "9999-12-31T23:59:59Z"), "outside the years"),
        (("--now", "9999-12-30T00:00:00Z"), "outside the years"),
    ],
)
def test_bad_options_exit_1(repo: Path, args: tuple[str, ...], message: str) -> None:
    """Wrong options are the user's error: exit 1 with a message, never a traceback."""
    result = invoke("plan", *args, cwd=repo)
    assert result.code == 1 and message in result.err and result.out == ""


def test_invalid_config_prints_diagnostics_and_exits_1(repo: Path) -> None:
    """plan validates first: diagnostics go to stderr with file:line:col, nothing to stdout."""
    (repo / "automations" / "daily.yaml").write_text(DAILY.replace("America/Sao_Paulo", "America/Sao_Paul"))
    result = invoke("plan", *RANGE, cwd=repo)
    assert result.code == 1 and result.out == ""
    assert "automations/daily.yaml:12:25: error[FS104]" in result.err and "America/Sao_Paulo" in result.err
    assert "error: 1 error(s) in the config" in result.err


def test_automation_in_the_wrong_organization_suggests_the_right_one(repo: Path) -> None:
    """--automation ORG/NAME with a wrong organization suggests the ORG/NAME that exists."""
    r = invoke("plan", *RANGE, "--automation", "beta/daily", cwd=repo)
    assert r.code == 1
    assert "no automation named 'beta/daily' (did you mean 'acme/daily'?)" in r.err


def test_automation_filter(repo: Path) -> None:
    """--automation keeps the named automations (NAME or ORG/NAME); unknown names fail with a hint."""
    out = invoke("plan", *RANGE, "--automation", "beta/weekly", cwd=repo).out
    assert "beta/weekly  " in out and "acme/daily" not in out
    both = invoke("plan", *RANGE, "--automation", "weekly", "--automation", "daily", cwd=repo).out
    assert "beta/weekly  " in both and "acme/daily  " in both
    result = invoke("plan", *RANGE, "--automation", "dayly", cwd=repo)
    assert result.code == 1 and "no automation named 'dayly' (did you mean 'daily'?)" in result.err


def test_markdown_ics_calendar_and_html(repo: Path) -> None:
    """The other formats come out of the real CLI: markdown table, parseable ICS, grid, report."""
    markdown = invoke("plan", *RANGE, "--format", "markdown", cwd=repo).out
    assert "#### `acme/daily`" in markdown and "<details><summary>20 occurrences</summary>" in markdown

    ics = invoke("plan", *RANGE, "--format", "ics", cwd=repo).out
    events = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    assert len(events) == 20  # scheduled only: not skipped, not paused
    assert "acme.daily.2026-11-12T09:00@flowspec" in {str(e["UID"]) for e in events}

    grid = invoke("plan", *RANGE, "--format", "calendar", "--automation", "daily", cwd=repo).out
    assert " 8x  9* 10~ 11* 12  13> 14x" in grid and "\x1b[" not in grid

    html = invoke("plan", *RANGE, "--format", "html", cwd=repo).out
    assert html.startswith("<!DOCTYPE html>") and 'data-date="2026-11-20" class="skipped"' in html


def test_output_writes_the_file(repo: Path) -> None:
    """--output writes the rendering to a file (ICS keeps its CRLF) and nothing to stdout."""
    result = invoke("plan", *RANGE, "--format", "ics", "--output", "plan.ics", cwd=repo)
    assert result.code == 0 and result.out == "" and "wrote plan.ics" in result.err
    data = (repo / "plan.ics").read_bytes()
    assert data.startswith(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert data.decode() == invoke("plan", *RANGE, "--format", "ics", cwd=repo).out
    assert not [p for p in repo.iterdir() if p.name.startswith(".plan.ics")]


def test_check_passes_on_a_fresh_snapshot_and_fails_with_a_diff_when_stale(repo: Path) -> None:
    """--check: 0 when the snapshot matches; 1, a unified diff and the refresh command when not."""
    assert invoke("plan", *RANGE, "--output", "plan.lock", cwd=repo).code == 0
    ok = invoke("plan", "--check", "plan.lock", cwd=repo)  # range read back from the snapshot
    assert ok.code == 0 and ok.out == "ok: plan snapshot plan.lock is up to date\n"

    (repo / "automations" / "daily.yaml").write_text(DAILY.replace("start_date: 2026-11-20", "start_date: 2026-11-19"))
    stale = invoke("plan", "--check", "plan.lock", cwd=repo)
    assert stale.code == 1
    assert stale.out.startswith("--- plan.lock (committed)\n+++ plan.lock (current plan)\n@@ ")
    assert "\n-  2026-11-19T09:00  Thu 2026-11-19 09:00 -03:00" in stale.out
    assert "\n+  2026-11-20T09:00  Fri 2026-11-20 09:00 -03:00" in stale.out
    assert "error: plan snapshot plan.lock is out of date; refresh it with:" in stale.err
    refresh = stale.err.strip().splitlines()[-1].strip()
    assert refresh == (
        "flowspec plan automations --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --output plan.lock"
    )
    assert invoke(*shlex.split(refresh)[1:], cwd=repo).code == 0
    assert invoke("plan", "--check", "plan.lock", cwd=repo).code == 0


def test_check_works_for_every_format(repo: Path) -> None:
    """Any format can be the snapshot: json, ics (CRLF) and html check like text."""
    for fmt in ("json", "markdown", "ics", "calendar", "html"):
        snapshot = f"plan.{fmt}"
        assert invoke("plan", *RANGE, "--format", fmt, "--output", snapshot, cwd=repo).code == 0
        result = invoke("plan", "--format", fmt, "--check", snapshot, cwd=repo)
        assert result.code == 0, (fmt, result.out[:500])
        assert invoke("plan", "--format", fmt, "--check", snapshot, "--days", "7", cwd=repo).code == 1


def test_check_of_a_missing_snapshot_says_how_to_create_it(repo: Path) -> None:
    """A snapshot that does not exist is a user error naming the command that creates it."""
    result = invoke("plan", "--check", "missing.lock", cwd=repo)
    assert result.code == 1 and "snapshot missing.lock does not exist" in result.err


def test_help_describes_every_option() -> None:
    """--help documents each option of SPEC 3 and the snapshot workflow."""
    out = invoke("plan", "--help").out
    for option in ("--from", "--to", "--days", "--count", "--format", "--automation", "--include-skipped",
                   "--now", "--check", "--output", "text|json|markdown|ics|calendar|html", "plan.lock"):
        assert option in out


def test_calendar_colour_on_a_terminal_only_and_never_with_no_color(repo: Path) -> None:
    """plan --format calendar colours a terminal, not a pipe, and not when NO_COLOR is set;
    the day markers are there either way."""
    args = ["plan", *RANGE, "--format", "calendar", "--automation", "daily"]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = invoke_on_terminal(*args, cwd=repo, env=env)
    assert "\x1b[" in coloured and "*" in coloured
    plain = invoke_on_terminal(*args, cwd=repo, env={**env, "NO_COLOR": "1"})
    assert "\x1b[" not in plain and "*" in plain
    piped = subprocess.run([sys.executable, "-m", "flowspec", *args], cwd=repo, capture_output=True, text=True, env=env)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout and "*" in piped.stdout
