"""JSON Schemas for editors and CI, generated from the pydantic models (SPEC 1, 2).

`schemas/` holds this module's output, committed; `flowspec schema --check` and a test fail when
the two drift, so the files users point their editors at never disagree with `validate`.

The documents declare draft 2020-12 but use only what draft-07 validators understand, because
editors' YAML language servers validate with draft-07 (FACTS): `$defs` (reached by JSON pointer,
which every draft resolves), `if`/`then`, `const`, `examples`; never `$dynamicRef`,
`prefixItems`, `unevaluatedProperties` or `dependentRequired`. A `$ref` never has sibling
keywords (draft-07 ignores them), and pydantic's OpenAPI `discriminator` becomes `if`/`then` on
the node `type`, so an editor reports the one branch that applies instead of five.

Post-processing adds what pydantic cannot emit from the models' validators: `recurrence_config`
checked by `recurrence_type`, "exactly one of" for audiences, "both or neither" for the window,
and the fields each exception type needs. The schemas never reject what the models accept (a
property test in tests/flowspec/test_schema.py holds them to it).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from flowspec import models

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URL = "https://flowspec.dev/schemas/"
KIND_FILES: dict[str, str] = {
    "Automation": "automation.schema.json",
    "Flow": "flow.schema.json",
    "Channel": "channel.schema.json",
    "Audience": "audience.schema.json",
    "Defaults": "defaults.schema.json",
}
BUNDLE_FILE = "flowspec.schema.json"

Schema = dict[str, Any]

# Hover help for objects and fields whose model gives none (class docstrings describe the
# documents; these describe the parts).
_DEF_DESCRIPTIONS: dict[str, str] = {
    "Metadata": "Name, organization, description and labels of a document.",
    "AutomationSpec": "What to send (flow), from where (whatsapp_number), to whom (audience), when (schedule).",
    "AudienceRef": "Exactly one of contact_ids, audience, segment.",
    "Segment": "Contacts in the database carrying all of the tags.",
    "Schedule": "When an automation runs. Times are local wall-clock time in execution_timezone.",
    "OnceConfig": "recurrence_type once: one occurrence at start_date + start_time. No keys.",
    "DailyConfig": "recurrence_type daily: every `interval` days from start_date.",
    "WeeklyConfig": "recurrence_type weekly: on `days`, every `interval`-th week from start_date's week.",
    "MonthlyConfig": "recurrence_type monthly: on `day`, or on `weekday` of `week`, every `interval` months.",
    "CronConfig": "recurrence_type cron: a 5-field cron expression matched against local time.",
    "CustomConfig": "recurrence_type custom: an explicit list of dates or datetimes.",
    "BlackoutRange": "A range of local dates with no sends.",
    "ScheduleException": "Skip, reschedule or modify the occurrences it matches.",
    "Delivery": "How messages go out: rate, concurrency, retries, catch-up, overlap, guarantee.",
    "Retry": "Retries of a failed send to one recipient, with exponential backoff.",
    "FlowSpec": "Variables, the start node and the nodes of a flow.",
    "SendTextNode": "Send a free-form text message (only inside the 24-hour customer-service window).",
    "SendTemplateNode": "Send an approved WhatsApp template.",
    "WaitNode": "Wait for a duration before the next node.",
    "ConditionNode": "Go to `then` or `else` depending on a contact field or variable.",
    "Condition": "A test on contact.<field> or a flow variable.",
    "EndNode": "The recipient is completed.",
    "ChannelSpec": "The sending number: its API, credentials (as environment variable names) and limits.",
    "AudienceSpec": "Exactly one of contact_ids, segment, file.",
    "DefaultsSpec": "Default schedule and delivery values for every Automation in this config root.",
    "ScheduleDefaults": "Default values for any Automation spec.schedule field.",
    "DeliveryDefaults": "Default values for any Automation spec.delivery field.",
}
_FIELD_DESCRIPTIONS: dict[str, str] = {
    "kind": "Document kind: Automation | Flow | Channel | Audience | Defaults.",
    "metadata": "Name (a lowercase slug), organization, description and labels.",
    "spec": "The document's content; its keys depend on kind.",
    "audience": "Who receives it: exactly one of contact_ids, audience, segment.",
    "schedule": "When it runs (SPEC 1.1).",
    "exceptions": "Skip, reschedule or modify single occurrences or ranges, applied in file order.",
    "delivery": "Rate limits, concurrency, retries and delivery guarantee.",
    "retry": "Retries per recipient: max_attempts, initial_delay, max_delay, multiplier, jitter.",
    "times": 'Times of day ("HH:MM"); one occurrence per time. Replaces start_time.',
    "exception_type": "skip | reschedule (needs rescheduled_to) | modify (needs modified_config).",
    "next": "Name of the next node.",
    "then": "Node to go to when the condition holds.",
    "else": "Node to go to when it does not.",
    "if": "The condition: a field, an operator and a value.",
    "op": "eq | ne | in | not_in | exists | contains.",
    "nodes": "The flow's nodes by name; each has a type.",
    "contact_ids": "Explicit contact ids.",
    "segment": "Contacts in the database carrying all these tags.",
}
_TYPE_DESCRIPTIONS: dict[str, str] = {
    "ChannelSpec": "whatsapp_cloud (the WhatsApp Business Cloud API) | outbox (JSON lines to a file).",
    "node": "send_text | send_template | wait | condition | end.",
    "config": "Optional; when given it must equal recurrence_type.",
}

_EXAMPLES: dict[str, Schema] = {
    "Automation": {
        "apiVersion": "flowspec/v1",
        "kind": "Automation",
        "metadata": {"name": "daily-promo", "organization": "acme"},
        "spec": {
            "flow": "promo",
            "whatsapp_number": "main-br",
            "audience": {"audience": "vip-customers"},
            "variable_mapping": {"discount": "50%"},
            "schedule": {
                "recurrence_type": "weekly",
                "recurrence_config": {"days": ["MON", "WED", "FRI"], "interval": 1},
                "start_date": "2025-11-20",
                "start_time": "14:00",
                "execution_timezone": "America/Sao_Paulo",
                "execution_window_start": "09:00",
                "execution_window_end": "18:00",
            },
            "exceptions": [
                {"name": "black-friday", "exception_type": "skip", "start_date": "2025-11-28"}
            ],
            "delivery": {"rate_limit_per_hour": 1000, "max_concurrent_executions": 50},
        },
    },
    "Flow": {
        "apiVersion": "flowspec/v1",
        "kind": "Flow",
        "metadata": {"name": "promo", "organization": "acme"},
        "spec": {
            "variables": ["discount"],
            "start": "greet",
            "nodes": {
                "greet": {
                    "type": "send_template",
                    "template": "promo_bf",
                    "language": "pt_BR",
                    "params": ["{{contact.first_name}}", "{{discount}}"],
                    "next": "wait1",
                },
                "wait1": {"type": "wait", "duration": "2h", "next": "remind"},
                "remind": {"type": "send_text", "text": "Last hours! {{discount}} off", "next": "done"},
                "done": {"type": "end"},
            },
        },
    },
    "Channel": {
        "apiVersion": "flowspec/v1",
        "kind": "Channel",
        "metadata": {"name": "main-br", "organization": "acme"},
        "spec": {
            "type": "whatsapp_cloud",
            "phone_number_id": "1234567890",
            "access_token_env": "WA_TOKEN",
            "app_secret_env": "WA_APP_SECRET",
            "messages_per_second": 80,
        },
    },
    "Audience": {
        "apiVersion": "flowspec/v1",
        "kind": "Audience",
        "metadata": {"name": "vip-customers", "organization": "acme"},
        "spec": {"segment": {"tags": ["vip"]}},
    },
    "Defaults": {
        "apiVersion": "flowspec/v1",
        "kind": "Defaults",
        "metadata": {"name": "defaults", "organization": "acme"},
        "spec": {
            "schedule": {"execution_timezone": "America/Sao_Paulo"},
            "delivery": {"rate_limit_per_hour": 1000},
        },
    },
}
EXAMPLES = _EXAMPLES  # also checked against the models by the tests


# --------------------------------------------------------------------------- building blocks


def _ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def _present(key: str) -> Schema:
    """`key` is given and not null."""
    return {"required": [key], "properties": {key: {"not": {"type": "null"}}}}


def _absent(key: str) -> Schema:
    return {"not": _present(key)}


def _is(key: str, value: str) -> Schema:
    return {"required": [key], "properties": {key: {"const": value}}}


# --------------------------------------------------------------------------- post-processing


def _recurrence_dispatch(defs: dict[str, Schema]) -> None:
    """recurrence_config is checked against the config of its recurrence_type (SPEC 1.1 table)."""
    schedule = defs["Schedule"]
    prop = schedule["properties"]["recurrence_config"]
    schedule["properties"]["recurrence_config"] = {
        "type": "object",
        "title": prop.get("title", "Recurrence Config"),
        "description": (
            "Keys depend on recurrence_type: once: none; daily: interval, times; weekly: days, "
            "interval, times; monthly: day or weekday+week, interval, times; cron: expression, "
            "day_match; custom: dates, times."
        ),
    }
    rules = schedule.setdefault("allOf", [])
    for rtype, model in models.RECURRENCE_CONFIGS.items():
        then: Schema = {"properties": {"recurrence_config": _ref(model.__name__)}}
        if any(f.is_required() for f in model.model_fields.values()):
            then["required"] = ["recurrence_config"]
        rules.append({"if": _is("recurrence_type", rtype), "then": then})


def _model_rules(defs: dict[str, Schema]) -> None:
    """The models' cross-field validators, as far as JSON Schema can say them."""
    for name, keys in (
        ("AudienceRef", ("contact_ids", "audience", "segment")),
        ("AudienceSpec", ("contact_ids", "segment", "file")),
    ):
        if name in defs:
            defs[name]["oneOf"] = [_present(k) for k in keys]

    if "Schedule" in defs:
        start, end = "execution_window_start", "execution_window_end"
        defs["Schedule"].setdefault("allOf", []).extend(
            [
                {"if": _present(start), "then": _present(end)},
                {"if": _present(end), "then": _present(start)},
            ]
        )

    if "ScheduleException" in defs:
        defs["ScheduleException"].setdefault("allOf", []).extend(
            [
                {
                    "if": _is("exception_type", "reschedule"),
                    "then": _present("rescheduled_to"),
                    "else": _absent("rescheduled_to"),
                },
                {
                    "if": _is("exception_type", "modify"),
                    "then": {
                        "required": ["modified_config"],
                        "properties": {"modified_config": {"type": "object", "minProperties": 1}},
                    },
                    "else": _absent("modified_config"),
                },
            ]
        )

    if "MonthlyConfig" in defs:
        monthly = defs["MonthlyConfig"]
        props = monthly["properties"]
        for key in ("day", "week"):
            props[key] = {**props[key], "not": {"const": 0}}
        monthly.setdefault("allOf", []).extend(
            [
                {"if": _present("day"), "then": {"allOf": [_absent("weekday"), _absent("week")]}},
                {"if": _present("weekday"), "then": _present("week")},
                {"if": _present("week"), "then": _present("weekday")},
            ]
        )


