"""`flowspec validate` on 1,000 realistic automation files vs bare libyaml parsing of the same files.

Run: `.venv/bin/python benchmarks/bench_validate.py [--quick] [--files N] [--rounds R]`.

The floor is what no validator can beat: reading every file and `yaml.load(..., CSafeLoader)`
(libyaml parsing plus PyYAML's constructor, no checks, no locations). It is measured twice:
in-process (parsing only) and as a child process that imports yaml and parses (parsing plus
interpreter start-up, the fair comparison for a CLI). `validate` is the real CLI in a child
process: start-up, imports, loading with locations, models, semantic and compiler checks,
output. Rounds alternate floor and validate so machine noise hits both alike; the best round
of each is reported. Target (issue 2): validate ≤ 3× the floor.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

ZONES = ["America/Sao_Paulo", "Europe/Lisbon", "America/New_York", "Asia/Kolkata", "UTC"]
DAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


# Black Friday and Cyber Monday 2026 are a Friday and a Monday: every daily, weekday-cron and
# custom schedule here has an occurrence on both, so the exceptions match (no FS304 noise).
EXCEPTIONS = """\
  exceptions:
    - name: black-friday
      exception_type: skip
      start_date: 2026-11-27
      reason: Black Friday - special campaign day
    - name: cyber-monday
      exception_type: modify
      start_date: 2026-11-30
      end_date: 2026-11-30T23:59:59
      modified_config: {rate_limit_per_hour: 3000, max_concurrent_executions: 150}
"""


def automation(i: int, rng: random.Random) -> str:
    org = f"org{i % 10}"
    rtype = rng.choice(["daily", "weekly", "monthly", "cron", "custom", "once"])
    config = {
        "daily": "{interval: 1}",
        "weekly": f"{{days: [{', '.join(rng.sample(DAYS[:5], 3))}], interval: 1}}",
        "monthly": f"{{day: {rng.randint(1, 28)}, interval: 1}}",
        "cron": '{expression: "0 9 * * MON-FRI"}',
        "custom": '{dates: ["2026-11-27T09:00:00", "2026-11-30T14:00:00", "2026-12-01T10:00:00"]}',
        "once": "{}",
    }[rtype]
    return f"""\
# yaml-language-server: $schema=../schemas/automation.schema.json
apiVersion: flowspec/v1
kind: Automation
metadata:
  name: campaign-{i:04d}
  organization: {org}
  description: Generated campaign number {i} for the validate benchmark
  labels: {{team: growth, tier: "{i % 3}"}}
spec:
  flow: flow-{i % 20}
  whatsapp_number: number-{i % 5}
  audience:
    contact_ids: [c-{i:04d}-1, c-{i:04d}-2, c-{i:04d}-3]
  variable_mapping:
    discount: "{rng.randint(5, 50)}%"
    topic: "{{{{contact.city}}}}: weekly news"
  schedule:
    recurrence_type: {rtype}
    recurrence_config: {config}
    start_date: 2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}
    start_time: "{rng.randint(8, 17):02d}:{rng.choice(["00", "30"])}"
    end_date: 2027-12-31
    execution_timezone: {rng.choice(ZONES)}
    execution_window_start: "08:00"
    execution_window_end: "20:00"
    outside_window: defer
    blackout_dates:
      - 2026-12-25
      - {{start: 2026-12-31, end: 2027-01-02, reason: year-end recess}}
    skip_weekends: {rng.choice(["true", "false"])}
    on_blocked_day: next_allowed
{EXCEPTIONS if rtype in ("daily", "cron", "custom") else ""}  delivery:
    rate_limit_per_hour: 1000
    max_concurrent_executions: 50
    retry: {{max_attempts: 5, initial_delay: 30s, max_delay: 1h, multiplier: 2, jitter: full}}
    catchup_window: 1h
"""


def flow(org: str, i: int) -> str:
    return f"""\
