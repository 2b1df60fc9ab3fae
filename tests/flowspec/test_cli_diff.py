"""`flowspec diff`: two roots or a git revision, every format, exit codes, colour only on a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import invoke, invoke_on_terminal

RANGE = ("--from", "2026-01-01", "--days", "90")

COMMON = """
apiVersion: flowspec/v1
kind: Flow
metadata: {name: promo, organization: acme}
spec:
  variables: [discount]
  start: hi
  nodes:
    hi: {type: send_text, text: "Hi {{discount}}", next: done}
    done: {type: end}
---
apiVersion: flowspec/v1
kind: Channel
metadata: {name: main, organization: acme}
spec: {type: outbox, path: outbox.jsonl}
"""


def automation(name: str, schedule: str, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: flowspec/v1
        kind: Automation
        metadata: {{name: {name}, organization: acme}}
        spec:
          flow: promo
          whatsapp_number: main
          audience: {{contact_ids: [c1]}}
          variable_mapping: {{discount: "10%"}}
          schedule: {schedule}
        """) + extra


WEEKLY = '{recurrence_type: weekly, recurrence_config: {days: [MON]}, start_date: 2026-01-01, start_time: "09:00", execution_timezone: America/Sao_Paulo}'
DAILY = '{recurrence_type: daily, start_date: 2026-01-01, start_time: "08:00", execution_timezone: UTC}'


def root(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "common.yaml").write_text(COMMON)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def base_files() -> dict[str, str]:
    return {"weekly.yaml": automation("weekly", WEEKLY), "daily.yaml": automation("daily", DAILY)}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit holds automations/ with two automations."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    root(r / "automations", base_files())
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "one")
    return r


def test_two_roots_report_fields_and_folded_occurrences(tmp_path: Path) -> None:
    """OLD NEW: a changed time shows the field and one folded line for the whole weekly run."""
    old = root(tmp_path / "old", base_files())
    new_files = base_files()
    new_files["weekly.yaml"] = new_files["weekly.yaml"].replace('"09:00"', '"10:00"')
    new = root(tmp_path / "new", new_files)
    r = invoke("diff", str(old), str(new), *RANGE)
    assert r.code == 0, r.output
    assert "~ acme/weekly" in r.out
    assert '    ~ spec.schedule.start_time: "09:00" → "10:00"' in r.out
    assert "all 13 occurrences move +1h: MON 09:00 → MON 10:00 America/Sao_Paulo, 2026-01-05 … 2026-03-30" in r.out
    assert r.out.rstrip().splitlines()[-1] == "diff: 1 automation changed, 1 unchanged; occurrences +13 -13 ~0"


def test_added_automation_is_one_line_and_expand_lists_each(tmp_path: Path) -> None:
    """A new weekly automation folds to one line; --expand lists its 13 occurrences."""
    old = root(tmp_path / "old", {"daily.yaml": automation("daily", DAILY)})
    new = root(tmp_path / "new", base_files())
    r = invoke("diff", str(old), str(new), *RANGE)
    assert "    + 13 × MON 09:00 America/Sao_Paulo, 2026-01-05 … 2026-03-30" in r.out
    expanded = invoke("diff", str(old), str(new), *RANGE, "--expand")
    assert sum(1 for line in expanded.out.splitlines() if line.startswith("    + 2026-")) == 13


def test_exit_code_is_2_with_changes_and_0_without(tmp_path: Path) -> None:
    """--exit-code: 2 when something changed, 0 when nothing did; without it always 0."""
    old = root(tmp_path / "old", base_files())
    same = root(tmp_path / "same", base_files())
    other = root(tmp_path / "other", {"weekly.yaml": automation("weekly", WEEKLY)})
    assert invoke("diff", str(old), str(same), *RANGE, "--exit-code").code == 0
    assert invoke("diff", str(old), str(other), *RANGE, "--exit-code").code == 2
    assert invoke("diff", str(old), str(other), *RANGE).code == 0


