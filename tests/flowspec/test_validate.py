"""`flowspec validate`: every check through the real CLI, locations, suggestions, formats, exits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_support import ROOT, invoke

from flowspec.cli import ISSUES_URL

NOW = ("--now", "2026-01-01T00:00:00Z")

FLOW = """\
apiVersion: flowspec/v1
kind: Flow
metadata: {name: promo}
spec:
  variables: [discount]
  start: greet
  nodes:
    greet: {type: send_text, text: "Today {{discount}} off", next: done}
    done: {type: end}
"""
CHANNEL = """\
apiVersion: flowspec/v1
kind: Channel
metadata: {name: main-br}
spec: {type: outbox, path: outbox.jsonl}
"""


def automation(name: str = "daily", *, schedule: str = "", spec: str = "", extra: str = "") -> str:
    head = spec or (
        "  flow: promo\n"
        "  whatsapp_number: main-br\n"
        "  audience: {contact_ids: [c-001]}\n"
        '  variable_mapping: {discount: "10%"}\n'
    )
    sched = schedule or (
        "    recurrence_type: daily\n"
        "    start_date: 2026-01-05\n"
        '    start_time: "09:00"\n'
        "    execution_timezone: America/Sao_Paulo\n"
    )
    return (
        "apiVersion: flowspec/v1\nkind: Automation\n"
        f"metadata: {{name: {name}}}\nspec:\n{head}  schedule:\n{sched}{extra}"
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def config(tmp_path: Path, **files: str) -> Path:
    """automations/ with the shared flow and channel plus `files` (a__b → a/b.yaml)."""
    base = {"base/flow.yaml": FLOW, "base/channel.yaml": CHANNEL}
    given = {k.replace("__", "/") + ".yaml": v for k, v in files.items()}
    return write(tmp_path / "automations", {**base, **given})


def run(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    r = invoke("validate", *NOW, *args, cwd=tmp_path)
    assert "Traceback" not in r.output
    return r.code, r.out.splitlines()


def codes(lines: list[str]) -> list[str]:
    return re.findall(r"\[(FS\d{3})\]", "\n".join(lines))


# --------------------------------------------------------------------------- basics


def test_examples_are_valid() -> None:
    """The example config in automations/ validates with no errors or warnings."""
    r = invoke("validate", *NOW, "automations", cwd=ROOT)
    assert r.code == 0, r.output
    assert re.fullmatch(r"ok: \d+ files, \d+ documents\n", r.out), r.out


def test_default_path_is_automations_folder(tmp_path: Path) -> None:
    """Without PATHS, validate reads automations/ when it exists."""
    config(tmp_path, a=automation())
    (tmp_path / "stray.yaml").write_text("- not a document\n")  # outside automations/: ignored
    code, lines = run(tmp_path)
    assert code == 0
    assert lines == ["ok: 3 files, 3 documents"]


def test_default_path_is_current_folder_without_automations(tmp_path: Path) -> None:
    """Without PATHS and without automations/, validate reads the current folder."""
    write(tmp_path, {"flow.yaml": FLOW, "channel.yaml": CHANNEL, "a.yaml": automation()})
    code, lines = run(tmp_path)
    assert (code, lines) == (0, ["ok: 3 files, 3 documents"])


def test_spec_example_line_exactly(tmp_path: Path) -> None:
    """The SPEC's example diagnostic is reproduced character for character."""
    promo = (
        "# yaml-language-server: $schema=../schemas/automation.schema.json\n"
        "apiVersion: flowspec/v1\n"
        "kind: Automation\n"
        "metadata:\n"
        "  name: promo\n"
        "spec: {\n"
        " flow: promo,\n"
        " whatsapp_number: main-br,\n"
        " audience: {contact_ids: [c-001]},\n"
        ' variable_mapping: {discount: "10%"},\n'
        " schedule: {\n"
        "  recurrence_type: daily,\n"
        '  start_date: 2026-01-05, start_time: "09:00",\n'
        " execution_timezone: America/Sao_Paul}}\n"
    )
    config(tmp_path, promo=promo)
    code, lines = run(tmp_path, "automations")
    assert code == 1
    assert lines[0] == (
        "automations/promo.yaml:14:22: error[FS104]: unknown timezone 'America/Sao_Paul' "
        "(did you mean 'America/Sao_Paulo'?)"
    )
    assert lines[-1] == "1 error in 3 files"


