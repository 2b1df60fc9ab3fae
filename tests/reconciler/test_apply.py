"""`flowspec apply` (SPEC 5) on SQLite and PostgreSQL alike, through the real CLI and real rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from reconciler_helpers import (
    NOW,
    NOW_DT,
    apply_args,
    automations,
    by_key,
    execute,
    invoke,
    live,
    occurrences,
    read,
    revisions,
    write_config,
)

from reconciler import models

ConfigDir = Callable[..., Path]
DAY = timedelta(days=1)


def apply_ok(root: Path, url: str, *extra: str, **kw: str) -> str:
    result = invoke(*apply_args(root, url, *extra, **kw))
    assert result.code == 0, result.output
    return result.out


def day(n: int, hour: int = 9) -> datetime:
    """2026-01-05 + n days at `hour` UTC (the first occurrence of the default schedule is n=0)."""
    return NOW_DT + timedelta(days=n, hours=hour)


# --------------------------------------------------------------------------- first apply


def test_first_apply_inserts_pending_occurrences_in_the_horizon(db_url: str, config_dir: ConfigDir) -> None:
    """A first apply writes every planned occurrence in [now, now + horizon) as pending."""
    root = config_dir(daily=None)
    out = apply_ok(root, db_url)
    assert out.startswith("apply: +10 occurrences, ~0 updated, -0 cancelled; automations 1 created")
    rows = occurrences(db_url)
    assert [r["key"] for r in rows] == [f"acme/daily/2026-01-{d:02d}T09:00" for d in range(5, 15)]
    assert {r["status"] for r in rows} == {"pending"}
    assert rows[0]["at"] == day(0) and rows[-1]["at"] == day(9)
    assert rows[0]["local"] == "2026-01-05T09:00:00+00:00"
    [rev] = revisions(db_url)
    assert rev["status"] == "applied" and rev["inserted"] == 10
    # Not in a git work tree: the content hash alone identifies the revision.
    assert rev["git_commit"] is None and rev["git_dirty"] is False and "git " not in out
    assert rev["content_hash"].startswith("sha256:")
    assert {r["created_revision_id"] for r in rows} == {rev["id"]}
    [auto] = automations(db_url)
    assert auto["next_scheduled_at"] == day(0)
    assert auto["spec"]["spec"]["schedule"]["start_time"] == "09:00"
    assert auto["spec_hash"] and auto["timezone"] == "UTC"


def test_horizon_bounds_what_is_written(db_url: str, config_dir: ConfigDir) -> None:
    """Only occurrences with now <= at < now + horizon are written; a longer horizon adds the rest."""
    root = config_dir(daily=None)
    apply_ok(root, db_url, now="2026-01-05T10:00:00Z", horizon="3d")
    # 09:00 on the 5th is before now; the 8th at 09:00 is before now + 3d (the 8th at 10:00).
    assert sorted(live(db_url)) == [f"acme/daily/2026-01-{d:02d}T09:00" for d in (6, 7, 8)]
    out = apply_ok(root, db_url, now="2026-01-05T10:00:00Z", horizon="5d")
    assert out.startswith("apply: +2 occurrences, ~0 updated, -0 cancelled")
    assert len(live(db_url)) == 5


# --------------------------------------------------------------------------- idempotence


def test_second_apply_of_same_files_says_no_changes_and_rewrites_nothing(db_url: str, config_dir: ConfigDir) -> None:
    """Re-applying the same files reports no changes and leaves every row as it was."""
    root = config_dir(daily=None, weekly={"schedule": {"recurrence_type": "weekly"}})
    apply_ok(root, db_url)
    before_occ, before_auto, before_rev = occurrences(db_url), automations(db_url), revisions(db_url)
    out = apply_ok(root, db_url)
    assert out.startswith("apply: no changes (revision 1")
    assert occurrences(db_url) == before_occ  # updated_at included: not one row rewritten
    assert automations(db_url) == before_auto
    after_rev = revisions(db_url)
    assert len(after_rev) == 1
    # The only write: the live revision records that it was checked again.
    assert after_rev[0]["checked_at"] > before_rev[0]["checked_at"]


def test_reapply_later_only_adds_the_new_end_of_the_horizon(db_url: str, config_dir: ConfigDir) -> None:
    """Re-applying a day later adds the day that entered the horizon and touches nothing else."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    before = by_key(occurrences(db_url))
    out = apply_ok(root, db_url, now="2026-01-06T00:00:00Z")
    assert out.startswith("apply: +1 occurrences, ~0 updated, -0 cancelled")
    after = by_key(occurrences(db_url))
    assert set(after) - set(before) == {"acme/daily/2026-01-15T09:00"}
    assert all(after[k] == before[k] for k in before)


