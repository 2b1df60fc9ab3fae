"""WhatsApp status webhooks: verify, parse, and apply statuses forward only (SPEC 6.9).

The request path, in order, each step able to reject with nothing changed:

1. size: a body over `MAX_BODY` bytes is 413 (read no further);
2. signature: `X-Hub-Signature-256` must be the HMAC-SHA256 of the raw body under the app secret
   of some configured whatsapp_cloud Channel (401 unsigned, 403 mis-signed), checked before the
   body is parsed, with a constant-time compare;
3. shape: the body must be the Cloud API's webhook JSON (400 otherwise); every status is parsed
   before any is applied, so a bad one rejects the whole callback;
4. scope: a change's `metadata.phone_number_id` names the Channel(s) it is for, and only
   channels whose secret signed this body count. A status is applied only to a message of an
   organization owning such a channel: a signed callback for one tenant's number can never touch
   another tenant's message, even with its wamid.

`apply_statuses` then moves each message forward only: sending < sent < delivered < read, with
`failed` reachable only from sending/sent and final. Duplicates, replays and late statuses are
no-ops, so Meta's at-least-once, unordered delivery needs no bookkeeping (a `sent` or
`delivered` overtaken by a later status still fills its empty timestamp). Each status is one
conditional UPDATE (the guard is in the WHERE clause), so concurrent callbacks for one message
cannot lower it on either engine. The recipient's status is then raised to match when the
message is its latest send, never lowered and never past a terminal status; `pending` and
`sending` recipients belong to the engine and are left alone. A status whose message is not
known yet (Meta can call back before the worker records the wamid) is kept in
`unmatched_statuses` and applied by `apply_unmatched` once the wamid is there.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from flowspec.config import Config
from reconciler.contacts import Executor, chunks, dialect_insert
from reconciler.models import UTCDateTime, messages, recipients, send_counts, unmatched_statuses

MAX_BODY = 1024 * 1024  # 1 MiB; Meta's callbacks are a few KB
SIGNATURE_HEADER = "X-Hub-Signature-256"
STATUSES = ("sent", "delivered", "read", "failed")
# Rank of each message status; `failed` ranks above everything, so nothing follows it.
MESSAGE_RANK: Mapping[str, int] = {"sending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 9}
# A status applies when the message's current rank is below this: `failed` only from
# sending/sent (a delivered message did not fail), the others only upwards.
APPLIES_BELOW: Mapping[str, int] = {"sent": 1, "delivered": 2, "read": 3, "failed": 2}
# Recipient statuses a status may raise (from, to): only from `sent`/`delivered`; the
# engine owns pending/sending and the terminal ones are final.
RECIPIENT_RANK: Mapping[str, int] = {"pending": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
RAISES_RECIPIENT = ("delivered", "read", "failed")
UNMATCHED_MAX_AGE = timedelta(days=7)  # Meta retries for up to 7 days, no longer


class WebhookError(Exception):
    """A request rejected before anything changed: HTTP status and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One status of one message, scoped to the organization it may touch."""

    organization: str
    message_id: str  # wamid
    status: str  # sent | delivered | read | failed
    timestamp: datetime | None = None
    error_code: str | None = None
    error: str | None = None


@dataclass
class ApplyResult:
    # One outcome per status, in the order given: "applied" (moved a message forward),
    # "ignored" (duplicate, replay, late or lower: no change), "unmatched" (no message with
    # that wamid, yet, in that organization).
    outcomes: list[str] = field(default_factory=list)
    recipients: int = 0  # recipient rows raised

    @property
    def applied(self) -> int:
        return self.outcomes.count("applied")

    @property
    def ignored(self) -> int:
        return self.outcomes.count("ignored")

    @property
    def unmatched(self) -> int:
        return self.outcomes.count("unmatched")

    def add(self, other: ApplyResult) -> None:
        self.outcomes.extend(other.outcomes)
        self.recipients += other.recipients

    def to_json(self) -> dict[str, int]:
        return {"applied": self.applied, "ignored": self.ignored, "unmatched": self.unmatched}


def next_status(current: str, status: str) -> str | None:
    """The message status after `status` arrives, or None when it changes nothing."""
    if MESSAGE_RANK.get(current, 9) < APPLIES_BELOW[status]:
        return status
    return None


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class ChannelKeys:
    organization: str
    name: str
    phone_number_id: str
    app_secret: bytes | None
    verify_token: str | None


@dataclass
class WebhookSettings:
    """The whatsapp_cloud channels of a loaded config, with their secrets read from `env`."""

    channels: list[ChannelKeys] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. an app_secret_env that is unset

    @classmethod
    def from_config(cls, config: Config, env: Mapping[str, str]) -> WebhookSettings:
        out = cls()
        for (organization, name), entry in sorted(config.channels.items()):
            spec = entry.model.spec
            if spec.type != "whatsapp_cloud" or not spec.phone_number_id:
                continue
            secret = _from_env(env, spec.app_secret_env)
            token = _from_env(env, spec.verify_token_env)
            label = f"channel {organization}/{name}"
            if spec.app_secret_env is None:
                out.problems.append(f"{label} has no app_secret_env: its status webhooks are rejected")
            elif secret is None:
                out.problems.append(
                    f"{label}: environment variable {spec.app_secret_env} (app_secret_env) is "
                    f"not set: its status webhooks are rejected"
                )
            if spec.verify_token_env is not None and token is None:
                out.problems.append(
                    f"{label}: environment variable {spec.verify_token_env} (verify_token_env) "
                    f"is not set"
                )
            out.channels.append(ChannelKeys(
                organization, name, str(spec.phone_number_id),
                secret.encode() if secret is not None else None, token,
            ))
        return out

    def secrets(self) -> list[bytes]:
        return list(dict.fromkeys(c.app_secret for c in self.channels if c.app_secret))

    def verify(self, body: bytes, header: str | None) -> set[bytes]:
        """The secrets under which `header` signs `body`; raises WebhookError when none does."""
        if not header:
            raise WebhookError(401, f"missing {SIGNATURE_HEADER}")
        algorithm, _, given = header.strip().partition("=")
        if algorithm != "sha256" or not given:
            raise WebhookError(401, f"{SIGNATURE_HEADER} must be sha256=<hex>")
        given_bytes = given.strip().lower().encode()
        matched = set()
        for secret in self.secrets():
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(expected, given_bytes):
                matched.add(secret)
        if not matched:
            raise WebhookError(403, "signature does not verify")
        return matched

    def organizations(self, phone_number_id: str, secrets: set[bytes]) -> list[str]:
        """Organizations owning a channel with this number whose secret signed the body."""
        return sorted({
            c.organization for c in self.channels
            if c.phone_number_id == phone_number_id and c.app_secret in secrets
        })

    def verify_token_matches(self, token: str) -> bool:
        given = token.encode()
        ok = False
        for channel in self.channels:
            if channel.verify_token is not None:
                ok |= hmac.compare_digest(channel.verify_token.encode(), given)
        return ok


def _from_env(env: Mapping[str, str], name: str | None) -> str | None:
    if not name:
        return None
    value = env.get(name)
    return value if value else None


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class ParsedStatus:
    phone_number_id: str
    message_id: str
    status: str  # may be one this module ignores ("deleted", "warning", ...)
    timestamp: datetime | None
    error_code: str | None
    error: str | None


def parse_payload(body: bytes) -> list[ParsedStatus]:
    """Every status of a Cloud API webhook body, or WebhookError(400) for a malformed one.
    Changes without statuses (inbound messages, template updates) contribute nothing."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookError(400, "body is not JSON") from None
    entries = _field(data, "entry", list, "the body")
    out: list[ParsedStatus] = []
    for entry in entries:
        for change in _field(entry, "changes", list, "entry[]"):
            value = _field(change, "value", dict, "changes[]")
            statuses = value.get("statuses")
            if statuses is None:
                continue
            if not isinstance(statuses, list):
                raise WebhookError(400, "value.statuses must be a list")
            metadata = _field(value, "metadata", dict, "value")
            phone_number_id = _field(metadata, "phone_number_id", str, "value.metadata")
            out.extend(_status(phone_number_id, item) for item in statuses)
    return out


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict):
        raise WebhookError(400, f"{where} must be an object")
    value = obj.get(key)
    if not isinstance(value, kind):
        raise WebhookError(400, f"{where}.{key} is missing or not a {kind.__name__}")
    return value


