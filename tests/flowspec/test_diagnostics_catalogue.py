"""docs/diagnostics.md: every code is catalogued, and every catalogued code has a fixture producing it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_support import ROOT, invoke
from pydantic import ValidationError

from flowspec.diagnostics import Location

CATALOGUE = ROOT / "docs" / "diagnostics.md"
FIXTURES = ROOT / "tests" / "fixtures" / "codes"
SOURCES = [ROOT / "flowspec", ROOT / "reconciler"]
NOW = "2026-01-01T00:00:00Z"


def catalogued() -> list[str]:
    return re.findall(r"^### (FS\d{3})\b", CATALOGUE.read_text(encoding="utf-8"), re.MULTILINE)


def emitted() -> set[str]:
    found: set[str] = set()
    for top in SOURCES:
        for path in top.rglob("*.py"):
            found.update(re.findall(r"[\"'](FS\d{3})[\"']", path.read_text(encoding="utf-8")))
    return found


def test_catalogue_lists_each_code_once_in_order() -> None:
    """Each code has exactly one entry, and entries are in code order within each section."""
    codes = catalogued()
    assert len(codes) == len(set(codes))
    assert codes, "no codes found in docs/diagnostics.md"
    text = CATALOGUE.read_text(encoding="utf-8")
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        in_section = re.findall(r"^### (FS\d{3})\b", section, re.MULTILINE)
        assert in_section == sorted(in_section), section.partition("\n")[0]


def test_every_emitted_code_is_catalogued() -> None:
    """Every FSnnn string in the source appears in the catalogue."""
    missing = sorted(emitted() - set(catalogued()))
    assert not missing, f"codes emitted but not in docs/diagnostics.md: {missing}"


def test_every_catalogue_entry_has_a_bad_example_and_a_fix() -> None:
    """Each error or warning entry says what is wrong (Bad) and how to fix it (Fix)."""
    text = CATALOGUE.read_text(encoding="utf-8")
    entries = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    for entry in entries:
        title, _, body = entry.partition("\n")
        if "(info)" in title:
            continue  # a note, not a mistake: nothing to fix
        body = body.split("\n## ")[0]
        assert "Bad" in body and "Fix" in body, f"{title}: needs a bad example and its fix"


def test_every_catalogued_code_has_a_fixture() -> None:
    """tests/fixtures/codes/<CODE>/ exists for each catalogued code."""
    missing = [code for code in catalogued() if not (FIXTURES / code).is_dir()]
    assert not missing, f"no fixture folder for {missing}"


def _fixture_output(code: str, tmp_path: Path) -> tuple[int, dict[str, object]]:
    folder = FIXTURES / code
    if (folder / "GENERATED").exists():
        # Too large to commit: a 50 MB file, written where validate will read it.
        target = tmp_path / code
        target.mkdir()
        with open(target / "huge.yaml", "wb") as handle:
            line = b"# padding padding padding padding padding padding padding padding padding\n"
            handle.write(line * (50 * 1024 * 1024 // len(line) + 1))
        r = invoke("validate", "--now", NOW, "--format", "json", str(target), cwd=tmp_path)
    else:
        r = invoke("validate", "--now", NOW, "--format", "json", folder.relative_to(ROOT).as_posix(), cwd=ROOT)
    assert "Traceback" not in r.output
    return r.code, json.loads(r.out)


@pytest.mark.parametrize("code", catalogued())
def test_fixture_produces_its_code_with_a_location(code: str, tmp_path: Path) -> None:
    """Validating the code's fixture gives that code at a line and column, and nothing unexpected."""
    folder = FIXTURES / code
    if (folder / "SYNTHETIC").exists():
        _synthetic_fallback(code)
        return
    exit_code, doc = _fixture_output(code, tmp_path)
    diagnostics = doc["diagnostics"]
    assert isinstance(diagnostics, list)
    hits = [d for d in diagnostics if d["code"] == code]
    assert hits, f"{code} not produced by its fixture: {diagnostics}"
    for d in hits:
        assert isinstance(d["line"], int) and d["line"] >= 1 and isinstance(d["col"], int) and d["col"] >= 1
    # Other errors would make the fixture prove less than it claims; warnings and notes from
    # other layers (e.g. "no occurrence in the next year") may accompany it.
    also_file = folder / "ALSO"
    also = set(also_file.read_text().split()) if also_file.exists() else set()
    other_errors = {d["code"] for d in diagnostics if d["severity"] == "error"} - {code} - also
    assert not other_errors, f"{code} fixture also produces errors {sorted(other_errors)}"
    assert exit_code == (1 if any(d["severity"] == "error" for d in diagnostics) else 0)


def _synthetic_fallback(code: str) -> None:
    """FS100 is the fallback for pydantic error types without a specific message."""
    from flowspec.schema_errors import diagnostics_from_validation_error

    exc = ValidationError.from_exception_data(
        "Automation", [{"type": "uuid_type", "loc": ("spec", "flow"), "input": 5}]
    )
    where = Location("a.yaml", 3, 9)
    [diagnostic] = diagnostics_from_validation_error(exc, {"spec": {"flow": 5}}, lambda _p: where)
    assert (diagnostic.code, diagnostic.location) == (code, where)
    assert diagnostic.message.startswith("spec.flow: ")


def test_fixture_folders_are_all_catalogued() -> None:
    """No fixture folder is left for a code the catalogue no longer lists."""
    stale = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name not in catalogued())
    assert not stale, f"fixtures for codes missing from the catalogue: {stale}"


