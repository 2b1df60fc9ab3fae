"""Helpers for the process tests (run, trigger, worker, serve, executions): a config repository
with a CSV audience, row readers, and a poller that waits for a condition without timing it.

Documents are written as JSON, which is YAML 1.2.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reconciler import db as dbmod

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "automations"
TOKEN_ENV = "FLOWSPEC_TEST_WA_TOKEN"


def copy_examples(dst: Path, *, rate_limit_per_hour: int | None = 360_000) -> Path:
    """automations/ copied to `dst`, with the Defaults' hourly rate raised so a test does not
    wait 3.6 s between messages (what the demo shows off)."""
    shutil.copytree(EXAMPLES, dst)
    if rate_limit_per_hour is not None:
        defaults = dst / "flowspec.yaml"
        text = defaults.read_text()
        assert "rate_limit_per_hour: 1000" in text
        defaults.write_text(text.replace("rate_limit_per_hour: 1000",
                                         f"rate_limit_per_hour: {rate_limit_per_hour}"))
    return dst


def write_config(
    root: Path,
    *,
    automations: Mapping[str, Mapping[str, Any]],
    contacts: int = 3,
    channel: Mapping[str, Any] | None = None,
    flow: Mapping[str, Any] | None = None,
) -> Path:
    """A config root: one Channel `out` (outbox by default), one Flow `hello` (one text send),
    an Audience `people` from contacts.csv with `contacts` rows, and the given automations
    (each a dict of spec fields merged over a daily 09:00 UTC schedule from 2026-01-01, audience
    `people`)."""
    root.mkdir(parents=True, exist_ok=True)
    for f in root.glob("*.yaml"):
        f.unlink()
    docs: list[dict[str, Any]] = [
        {"apiVersion": "flowspec/v1", "kind": "Channel", "metadata": {"name": "out", "organization": "acme"},
         "spec": dict(channel or {"type": "outbox", "path": str(root.parent / "outbox" / "out.jsonl"),
                                  "messages_per_second": 1000})},
        {"apiVersion": "flowspec/v1", "kind": "Flow", "metadata": {"name": "hello", "organization": "acme"},
         "spec": dict(flow or {"start": "send", "nodes": {
             "send": {"type": "send_template", "template": "hello", "language": "en",
                      "params": ["{{contact.first_name}}"], "next": "done"},
             "done": {"type": "end"}}})},
        {"apiVersion": "flowspec/v1", "kind": "Audience", "metadata": {"name": "people", "organization": "acme"},
         "spec": {"file": "contacts.csv"}},
    ]
    (root / "base.yaml").write_text("\n---\n".join(json.dumps(d, indent=1) for d in docs))
    lines = ["id,phone,first_name"] + [f"c-{i:04d},+5511{i:09d},N{i}" for i in range(1, contacts + 1)]
    (root / "contacts.csv").write_text("\n".join(lines) + "\n")
    for name, spec in automations.items():
        (root / f"{name}.yaml").write_text(json.dumps(automation_doc(name, spec), indent=1))
    return root


def automation_doc(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    s = dict(spec)
    schedule = {"recurrence_type": "daily", "start_date": "2026-01-01", "start_time": "09:00",
                "execution_timezone": "UTC", **s.pop("schedule", {})}
    if "T" in str(schedule["start_date"]):  # a datetime carries its own time of day
        schedule.pop("start_time")
    delivery = {"rate_limit_per_hour": 3_600_000, **s.pop("delivery", {})}
    return {
        "apiVersion": "flowspec/v1", "kind": "Automation",
        "metadata": {"name": name, "organization": "acme"},
        "spec": {"flow": "hello", "whatsapp_number": "out", "audience": {"audience": "people"},
                 "schedule": schedule, "delivery": delivery, **s},
    }


def cloud_channel(base_url: str, phone_number_id: str = "1234567890") -> dict[str, Any]:
    return {"type": "whatsapp_cloud", "phone_number_id": phone_number_id,
            "access_token_env": TOKEN_ENV, "api_base_url": base_url, "messages_per_second": 1000}


def read(url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    engine = dbmod.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def scalar(url: str, query: str, **params: Any) -> Any:
    rows = read(url, query, **params)
    return next(iter(rows[0].values())) if rows else None


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, every: float = 0.1,
             what: str = "condition", detail: Callable[[], str] | None = None) -> Any:
    """Poll until `condition()` is truthy; fail with `what` after a generous timeout. Never a
    timing assertion: the timeout only bounds a hung test."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(every)
    more = f"\n{detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){more}")


def outbox_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def flowspec_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "flowspec", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSPEC_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env