def _status(phone_number_id: str, item: Any) -> ParsedStatus:
    message_id = _field(item, "id", str, "statuses[]")
    status = _field(item, "status", str, "statuses[]")
    if not message_id or len(message_id) > 200:
        raise WebhookError(400, "statuses[].id must be a message id of 1 to 200 characters")
    timestamp = None
    raw = item.get("timestamp")
    if raw is not None:
        try:
            timestamp = datetime.fromtimestamp(int(raw), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise WebhookError(400, "statuses[].timestamp must be unix seconds") from None
    code = error = None
    errors = item.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code = str(first["code"])[:40] if first.get("code") is not None else None
        details = first.get("error_data", {}).get("details") if isinstance(
            first.get("error_data"), dict) else None
        error = " - ".join(str(p) for p in (first.get("title") or first.get("message"), details) if p)
    return ParsedStatus(phone_number_id, message_id, status, timestamp, code, error or None)


def scope(parsed: Iterable[ParsedStatus], settings: WebhookSettings, secrets: set[bytes]
          ) -> tuple[list[StatusUpdate], int]:
    """Statuses paired with the organizations they may touch; the count of those dropped
    (a status name we do not track, or a number no signing channel owns)."""
    updates: list[StatusUpdate] = []
    dropped = 0
    for p in parsed:
        organizations = settings.organizations(p.phone_number_id, secrets)
        if p.status not in STATUSES or not organizations:
            dropped += 1
            continue
        for organization in organizations:
            updates.append(StatusUpdate(organization, p.message_id, p.status, p.timestamp,
                                        p.error_code if p.status == "failed" else None,
                                        p.error if p.status == "failed" else None))
    return updates, dropped


# --------------------------------------------------------------------------- applying

_RANK_OF_STATUS = sa.case(
    {name: rank for name, rank in MESSAGE_RANK.items()}, value=messages.c.status, else_=9
)


def _stamp(column: sa.Column[Any], status: str) -> Any:
    return sa.case(
        (sa.bindparam("b_status") == status, sa.func.coalesce(column, sa.bindparam("b_at", type_=UTCDateTime()))),
        else_=column,
    )


_MESSAGE_UPDATE = (
    messages.update()
    .where(
        messages.c.message_id == sa.bindparam("b_wamid"),
        messages.c.organization == sa.bindparam("b_org"),
        sa.bindparam("b_below", type_=sa.Integer) > _RANK_OF_STATUS,
    )
    .values(
        status=sa.bindparam("b_status"),
        updated_at=sa.bindparam("b_now"),
        sent_at=_stamp(messages.c.sent_at, "sent"),
        delivered_at=_stamp(messages.c.delivered_at, "delivered"),
        read_at=_stamp(messages.c.read_at, "read"),
        failed_at=_stamp(messages.c.failed_at, "failed"),
        error_code=sa.case((sa.bindparam("b_status") == "failed", sa.bindparam("b_code")),
                           else_=messages.c.error_code),
        error=sa.case((sa.bindparam("b_status") == "failed", sa.bindparam("b_error")),
                      else_=messages.c.error),
    )
)

_later = messages.alias("later")
_RECIPIENT_RANK = sa.case(
    {name: rank for name, rank in RECIPIENT_RANK.items()}, value=recipients.c.status, else_=9
)
_RECIPIENT_UPDATE = (
    recipients.update()
    .where(
        recipients.c.id == sa.bindparam("b_rid"),
        RECIPIENT_RANK["sent"] <= _RECIPIENT_RANK,
        sa.bindparam("b_below", type_=sa.Integer) > _RECIPIENT_RANK,
        # Only the recipient's latest send speaks for it: a late `read` of the first message
        # says nothing about the reminder sent after it.
        ~sa.exists().where(
            _later.c.recipient_id == sa.bindparam("b_rid"), _later.c.step > sa.bindparam("b_step")
        ),
    )
    .values(
        status=sa.bindparam("b_status"),
        updated_at=sa.bindparam("b_now"),
        error_code=sa.case((sa.bindparam("b_status") == "failed", sa.bindparam("b_code")),
                           else_=recipients.c.error_code),
    )
)
# Recipient status raised from below this rank: delivered from sent; read from sent/delivered;
# failed from sent (the failed message is the latest, so the recipient is not past `sent`).
RECIPIENT_BELOW: Mapping[str, int] = {"delivered": 3, "read": 4, "failed": 3}


def apply_statuses(session: Executor, statuses: Sequence[StatusUpdate], *, now: datetime
                   ) -> ApplyResult:
    """Apply statuses in the order given (see the module docstring); the caller commits.

    Rows are written in (organization, wamid) order, then recipients by id, so concurrent
    transactions lock rows in the same order and cannot deadlock; the sort is stable, so the
    statuses of one message keep their order. Outcomes come back in the caller's order.
    """
    order = sorted(range(len(statuses)),
                   key=lambda i: (statuses[i].organization, statuses[i].message_id))
    result = ApplyResult()
    for batch in chunks([statuses[i] for i in order]):
        result.add(_apply_batch(session, batch, now))
    outcomes = [""] * len(statuses)
    for position, outcome in zip(order, result.outcomes, strict=True):
        outcomes[position] = outcome
    result.outcomes = outcomes
    return result


def _returning_update(status: str) -> Any:
    """One status's UPDATE, guarded by the statuses it may follow, returning what changed."""
    column = messages.c[f"{status}_at"]
    values: dict[str, Any] = {
        "status": status,
        "updated_at": sa.bindparam("b_now"),
        column.name: sa.func.coalesce(column, sa.bindparam("b_at", type_=UTCDateTime())),
    }
    if status == "failed":
        values.update(error_code=sa.bindparam("b_code"), error=sa.bindparam("b_error"))
    below = [name for name, rank in MESSAGE_RANK.items() if rank < APPLIES_BELOW[status]]
    return (
        messages.update()
        .where(messages.c.message_id == sa.bindparam("b_wamid"),
               messages.c.organization == sa.bindparam("b_org"),
               messages.c.status.in_(below))
        .values(**values)
        .returning(messages.c.recipient_id, messages.c.step, messages.c.status,
                   messages.c.error_code, messages.c.organization, messages.c.channel)
    )


_RETURNING_UPDATES: Mapping[str, Any] = {status: _returning_update(status) for status in STATUSES}
# Up to this many statuses (Meta usually sends one per callback) are applied one UPDATE ...
# RETURNING each: two statements for the usual callback instead of four. Bigger batches read
# first and write with executemany.
SMALL_BATCH = 4


def _apply_small(session: Executor, batch: Sequence[StatusUpdate], now: datetime) -> ApplyResult:
    result = ApplyResult()
    raised: list[Any] = []
    unmatched: list[dict[str, Any]] = []
    late: list[StatusUpdate] = []
    for s in batch:
        outcome, row = _apply_one(session, s, now)
        result.outcomes.append(outcome)
        if outcome == "applied":
            raised.append(row)
        elif outcome == "ignored":
            late.append(s)
        else:
            unmatched.append(_unmatched_row(s, now))
    _insert_unmatched(session, unmatched)
    _backfill(session, late, now)
    result.recipients = _raise_rows(session, [r for r in raised if r.status in RAISES_RECIPIENT], now)
    _count_failures(session, Counter((r.organization, r.channel, r.error_code)
                                     for r in raised if r.status == "failed"))
    return result


def _count_failures(session: Executor, failed: Mapping[tuple[str, str, str | None], int]) -> None:
    """Add accepted messages now reported failed to /metrics' failure totals (send_counts,
    where the engine's failed attempts are counted too). Last in the transaction, in key order,
    as the engine's record does: every writer takes the shared total rows after all its other
    rows, so none can hold one while waiting for a row another holds."""
    if not failed:
        return
    stmt = dialect_insert(session, send_counts)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[send_counts.c.organization, send_counts.c.channel,
                            send_counts.c.outcome, send_counts.c.code],
            set_={"n": send_counts.c.n + stmt.excluded.n},
        ),
        [{"organization": org, "channel": channel, "outcome": "failed", "code": code or "",
          "n": n} for (org, channel, code), n in sorted(
              failed.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or ""))],
    )