def test_timezone_in_wrong_case_is_suggested(tmp_path: Path) -> None:
    """A timezone with the wrong case gets the correctly cased zone as its suggestion."""
    sched = '    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n    execution_timezone: america/sao_paulo\n'
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert code == 1
    assert "automations/a.yaml:13:25: error[FS104]: unknown timezone 'america/sao_paulo' (did you mean 'America/Sao_Paulo'?)" in lines


# --------------------------------------------------------------------------- schema layer


def test_unknown_key_is_located_at_the_key_with_a_suggestion(tmp_path: Path) -> None:
    """An unknown key points at the key itself and names the nearest valid key."""
    sched = '    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n    skip_weekend: true\n'
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert code == 1
    assert lines[0] == (
        "automations/a.yaml:13:5: error[FS103]: unknown key 'skip_weekend' in spec.schedule "
        "(did you mean 'skip_weekends'?)"
    )


def test_misspelt_required_key_is_reported_once(tmp_path: Path) -> None:
    """'recurence_type' is one unknown-key error, not also a missing recurrence_type."""
    sched = '    recurence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n'
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert code == 1
    assert codes(lines) == ["FS103"]
    assert "did you mean 'recurrence_type'?" in lines[0]


def test_unknown_key_in_recurrence_config_uses_that_types_keys(tmp_path: Path) -> None:
    """Keys inside recurrence_config are suggested from the config of its recurrence_type."""
    sched = '    recurrence_type: weekly\n    recurrence_config: {dayz: [MON]}\n    start_date: 2026-01-05\n    start_time: "09:00"\n'
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert lines[0] == (
        "automations/a.yaml:11:25: error[FS103]: unknown key 'dayz' in "
        "spec.schedule.recurrence_config (did you mean 'days'?)"
    )


def test_literal_gets_did_you_mean(tmp_path: Path) -> None:
    """A value outside a fixed set is located at the value and suggests the nearest choice."""
    sched = '    recurrence_type: weeky\n    start_date: 2026-01-05\n    start_time: "09:00"\n'
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert lines[0] == (
        "automations/a.yaml:10:22: error[FS107]: spec.schedule.recurrence_type: 'weeky' is not one "
        "of once, daily, weekly, monthly, cron, custom (did you mean 'weekly'?)"
    )


def test_unknown_kind_gets_did_you_mean(tmp_path: Path) -> None:
    """A misspelt kind is located at the value and suggests the kind."""
    config(tmp_path, a="apiVersion: flowspec/v1\nkind: Chanel\nmetadata: {name: x}\nspec: {}\n")
    code, lines = run(tmp_path)
    assert lines[0].startswith("automations/a.yaml:2:7: error[FS102]: unknown kind 'Chanel' (did you mean 'Channel'?)")


def test_time_format_is_explained_in_words(tmp_path: Path) -> None:
    """An unquoted or malformed time of day says what to write, not a regular expression."""
    sched = "    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: 9:00\n"
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert lines[0] == (
        "automations/a.yaml:12:17: error[FS108]: spec.schedule.start_time: '9:00' is not a time "
        'of day "HH:MM" (24-hour, quoted; e.g. "09:00")'
    )


def test_yaml_1_1_booleans_are_strings_and_rejected_for_booleans(tmp_path: Path) -> None:
    """`skip_weekends: yes` is the string 'yes' (YAML 1.2), so it is a type error, not true."""
    sched = '    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n    skip_weekends: yes\n'
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert lines[0] == (
        "automations/a.yaml:13:20: error[FS106]: spec.schedule.skip_weekends: expected true or "
        "false, got the string 'yes'"
    )