# --------------------------------------------------------------------------- updates and cancels


def test_changed_time_updates_pending_rows_in_place(db_url: str, config_dir: ConfigDir) -> None:
    """A new timezone moves every pending occurrence: same rows, same keys, new `at` and revision."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    before = by_key(occurrences(db_url))
    config_dir(daily={"schedule": {"execution_timezone": "America/Sao_Paulo"}})
    out = apply_ok(root, db_url)
    assert out.startswith("apply: +0 occurrences, ~10 updated, -0 cancelled; automations 1 changed")
    after = by_key(occurrences(db_url))
    assert set(after) == set(before)
    rev2 = revisions(db_url)[-1]["id"]
    for key, row in after.items():
        assert row["id"] == before[key]["id"]
        assert row["at"] == before[key]["at"] + timedelta(hours=3)
        assert row["local"].endswith("-03:00") and row["status"] == "pending"
        assert row["changed_revision_id"] == rev2 and row["created_revision_id"] == 1


def test_modify_exception_updates_overrides(db_url: str, config_dir: ConfigDir) -> None:
    """A `modify` exception changes that occurrence's overrides and nothing else."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    config_dir(daily={"exceptions": [{
        "exception_type": "modify", "start_date": "2026-01-07", "reason": "busy day",
        "modified_config": {"rate_limit_per_hour": 3000},
    }]})
    out = apply_ok(root, db_url)
    assert out.startswith("apply: +0 occurrences, ~1 updated, -0 cancelled")
    row = by_key(occurrences(db_url))["acme/daily/2026-01-07T09:00"]
    assert row["overrides"] == {"rate_limit_per_hour": 3000} and row["status"] == "pending"


def test_occurrence_gone_from_the_plan_is_cancelled_and_kept(db_url: str, config_dir: ConfigDir) -> None:
    """A skipped day cancels its pending row with the skip reason and the cancelling revision;
    an end_date cancels the rest as removed; rows are kept, never deleted."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    config_dir(daily={
        "schedule": {"end_date": "2026-01-10"},
        "exceptions": [{"exception_type": "skip", "start_date": "2026-01-06", "reason": "holiday"}],
    })
    out = apply_ok(root, db_url)
    assert out.startswith("apply: +0 occurrences, ~0 updated, -5 cancelled")
    rows = by_key(occurrences(db_url))
    assert len(rows) == 10
    rev2 = revisions(db_url)[-1]["id"]
    skipped = rows["acme/daily/2026-01-06T09:00"]
    assert (skipped["status"], skipped["reason"], skipped["cancelled_revision_id"]) == ("cancelled", "exception", rev2)
    for d in (11, 12, 13, 14):
        r = rows[f"acme/daily/2026-01-{d}T09:00"]
        assert (r["status"], r["reason"], r["cancelled_revision_id"]) == ("cancelled", "removed", rev2)
    assert sum(r["status"] == "pending" for r in rows.values()) == 5


def test_cancelled_occurrence_that_returns_is_pending_again(db_url: str, config_dir: ConfigDir) -> None:
    """Removing the exception that cancelled an occurrence brings the same row back as pending."""
    root = config_dir(daily={"exceptions": [{"exception_type": "skip", "start_date": "2026-01-06"}]})
    config_dir(daily=None)
    apply_ok(root, db_url)
    first = by_key(occurrences(db_url))["acme/daily/2026-01-06T09:00"]
    config_dir(daily={"exceptions": [{"exception_type": "skip", "start_date": "2026-01-06"}]})
    apply_ok(root, db_url)
    config_dir(daily=None)
    out = apply_ok(root, db_url)
    assert out.startswith("apply: +0 occurrences, ~1 updated, -0 cancelled")
    row = by_key(occurrences(db_url))["acme/daily/2026-01-06T09:00"]
    assert row["id"] == first["id"] and row["status"] == "pending"
    assert row["cancelled_revision_id"] is None and row["reason"] is None


def test_dispatched_and_finished_occurrences_are_never_altered(db_url: str, config_dir: ConfigDir) -> None:
    """Rows the dispatcher owns survive a change that would move, modify or cancel them."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    frozen = {
        "acme/daily/2026-01-05T09:00": "completed",
        "acme/daily/2026-01-06T09:00": "dispatched",
        "acme/daily/2026-01-07T09:00": "running",
        "acme/daily/2026-01-08T09:00": "missed",
    }
    for key, status in frozen.items():
        execute(db_url, "UPDATE occurrences SET status = :s WHERE key = :k", s=status, k=key)
    before = by_key(occurrences(db_url))
    # Moves every occurrence +3h, skips the 6th, modifies the 7th and ends on the 7th.
    config_dir(daily={
        "schedule": {"execution_timezone": "America/Sao_Paulo", "end_date": "2026-01-07"},
        "exceptions": [
            {"exception_type": "skip", "start_date": "2026-01-06"},
            {"exception_type": "modify", "start_date": "2026-01-07",
             "modified_config": {"rate_limit_per_hour": 5}},
        ],
    })
    apply_ok(root, db_url)
    after = by_key(occurrences(db_url))
    for key in frozen:
        assert after[key] == before[key]
    assert {r["status"] for k, r in after.items() if k not in frozen} == {"cancelled"}


