"""Alembic environment: always run through `reconciler.db.upgrade`, on the caller's connection.

The caller owns the transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so two
processes upgrading at once run one after the other and the second finds nothing to do.
"""

from __future__ import annotations

from alembic import context

from reconciler.db import VERSION_TABLE
from reconciler.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `flowspec db upgrade` (reconciler.db.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
