"""Shared fixtures: real PostgreSQL/Redis that skip locally but fail in CI (helpers: cli_support)."""

from __future__ import annotations

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