def _discriminated(node: Schema) -> Schema:
    """pydantic's OpenAPI discriminator → `if`/`then` on the tag (draft-07 has no discriminator)."""
    tag = node["discriminator"]["propertyName"]
    mapping: dict[str, str] = node["discriminator"]["mapping"]
    return {
        "type": "object",
        "required": [tag],
        "properties": {
            tag: {"enum": list(mapping), "description": _TYPE_DESCRIPTIONS["node"]}
        },
        "allOf": [{"if": _is(tag, value), "then": {"$ref": ref}} for value, ref in mapping.items()],
    }


def _rewrite(node: Any) -> Any:
    """Recursive pass: discriminators, `$ref` siblings, hoisted descriptions."""
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "discriminator" in node and "oneOf" in node:
        node = _discriminated(node)
    out = {key: _rewrite(value) for key, value in node.items()}
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    if "description" not in out and "anyOf" in out:
        described = [b for b in out["anyOf"] if isinstance(b, dict) and "description" in b]
        if len(described) == 1:
            out["description"] = described[0]["description"]
    return out


def _describe(defs: dict[str, Schema]) -> None:
    for name, schema in defs.items():
        if "description" not in schema and name in _DEF_DESCRIPTIONS:
            schema["description"] = _DEF_DESCRIPTIONS[name]
        for key, prop in schema.get("properties", {}).items():
            if "description" in prop:
                continue
            if key == "type":
                prop["description"] = _TYPE_DESCRIPTIONS.get(
                    name, _TYPE_DESCRIPTIONS["node" if name.endswith("Node") else "config"]
                )
            elif key in _FIELD_DESCRIPTIONS:
                prop["description"] = _FIELD_DESCRIPTIONS[key]