def _apply_one(session: Executor, s: StatusUpdate, now: datetime) -> tuple[str, Any]:
    params = {"b_wamid": s.message_id, "b_org": s.organization, "b_at": s.timestamp or now,
              "b_now": now, "b_code": s.error_code, "b_error": s.error}
    for _ in range(3):
        row = session.execute(_RETURNING_UPDATES[s.status], params).first()
        if row is not None:
            return "applied", row
        current = session.execute(
            sa.select(messages.c.status).where(messages.c.message_id == s.message_id,
                                               messages.c.organization == s.organization)
        ).scalar()
        if current is None:
            return "unmatched", None
        if next_status(current, s.status) is None:
            return "ignored", None
        # On PostgreSQL each statement sees the data committed when it starts: the sender's
        # transaction recording this wamid committed between the UPDATE (which did not see
        # the row) and this read (which does). Apply again rather than drop the status.
    return "ignored", None


def _backfill_update(status: str) -> Any:
    later = [name for name in ("delivered", "read") if MESSAGE_RANK[name] > MESSAGE_RANK[status]]
    column = messages.c[f"{status}_at"]
    return (
        messages.update()
        .where(messages.c.message_id == sa.bindparam("b_wamid"),
               messages.c.organization == sa.bindparam("b_org"),
               # Plain comparisons: an IN list is an "expanding" parameter, which executemany
               # cannot take.
               sa.or_(*(messages.c.status == name for name in later)), column.is_(None))
        .values({column.name: sa.bindparam("b_at", type_=UTCDateTime())})
    )