apiVersion: flowspec/v1
kind: Flow
metadata: {{name: flow-{i}, organization: {org}}}
spec:
  variables: [discount, topic]
  start: greet
  nodes:
    greet: {{type: send_template, template: promo_{i}, language: pt_BR, params: ["{{{{contact.first_name}}}}", "{{{{discount}}}}"], next: wait1}}
    wait1: {{type: wait, duration: 2h, next: check}}
    check: {{type: condition, if: {{field: contact.tags, op: contains, value: vip}}, then: remind, else: done}}
    remind: {{type: send_text, text: "Last hours! {{{{discount}}}} off - {{{{topic}}}}", next: done}}
    done: {{type: end}}
"""


def channel(org: str, i: int) -> str:
    return f"""\
apiVersion: flowspec/v1
kind: Channel
metadata: {{name: number-{i}, organization: {org}}}
spec:
  type: whatsapp_cloud
  phone_number_id: "12345678{i:02d}"
  access_token_env: WA_TOKEN_{i}
  app_secret_env: WA_APP_SECRET
  messages_per_second: 80
"""


def generate(root: Path, n: int) -> list[Path]:
    rng = random.Random(42)
    paths = []
    for i in range(n):
        path = root / "automations" / f"campaign-{i:04d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(automation(i, rng))
        paths.append(path)
    for o in range(10):
        org = f"org{o}"
        for path, docs in (
            (root / "flows" / f"{org}.yaml", [flow(org, i) for i in range(20)]),
            (root / "channels" / f"{org}.yaml", [channel(org, i) for i in range(5)]),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("---\n".join(docs))
            paths.append(path)
    return paths


FLOOR_CHILD = """
import sys, yaml
from pathlib import Path
for p in sorted(Path(sys.argv[1]).rglob('*.yaml')):
    list(yaml.load_all(p.read_bytes(), Loader=yaml.CSafeLoader))
"""


def floor_in_process(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    return time.perf_counter() - start


def child(args: list[str], cwd: Path) -> tuple[float, str, int]:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, proc.stdout + proc.stderr, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 files, 2 rounds")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = (200, 2) if args.quick else (args.files, args.rounds)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = generate(root, n)
        size = sum(p.stat().st_size for p in paths)
        docs = sum(len(list(yaml.load_all(p.read_bytes(), Loader=yaml.CSafeLoader))) for p in paths)
        validate_cmd = [PYTHON, "-m", "flowspec", "validate", "--now", "2026-01-01T00:00:00Z", "."]
        floor_cmd = [PYTHON, "-c", FLOOR_CHILD, "."]
        child([PYTHON, "-c", "import flowspec.validate"], root)  # warm the bytecode cache

        best = {"floor": float("inf"), "floor_child": float("inf"), "validate": float("inf")}
        output, code = "", 0
        for _ in range(rounds):
            best["floor"] = min(best["floor"], floor_in_process(paths))
            best["floor_child"] = min(best["floor_child"], child(floor_cmd, root)[0])
            elapsed, output, code = child(validate_cmd, root)
            best["validate"] = min(best["validate"], elapsed)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        startup = min(child([PYTHON, "-c", "pass"], root)[0] for _ in range(3))

    last = output.strip().splitlines()[-1] if output.strip() else "(no output)"
    print(f"files: {len(paths)} ({n} automations + flows and channels), {docs} documents, {size / 1e6:.1f} MB")
    print(f"validate exit {code}: {last}")
    print(f"bare CSafeLoader parse, in-process:      {best['floor'] * 1000:8.0f} ms")
    print(f"bare CSafeLoader parse, child process:   {best['floor_child'] * 1000:8.0f} ms  (python start-up alone {startup * 1000:.0f} ms)")
    print(f"flowspec validate (CLI, child process):  {best['validate'] * 1000:8.0f} ms")
    print(f"ratio validate / in-process parse:       {best['validate'] / best['floor']:8.2f}x")
    # The target is for 1,000 files: at --quick's 200, validate's fixed start-up (imports,
    # schemas) weighs more than the parsing it is compared with, and the ratio reads higher.
    target = "target <= 3x" if n >= 1000 else "target <= 3x at 1,000 files; not judged here"
    print(f"ratio validate / child-process parse:    {best['validate'] / best['floor_child']:8.2f}x  ({target})")
    print(f"peak RSS of the largest child:           {peak_mb:8.0f} MB")
    if code != 0:
        print(output[-2000:])
        sys.exit(1)


if __name__ == "__main__":
    main()
