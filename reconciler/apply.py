"""`flowspec apply`: make the database's occurrences match the plan over [now, now + horizon).

Two halves:

* `diff_automation` is pure: one automation's desired plan and its actual rows in, the rows to
  insert, update and cancel out. It never proposes a write to a row in a status the dispatcher
  owns (`models.APPLY_OWNED`), and never cancels a pending row just because its time has passed
  (the dispatcher decides between running it and `missed`).
* `reconcile` streams the desired automations (one plan in memory at a time), loads only what an
  automation needs, and writes in bulk Core `executemany` batches. An automation whose
  `spec_hash`, plan inputs and coverage are unchanged is not read at all, so a no-op re-apply
  reads one row per automation and writes nothing.

`run_apply` wraps it in the revision protocol (SPEC 5): the attempted revision is recorded in its
own transaction, the whole apply runs in ONE transaction holding the writers' lock (SQLite
BEGIN IMMEDIATE, PostgreSQL advisory lock), and a failure is written on the attempted revision
after the rollback. A killed apply therefore leaves the previous state and an `attempted` row.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError

from flowspec.diagnostics import UserError
from flowspec.plan import AutomationPlan, Inputs, Occurrence
from reconciler import db as dbmod
from reconciler.models import APPLY_OWNED, HELD, automations, occurrences, revisions

# Plan status -> stored status. Skipped occurrences are preview information and are not stored.
STORED_STATUS = {"scheduled": "pending", "paused": "paused", "inactive": "inactive"}
LIVE = ("pending", *HELD)  # apply-owned and not cancelled
COMPARED = ("at", "local", "status", "reason", "detail", "overrides", "moved_by", "moved_from", "dst")
CANCEL_REMOVED = "removed"  # the key is no longer in the plan
CANCEL_AUTOMATION_REMOVED = "automation_removed"
BATCH_ROWS = 10_000
BATCH_AUTOMATIONS = 500
ANALYZE_AFTER = 100  # new automations in one apply after which PostgreSQL re-reads statistics
TEST_PAUSE_ENV = "FLOWSPEC_TEST_APPLY_PAUSE"  # test hook: sleep inside the apply transaction

AutomationAction = Literal["create", "update", "restore", "remove", "none"]


# --------------------------------------------------------------------------- desired state


class DesiredAutomation:
    """One automation as the files say it should be.

    The plan is compiled on first use only, and only for the range apply needs: an automation
    whose spec_hash, plan inputs and coverage match its row is never compiled, and one whose
    horizon merely moved on is compiled for the new end of the horizon alone.
    """

    __slots__ = ("organization", "name", "source", "timezone", "spec_hash", "is_active",
                 "is_paused", "_compile", "_spec", "_plan")

    def __init__(
        self,
        *,
        organization: str,
        name: str,
        source: str,
        timezone: str,
        spec_hash: str,
        compile: Callable[[datetime, datetime], AutomationPlan],
        spec: Callable[[], Mapping[str, Any]] = dict,
        is_active: bool = True,
        is_paused: bool = False,
    ) -> None:
        self.organization, self.name, self.source = organization, name, source
        self.timezone, self.spec_hash = timezone, spec_hash
        self.is_active, self.is_paused = is_active, is_paused
        self._compile, self._spec = compile, spec
        self._plan: tuple[datetime, datetime, AutomationPlan] | None = None

    @classmethod
    def of_plan(
        cls,
        plan: AutomationPlan,
        *,
        spec: Callable[[], Mapping[str, Any]] = dict,
        is_active: bool = True,
        is_paused: bool = False,
    ) -> DesiredAutomation:
        """From an already compiled plan (tests, benchmarks, callers holding a Plan); asked for
        a range, it gives the plan's occurrences in that range."""

        def within(lo: datetime, hi: datetime) -> AutomationPlan:
            return replace(plan, occurrences=[o for o in plan.occurrences if lo <= o.at < hi])

        return cls(
            organization=plan.organization, name=plan.name, source=plan.source,
            timezone=plan.timezone, spec_hash=plan.spec_hash, compile=within, spec=spec,
            is_active=is_active, is_paused=is_paused,
        )

    def plan_in(self, range_from: datetime, range_to: datetime) -> AutomationPlan:
        """Occurrences with range_from <= at < range_to (the compiler's range contract)."""
        if self._plan is None or self._plan[:2] != (range_from, range_to):
            self._plan = (range_from, range_to, self._compile(range_from, range_to))
        return self._plan[2]

    def spec(self) -> Mapping[str, Any]:
        return self._spec()

    @property
    def ident(self) -> tuple[str, str]:
        return (self.organization, self.name)

    @property
    def held_status(self) -> str | None:
        if not self.is_active:
            return "inactive"
        return "paused" if self.is_paused else None


