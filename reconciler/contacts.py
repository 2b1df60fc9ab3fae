"""Contacts: CSV import (upsert by id), opt-out and opt-in, organization-scoped.

A CSV has a header; `id` is required and the key; `phone` is E.164; `tags` is split on `;`;
`opted_out` is a boolean; every other column is an attribute (`first_name`, `city`, ...) that a
flow reads as `{{contact.<column>}}`. A bad row is reported with its line number and skipped;
`strict=True` writes nothing when any row is bad.

Rules a re-import follows (docs/decisions.md, "Contacts and webhooks"):

- The file is the truth for the columns it has: a value replaces the stored one and an empty
  cell clears it. Attributes from columns the file does not have are kept.
- Consent is sticky: `opted_out=true` opts a contact out, but `false` (or an empty cell) never
  opts one back in; only `flowspec contacts opt-in` does. An old export re-imported must not
  re-subscribe someone who asked to stop.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from flowspec.diagnostics import UserError
from reconciler.models import contacts

Executor = Connection | Session

SPECIAL_COLUMNS = ("id", "phone", "tags", "opted_out")
MAX_ID_LENGTH = 200
# E.164: "+", a country code that does not start with 0, at most 15 digits in all. Fewer than
# 7 digits is no real subscriber number, so it is far more likely a typo than a phone.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Formatting people type inside numbers; dropped before checking, so "+55 11 99999-0001" passes.
_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/]")
_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n", ""})
# Keeps every statement under SQLite's bound-parameter limit, with room to spare.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A CSV row that was not imported, and why."""

    file: str
    line: int  # 1-based physical line where the record starts
    message: str

    def render(self) -> str:
        return f"{self.file}:{self.line}: error: {self.message}"


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One valid CSV row. A field is None when the file has no such column (keep what is
    stored); for columns the file has, an empty cell is "" (phone), [] (tags) or absent."""

    line: int
    id: str
    phone: str | None
    has_phone: bool
    tags: tuple[str, ...] | None
    opted_out: bool | None  # None: no opted_out column
    attributes: Mapping[str, str]
    cleared: tuple[str, ...]  # attribute columns whose cell was empty


@dataclass
class ParsedCsv:
    file: str
    columns: list[str]
    records: list[ContactRecord] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


@dataclass
class ImportResult:
    file: str
    rows: int = 0  # data rows read
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Rows saying opted_out=false for a contact that has opted out: left opted out.
    kept_opted_out: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    written: bool = False  # False when strict mode refused a file with bad rows

    @property
    def skipped(self) -> int:
        return len(self.problems)


@dataclass
class OptOutResult:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- parsing


def normalize_phone(value: str) -> str:
    """The E.164 form of a phone as written, or ValueError saying what is wrong."""
    compact = _PHONE_PUNCTUATION.sub("", value)
    if not compact.startswith("+"):
        raise ValueError(
            f"phone '{value}' is not E.164: write it with + and the country code, "
            f"e.g. +5511999990001"
        )
    if not E164.fullmatch(compact):
        raise ValueError(
            f"phone '{value}' is not E.164: + then 7 to 15 digits, the first not 0 "
            f"(e.g. +5511999990001)"
        )
    return compact


def parse_bool(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"opted_out '{value}' is not a boolean: use true or false")


def split_tags(value: str) -> tuple[str, ...]:
    """`vip; early;;vip` -> ("vip", "early"): trimmed, no empties, first occurrence kept."""
    seen: dict[str, None] = {}
    for part in value.split(";"):
        tag = part.strip()
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


def read_csv(path: str | Path) -> ParsedCsv:
    """Parse a contacts CSV file. A file-level problem (missing, unreadable, no `id` column)
    raises UserError; a bad row becomes a RowProblem."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{file}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise UserError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{file}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8"
        ) from None
    return parse_csv(text, file=file)


def parse_csv(text: str, *, file: str) -> ParsedCsv:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = _numbered(reader, file)
    try:
        header_line, header = next(rows)
    except StopIteration:
        raise UserError(f"{file}: empty file; the first line must be a header with an id column") from None
    except _CsvSyntax as exc:
        raise UserError(exc.problem.render()) from None
    columns = _columns(header, file, header_line)
    parsed = ParsedCsv(file, columns)
    index = {name: i for i, name in enumerate(columns)}
    seen: dict[str, int] = {}
    while True:
        try:
            line, values = next(rows)
        except StopIteration:
            break
        except _CsvSyntax as exc:
            parsed.problems.append(exc.problem)
            break  # the reader cannot resynchronise after a broken quote
        if not values or all(not v.strip() for v in values):
            continue  # blank line
        try:
            record = _record(values, columns, index, line)
        except ValueError as exc:
            parsed.problems.append(RowProblem(file, line, str(exc)))
            continue
        first = seen.get(record.id)
        if first is not None:
            parsed.problems.append(
                RowProblem(file, line, f"duplicate id '{record.id}' (first on line {first}); "
                                       f"each contact appears once")
            )
            continue
        seen[record.id] = line
        parsed.records.append(record)
    return parsed


