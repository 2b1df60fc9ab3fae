"""One campaign end to end over real sockets: contacts imported with the CLI, applied, dispatched
and worked by the engine against the stand-in Cloud API, whose signed status webhooks reach the
service over HTTP. One recipient goes through every node type (send_template, condition, wait,
send_text, end); another takes the condition's other branch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine_support import FAST, ORG, TOKEN, Enqueued, FakeClock, apply, engine_for, table_rows, utc
from reconciler_helpers import invoke

from reconciler import engine as eng
from reconciler import models
from reconciler.service import ServerThread, create_app
from reconciler.standin import AutoStatuses, StandIn

T0 = utc("2026-01-05T00:00:00Z")
RUN = utc("2026-01-05T09:00:01Z")
SECRET_ENV = {"WA_APP_SECRET": "journey-app-secret"}

FLOW = {
    "variables": ["discount"],
    "start": "greet",
    "nodes": {
        "greet": {"type": "send_template", "template": "promo_bf", "language": "pt_BR",
                  "params": ["{{contact.first_name}}", "{{discount}}"], "next": "is-rio"},
        "is-rio": {"type": "condition", "if": {"field": "contact.city", "op": "eq", "value": "Rio"},
                   "then": "pause", "else": "done"},
        "pause": {"type": "wait", "duration": "2h", "next": "remind"},
        "remind": {"type": "send_text", "text": "{{contact.first_name}}, last hours: {{discount}} off",
                   "next": "done"},
        "done": {"type": "end"},
    },
}


def write_config(root: Path, base_url: str, phone_number_id: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs: list[dict[str, Any]] = [
        {"apiVersion": "flowspec/v1", "kind": "Channel", "metadata": {"name": "wa", "organization": ORG},
         "spec": {"type": "whatsapp_cloud", "phone_number_id": phone_number_id,
                  "access_token_env": "WA_TOKEN", "app_secret_env": "WA_APP_SECRET",
                  "api_base_url": base_url, "messages_per_second": 1000}},
        {"apiVersion": "flowspec/v1", "kind": "Flow", "metadata": {"name": "promo", "organization": ORG},
         "spec": FLOW},
        {"apiVersion": "flowspec/v1", "kind": "Automation",
         "metadata": {"name": "journey", "organization": ORG},
         "spec": {"flow": "promo", "whatsapp_number": "wa",
                  "audience": {"segment": {"tags": ["journey"]}},
                  "variable_mapping": {"discount": "50%"},
                  "schedule": {"recurrence_type": "daily", "start_date": "2026-01-01",
                               "start_time": "09:00", "execution_timezone": "UTC"}}},
    ]
    (root / "config.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs))
    return root


def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def test_every_node_type_end_to_end_with_webhooks(db_url: str, tmp_path: Path) -> None:
    """Ana (Rio) gets the template, waits 2 h, gets the text, completes; Bruno (São Paulo)
    gets the template and completes; Carla (opted out) gets nothing. Every message ends `read`
    from the stand-in's signed webhooks, Ana's recipient follows her latest message while she
    waits, and nobody receives anything twice."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "id,phone,first_name,city,tags,opted_out\n"
        "ana,+5521999990001,Ana,Rio,journey,false\n"
        "bruno,+5511999990002,Bruno,São Paulo,journey,false\n"
        "carla,+5511999990003,Carla,Rio,journey,true\n"
    )
    imported = invoke("contacts", "import", str(contacts), "--organization", ORG, "--db", db_url)
    assert imported.code == 0, imported.output

    api = StandIn(token=TOKEN)
    # The service reads only the channel's phone_number_id and secret; its copy of the config
    # needs no API address, so it can start first and give the stand-in a webhook URL.
    service = create_app(db_url=db_url, env=SECRET_ENV, unmatched_interval=0.1,
                         config_paths=[write_config(tmp_path / "svc", "http://127.0.0.1:9/v21.0",
                                                    api.phone_number_id)])
    with ServerThread(service) as service_url:
        api.auto_statuses = AutoStatuses(f"{service_url}/webhooks/whatsapp",
                                         SECRET_ENV["WA_APP_SECRET"], ("delivered", "read"))
        with api:
            root = write_config(tmp_path / "cfg", api.base_url, api.phone_number_id)
            apply(root, db_url, T0)
            engine = engine_for(db_url, root, settings=FAST)
            try:
                clock = FakeClock(RUN)
                [execution_id] = eng.dispatch_due(engine, now=RUN, enqueue=Enqueued()).executions
                eng.fan_out(engine, execution_id, now=RUN)

                def recipients() -> dict[str, dict[str, Any]]:
                    return {r["contact_id"]: r for r in table_rows(
                        db_url, models.recipients, execution_id=execution_id)}

                def sent_messages() -> list[dict[str, Any]]:
                    return table_rows(db_url, models.messages)

                first = eng.work_execution(engine, execution_id, now=clock(), clock=clock,
                                           sleep=clock.sleep)
                assert first.sent == 2 and not first.finished
                assert first.next_at is not None and first.next_at >= RUN + timedelta(hours=2)
                eventually(lambda: [m["status"] for m in sent_messages()] == ["read", "read"],
                           "both templates read")
                waiting = recipients()
                assert set(waiting) == {"ana", "bruno"}
                assert waiting["ana"]["status"] == "read"  # raised by the webhook while waiting
                assert waiting["ana"]["current_node"] == "remind"
                assert waiting["bruno"]["status"] == "completed"  # terminal: never raised

                clock.t = first.next_at
                eng.sweep(engine, now=clock(), enqueue=Enqueued())
                second = eng.work_execution(engine, execution_id, now=clock(), clock=clock,
                                            sleep=clock.sleep)
                assert second.sent == 1 and second.finished
                eventually(lambda: sorted(m["status"] for m in sent_messages()) == ["read"] * 3,
                           "the reminder read too")
                # A `delivered` that came before its wamid was recorded, then overtaken by
                # `read`, is applied from unmatched_statuses shortly after: its time is kept.
                eventually(lambda: all(m["delivered_at"] is not None for m in sent_messages()),
                           "every delivery time recorded")
                api.drain_statuses()
            finally:
                engine.close()

    received = api.messages
    assert not api.duplicates()
    assert sorted((m.to, m.type) for m in received) == [
        ("+5511999990002", "template"), ("+5521999990001", "template"), ("+5521999990001", "text"),
    ]
    text = next(m for m in received if m.type == "text")
    assert text.content == "Ana, last hours: 50% off"
    template = next(m for m in received if m.to == "+5511999990002")
    assert template.body["template"]["components"][0]["parameters"][0]["text"] == "Bruno"
    final = recipients()
    assert {k: v["status"] for k, v in final.items()} == {"ana": "completed", "bruno": "completed"}
    ana_messages = [m for m in sent_messages() if m["recipient_id"] == final["ana"]["id"]]
    assert [(m["step"], m["node"], m["status"]) for m in sorted(ana_messages, key=lambda m: m["step"])] == [
        (0, "greet", "read"), (1, "remind", "read")]
    assert all(m["read_at"] is not None for m in sent_messages())
    assert set(api.webhook_responses) == {200}
    execution = table_rows(db_url, models.executions, id=execution_id)[0]
    assert (execution["status"], execution["sent"], execution["completed"]) == ("finished", 3, 2)
