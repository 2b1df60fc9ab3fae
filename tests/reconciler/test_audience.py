"""Audiences resolve to stored contacts (opted-out excluded and counted); conversations are
created once per (organization, channel, contact) and reused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from reconciler_helpers import invoke, read

from flowspec.config import Config, load_config
from flowspec.diagnostics import UserError
from reconciler import db as dbmod
from reconciler.audience import ResolvedAudience, resolve_audience
from reconciler.conversations import ensure_conversations

NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
CONTACTS = (
    "id,phone,first_name,tags,opted_out\n"
    "c-1,+5511999990001,Ana,vip;early,false\n"
    "c-2,+5511999990002,Bruno,early,false\n"
    "c-3,+5511999990003,Carla,vip;early,true\n"
    "c-4,+5511999990004,Diego,vip,false\n"
)


def doc(kind: str, name: str, spec: dict[str, Any], organization: str = "acme") -> str:
    return json.dumps({"apiVersion": "flowspec/v1", "kind": kind,
                       "metadata": {"name": name, "organization": organization}, "spec": spec})


def automation(audience: dict[str, Any], name: str = "promo", organization: str = "acme") -> str:
    return doc("Automation", name, {
        "flow": "hello", "whatsapp_number": "out", "audience": audience,
        "schedule": {"recurrence_type": "daily", "start_date": "2026-01-01", "start_time": "09:00"},
    }, organization)


def make_config(root: Path, *docs: str) -> Config:
    root.mkdir(parents=True, exist_ok=True)
    base = [
        doc("Channel", "out", {"type": "outbox", "path": "out.jsonl"}),
        doc("Flow", "hello", {"start": "send", "nodes": {
            "send": {"type": "send_text", "text": "Hi", "next": "done"}, "done": {"type": "end"}}}),
    ]
    (root / "config.yaml").write_text("\n---\n".join([*base, *docs]))
    config = load_config([root])
    assert not config.diagnostics, config.diagnostics
    return config


def imported(db_url: str, tmp_path: Path, text: str = CONTACTS, organization: str = "acme") -> None:
    path = tmp_path / f"import-{organization}.csv"
    path.write_text(text)
    result = invoke("contacts", "import", str(path), "--organization", organization, "--db", db_url)
    assert result.code == 0, result.output


def resolve(db_url: str, config: Config, name: str = "promo", organization: str = "acme",
            fields: bool = True) -> ResolvedAudience:
    entry = next(a for a in config.automations if a.name == name and a.organization == organization)
    database = dbmod.open_database(db_url)
    try:
        with dbmod.write_transaction(database.engine) as conn:
            return resolve_audience(conn, organization=organization, spec=entry.model.spec,
                                    config=config, now=NOW, fields=fields)
    finally:
        database.dispose()


def ids(resolved: ResolvedAudience) -> list[str]:
    return [c["id"] for c in resolved.contacts]


def test_contact_ids_keep_order_list_missing_and_exclude_opted_out(db_url: str, tmp_path: Path) -> None:
    """contact_ids resolve in the order written (duplicates once); unknown ids are listed as
    missing; an opted-out contact is left out and counted."""
    imported(db_url, tmp_path)
    config = make_config(tmp_path / "cfg", automation({"contact_ids": ["c-4", "c-9", "c-3", "c-1", "c-4"]}))
    resolved = resolve(db_url, config)
    assert ids(resolved) == ["c-4", "c-1"]
    assert resolved.missing == ["c-9"]
    assert (resolved.opted_out, resolved.opted_out_ids) == (1, ["c-3"])
    ana = resolved.contacts[1]
    assert ana["phone"] == "+5511999990001" and ana["attributes"]["first_name"] == "Ana"
    assert ana["tags"] == ["vip", "early"]


def test_segment_needs_every_tag(db_url: str, tmp_path: Path) -> None:
    """segment {tags: [vip, early]} is the contacts carrying both tags, by id, opted-out counted."""
    imported(db_url, tmp_path)
    config = make_config(
        tmp_path / "cfg",
        automation({"segment": {"tags": ["vip", "early"]}}),
        automation({"segment": {"tags": ["vip"]}}, name="vips"),
        automation({"segment": {"tags": ["nobody"]}}, name="none"),
    )
    both = resolve(db_url, config)
    assert (ids(both), both.opted_out) == (["c-1"], 1)
    assert ids(resolve(db_url, config, "vips")) == ["c-1", "c-4"]
    assert ids(resolve(db_url, config, "none")) == []


def test_segment_without_fields_resolves_the_same_contacts_with_id_and_phone_only(
    db_url: str, tmp_path: Path
) -> None:
    """fields=False (what fan-out asks for): the same contacts in the same order with the same
    opted-out count, each with its id, phone and opted-out flag only."""
    imported(db_url, tmp_path)
    config = make_config(tmp_path / "cfg", automation({"segment": {"tags": ["vip"]}}))
    full, light = resolve(db_url, config), resolve(db_url, config, fields=False)
    assert (ids(light), light.opted_out, light.opted_out_ids) == (
        ids(full), full.opted_out, full.opted_out_ids)
    assert [(c["phone"], sorted(c)) for c in light.contacts] == [
        (c["phone"], ["id", "opted_out", "phone"]) for c in full.contacts]
    assert any(c["attributes"] for c in full.contacts)


def test_audience_documents_with_ids_and_segment(db_url: str, tmp_path: Path) -> None:
    """An Automation naming an Audience document gets that document's contact_ids or segment."""
    imported(db_url, tmp_path)
    config = make_config(
        tmp_path / "cfg",
        doc("Audience", "pair", {"contact_ids": ["c-2", "c-3"]}),
        doc("Audience", "early", {"segment": {"tags": ["early"]}}),
        automation({"audience": "pair"}),
        automation({"audience": "early"}, name="early-promo"),
    )
    pair = resolve(db_url, config)
    assert (ids(pair), pair.opted_out) == (["c-2"], 1)
    assert ids(resolve(db_url, config, "early-promo")) == ["c-1", "c-2"]