class _CsvSyntax(Exception):
    def __init__(self, problem: RowProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _numbered(reader: Any, file: str) -> Iterator[tuple[int, list[str]]]:
    """Rows with the physical line each starts on (a quoted cell may span lines)."""
    previous = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvSyntax(RowProblem(file, previous + 1, f"malformed CSV: {exc}")) from None
        yield previous + 1, values
        previous = reader.line_num


def _columns(header: list[str], file: str, line: int) -> list[str]:
    columns: list[str] = []
    for position, raw in enumerate(header, start=1):
        name = raw.strip()
        if not name:
            raise UserError(f"{file}:{line}: column {position} of the header has no name")
        if name.lower() in SPECIAL_COLUMNS:
            name = name.lower()
        if name in columns:
            raise UserError(f"{file}:{line}: column '{name}' appears twice in the header")
        columns.append(name)
    if "id" not in columns:
        raise UserError(
            f"{file}:{line}: the header has no 'id' column (found: {', '.join(columns)}); "
            f"every contact needs an id"
        )
    return columns


def _record(values: list[str], columns: list[str], index: Mapping[str, int], line: int) -> ContactRecord:
    if len(values) != len(columns):
        raise ValueError(
            f"row has {len(values)} values but the header has {len(columns)} columns"
        )
    contact_id = values[index["id"]].strip()
    if not contact_id:
        raise ValueError("id is empty; every contact needs an id")
    if len(contact_id) > MAX_ID_LENGTH:
        raise ValueError(f"id is longer than {MAX_ID_LENGTH} characters")
    phone: str | None = None
    has_phone = "phone" in index
    if has_phone:
        raw_phone = values[index["phone"]].strip()
        phone = normalize_phone(raw_phone) if raw_phone else None
    tags = split_tags(values[index["tags"]]) if "tags" in index else None
    opted_out = parse_bool(values[index["opted_out"]]) if "opted_out" in index else None
    attributes: dict[str, str] = {}
    cleared: list[str] = []
    for name, position in index.items():
        if name in SPECIAL_COLUMNS:
            continue
        value = values[position].strip()
        if value:
            attributes[name] = value
        else:
            cleared.append(name)
    return ContactRecord(line, contact_id, phone, has_phone, tags, opted_out, attributes, tuple(cleared))


# --------------------------------------------------------------------------- writing


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def dialect_name(conn: Executor) -> str:
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name


def dialect_insert(conn: Executor, table: sa.Table) -> Any:
    """INSERT with the dialect's ON CONFLICT support (both engines have it)."""
    if dialect_name(conn) == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def load_contacts(conn: Executor, organization: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Stored contacts by id, as plain mappings a flow can read (`id`, `phone`, `tags`,
    `opted_out`, `attributes`); ids not stored are absent."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(wanted):
        rows = conn.execute(
            sa.select(contacts.c.id, contacts.c.phone, contacts.c.tags, contacts.c.opted_out,
                      contacts.c.attributes)
            .where(contacts.c.organization == organization, contacts.c.id.in_(chunk))
        )
        for row in rows:
            found[row.id] = contact_mapping(row._mapping)
    return found


def contact_mapping(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "phone": row["phone"],
        "tags": list(row["tags"] or []),
        "opted_out": bool(row["opted_out"]),
        "attributes": dict(row["attributes"] or {}),
    }


def _merge(record: ContactRecord, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    if stored is None:
        attributes = dict(record.attributes)
        return {
            "phone": record.phone,
            "tags": list(record.tags or ()),
            "opted_out": bool(record.opted_out),
            "attributes": attributes,
        }
    attributes = dict(stored["attributes"])
    for name in record.cleared:
        attributes.pop(name, None)
    attributes.update(record.attributes)
    return {
        "phone": record.phone if record.has_phone else stored["phone"],
        "tags": list(record.tags) if record.tags is not None else list(stored["tags"]),
        "opted_out": stored["opted_out"] or bool(record.opted_out),
        "attributes": attributes,
    }


def upsert_records(
    conn: Executor, *, organization: str, records: Sequence[ContactRecord], now: datetime,
    result: ImportResult | None = None,
) -> ImportResult:
    """Insert new contacts and merge into stored ones (the rules in the module docstring)."""
    out = result if result is not None else ImportResult(file="")
    for chunk in chunks(records):
        stored = load_contacts(conn, organization, (r.id for r in chunk))
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for record in chunk:
            before = stored.get(record.id)
            merged = _merge(record, before)
            if before is None:
                out.created += 1
                inserts.append({"organization": organization, "id": record.id, **merged,
                                "created_at": now, "updated_at": now})
                continue
            if before["opted_out"] and record.opted_out is False:
                out.kept_opted_out += 1
            if all(merged[k] == before[k] for k in merged):
                out.unchanged += 1
                continue
            out.updated += 1
            updates.append({"b_id": record.id, "b_org": organization, **merged, "updated_at": now})
        if inserts:
            conn.execute(_insert_stmt(conn), inserts)
        if updates:
            conn.execute(_UPDATE, updates)
    return out


_UPDATE = (
    contacts.update()
    .where(contacts.c.organization == sa.bindparam("b_org"), contacts.c.id == sa.bindparam("b_id"))
    .values(
        phone=sa.bindparam("phone"),
        tags=sa.bindparam("tags"),
        attributes=sa.bindparam("attributes"),
        # OR with the stored flag: an import running alongside an opt-out never undoes it.
        opted_out=sa.or_(contacts.c.opted_out, sa.bindparam("opted_out", type_=sa.Boolean)),
        updated_at=sa.bindparam("updated_at"),
    )
)


def _insert_stmt(conn: Executor) -> Any:
    """INSERT that turns into the same merge-update when another writer inserted the id first."""
    stmt = dialect_insert(conn, contacts)
    return stmt.on_conflict_do_update(
        index_elements=[contacts.c.organization, contacts.c.id],
        set_={
            "phone": stmt.excluded.phone,
            "tags": stmt.excluded.tags,
            "attributes": stmt.excluded.attributes,
            "opted_out": sa.or_(contacts.c.opted_out, stmt.excluded.opted_out),
            "updated_at": stmt.excluded.updated_at,
        },
    )


def import_csv(
    conn: Executor, *, organization: str, path: str | Path, now: datetime, strict: bool = False,
) -> ImportResult:
    """Import a contacts CSV into `organization`. Bad rows are skipped and listed; with
    `strict`, any bad row means nothing is written (`result.written` is False)."""
    return import_parsed(conn, organization=organization, parsed=read_csv(path), now=now,
                         strict=strict)


def import_parsed(
    conn: Executor, *, organization: str, parsed: ParsedCsv, now: datetime, strict: bool = False,
) -> ImportResult:
    result = ImportResult(file=parsed.file, rows=len(parsed.records) + len(parsed.problems),
                          problems=list(parsed.problems))
    if strict and parsed.problems:
        return result
    upsert_records(conn, organization=organization, records=parsed.records, now=now, result=result)
    result.written = True
    return result


def set_opt_out(
    conn: Executor, *, organization: str, contact_ids: Sequence[str], opted_out: bool,
    now: datetime,
) -> OptOutResult:
    """Opt contacts out (or back in). Unknown ids are reported in `missing`; the caller decides
    whether that aborts (the CLI writes nothing unless every id exists)."""
    result = OptOutResult()
    stored = load_contacts(conn, organization, contact_ids)
    changing: list[str] = []
    for contact_id in dict.fromkeys(contact_ids):
        row = stored.get(contact_id)
        if row is None:
            result.missing.append(contact_id)
        elif row["opted_out"] == opted_out:
            result.unchanged.append(contact_id)
        else:
            changing.append(contact_id)
    if result.missing:
        return result
    for chunk in chunks(changing):
        conn.execute(
            contacts.update()
            .where(contacts.c.organization == organization, contacts.c.id.in_(chunk))
            .values(opted_out=opted_out, updated_at=now)
        )
    result.changed = changing
    return result


def opted_out_ids(conn: Executor, organization: str, contact_ids: Iterable[str]) -> set[str]:
    """Which of these contacts have opted out now: the engine asks again before every send,
    since a contact may opt out while a flow waits."""
    wanted = list(dict.fromkeys(contact_ids))
    out: set[str] = set()
    for chunk in chunks(wanted):
        rows = conn.execute(
            sa.select(contacts.c.id).where(
                contacts.c.organization == organization,
                contacts.c.id.in_(chunk),
                contacts.c.opted_out.is_(True),
            )
        )
        out.update(r.id for r in rows)
    return out