def test_removed_automation_cancels_its_pending_and_keeps_history(db_url: str, config_dir: ConfigDir) -> None:
    """Deleting an automation's file cancels its pending occurrences (past ones too), keeps its
    finished ones and its row; adding it back revives the same rows."""
    root = config_dir(daily=None, other=None)
    apply_ok(root, db_url)
    execute(db_url, "UPDATE occurrences SET status = 'completed' WHERE key = 'acme/daily/2026-01-05T09:00'")
    config_dir(other=None)
    out = apply_ok(root, db_url, now="2026-01-06T12:00:00Z", horizon="9d")
    assert "-9 cancelled; automations 1 removed" in out
    rows = [r for r in occurrences(db_url) if r["key"].startswith("acme/daily/")]
    assert {r["status"] for r in rows} == {"completed", "cancelled"}
    assert {r["reason"] for r in rows if r["status"] == "cancelled"} == {"automation_removed"}
    # The 6th at 09:00 was already past and still pending: cancelled too, it must never run.
    assert by_key(rows)["acme/daily/2026-01-06T09:00"]["status"] == "cancelled"
    daily = {a["name"]: a for a in automations(db_url)}["daily"]
    assert daily["removed_at"] is not None and daily["removed_revision_id"] == revisions(db_url)[-1]["id"]
    assert all(r["status"] == "pending" for r in occurrences(db_url) if r["key"].startswith("acme/other/"))

    config_dir(daily=None, other=None)
    out = apply_ok(root, db_url, now="2026-01-06T12:00:00Z", horizon="9d")
    assert "~8 updated" in out and "automations 1 changed" in out
    daily = {a["name"]: a for a in automations(db_url)}["daily"]
    assert daily["removed_at"] is None
    back = by_key([r for r in occurrences(db_url) if r["key"].startswith("acme/daily/")])
    assert back["acme/daily/2026-01-07T09:00"]["status"] == "pending"
    assert back["acme/daily/2026-01-05T09:00"]["status"] == "completed"


