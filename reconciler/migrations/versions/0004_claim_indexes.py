"""claim indexes: the take's order in one index, leases indexed only while held

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

The work loop takes the due recipients of an execution in `(next_attempt_at, id)` order, a
batch at a time. With an index on `(execution_id, next_attempt_at)` only, PostgreSQL read and
sorted every due row of the execution for each batch (all of a fresh campaign's rows share
one `next_attempt_at`), so a batch cost grew with the audience: 32 ms per 500 at 20,000
recipients, measured. `(execution_id, next_attempt_at, id)` hands the batch over in order and
stops after it.

The sweep looks for expired leases only among leased rows: the `lease_until` index becomes
partial (`lease_owner IS NOT NULL`), so the rows that are not leased, almost all of them, have
no entry to maintain in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEASED = sa.text("lease_owner IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_recipients_execution_id_next_attempt_at')
        batch_op.drop_index('ix_recipients_lease_until')
        batch_op.create_index('ix_recipients_execution_id_next_attempt_at_id',
                              ['execution_id', 'next_attempt_at', 'id'], unique=False)
        batch_op.create_index('ix_recipients_lease_until', ['lease_until'], unique=False,
                              postgresql_where=_LEASED, sqlite_where=_LEASED)


def downgrade() -> None:
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_recipients_lease_until')
        batch_op.drop_index('ix_recipients_execution_id_next_attempt_at_id')
        batch_op.create_index('ix_recipients_lease_until', ['lease_until'], unique=False)
        batch_op.create_index('ix_recipients_execution_id_next_attempt_at',
                              ['execution_id', 'next_attempt_at'], unique=False)
