"""Shared fixtures: real PostgreSQL/Redis that skip locally but fail in CI (helpers: cli_support)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import POSTGRES_URL, REDIS_URL, ROOT, invoke, missing_service


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


def _redis_url_of_this_worker() -> str:
    """FLOWSPEC_TEST_REDIS_URL's database, counted down by the pytest-xdist worker number
    (gw0: 15, gw1: 14, ...): a test empties its database before and after itself, and two
    tests in parallel sharing one emptied each other's queue (and shared rate buckets)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base, _, db = REDIS_URL.rpartition("/")
    if not worker.isdigit() or not db.isdigit():
        return REDIS_URL
    return f"{base}/{max(0, int(db) - int(worker))}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of this test process's own, emptied before and after the test."""
    try:
        import redis
    except ImportError:  # pragma: no cover
        missing_service("redis (the Python client) is not installed")
    url = _redis_url_of_this_worker()
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        missing_service(f"Redis is not reachable at {url}: {exc}")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
