#!/usr/bin/env python3
"""One entry point for a fresh clone: `python3 dev.py demo`, `test` and `bench`.

Needs only python3: it creates `.venv`, installs the project with its test extras (again only
when pyproject.toml changed) and runs the job inside that environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def _ensure_env() -> None:
    if not PY.exists():
        print("dev: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".flowspec-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("dev: installing flowspec and its test dependencies into .venv", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"], check=True, cwd=ROOT
    )
    stamp.write_text(digest)


def _run(*argv: str) -> int:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(list(argv), cwd=ROOT, env=env).returncode


def demo() -> int:
    """Validate and plan the example automations, then run what is due on the embedded defaults."""
    steps = [
        [str(BIN / "flowspec"), "validate", "--strict", "automations"],
        [str(BIN / "flowspec"), "plan", "automations", "--days", "14"],
    ]
    if (ROOT / "reconciler" / "commands" / "run.py").exists():
        steps.append([str(BIN / "flowspec"), "run", "automations"])
    for step in steps:
        print("$ " + " ".join(["flowspec", *step[1:]]), flush=True)
        code = _run(*step)
        if code != 0:
            return code
    return 0


def test() -> int:
    """The whole suite: lint, types, then pytest (CI runs exactly this)."""
    for step in (
        [str(BIN / "ruff"), "check", "flowspec", "reconciler", "tests", "benchmarks", "dev.py"],
        [str(BIN / "mypy"), "flowspec", "reconciler", "benchmarks"],
        [str(PY), "-m", "pytest", "-n", "2", "--dist", "loadgroup", *sys.argv[2:]],
    ):
        print("$ " + " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)), flush=True)
        code = _run(*step)
        if code != 0:
            return code
    return 0


def bench() -> int:
    """Every benchmark in benchmarks/, each printing its figures and ratio to a same-run baseline.

    `python3 dev.py bench` runs the quick variants; `python3 dev.py bench --full` the full sizes
    the issues ask for; `python3 dev.py bench NAME...` only those (e.g. `compile apply`).
    """
    args = sys.argv[2:]
    full = "--full" in args
    names = [a for a in args if not a.startswith("-")]
    failed = 0
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        if names and script.stem.removeprefix("bench_") not in names:
            continue
        quick = [] if full or "--quick" not in script.read_text() else ["--quick"]
        print(f"$ python benchmarks/{script.name} {' '.join(quick)}".rstrip(), flush=True)
        failed += _run(str(PY), str(script), *quick) != 0
    return 1 if failed else 0


def main() -> int:
    jobs = {"demo": demo, "test": test, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in jobs:
        print("usage: python3 dev.py demo|test [pytest args]|bench [--full] [NAME...]", file=sys.stderr)
        return 1
    _ensure_env()
    return jobs[sys.argv[1]]()


if __name__ == "__main__":
    sys.exit(main())