def test_union_value_reports_the_branch_that_fits(tmp_path: Path) -> None:
    """A blackout range with a bad start reports the range's field, not 'expected a string'."""
    sched = '    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n    blackout_dates: [2026-12-25, {start: tomorrow}]\n'
    config(tmp_path, a=automation(schedule=sched))
    code, lines = run(tmp_path)
    assert codes(lines) == ["FS108"]
    assert lines[0].startswith("automations/a.yaml:13:42: error[FS108]: spec.schedule.blackout_dates[1].start: 'tomorrow'")


# --------------------------------------------------------------------------- semantic layer


def test_reference_did_you_mean_and_other_organization(tmp_path: Path) -> None:
    """A missing reference suggests a near name and points out a same-named one elsewhere."""
    other = CHANNEL.replace("{name: main-br}", "{name: promo-br, organization: other}")
    spec = (
        "  flow: promos\n  whatsapp_number: promo-br\n  audience: {contact_ids: [c-001]}\n"
    )
    config(tmp_path, a=automation(spec=spec), other=other)
    code, lines = run(tmp_path)
    assert lines[:2] == [
        "automations/a.yaml:5:9: error[FS202]: flow: no Flow named 'promos' in organization "
        "'default' (did you mean 'promo'?)",
        "automations/a.yaml:6:20: error[FS203]: whatsapp_number: no Channel named 'promo-br' in "
        "organization 'default'; a Channel 'promo-br' exists in organization 'other', but "
        "references stay within one organization",
    ]


def test_all_problems_are_reported_in_one_run_sorted(tmp_path: Path) -> None:
    """Errors in several files and layers come out together, sorted by file, line, column."""
    config(
        tmp_path,
        a=automation(schedule='    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n    execution_timezone: Mars/Olympus\n'),
        b=automation("b", extra="  delivery: {overlap_policy: sometimes}\n"),
        c="- a list\n",
        d=automation("d", spec='  flow: promo\n  whatsapp_number: main-br\n  audience: {audience: vips}\n  variable_mapping: {discount: "1"}\n'),
    )
    code, lines = run(tmp_path)
    assert code == 1
    assert codes(lines) == ["FS104", "FS107", "FS009", "FS204"]
    files = [line.split(":")[0] for line in lines[:-1]]
    assert files == sorted(files)
    assert lines[-1] == "4 errors in 6 files"


def test_semantic_checks_locations(tmp_path: Path) -> None:
    """Each semantic check points at the offending node."""
    sched = (
        "    recurrence_type: daily\n"
        "    start_date: 2026-01-05\n"
        "    end_date: 2025-12-31\n"
        '    start_time: "09:00"\n'
        '    execution_window_start: "09:00"\n'
        '    execution_window_end: "09:00"\n'
    )
    exceptions = (
        "  exceptions:\n"
        "    - {name: carnival, exception_type: skip, start_date: 2026-03-10, end_date: 2026-03-01}\n"
        "    - name: carnival\n"
        "      exception_type: modify\n"
        "      start_date: 2026-01-10\n"
        "      modified_config: {rate_limit: 3000, max_concurrent_executions: 0}\n"
    )
    config(tmp_path, a=automation(schedule=sched, extra=exceptions).replace('{discount: "10%"}', '{discont: "10%"}'))
    code, lines = run(tmp_path)
    found = [line for line in lines if "error[" in line]
    assert found == [
        "automations/a.yaml:8:3: error[FS207]: flow 'promo' declares variable 'discount' but "
        "variable_mapping does not map it; add variable_mapping: {discount: ...}",
        "automations/a.yaml:8:22: error[FS208]: variable_mapping maps 'discont', which flow "
        "'promo' does not declare (did you mean 'discount'?) (its variables: discount); remove it "
        "or declare it in the flow",
        "automations/a.yaml:12:15: error[FS205]: end_date 2025-12-31 is before start_date "
        "2026-01-05; swap them or fix the date",
        "automations/a.yaml:15:27: error[FS206]: execution window starts and ends at 09:00: it "
        "would never be open; give a later execution_window_end (a time before the start spans "
        "midnight), or remove both for no window",
        "automations/a.yaml:17:80: error[FS209]: exception range ends (2026-03-01) before it "
        "starts (2026-03-10); swap start_date and end_date",
        "automations/a.yaml:18:13: error[FS210]: exception name 'carnival' is used twice (first "
        "at line 17); names identify exceptions and must be unique within the automation",
        "automations/a.yaml:21:25: error[FS211]: modified_config key 'rate_limit' is not a "
        "delivery setting (did you mean 'rate_limit_per_hour'?); a modify exception may change "
        "rate_limit_per_hour, max_concurrent_executions, retry, catchup_window, overlap_policy, "
        "delivery_guarantee",
        "automations/a.yaml:21:70: error[FS109]: modified_config.max_concurrent_executions "
        "must be at least 1, got the number 0",
    ]