def inputs_label(inputs: Inputs) -> str:
    return f"tzdata={inputs.tzdata};holidays={inputs.holidays}"


# --------------------------------------------------------------------------- pure diff


@dataclass(frozen=True, slots=True)
class ActualAutomation:
    id: int
    organization: str
    name: str
    source: str
    spec_hash: str
    timezone: str
    is_active: bool
    is_paused: bool
    planned_until: datetime | None
    plan_inputs: str | None
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class OccurrenceUpdate:
    row: Mapping[str, Any]  # the row as it is (id, key, COMPARED fields)
    values: Mapping[str, Any]  # COMPARED fields as they will be
    occurrence: Occurrence | None = None  # the plan's occurrence behind `values`, if any

    @property
    def changed(self) -> list[str]:
        return [f for f in COMPARED if _norm(self.row[f]) != _norm(self.values[f])]


@dataclass(frozen=True, slots=True)
class OccurrenceCancel:
    row: Mapping[str, Any]
    reason: str
    detail: str | None = None
    occurrence: Occurrence | None = None  # the plan's skipped occurrence, when that is why


@dataclass
class AutomationChanges:
    organization: str
    name: str
    action: AutomationAction
    source: str | None = None
    actual: ActualAutomation | None = None
    desired: DesiredAutomation | None = None
    # Only the row's bookkeeping moved (planned_until, plan_inputs, the file it was loaded
    # from): written, not reported as a change.
    bookkeeping: bool = False
    reconciled: bool = True  # its occurrences were compared up to the horizon
    inserts: list[Occurrence] = field(default_factory=list)  # new rows, as the plan has them
    updates: list[OccurrenceUpdate] = field(default_factory=list)
    cancels: list[OccurrenceCancel] = field(default_factory=list)
    # Live rows and planned occurrences in the compared window (what a renderer needs to say
    # "every occurrence moved by 1h").
    live_before: int = 0
    planned: int = 0
    old_spec: Mapping[str, Any] | None = None  # the stored spec, when a renderer asks for it

    @property
    def has_changes(self) -> bool:
        return self.action != "none" or bool(self.inserts or self.updates or self.cancels)

    @property
    def needs_write(self) -> bool:
        return self.has_changes or self.bookkeeping


def desired_values(o: Occurrence) -> dict[str, Any]:
    """The row columns an occurrence of the plan determines (key, slot and COMPARED)."""
    return {
        "key": o.key,
        "slot": o.slot,
        "at": o.at,
        # == flowspec.plan.format_local, without the replace() (this runs once per row).
        "local": o.local.isoformat(timespec="seconds"),
        "status": STORED_STATUS[o.status],
        "reason": o.reason,
        "detail": o.detail,
        "overrides": dict(o.overrides),
        "moved_by": o.moved_by,
        "moved_from": o.moved_from,
        "dst": o.dst,
    }


def _norm(value: Any) -> Any:
    # JSON columns come back through a round trip; compare what is stored, not Python identity.
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def automation_action(desired: DesiredAutomation | None, actual: ActualAutomation | None) -> AutomationAction:
    if desired is None:
        return "remove" if actual is not None and actual.removed_at is None else "none"
    if actual is None:
        return "create"
    if actual.removed_at is not None:
        return "restore"
    # `source` is left out: the same file reached by another path is the same automation.
    same = (
        actual.spec_hash == desired.spec_hash
        and actual.timezone == desired.timezone
        and actual.is_active == desired.is_active
        and actual.is_paused == desired.is_paused
    )
    return "none" if same and desired.spec_hash else "update"


