"""FS410 through `flowspec validate`: a flow whose first message can be free-form text."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import invoke  # noqa: E402

CLOUD = """\
apiVersion: flowspec/v1
kind: Channel
metadata: {name: cloud-br}
spec: {type: whatsapp_cloud, phone_number_id: "1234567890", access_token_env: WA_TOKEN,
       app_secret_env: WA_APP_SECRET}
---
apiVersion: flowspec/v1
kind: Channel
metadata: {name: main-br}
spec: {type: outbox, path: outbox.jsonl}
"""


def automation(name: str, flow: str, channel: str = "cloud-br") -> str:
    return f"""\
apiVersion: flowspec/v1
kind: Automation
metadata: {{name: {name}}}
spec:
  flow: {flow}
  whatsapp_number: {channel}
  audience: {{contact_ids: [c-001]}}
  schedule: {{recurrence_type: daily, start_date: 2026-01-05, start_time: "09:00"}}
"""


def flow(name: str, nodes: str, start: str = "greet") -> str:
    return f"""\
apiVersion: flowspec/v1
kind: Flow
metadata: {{name: {name}}}
spec:
  start: {start}
  nodes:
{nodes}"""


TEXT_FIRST = "    greet: {type: send_text, text: Hi, next: done}\n    done: {type: end}\n"
TEMPLATE_FIRST = (
    "    greet: {type: send_template, template: hello, language: en, next: nudge}\n"
    "    nudge: {type: send_text, text: Still there?, next: done}\n"
    "    done: {type: end}\n"
)


def validate(tmp_path: Path, files: dict[str, str]) -> list[dict[str, object]]:
    root = tmp_path / "automations"
    root.mkdir()
    (root / "channels.yaml").write_text(CLOUD)
    for name, text in files.items():
        (root / name).write_text(text)
    result = invoke("validate", "--now", "2026-01-01T00:00:00Z", "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.output
    diagnostics = json.loads(result.out)["diagnostics"]
    return [d for d in diagnostics if d["code"] == "FS410"]


def test_text_first_flow_warns_at_its_start_node(tmp_path: Path) -> None:
    """A flow that opens with send_text, sent through a Cloud API channel, gets FS410 at the
    start node's line, naming the automation; validate still exits 0 (a warning)."""
    found = validate(tmp_path, {"f.yaml": flow("welcome", TEXT_FIRST),
                                "a.yaml": automation("welcome-daily", "welcome")})
    assert len(found) == 1
    assert found[0]["severity"] == "warning"
    assert str(found[0]["file"]).endswith("f.yaml")
    assert found[0]["line"] == 7  # `greet:` under nodes
    assert "welcome-daily" in str(found[0]["message"]) and "131047" in str(found[0]["message"])


def test_text_reached_through_condition_and_wait_warns(tmp_path: Path) -> None:
    """Conditions (either branch) and waits before the first send still make it the first
    message: the warning names the text node it goes through."""
    nodes = (
        "    check: {type: condition, if: {field: contact.city, op: exists}, then: tpl, else: pause}\n"
        "    pause: {type: wait, duration: 1h, next: txt}\n"
        "    tpl: {type: send_template, template: hello, language: en, next: done}\n"
        "    txt: {type: send_text, text: Hi, next: done}\n"
        "    done: {type: end}\n"
    )
    found = validate(tmp_path, {"f.yaml": flow("mixed", nodes, start="check"),
                                "a.yaml": automation("mixed-daily", "mixed")})
    assert len(found) == 1
    assert "via txt" in str(found[0]["message"])


def test_template_first_flow_and_outbox_channel_do_not_warn(tmp_path: Path) -> None:
    """A template first (text later is fine) and a text-first flow sent only through the
    outbox give no FS410."""
    found = validate(tmp_path, {
        "f1.yaml": flow("promo", TEMPLATE_FIRST),
        "f2.yaml": flow("welcome", TEXT_FIRST),
        "a1.yaml": automation("promo-daily", "promo"),
        "a2.yaml": automation("welcome-outbox", "welcome", channel="main-br"),
    })
    assert found == []


def test_one_warning_per_flow_names_every_automation(tmp_path: Path) -> None:
    """Two automations sending the same text-first flow give one FS410 listing both."""
    found = validate(tmp_path, {
        "f.yaml": flow("welcome", TEXT_FIRST),
        "a1.yaml": automation("alpha", "welcome"),
        "a2.yaml": automation("beta", "welcome"),
    })
    assert len(found) == 1
    assert "alpha, beta" in str(found[0]["message"])


def test_unknown_channel_gives_the_reference_error_without_fs410(tmp_path: Path) -> None:
    """An automation whose channel does not exist gets FS203 (with a did-you-mean), not also an
    FS410 that guesses the missing channel is a Cloud API number."""
    root = tmp_path / "automations"
    root.mkdir()
    (root / "channels.yaml").write_text(CLOUD)
    (root / "f.yaml").write_text(flow("welcome", TEXT_FIRST))
    (root / "a.yaml").write_text(automation("welcome-daily", "welcome", channel="main-bx"))
    result = invoke("validate", "--now", "2026-01-01T00:00:00Z", "--format", "json", cwd=tmp_path)
    assert result.code == 1
    codes = [d["code"] for d in json.loads(result.out)["diagnostics"]]
    assert codes == ["FS203"]
    assert "did you mean 'main-br'" in json.loads(result.out)["diagnostics"][0]["message"]