def test_file_audience_imports_its_rows_and_keeps_stored_opt_outs(db_url: str, tmp_path: Path) -> None:
    """A CSV `file`, relative to the YAML declaring it, is imported and resolved in file
    order; an opt-out stored in the database wins over the file; bad rows are listed."""
    imported(db_url, tmp_path, "id,phone\nc-2,+5511999990002\n")
    assert invoke("contacts", "opt-out", "c-2", "--organization", "acme", "--db", db_url).code == 0
    cfg = tmp_path / "cfg"
    (cfg / "lists").mkdir(parents=True)
    (cfg / "lists" / "vip.csv").write_text(
        "id,phone,first_name,opted_out\n"
        "c-5,+5511999990005,Eva,false\n"
        "c-2,+5511999990002,Bruno,false\n"
        "c-6,not-a-phone,Fay,false\n"
        "c-1,+5511999990001,Ana,false\n"
    )
    config = make_config(cfg, doc("Audience", "vip", {"file": "lists/vip.csv"}),
                         automation({"audience": "vip"}))
    resolved = resolve(db_url, config)
    assert ids(resolved) == ["c-5", "c-1"]
    assert resolved.opted_out_ids == ["c-2"]
    assert [(p.line, "not E.164" in p.message) for p in resolved.problems] == [(4, True)]
    rows = read(db_url, "SELECT id, opted_out FROM contacts WHERE organization = 'acme' ORDER BY id")
    assert [(r["id"], bool(r["opted_out"])) for r in rows] == [("c-1", False), ("c-2", True), ("c-5", False)]


def test_file_audience_is_relative_to_the_config_root(db_url: str, tmp_path: Path) -> None:
    """With the config paths given as roots, a nested Audience's file is found from the root,
    the rule `validate` checks (docs/decisions.md, Validation)."""
    cfg = tmp_path / "cfg"
    (cfg / "audiences").mkdir(parents=True)
    (cfg / "contacts").mkdir()
    (cfg / "contacts" / "vip.csv").write_text("id,phone\nc-8,+5511999990008\n")
    (cfg / "audiences" / "vip.yaml").write_text(doc("Audience", "vip", {"file": "contacts/vip.csv"}))
    config = make_config(cfg, automation({"audience": "vip"}))
    database = dbmod.open_database(db_url)
    try:
        with dbmod.write_transaction(database.engine) as conn:
            resolved = resolve_audience(conn, organization="acme", spec=config.automations[0].model.spec,
                                        config=config, now=NOW, roots=[cfg])
    finally:
        database.dispose()
    assert ids(resolved) == ["c-8"]


def test_audiences_never_cross_organizations(db_url: str, tmp_path: Path) -> None:
    """The same ids and tags in another organization are not resolved, and a name resolves
    only among the automation's own organization's Audience documents."""
    imported(db_url, tmp_path, organization="globex")
    config = make_config(
        tmp_path / "cfg",
        doc("Audience", "theirs", {"segment": {"tags": ["vip"]}}, organization="globex"),
        automation({"contact_ids": ["c-1"]}),
        automation({"segment": {"tags": ["vip"]}}, name="vips"),
    )
    resolved = resolve(db_url, config)
    assert (ids(resolved), resolved.missing) == ([], ["c-1"])
    assert ids(resolve(db_url, config, "vips")) == []
    spec = config.automations[0].model.spec.model_copy(update={
        "audience": config.automations[0].model.spec.audience.model_copy(
            update={"contact_ids": None, "audience": "theirs"})})
    database = dbmod.open_database(db_url)
    try:
        with database.engine.connect() as conn, pytest.raises(UserError, match="'theirs' is not defined"):
            resolve_audience(conn, organization="acme", spec=spec, config=config, now=NOW)
    finally:
        database.dispose()


def test_conversations_are_created_once_and_reused(db_url: str) -> None:
    """ensure_conversations returns the same id for a (channel, contact) every time, a new one
    per channel, and never a second row."""
    database = dbmod.open_database(db_url)
    try:
        with dbmod.write_transaction(database.engine) as conn:
            first = ensure_conversations(conn, organization="acme", channel="out",
                                         contact_ids=["c-1", "c-2", "c-1"], now=NOW)
        with dbmod.write_transaction(database.engine) as conn:
            again = ensure_conversations(conn, organization="acme", channel="out",
                                         contact_ids=["c-2", "c-3"], now=NOW)
            other = ensure_conversations(conn, organization="acme", channel="cloud",
                                         contact_ids=["c-1"], now=NOW)
            globex = ensure_conversations(conn, organization="globex", channel="out",
                                          contact_ids=["c-1"], now=NOW)
    finally:
        database.dispose()
    assert sorted(first) == ["c-1", "c-2"]
    assert again["c-2"] == first["c-2"] and again["c-3"] not in first.values()
    assert other["c-1"] != first["c-1"] and globex["c-1"] not in (first["c-1"], other["c-1"])
    assert read(db_url, "SELECT COUNT(*) AS n FROM conversations")[0]["n"] == 5