def test_integers_have_ceilings(tmp_path: Path) -> None:
    """Huge integers (an interval, rates, limits) are located FS109 errors, never a crash or a
    value that would overflow a database column at apply."""
    sched = (
        "    recurrence_type: daily\n"
        "    recurrence_config: {interval: 1000000000000000000000000000000}\n"
        "    start_date: 2026-01-05\n"
        '    start_time: "09:00"\n'
    )
    delivery = (
        "  delivery:\n"
        "    rate_limit_per_hour: 1000000000000000000000000000000\n"
        "    max_concurrent_executions: 100001\n"
        "    retry: {multiplier: 1e308}\n"
    )
    modify = (
        "  exceptions:\n"
        "    - {exception_type: modify, start_date: 2026-01-10, modified_config: {rate_limit_per_hour: 10000001}}\n"
    )
    channel = CHANNEL.replace("main-br", "big").replace(
        "{type: outbox, path: outbox.jsonl}", "{type: outbox, messages_per_second: 10001, daily_unique_recipients: 1000000001}"
    )
    config(tmp_path, a=automation(schedule=sched, extra=delivery), b=automation("b", extra=modify), big=channel)
    code, lines = run(tmp_path)
    assert code == 1
    found = [line for line in lines if "error[" in line]
    assert found == [
        "automations/a.yaml:11:35: error[FS109]: spec.schedule.recurrence_config.interval must be at "
        "most 1000, got the number 1000000000000000000000000000000",
        "automations/a.yaml:15:26: error[FS109]: spec.delivery.rate_limit_per_hour must be at most "
        "10000000, got the number 1000000000000000000000000000000",
        "automations/a.yaml:16:32: error[FS109]: spec.delivery.max_concurrent_executions must be at "
        "most 100000, got the number 100001",
        "automations/a.yaml:17:25: error[FS109]: spec.delivery.retry.multiplier must be at most "
        "100.0, got the number 1e+308",
        "automations/b.yaml:15:95: error[FS109]: modified_config.rate_limit_per_hour must be at "
        "most 10000000, got the number 10000001",
        "automations/big.yaml:4:43: error[FS109]: spec.messages_per_second must be at most "
        "10000, got the number 10001",
        "automations/big.yaml:4:75: error[FS109]: spec.daily_unique_recipients must be at "
        "most 1000000000, got the number 1000000001",
    ]


def test_dates_outside_the_supported_years_are_errors(tmp_path: Path) -> None:
    """A date in year 1 or 9999 (a typo) is a located FS111, not an overflow (exit 3)."""
    sched = (
        "    recurrence_type: daily\n"
        "    start_date: 0001-01-01\n"
        '    start_time: "09:00"\n'
    )
    extra = "  exceptions:\n    - {exception_type: reschedule, start_date: 2026-01-05T09:00, rescheduled_to: 9999-12-31}\n"
    config(tmp_path, a=automation(schedule=sched, extra=extra))
    code, lines = run(tmp_path)
    assert code == 1
    assert [line for line in lines if "error[" in line] == [
        "automations/a.yaml:11:17: error[FS111]: '0001-01-01' is outside the years 1900-2999 that "
        "schedules may use; check the year",
        "automations/a.yaml:14:82: error[FS111]: '9999-12-31' is outside the years 1900-2999 that "
        "schedules may use; check the year",
    ]


