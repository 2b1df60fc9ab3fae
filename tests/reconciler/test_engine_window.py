"""The execution window at send time: when a running campaign must pause and when it resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flowspec import models
from reconciler.engine.window import SendWindow

SP = "America/Sao_Paulo"  # UTC-3, no DST since 2019


def window(**schedule: Any) -> SendWindow:
    doc = {
        "apiVersion": "flowspec/v1", "kind": "Automation",
        "metadata": {"name": "promo", "organization": "acme"},
        "spec": {"flow": "f", "whatsapp_number": "wa", "audience": {"contact_ids": ["c"]},
                 "schedule": {"recurrence_type": "daily", "start_date": "2025-11-01",
                              "start_time": "09:00", "execution_timezone": SP, **schedule}},
    }
    return SendWindow(models.Automation.model_validate(doc), doc)


def sp(text: str) -> datetime:
    return (datetime.fromisoformat(text) + timedelta(hours=3)).replace(tzinfo=UTC)


def test_friday_evening_closes_until_monday_morning_when_weekends_are_skipped() -> None:
    """Window 09:00-18:00 with skip_weekends: open Friday 17:59, closed at 18:00, and the next
    allowed opening is Monday 09:00 local."""
    w = window(execution_window_start="09:00", execution_window_end="18:00", skip_weekends=True)
    assert w.opens_at(sp("2025-11-28T17:59:59")) is None
    assert w.opens_at(sp("2025-11-28T18:00:00")) == sp("2025-12-01T09:00:00")
    assert w.opens_at(sp("2025-11-29T11:00:00")) == sp("2025-12-01T09:00:00")
    assert w.opens_at(sp("2025-12-01T08:00:00")) == sp("2025-12-01T09:00:00")


def test_a_holiday_is_skipped_with_the_compilers_calendar() -> None:
    """Christmas in Brazil (a Thursday) is blocked: Wednesday 18:00 resumes Friday 09:00."""
    w = window(execution_window_start="09:00", execution_window_end="18:00", skip_holidays=True,
               holiday_country="BR")
    assert w.opens_at(sp("2025-12-24T18:30:00")) == sp("2025-12-26T09:00:00")


def test_a_blackout_range_ending_mid_day_resumes_right_when_it_ends() -> None:
    """A blackout from 12:00 to 14:00 (inclusive) pauses at 12:30 until just after 14:00."""
    w = window(blackout_dates=[{"start": "2026-01-06T12:00", "end": "2026-01-06T14:00"}])
    assert w.opens_at(sp("2026-01-06T11:59:00")) is None
    opens = w.opens_at(sp("2026-01-06T12:30:00"))
    assert opens is not None and sp("2026-01-06T14:00:00") <= opens < sp("2026-01-06T14:00:01")


def test_a_blackout_date_blocks_the_whole_day() -> None:
    """A blackout date alone blocks that local day: sending resumes at the next midnight."""
    w = window(blackout_dates=["2026-01-06"])
    assert w.opens_at(sp("2026-01-06T10:00:00")) == sp("2026-01-07T00:00:00")


def test_a_window_across_midnight() -> None:
    """22:00-06:00 is open at 23:00 and 05:59, closed at 07:00 until 22:00."""
    w = window(execution_window_start="22:00", execution_window_end="06:00")
    assert w.opens_at(sp("2026-01-06T23:00:00")) is None
    assert w.opens_at(sp("2026-01-07T05:59:00")) is None
    assert w.opens_at(sp("2026-01-07T07:00:00")) == sp("2026-01-07T22:00:00")


def test_no_window_and_no_day_rules_never_pause() -> None:
    """An unconstrained schedule never holds a campaign back."""
    w = window()
    assert not w.constrained and w.opens_at(sp("2026-01-10T03:00:00")) is None


def test_the_close_of_an_open_window_is_its_end_or_a_blocked_midnight() -> None:
    """Open Friday 17:00: it closes at 18:00; without a window but with weekends skipped,
    Friday closes at the midnight into Saturday; an unconstrained schedule never closes."""
    w = window(execution_window_start="09:00", execution_window_end="18:00", skip_weekends=True)
    assert w.closes_at(sp("2025-11-28T17:00:00")) == sp("2025-11-28T18:00:00")
    weekend = window(skip_weekends=True)
    assert weekend.closes_at(sp("2025-11-28T17:00:00")) == sp("2025-11-29T00:00:00")
    assert weekend.closes_at(sp("2025-11-26T17:00:00")) is None
    overnight = window(execution_window_start="22:00", execution_window_end="06:00")
    assert overnight.closes_at(sp("2026-01-06T23:00:00")) == sp("2026-01-07T06:00:00")
    assert overnight.closes_at(sp("2026-01-07T01:00:00")) == sp("2026-01-07T06:00:00")
