"""Helpers every test may import (`from cli_support import invoke`): the real CLI in-process or
in a child process, and the rule for a missing service.

They live here rather than in conftest.py because tests/reconciler has a conftest.py too, and
`from conftest import ...` would get whichever of the two was imported first.
`FLOWSPEC_REQUIRE_SERVICES=1` (set by .ci/run) turns a missing service from a skip into a
failure, so a green CI never hides an untested backend.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("FLOWSPEC_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get(
    "FLOWSPEC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("FLOWSPEC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def missing_service(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (FLOWSPEC_REQUIRE_SERVICES=1: services are required here)")
    pytest.skip(reason)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def invoke(*args: str, cwd: Path | None = None) -> CliResult:
    """Run the real `flowspec` command in-process, through its error boundary."""
    from flowspec.cli import run

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(list(args))
    finally:
        os.chdir(old)
    return CliResult(code, out.getvalue(), err.getvalue())


def invoke_subprocess(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> CliResult:
    """Run `python -m flowspec` in a child process: the real entry point, real exit code."""
    proc = subprocess.run(
        [sys.executable, "-m", "flowspec", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)




def invoke_on_terminal(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run `python -m flowspec` with a pseudo-terminal as stdout and return what it wrote
    (colour and progress decisions depend on a real TTY, which in-process runs cannot fake)."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "flowspec", *args], cwd=cwd, stdout=follower,
                            stderr=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()
