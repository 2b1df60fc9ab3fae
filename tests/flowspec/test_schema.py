"""Published JSON Schemas: generated from the models, committed, editor-friendly, never stricter or looser by accident."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cli_support import ROOT, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flowspec import models, schema
from flowspec.loader import load_paths

SCHEMAS = ROOT / "schemas"
VALIDATORS = (jsonschema.Draft7Validator, jsonschema.Draft202012Validator)


def published() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SCHEMAS.glob("*.json"))}


def example_documents() -> list[dict[str, Any]]:
    return [d.data for d in load_paths([ROOT / "automations"]).documents]


def test_committed_schemas_equal_generated() -> None:
    """schemas/ holds exactly what the models generate, byte for byte."""
    generated = schema.generate()
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(generated)
    for name, text in generated.items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == text, f"{name} drifted: run flowspec schema --out schemas"


def test_schema_check_passes_on_the_repository() -> None:
    """`flowspec schema --check` exits 0 when schemas/ matches the models."""
    r = invoke("schema", "--check", cwd=ROOT)
    assert r.code == 0, r.output
    assert r.out == "ok: 6 schema files in schemas match the models\n"


def test_schema_check_reports_drift_and_missing_files(tmp_path: Path) -> None:
    """--check names each drifted or missing file and exits 1."""
    out = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, out)
    (out / "flow.schema.json").write_text("{}\n")
    (out / "channel.schema.json").unlink()
    r = invoke("schema", "--check", "--out", str(out), cwd=tmp_path)
    assert r.code == 1
    assert f"{out / 'channel.schema.json'}: missing" in r.err
    assert f"{out / 'flow.schema.json'}: differs from the models" in r.err
    assert "2 schema file(s) out of date" in r.err


def test_schema_out_writes_every_file_deterministically(tmp_path: Path) -> None:
    """--out writes one file per kind plus the bundle, identical on every run."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert invoke("schema", "--out", str(first)).code == 0
    assert invoke("schema", "--out", str(second)).code == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == [
        "audience.schema.json", "automation.schema.json", "channel.schema.json",
        "defaults.schema.json", "flow.schema.json", "flowspec.schema.json",
    ]
    for name in names:
        text = (first / name).read_bytes()
        assert text == (second / name).read_bytes()
        assert text.endswith(b"}\n") and b"\r" not in text
        assert text.decode() == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_schema_out_that_cannot_be_written_is_a_user_error(tmp_path: Path) -> None:
    """--out under a regular file is exit 1 naming the folder, not an internal error (exit 3)."""
    (tmp_path / "file").write_text("")
    r = invoke("schema", "--out", str(tmp_path / "file" / "schemas"))
    assert r.code == 1
    assert f"error: cannot write schemas to {tmp_path / 'file' / 'schemas'}:" in r.err
    assert "internal error" not in r.err


def test_schema_without_options_prints_the_bundle() -> None:
    """`flowspec schema` prints the bundle schema to stdout."""
    r = invoke("schema")
    assert r.code == 0
    assert json.loads(r.out)["$id"] == "https://flowspec.dev/schemas/flowspec.schema.json"


@pytest.mark.parametrize("name", sorted(schema.generate()))
def test_schemas_are_valid_for_both_drafts(name: str) -> None:
    """Each schema is a valid draft 2020-12 and draft-07 schema, declaring 2020-12."""
    doc = published()[name]
    jsonschema.Draft202012Validator.check_schema(doc)
    jsonschema.Draft7Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"https://flowspec.dev/schemas/{name}"


def _walk(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


@pytest.mark.parametrize("name", sorted(schema.generate()))
def test_schemas_use_only_what_draft_07_understands(name: str) -> None:
    """No 2019+/2020 keyword an editor's draft-07 validator would ignore, no $ref siblings."""
    newer = {"$dynamicRef", "$dynamicAnchor", "prefixItems", "unevaluatedProperties", "unevaluatedItems",
             "dependentRequired", "dependentSchemas", "$recursiveRef", "minContains", "maxContains"}
    for path, node in _walk(published()[name]):
        if path.endswith("/properties") or path.endswith("/$defs"):
            continue  # keys here are field and definition names, not keywords
        assert not newer & set(node), f"{name}{path} uses {newer & set(node)}"
        if "$ref" in node:
            assert set(node) == {"$ref"}, f"{name}{path}: $ref with siblings {sorted(node)}"
            assert node["$ref"].startswith("#/$defs/")


@pytest.mark.parametrize("name", sorted(schema.generate()))
def test_schemas_carry_hover_help(name: str) -> None:
    """Titles, descriptions and examples at the root; a description on every definition and field."""
    doc = published()[name]
    assert doc["title"] and doc["description"] and doc["examples"]
    for def_name, definition in doc["$defs"].items():
        assert definition.get("description"), f"{name}: $defs/{def_name} has no description"
        for field, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}: $defs/{def_name}/properties/{field} has no description"


