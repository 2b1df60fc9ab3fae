"""Audiences → contacts, at fan-out time (SPEC 1.2 "Audience", 6.4).

An Automation names its audience one of three ways: `contact_ids`, `segment: {tags}` or
`audience: <Audience document>`, and an Audience document is itself `contact_ids`, `segment` or a
CSV `file`. All resolve to stored contacts of the automation's organization. Opted-out contacts
are excluded and counted; ids that match no contact are listed as missing.

A CSV `file` is found by `flowspec.validate.audience_file_path` (relative to the config root
holding the Audience document, the same rule `validate` checks), and its rows are imported with the rules of `flowspec contacts import` (reconciler.contacts) before the audience
is read back: the file is the truth for its columns, an opt-out stored in the database still
wins, and every later step (conditions on `contact.<field>`, a resumed `wait`, opt-out checks
before each send) reads one place, the contacts table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flowspec import models
from flowspec.config import Config
from flowspec.diagnostics import UserError
from flowspec.validate import audience_file_path
from reconciler.contacts import (
    Executor,
    ImportResult,
    RowProblem,
    contact_mapping,
    dialect_name,
    load_contacts,
    read_csv,
    upsert_records,
)
from reconciler.models import contacts


@dataclass
class ResolvedAudience:
    # Contacts to message, in a stable order: as listed (contact_ids, file) or by id (segment).
    # Each is a mapping a flow reads: id, phone, tags, opted_out, attributes.
    contacts: list[dict[str, Any]] = field(default_factory=list)
    opted_out: int = 0
    opted_out_ids: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # listed ids with no stored contact
    problems: list[RowProblem] = field(default_factory=list)  # bad rows of a CSV file, skipped
    source: str = ""  # what was resolved, for messages: "segment tags=vip", "file ..."
    # False when `limit` cut a segment short: these are the first contacts in its order only.
    complete: bool = True


def resolve_audience(
    session: Executor,
    *,
    organization: str,
    spec: models.AutomationSpec,
    config: Config,
    now: datetime | None = None,
    roots: Sequence[Path] = (),
    fields: bool = True,
    limit: int | None = None,
) -> ResolvedAudience:
    """The contacts an Automation's audience means right now.

    `now` stamps contacts imported from an Audience `file` (default: the clock); `roots` are
    the config paths the config was loaded from, which a relative `file` is resolved against
    (without them: the declaring document's folder). `fields=False`: a segment's contacts
    carry `id`, `phone` and `opted_out` only (fan-out needs no more, and decoding tags and
    attributes for 100,000 contacts held the first send back by a second). `limit`: a segment
    stops after that many contacts (opted-out ones included) in its order and says it is not
    `complete`; other audiences always resolve whole (a file is imported first, a list is
    read by id).
    """
    ref = spec.audience
    if ref.contact_ids is not None:
        return _by_ids(session, organization, ref.contact_ids, "contact_ids")
    if ref.segment is not None:
        return _by_segment(session, organization, ref.segment.tags, fields, limit)
    assert ref.audience is not None  # AudienceRef holds exactly one of the three
    entry = config.audiences.get((organization, ref.audience))
    if entry is None:
        raise UserError(
            f"audience '{ref.audience}' is not defined in organization '{organization}'; "
            f"add an Audience document with that name or fix the reference"
        )
    audience = entry.model.spec
    if audience.contact_ids is not None:
        return _by_ids(session, organization, audience.contact_ids, f"audience {ref.audience}")
    if audience.segment is not None:
        return _by_segment(session, organization, audience.segment.tags, fields, limit)
    path = audience_file_path(entry, roots)
    assert path is not None  # AudienceSpec holds exactly one of the three
    return _by_file(session, organization, path, now if now is not None else datetime.now(UTC))


def _partition(found: Sequence[dict[str, Any]], out: ResolvedAudience) -> ResolvedAudience:
    for contact in found:
        if contact["opted_out"]:
            out.opted_out += 1
            out.opted_out_ids.append(contact["id"])
        else:
            out.contacts.append(contact)
    return out


def _by_ids(session: Executor, organization: str, ids: Sequence[str], source: str) -> ResolvedAudience:
    wanted = list(dict.fromkeys(ids))
    stored = load_contacts(session, organization, wanted)
    out = ResolvedAudience(source=source, missing=[i for i in wanted if i not in stored])
    return _partition([stored[i] for i in wanted if i in stored], out)


def _by_segment(session: Executor, organization: str, tags: Sequence[str], fields: bool,
                limit: int | None = None) -> ResolvedAudience:
    wanted = list(dict.fromkeys(tags))
    c = contacts.c
    columns = [c.id, c.phone, c.opted_out, *([c.tags, c.attributes] if fields else [])]
    query = sa.select(*columns).where(c.organization == organization)
    if dialect_name(session) == "postgresql":
        # jsonb containment: every wanted tag is in the contact's tag array.
        query = query.where(
            sa.text("contacts.tags @> CAST(:segment_tags AS jsonb)").bindparams(
                segment_tags=json.dumps(wanted)
            )
        )
    else:
        for position, tag in enumerate(wanted):
            name = f"segment_tag_{position}"
            query = query.where(
                sa.text(
                    f"EXISTS (SELECT 1 FROM json_each(contacts.tags) WHERE json_each.value = :{name})"
                ).bindparams(**{name: tag})
            )
    query = query.order_by(c.id)
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()  # fetchall: a third of fetching by row
    out = ResolvedAudience(source="segment tags=" + ",".join(wanted),
                           complete=limit is None or len(rows) < limit)
    if fields:
        return _partition([contact_mapping(r._mapping) for r in rows], out)
    # Fan-out reads only these three; a segment may be a million contacts.
    return _partition([{"id": i, "phone": p, "opted_out": bool(o)} for i, p, o in rows], out)


def _by_file(session: Executor, organization: str, path: Path, now: datetime) -> ResolvedAudience:
    parsed = read_csv(path)
    upsert_records(session, organization=organization, records=parsed.records, now=now,
                   result=ImportResult(file=parsed.file))
    ids = [r.id for r in parsed.records]
    stored = load_contacts(session, organization, ids)
    out = ResolvedAudience(source=f"file {path}", problems=list(parsed.problems))
    return _partition([stored[i] for i in ids if i in stored], out)