def _document_fields(root: Schema, kind: str) -> None:
    props = root["properties"]
    props["kind"]["description"] = f"Always {kind}."
    props["metadata"] = {"allOf": [props["metadata"]], "description": _FIELD_DESCRIPTIONS["metadata"]}
    spec = props["spec"]
    props["spec"] = {"allOf": [spec], "description": f"The {kind}'s content (SPEC 1)."}


def _finish(defs: dict[str, Schema]) -> dict[str, Schema]:
    _describe(defs)
    if "Schedule" in defs:
        _recurrence_dispatch(defs)
    _model_rules(defs)
    rewritten: dict[str, Schema] = _rewrite(defs)
    return dict(sorted(rewritten.items()))


# --------------------------------------------------------------------------- documents


def kind_schema(kind: str) -> Schema:
    """The schema of one kind of document, self-contained (its own `$defs`)."""
    model = models.DOCUMENT_MODELS[kind]
    raw = copy.deepcopy(model.model_json_schema())
    defs = raw.pop("$defs", {})
    _document_fields(raw, kind)
    root = _rewrite(raw)
    return {
        "$schema": DIALECT,
        "$id": BASE_URL + KIND_FILES[kind],
        **root,
        "title": f"flowspec {kind}",
        "description": (model.__doc__ or kind).strip()
        + f" A flowspec/v1 document of kind {kind} (SPEC 1).",
        "examples": [_EXAMPLES[kind]],
        "$defs": _finish(defs),
    }


