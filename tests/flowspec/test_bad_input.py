"""Bad input never produces a traceback: each case of SPEC 2's list is a located diagnostic and exit 1."""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import ROOT, CliResult, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowspec.loader import load_sources

NOW = ("--now", "2026-01-01T00:00:00Z")
LOCATED = re.compile(r"^bad\.yaml:(\d+):(\d+): error\[(FS\d{3})\]: ", re.MULTILINE)

GOOD_HEAD = "apiVersion: flowspec/v1\nkind: Channel\nmetadata: {name: main-br}\n"

CASES: dict[str, tuple[bytes, str, tuple[int, int]]] = {
    # name: (file content, expected code, expected line and column)
    "malformed YAML": (GOOD_HEAD.encode() + b"spec: {type: outbox\n", "FS001", (5, 1)),
    "tab indentation": (GOOD_HEAD.encode() + b"spec:\n\ttype: outbox\n", "FS001", (5, 1)),
    "binary file": (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", "FS007", (1, 8)),  # the first NUL byte
    "empty file": (b"", "FS008", (1, 1)),
    "alias bomb": (
        b"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + b"".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n".encode() for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "FS004",
        (6, 1),  # the first line whose expansion alone is over the limit
    ),
    "list document": (b"- apiVersion: flowspec/v1\n- kind: Channel\n", "FS009", (1, 1)),
    "scalar document": (b"just some text\n", "FS009", (1, 1)),
    "duplicate keys": (GOOD_HEAD.encode() + b"spec:\n  type: outbox\n  type: whatsapp_cloud\n", "FS005", (6, 3)),
    "python object tag": (
        GOOD_HEAD.encode() + b"spec: !!python/object/apply:os.system [\"echo pwned\"]\n",
        "FS006",
        (4, 7),
    ),
}


def validate_bytes(tmp: Path, content: bytes, *extra: str) -> CliResult:
    (tmp / "bad.yaml").write_bytes(content)
    return invoke("validate", *NOW, *extra, "bad.yaml", cwd=tmp)


def assert_no_crash(r: CliResult) -> None:
    assert "Traceback" not in r.output, r.output
    assert r.code in (0, 1), r.output


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_a_located_diagnostic_and_exit_1(case: str, tmp_path: Path) -> None:
    """Each kind of bad file from SPEC 2 is one located diagnostic with its code, exit 1."""
    content, code, (line, col) = CASES[case]
    r = validate_bytes(tmp_path, content)
    assert_no_crash(r)
    assert r.code == 1
    found = LOCATED.findall(r.out)
    assert (str(line), str(col), code) in found, r.out


def test_fifty_megabyte_file(tmp_path: Path) -> None:
    """A 50 MB file is refused before it is parsed: FS002 at 1:1, exit 1."""
    with open(tmp_path / "bad.yaml", "wb") as handle:
        handle.write(b"key: " + b"x" * (50 * 1024 * 1024) + b"\n")
    r = invoke("validate", *NOW, "bad.yaml", cwd=tmp_path)
    assert_no_crash(r)
    assert r.code == 1
    assert LOCATED.findall(r.out) == [("1", "1", "FS002")]


def test_python_object_tag_constructs_nothing(tmp_path: Path) -> None:
    """A !!python/object tag is reported, never executed."""
    marker = tmp_path / "pwned"
    content = GOOD_HEAD.encode() + f"spec: !!python/object/apply:os.system [\"touch {marker}\"]\n".encode()
    r = validate_bytes(tmp_path, content)
    assert r.code == 1
    assert not marker.exists()


def test_bad_files_do_not_hide_other_files(tmp_path: Path) -> None:
    """Every bad file is reported in one run next to the good ones."""
    for i, case in enumerate(sorted(CASES)):
        (tmp_path / f"f{i}.yaml").write_bytes(CASES[case][0])
    (tmp_path / "good.yaml").write_text(GOOD_HEAD + "spec: {type: outbox}\n")
    r = invoke("validate", *NOW, ".", cwd=tmp_path)
    assert_no_crash(r)
    assert r.code == 1
    codes = set(re.findall(r"error\[(FS\d{3})\]", r.out))
    assert {code for _content, code, _loc in CASES.values()} <= codes
    assert r.out.splitlines()[-1].endswith(f"in {len(CASES) + 1} files")


# --------------------------------------------------------------------------- property tests


def _run(files: dict[str, bytes]) -> CliResult:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return invoke("validate", *NOW, ".", cwd=root)


_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(content: bytes) -> None:
    """Arbitrary bytes in a .yaml file give diagnostics or pass, never a traceback or exit 3."""
    assert_no_crash(_run({"bad.yaml": content}))


_KEYS = st.sampled_from(
    ["apiVersion", "kind", "metadata", "spec", "name", "organization", "schedule", "flow", "nodes",
     "start", "type", "recurrence_type", "recurrence_config", "audience", "file", "x", "1"]
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["flowspec/v1", "Automation", "Flow", "Channel", "Audience", "Defaults", "daily",
                     "cron", "custom", "09:00", "2025-11-20", "UTC", "send_text", "end", "outbox"]),
)
_YAML_VALUES = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=25
)


@_FAST
@given(st.lists(_YAML_VALUES, min_size=1, max_size=3))
def test_random_yaml_structures_never_crash(documents: list[Any]) -> None:
    """Random YAML documents (any nesting of maps, lists and scalars) never crash validate."""
    text = yaml.safe_dump_all(documents, allow_unicode=True)
    assert_no_crash(_run({"doc.yaml": text.encode()}))


def _example_files() -> dict[str, bytes]:
    base = ROOT / "automations"
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


_EXAMPLES = _example_files()
_DOCS = [
    (d.file, d.data)
    for d in load_sources((name, raw) for name, raw in _EXAMPLES.items() if name.endswith(".yaml")).documents
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


_REPLACEMENTS = st.one_of(
    _YAML_VALUES,
    st.sampled_from(
        ["2025-02-30", "2025-13-01T25:99", "2025-11-20T09:00:00+99:00", "24:00", "0 0 30 2 *", "FRI-MON",
         "America/Sao_Paul", "XX", "-31", "1h", "0s", "next_allowed", "both", "last", "skip",
         "{{x}}", "{{contact.x}}", "}}", "EAAGm0PX4ZCpsBAKZBxyz0123", "contacts/nope.csv", "٢٠٢٥-١١-٢٠"]
    ),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_example_config_never_crashes(data: st.DataObject) -> None:
    """Random edits to the valid example config (all layers, the compiler included) never crash."""
    files = dict(_EXAMPLES)
    by_file: dict[str, list[Any]] = {}
    for name, doc in _DOCS:
        by_file.setdefault(name, []).append(copy.deepcopy(doc))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        name = data.draw(st.sampled_from(sorted(by_file)))
        docs = by_file[name]
        index = data.draw(st.integers(min_value=0, max_value=len(docs) - 1))
        path = data.draw(st.sampled_from(_paths(docs[index])))
        if not path:
            docs[index] = data.draw(_YAML_VALUES)
            continue
        parent: Any = docs[index]
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(_REPLACEMENTS)
        else:
            del parent[path[-1]]
        files[name] = yaml.safe_dump_all(docs, allow_unicode=True).encode()
    r = _run(files)
    assert_no_crash(r)


def test_property_corpus_uses_real_examples() -> None:
    """The mutation test starts from the real example config (so it reaches the compiler)."""
    assert len(_DOCS) >= 10
    assert any(name.endswith(".csv") for name in _EXAMPLES)
