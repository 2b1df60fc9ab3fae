"""messaging: messages, unmatched webhook statuses, recipients.step

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-25

One `messages` row per flow step sent to a recipient (docs/engine.md): `(recipient_id, step)`
unique so two workers cannot start the same step, `message_id` (the wamid) unique so a webhook
status finds exactly one row. `unmatched_statuses` holds statuses that arrive before the sender
recorded the wamid. Column types are spelled out, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        # Existing rows have sent nothing the messages table knows about.
        batch_op.add_column(sa.Column('step', sa.Integer(), nullable=False, server_default='0'))

    op.create_table('messages',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('recipient_id', ID, nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('node', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=63), nullable=False),
    sa.Column('conversation_id', ID, nullable=True),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.Column('sent_at', TS, nullable=True),
    sa.Column('delivered_at', TS, nullable=True),
    sa.Column('read_at', TS, nullable=True),
    sa.Column('failed_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_messages_conversation_id_conversations')),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], name=op.f('fk_messages_recipient_id_recipients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('message_id', name=op.f('uq_messages_message_id')),
    sa.UniqueConstraint('recipient_id', 'step', name=op.f('uq_messages_recipient_id_step'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_organization_status'), ['organization', 'status'], unique=False)

    op.create_table('unmatched_statuses',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_at', TS, nullable=True),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('received_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unmatched_statuses')),
    sa.UniqueConstraint('organization', 'message_id', 'status', name=op.f('uq_unmatched_statuses_organization_message_id_status'))
    )
    with op.batch_alter_table('unmatched_statuses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unmatched_statuses_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('unmatched_statuses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unmatched_statuses_received_at'))

    op.drop_table('unmatched_statuses')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_organization_status'))

    op.drop_table('messages')
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_column('step')
