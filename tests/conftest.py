"""Shared fixtures: the real CLI, and real PostgreSQL/Redis that skip locally but fail in CI.

`FLOWSPEC_REQUIRE_SERVICES=1` (set by .ci/run) turns a missing service from a skip into a
failure, so a green CI never hides an untested backend.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
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


@pytest.fixture
def cli() -> object:
    return invoke


@pytest.fixture
def examples() -> Path:
    return ROOT / "automations"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a test dependency
        missing_service("psycopg is not installed")
    url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except Exception as exc:
        missing_service(f"PostgreSQL is not reachable at {url}: {exc}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    admin = postgres_server_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"flowspec_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database emptied before and after the test."""
    try:
        import redis
    except ImportError:  # pragma: no cover
        missing_service("redis (the Python client) is not installed")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        missing_service(f"Redis is not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
