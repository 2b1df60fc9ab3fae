"""An automation's next send (SPEC 5 `next_scheduled_at`) follows the dispatcher."""

from __future__ import annotations

from pathlib import Path

from engine_support import (
    Enqueued,
    apply,
    automation_doc,
    engine_for,
    outbox_channel,
    rows,
    utc,
    write_repo,
)

from reconciler import engine as eng


def test_dispatching_moves_next_scheduled_at_to_the_next_pending_occurrence(db_url: str, tmp_path: Path) -> None:
    """After the 09:00 occurrence is dispatched, next_scheduled_at is the next day's 09:00."""
    root = write_repo(tmp_path / "cfg", outbox_channel(), [automation_doc("daily")])
    apply(root, db_url, utc("2026-01-05T00:00:00Z"))
    assert _as_text(db_url) == ["2026-01-05 09:00:00"]
    engine = engine_for(db_url, root)
    try:
        eng.dispatch_due(engine, now=utc("2026-01-05T09:00:01Z"), enqueue=Enqueued())
    finally:
        engine.close()
    assert _as_text(db_url) == ["2026-01-06 09:00:00"]


def _as_text(url: str) -> list[str]:
    values = [r["next_scheduled_at"] for r in rows(url, "select next_scheduled_at from automations")]
    return [str(v)[:19].replace("T", " ") for v in values]
