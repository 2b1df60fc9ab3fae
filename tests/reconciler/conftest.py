"""Fixtures for reconciler tests.

`db_url` is THE database fixture: every test that takes it runs twice, once on a SQLite file and
once on a fresh PostgreSQL database, so the embedded default and the scale-out database never
diverge. The database is migrated to head and empty. The PostgreSQL run skips when the server
is absent (and fails under FLOWSPEC_REQUIRE_SERVICES=1, as in CI). Use `sqlite_url` or
`postgres_url` (tests/conftest.py) for a test about one engine only.

`config_dir` writes a small, valid config repository (one outbox Channel, one Flow) that tests
add Automations to; `reconciler_helpers.py` beside this file has the row readers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler import db as dbmod


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty state database URL: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = dbmod.open_database(url, check=False)
    try:
        dbmod.upgrade(database.engine)
    finally:
        database.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL that does not exist yet (first use creates and migrates it)."""
    return f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def config_dir(tmp_path: Path) -> Callable[..., Path]:
    """`config_dir(**automations)`: a config root with each named Automation (a dict of spec
    overrides, merged over a daily 09:00 UTC schedule); returns the root."""
    from reconciler_helpers import write_config

    root = tmp_path / "config"

    def make(**automations: dict[str, Any] | None) -> Path:
        return write_config(root, automations)

    return make
