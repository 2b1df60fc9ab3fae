"""The reconciler's tables (SQLAlchemy 2.0 typed models). Migrations in `migrations/` create them.

Every table but `revisions` carries `organization`, and every query filters on it: one database
serves many tenants. A revision is one apply of a config root, which may hold several
organizations, so it belongs to the deployment, not to a tenant.

Occurrence statuses (`docs/decisions.md`, "Reconciler state"):

    apply owns    pending | paused | inactive | cancelled
    dispatcher    dispatched | running | completed | failed | missed | skipped_overlap

`apply` writes only rows in a status it owns; once the dispatcher has claimed a row it is never
touched by apply again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both engines.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so the value is stored as naive
    UTC text (which sorts chronologically) and made aware again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: flowspec stores aware UTC instants")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = BigInteger().with_variant(Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
Org = String(63)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Statuses apply may write; any other status belongs to the dispatcher and is final for apply.
APPLY_OWNED = ("pending", "paused", "inactive", "cancelled")
HELD = ("paused", "inactive")  # computed and kept, never dispatched
OCCURRENCE_STATUSES = (
    *APPLY_OWNED,
    "dispatched",
    "running",
    "completed",
    "failed",
    "missed",
    "skipped_overlap",
)
REVISION_STATUSES = ("attempted", "applied", "failed")
EXECUTION_STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
RECIPIENT_STATUSES = ("pending", "sending", "sent", "delivered", "read", "completed", "failed", "unknown")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Revision(Base):
    """One apply of a config root: attempted first, then applied or failed (SPEC 5)."""

    __tablename__ = "revisions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16))  # attempted | applied | failed
    content_hash: Mapped[str] = mapped_column(String(80))  # "sha256:<hex>" of the config files
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool] = mapped_column(Boolean, default=False)  # uncommitted changes
    config_root: Mapped[str | None] = mapped_column(Text)
    plan_inputs: Mapped[str | None] = mapped_column(String(120))  # "tzdata=…;holidays=…"
    horizon_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    horizon_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last time an apply of this same content found nothing to change.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 1, 2, 3... in the order applies committed, assigned under the writers' lock: the live
    # revision is the highest. Clocks cannot order them (two hosts, or an apply that waited
    # for the lock after another started later).
    applied_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)

    __table_args__ = (Index(None, "status", "id"),)


class Automation(Base):
    __tablename__ = "automations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(Org)
    name: Mapped[str] = mapped_column(String(63))
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(Json)  # the resolved Automation, defaults merged
    spec_hash: Mapped[str] = mapped_column(String(80))
    timezone: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean)
    is_paused: Mapped[bool] = mapped_column(Boolean)
    # Apply reconciled this automation up to here with this spec_hash and these plan inputs;
    # a later apply with the same three and a horizon that ends no later has nothing to do.
    planned_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    plan_inputs: Mapped[str | None] = mapped_column(String(120))
    next_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    execution_count: Mapped[int] = mapped_column(Integer, default=0)
    total_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    total_delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    total_read: Mapped[int] = mapped_column(BigInteger, default=0)
    total_completed: Mapped[int] = mapped_column(BigInteger, default=0)
    total_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    created_revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"))
    changed_revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"))
    removed_revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("organization", "name"),
        # (organization, id) is unique so child tables can reference both and a row can never
        # point at another tenant's automation.
        UniqueConstraint("organization", "id"),
    )


class Occurrence(Base):
    __tablename__ = "occurrences"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(Org)
    key: Mapped[str] = mapped_column(String(200))  # <organization>/<automation>/<slot>[+fold]
    automation_id: Mapped[int] = mapped_column(Id)
    slot: Mapped[str] = mapped_column(String(32))  # local wall time of the candidate, +fold
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    local: Mapped[str] = mapped_column(String(40))  # ISO with the zone's offset, as in the plan
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    overrides: Mapped[dict[str, Any]] = mapped_column(Json)
    moved_by: Mapped[str | None] = mapped_column(String(20))
    moved_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dst: Mapped[str | None] = mapped_column(String(20))
    # Revision ids without foreign keys: apply writes them in the transaction that creates the
    # revision and revisions are never deleted, while three per-row checks measured ~40% of the
    # database's time in a 100k-row first apply on PostgreSQL (docs/decisions.md).
    created_revision_id: Mapped[int | None] = mapped_column(Id)
    changed_revision_id: Mapped[int | None] = mapped_column(Id)
    cancelled_revision_id: Mapped[int | None] = mapped_column(Id)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("organization", "key"),
        ForeignKeyConstraint(
            ["organization", "automation_id"], ["automations.organization", "automations.id"]
        ),
        Index(None, "organization", "automation_id", "at"),
        Index(None, "organization", "automation_id", "slot"),
        # The dispatcher's query: due pending occurrences in time order.
        Index(None, "status", "at"),
        # /metrics' dispatch lag: the latest claimed occurrence (0007).
        Index(None, "claimed_at"),
    )


class Execution(Base):
    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(Org)
    automation_id: Mapped[int] = mapped_column(Id)
    # One execution per occurrence; NULL for a manual `flowspec trigger`.
    occurrence_id: Mapped[int | None] = mapped_column(ForeignKey("occurrences.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    read: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Engine (0003, docs/engine.md): the Channel it sends from (its breaker pauses it), what it
    # runs (automation, flow, channel and delivery settings frozen at fan-out), why it waits or
    # failed, when a closed window reopens, the last sign of life of a worker on it.
    channel: Mapped[str | None] = mapped_column(String(63))
    plan: Mapped[dict[str, Any] | None] = mapped_column(Json)
    reason: Mapped[str | None] = mapped_column(Text)
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)
    audience_size: Mapped[int] = mapped_column(Integer, default=0)
    opted_out: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization", "automation_id"], ["automations.organization", "automations.id"]
        ),
        UniqueConstraint("organization", "id"),
        Index(None, "organization", "automation_id", "status"),
        Index(None, "status", "channel"),  # the sweep and the channel breaker (0003)
    )


class Contact(Base):
    __tablename__ = "contacts"

    organization: Mapped[str] = mapped_column(Org, primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    attributes: Mapped[dict[str, Any]] = mapped_column(Json)
    tags: Mapped[list[str]] = mapped_column(Json)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


FAILED_RECIPIENTS = "status IN ('failed', 'unknown')"
# Rows a take may claim once due: not leased, with a node to run (terminal rows have none).
CLAIMABLE_RECIPIENTS = "lease_owner IS NULL AND current_node IS NOT NULL"


class Recipient(Base):
    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(Org)
    execution_id: Mapped[int] = mapped_column(Id)
    contact_id: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(40))
    # The latest accepted wamid, for reports; unique on messages, not here (0005).
    message_id: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    current_node: Mapped[str | None] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer, default=0)  # sends so far; messages.step (0002)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Engine (0003): the claim token of the worker holding the lease (NULL: not claimed) and the
    # last error's text (error_code holds its code).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)

    # No foreign key to executions (0011): only the fan-out writes recipients, after reading
    # their execution, and executions are never deleted.
    __table_args__ = (
        UniqueConstraint("execution_id", "contact_id"),
        Index(None, "organization", "execution_id", "status"),
        # The engine's take (in this order), next-wakeup and waiting queries (0004); only rows
        # a take may claim, so the guard's leased row and a finished one add no entry (0010).
        Index(None, "execution_id", "next_attempt_at", "id",
              postgresql_where=text(CLAIMABLE_RECIPIENTS), sqlite_where=text(CLAIMABLE_RECIPIENTS)),
        # The sweep's expired leases; only leased rows are in it (0004).
        Index(None, "lease_until", postgresql_where=text("lease_owner IS NOT NULL"),
              sqlite_where=text("lease_owner IS NOT NULL")),
        # /metrics' recipient failures by code: only failed and unknown rows are in it (0007).
        Index(None, "organization", "error_code", postgresql_where=text(FAILED_RECIPIENTS),
              sqlite_where=text(FAILED_RECIPIENTS)),
    )


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(Org)
    channel: Mapped[str] = mapped_column(String(63))
    contact_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("organization", "channel", "contact_id"),)


# Core handles for bulk statements (apply writes with executemany, not the ORM).
revisions: Table = Revision.__table__  # type: ignore[assignment]
automations: Table = Automation.__table__  # type: ignore[assignment]
occurrences: Table = Occurrence.__table__  # type: ignore[assignment]
executions: Table = Execution.__table__  # type: ignore[assignment]
contacts: Table = Contact.__table__  # type: ignore[assignment]
recipients: Table = Recipient.__table__  # type: ignore[assignment]
conversations: Table = Conversation.__table__  # type: ignore[assignment]

# CLAIMABLE_RECIPIENTS as a condition, for every statement that reads the take's index (0010):
# each must state it for the database to use the index, and all mean the same rows.
CLAIMABLE: ColumnElement[bool] = and_(recipients.c.lease_owner.is_(None),
                                      recipients.c.current_node.is_not(None))


# --------------------------------------------------------------------------- messaging (0002)

# A message's status only moves forward along this order; `failed` is reachable only from
# `sending`/`sent` and is final (docs/engine.md, "messages").
MESSAGE_STATUSES = ("sending", "sent", "delivered", "read", "failed")


class Message(Base):
    """One flow step's send to one recipient (docs/engine.md, "Sending guarantee").

    Written once the send was made, with the recipient's result and only while the worker's
    lease on the recipient held (the recipient's `sending` is the guard before the call);
    `(recipient_id, step)` is unique and a retry of the step reuses the row. `message_id` (the
    wamid) is set when the API accepted it, and status webhooks find the row by it. `sending`
    is only found in rows written by versions before 0004.
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(Org)
    # No foreign keys (0005): written only with its recipient under the lease fence, and
    # neither recipients nor conversations are deleted.
    recipient_id: Mapped[int] = mapped_column(Id)
    step: Mapped[int] = mapped_column(Integer)  # the recipient's `step` when this send started
    node: Mapped[str] = mapped_column(String(200))  # the flow node that sent it
    channel: Mapped[str] = mapped_column(String(63))  # Channel document name
    conversation_id: Mapped[int | None] = mapped_column(Id)
    message_id: Mapped[str | None] = mapped_column(String(200), unique=True)  # wamid
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When each status was reached (webhook statuses carry Meta's own timestamp).
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # No index on (organization, status) (dropped by 0009): nothing reads messages by status
    # since /metrics keeps running totals (0007), and each one costs every send a write.
    __table_args__ = (UniqueConstraint("recipient_id", "step"),)


class UnmatchedStatus(Base):
    """A webhook status whose message is not (yet) known.

    Meta may call back before the worker that sent the message has recorded its wamid; the
    status waits here and is applied once the message row has it (reconciler.webhooks).
    """

    __tablename__ = "unmatched_statuses"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(Org)
    message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("organization", "message_id", "status"),
        Index(None, "received_at"),
    )


messages: Table = Message.__table__  # type: ignore[assignment]
unmatched_statuses: Table = UnmatchedStatus.__table__  # type: ignore[assignment]


# --------------------------------------------------------------------------- engine (0003)


class RateBucket(Base):
    """GCRA state of one rate limit shared by every worker (reconciler.engine.limits).

    `tat` is the theoretical arrival time of the next message, in Unix seconds: a message may
    go at max(now, tat), after which tat moves on by one emission interval.
    """

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[float] = mapped_column(Float(53))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelCircuit(Base):
    """A Channel's breaker (SPEC 6.8): open means no execution sends from it until resumed."""

    __tablename__ = "channel_circuits"

    organization: Mapped[str] = mapped_column(Org, primary_key=True)
    channel: Mapped[str] = mapped_column(String(63), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # open | closed
    code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    execution_id: Mapped[int | None] = mapped_column(Id)  # the execution whose send tripped it
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DailyRecipient(Base):
    """A phone number counted against a Channel's `daily_unique_recipients` (SPEC 6.10).

    `counted_at` starts its 24 h: while it is younger than 24 h the number takes one unit of the
    channel's budget and further messages to it cost nothing more.
    """

    __tablename__ = "daily_recipients"

    organization: Mapped[str] = mapped_column(Org, primary_key=True)
    channel: Mapped[str] = mapped_column(String(63), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "organization", "channel", "counted_at"),)


rate_buckets: Table = RateBucket.__table__  # type: ignore[assignment]
channel_circuits: Table = ChannelCircuit.__table__  # type: ignore[assignment]
daily_recipients: Table = DailyRecipient.__table__  # type: ignore[assignment]


class SendPermit(Base):
    """A work pass's share of its execution's `max_concurrent_executions` (0006): while the
    row is alive (`until` ahead) the pass may have `permits` sends in flight. The live rows of
    one execution never add up to more than its bound (reconciler.engine.permits)."""

    __tablename__ = "send_permits"

    organization: Mapped[str] = mapped_column(Org)
    execution_id: Mapped[int] = mapped_column(Id, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), primary_key=True)  # the pass
    permits: Mapped[int] = mapped_column(Integer)
    until: Mapped[datetime] = mapped_column(UTCDateTime)


