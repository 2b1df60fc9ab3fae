"""engine: rate buckets, channel breakers, messaging-limit counts, execution and lease columns

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-25

What the execution engine (reconciler/engine/, docs/engine.md) keeps in the database so that any
number of workers on any number of machines agree: GCRA state per rate limit (`rate_buckets`),
the open/closed breaker per Channel (`channel_circuits`), the phone numbers counted against a
Channel's `daily_unique_recipients` (`daily_recipients`), and on executions and recipients the
columns of the state machines (lease owner, heartbeat, resume time, the frozen plan). Column
types are spelled out, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
JSON_ = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column('plan', JSON_, nullable=True))
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('resume_at', TS, nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', TS, nullable=True))
        batch_op.add_column(sa.Column('fanned_out', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('audience_size', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('opted_out', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('unknown', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_executions_status_channel'), ['status', 'channel'], unique=False)

    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_recipients_execution_id_next_attempt_at'), ['execution_id', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recipients_lease_until'), ['lease_until'], unique=False)

    op.create_table('rate_buckets',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('tat', sa.Float(precision=53), nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_buckets'))
    )
    op.create_table('channel_circuits',
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('channel', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('execution_id', ID, nullable=True),
    sa.Column('opened_at', TS, nullable=True),
    sa.Column('closed_at', TS, nullable=True),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('organization', 'channel', name=op.f('pk_channel_circuits'))
    )
    op.create_table('daily_recipients',
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('channel', sa.String(length=63), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('counted_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('organization', 'channel', 'phone', name=op.f('pk_daily_recipients'))
    )
    with op.batch_alter_table('daily_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_daily_recipients_organization_channel_counted_at'), ['organization', 'channel', 'counted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('daily_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_daily_recipients_organization_channel_counted_at'))
    op.drop_table('daily_recipients')
    op.drop_table('channel_circuits')
    op.drop_table('rate_buckets')
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recipients_lease_until'))
        batch_op.drop_index(batch_op.f('ix_recipients_execution_id_next_attempt_at'))
        batch_op.drop_column('error')
        batch_op.drop_column('lease_owner')
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_executions_status_channel'))
        batch_op.drop_column('unknown')
        batch_op.drop_column('opted_out')
        batch_op.drop_column('audience_size')
        batch_op.drop_column('fanned_out')
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('resume_at')
        batch_op.drop_column('reason')
        batch_op.drop_column('plan')
        batch_op.drop_column('channel')