@pytest.mark.parametrize("validator", VALIDATORS, ids=lambda v: v.__name__)
def test_example_config_validates_against_the_published_schemas(validator: Any) -> None:
    """Every document under automations/ passes the bundle and its kind's schema, in both drafts."""
    schemas = published()
    bundle = validator(schemas["flowspec.schema.json"])
    docs = example_documents()
    assert len(docs) >= 10
    for doc in docs:
        kind_schema = validator(schemas[schema.KIND_FILES[doc["kind"]]])
        assert not [e.message for e in bundle.iter_errors(doc)]
        assert not [e.message for e in kind_schema.iter_errors(doc)]


@pytest.mark.parametrize("validator", VALIDATORS, ids=lambda v: v.__name__)
def test_schema_examples_are_valid_documents(validator: Any) -> None:
    """The examples shown in editors validate against the schema and the models."""
    schemas = published()
    for kind, filename in schema.KIND_FILES.items():
        for example in schemas[filename]["examples"]:
            assert not list(validator(schemas[filename]).iter_errors(example))
            models.DOCUMENT_MODELS[kind].model_validate(example)


def _errors(doc: dict[str, Any], validator: Any = jsonschema.Draft7Validator) -> list[str]:
    bundle = validator(published()["flowspec.schema.json"])
    return ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in bundle.iter_errors(doc)]


def test_recurrence_config_is_checked_by_recurrence_type() -> None:
    """Editors flag a key of another recurrence type and a cron schedule without expression."""
    doc = copy.deepcopy(schema.EXAMPLES["Automation"])
    sched = doc["spec"]["schedule"]
    assert _errors(doc) == []
    sched["recurrence_config"] = {"day": 15}  # a monthly key on a weekly schedule
    assert _errors(doc) == ["spec/schedule/recurrence_config: Additional properties are not allowed ('day' was unexpected)"]
    sched["recurrence_type"], sched["recurrence_config"] = "cron", {}
    assert _errors(doc) == ["spec/schedule/recurrence_config: 'expression' is a required property"]
    sched["recurrence_config"] = {"expression": "0 9 * * *", "type": "daily"}
    assert _errors(doc) == [
        "spec/schedule/recurrence_config/type: 'daily' is not valid under any of the given schemas"
    ]


def test_bundle_dispatches_on_kind() -> None:
    """The bundle checks a Flow against the Flow schema (an unknown node type is flagged)."""
    doc = copy.deepcopy(schema.EXAMPLES["Flow"])
    assert _errors(doc, jsonschema.Draft202012Validator) == []
    doc["spec"]["nodes"]["done"] = {"type": "ennd"}
    assert _errors(doc, jsonschema.Draft202012Validator) == [
        "spec/nodes/done/type: 'ennd' is not one of ['condition', 'end', 'send_template', 'send_text', 'wait']"
    ]
    doc["kind"] = "Automaton"
    assert any("'Automaton' is not one of" in e for e in _errors(doc))


# --------------------------------------------------------------------------- agreement


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-40, max_value=40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(
        ["", "x", "09:00", "9:00", "2025-11-20", "2025-11-20T09:00:00", "2025-11-20T09:00:00Z",
         "30s", "1h", "MON", "SUN", "daily", "weekly", "monthly", "cron", "custom", "once",
         "skip", "defer", "next_allowed", "first", "both", "reschedule", "modify", "promo",
         "main-br", "UTC", "America/Sao_Paulo", "BR", "0 9 * * MON", "send_text", "end",
         "wait", "outbox", "whatsapp_cloud", "flowspec/v1", "Automation", "Flow"]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "start", "days", "type", "next"]), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid example document with a few random edits: replace, delete or add a value."""
    base = draw(st.sampled_from([*schema.EXAMPLES.values(), *example_documents()]))
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "start_time", "day", "week", "weekday", "times", "end_date", "rescheduled_to", "modified_config"]))] = draw(_VALUES)
    return doc


def _integral_floats(node: Any) -> bool:
    """JSON Schema counts 2.0 as an integer; the models (strict) do not."""
    if isinstance(node, float) and node.is_integer():
        return True
    if isinstance(node, dict):
        return any(_integral_floats(v) for v in node.values())
    if isinstance(node, list):
        return any(_integral_floats(v) for v in node)
    return False


_BUNDLE = {v: v(json.loads((SCHEMAS / "flowspec.schema.json").read_text())) for v in VALIDATORS}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_models_and_schemas_agree(doc: dict[str, Any]) -> None:
    """A document the models accept passes the schemas, and one the schemas accept passes the models."""
    kind = doc.get("kind")
    model = models.DOCUMENT_MODELS.get(kind) if isinstance(kind, str) else None
    try:
        if model is None:
            raise LookupError
        model.model_validate(doc)
        accepted = True
    except (ValidationError, LookupError):
        accepted = False
    for validator in VALIDATORS:
        valid = _BUNDLE[validator].is_valid(doc)
        if accepted:
            assert valid, [e.message for e in _BUNDLE[validator].iter_errors(doc)]
        elif not _integral_floats(doc):
            assert not valid, f"{validator.__name__} accepts what the models reject: {json.dumps(doc)[:400]}"