send_permits: Table = SendPermit.__table__  # type: ignore[assignment]


class SendCount(Base):
    """Running totals behind `/metrics`' send counters (0007): how many sends of a Channel the
    API accepted (`outcome` sent, `code` '') and how many failed, by error code (`outcome`
    failed). Each is added in the transaction that writes the message row it counts, so a
    counter never goes down (a retry overwrites its step's failed row) and a scrape reads a
    handful of rows however many messages exist (reconciler.metrics)."""

    __tablename__ = "send_counts"

    organization: Mapped[str] = mapped_column(Org, primary_key=True)
    channel: Mapped[str] = mapped_column(String(63), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)  # sent | failed
    code: Mapped[str] = mapped_column(String(40), primary_key=True)  # '' for sent
    n: Mapped[int] = mapped_column(BigInteger, default=0)


send_counts: Table = SendCount.__table__  # type: ignore[assignment]


class SendMark(Base):
    """How far into a guarded batch its sends may have started (0008), under `at_most_once`:
    recipients of the batch with an id above `through_id` were never handed to the channel.
    Written with the guard and moved forward, durably, before the pacer releases beyond it;
    the sweep sets `revoked` when it takes the batch over, which stops the pacer (docs/engine.md,
    "Sending guarantee")."""

    __tablename__ = "send_marks"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)  # the batch's lease token
    organization: Mapped[str] = mapped_column(Org)
    execution_id: Mapped[int] = mapped_column(Id)
    through_id: Mapped[int] = mapped_column(Id)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    until: Mapped[datetime] = mapped_column(UTCDateTime)  # the batch's lease


send_marks: Table = SendMark.__table__  # type: ignore[assignment]