def test_renamed_files_with_the_same_content_are_no_change(tmp_path: Path) -> None:
    """Moving documents to other files changes nothing."""
    old = root(tmp_path / "old", base_files())
    new = root(tmp_path / "new", {f"renamed-{k}": v for k, v in base_files().items()})
    r = invoke("diff", str(old), str(new), *RANGE, "--exit-code")
    assert r.code == 0
    assert r.out.rstrip().splitlines()[-1] == "diff: no changes (2 automations compared)"


def test_invalid_new_config_prints_diagnostics_and_exits_1(tmp_path: Path) -> None:
    """The new side is validated: an unknown timezone is reported with its location and exit 1."""
    old = root(tmp_path / "old", base_files())
    new_files = base_files()
    new_files["daily.yaml"] = new_files["daily.yaml"].replace("execution_timezone: UTC", "execution_timezone: Mars/Base")
    new = root(tmp_path / "new", new_files)
    r = invoke("diff", str(old), str(new), *RANGE)
    assert r.code == 1
    assert "daily.yaml:9:" in r.err and "Mars/Base" in r.err
    assert r.out == ""


def test_invalid_old_config_is_a_warning_and_the_diff_goes_on(tmp_path: Path) -> None:
    """A broken old side warns and diffs what loaded: the repaired automation reads as added."""
    bad = base_files()
    bad["daily.yaml"] = bad["daily.yaml"].replace("recurrence_type: daily", "recurrence_type: dialy")
    old = root(tmp_path / "old", bad)
    new = root(tmp_path / "new", base_files())
    r = invoke("diff", str(old), str(new), *RANGE)
    assert r.code == 0, r.output
    assert "warning: the old config" in r.err and "dialy" in r.err
    assert "+ acme/daily" in r.out