def reconcile_window(
    desired: DesiredAutomation,
    actual: ActualAutomation | None,
    *,
    now: datetime,
    horizon_end: datetime,
    inputs: str,
) -> datetime | None:
    """Where this automation's comparison starts, or None when there is nothing to compare.

    Unchanged spec, inputs and a coverage reaching the horizon: nothing. Unchanged but the
    horizon moved on: only the occurrences past the old coverage can be new (the compiler is
    pure, so the ones before it are what the last apply wrote). Anything else: from `now`.
    """
    if actual is None or automation_action(desired, actual) != "none" or actual.plan_inputs != inputs:
        return now
    if actual.planned_until is None:
        return now
    if actual.planned_until >= horizon_end:
        return None
    return max(actual.planned_until, now)


def diff_automation(
    desired: DesiredAutomation | None,
    actual: ActualAutomation | None,
    rows: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    since: datetime,
    horizon_end: datetime,
) -> AutomationChanges:
    """One automation's changes. `rows` are its stored occurrences that may matter: every row at
    or after `since`, and every row whose key the plan in [since, horizon_end) names."""
    some = desired if desired is not None else actual
    assert some is not None
    out = AutomationChanges(
        some.organization, some.name, automation_action(desired, actual), source=some.source,
        actual=actual, desired=desired,
    )
    if desired is None:
        # Removed from the files: its live rows are cancelled, its history stays.
        out.cancels = [OccurrenceCancel(r, CANCEL_AUTOMATION_REMOVED) for r in rows if r["status"] in LIVE]
        return out

    by_key = {r["key"]: r for r in rows}
    seen: set[str] = set()
    for o in desired.plan_in(since, horizon_end).occurrences:
        if not (since <= o.at < horizon_end):
            continue
        seen.add(o.key)
        row = by_key.get(o.key)
        if o.status == "skipped":
            if row is not None and row["status"] in LIVE:
                out.cancels.append(OccurrenceCancel(row, o.reason or CANCEL_REMOVED, o.detail, o))
            continue
        out.planned += 1
        if row is None:
            out.inserts.append(o)
        elif row["status"] in APPLY_OWNED:
            update = OccurrenceUpdate(row, desired_values(o), o)
            if update.changed:
                out.updates.append(update)
    held = desired.held_status
    for r in rows:
        in_window = since <= r["at"] < horizon_end
        if in_window and r["status"] in LIVE:
            out.live_before += 1
        if r["key"] in seen or r["status"] not in LIVE:
            continue
        if in_window:
            out.cancels.append(OccurrenceCancel(r, CANCEL_REMOVED))
        elif held is not None and r["at"] < now and r["status"] == "pending":
            # Pausing holds what is already due too: the dispatcher must not run it late.
            values = {f: r[f] for f in COMPARED}
            out.updates.append(OccurrenceUpdate(r, {**values, "status": held}))
    return out


# --------------------------------------------------------------------------- reading


AUTOMATION_COLUMNS = (
    "id", "organization", "name", "source", "spec_hash", "timezone", "is_active", "is_paused",
    "planned_until", "plan_inputs", "removed_at",
)
ROW_COLUMNS = ("id", "key", *COMPARED)


def load_automations(conn: Connection) -> dict[tuple[str, str], ActualAutomation]:
    # The whole database: a config root owns every organization in it, so an organization
    # whose last file was deleted is still reconciled (docs/decisions.md).
    cols = [automations.c[c] for c in AUTOMATION_COLUMNS]
    result = conn.execute(sa.select(*cols).order_by(automations.c.organization, automations.c.name))
    return {(r.organization, r.name): ActualAutomation(*r) for r in result}


