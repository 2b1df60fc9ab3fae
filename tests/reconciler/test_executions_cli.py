"""`flowspec executions list|show` and `flowspec status`: recipient outcomes with error codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from process_helpers import TOKEN_ENV, cloud_channel, copy_examples, write_config
from reconciler_helpers import invoke

from reconciler.standin import Fault, StandIn

NOW = "2026-03-02T09:05:00Z"


@pytest.fixture
def ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One execution through the stand-in Cloud API: four recipients, one refused as
    undeliverable (131026), one whose template is missing (132001)."""
    monkeypatch.setenv(TOKEN_ENV, "t")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with StandIn(token="t") as api:
        api.add_fault(Fault(code=131026, recipient="+5511000000002"))
        api.add_fault(Fault(code=132001, recipient="+5511000000004"))
        root = write_config(tmp_path / "config", automations={"promo": {}}, contacts=4,
                            channel=cloud_channel(api.base_url))
        result = invoke("run", str(root), "--db", url, "--now", NOW, "--no-progress", cwd=tmp_path)
        assert result.code == 0, result.output
        assert len(api.messages) == 2
    assert "2 sent, 2 failed" in result.out
    assert "details: flowspec executions show 1" in result.out
    return url


def test_show_lists_each_recipient_with_its_error_code(ran: str) -> None:
    """Text: the error codes with their counts, then one row per recipient."""
    result = invoke("executions", "show", "1", "--db", ran)
    assert result.code == 0, result.output
    out = result.out
    assert "execution 1: acme/promo" in out
    assert "errors:     131026 ×1, 132001 ×1" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("c-")}
    assert rows["c-0001"][2] == "completed" and rows["c-0001"][4] == "-"
    assert rows["c-0002"][2] == "failed" and rows["c-0002"][4] == "131026"
    assert rows["c-0004"][2] == "failed" and rows["c-0004"][4] == "132001"


def test_show_json_and_status_filter(ran: str) -> None:
    """JSON carries every recipient's outcome and messages; --status narrows the list."""
    result = invoke("executions", "show", "1", "--db", ran, "--format", "json", "--status", "failed")
    assert result.code == 0, result.output
    doc = json.loads(result.out)
    assert doc["format"] == "flowspec.execution/v1"
    assert doc["errors_by_code"] == {"131026": 1, "132001": 1}
    assert doc["recipients_by_status"] == {"completed": 2, "failed": 2}
    assert {(r["contact_id"], r["error_code"]) for r in doc["recipients"]} == {
        ("c-0002", "131026"), ("c-0004", "132001"),
    }
    assert all(r["messages"][0]["status"] == "failed" for r in doc["recipients"])


def test_list_and_status_show_the_finished_execution(ran: str) -> None:
    """`executions list` and `status` both report the finished execution and its stats."""
    listed = invoke("executions", "list", "--db", ran)
    assert listed.code == 0
    assert "acme/promo" in listed.out and "finished" in listed.out
    status = invoke("status", "--db", ran, "--format", "json")
    doc = json.loads(status.out)
    assert doc["executions"]["by_status"] == {"finished": 1}
    assert doc["executions"]["recent_finished"][0]["stats"]["failed"] == 2


def test_show_unknown_id_is_a_user_error(ran: str) -> None:
    """An id that does not exist: exit 1 with where to find the ids."""
    result = invoke("executions", "show", "99", "--db", ran)
    assert result.code == 1
    assert "no execution 99" in result.err and "flowspec executions list" in result.err


def test_an_unfinished_execution_shows_live_counts_and_no_stats(tmp_path: Path) -> None:
    """Until every recipient is done, an execution's stats are not written (SPEC 6.9): list
    shows "-" for them, show says when they will be, JSON has null; the recipients' live
    counts tell what was sent so far, and status counts the execution as running."""
    copy_examples(tmp_path / "automations")
    # 12:30 UTC: daily-checkin (11:00) finishes; daily-promo (12:00) sends, then its flow waits.
    assert invoke("run", "automations", "--now", "2026-12-02T12:30:00Z", "--no-progress",
                  cwd=tmp_path).code == 0
    url = f"sqlite:///{tmp_path / 'flowspec.db'}"
    listed = json.loads(invoke("executions", "list", "--db", url, "--format", "json").out)
    by_name = {x["automation"]: x for x in listed["executions"]}
    promo, checkin = by_name["daily-promo"], by_name["daily-checkin"]
    assert promo["status"] == "running" and promo["stats"] is None
    assert checkin["status"] == "finished" and checkin["stats"]["sent"] == 4

    table = invoke("executions", "list", "--db", url).out.splitlines()
    header = table[0].split()
    rows = {line.split()[1]: dict(zip(header, line.split(), strict=False)) for line in table[1:]}
    assert rows["acme/daily-promo"]["SENT"] == "-" and rows["acme/daily-promo"]["FAILED"] == "-"
    assert rows["acme/daily-checkin"]["SENT"] == "4"

    shown = invoke("executions", "show", str(promo["id"]), "--db", url).out
    assert "stats:      written when the execution finishes (every recipient done)" in shown
    live = next(line for line in shown.splitlines() if line.startswith("recipients: "))
    assert sum(int(part.split()[0]) for part in live[len("recipients: "):].split(", ")) == 4
    assert "sent 0" not in shown

    doc = json.loads(invoke("status", "--db", url, "--format", "json", cwd=tmp_path).out)
    autos = {x["name"]: x for x in doc["automations"]}
    assert (autos["daily-promo"]["execution_count"], autos["daily-promo"]["running_executions"]) \
        == (0, 1)
    assert (autos["daily-checkin"]["execution_count"],
            autos["daily-checkin"]["running_executions"]) == (1, 0)
    text = invoke("status", "--db", url, cwd=tmp_path).out.splitlines()
    assert "  0 (+1 running)  " in next(x for x in text if x.startswith("acme/daily-promo "))