def test_durations_have_a_ceiling(tmp_path: Path) -> None:
    """A duration beyond a year (catch-up, retry, modify, wait) is a located FS109; a huge one
    once validated and then overflowed at run time (exit 3)."""
    extra = (
        "  delivery:\n"
        "    catchup_window: 99999999999999999999d\n"
        "    retry: {max_delay: 367d}\n"
        "  exceptions:\n"
        "    - {exception_type: modify, start_date: 2026-01-10, modified_config: {retry: {initial_delay: 53w}}}\n"
    )
    flow = FLOW.replace("next: done}", "next: pause}\n    pause: {type: wait, duration: 9999999999999w, next: done}")
    config(tmp_path, a=automation(extra=extra), base__flow=flow)
    code, lines = run(tmp_path)
    assert code == 1
    assert [line for line in lines if "error[" in line] == [
        "automations/a.yaml:15:21: error[FS109]: spec.delivery.catchup_window must be at most 366d, "
        "got 99999999999999999999d",
        "automations/a.yaml:16:24: error[FS109]: spec.delivery.retry.max_delay must be at most 366d, got 367d",
        "automations/a.yaml:18:97: error[FS109]: modified_config.retry.initial_delay must be at most "
        "366d, got 53w",
        "automations/base/flow.yaml:9:35: error[FS109]: spec.nodes.pause.duration must be at most 366d, got 9999999999999w",
    ]


def test_flow_graph_checks(tmp_path: Path) -> None:
    """Unknown targets, unreachable nodes, waitless cycles and undeclared variables are errors."""
    flow = """\
apiVersion: flowspec/v1
kind: Flow
metadata: {name: promo}
spec:
  variables: [discount]
  start: greet
  nodes:
    greet: {type: send_text, text: "Today {{discount}} off {{discont}}", next: check}
    check: {type: condition, if: {field: contact.replied, op: exists}, then: dne, else: greet}
    done: {type: end}
"""
    config(tmp_path, base__flow=flow)
    code, lines = run(tmp_path)
    assert code == 1
    assert lines[:-1] == [
        "automations/base/flow.yaml:8:5: error[FS404]: cycle without a wait node (greet -> "
        "check -> greet): a recipient would loop forever sending at once; put a wait node in the "
        "loop or break it",
        "automations/base/flow.yaml:8:36: error[FS405]: node 'greet' text: '{{discont}}' uses "
        "variable 'discont', which the flow does not declare (did you mean 'discount'?); add it "
        "to spec.variables",
        "automations/base/flow.yaml:9:78: error[FS402]: node 'check' goes then to 'dne', which is "
        "not a node (did you mean 'done'?)",
        "automations/base/flow.yaml:10:5: error[FS403]: node 'done' is unreachable from start "
        "node 'greet'; link it from another node or remove it",
    ]


def test_wait_in_a_cycle_makes_it_valid(tmp_path: Path) -> None:
    """A loop through a wait node is a legitimate reminder loop."""
    flow = FLOW.replace(
        "next: done}",
        "next: pause}\n    pause: {type: wait, duration: 1d, next: check}\n"
        "    check: {type: condition, if: {field: contact.replied, op: exists}, then: done, else: greet}",
    )
    config(tmp_path, base__flow=flow)
    code, lines = run(tmp_path)
    assert (code, lines) == (0, ["ok: 2 files, 2 documents"])