def load_rows(
    conn: Connection,
    actual: ActualAutomation,
    desired: DesiredAutomation | None,
    *,
    since: datetime,
    horizon_end: datetime,
) -> list[dict[str, Any]]:
    o = occurrences.c
    base = sa.select(*[o[c] for c in ROW_COLUMNS]).where(
        o.organization == actual.organization, o.automation_id == actual.id
    )
    if desired is None:
        query = base.where(o.status.in_(LIVE))
    else:
        slots = [x.slot for x in desired.plan_in(since, horizon_end).occurrences if since <= x.at < horizon_end]
        # A row the plan names may sit anywhere in time (a reschedule moves an occurrence far
        # from its slot); its slot, not its time, is what bounds it.
        cond = o.at >= since
        if slots:
            cond = sa.or_(cond, o.slot >= min(slots))
        if desired.held_status is not None:
            cond = sa.or_(cond, o.status == "pending")
        query = base.where(cond)
    return [dict(r._mapping) for r in conn.execute(query)]


# --------------------------------------------------------------------------- writing


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    cancelled: int = 0
    automations_created: int = 0
    automations_updated: int = 0
    automations_removed: int = 0

    @property
    def occurrences_changed(self) -> bool:
        return bool(self.inserted or self.updated or self.cancelled)

    @property
    def any(self) -> bool:
        return self.occurrences_changed or bool(
            self.automations_created or self.automations_updated or self.automations_removed
        )

    def add(self, c: AutomationChanges) -> None:
        self.inserted += len(c.inserts)
        self.updated += len(c.updates)
        self.cancelled += len(c.cancels)
        if c.action == "create":
            self.automations_created += 1
        elif c.action in ("update", "restore"):
            self.automations_updated += 1
        elif c.action == "remove":
            self.automations_removed += 1

    def to_json(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "cancelled": self.cancelled,
            "automations_created": self.automations_created,
            "automations_updated": self.automations_updated,
            "automations_removed": self.automations_removed,
        }


_b = sa.bindparam

INSERT_OCCURRENCE = occurrences.insert()
UPDATE_OCCURRENCE = (
    occurrences.update()
    .where(
        occurrences.c.id == _b("b_id"),
        occurrences.c.organization == _b("b_org"),
        # The dispatcher may have claimed the row since it was read (PostgreSQL): it wins.
        occurrences.c.status == _b("b_status"),
    )
    .values(
        {**{f: _b(f) for f in COMPARED}, "changed_revision_id": _b("rev"),
         "cancelled_revision_id": None, "updated_at": _b("ts")}
    )
)
CANCEL_OCCURRENCE = (
    occurrences.update()
    .where(
        occurrences.c.id == _b("b_id"),
        occurrences.c.organization == _b("b_org"),
        occurrences.c.status == _b("b_status"),
    )
    .values(
        status="cancelled", reason=_b("reason"), detail=_b("detail"),
        changed_revision_id=_b("rev"), cancelled_revision_id=_b("rev"), updated_at=_b("ts"),
    )
)
AUTOMATION_FIELDS = (
    "source", "spec", "spec_hash", "timezone", "is_active", "is_paused", "planned_until", "plan_inputs",
)
UPDATE_AUTOMATION = (
    automations.update()
    .where(automations.c.id == _b("b_id"), automations.c.organization == _b("b_org"))
    .values({**{f: _b(f) for f in AUTOMATION_FIELDS}, "changed_revision_id": _b("rev"),
             "removed_revision_id": None, "removed_at": None, "updated_at": _b("ts")})
)
BOOKKEEP_AUTOMATION = (
    automations.update()
    .where(automations.c.id == _b("b_id"), automations.c.organization == _b("b_org"))
    .values(planned_until=_b("planned_until"), plan_inputs=_b("plan_inputs"), source=_b("source"))
)
REMOVE_AUTOMATION = (
    automations.update()
    .where(automations.c.id == _b("b_id"), automations.c.organization == _b("b_org"))
    .values(removed_revision_id=_b("rev"), removed_at=_b("ts"), changed_revision_id=_b("rev"),
            planned_until=None, updated_at=_b("ts"))
)


