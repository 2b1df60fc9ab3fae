"""Helpers for the engine tests: a config repository aimed at the stand-in API, applied with the
real `flowspec apply`, contacts in the database, a driven clock, and row readers.

Documents are JSON (valid YAML 1.2). Time is driven: the FakeClock's `sleep` advances it
instantly, so pacing, backoff and windows run through days in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from reconciler_helpers import invoke

from flowspec.config import load_config
from reconciler import db as dbmod
from reconciler.engine import EngineContext, EngineSettings, open_engine
from reconciler.models import contacts

ORG = "acme"
TOKEN = "test-token"
ENV = {"WA_TOKEN": TOKEN}
FAST = EngineSettings(lease_seconds=60, stale_seconds=10, batch_size=50, rate_horizon=1.0,
                      pass_budget=60, parallelism=2, pair_gap=6.0, mark_ahead=20)


class FakeClock:
    """A clock tests drive: `sleep` moves time on without waiting."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=max(0.0, seconds))
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> datetime:
        self.t += timedelta(seconds=seconds)
        return self.t


FLOWS: dict[str, dict[str, Any]] = {
    "hello": {"start": "greet", "nodes": {
        "greet": {"type": "send_text", "text": "Hello {{contact.first_name}}", "next": "done"},
        "done": {"type": "end"},
    }},
    "promo": {"variables": ["discount"], "start": "greet", "nodes": {
        "greet": {"type": "send_template", "template": "promo_bf", "language": "pt_BR",
                  "params": ["{{contact.first_name}}", "{{discount}}"], "next": "wait1"},
        "wait1": {"type": "wait", "duration": "2h", "next": "remind"},
        "remind": {"type": "send_text", "text": "Last hours! {{discount}} off", "next": "done"},
        "done": {"type": "end"},
    }},
    # Reads contact fields three ways: a condition on tags, an attribute in a text, and one
    # through a variable the automation maps from a contact field.
    "segmented": {"variables": ["who"], "start": "split", "nodes": {
        "split": {"type": "condition", "then": "vip", "else": "plain",
                  "if": {"field": "contact.tags", "op": "contains", "value": "vip"}},
        "vip": {"type": "send_text", "text": "VIP {{who}}", "next": "done"},
        "plain": {"type": "send_text", "text": "Hi {{contact.city}}!", "next": "done"},
        "done": {"type": "end"},
    }},
}


def channel_doc(base_url: str, phone_number_id: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flowspec/v1", "kind": "Channel",
        "metadata": {"name": "wa", "organization": ORG},
        "spec": {"type": "whatsapp_cloud", "phone_number_id": phone_number_id,
                 "access_token_env": "WA_TOKEN", "api_base_url": base_url,
                 "messages_per_second": 1000, **spec},
    }


def outbox_channel(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "flowspec/v1", "kind": "Channel",
            "metadata": {"name": "wa", "organization": ORG},
            "spec": {"type": "outbox", "messages_per_second": 1000, **spec}}


def automation_doc(name: str, *, flow: str = "hello", contact_ids: list[str] | None = None,
                   schedule: Mapping[str, Any] | None = None,
                   delivery: Mapping[str, Any] | None = None,
                   variable_mapping: Mapping[str, Any] | None = None,
                   exceptions: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "flow": flow, "whatsapp_number": "wa",
        "audience": {"contact_ids": contact_ids or ["c-0"]},
        "schedule": {"recurrence_type": "daily", "start_date": "2026-01-01",
                     "start_time": "09:00", "execution_timezone": "UTC", **(schedule or {})},
    }
    if delivery:
        spec["delivery"] = dict(delivery)
    if variable_mapping:
        spec["variable_mapping"] = dict(variable_mapping)
    if exceptions:
        spec["exceptions"] = exceptions
    return {"apiVersion": "flowspec/v1", "kind": "Automation",
            "metadata": {"name": name, "organization": ORG}, "spec": spec}


def write_repo(root: Path, channel: dict[str, Any], automations: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for f in root.glob("*.yaml"):
        f.unlink()
    docs = [channel] + [
        {"apiVersion": "flowspec/v1", "kind": "Flow", "metadata": {"name": n, "organization": ORG},
         "spec": spec}
        for n, spec in FLOWS.items()
    ]
    (root / "base.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs))
    for a in automations:
        (root / f"{a['metadata']['name']}.yaml").write_text(json.dumps(a))
    return root


def apply(root: Path, url: str, now: datetime, horizon: str = "10d") -> None:
    result = invoke("apply", str(root), "--db", url, "--now",
                    now.strftime("%Y-%m-%dT%H:%M:%SZ"), "--horizon", horizon)
    assert result.code == 0, result.output


def add_contacts(url: str, n: int, *, start: int = 0, opted_out: set[int] | None = None) -> list[str]:
    """Contacts c-<i> with phones +55119<8 digits of i> and a first_name."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"organization": ORG, "id": f"c-{i}", "phone": f"+55119{i:08d}",
         "attributes": {"first_name": f"N{i}"}, "tags": ["vip"] if i % 2 == 0 else [],
         "opted_out": i in (opted_out or set()), "created_at": now, "updated_at": now}
        for i in range(start, start + n)
    ]
    engine = dbmod.create_engine(url)
    try:
        with engine.begin() as conn:
            for i in range(0, len(rows), 1000):
                conn.execute(contacts.insert(), rows[i:i + 1000])
    finally:
        engine.dispose()
    return [str(r["id"]) for r in rows]


def engine_for(url: str, root: Path, *, settings: EngineSettings = FAST, seed: int = 7,
               redis_url: str | None = None) -> EngineContext:
    return open_engine(url, config=load_config([root]), env=ENV, settings=settings,
                       rng=random.Random(seed), redis_url=redis_url, outbox_dir=root)


def rows(url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    engine = dbmod.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def table_rows(url: str, table: sa.Table, **where: Any) -> list[dict[str, Any]]:
    """Rows of a table through its model types (aware datetimes on both engines)."""
    engine = dbmod.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.select(table).where(*[table.c[k] == v for k, v in where.items()])
            return [dict(r._mapping) for r in conn.execute(query.order_by(*table.primary_key))]
    finally:
        engine.dispose()


def scalar(url: str, query: str, **params: Any) -> Any:
    found = rows(url, query, **params)
    return next(iter(found[0].values())) if found else None


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class Enqueued(list[int]):
    """An `enqueue` that records ids (the queue itself is tested with a real Huey)."""

    def __call__(self, execution_id: int) -> None:
        self.append(execution_id)