def test_literal_secret_in_channel(tmp_path: Path) -> None:
    """A token written into a Channel is FS501 at the key, never accepted."""
    channel = CHANNEL.replace("spec: {type: outbox, path: outbox.jsonl}", "spec:\n  type: whatsapp_cloud\n  phone_number_id: '1'\n  access_token: EAAGm0PX4ZCpsBAKZB\n")
    config(tmp_path, base__channel=channel)
    code, lines = run(tmp_path)
    assert code == 1
    assert lines[0].startswith("automations/base/channel.yaml:7:3: error[FS501]: 'access_token' looks like a literal secret")


def test_bad_default_is_reported_once_where_it_is_written(tmp_path: Path) -> None:
    """A bad timezone in flowspec.yaml is one diagnostic there, not one per automation."""
    defaults = "apiVersion: flowspec/v1\nkind: Defaults\nmetadata: {name: defaults}\nspec:\n  schedule: {execution_timezone: Europe/Lisbn}\n"
    sched = '    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n'
    config(tmp_path, flowspec=defaults, a=automation("a", schedule=sched), b=automation("b", schedule=sched))
    code, lines = run(tmp_path)
    assert lines == [
        "automations/flowspec.yaml:5:34: error[FS104]: unknown timezone 'Europe/Lisbn' (did you "
        "mean 'Europe/Lisbon'?)",
        "1 error in 5 files",
    ]


def test_audience_file_relative_to_config_root(tmp_path: Path) -> None:
    """An Audience file is found relative to the config root, and its header must have id."""
    audience = "apiVersion: flowspec/v1\nkind: Audience\nmetadata: {name: vip}\nspec: {file: contacts/vip.csv}\n"
    root = config(tmp_path, audiences__vip=audience)
    (root / "contacts").mkdir()
    (root / "contacts" / "vip.csv").write_text("id,phone\nc-1,+5511999990000\n")
    assert run(tmp_path)[0] == 0
    (root / "contacts" / "vip.csv").write_text("ident,phone\nc-1,+5511999990000\n")
    code, lines = run(tmp_path)
    assert code == 1
    assert lines[0].startswith("automations/audiences/vip.yaml:4:14: error[FS507]: audience file 'contacts/vip.csv' has no 'id' column")


# --------------------------------------------------------------------------- exit codes


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    """Warnings alone exit 0; --strict makes them fail with exit 1."""
    config(tmp_path, base__flow=FLOW.replace("variables: [discount]", "variables: [discount, spare]"), a=automation().replace('"10%"}', '"10%", spare: x}'))
    code, lines = run(tmp_path)
    assert code == 0
    assert lines[-1] == "ok: 3 files, 3 documents (1 warning)"
    assert "warning[FS406]" in lines[0]
    code, lines = run(tmp_path, "--strict")
    assert code == 1
    assert lines[-1] == "1 warning (--strict) in 3 files"


def test_info_never_fails_even_strict(tmp_path: Path) -> None:
    """An info note (inferred holiday country) prints but passes, with --strict too."""
    sched = '    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n    execution_timezone: America/Sao_Paulo\n    skip_holidays: true\n'
    config(tmp_path, a=automation(schedule=sched))
    for args in ((), ("--strict",)):
        code, lines = run(tmp_path, *args)
        assert code == 0, lines
        assert "info[FS307]" in lines[0]
        assert lines[-1] == "ok: 3 files, 3 documents (1 note)"


def test_bad_option_is_a_user_error(tmp_path: Path) -> None:
    """An unparsable --now or unknown --format exits 1 with a message, not a traceback."""
    r = invoke("validate", "--now", "yesterday", cwd=tmp_path)
    assert r.code == 1 and "--now" in r.output and "Traceback" not in r.output
    r = invoke("validate", "--format", "xml", cwd=tmp_path)
    assert r.code == 1 and "xml" in r.output


def test_misspelt_command_gets_did_you_mean(tmp_path: Path) -> None:
    """`flowspec valdate` is exit 1 suggesting `validate`."""
    r = invoke("valdate", cwd=tmp_path)
    assert r.code == 1
    assert "No such command 'valdate' (did you mean 'validate'?)." in r.err


