"""CI integration as shipped: the example workflow's flowspec commands and the pre-commit hooks,
run exactly as written against a real git repository with a base branch and a pull-request commit."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import ROOT

WORKFLOW = ROOT / "examples" / "github-actions" / "flowspec.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent  # the environment's `flowspec` entry point
INVOKES_FLOWSPEC = re.compile(r"^\s*flowspec\s", re.M)

FILES = {
    "automations/common.yaml": """
        apiVersion: flowspec/v1
        kind: Flow
        metadata: {name: promo, organization: acme}
        spec:
          start: hi
          nodes:
            hi: {type: send_text, text: "Hi", next: done}
            done: {type: end}
        ---
        apiVersion: flowspec/v1
        kind: Channel
        metadata: {name: main, organization: acme}
        spec: {type: outbox, path: outbox.jsonl}
    """,
    "automations/weekly.yaml": """
        apiVersion: flowspec/v1
        kind: Automation
        metadata: {name: weekly, organization: acme}
        spec:
          flow: promo
          whatsapp_number: main
          audience: {contact_ids: [c1]}
          schedule:
            recurrence_type: weekly
            recurrence_config: {days: [MON]}
            start_date: 2024-01-01
            start_time: "09:00"
            execution_timezone: America/Sao_Paulo
    """,
    "automations/monthly.yaml": """
        apiVersion: flowspec/v1
        kind: Automation
        metadata: {name: monthly, organization: acme}
        spec:
          flow: promo
          whatsapp_number: main
          audience: {contact_ids: [c1]}
          schedule:
            recurrence_type: monthly
            recurrence_config: {day: 31}
            start_date: 2024-01-01
            start_time: "10:00"
            execution_timezone: UTC
    """,
}
PLAN_LOCK_ARGS = ["automations", "--from", "2026-01-01", "--days", "60", "--output", "plan.lock"]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
           "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def write(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def flowspec(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "flowspec"), *args], cwd=repo, capture_output=True, text=True)


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: the config and its plan.lock; branch `change` (checked out): a pull request that moves
    the weekly send to 10:00 and adds a daily automation, with plan.lock refreshed; `origin/main`
    exists as after actions/checkout with fetch-depth: 0."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    write(r, FILES)
    assert flowspec(r, "plan", *PLAN_LOCK_ARGS).returncode == 0
    base = commit(r, "base config")
    git(r, "update-ref", "refs/remotes/origin/main", base)
    git(r, "checkout", "-q", "-b", "change")
    weekly = r / "automations" / "weekly.yaml"
    weekly.write_text(weekly.read_text().replace('"09:00"', '"10:00"'))
    daily = FILES["automations/weekly.yaml"].replace("weekly", "daily").replace(
        "recurrence_config: {days: [MON]}", "recurrence_config: {interval: 1}")
    write(r, {"automations/daily.yaml": daily})
    assert flowspec(r, "plan", *PLAN_LOCK_ARGS).returncode == 0
    commit(r, "move weekly to 10:00, add daily")
    return r


# --------------------------------------------------------------------------- the workflow


@dataclass
class StepRun:
    name: str
    code: int
    out: str
    err: str


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def flowspec_steps() -> list[dict[str, Any]]:
    steps = workflow()["jobs"]["preview"]["steps"]
    return [s for s in steps if "run" in s and INVOKES_FLOWSPEC.search(s["run"])]


def github_env(repo: Path, summary: Path) -> dict[str, str]:
    wf = workflow()
    return {
        **os.environ,
        **{k: str(v) for k, v in wf.get("env", {}).items()},
        **{k: str(v) for k, v in wf["jobs"]["preview"].get("env", {}).items()},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(repo),
        "GITHUB_BASE_REF": "main",
        "GITHUB_HEAD_REF": "change",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/campaigns",
        "GITHUB_RUN_ID": "4242",
    }


def run_workflow(repo: Path, summary: Path) -> list[StepRun]:
    """Each step that runs flowspec, as GitHub runs it: bash -eo pipefail, in the workspace,
    with the workflow's env and GitHub's variables; stops at the first failing step."""
    env = github_env(repo, summary)
    results = []
    for step in flowspec_steps():
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=repo, env={**env, **{k: str(v) for k, v in step.get("env", {}).items()}},
            capture_output=True, text=True, timeout=300,
        )
        results.append(StepRun(step["name"], proc.returncode, proc.stdout, proc.stderr))
        if proc.returncode != 0:
            break
    return results


def test_workflow_runs_only_plain_shell_around_flowspec() -> None:
    """The flowspec steps need no GitHub expression or condition, so running them here is faithful."""
    steps = flowspec_steps()
    assert [s["name"] for s in steps] == ["Validate", "Check the plan snapshot", "Diff against the base branch"]
    for s in steps:
        assert "${{" not in s["run"] and "if" not in s
    checkout = workflow()["jobs"]["preview"]["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0


def test_workflow_on_a_pull_request(repo: Path, tmp_path: Path) -> None:
    """Validate annotates, the snapshot check passes, the diff lands in the step summary, the
    comment file fits a PR comment, and the report files the later steps upload exist."""
    summary = tmp_path / "summary.md"
    head = git(repo, "rev-parse", "HEAD")
    results = run_workflow(repo, summary)
    assert [(r.name, r.code) for r in results] == [
        ("Validate", 0), ("Check the plan snapshot", 0), ("Diff against the base branch", 0)]
    validate = results[0]
    assert re.search(r"^::warning file=automations/monthly\.yaml,line=\d+,col=\d+,title=FS305::", validate.out, re.M)
    assert "plan snapshot plan.lock is up to date" in results[1].out

    text = summary.read_text()
    assert text.startswith("### flowspec diff")
    assert re.search(r"^\| ~ `acme/weekly` \| 13 \| 13 \| 0 \| Mon \S+ 09:00 -03:00 \| Mon \S+ 10:00 -03:00 \|$", text, re.M)
    assert re.search(r"^\| \+ `acme/daily` \| 90 \| 0 \| 0 \| — \| ", text, re.M)
    assert "all 13 occurrences move +1h: MON 09:00 → MON 10:00 America/Sao_Paulo" in text

    steps = {s.get("name"): s for s in workflow()["jobs"]["preview"]["steps"]}
    comment = repo / steps["Comment on the pull request"]["with"]["path"]
    assert comment.read_text() == text  # small enough: the comment is the whole report
    assert len(comment.read_text()) <= 65_536
    for name in steps["Upload the full report"]["with"]["path"].split():
        assert (repo / name).stat().st_size > 0
    assert (repo / "flowspec-diff.html").read_text().startswith("<!DOCTYPE html>")
    assert git(repo, "rev-parse", "HEAD") == head  # the workflow never moved the checkout


def test_workflow_stops_at_invalid_config_with_error_annotations(repo: Path, tmp_path: Path) -> None:
    """A pull request with an error gets an ::error annotation at the line and the job fails there."""
    weekly = repo / "automations" / "weekly.yaml"
    weekly.write_text(weekly.read_text().replace("America/Sao_Paulo", "America/Sao_Paul"))
    commit(repo, "typo")
    results = run_workflow(repo, tmp_path / "summary.md")
    assert [(r.name, r.code) for r in results] == [("Validate", 1)]
    assert re.search(
        r"^::error file=automations/weekly\.yaml,line=13,col=\d+,title=FS\d+::.*America/Sao_Paulo", results[0].out, re.M)
    assert not (tmp_path / "summary.md").exists()


def test_workflow_fails_on_a_stale_plan_snapshot(repo: Path, tmp_path: Path) -> None:
    """Changing the schedule without refreshing plan.lock fails the snapshot step."""
    weekly = repo / "automations" / "weekly.yaml"
    weekly.write_text(weekly.read_text().replace('"10:00"', '"11:00"'))
    commit(repo, "forgot plan.lock")
    results = run_workflow(repo, tmp_path / "summary.md")
    assert [(r.name, r.code) for r in results] == [("Validate", 0), ("Check the plan snapshot", 1)]
    assert "out of date" in results[1].err


def test_workflow_comment_is_truncated_with_a_link_to_the_full_report(repo: Path, tmp_path: Path) -> None:
    """A pull request adding 200 automations: the comment stays under 65,536 characters and says
    the full report is in this run; the step summary and the artifact markdown are complete."""
    template = FILES["automations/weekly.yaml"]
    # Names of the maximum length (63) make each table row and detail block long, so few
    # automations (each one compiled several times by the workflow) overflow the comment.
    names = [f"a{i:03d}-" + "x" * 58 for i in range(200)]
    write(repo, {f"automations/bulk/{n[:4]}.yaml": template.replace("name: weekly", f"name: {n}") for n in names})
    flowspec(repo, "plan", *PLAN_LOCK_ARGS)
    commit(repo, "many")
    summary = tmp_path / "summary.md"
    results = run_workflow(repo, summary)
    assert [r.code for r in results] == [0, 0, 0], results[-1].err
    comment = (repo / "flowspec-comment.md").read_text()
    assert len(comment) <= 65_536
    assert "**Truncated**" in comment
    assert "https://github.com/acme/campaigns/actions/runs/4242" in comment
    full = (repo / "flowspec-diff.md").read_text()
    assert len(full) > 65_536 and "Truncated" not in full
    assert summary.read_text() == full  # under the 1 MiB step-summary limit: complete


# --------------------------------------------------------------------------- pre-commit hooks


def hooks() -> dict[str, dict[str, Any]]:
    return {h["id"]: h for h in yaml.safe_load(HOOKS.read_text())}


def run_hook(repo: Path, hook_id: str) -> subprocess.CompletedProcess[str]:
    """A hook as pre-commit runs it with pass_filenames: false: its entry, then its args."""
    hook = hooks()[hook_id]
    argv = shlex.split(hook["entry"]) + list(hook.get("args", []))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)


def test_pre_commit_hooks_are_declared_for_the_whole_config_root() -> None:
    """Both hooks run once on the config root (documents refer to each other), as python hooks."""
    declared = hooks()
    assert set(declared) == {"flowspec-validate", "flowspec-plan-check"}
    for hook in declared.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
    assert declared["flowspec-plan-check"]["entry"] == "flowspec plan --check plan.lock"


def test_pre_commit_hooks_pass_then_catch_a_stale_snapshot_and_an_error(repo: Path) -> None:
    """On the pull-request commit both hooks pass; an unrefreshed change fails the snapshot hook;
    an invalid file fails validate."""
    assert run_hook(repo, "flowspec-validate").returncode == 0
    assert run_hook(repo, "flowspec-plan-check").returncode == 0
    weekly = repo / "automations" / "weekly.yaml"
    weekly.write_text(weekly.read_text().replace("days: [MON]", "days: [MON, TUE]"))
    stale = run_hook(repo, "flowspec-plan-check")
    assert stale.returncode == 1 and "out of date" in stale.stderr
    assert run_hook(repo, "flowspec-validate").returncode == 0
    weekly.write_text(weekly.read_text().replace("days: [MON, TUE]", "days: [MON, TUX]"))
    broken = run_hook(repo, "flowspec-validate")
    assert broken.returncode == 1 and "automations/weekly.yaml:" in broken.stdout + broken.stderr