def test_json_markdown_and_html_formats(tmp_path: Path) -> None:
    """json follows flowspec.diff/v1, markdown is a PR comment, html a self-contained page."""
    old = root(tmp_path / "old", base_files())
    new = root(tmp_path / "new", {"weekly.yaml": automation("weekly", WEEKLY)})
    data = json.loads(invoke("diff", str(old), str(new), *RANGE, "--format", "json").out)
    assert data["format"] == "flowspec.diff/v1"
    assert data["range"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
    [removed] = data["automations"]
    assert (removed["name"], removed["change"], len(removed["occurrences"]["removed"])) == ("daily", "removed", 90)
    assert data["summary"]["automations"] == {"added": 0, "removed": 1, "changed": 0, "unchanged": 1}
    md = invoke("diff", str(old), str(new), *RANGE, "--format", "markdown").out
    assert "| − `acme/daily` | 0 | 90 | 0 | Thu 2026-01-01 08:00 +00:00 | — |" in md
    assert "<details><summary>" in md
    out = tmp_path / "report.html"
    r = invoke("diff", str(old), str(new), *RANGE, "--format", "html", "--output", str(out))
    assert r.code == 0 and r.out == ""
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "acme/daily" in html and "default-src 'none'" in html


def test_config_document_changes_name_what_they_affect(tmp_path: Path) -> None:
    """A Flow change is listed with its dotted path and the automations it affects."""
    old = root(tmp_path / "old", base_files())
    new = root(tmp_path / "new", base_files())
    (new / "common.yaml").write_text(COMMON.replace("Hi {{discount}}", "Hello {{discount}}"))
    r = invoke("diff", str(old), str(new), *RANGE)
    assert "~ Flow acme/promo (" in r.out and "affects acme/daily, acme/weekly" in r.out
    assert '    ~ spec.nodes.hi.text: "Hi {{discount}}" → "Hello {{discount}}"' in r.out
    assert "    ~ via Flow acme/promo" in r.out


def test_range_options_are_checked(tmp_path: Path) -> None:
    """--to with --days, a range that ends before it starts, or one beyond the years a schedule
    may use (an overflow, exit 3, before), is a usage error (exit 1)."""
    old = root(tmp_path / "old", base_files())
    assert invoke("diff", str(old), str(old), "--from", "2026-01-01", "--to", "2026-02-01", "--days", "3").code == 1
    assert invoke("diff", str(old), str(old), "--from", "2026-02-01", "--to", "2026-01-01").code == 1
    assert invoke("diff", str(old)).code == 1
    for args in (("--days", "99999999"), ("--now", "9999-12-31"), ("--from", "0001-01-01")):
        r = invoke("diff", str(old), str(old), *args)
        assert r.code == 1 and "Traceback" not in r.output and args[0] in r.err


def test_base_reads_git_objects_and_leaves_the_working_tree_alone(repo: Path) -> None:
    """--base REF compares the committed config with the files on disk; git status is unchanged."""
    weekly = repo / "automations" / "weekly.yaml"
    weekly.write_text(weekly.read_text().replace("days: [MON]", "days: [MON, FRI]"))
    (repo / "automations" / "daily.yaml").unlink()
    status = git(repo, "status", "--porcelain")
    r = invoke("diff", "--base", "main", *RANGE, cwd=repo)
    assert r.code == 0, r.output
    assert "~ acme/weekly (automations/weekly.yaml, America/Sao_Paulo)" in r.out
    assert '    ~ spec.schedule.recurrence_config.days: ["MON"] → ["MON","FRI"]' in r.out
    assert "    + 13 × FRI 09:00 America/Sao_Paulo, 2026-01-02 … 2026-03-27" in r.out
    assert "- acme/daily (automations/daily.yaml, UTC)" in r.out
    assert git(repo, "status", "--porcelain") == status


def test_base_from_a_subfolder_with_explicit_paths(repo: Path) -> None:
    """Paths are relative to the current folder, wherever it is in the repository."""
    (repo / "automations" / "daily.yaml").unlink()
    r = invoke("diff", "--base", "HEAD", ".", *RANGE, cwd=repo / "automations")
    assert r.code == 0, r.output
    assert "- acme/daily (daily.yaml, UTC)" in r.out


def test_base_rename_only_commit_is_no_change(repo: Path) -> None:
    """A commit that only renames a file diffs to nothing against its parent."""
    git(repo, "mv", "automations/weekly.yaml", "automations/renamed.yaml")
    git(repo, "commit", "-q", "-m", "rename")
    r = invoke("diff", "--base", "HEAD~1", *RANGE, "--exit-code", cwd=repo)
    assert r.code == 0
    assert "no changes" in r.out


def test_unknown_revision_and_no_repository_are_user_errors(repo: Path, tmp_path: Path) -> None:
    """A bad REF or a folder outside git exits 1 with a message, never a traceback."""
    r = invoke("diff", "--base", "xyz", *RANGE, cwd=repo)
    assert r.code == 1 and "unknown git revision 'xyz'" in r.err
    r = invoke("diff", "--base", "--upload-pack=evil", *RANGE, cwd=repo)
    assert r.code == 1 and "unknown git revision" in r.err
    outside = root(tmp_path / "plain", base_files())
    r = invoke("diff", "--base", "main", str(outside), *RANGE, cwd=tmp_path)
    assert r.code == 1 and "not inside" in r.err and "Traceback" not in r.output


def test_base_without_the_folder_at_that_revision_adds_everything(repo: Path) -> None:
    """A config root created after REF: a note, and every automation counts as added."""
    root(repo / "more", {"x.yaml": automation("weekly", WEEKLY)})
    r = invoke("diff", "--base", "main", "more", *RANGE, cwd=repo)
    assert r.code == 0, r.output
    assert "holds no YAML files at main" in r.err
    assert "+ acme/weekly (more/x.yaml, America/Sao_Paulo)" in r.out


def test_colour_on_a_terminal_only_and_never_with_no_color(tmp_path: Path) -> None:
    """ANSI colours on a TTY; none in a pipe and none when NO_COLOR is set."""
    old = root(tmp_path / "old", base_files())
    new = root(tmp_path / "new", {"weekly.yaml": automation("weekly", WEEKLY)})
    args = ["diff", str(old), str(new), *RANGE]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\x1b[" in invoke_on_terminal(*args, env=env)
    assert "\x1b[" not in invoke_on_terminal(*args, env={**env, "NO_COLOR": "1"})
    piped = subprocess.run([sys.executable, "-m", "flowspec", *args], capture_output=True, text=True, env=env)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout and "- acme/daily" in piped.stdout
