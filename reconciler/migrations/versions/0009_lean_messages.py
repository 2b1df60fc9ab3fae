"""lean messages: drop the (organization, status) index nothing reads

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

It served `/metrics`' failure counts, which read `send_counts` since 0007. Every message row
written (one per send) paid an index insertion for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_organization_status'))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_organization_status'),
                              ['organization', 'status'], unique=False)