# A `sent` or `delivered` that arrives after the message moved past it changes no status, but
# its time is still the truth about when that happened: it fills the empty timestamp.
_BACKFILL: Mapping[str, Any] = {status: _backfill_update(status) for status in ("sent", "delivered")}


def _backfill(session: Executor, late: Sequence[StatusUpdate], now: datetime) -> None:
    for status, stmt in _BACKFILL.items():
        params = [{"b_wamid": s.message_id, "b_org": s.organization, "b_at": s.timestamp or now}
                  for s in late if s.status == status]
        if params:
            session.execute(stmt, params)


def _unmatched_row(s: StatusUpdate, now: datetime) -> dict[str, Any]:
    return {"organization": s.organization, "message_id": s.message_id, "status": s.status,
            "status_at": s.timestamp, "error_code": s.error_code, "error": s.error,
            "received_at": now}


def _insert_unmatched(session: Executor, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = dialect_insert(session, unmatched_statuses).on_conflict_do_nothing(
        index_elements=[unmatched_statuses.c.organization, unmatched_statuses.c.message_id,
                        unmatched_statuses.c.status]
    )
    session.execute(stmt, rows)


def _apply_batch(session: Executor, batch: Sequence[StatusUpdate], now: datetime) -> ApplyResult:
    if len(batch) <= SMALL_BATCH:
        return _apply_small(session, batch, now)
    result = ApplyResult()
    wamids = list(dict.fromkeys(s.message_id for s in batch))
    rows = session.execute(
        sa.select(messages.c.id, messages.c.organization, messages.c.message_id,
                  messages.c.status, messages.c.recipient_id, messages.c.step,
                  messages.c.channel)
        .where(messages.c.message_id.in_(wamids))
    ).all()
    known = {(r.organization, r.message_id): r for r in rows}
    current = {key: r.status for key, r in known.items()}
    updates: list[dict[str, Any]] = []
    late: list[StatusUpdate] = []
    unmatched: list[dict[str, Any]] = []
    for s in batch:
        key = (s.organization, s.message_id)
        if key not in known:
            result.outcomes.append("unmatched")
            unmatched.append(_unmatched_row(s, now))
            continue
        after = next_status(current[key], s.status)
        if after is None:
            result.outcomes.append("ignored")
            late.append(s)
            continue
        # Counted from the state read above; the UPDATE's own guard keeps the data right even
        # when a concurrent callback got there first (then this count is one too high).
        current[key] = after
        result.outcomes.append("applied")
        updates.append({
            "b_wamid": s.message_id, "b_org": s.organization, "b_status": s.status,
            "b_below": APPLIES_BELOW[s.status], "b_at": s.timestamp or now, "b_now": now,
            "b_code": s.error_code, "b_error": s.error,
        })
    failed: Counter[tuple[str, str, str | None]] = Counter()
    # In the order given, one executemany per run of updates: a run of `failed` ones for one
    # (channel, code) alone, so its row count says exactly how many messages it failed.
    for total, run in itertools.groupby(updates, key=lambda u: (
            (u["b_org"], known[(u["b_org"], u["b_wamid"])].channel, u["b_code"])
            if u["b_status"] == "failed" else None)):
        changed = session.execute(_MESSAGE_UPDATE, list(run))
        if total is not None:
            failed[total] += max(int(getattr(changed, "rowcount", 0) or 0), 0)
    _insert_unmatched(session, unmatched)
    _backfill(session, late, now)
    if updates:
        result.recipients = _raise_recipients(session, [known[(u["b_org"], u["b_wamid"])].id
                                                        for u in updates], now)
    _count_failures(session, failed)
    return result


def _raise_recipients(session: Executor, message_ids: Sequence[int], now: datetime) -> int:
    rows = session.execute(
        sa.select(messages.c.recipient_id, messages.c.step, messages.c.status,
                  messages.c.error_code)
        .where(messages.c.id.in_(list(dict.fromkeys(message_ids))),
               messages.c.status.in_(RAISES_RECIPIENT))
    ).all()
    return _raise_rows(session, rows, now)


def _raise_rows(session: Executor, rows: Sequence[Any], now: datetime) -> int:
    """Raise recipients to their messages' statuses; `rows` carry recipient_id, step, status
    and error_code of messages now delivered, read or failed."""
    if not rows:
        return 0
    params = [
        {"b_rid": r.recipient_id, "b_step": r.step, "b_status": r.status,
         "b_below": RECIPIENT_BELOW[r.status], "b_code": r.error_code, "b_now": now}
        for r in sorted(rows, key=lambda r: r.recipient_id)  # stable: one recipient's order kept
    ]
    changed = session.execute(_RECIPIENT_UPDATE, params)
    return max(int(getattr(changed, "rowcount", 0) or 0), 0)


def apply_unmatched(session: Executor, *, now: datetime, max_age: timedelta = UNMATCHED_MAX_AGE,
                    limit: int = 1000) -> ApplyResult:
    """Apply waiting statuses whose message now has its wamid; forget those older than
    `max_age` (a wamid that never shows up was sent by something else)."""
    session.execute(unmatched_statuses.delete().where(unmatched_statuses.c.received_at < now - max_age))
    u = unmatched_statuses
    rows = session.execute(
        sa.select(u.c.id, u.c.organization, u.c.message_id, u.c.status, u.c.status_at,
                  u.c.error_code, u.c.error)
        .join(messages, sa.and_(messages.c.message_id == u.c.message_id,
                                messages.c.organization == u.c.organization))
        .order_by(u.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return ApplyResult()
    result = apply_statuses(session, [
        StatusUpdate(r.organization, r.message_id, r.status, r.status_at, r.error_code, r.error)
        for r in rows
    ], now=now)
    session.execute(u.delete().where(u.c.id.in_([r.id for r in rows])))
    return result