def test_paused_automation_holds_its_occurrences_and_unpausing_releases_them(db_url: str, config_dir: ConfigDir) -> None:
    """is_paused turns pending rows into paused (same rows); unpausing makes them pending again."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    ids = {k: r["id"] for k, r in by_key(occurrences(db_url)).items()}
    config_dir(daily={"schedule": {"is_paused": True}})
    out = apply_ok(root, db_url)
    assert out.startswith("apply: +0 occurrences, ~10 updated, -0 cancelled")
    assert {s for _, s in live(db_url).values()} == {"paused"}
    assert automations(db_url)[0]["next_scheduled_at"] is None
    config_dir(daily=None)
    apply_ok(root, db_url)
    rows = by_key(occurrences(db_url))
    assert {r["status"] for r in rows.values()} == {"pending"}
    assert {k: r["id"] for k, r in rows.items()} == ids


def test_inactive_automation_is_held_as_inactive(db_url: str, config_dir: ConfigDir) -> None:
    """is_active: false keeps the occurrences as `inactive` rows the dispatcher ignores."""
    root = config_dir(daily={"schedule": {"is_active": False}})
    apply_ok(root, db_url)
    assert {s for _, s in live(db_url).values()} == {"inactive"}


def test_past_pending_occurrences_are_left_to_the_dispatcher(db_url: str, config_dir: ConfigDir) -> None:
    """A pending row whose time has passed is not cancelled for leaving the window."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    apply_ok(root, db_url, now="2026-01-07T12:00:00Z")
    rows = by_key(occurrences(db_url))
    for d in (5, 6, 7):
        assert rows[f"acme/daily/2026-01-{d:02d}T09:00"]["status"] == "pending"


def test_organizations_are_kept_apart(db_url: str, config_dir: ConfigDir) -> None:
    """Two organizations may use the same automation name; keys and rows stay per organization."""
    root = config_dir(daily=None, daily2={"organization": "globex"})
    # Same name in two organizations: write the second by hand.
    (root / "daily2.yaml").write_text((root / "daily2.yaml").read_text().replace('"daily2"', '"daily"'))
    apply_ok(root, db_url)
    rows = occurrences(db_url)
    assert {r["organization"] for r in rows} == {"acme", "globex"}
    assert all(r["key"].startswith(r["organization"] + "/daily/") for r in rows)
    autos = automations(db_url)
    assert [(a["organization"], a["name"]) for a in autos] == [("acme", "daily"), ("globex", "daily")]
    for r in rows:
        owner = next(a for a in autos if a["id"] == r["automation_id"])
        assert owner["organization"] == r["organization"]


# --------------------------------------------------------------------------- revisions


def test_revision_records_git_commit_and_content_hash(db_url: str, config_dir: ConfigDir, tmp_path: Path) -> None:
    """In a git work tree the revision carries HEAD and whether the files were committed."""
    root = config_dir(daily=None)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "config"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    out = apply_ok(root, db_url)
    assert f"git {head[:7]}" in out
    [rev] = revisions(db_url)
    assert rev["git_commit"] == head and rev["git_dirty"] is False
    assert rev["content_hash"].startswith("sha256:") and len(rev["content_hash"]) == 71
    assert rev["config_root"] == str(root.resolve())

    config_dir(daily={"schedule": {"start_time": "10:00"}})
    apply_ok(root, db_url)
    rev2 = revisions(db_url)[-1]
    assert rev2["git_commit"] == head and rev2["git_dirty"] is True
    assert rev2["content_hash"] != rev["content_hash"]

    # Committing the applied edit changes no row, but the live revision is now that commit.
    subprocess.run([*git, "commit", "-q", "-am", "edit"], check=True)
    out = apply_ok(root, db_url)
    assert out.startswith("apply: no changes (revision 3: git ") and out.rstrip().endswith("recorded)")
    rev3 = revisions(db_url)[-1]
    assert rev3["git_commit"] != head and rev3["git_dirty"] is False
    assert rev3["content_hash"] == rev2["content_hash"] and rev3["status"] == "applied"


