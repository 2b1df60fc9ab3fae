"""Flow checks that need the automations using a flow (validate layer 2, FS410).

FS410: a campaign message is business-initiated, and outside the 24-hour customer-service
window the WhatsApp Cloud API accepts only approved templates; a free-form `send_text` there
fails with 131047 (FACTS.md). So a flow whose first message can be free-form text would fail for
most recipients of a campaign. It is a warning, not an error: a flow sent only to contacts who
just wrote in is legitimate, and validate cannot know that.
"""

from __future__ import annotations

from collections import defaultdict

from flowspec import models
from flowspec.config import Config
from flowspec.diagnostics import Diagnostic, warning


def flow_start_warnings(config: Config) -> list[Diagnostic]:
    """FS410 once per flow whose first message can be a `send_text`, located at the flow's
    start node and naming the automations that send it through a non-outbox channel."""
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    for automation in config.automations:
        spec = automation.model.spec
        org = automation.organization
        channel = config.channels.get((org, spec.whatsapp_number))
        # The outbox writes a file; no API window applies to it. An unknown channel (FS203,
        # often a misspelt outbox) says nothing about the API: warning would be a guess stacked
        # on an error, and the fixed reference is checked on the next run.
        if channel is None or channel.model.spec.type == "outbox":
            continue
        users[(org, spec.flow)].append(automation.name)
    out: list[Diagnostic] = []
    for key, automations in sorted(users.items()):
        flow = config.flows.get(key)
        if flow is None:
            continue
        texts = first_text_nodes(flow.model.spec)
        if not texts:
            continue
        start = flow.model.spec.start
        names = ", ".join(sorted(automations))
        via = "" if texts == [start] else f" (via {', '.join(texts)})"
        out.append(
            warning(
                "FS410",
                f"flow '{flow.name}' can start with free-form text{via}, sent by automation(s) "
                f"{names}: outside the 24-hour customer-service window the WhatsApp Cloud API "
                f"accepts only approved templates (error 131047); start with a send_template node",
                flow.locate(["spec", "nodes", start]),
            )
        )
    return out


def first_text_nodes(flow: models.FlowSpec) -> list[str]:
    """The `send_text` nodes that can be a recipient's first message: reached from `start`
    through conditions (either branch) and waits only, in the order first found."""
    found: list[str] = []
    seen: set[str] = set()
    pending = [flow.start]
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        node = flow.nodes.get(name)
        if isinstance(node, models.SendTextNode):
            found.append(name)
        elif isinstance(node, models.ConditionNode):
            pending.extend((node.then, node.else_))
        elif isinstance(node, models.WaitNode):
            pending.append(node.next)
    return found
