"""Helpers shared by the reconciler state tests: a config repository writer and row readers.

Documents are written as JSON, which is YAML 1.2, so no quoting rule can bite a test.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reconciler import db as dbmod

# Child processes of the engine tests import these helpers with only tests/reconciler on their
# path; cli_support lives one folder up.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_support import invoke, invoke_subprocess  # noqa: E402,F401 - re-exported to the reconciler tests

NOW = "2026-01-05T00:00:00Z"  # a Monday
NOW_DT = datetime(2026, 1, 5, tzinfo=UTC)
HORIZON = "10d"
ORGS = ("acme", "globex")


def _base_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for org in ORGS:
        docs.append({
            "apiVersion": "flowspec/v1", "kind": "Channel",
            "metadata": {"name": "out", "organization": org},
            "spec": {"type": "outbox", "path": f"outbox/{org}.jsonl", "messages_per_second": 80},
        })
        docs.append({
            "apiVersion": "flowspec/v1", "kind": "Flow",
            "metadata": {"name": "hello", "organization": org},
            "spec": {"start": "send", "nodes": {
                "send": {"type": "send_text", "text": "Hello", "next": "done"},
                "done": {"type": "end"},
            }},
        })
    return docs


def automation_doc(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A daily 09:00 UTC automation from 2026-01-01; `overrides` may hold `schedule` (merged),
    `exceptions`, `organization`, `delivery`."""
    o = dict(overrides or {})
    schedule = {
        "recurrence_type": "daily", "start_date": "2026-01-01", "start_time": "09:00",
        "execution_timezone": "UTC", **o.get("schedule", {}),
    }
    spec: dict[str, Any] = {
        "flow": "hello", "whatsapp_number": "out", "audience": {"contact_ids": ["c-1"]},
        "schedule": schedule,
    }
    if "exceptions" in o:
        spec["exceptions"] = o["exceptions"]
    if "delivery" in o:
        spec["delivery"] = o["delivery"]
    return {
        "apiVersion": "flowspec/v1", "kind": "Automation",
        "metadata": {"name": name, "organization": o.get("organization", "acme")},
        "spec": spec,
    }


def write_config(root: Path, automations: Mapping[str, Mapping[str, Any] | None]) -> Path:
    """(Re)write a config root holding exactly these automations."""
    if root.exists():
        for f in root.glob("*.yaml"):
            f.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / "base.yaml").write_text("\n---\n".join(json.dumps(d, indent=1) for d in _base_docs()))
    for name, overrides in automations.items():
        (root / f"{name}.yaml").write_text(json.dumps(automation_doc(name, overrides), indent=1))
    return root


def copy_config(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def apply_args(root: Path, url: str, *extra: str, now: str = NOW, horizon: str = HORIZON) -> list[str]:
    return ["apply", str(root), "--db", url, "--now", now, "--horizon", horizon, *extra]


def read(url: str, query: str | sa.Select[Any], **params: Any) -> list[dict[str, Any]]:
    """Rows of a query (SQL text or a SQLAlchemy select) as dicts, on a fresh engine."""
    engine = dbmod.create_engine(url)
    try:
        with engine.connect() as conn:
            statement = sa.text(query) if isinstance(query, str) else query
            return [dict(r._mapping) for r in conn.execute(statement, params)]
    finally:
        engine.dispose()


def execute(url: str, statement: str, **params: Any) -> None:
    engine = dbmod.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def occurrences(url: str) -> list[dict[str, Any]]:
    """Every occurrence row, by key, with times as aware UTC datetimes."""
    from reconciler.models import occurrences as table

    return read(url, sa.select(table).order_by(table.c.organization, table.c.key))


def automations(url: str) -> list[dict[str, Any]]:
    from reconciler.models import automations as table

    return read(url, sa.select(table).order_by(table.c.organization, table.c.name))


def revisions(url: str) -> list[dict[str, Any]]:
    from reconciler.models import revisions as table

    return read(url, sa.select(table).order_by(table.c.id))


def live(url: str) -> dict[str, tuple[datetime, str]]:
    """key -> (at, status) of every occurrence apply still manages (not cancelled)."""
    return {
        r["key"]: (r["at"], r["status"])
        for r in occurrences(url)
        if r["status"] in ("pending", "paused", "inactive")
    }


def by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in rows}
