"""One recipient's journey through a Flow, as a pure step function.

`advance` looks at the node a recipient stands on and says what must happen next: send a
message, wait until a time, complete, or fail. It never sends, sleeps or writes; the engine does
that and records each step on the recipient's row, so a resumed or retried recipient continues
from its recorded node and a send recorded as done is never repeated. Conditions are evaluated
inline: they cost nothing and have no side effects, so they are never a resumption point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
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
    return Program(flow).advance(node_name, variables=variables, contact=contact, now=now)


# A compiled node: the Action it leads to, or the name of the node to go on to (a condition).
_Step = Callable[[Mapping[str, str], Mapping[str, Any], datetime], "Action | str"]


class Program:
    """A Flow compiled once for the many recipients that run it (a work batch runs one flow
    for a thousand): each node becomes a function, its texts are split into literals and
    placeholder lookups once, and a node whose outcome is the same for everyone (an end, a
    text without placeholders) keeps its Action ready. Deciding a step cost more than the rest
    of a recipient's Python in a worker's pass before (measured under load)."""

    def __init__(self, flow: models.FlowSpec) -> None:
        self._steps: dict[str, _Step] = {name: _compile(name, node)
                                         for name, node in flow.nodes.items()}
        # The `contact.<field>` names any node reads (placeholders, conditions): what a caller
        # must put in the contact mapping it passes, besides the flow's variables.
        self.contact_fields: frozenset[str] = frozenset().union(
            *(_node_fields(node) for node in flow.nodes.values()))

    def advance(self, node_name: str, *, variables: Mapping[str, str],
                contact: Mapping[str, Any], now: datetime) -> Action:
        """What happens at `node_name` (module `advance`)."""
        current = node_name
        for _ in range(_MAX_INLINE_STEPS):
            step = self._steps.get(current)
            if step is None:
                return Fail(current, "unknown_node", f"flow has no node '{current}'")
            try:
                outcome = step(variables, contact, now)
            except _Missing as missing:
                return Fail(current, missing.code, missing.message)
            if not isinstance(outcome, str):
                return outcome
            current = outcome
        return Fail(current, "unknown_node",
                    "flow loops through conditions without sending or waiting")


def _compile(name: str, node: Any) -> _Step:
    if isinstance(node, models.ConditionNode):
        cond, then, else_ = node.if_, node.then, node.else_
        return lambda variables, contact, now: then if _holds(cond, variables, contact) else else_
    if isinstance(node, models.SendTextNode):
        text = _renderer(node.text)
        if isinstance(text, str):
            return _constant(Send(name, node.next, "text", text=text))
        nxt = node.next
        return lambda variables, contact, now: Send(name, nxt, "text",
                                                    text=text(variables, contact))
    if isinstance(node, models.SendTemplateNode):
        params = [_renderer(p) for p in node.params]
        template, language, nxt = node.template, node.language, node.next
        if all(isinstance(p, str) for p in params):
            return _constant(Send(name, nxt, "template", template=template, language=language,
                                  params=tuple(str(p) for p in params)))
        return lambda variables, contact, now: Send(
            name, nxt, "template", template=template, language=language,
            params=tuple(p if isinstance(p, str) else p(variables, contact) for p in params))
    if isinstance(node, models.WaitNode):
        delay, nxt = timeparse.parse_duration(node.duration), node.next
        return lambda variables, contact, now: Wait(name, nxt, now + delay)
    return _constant(Complete(name))


def contact_fields(texts: Iterable[str]) -> frozenset[str]:
    """The `contact.<field>` names the placeholders of `texts` read."""
    return frozenset(p[0].removeprefix("contact.") for text in texts for p in _parts(text)
                     if not isinstance(p, str) and p[0].startswith("contact."))


def _node_fields(node: Any) -> frozenset[str]:
    if isinstance(node, models.ConditionNode):
        field = node.if_.field
        return frozenset([field.removeprefix("contact.")]) if field.startswith("contact.") \
            else frozenset()
    if isinstance(node, models.SendTextNode):
        return contact_fields([node.text])
    if isinstance(node, models.SendTemplateNode):
        return contact_fields(node.params)
    return frozenset()


def _constant(action: Action) -> _Step:
    return lambda variables, contact, now: action


_Render = Callable[[Mapping[str, str], Mapping[str, Any]], str]


@lru_cache(maxsize=4096)
def _renderer(text: str) -> str | _Render:
    """`text` itself when it has no placeholders, else a function filling them in."""
    parts = _parts(text)
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    pieces = [p if isinstance(p, str) else _placeholder(p[0]) for p in parts]
    # The usual message, a greeting with one placeholder, without the general join.
    if len(pieces) in (2, 3):
        head, lookup, tail = (*pieces, "")[:3]
        if isinstance(head, str) and not isinstance(lookup, str) and isinstance(tail, str):
            return lambda variables, contact: head + lookup(variables, contact) + tail
    return lambda variables, contact: "".join(
        [p if isinstance(p, str) else p(variables, contact) for p in pieces])


def _placeholder(name: str) -> _Render:
    """The lookup of one `{{name}}`, with the name's kind (contact field or variable) decided
    once."""
    if name.startswith("contact."):
        field = name.removeprefix("contact.")

        def contact_field(variables: Mapping[str, str], contact: Mapping[str, Any]) -> str:
            value = _contact_field(field, contact)
            return value if isinstance(value, str) else _field_text(name, field, value)

        return contact_field
    return lambda variables, contact: _variable(name, variables)


def _render(text: str, variables: Mapping[str, str], contact: Mapping[str, Any]) -> str:
    render = _renderer(text)
    return render if isinstance(render, str) else render(variables, contact)


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


def _field_text(name: str, field: str, value: Any) -> str:
    """A contact field's value (not a string) as text in a message; None fails the step."""
    if value is None:
        raise _Missing("missing_field", f"contact has no field '{field}' (used as {{{{{name}}}}})")
    return value if isinstance(value, str) else ";".join(value) if isinstance(value, list) else str(value)


def _variable(name: str, variables: Mapping[str, str]) -> str:
    if name not in variables:
        raise _Missing("missing_variable", f"variable '{name}' has no value in variable_mapping")
    return variables[name]


def _contact_field(field: str, contact: Mapping[str, Any]) -> Any:
    value = contact.get(field)
    if value is not None and value != "":
        return value
    attributes = contact.get("attributes")
    # `dict` first: an isinstance check against the Mapping ABC was a tenth of a worker's
    # pass thread under load, for the dict every contact's attributes are.
    if type(attributes) is dict or isinstance(attributes, Mapping):
        value = attributes.get(field)
        if value is not None and value != "":
            return value
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