class Writer:
    """Buffers one apply's writes and sends them as executemany batches."""

    def __init__(
        self,
        conn: Connection,
        *,
        revision_id: Callable[[], int],
        written_at: datetime,
        horizon_end: datetime,
        inputs: str,
    ) -> None:
        self.conn = conn
        self.revision_id = revision_id
        self.ts = written_at
        self.horizon_end = horizon_end
        self.inputs = inputs
        # (organization, name, row values, occurrences): inserted together at flush, when the
        # automation ids come back.
        self.new_automations: list[tuple[str, str, dict[str, Any], list[Occurrence]]] = []
        self.occ_inserts: list[dict[str, Any]] = []
        self.occ_updates: list[dict[str, Any]] = []
        self.occ_cancels: list[dict[str, Any]] = []
        self.auto_updates: list[dict[str, Any]] = []
        self.auto_bookkeeping: list[dict[str, Any]] = []
        self.auto_removes: list[dict[str, Any]] = []
        self.touched: list[tuple[str, int]] = []
        self.wrote = False
        self.created = 0
        self.analyzed = False

    def add(self, c: AutomationChanges) -> None:
        if not c.needs_write:
            return
        rev = self.revision_id() if c.has_changes else 0
        if c.action == "create":
            assert c.desired is not None
            self.new_automations.append(
                (c.organization, c.name, self._automation_values(c.desired), c.inserts)
            )
        else:
            assert c.actual is not None
            a = c.actual
            key = {"b_id": a.id, "b_org": a.organization}
            if c.action in ("update", "restore"):
                assert c.desired is not None
                self.auto_updates.append({**key, **self._automation_values(c.desired), "rev": rev, "ts": self.ts})
            elif c.action == "remove":
                self.auto_removes.append({**key, "rev": rev, "ts": self.ts})
            elif c.desired is not None:
                self.auto_bookkeeping.append({
                    **key, "source": c.desired.source,
                    "planned_until": self.horizon_end if c.reconciled else a.planned_until,
                    "plan_inputs": self.inputs if c.reconciled else a.plan_inputs,
                })
            if c.inserts:
                self.occ_inserts.extend(self._insert_row(o, a.organization, a.id, rev) for o in c.inserts)
            for u in c.updates:
                self.occ_updates.append(
                    {"b_id": u.row["id"], "b_org": a.organization, "b_status": u.row["status"],
                     **{f: u.values[f] for f in COMPARED}, "rev": rev, "ts": self.ts}
                )
            for x in c.cancels:
                self.occ_cancels.append(
                    {"b_id": x.row["id"], "b_org": a.organization, "b_status": x.row["status"],
                     "reason": x.reason, "detail": x.detail, "rev": rev, "ts": self.ts}
                )
            if c.has_changes:
                self.touched.append((a.organization, a.id))
        if self._pending_rows() >= BATCH_ROWS or len(self.new_automations) >= BATCH_AUTOMATIONS:
            self.flush()

    def _pending_rows(self) -> int:
        return (
            len(self.occ_inserts) + len(self.occ_updates) + len(self.occ_cancels)
            + sum(len(rows) for *_, rows in self.new_automations)
        )

    def _automation_values(self, d: DesiredAutomation) -> dict[str, Any]:
        return {
            "source": d.source, "spec": dict(d.spec()), "spec_hash": d.spec_hash,
            "timezone": d.timezone, "is_active": d.is_active, "is_paused": d.is_paused,
            "planned_until": self.horizon_end, "plan_inputs": self.inputs,
        }

    def _insert_row(self, o: Occurrence, organization: str, automation_id: int, rev: int) -> dict[str, Any]:
        # One dict per row, built in one go: this is the hot loop of a first apply.
        return {
            "organization": organization, "key": o.key, "automation_id": automation_id,
            "slot": o.slot, "at": o.at, "local": o.local.isoformat(timespec="seconds"),
            "status": STORED_STATUS[o.status], "reason": o.reason, "detail": o.detail,
            "overrides": dict(o.overrides), "moved_by": o.moved_by, "moved_from": o.moved_from,
            "dst": o.dst, "created_revision_id": rev, "changed_revision_id": rev,
            "cancelled_revision_id": None, "claimed_at": None, "claimed_by": None,
            "created_at": self.ts, "updated_at": self.ts,
        }

    def flush(self) -> None:
        conn = self.conn
        if self.new_automations:
            rev = self.revision_id()
            params = [
                {**values, "organization": org, "name": name, "created_revision_id": rev,
                 "changed_revision_id": rev, "execution_count": 0, "total_sent": 0,
                 "total_delivered": 0, "total_read": 0, "total_completed": 0, "total_failed": 0,
                 "created_at": self.ts, "updated_at": self.ts}
                for org, name, values, _ in self.new_automations
            ]
            result = conn.execute(
                automations.insert().returning(
                    automations.c.id, automations.c.organization, sort_by_parameter_order=True
                ),
                params,
            )
            for (auto_id, org), (*_, rows) in zip(result.all(), self.new_automations, strict=True):
                self.occ_inserts.extend(self._insert_row(o, org, auto_id, rev) for o in rows)
                self.touched.append((org, auto_id))
            self.created += len(self.new_automations)
            self.new_automations = []
            if conn.dialect.name == "postgresql" and self.created >= ANALYZE_AFTER and not self.analyzed:
                # A table PostgreSQL has no statistics for is planned as tiny: every foreign-key
                # check of the occurrences about to be inserted then scans it (measured 12s
                # instead of 0.9s for 100k rows). Fresh statistics make it an index lookup.
                conn.exec_driver_sql("ANALYZE automations")
                self.analyzed = True
        for stmt, buf in (
            (UPDATE_AUTOMATION, self.auto_updates),
            (REMOVE_AUTOMATION, self.auto_removes),
            (BOOKKEEP_AUTOMATION, self.auto_bookkeeping),
            (INSERT_OCCURRENCE, self.occ_inserts),
            (UPDATE_OCCURRENCE, self.occ_updates),
            (CANCEL_OCCURRENCE, self.occ_cancels),
        ):
            if buf:
                conn.execute(stmt, buf)
                self.wrote = True
                buf.clear()
        _test_pause(self.wrote)

    def finish(self) -> None:
        self.flush()
        self._update_next_scheduled()

    def _update_next_scheduled(self) -> None:
        # The earliest pending occurrence is what the dispatcher acts on next; computed by the
        # database from the rows as they now are.
        a, o = automations.c, occurrences.c
        earliest = (
            sa.select(sa.func.min(o.at))
            .where(o.organization == a.organization, o.automation_id == a.id, o.status == "pending")
            .scalar_subquery()
        )
        by_org: dict[str, list[int]] = {}
        for org, auto_id in self.touched:
            by_org.setdefault(org, []).append(auto_id)
        for org, ids in by_org.items():
            for i in range(0, len(ids), 500):
                self.conn.execute(
                    automations.update()
                    .where(a.organization == org, a.id.in_(ids[i : i + 500]))
                    .values(next_scheduled_at=earliest)
                )
        self.touched = []


