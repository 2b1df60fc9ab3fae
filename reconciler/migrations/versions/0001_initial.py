"""initial schema

Revision ID: 0001
Revises:
Create Date: 2025-11-25

Hand-reviewed autogenerate output. Column types are spelled out here, not imported from
reconciler.models, so this migration keeps meaning what it meant when later ones change the models.
Times are timestamptz on PostgreSQL and naive UTC text on SQLite (reconciler.models.UTCDateTime).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
JSON_ = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table('contacts',
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('attributes', JSON_, nullable=False),
    sa.Column('tags', JSON_, nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('organization', 'id', name=op.f('pk_contacts'))
    )
    op.create_table('conversations',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('channel', sa.String(length=63), nullable=False),
    sa.Column('contact_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations')),
    sa.UniqueConstraint('organization', 'channel', 'contact_id', name=op.f('uq_conversations_organization_channel_contact_id'))
    )
    op.create_table('revisions',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('content_hash', sa.String(length=80), nullable=False),
    sa.Column('git_commit', sa.String(length=64), nullable=True),
    sa.Column('git_dirty', sa.Boolean(), nullable=False),
    sa.Column('config_root', sa.Text(), nullable=True),
    sa.Column('plan_inputs', sa.String(length=120), nullable=True),
    sa.Column('horizon_from', TS, nullable=True),
    sa.Column('horizon_to', TS, nullable=True),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('cancelled', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('finished_at', TS, nullable=True),
    sa.Column('checked_at', TS, nullable=True),
    sa.Column('applied_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revisions')),
    sa.UniqueConstraint('applied_seq', name=op.f('uq_revisions_applied_seq'))
    )
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revisions_status_id'), ['status', 'id'], unique=False)

    op.create_table('automations',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('spec', JSON_, nullable=False),
    sa.Column('spec_hash', sa.String(length=80), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('is_paused', sa.Boolean(), nullable=False),
    sa.Column('planned_until', TS, nullable=True),
    sa.Column('plan_inputs', sa.String(length=120), nullable=True),
    sa.Column('next_scheduled_at', TS, nullable=True),
    sa.Column('last_executed_at', TS, nullable=True),
    sa.Column('execution_count', sa.Integer(), nullable=False),
    sa.Column('total_sent', sa.BigInteger(), nullable=False),
    sa.Column('total_delivered', sa.BigInteger(), nullable=False),
    sa.Column('total_read', sa.BigInteger(), nullable=False),
    sa.Column('total_completed', sa.BigInteger(), nullable=False),
    sa.Column('total_failed', sa.BigInteger(), nullable=False),
    sa.Column('created_revision_id', ID, nullable=True),
    sa.Column('changed_revision_id', ID, nullable=True),
    sa.Column('removed_revision_id', ID, nullable=True),
    sa.Column('removed_at', TS, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['changed_revision_id'], ['revisions.id'], name=op.f('fk_automations_changed_revision_id_revisions')),
    sa.ForeignKeyConstraint(['created_revision_id'], ['revisions.id'], name=op.f('fk_automations_created_revision_id_revisions')),
    sa.ForeignKeyConstraint(['removed_revision_id'], ['revisions.id'], name=op.f('fk_automations_removed_revision_id_revisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automations')),
    sa.UniqueConstraint('organization', 'id', name=op.f('uq_automations_organization_id')),
    sa.UniqueConstraint('organization', 'name', name=op.f('uq_automations_organization_name'))
    )
    op.create_table('occurrences',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('automation_id', ID, nullable=False),
    sa.Column('slot', sa.String(length=32), nullable=False),
    sa.Column('at', TS, nullable=False),
    sa.Column('local', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('overrides', JSON_, nullable=False),
    sa.Column('moved_by', sa.String(length=20), nullable=True),
    sa.Column('moved_from', TS, nullable=True),
    sa.Column('dst', sa.String(length=20), nullable=True),
    sa.Column('created_revision_id', ID, nullable=True),
    sa.Column('changed_revision_id', ID, nullable=True),
    sa.Column('cancelled_revision_id', ID, nullable=True),
    sa.Column('claimed_at', TS, nullable=True),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['organization', 'automation_id'], ['automations.organization', 'automations.id'], name=op.f('fk_occurrences_organization_automation_id_automations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_occurrences')),
    sa.UniqueConstraint('organization', 'key', name=op.f('uq_occurrences_organization_key'))
    )
    with op.batch_alter_table('occurrences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_occurrences_organization_automation_id_at'), ['organization', 'automation_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_occurrences_organization_automation_id_slot'), ['organization', 'automation_id', 'slot'], unique=False)
        batch_op.create_index(batch_op.f('ix_occurrences_status_at'), ['status', 'at'], unique=False)

    op.create_table('executions',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('automation_id', ID, nullable=False),
    sa.Column('occurrence_id', ID, nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('manual', sa.Boolean(), nullable=False),
    sa.Column('started_at', TS, nullable=True),
    sa.Column('finished_at', TS, nullable=True),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('delivered', sa.Integer(), nullable=False),
    sa.Column('read', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['occurrence_id'], ['occurrences.id'], name=op.f('fk_executions_occurrence_id_occurrences')),
    sa.ForeignKeyConstraint(['organization', 'automation_id'], ['automations.organization', 'automations.id'], name=op.f('fk_executions_organization_automation_id_automations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_executions')),
    sa.UniqueConstraint('occurrence_id', name=op.f('uq_executions_occurrence_id')),
    sa.UniqueConstraint('organization', 'id', name=op.f('uq_executions_organization_id'))
    )
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_executions_organization_automation_id_status'), ['organization', 'automation_id', 'status'], unique=False)

    op.create_table('recipients',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('execution_id', ID, nullable=False),
    sa.Column('contact_id', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('lease_until', TS, nullable=True),
    sa.Column('next_attempt_at', TS, nullable=True),
    sa.Column('current_node', sa.String(length=200), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['organization', 'execution_id'], ['executions.organization', 'executions.id'], name=op.f('fk_recipients_organization_execution_id_executions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recipients')),
    sa.UniqueConstraint('execution_id', 'contact_id', name=op.f('uq_recipients_execution_id_contact_id')),
    sa.UniqueConstraint('message_id', name=op.f('uq_recipients_message_id'))
    )
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recipients_organization_execution_id_status'), ['organization', 'execution_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recipients_organization_execution_id_status'))

    op.drop_table('recipients')
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_executions_organization_automation_id_status'))

    op.drop_table('executions')
    with op.batch_alter_table('occurrences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_occurrences_status_at'))
        batch_op.drop_index(batch_op.f('ix_occurrences_organization_automation_id_slot'))
        batch_op.drop_index(batch_op.f('ix_occurrences_organization_automation_id_at'))

    op.drop_table('occurrences')
    op.drop_table('automations')
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revisions_status_id'))

    op.drop_table('revisions')
    op.drop_table('conversations')
    op.drop_table('contacts')
