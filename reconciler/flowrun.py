"""One recipient's journey through a Flow, as a pure step function.

`advance` looks at the node a recipient stands on and says what must happen next: send a
message, wait until a time, complete, or fail. It never sends, sleeps or writes; the engine does
that and records each step on the recipient's row, so a resumed or retried recipient continues
from its recorded node and a send recorded as done is never repeated. Conditions are evaluated
inline: they cost nothing and have no side effects, so they are never a resumption point.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from flowspec import models, timeparse

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
# A flow that loops through conditions only would spin forever; validation rejects such cycles,
# and this bound keeps a bug from hanging a worker.
_MAX_INLINE_STEPS = 1000


@dataclass(frozen=True, slots=True)
class Send:
    node: str
    next: str
    kind: str  # "text" | "template"
    text: str | None = None
    template: str | None = None
    language: str | None = None
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Wait:
    node: str
    next: str
    resume_at: datetime


@dataclass(frozen=True, slots=True)
class Complete:
    node: str


@dataclass(frozen=True, slots=True)
class Fail:
    node: str
    code: str  # "missing_variable" | "missing_field" | "unknown_node"
    message: str


Action = Send | Wait | Complete | Fail


class _Missing(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def resolve_variables(
    mapping: Mapping[str, Any], contact: Mapping[str, Any]
) -> dict[str, str]:
    """`variable_mapping` values with `{{contact.<field>}}` filled in for one contact.

    Raises nothing: an unresolved field is reported when a node uses the variable, so a
    recipient fails at the step that needs it (and only that recipient).
    """
    out: dict[str, str] = {}
    for name, value in mapping.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            out[name] = _render(text, {}, contact)
        except _Missing:
            out[name] = text
    return out


def advance(
    flow: models.FlowSpec,
    node_name: str,
    *,
    variables: Mapping[str, str],
    contact: Mapping[str, Any],
    now: datetime,
) -> Action:
    """What happens at `node_name`: the next side effect, following conditions inline."""
    current = node_name
    for _ in range(_MAX_INLINE_STEPS):
        node = flow.nodes.get(current)
        if node is None:
            return Fail(current, "unknown_node", f"flow has no node '{current}'")
        try:
            if isinstance(node, models.ConditionNode):
                current = node.then if _holds(node.if_, variables, contact) else node.else_
                continue
            if isinstance(node, models.SendTextNode):
                return Send(current, node.next, "text", text=_render(node.text, variables, contact))
            if isinstance(node, models.SendTemplateNode):
                params = tuple(_render(p, variables, contact) for p in node.params)
                return Send(
                    current, node.next, "template", template=node.template,
                    language=node.language, params=params,
                )
            if isinstance(node, models.WaitNode):
                return Wait(current, node.next, now + timeparse.parse_duration(node.duration))
            return Complete(current)
        except _Missing as missing:
            return Fail(current, missing.code, missing.message)
    return Fail(current, "unknown_node", "flow loops through conditions without sending or waiting")


def _render(text: str, variables: Mapping[str, str], contact: Mapping[str, Any]) -> str:
    parts = _parts(text)
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    return "".join(p if isinstance(p, str) else _lookup(p[0], variables, contact) for p in parts)


@lru_cache(maxsize=4096)
def _parts(text: str) -> tuple[str | tuple[str], ...]:
    """`text` split once into literal strings and `(placeholder name,)`: a campaign renders
    the same few texts for every recipient, and a regular-expression substitution per
    recipient cost more than the rest of deciding its step."""
    parts: list[str | tuple[str]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > pos:
            parts.append(text[pos:match.start()])
        parts.append((match.group(1),))
        pos = match.end()
    if pos < len(text) or not parts:
        parts.append(text[pos:])
    return tuple(parts)


def _lookup(name: str, variables: Mapping[str, str], contact: Mapping[str, Any]) -> str:
    if name.startswith("contact."):
        field = name.removeprefix("contact.")
        value = _contact_field(field, contact)
        if value is None:
            raise _Missing("missing_field", f"contact has no field '{field}' (used as {{{{{name}}}}})")
        return value if isinstance(value, str) else ";".join(value) if isinstance(value, list) else str(value)
    if name not in variables:
        raise _Missing("missing_variable", f"variable '{name}' has no value in variable_mapping")
    return variables[name]


def _contact_field(field: str, contact: Mapping[str, Any]) -> Any:
    if field in contact and contact[field] not in (None, ""):
        return contact[field]
    attributes = contact.get("attributes")
    if isinstance(attributes, Mapping) and attributes.get(field) not in (None, ""):
        return attributes[field]
    return None


def _holds(cond: models.Condition, variables: Mapping[str, str], contact: Mapping[str, Any]) -> bool:
    if cond.field.startswith("contact."):
        actual: Any = _contact_field(cond.field.removeprefix("contact."), contact)
    else:
        actual = variables.get(cond.field)
    op, expected = cond.op, cond.value
    if op == "exists":
        return actual is not None
    if op == "contains":
        if isinstance(actual, list | tuple | set):
            return expected in actual
        if isinstance(actual, str) and isinstance(expected, str):
            # Tags are stored split, but a CSV attribute may still be "vip;early".
            return expected in actual.split(";") or expected in actual
        return False
    if op in ("in", "not_in"):
        pool = expected if isinstance(expected, list) else [expected]
        found = _normalise(actual) in [_normalise(v) for v in pool]
        return found if op == "in" else not found
    equal = _normalise(actual) == _normalise(expected)
    return equal if op == "eq" else not equal


def _normalise(value: Any) -> Any:
    # YAML gives `true`/`3` typed while contact attributes from CSV are strings.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value