def test_content_hash_ignores_where_the_files_are(db_url: str, config_dir: ConfigDir, tmp_path: Path) -> None:
    """The same files applied from another folder are the same content: no new revision."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    other = tmp_path / "elsewhere" / "config"
    other.parent.mkdir()
    os.rename(root, other)
    out = apply_ok(other, db_url)
    assert out.startswith("apply: no changes (revision 1")


def test_invalid_config_never_reaches_the_database(db_url: str, config_dir: ConfigDir) -> None:
    """Invalid files print diagnostics and exit 1; no revision is recorded."""
    root = config_dir(daily={"schedule": {"execution_timezone": "Mars/Olympus"}})
    result = invoke(*apply_args(root, db_url))
    assert result.code == 1
    assert "Mars/Olympus" in result.err and "nothing was applied" in result.err
    assert revisions(db_url) == [] and occurrences(db_url) == []


def _install_failing_trigger(url: str) -> None:
    """Make the database itself reject the next insert into occurrences."""
    if url.startswith("sqlite"):
        execute(url, "CREATE TRIGGER boom BEFORE INSERT ON occurrences "
                     "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    else:
        execute(url, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$")
        execute(url, "CREATE TRIGGER boom BEFORE INSERT ON occurrences "
                     "FOR EACH ROW EXECUTE FUNCTION boom()")


def test_failed_apply_changes_nothing_and_records_the_attempt(db_url: str, config_dir: ConfigDir) -> None:
    """A database failure mid-apply rolls everything back; the attempted revision is recorded as
    failed with the error while the applied one stays live."""
    root = config_dir(daily=None)
    apply_ok(root, db_url)
    before = occurrences(db_url), automations(db_url)
    _install_failing_trigger(db_url)
    # Moves every occurrence (updates, allowed) and adds a new automation (inserts, refused).
    config_dir(daily={"schedule": {"start_time": "09:00", "execution_timezone": "Europe/Lisbon"}}, extra=None)
    result = invoke(*apply_args(root, db_url))
    assert result.code == 1, result.output
    assert "apply failed and changed nothing (revision 2 recorded as failed)" in result.err
    assert "disk on fire" in result.err and "Traceback" not in result.output
    assert (occurrences(db_url), automations(db_url)) == before
    applied, failed = revisions(db_url)
    assert applied["status"] == "applied"
    assert failed["status"] == "failed" and "disk on fire" in (failed["error"] or "")
    status = json.loads(invoke("status", str(root), "--db", db_url, "--format", "json").out)
    assert status["applied_revision"]["id"] == applied["id"]
    assert status["attempted_revision"]["status"] == "failed"


# --------------------------------------------------------------------------- dry run


def test_dry_run_prints_the_changes_and_writes_nothing(db_url: str, config_dir: ConfigDir) -> None:
    """--dry-run shows `+ - ~` lines like `flowspec diff` and leaves the database untouched."""
    root = config_dir(daily=None, weekly={"schedule": {"recurrence_type": "weekly"}})
    apply_ok(root, db_url)
    before = occurrences(db_url), automations(db_url), revisions(db_url)
    config_dir(
        daily={"schedule": {"start_date": "2026-01-01T00:00:00Z", "start_time": "10:00",
                            "end_date": "2026-01-08"},
               "exceptions": [{"exception_type": "modify", "start_date": "2026-01-06",
                               "modified_config": {"rate_limit_per_hour": 7}}]},
        fresh=None,
    )
    result = invoke(*apply_args(root, db_url, "--dry-run"))
    assert result.code == 0, result.output
    out = result.out
    assert out.startswith("range 2026-01-05T00:00:00Z .. 2026-01-15T00:00:00Z")
    assert "+ acme/fresh (" in out
    assert "~ acme/daily (" in out and '~ spec.schedule.start_time: "09:00" → "10:00"' in out
    assert "- acme/weekly (" in out
    assert "apply --dry-run: would write +14 occurrences, ~0 updated, -11 cancelled; " \
           "automations 1 created, 1 changed, 1 removed; nothing was written" in out
    assert (occurrences(db_url), automations(db_url), revisions(db_url)) == before


def test_dry_run_exit_code(db_url: str, config_dir: ConfigDir) -> None:
    """--dry-run --exit-code: 2 while there are changes, 0 once applied."""
    root = config_dir(daily=None)
    assert invoke(*apply_args(root, db_url, "--dry-run", "--exit-code")).code == 2
    apply_ok(root, db_url)
    result = invoke(*apply_args(root, db_url, "--dry-run", "--exit-code"))
    assert result.code == 0 and "apply --dry-run: no changes" in result.out


def test_dry_run_on_a_missing_sqlite_file_does_not_create_it(sqlite_url: str, config_dir: ConfigDir) -> None:
    """A dry run against a database that does not exist yet diffs against empty, creates nothing."""
    root = config_dir(daily=None)
    result = invoke(*apply_args(root, sqlite_url, "--dry-run"))
    assert result.code == 0 and "+ acme/daily" in result.out
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_exit_code_without_dry_run_is_a_usage_error(sqlite_url: str, config_dir: ConfigDir) -> None:
    """--exit-code is a dry-run option; alone it is refused with a message."""
    result = invoke(*apply_args(config_dir(daily=None), sqlite_url, "--exit-code"))
    assert result.code == 1 and "--dry-run" in result.err


def test_json_output(db_url: str, config_dir: ConfigDir) -> None:
    """--format json reports the counts and the revision in flowspec.apply/v1."""
    root = config_dir(daily=None)
    doc = json.loads(invoke(*apply_args(root, db_url, "--format", "json")).out)
    assert doc["format"] == "flowspec.apply/v1" and doc["dry_run"] is False
    assert doc["changes"]["inserted"] == 10 and doc["revision"]["id"] == 1 and doc["revision"]["new"]
    doc = json.loads(invoke(*apply_args(root, db_url, "--format", "json", "--dry-run")).out)
    assert doc["no_changes"] is True and doc["automations"] == []


# --------------------------------------------------------------------------- concurrency


def _state_after(url: str) -> dict[str, tuple[datetime, str]]:
    keys = [r["key"] for r in occurrences(url)]
    assert len(keys) == len(set(keys)), "duplicate occurrence keys"
    return live(url)


def _expected_states(tmp_path: Path, roots: dict[str, Path]) -> dict[str, dict[str, tuple[datetime, str]]]:
    """What each config alone leaves behind, applied to a fresh SQLite file."""
    out = {}
    for label, root in roots.items():
        url = f"sqlite:///{tmp_path / f'expected-{label}.db'}"
        apply_ok(root, url)
        out[label] = live(url)
    return out


def _race_configs(tmp_path: Path) -> dict[str, Path]:
    base = {f"a{i:02d}": None for i in range(20)}
    a = write_config(tmp_path / "race-a", {**base, "only-a": None})
    b = write_config(
        tmp_path / "race-b",
        {**{k: {"schedule": {"start_time": "10:00"}} for k in base}, "only-b": None},
    )
    return {"a": a, "b": b}


def _winner(url: str) -> str:
    applied = [r for r in revisions(url) if r["status"] == "applied"]
    last = max(applied, key=lambda r: r["applied_seq"])
    return "a" if last["config_root"].endswith("race-a") else "b"


def test_racing_applies_in_threads_leave_one_consistent_state(db_url: str, tmp_path: Path) -> None:
    """Two applies of different files at once: the result is exactly one of them, no duplicates."""
    from flowspec.compiler import plan_inputs
    from flowspec.config import load_config
    from reconciler import apply as core
    from reconciler import db as dbmod
    from reconciler.commands.apply import desired_automations

    roots = _race_configs(tmp_path)
    expected = _expected_states(tmp_path, roots)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(root: Path) -> None:
        try:
            config = load_config([str(root)])
            database = dbmod.open_database(db_url)
            end = NOW_DT + timedelta(days=10)
            barrier.wait()
            core.run_apply(
                database, desired_automations(config, NOW_DT, end),
                ident=core.config_identity([root]), inputs=plan_inputs(), now=NOW_DT,
                horizon_end=end, written_at=datetime.now(UTC),
            )
            database.dispose()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in roots.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert _state_after(db_url) == expected[_winner(db_url)]
    assert [r["status"] for r in revisions(db_url)] == ["applied", "applied"]


def test_racing_applies_in_processes_leave_one_consistent_state(db_url: str, tmp_path: Path) -> None:
    """Two `flowspec apply` processes at once: one consistent state, no duplicate rows."""
    roots = _race_configs(tmp_path)
    expected = _expected_states(tmp_path, roots)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flowspec", *apply_args(root, db_url)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for root in roots.values()
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert _state_after(db_url) == expected[_winner(db_url)]


def test_apply_killed_mid_transaction_leaves_the_previous_state(db_url: str, config_dir: ConfigDir) -> None:
    """SIGKILL inside the apply transaction: every row is as before, the attempt stays recorded
    as attempted, and the next apply goes through (no lock left behind)."""
    root = config_dir(**{f"a{i}": None for i in range(5)})
    apply_ok(root, db_url)
    before = occurrences(db_url), automations(db_url)
    config_dir(**{f"a{i}": {"schedule": {"execution_timezone": "Asia/Tokyo"}} for i in range(5)}, more=None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowspec", *apply_args(root, db_url)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FLOWSPEC_TEST_APPLY_PAUSE": "120"},
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "paused inside the transaction" in line:
                break
        else:
            pytest.fail(f"apply never reached its pause: {proc.wait()}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (occurrences(db_url), automations(db_url)) == before
    assert [r["status"] for r in revisions(db_url)] == ["applied", "attempted"]
    out = apply_ok(root, db_url)
    assert "+10 occurrences, ~50 updated" in out
    assert [r["status"] for r in revisions(db_url)] == ["applied", "attempted", "applied"]


def test_claim_between_apply_read_and_write_wins(postgres_url: str, config_dir: ConfigDir) -> None:
    """PostgreSQL (readers do not wait for apply): a dispatcher claim committed after apply read
    a pending row and before it wrote it stays; apply moves only the rows still pending."""
    from flowspec.compiler import plan_inputs
    from flowspec.config import load_config
    from reconciler import apply as core
    from reconciler import db as dbmod
    from reconciler.commands.apply import desired_automations

    root = config_dir(daily=None)
    assert invoke("db", "upgrade", "--db", postgres_url).code == 0
    apply_ok(root, postgres_url)
    claimed = "acme/daily/2026-01-05T09:00"
    config_dir(daily={"schedule": {"execution_timezone": "Asia/Tokyo"}})

    def claim(changes: core.AutomationChanges) -> None:
        assert any(u.row["key"] == claimed for u in changes.updates)  # read as pending
        execute(postgres_url, "UPDATE occurrences SET status = 'dispatched' "
                              "WHERE key = :k AND status = 'pending'", k=claimed)

    database = dbmod.open_database(postgres_url)
    try:
        end = NOW_DT + timedelta(days=10)
        core.run_apply(
            database, desired_automations(load_config([str(root)])), ident=core.config_identity([root]),
            inputs=plan_inputs(), now=NOW_DT, horizon_end=end, written_at=datetime.now(UTC),
            on_changes=claim,
        )
    finally:
        database.dispose()
    rows = by_key(occurrences(postgres_url))
    assert (rows[claimed]["status"], rows[claimed]["at"]) == ("dispatched", day(0))
    assert rows[claimed]["changed_revision_id"] == 1
    moved = [r for k, r in rows.items() if k != claimed and r["status"] == "pending"]
    assert len(moved) == 9 and all(r["local"].endswith("+09:00") for r in moved)


def _rows_for(url: str, key_prefix: str) -> list[dict[str, Any]]:
    return read(url, "SELECT key, status FROM occurrences WHERE key LIKE :p ORDER BY key", p=key_prefix + "%")


def test_status_reported_for_now_passed_on_the_command_line(db_url: str, config_dir: ConfigDir) -> None:
    """--now plans from the given instant while rows carry their real write time."""
    root = config_dir(daily=None)
    before = datetime.now(UTC)
    apply_ok(root, db_url, now=NOW)
    row = occurrences(db_url)[0]
    assert row["created_at"] >= before - timedelta(seconds=1)
    assert _rows_for(db_url, "acme/daily/2026-01-05")[0]["status"] == "pending"


# --------------------------------------------------------------------------- model-based


def test_apply_converges_to_the_plan_and_spares_dispatched_rows() -> None:
    """For any sequence of plans (times, statuses, skips, removals) and rows the dispatcher takes
    in between, each apply leaves exactly the plan in the window, never alters a dispatched row,
    and a repeat apply finds nothing to do."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from flowspec.plan import AutomationPlan, Inputs, Occurrence
    from reconciler import apply as core
    from reconciler import db as dbmod

    slots = [f"2026-01-{d:02d}T09:00" for d in range(5, 11)]
    names = ("a", "b")
    occurrence = st.tuples(st.sampled_from(["scheduled", "paused", "skipped"]), st.integers(-2, 30))
    plan_state = st.dictionaries(st.sampled_from(names),
                                 st.dictionaries(st.sampled_from(slots), occurrence, max_size=6),
                                 max_size=2)
    step = st.tuples(plan_state, st.lists(st.sampled_from(slots), max_size=2))
    end = NOW_DT + timedelta(days=6)

    def desired(state: dict[str, dict[str, tuple[str, int]]], rev: int) -> list[core.DesiredAutomation]:
        out = []
        for name in sorted(state):
            occ = []
            for slot, (status, shift) in sorted(state[name].items()):
                local = datetime.fromisoformat(slot).replace(tzinfo=UTC) + timedelta(hours=shift)
                occ.append(Occurrence(key=f"acme/{name}/{slot}", status=status,  # type: ignore[arg-type]
                                      at=local, local=local,
                                      reason="exception" if status == "skipped" else None))
            occ.sort(key=lambda o: (o.at, o.key))
            plan = AutomationPlan("acme", name, f"{name}.yaml", "UTC", occ, spec_hash=f"h{rev}-{name}")
            out.append(core.DesiredAutomation.of_plan(plan))
        return out

    # Migrated once; each example starts from a copy (SQLite's backup API), which is 50x cheaper
    # than running the migrations again and gives the same schema.
    template = dbmod.create_engine("sqlite://", memory=True)
    dbmod.upgrade(template)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(step, min_size=1, max_size=4))
    def run(steps: list[tuple[dict[str, dict[str, tuple[str, int]]], list[str]]]) -> None:
        engine = dbmod.create_engine("sqlite://", memory=True)
        database = dbmod.Database(engine, dbmod.normalize_url("sqlite://"))
        with template.connect() as src, engine.connect() as dst:
            src.connection.driver_connection.backup(dst.connection.driver_connection)  # type: ignore[union-attr]
        frozen: dict[str, dict[str, Any]] = {}
        try:
            for rev, (state, to_freeze) in enumerate(steps):
                kwargs: dict[str, Any] = dict(ident=core.ConfigIdentity(f"sha256:{rev}"),
                                              inputs=Inputs("t", "h"), now=NOW_DT, horizon_end=end)
                core.run_apply(database, desired(state, rev), written_at=datetime.now(UTC), **kwargs)
                with engine.connect() as conn:
                    rows = {r.key: dict(r._mapping) for r in conn.execute(sa.select(models.occurrences))}
                for key, row in frozen.items():
                    assert rows[key] == row
                want = {
                    f"acme/{name}/{slot}": (datetime.fromisoformat(slot).replace(tzinfo=UTC) + timedelta(hours=shift),
                                            "pending" if status == "scheduled" else "paused")
                    for name, occ in state.items() for slot, (status, shift) in occ.items()
                    if status != "skipped"
                }
                want = {k: v for k, v in want.items() if NOW_DT <= v[0] < end and k not in frozen}
                got = {k: (r["at"], r["status"]) for k, r in rows.items()
                       if r["status"] in ("pending", "paused") and NOW_DT <= r["at"] < end}
                assert got == want
                again = core.run_apply(database, desired(state, rev), written_at=datetime.now(UTC), **kwargs)
                assert not again.counts.any
                with engine.begin() as conn:
                    for slot in to_freeze:
                        for name in names:
                            key = f"acme/{name}/{slot}"
                            if key in rows and key not in frozen:
                                conn.execute(sa.update(models.occurrences).where(models.occurrences.c.key == key)
                                             .values(status="dispatched"))
                    for r in conn.execute(sa.select(models.occurrences).where(
                            models.occurrences.c.status == "dispatched")):
                        frozen[r.key] = dict(r._mapping)
        finally:
            engine.dispose()

    try:
        run()
    finally:
        template.dispose()


def test_moving_horizon_matches_a_fresh_apply(db_url: str, tmp_path: Path, examples: Path) -> None:
    """Re-applying later (only the new end of the horizon is compiled) leaves the same live
    occurrences as one apply at the later time, on the example repository (windows, blackouts,
    holidays, reschedules, modifies)."""
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    apply_ok(examples, db_url, now="2026-11-20T00:00:00Z", horizon="20d")
    apply_ok(examples, db_url, now="2026-12-04T00:00:00Z", horizon="40d")
    apply_ok(examples, fresh, now="2026-12-04T00:00:00Z", horizon="40d")
    later = datetime(2026, 12, 4, tzinfo=UTC)
    moved = {k: v for k, v in live(db_url).items() if v[0] >= later}
    assert moved == live(fresh)
    assert len(moved) > 50