def test_missing_path_is_a_diagnostic(tmp_path: Path) -> None:
    """A path that does not exist is FS010 and exit 1."""
    code, lines = run(tmp_path, "automation")
    assert code == 1
    assert lines[0].startswith("automation:1:1: error[FS010]: path 'automation' does not exist")


def test_internal_error_exits_3_and_says_where_to_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside validate exits 3 with a message naming the issue tracker, no traceback."""
    import flowspec.commands.validate as command

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(command, "validate_config", broken)
    config(tmp_path, a=automation())
    r = invoke("validate", *NOW, cwd=tmp_path)
    assert r.code == 3
    assert "internal error" in r.err and ISSUES_URL in r.err and "RuntimeError: boom" in r.err
    assert "Traceback" not in r.output


# --------------------------------------------------------------------------- formats


def _many_problems(tmp_path: Path, errors: int, warnings: int) -> None:
    files = {f"e{i:02d}": automation(f"e{i:02d}", spec="  flow: nope\n  whatsapp_number: main-br\n  audience: {contact_ids: [c-001]}\n") for i in range(errors)}
    sched = '    recurrence_type: daily\n    start_date: 2026-01-05\n    start_time: "09:00"\n    weekend_days: [SAT, SAT]\n'
    files.update({f"w{i:02d}": automation(f"w{i:02d}", schedule=sched) for i in range(warnings)})
    config(tmp_path, **files)


def test_json_format(tmp_path: Path) -> None:
    """--format json has the versioned envelope and one object per diagnostic."""
    _many_problems(tmp_path, 1, 1)
    r = invoke("validate", *NOW, "--format", "json", cwd=tmp_path)
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["format"] == "flowspec.validate/v1"
    assert doc["valid"] is False
    assert (doc["files"], doc["documents"]) == (4, 4)
    assert doc["counts"] == {"error": 1, "warning": 1, "info": 0}
    assert doc["diagnostics"][0] == {
        "code": "FS202",
        "severity": "error",
        "message": "flow: no Flow named 'nope' in organization 'default'; known: promo",
        "file": "automations/e00.yaml",
        "line": 5,
        "col": 9,
    }


def test_json_format_valid(tmp_path: Path) -> None:
    """A valid config in JSON is valid: true with no diagnostics."""
    config(tmp_path, a=automation())
    r = invoke("validate", *NOW, "--format", "json", cwd=tmp_path)
    assert r.code == 0
    assert json.loads(r.out)["valid"] is True
    assert json.loads(r.out)["diagnostics"] == []


def test_github_format_caps_ten_per_kind_and_summarises_the_rest(tmp_path: Path) -> None:
    """github output: ten error and ten warning annotations, then a count and the rest."""
    _many_problems(tmp_path, 12, 11)
    r = invoke("validate", *NOW, "--format", "github", cwd=tmp_path)
    assert r.code == 1
    lines = r.out.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert (len(errors), len(warnings)) == (10, 10)
    assert errors[0] == (
        "::error file=automations/e00.yaml,line=5,col=9,title=FS202::flow: no Flow named 'nope' "
        "in organization 'default'; known: promo"
    )
    assert "2 more errors and 1 more warning not annotated (GitHub shows 10 of each kind per step); all of them:" in lines
    rest = lines[lines.index("2 more errors and 1 more warning not annotated (GitHub shows 10 of each kind per step); all of them:") + 1 :]
    assert [line.split(":")[0] for line in rest[:-1]] == ["automations/e10.yaml", "automations/e11.yaml", "automations/w10.yaml"]
    assert rest[-1] == "12 errors, 11 warnings in 25 files"


def test_github_format_escapes_properties() -> None:
    """Commas and colons in a file name and newlines in a message are escaped for GitHub."""
    from flowspec.commands.validate import github_annotation
    from flowspec.diagnostics import Location, error

    line = github_annotation(error("FS001", "bad\nthing 100%", Location("a,b:c.yaml", 2, 3)))
    assert line == "::error file=a%2Cb%3Ac.yaml,line=2,col=3,title=FS001::bad%0Athing 100%25"
