"""send marks: at_most_once loses only sends that may have started

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Under `at_most_once` a batch's recipients are `sending` from the guard until their results are
recorded, up to a second of sends. A worker killed in between left all of them `unknown`, also
those its pacer had not released yet. `send_marks` keeps, per guarded batch, the last recipient
id whose send may have started, moved forward before the pacer goes past it; the sweep releases
the recipients above it instead of giving them up.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('send_marks',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('organization', sa.String(length=63), nullable=False),
    sa.Column('execution_id', ID, nullable=False),
    sa.Column('through_id', ID, nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('until', TS, nullable=False),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_send_marks'))
    )


def downgrade() -> None:
    op.drop_table('send_marks')