def _test_pause(wrote: bool) -> None:
    """Test hook: hold the open apply transaction so a test can kill the process mid-apply."""
    seconds = os.environ.get(TEST_PAUSE_ENV)
    if seconds and wrote:
        print("apply: paused inside the transaction (test hook)", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


# --------------------------------------------------------------------------- reconcile


@dataclass
class ReconcileResult:
    counts: Counts = field(default_factory=Counts)
    changed: list[AutomationChanges] = field(default_factory=list)  # kept when asked (dry run)
    revision_id: int | None = None


def reconcile(
    conn: Connection,
    desired: Iterable[DesiredAutomation],
    *,
    now: datetime,
    horizon_end: datetime,
    inputs: Inputs,
    written_at: datetime,
    revision_id: Callable[[], int] | None = None,
    dry_run: bool = False,
    keep_changes: bool = False,
    on_changes: Callable[[AutomationChanges], None] | None = None,
) -> ReconcileResult:
    """Diff the desired automations against the rows and (unless `dry_run`) write the changes."""
    label = inputs_label(inputs)
    result = ReconcileResult()
    actual = load_automations(conn)
    writer = None
    if not dry_run:
        assert revision_id is not None
        writer = Writer(conn, revision_id=revision_id, written_at=written_at,
                        horizon_end=horizon_end, inputs=label)

    def handle(c: AutomationChanges) -> None:
        result.counts.add(c)
        if c.has_changes:
            if keep_changes:
                result.changed.append(c)
            if on_changes is not None:
                on_changes(c)
        if writer is not None:
            writer.add(c)

    seen: set[tuple[str, str]] = set()
    for d in desired:
        ident = d.ident
        if ident in seen:
            raise ValueError(f"automation {ident[0]}/{ident[1]} is in the plan twice")
        seen.add(ident)
        a = actual.pop(ident, None)
        since = reconcile_window(d, a, now=now, horizon_end=horizon_end, inputs=label)
        if since is None:
            assert a is not None
            if a.source != d.source:
                handle(AutomationChanges(d.organization, d.name, "none", source=d.source, actual=a,
                                         desired=d, bookkeeping=True, reconciled=False))
            continue
        rows = load_rows(conn, a, d, since=since, horizon_end=horizon_end) if a is not None else []
        c = diff_automation(d, a, rows, now=now, since=since, horizon_end=horizon_end)
        c.bookkeeping = a is not None and c.action == "none"
        handle(c)
    for a in actual.values():
        if a.removed_at is not None:
            continue
        rows = load_rows(conn, a, None, since=now, horizon_end=horizon_end)
        handle(diff_automation(None, a, rows, now=now, since=now, horizon_end=horizon_end))
    if writer is not None:
        writer.finish()
    return result


# --------------------------------------------------------------------------- config identity


@dataclass(frozen=True)
class ConfigIdentity:
    """What a revision records about the files: content hash always, git commit when there is one."""

    content_hash: str
    root: str | None = None
    git_commit: str | None = None
    git_dirty: bool = False

    @property
    def short(self) -> str:
        parts = []
        if self.git_commit:
            parts.append(f"git {self.git_commit[:7]}{'+dirty' if self.git_dirty else ''}")
        parts.append(f"content {self.content_hash[:19]}")
        return ", ".join(parts)


def config_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[Path, list[Path]]:
    """Every file a config root holds (hidden ones excepted), and the root they are named from."""
    resolved = [Path(p).resolve() for p in paths]
    files: list[Path] = []
    for p in resolved:
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    files.append(f)
    dirs = [p if p.is_dir() else p.parent for p in resolved]
    root = Path(os.path.commonpath([str(d) for d in dirs])) if dirs else Path.cwd()
    return root, sorted(set(files))


def content_hash(paths: Sequence[str | os.PathLike[str]]) -> tuple[Path, str]:
    """sha256 over (path relative to the root, bytes) of every file: where the files sit on a
    machine does not matter, what they say does."""
    root, files = config_files(paths)
    h = hashlib.sha256()
    for f in files:
        rel = f.relative_to(root).as_posix().encode()
        data = f.read_bytes()
        h.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big") + data)
    return root, "sha256:" + h.hexdigest()


def git_state(root: Path) -> tuple[str | None, bool]:
    """(HEAD commit, uncommitted changes under root) when root is inside a git work tree."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )
        if head.returncode != 0:
            return None, False
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "."],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, False
    return head.stdout.strip() or None, bool(dirty.stdout.strip())


def config_identity(paths: Sequence[str | os.PathLike[str]]) -> ConfigIdentity:
    root, digest = content_hash(paths)
    commit, dirty = git_state(root)
    return ConfigIdentity(digest, str(root), commit, dirty)


# --------------------------------------------------------------------------- revisions + run


@dataclass
class ApplyResult:
    counts: Counts
    revision_id: int | None  # the revision now live (new, or the unchanged one re-checked)
    new_revision: bool
    dry_run: bool
    changed: list[AutomationChanges] = field(default_factory=list)


def latest_applied(conn: Connection) -> Row[Any] | None:
    r = revisions.c
    return conn.execute(
        sa.select(revisions)
        .where(r.status == "applied")
        .order_by(r.applied_seq.desc())
        .limit(1)
    ).first()


def _same_content(row: Row[Any] | None, ident: ConfigIdentity) -> bool:
    return row is not None and (row.content_hash, row.git_commit) == (ident.content_hash, ident.git_commit)


def _revision_values(ident: ConfigIdentity, inputs: Inputs, now: datetime, horizon_end: datetime,
                     written_at: datetime) -> dict[str, Any]:
    return {
        "content_hash": ident.content_hash, "git_commit": ident.git_commit,
        "git_dirty": ident.git_dirty, "config_root": ident.root, "plan_inputs": inputs_label(inputs),
        "horizon_from": now, "horizon_to": horizon_end, "inserted": 0, "updated": 0,
        "cancelled": 0, "created_at": written_at,
    }


def run_apply(
    database: dbmod.Database,
    desired: Iterable[DesiredAutomation],
    *,
    ident: ConfigIdentity,
    inputs: Inputs,
    now: datetime,
    horizon_end: datetime,
    written_at: datetime,
    dry_run: bool = False,
    keep_changes: bool = False,
    on_changes: Callable[[AutomationChanges], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ApplyResult:
    """The revision protocol around `reconcile` (module docstring).

    `written_at` stamps the rows; `clock` gives the moment the apply committed (read after the
    writers' lock was held, so a revision that waited is not stamped with its start time).
    """
    engine = database.engine
    if dry_run:
        with dbmod.database_errors(database), engine.connect() as conn, conn.begin():
            res = reconcile(conn, desired, now=now, horizon_end=horizon_end, inputs=inputs,
                            written_at=written_at, dry_run=True, keep_changes=keep_changes,
                            on_changes=on_changes)
            live = latest_applied(conn)
        return ApplyResult(res.counts, live.id if live else None, False, True, res.changed)

    values = _revision_values(ident, inputs, now, horizon_end, written_at)
    attempted: int | None = None
    with dbmod.database_errors(database), dbmod.write_transaction(engine) as conn:
        if not _same_content(latest_applied(conn), ident):
            attempted = conn.execute(
                revisions.insert().values(**values, status="attempted").returning(revisions.c.id)
            ).scalar_one()
    try:
        with dbmod.write_transaction(engine) as conn:
            dbmod.lock_writers(conn)
            live = latest_applied(conn)
            revision: list[int] = [attempted] if attempted is not None else []

            def revision_id() -> int:
                # Same files as the live revision but the horizon moved on: the new rows still
                # need a revision of their own, created now, inside the apply transaction.
                if not revision:
                    revision.append(conn.execute(
                        revisions.insert().values(**values, status="attempted").returning(revisions.c.id)
                    ).scalar_one())
                return revision[0]

            res = reconcile(conn, desired, now=now, horizon_end=horizon_end, inputs=inputs,
                            written_at=written_at, revision_id=revision_id,
                            keep_changes=keep_changes, on_changes=on_changes)
            c = res.counts
            if revision or not _same_content(live, ident):
                rid = revision_id()
                r = revisions.c
                seq = sa.select(sa.func.coalesce(sa.func.max(r.applied_seq), 0) + 1).scalar_subquery()
                done = clock()
                conn.execute(
                    revisions.update().where(r.id == rid).values(
                        status="applied", applied_seq=seq, finished_at=done, inserted=c.inserted,
                        updated=c.updated, cancelled=c.cancelled, checked_at=done,
                    )
                )
                return ApplyResult(c, rid, True, False, res.changed)
            assert live is not None
            conn.execute(revisions.update().where(revisions.c.id == live.id).values(checked_at=clock()))
            return ApplyResult(c, live.id, False, False, res.changed)
    except BaseException as exc:
        _record_failure(database, attempted, values, exc)
        if isinstance(exc, DBAPIError):
            reason = dbmod.describe_error(exc, database.url)
            raise UserError(
                f"apply failed and changed nothing ({_failed_label(attempted)}): "
                f"database {database.masked_url}: {reason}"
            ) from None
        raise


def _failed_label(attempted: int | None) -> str:
    return f"revision {attempted} recorded as failed" if attempted else "recorded as a failed revision"


def _record_failure(database: dbmod.Database, attempted: int | None, values: dict[str, Any],
                    exc: BaseException) -> None:
    message = (dbmod.describe_error(exc, database.url) if isinstance(exc, DBAPIError)
               else f"{type(exc).__name__}: {exc}")[:2000]
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    try:
        with dbmod.write_transaction(database.engine) as conn:
            if attempted is not None:
                conn.execute(revisions.update().where(revisions.c.id == attempted)
                             .values(status="failed", error=message))
            else:
                conn.execute(revisions.insert().values(**values, status="failed", error=message))
    except Exception:
        # The database is gone too; the attempted row (if any) still tells the story.
        pass
