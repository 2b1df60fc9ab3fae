"""Benchmark: `flowspec diff --base` of two revisions vs two `flowspec plan` runs of the same trees.

A git repository with 1,000 automations (daily, weekly, monthly, cron, windowed with holidays),
a second commit that changes 5% of the automation files, and a 90-day range. Measured in the
same run, each as a fresh process (what a user or CI pays), median of several repeats:

  plan(old tree) + plan(new tree)     the baseline: computing both plans
  diff --base HEAD~1                  the diff (target: <= 1.2x the baseline)

and, in-process, how many automation plans the diff compiled: only the changed automations are
compiled (twice each), unchanged ones are skipped because their typed model is equal on both
sides.

    .venv/bin/python benchmarks/bench_diff.py [--quick] [--automations N] [--repeats N] [--share 0.05]

`--share 1` is the worst case (every automation changed, e.g. a Defaults change): then the diff
compiles both sides fully and the ratio shows the cost of comparing and rendering.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FROM = "2026-01-01"
DAYS = 90

COMMON = """\
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

SCHEDULES = [
    '{{recurrence_type: daily, start_date: 2025-06-01, start_time: "{hh:02d}:{mm:02d}", execution_timezone: America/Sao_Paulo}}',
    '{{recurrence_type: weekly, recurrence_config: {{days: [MON, WED, FRI]}}, start_date: 2025-06-01, start_time: "{hh:02d}:{mm:02d}", execution_timezone: Europe/Lisbon}}',
    '{{recurrence_type: monthly, recurrence_config: {{day: {day}}}, start_date: 2025-06-01, start_time: "{hh:02d}:{mm:02d}", execution_timezone: UTC}}',
    '{{recurrence_type: cron, recurrence_config: {{expression: "{mm} {hh} * * MON-FRI"}}, start_date: 2025-06-01, execution_timezone: America/New_York}}',
    '{{recurrence_type: daily, start_date: 2025-06-01, start_time: "{hh:02d}:{mm:02d}", execution_timezone: America/Sao_Paulo, '
    'execution_window_start: "09:00", execution_window_end: "18:00", skip_holidays: true, skip_weekends: true, on_blocked_day: next_allowed}}',
]


def automation(i: int, changed: bool) -> str:
    hh, mm, day = 6 + i % 14, (i * 7) % 60, 1 + i % 28
    if changed:
        hh = (hh + 1) % 24
    schedule = SCHEDULES[i % len(SCHEDULES)].format(hh=hh, mm=mm, day=day)
    text = (
        "apiVersion: flowspec/v1\nkind: Automation\n"
        f"metadata: {{name: a{i:04d}, organization: acme}}\n"
        "spec:\n  flow: promo\n  whatsapp_number: main\n  audience: {contact_ids: [c1]}\n"
        '  variable_mapping: {discount: "10%"}\n'
        f"  schedule: {schedule}\n"
    )
    if changed and i % 2:
        text += "  exceptions:\n    - {exception_type: skip, start_date: 2026-02-16, reason: carnival}\n"
    return text


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def build(repo: Path, n: int, changed_share: float) -> tuple[Path, int]:
    """Two commits; HEAD changes `changed_share` of the automation files. Returns the old tree."""
    git(repo, "init", "-q", "-b", "main")
    root = repo / "automations"
    root.mkdir()
    (root / "common.yaml").write_text(COMMON)
    for i in range(n):
        (root / f"a{i:04d}.yaml").write_text(automation(i, False))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    old_tree = repo.parent / "old-tree"
    old_tree.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD", "automations"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
    step = max(1, round(1 / changed_share))
    changed = list(range(0, n, step))
    for i in changed:
        (root / f"a{i:04d}.yaml").write_text(automation(i, True))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"change {changed_share:.0%}")
    return old_tree / "automations", len(changed)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def in_process_counts(repo: Path, old_root: Path) -> tuple[int, int, int, float, float]:
    """(compiled by diff, automations, changed, diff library time, two-plans library time).

    Each measurement gets freshly loaded configs (the compiler caches per loaded entry), after a
    warm-up that fills the process-wide time zone and holiday tables for both.
    """
    sys.path.insert(0, str(ROOT))
    from flowspec.compiler import compile_plan
    from flowspec.config import load_config
    from flowspec.diff import diff

    start_at = datetime.fromisoformat(FROM).replace(tzinfo=UTC)
    end_at = start_at + timedelta(days=DAYS)

    def load() -> tuple[Any, Any]:
        return load_config([old_root]), load_config([repo / "automations"])

    def plans(old: Any, new: Any) -> None:
        for config in (old, new):
            for _ in compile_plan(config, start_at, end_at).automations:
                pass

    plans(*load())  # warm-up
    old, new = load()
    t0 = time.perf_counter()
    plans(old, new)
    t1 = time.perf_counter()
    old, new = load()
    t2 = time.perf_counter()
    result = diff(old, new, start_at, end_at)
    t3 = time.perf_counter()
    return result.compiled, len(new.automations), len(result.automations), t3 - t2, t1 - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 automations, 2 repeats")
    parser.add_argument("--automations", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--share", type=float, default=0.05, help="share of files changed (default 0.05)")
    args = parser.parse_args()
    n = args.automations or (200 if args.quick else 1000)
    repeats = args.repeats or (2 if args.quick else 5)
    flowspec = [sys.executable, "-m", "flowspec"]
    window = ["--from", FROM, "--days", str(DAYS), "--format", "json"]

    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        old_root, changed_files = build(repo, n, args.share)
        print(f"repo: {n} automations, {changed_files} files changed ({changed_files / n:.0%}), range {DAYS} days")

        plans, diffs, diffs_dirs = [], [], []
        for _ in range(repeats):
            a = timed([*flowspec, "plan", str(old_root), *window, "-o", os.devnull], repo)
            b = timed([*flowspec, "plan", "automations", *window, "-o", os.devnull], repo)
            plans.append(a + b)
            diffs.append(timed([*flowspec, "diff", "--base", "HEAD~1", "automations", *window, "-o", os.devnull], repo))
            diffs_dirs.append(timed([*flowspec, "diff", str(old_root), "automations", *window, "-o", os.devnull], repo))
        plan_t, diff_t, dirs_t = (statistics.median(x) for x in (plans, diffs, diffs_dirs))
        print(f"two plan runs (old + new tree), median of {repeats}: {plan_t:.2f} s")
        print(f"diff --base HEAD~1, median of {repeats}:            {diff_t:.2f} s   ratio {diff_t / plan_t:.2f}x (target <= 1.2x)")
        print(f"diff OLD NEW (two folders), median of {repeats}:     {dirs_t:.2f} s   ratio {dirs_t / plan_t:.2f}x")

        compiled, total, changed, lib_diff, lib_plans = in_process_counts(repo, old_root)
        print(
            f"in-process: diff compiled {compiled} automation plans for {changed} changed automations "
            f"(two plans compile {2 * total}); compile+compare {lib_diff:.2f} s vs compiling two plans {lib_plans:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
