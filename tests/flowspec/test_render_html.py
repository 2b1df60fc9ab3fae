"""`--format html`: one self-contained report, checked as text and rendered in headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
from cli_support import missing_service
from test_render_common import daily_promo, rendered, sample_plan

from flowspec.plan import Plan
from flowspec.render.calendar import DayMark
from flowspec.render.html import document, month_grids_html

CHROMIUM = Path("/usr/bin/chromium")

# Injected before the page's own Content-Security-Policy so it may run; it records uncaught
# errors, console.error calls and CSP violations (any attempted fetch) into #console-errors.
COLLECTOR = """<script>
(function () {
  var errors = [];
  function show() {
    var node = document.getElementById("console-errors");
    if (!node && document.body) {
      node = document.createElement("pre"); node.id = "console-errors"; document.body.appendChild(node);
    }
    if (node) node.textContent = JSON.stringify(errors);
  }
  window.addEventListener("error", function (e) { errors.push("error: " + e.message); show(); }, true);
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("csp: " + e.violatedDirective + " " + e.blockedURI); show();
  });
  var original = console.error;
  console.error = function () {
    errors.push("console: " + Array.prototype.join.call(arguments, " ")); show();
    original.apply(console, arguments);
  };
  document.addEventListener("DOMContentLoaded", show);
})();
</script>
"""


def test_report_is_self_contained() -> None:
    """No script, stylesheet link, image or URL: nothing to fetch, and a CSP forbids fetching."""
    page = rendered("html")
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>\n")
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">" in page
    for forbidden in ("<script", "<link", "src=", "http://", "https://", "@import", "url("):
        assert forbidden not in page


def test_days_carry_kind_and_hover_reason() -> None:
    """Each day cell has its kind as class and the occurrences with reasons as hover text."""
    page = rendered("html")
    assert '<td data-date="2025-11-20" class="skipped" title="2025-11-20\n09:00 skipped: holiday (Dia Nacional' in page
    assert '<td data-date="2025-11-12" class="modified" title="2025-11-12\n09:00 modified, overrides max_per_second=5, template=promo|big">12</td>' in page
    assert '<td data-date="2025-11-24" class="rescheduled"' in page
    assert '<td data-date="2025-11-03" class="scheduled"' in page
    assert '<td data-date="2025-10-01" class="outside">1</td>' in page


def test_table_lists_every_occurrence() -> None:
    """The occurrence table has one row per occurrence, skipped ones included, keyed."""
    page = rendered("html")
    keys = re.findall(r'<tr class="[a-z]+" data-key="([^"]+)"', page)
    assert sorted(keys) == sorted(o.key for a in sample_plan().automations for o in a.occurrences)


def test_user_text_is_escaped() -> None:
    """File names and details cannot inject markup into the report."""
    evil = dataclasses.replace(daily_promo(), source='automations/<script>alert("x")</script>.yaml')
    plan = Plan(sample_plan().range_from, sample_plan().range_to, sample_plan().inputs, [evil])
    page = rendered("html", plan)
    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_grid_and_document_are_reusable() -> None:
    """month_grids_html and document build a page from any day marks (for the diff report)."""
    grid = month_grids_html(date(2026, 2, 1), date(2026, 2, 28), {date(2026, 2, 14): DayMark("skipped", ("why",))})
    assert '<caption>February 2026</caption>' in grid
    assert '<td data-date="2026-02-14" class="skipped" title="2026-02-14\nwhy">14</td>' in grid
    page = document("t", grid)
    assert page.count("<table") == 1 and "<style>" in page


# --------------------------------------------------------------------------- Chromium


def _chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr", "--v=0", *extra, page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )


def _dom_errors(dom: str) -> list[str]:
    found = re.search(r'<pre id="console-errors">(.*?)</pre>', dom, re.S)
    assert found, "the error collector did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        missing_service(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.mark.chromium
def test_report_renders_in_chromium_without_console_errors(chromium: Path, tmp_path: Path) -> None:
    """Headless Chromium shows the calendars and table and logs no error or blocked fetch."""
    page = tmp_path / "plan.html"
    page.write_text(rendered("html").replace("<head>\n", "<head>\n" + COLLECTOR, 1))
    result = _chromium(page, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert _dom_errors(dom) == []
    assert ":CONSOLE" not in result.stderr
    assert dom.count('<section class="automation"') == 3
    assert dom.count('<table class="month">') == 6
    assert re.search(r'<td data-date="2025-11-08" class="skipped" title="2025-11-08\s+09:00 skipped: weekend">8</td>', dom)
    assert "<h2>acme/dst-report</h2>" in dom and "2025-11-02T01:30+fold" in dom

    shot = tmp_path / "plan.png"
    result = _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,900")
    assert result.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.chromium
def test_console_error_check_catches_a_broken_page(chromium: Path, tmp_path: Path) -> None:
    """The check above can fail: a script error and an external image are both reported."""
    broken = rendered("html").replace("<head>\n", "<head>\n" + COLLECTOR, 1).replace(
        "</main>", '<img src="https://example.invalid/x.png"><script>missing()</script></main>'
    )
    page = tmp_path / "broken.html"
    page.write_text(broken)
    result = _chromium(page, tmp_path, "--dump-dom")
    errors = _dom_errors(result.stdout)
    assert any(e.startswith("csp: img-src https://example.invalid") for e in errors)
    assert ":CONSOLE" in result.stderr
