"""send counts: /metrics' send counters kept as running totals

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

`messages_sent_total` and `send_failures_total` were counted over the whole messages table at
every scrape. That grew with the table, and a failed attempt stopped counting once a retry
overwrote its step's row, so the failure counter went down. `send_counts` holds the totals,
added to in the transaction that writes each message row; it starts from what the messages
table shows now. A partial index lets the scrape count failed recipients without reading the
others, and one on `occurrences.claimed_at` finds the latest dispatch without reading them all.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FAILED = sa.text("status IN ('failed', 'unknown')")


def upgrade() -> None:
    op.create_table('send_counts',
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('channel', sa.String(length=63), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('organization', 'channel', 'outcome', 'code',
                            name=op.f('pk_send_counts'))
    )
    op.execute(
        "INSERT INTO send_counts (organization, channel, outcome, code, n) "
        "SELECT organization, channel, 'sent', '', count(*) FROM messages "
        "WHERE sent_at IS NOT NULL GROUP BY organization, channel"
    )
    op.execute(
        "INSERT INTO send_counts (organization, channel, outcome, code, n) "
        "SELECT organization, channel, 'failed', COALESCE(error_code, ''), count(*) FROM messages "
        "WHERE status = 'failed' GROUP BY organization, channel, COALESCE(error_code, '')"
    )
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.create_index('ix_recipients_organization_error_code',
                              ['organization', 'error_code'], unique=False,
                              postgresql_where=_FAILED, sqlite_where=_FAILED)
    with op.batch_alter_table('occurrences', schema=None) as batch_op:
        batch_op.create_index('ix_occurrences_claimed_at', ['claimed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('occurrences', schema=None) as batch_op:
        batch_op.drop_index('ix_occurrences_claimed_at')
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_recipients_organization_error_code')
    op.drop_table('send_counts')
