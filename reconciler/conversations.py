"""Conversations: one per (organization, channel, contact), created on first use, then reused
(SPEC 6.4: "create or reuse its conversation").

Creation is an INSERT ... ON CONFLICT DO NOTHING followed by a read, so two workers fanning out
the same contact at once end with the same row, never a duplicate or an integrity error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa

from reconciler.contacts import Executor, chunks, dialect_insert
from reconciler.models import conversations


def ensure_conversations(
    conn: Executor, *, organization: str, channel: str, contact_ids: Iterable[str], now: datetime,
) -> dict[str, int]:
    """Conversation id per contact id, creating the ones that do not exist yet."""
    wanted = list(dict.fromkeys(contact_ids))
    ids: dict[str, int] = {}
    for chunk in chunks(wanted):
        ids.update(_existing(conn, organization, channel, chunk))
        new = [c for c in chunk if c not in ids]
        if not new:
            continue
        stmt = dialect_insert(conn, conversations).on_conflict_do_nothing(
            index_elements=[conversations.c.organization, conversations.c.channel,
                            conversations.c.contact_id]
        )
        conn.execute(stmt, [
            {"organization": organization, "channel": channel, "contact_id": c,
             "created_at": now, "updated_at": now}
            for c in new
        ])
        ids.update(_existing(conn, organization, channel, new))
    return ids


def _existing(conn: Executor, organization: str, channel: str, contact_ids: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        sa.select(conversations.c.contact_id, conversations.c.id).where(
            conversations.c.organization == organization,
            conversations.c.channel == channel,
            conversations.c.contact_id.in_(contact_ids),
        )
    )
    return {r.contact_id: r.id for r in rows}
