"""send permits: max_concurrent_executions across every worker

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

`max_concurrent_executions` is the number of recipients of one execution in flight at once
(SPEC 1.1), however many work passes send it on however many machines. Each pass holds a share
in `send_permits` while it runs (reconciler/engine/permits.py); a pass that dies stops holding
it when `until` passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('send_permits',
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('execution_id', ID, nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('permits', sa.Integer(), nullable=False),
    sa.Column('until', TS, nullable=False),
    sa.PrimaryKeyConstraint('execution_id', 'token', name=op.f('pk_send_permits'))
    )


def downgrade() -> None:
    op.drop_table('send_permits')
