"""The pure flow runner: what happens at each node for one recipient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowspec import models
from reconciler.flowrun import Complete, Fail, Program, Send, Wait, advance, resolve_variables

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _flow(nodes: dict[str, dict[str, object]], start: str = "a", variables: list[str] | None = None) -> models.FlowSpec:
    return models.FlowSpec.model_validate({"start": start, "nodes": nodes, "variables": variables or []})


PROMO = _flow(
    {
        "a": {"type": "send_template", "template": "promo_bf", "language": "pt_BR",
              "params": ["{{contact.first_name}}", "{{discount}}"], "next": "c"},
        "c": {"type": "condition", "if": {"field": "contact.tags", "op": "contains", "value": "vip"},
              "then": "w", "else": "z"},
        "w": {"type": "wait", "duration": "2h", "next": "t"},
        "t": {"type": "send_text", "text": "Last hours! {{discount}} off", "next": "z"},
        "z": {"type": "end"},
    },
    variables=["discount"],
)
ANA = {"id": "c-001", "phone": "+5511999990001", "first_name": "Ana", "tags": ["vip"]}
BRUNO = {"id": "c-002", "phone": "+5511999990002", "first_name": "Bruno", "tags": []}


def test_template_params_are_filled_from_variables_and_contact() -> None:
    """send_template renders {{var}} and {{contact.field}} into its parameters."""
    action = advance(PROMO, "a", variables={"discount": "50%"}, contact=ANA, now=NOW)
    assert action == Send("a", "c", "template", template="promo_bf", language="pt_BR", params=("Ana", "50%"))


def test_condition_is_followed_inline_to_the_next_side_effect() -> None:
    """A condition is not a stopping point: the runner follows it to a wait or an end."""
    assert advance(PROMO, "c", variables={"discount": "50%"}, contact=ANA, now=NOW) == Wait(
        "w", "t", NOW + timedelta(hours=2)
    )
    assert advance(PROMO, "c", variables={"discount": "50%"}, contact=BRUNO, now=NOW) == Complete("z")


def test_one_compiled_program_decides_each_recipient_by_their_own_fields() -> None:
    """A Program compiled once for a batch renders every recipient's own values, fails only
    the one missing a field, and times each wait from that recipient's `now`."""
    program = Program(PROMO)
    later = NOW + timedelta(minutes=5)
    assert [program.advance("a", variables={"discount": d}, contact=c, now=NOW)
            for c, d in ((ANA, "50%"), (BRUNO, "10%"), ({"id": "c-3", "tags": []}, "5%"))] == [
        Send("a", "c", "template", template="promo_bf", language="pt_BR", params=("Ana", "50%")),
        Send("a", "c", "template", template="promo_bf", language="pt_BR", params=("Bruno", "10%")),
        Fail("a", "missing_field",
             "contact has no field 'first_name' (used as {{contact.first_name}})"),
    ]
    assert program.advance("c", variables={}, contact=ANA, now=later) == Wait(
        "w", "t", later + timedelta(hours=2))
    assert program.advance("c", variables={}, contact=BRUNO, now=later) == Complete("z")
    assert program.advance("gone", variables={}, contact=ANA, now=NOW) == Fail(
        "gone", "unknown_node", "flow has no node 'gone'")


def test_wait_returns_the_resume_time_and_never_sleeps() -> None:
    """wait yields 'resume at now + duration' for the engine to schedule."""
    action = advance(PROMO, "w", variables={}, contact=ANA, now=NOW)
    assert isinstance(action, Wait) and action.resume_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def test_send_text_renders_variables() -> None:
    """send_text substitutes variables into the body."""
    action = advance(PROMO, "t", variables={"discount": "50%"}, contact=ANA, now=NOW)
    assert action == Send("t", "z", "text", text="Last hours! 50% off")


def test_missing_variable_fails_the_recipient_with_a_code() -> None:
    """A variable without a value fails that recipient with missing_variable, naming it."""
    action = advance(PROMO, "a", variables={}, contact=ANA, now=NOW)
    assert isinstance(action, Fail) and action.code == "missing_variable" and "discount" in action.message


def test_missing_contact_field_fails_the_recipient_with_a_code() -> None:
    """A contact without a field the flow uses fails with missing_field, naming it."""
    action = advance(PROMO, "a", variables={"discount": "1%"}, contact={"id": "x"}, now=NOW)
    assert isinstance(action, Fail) and action.code == "missing_field" and "first_name" in action.message


def test_contact_attributes_are_fields_too() -> None:
    """Extra CSV columns stored as attributes resolve as {{contact.<column>}}."""
    flow = _flow({"a": {"type": "send_text", "text": "Hi {{contact.city}}", "next": "z"}, "z": {"type": "end"}})
    action = advance(flow, "a", variables={}, contact={"id": "x", "attributes": {"city": "Rio"}}, now=NOW)
    assert isinstance(action, Send) and action.text == "Hi Rio"


def test_variable_mapping_may_use_contact_fields() -> None:
    """variable_mapping values are resolved per contact before the flow uses them."""
    variables = resolve_variables({"topic": "{{contact.city}}: extrato", "n": 3, "b": True}, {"city": "Rio"})
    assert variables == {"topic": "Rio: extrato", "n": "3", "b": "true"}


def test_condition_operators() -> None:
    """eq, ne, in, not_in and exists compare contact fields and variables."""
    def goes_then(cond: dict[str, object], contact: dict[str, object], variables: dict[str, str] | None = None) -> bool:
        flow = _flow({"a": {"type": "condition", "if": cond, "then": "y", "else": "n"}, "y": {"type": "end"}, "n": {"type": "end"}})
        action = advance(flow, "a", variables=variables or {}, contact=contact, now=NOW)
        assert isinstance(action, Complete)
        return action.node == "y"

    assert goes_then({"field": "contact.city", "value": "Rio"}, {"city": "Rio"})
    assert not goes_then({"field": "contact.city", "value": "Rio"}, {"city": "SP"})
    assert goes_then({"field": "contact.city", "op": "ne", "value": "Rio"}, {"city": "SP"})
    assert goes_then({"field": "contact.city", "op": "in", "value": ["Rio", "SP"]}, {"city": "SP"})
    assert goes_then({"field": "contact.city", "op": "not_in", "value": ["Rio"]}, {"city": "SP"})
    assert goes_then({"field": "contact.city", "op": "exists"}, {"city": "SP"})
    assert not goes_then({"field": "contact.city", "op": "exists"}, {})
    assert goes_then({"field": "tier", "value": 3}, {}, {"tier": "3"})