def bundle_schema() -> Schema:
    """Any flowspec document: dispatches on `kind` to that kind's schema."""
    pairs: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (m, "validation") for m in models.DOCUMENT_MODELS.values()
    ]
    refs, top = models_json_schema(pairs, ref_template="#/$defs/{model}")
    defs: dict[str, Schema] = copy.deepcopy(top["$defs"])
    for kind, model in models.DOCUMENT_MODELS.items():
        ref = refs[(model, "validation")]["$ref"]
        name = ref.rsplit("/", 1)[1]
        _document_fields(defs[name], kind)
    dispatch = [
        {
            "if": _is("kind", kind),
            "then": refs[(model, "validation")],
        }
        for kind, model in models.DOCUMENT_MODELS.items()
    ]
    return {
        "$schema": DIALECT,
        "$id": BASE_URL + BUNDLE_FILE,
        "title": "flowspec document",
        "description": (
            "Any flowspec/v1 document (Automation, Flow, Channel, Audience or Defaults), "
            "checked against the schema of its kind."
        ),
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": models.API_VERSION, "description": "Always flowspec/v1."},
            "kind": {"enum": list(models.KINDS), "description": _FIELD_DESCRIPTIONS["kind"]},
        },
        "allOf": dispatch,
        "examples": [_EXAMPLES["Automation"], _EXAMPLES["Flow"]],
        "$defs": _finish(defs),
    }


def render(schema: Schema) -> str:
    """Deterministic text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name → text of every published schema."""
    out = {KIND_FILES[kind]: render(kind_schema(kind)) for kind in models.KINDS}
    out[BUNDLE_FILE] = render(bundle_schema())
    return dict(sorted(out.items()))


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def drift(out_dir: Path) -> list[str]:
    """One line per published file that is missing or differs from what the models generate."""
    problems = []
    for name, text in generate().items():
        path = out_dir / name
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{path}: missing")
            continue
        if current != text:
            problems.append(f"{path}: differs from the models")
    return problems
