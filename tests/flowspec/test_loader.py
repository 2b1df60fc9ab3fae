"""flowspec.loader: YAML 1.2 core schema, locations, safety limits, bad input as diagnostics."""

from __future__ import annotations

import math
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowspec.diagnostics import Diagnostic, Location, Severity
from flowspec.loader import Document, Limits, LoadResult, load_paths, load_sources

BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"


def load(text: str | bytes, *, name: str = "t.yaml", limits: Limits | None = None) -> LoadResult:
    raw = text.encode() if isinstance(text, str) else text
    return load_sources([(name, raw)], limits=limits or Limits())


def value(text: str) -> Any:
    result = load(f"v: {text}\n")
    assert result.diagnostics == []
    return result.documents[0].data["v"]


def only(result: LoadResult) -> Diagnostic:
    assert len(result.diagnostics) == 1, [d.render() for d in result.diagnostics]
    return result.diagnostics[0]


def where(diagnostic: Diagnostic) -> tuple[str, int, int]:
    assert diagnostic.location is not None
    loc = diagnostic.location
    return loc.file, loc.line, loc.col


# --------------------------------------------------------------------------- core schema


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00", "09:00"),
        ("12:30", "12:30"),
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("2025-11-20", "2025-11-20"),
        ("2025-11-24T14:00:00", "2025-11-24T14:00:00"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("010", 10),
        ("42", 42),
        ("-7", -7),
        ("+12", 12),
        ("0x1A", 26),
        ("0o17", 15),
        ("1.5", 1.5),
        ("-.5e3", -500.0),
        ("1.", 1.0),
        ("1e3", 1000.0),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("+.INF", math.inf),
        ("~", None),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("", None),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("tRUE", "tRUE"),
        ('"true"', "true"),
        ("'42'", "42"),
        ('"09:00"', "09:00"),
        ('"~"', "~"),
        ("1.2.3", "1.2.3"),
        ("30s", "30s"),
        ("-x", "-x"),
        ("+", "+"),
        ("!!str 42", "42"),
        ("!!int '42'", 42),
        ("!!float 1", 1.0),
        ("!!bool 'false'", False),
        ("!!null ''", None),
        ("! 'x'", "x"),
    ],
)
def test_plain_scalars_follow_yaml_1_2_core_schema(text: str, expected: Any) -> None:
    """Scalars resolve by the YAML 1.2 core schema: times, dates, yes/no/on stay strings."""
    got = value(text)
    assert got == expected and type(got) is type(expected)


def test_nan_is_a_float() -> None:
    """.nan and its spellings read as a float NaN."""
    for spelling in (".nan", ".NaN", ".NAN"):
        assert math.isnan(value(spelling))


def test_block_scalars_and_flow_collections_read_as_plain_data() -> None:
    """Block scalars, flow and block collections become str, list and dict."""
    result = load("a: |\n  line 1\n  line 2\nb: [1, x, {c: d}]\nc:\n  - e\n")
    assert result.diagnostics == []
    assert result.documents[0].data == {
        "a": "line 1\nline 2\n",
        "b": [1, "x", {"c": "d"}],
        "c": ["e"],
    }


def test_unquoted_on_and_yes_keys_are_strings() -> None:
    """Under the core schema the keys on/yes/no are the strings they look like."""
    data = load("on: push\nyes: 1\nno: 2\n").documents[0].data
    assert data == {"on": "push", "yes": 1, "no": 2}


# --------------------------------------------------------------------------- bad-input corpus

CORPUS = {
    "alias-bomb.yaml": ("FS004", 11, 3),
    "binary-file.yaml": ("FS007", 3, 1),
    "comments-only.yaml": ("FS008", 1, 1),
    "duplicate-keys.yaml": ("FS005", 14, 5),
    "empty-file.yaml": ("FS008", 1, 1),
    "invalid-utf8.yaml": ("FS007", 5, 21),
    "malformed.yaml": ("FS001", 7, 40),
    "non-string-key.yaml": ("FS011", 7, 5),
    "python-object-tag.yaml": ("FS006", 6, 9),
    "recursive-alias.yaml": ("FS004", 5, 7),
    "tab-indentation.yaml": ("FS001", 4, 1),
    "too-deep.yaml": ("FS003", 6, 73),
    "top-level-list.yaml": ("FS009", 1, 1),
    "top-level-scalar.yaml": ("FS009", 1, 1),
}


def test_corpus_table_lists_every_fixture() -> None:
    """Every file in tests/fixtures/bad has an expected diagnostic in this table."""
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_fixture_gives_one_located_error(name: str) -> None:
    """Each bad-input fixture yields exactly its error code at the exact line and column."""
    path = BAD / name
    diagnostic = only(load_paths([path]))
    code, line, col = CORPUS[name]
    assert diagnostic.code == code
    assert diagnostic.severity is Severity.ERROR
    assert diagnostic.location is not None
    assert (diagnostic.location.line, diagnostic.location.col) == (line, col)
    assert diagnostic.location.file.endswith(f"fixtures/bad/{name}")


def test_duplicate_key_message_names_key_and_first_line() -> None:
    """A duplicate key is reported at the second key, naming the key and the first line."""
    diagnostic = only(load_paths([BAD / "duplicate-keys.yaml"]))
    assert "duplicate key 'start_time' (first defined at line 12)" in diagnostic.message


def test_duplicate_key_keeps_first_value_and_flags_document() -> None:
    """The document with a duplicate key is still returned, first value kept, has_errors set."""
    result = load("a: 1\nb: 2\na: 3\n")
    assert where(only(result)) == ("t.yaml", 3, 1)
    (doc,) = result.documents
    assert doc.data == {"a": 1, "b": 2} and doc.has_errors


def test_tab_indentation_message_says_tabs_are_not_allowed() -> None:
    """A tab used for indentation gets a message naming tabs, not a generic token error."""
    diagnostic = only(load_paths([BAD / "tab-indentation.yaml"]))
    assert "tabs are not allowed for indentation" in diagnostic.message


def test_python_object_tag_is_never_constructed() -> None:
    """A !!python/object tag is FS006 at the node and its value becomes None, nothing runs."""
    result = load_paths([BAD / "python-object-tag.yaml"])
    assert "!!python/object/apply:os.system" in only(result).message
    assert result.documents[0].data["spec"] == {"flow": None}


@pytest.mark.parametrize(
    "text",
    [
        "v: !!python/name:os.system ''",
        "v: !!binary aGk=",
        "v: !!timestamp 2025-01-01",
        "v: !!set {a, b}",
        "v: !!omap [a: 1]",
        "v: !foo bar",
        "v: !<tag:example.com,2000:x> 1",
        "v: !!map [1]",
        "v: !!seq x",
        "v: !!int abc",
        "v: !!bool yes",
        "v: !!null x",
    ],
)
def test_tags_outside_the_core_schema_are_rejected(text: str) -> None:
    """Non-core tags, and core tags that do not fit the node, are FS006 at the tagged node."""
    diagnostic = only(load(text + "\n"))
    assert diagnostic.code == "FS006"
    assert where(diagnostic) == ("t.yaml", 1, 4)


def test_tagged_document_root_is_rejected() -> None:
    """A document whose root carries a disallowed tag is reported and not returned."""
    result = load("!!python/object:os.system {a: 1}\n")
    assert only(result).code == "FS006"
    assert result.documents == []


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("1: a\n", 1, 1),
        ("ok: 1\ntrue: b\n", 2, 1),
        ("~: x\n", 1, 1),
        ("1.5: x\n", 1, 1),
        ("? [a, b]\n: x\n", 1, 3),
        ("? {a: b}\n: x\n", 1, 3),
        ("!!int 3: x\n", 1, 1),
    ],
)
def test_non_string_keys_are_reported(text: str, line: int, col: int) -> None:
    """A key that is a number, boolean, null or collection is FS011 at the key."""
    diagnostic = only(load(text))
    assert diagnostic.code == "FS011"
    assert where(diagnostic) == ("t.yaml", line, col)


def test_quoted_and_str_tagged_keys_are_fine() -> None:
    """A quoted "1" or !!str 1 key is a string key."""
    result = load('"1": a\n!!str 2: b\n')
    assert result.diagnostics == []
    assert result.documents[0].data == {"1": "a", "2": "b"}


# --------------------------------------------------------------------------- encodings


def test_utf8_bom_is_accepted_and_positions_ignore_it() -> None:
    """A UTF-8 BOM is fine and does not shift columns."""
    result = load(b"\xef\xbb\xbfa: 1\nb: [x\n")
    assert only(result).code == "FS001"
    ok = load(b"\xef\xbb\xbfa: 1\n")
    assert ok.diagnostics == [] and ok.documents[0].data == {"a": 1}
    assert ok.documents[0].locate(["a"]) == Location("t.yaml", 1, 4)


def test_utf16_file_is_not_utf8() -> None:
    """A UTF-16 file is FS007 with a hint to save as UTF-8."""
    diagnostic = only(load("a: 1\n".encode("utf-16")))
    assert diagnostic.code == "FS007" and "UTF-8" in diagnostic.message


def test_control_character_is_reported_where_it_is() -> None:
    """A control character YAML forbids is FS007 at its line and column."""
    diagnostic = only(load(b"a: 1\nb: x\x01y\n"))
    assert diagnostic.code == "FS007"
    assert where(diagnostic) == ("t.yaml", 2, 5)


def test_invalid_utf8_column_counts_characters() -> None:
    """The column of a bad byte counts characters, not bytes, before it."""
    diagnostic = only(load("a: é".encode() + b"\xff\n"))
    assert diagnostic.code == "FS007"
    assert where(diagnostic) == ("t.yaml", 1, 5)


# --------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("a: b: c\n", 1, 5),
        ("a: 1\nb: [1, 2\n", 3, 1),
        ("a:\n  - b\n c: d\n", 3, 2),
        ('a: "open\n', 2, 1),
        ("a: 1\n  b: 2\n", 2, 4),
    ],
)
def test_syntax_errors_have_exact_positions(text: str, line: int, col: int) -> None:
    """Malformed YAML is FS001 at libyaml's problem position, 1-based."""
    diagnostic = only(load(text))
    assert diagnostic.code == "FS001"
    assert where(diagnostic) == ("t.yaml", line, col)


def test_undefined_alias_names_the_alias() -> None:
    """An alias with no anchor is FS001 naming the alias."""
    diagnostic = only(load("a: 1\nb: *nope\n"))
    assert diagnostic.code == "FS001"
    assert "*nope" in diagnostic.message
    assert where(diagnostic) == ("t.yaml", 2, 4)


def test_duplicate_anchor_is_reported_with_first_line() -> None:
    """An anchor defined twice is FS001 naming the first definition's line."""
    diagnostic = only(load("a: &x 1\nb: &x 2\n"))
    assert diagnostic.code == "FS001" and "line 1" in diagnostic.message
    assert where(diagnostic) == ("t.yaml", 2, 4)


# --------------------------------------------------------------------------- documents


def test_multi_document_file_keeps_positions() -> None:
    """Documents keep their position in the file; empty ones are skipped but still counted."""
    result = load("a: 1\n---\n---\n# only a comment\n---\nb: 2\n---\n")
    assert result.diagnostics == []
    assert [(d.index, d.data) for d in result.documents] == [(0, {"a": 1}), (3, {"b": 2})]
    assert result.documents[1].locate(["b"]) == Location("t.yaml", 6, 4)


def test_file_of_empty_documents_is_empty() -> None:
    """A file holding only '---' separators is FS008."""
    diagnostic = only(load("---\n---\n"))
    assert diagnostic.code == "FS008"
    assert where(diagnostic) == ("t.yaml", 1, 1)


def test_empty_file_message() -> None:
    """An empty file says so."""
    assert "empty file: no YAML document" in only(load(b"")).message


def test_syntax_error_in_later_document_keeps_earlier_ones() -> None:
    """A syntax error in document 2 keeps document 1 and reports the error's line."""
    result = load("a: 1\n---\nb: [\n")
    assert [d.data for d in result.documents] == [{"a": 1}]
    assert only(result).code == "FS001"
    assert result.diagnostics[0].location is not None
    assert result.diagnostics[0].location.line == 4


def test_non_mapping_documents_are_reported_and_dropped() -> None:
    """A list or scalar document is FS009 at its start; mapping documents around it load."""
    result = load("a: 1\n---\n- x\n---\nplain\n---\nnull\n")
    assert [d.data for d in result.documents] == [{"a": 1}]
    assert [(d.code, where(d)[1]) for d in result.diagnostics] == [
        ("FS009", 3),
        ("FS009", 5),
        ("FS009", 7),
    ]
    assert "apiVersion" in result.diagnostics[0].message


# --------------------------------------------------------------------------- merge keys


def test_merge_keys_merge_and_own_keys_win() -> None:
    """'<<' merges a mapping; keys written in the mapping win, earlier merges win over later."""
    text = (
        "base: &base {tz: UTC, window: '09:00', retry: 3}\n"
        "other: &other {tz: Europe/Paris, extra: 1}\n"
        "a:\n"
        "  <<: [*base, *other]\n"
        "  retry: 5\n"
    )
    result = load(text)
    assert result.diagnostics == []
    assert result.documents[0].data["a"] == {"retry": 5, "tz": "UTC", "window": "09:00", "extra": 1}


def test_merged_value_is_located_where_it_is_written() -> None:
    """locate() follows '<<' to the anchored mapping that holds the value."""
    doc = load("base: &b\n  tz: UTC\na:\n  <<: *b\n  own: 1\n").documents[0]
    assert doc.locate(["a", "tz"]) == Location("t.yaml", 2, 7)
    assert doc.locate_key(["a", "tz"]) == Location("t.yaml", 2, 3)
    assert doc.locate(["a", "own"]) == Location("t.yaml", 5, 8)


def test_merge_of_a_scalar_is_an_error() -> None:
    """'<<' pointing at a scalar is FS001 at that value."""
    diagnostic = only(load("a:\n  <<: 1\n"))
    assert diagnostic.code == "FS001" and "'<<'" in diagnostic.message
    assert where(diagnostic) == ("t.yaml", 2, 7)


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    """A quoted "<<" is just a key."""
    assert load('"<<": 1\n').documents[0].data == {"<<": 1}


# --------------------------------------------------------------------------- locate

DOC = """\
apiVersion: flowspec/v1
kind: Automation
metadata:
  name: promo
spec:
  schedule:
    start_time: "09:00"
    blackout_dates: [2025-12-25, {start: 2025-12-31, end: 2026-01-02}]
  exceptions:
    - name: bf
      start_date: 2025-11-28
"""


@pytest.mark.parametrize(
    ("path", "value_at", "key_at"),
    [
        ((), (1, 1), (1, 1)),
        (("kind",), (2, 7), (2, 1)),
        (("spec", "schedule", "start_time"), (7, 17), (7, 5)),
        (("spec", "schedule", "blackout_dates", 0), (8, 22), (8, 22)),
        (("spec", "schedule", "blackout_dates", 1, "end"), (8, 59), (8, 54)),
        (("spec", "schedule", "blackout_dates", -1), (8, 34), (8, 34)),
        (("spec", "exceptions", 0, "start_date"), (11, 19), (11, 7)),
        # Missing paths fall back to the deepest part that exists.
        (("spec", "schedule", "missing"), (7, 5), (6, 3)),
        (("spec", "exceptions", 5, "name"), (10, 5), (9, 3)),
        (("kind", "deeper"), (2, 7), (2, 1)),
        (("spec", 0), (6, 3), (5, 1)),
        (("spec", "exceptions", True), (10, 5), (9, 3)),
    ],
)
def test_locate_and_locate_key(
    path: tuple[str | int, ...], value_at: tuple[int, int], key_at: tuple[int, int]
) -> None:
    """locate gives the value node, locate_key the key node, 1-based; missing paths fall back."""
    (doc,) = load(DOC, name="automations/promo.yaml").documents
    assert doc.locate(path) == Location("automations/promo.yaml", *value_at)
    assert doc.locate_key(path) == Location("automations/promo.yaml", *key_at)


def test_locate_in_later_document_of_a_file() -> None:
    """Locations in the third document of a file are that document's lines."""
    docs = load("a: 1\n---\nb: 2\n---\nc:\n  d: 3\n").documents
    assert docs[2].locate(["c", "d"]) == Location("t.yaml", 6, 6)
    assert docs[0].locate(["a"]) == Location("t.yaml", 1, 4)


def test_locate_on_hand_made_document_is_the_file_start() -> None:
    """A Document built by hand (no source text) locates everything at 1:1."""
    doc = Document("x.yaml", 0, {"a": 1})
    assert doc.locate(["a"]) == Location("x.yaml", 1, 1)
    assert doc.locate_key(["a"]) == Location("x.yaml", 1, 1)


# --------------------------------------------------------------------------- limits


def test_fifty_megabyte_file_is_rejected_before_reading(tmp_path: Path) -> None:
    """A 50 MB file is FS002 from its size alone: it is never read into memory."""
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: costs no disk and no write time
    tracemalloc.start()
    try:
        result = load_paths([big])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # reading the file would allocate 50 MB
    diagnostic = only(result)
    assert diagnostic.code == "FS002" and diagnostic.location is not None
    assert (diagnostic.location.line, diagnostic.location.col) == (1, 1)
    assert "52428800 bytes" in diagnostic.message


def test_large_source_is_rejected_by_length() -> None:
    """load_sources rejects bytes over max_file_bytes without parsing them."""
    diagnostic = only(load(b"a: 1\n" * 10, limits=Limits(max_file_bytes=20)))
    assert diagnostic.code == "FS002"


def test_alias_bomb_is_rejected_quickly() -> None:
    """The billion-laughs fixture is FS004 before it eats memory (speed: benchmarks/)."""
    tracemalloc.start()
    try:
        result = load_paths([BAD / "alias-bomb.yaml"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert only(result).code == "FS004"
    assert "alias" in result.diagnostics[0].message
    assert result.documents == []
    assert peak < 64 * 1024 * 1024  # the expansion would be ~10^9 nodes


def test_node_budget_counts_every_alias_use() -> None:
    """Each use of an alias is counted again against max_nodes, for the whole file."""
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"  # root 1 + keys 2 + a 4 + b (1 + 3 * 4) = 20
    assert load(text, limits=Limits(max_nodes=20)).diagnostics == []
    assert only(load(text, limits=Limits(max_nodes=19))).code == "FS004"
    two_docs = text + "---\n" + text
    assert load(two_docs, limits=Limits(max_nodes=40)).diagnostics == []
    assert only(load(two_docs, limits=Limits(max_nodes=39))).code == "FS004"


def test_depth_limit_is_exact() -> None:
    """max_depth nested collections load; one more is FS003 at the innermost collection."""
    ok = "a: " + "[" * 63 + "]" * 63 + "\n"  # root mapping + 63 lists = 64 levels
    assert load(ok).diagnostics == []
    too_deep = "a: " + "[" * 64 + "]" * 64 + "\n"
    diagnostic = only(load(too_deep))
    assert diagnostic.code == "FS003"
    assert where(diagnostic) == ("t.yaml", 1, 67)


def test_deep_nesting_beyond_libyaml_limit_is_a_diagnostic() -> None:
    """Thousands of nested brackets are a diagnostic, not a crash."""
    diagnostic = only(load("a: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert diagnostic.code in {"FS001", "FS003"}


def test_recursive_alias_is_named() -> None:
    """An alias inside its own anchor is reported as a recursive alias."""
    diagnostic = only(load("a: &a\n  b: *a\n"))
    assert diagnostic.code == "FS004" and "recursive alias" in diagnostic.message


def test_too_many_documents() -> None:
    """More documents than max_documents_per_file is FS004 at the first one over."""
    text = "---\na: 1\n" * 4
    result = load(text, limits=Limits(max_documents_per_file=3))
    assert len(result.documents) == 3
    assert only(result).code == "FS004"
    assert where(result.diagnostics[0]) == ("t.yaml", 8, 1)


# --------------------------------------------------------------------------- paths


def write(path: Path, text: str = "a: 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folders_are_walked_in_sorted_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folders are walked recursively, sorted by path components, *.yaml/*.yml, no dot entries."""
    names = ["b.yml", "a/z.yaml", "a.yaml", "a/b/c.YAML", "notes.txt", ".hidden.yaml", "c.yaml"]
    for rel in [*names, ".github/workflows/ci.yml"]:
        write(tmp_path / "cfg" / rel)
    monkeypatch.chdir(tmp_path)
    result = load_paths(["cfg"])
    expected = ["cfg/a/b/c.YAML", "cfg/a/z.yaml", "cfg/a.yaml", "cfg/b.yml", "cfg/c.yaml"]
    assert result.files == expected
    assert [d.file for d in result.documents] == expected
    assert result.diagnostics == []
    assert load_paths([tmp_path / "cfg"]).files == expected


def test_absolute_paths_under_cwd_are_shown_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path under the working directory is displayed relative to it, with '/'."""
    file = write(tmp_path / "sub" / "x.yaml", "a: [\n")
    monkeypatch.chdir(tmp_path)
    result = load_paths([file])
    assert result.files == ["sub/x.yaml"]
    assert where(only(result))[0] == "sub/x.yaml"


def test_file_reached_twice_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file named explicitly and also inside a given folder is loaded once."""
    write(tmp_path / "cfg" / "a.yaml")
    monkeypatch.chdir(tmp_path)
    result = load_paths(["cfg/a.yaml", "cfg"])
    assert result.files == ["cfg/a.yaml"]
    assert len(result.documents) == 1


def test_explicit_file_with_other_extension_is_loaded(tmp_path: Path) -> None:
    """A file named on the command line is loaded whatever its extension."""
    file = write(tmp_path / "config.txt", "a: 1\n")
    assert load_paths([file]).documents[0].data == {"a": 1}


def test_missing_path_and_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing path and a folder without YAML are FS010 errors naming the path."""
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty" / "readme.md", "# hi\n")
    monkeypatch.chdir(tmp_path)
    result = load_paths(["nope", "empty"])
    assert [(d.code, where(d)) for d in result.diagnostics] == [
        ("FS010", ("nope", 1, 1)),
        ("FS010", ("empty", 1, 1)),
    ]
    assert "'nope' does not exist" in result.diagnostics[0].message
    assert result.files == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_opened(tmp_path: Path) -> None:
    """A FIFO in the config folder is reported instead of blocking the loader."""
    os.mkfifo(tmp_path / "pipe.yaml")
    assert only(load_paths([tmp_path])).code == "FS010"


def test_load_sources_keeps_order_and_names() -> None:
    """load_sources reports files in the given order under the given display names."""
    result = load_sources([("z.yaml", b"a: 1\n"), ("a.yaml", b"b: 2\n"), ("m.yaml", b"")])
    assert result.files == ["z.yaml", "a.yaml", "m.yaml"]
    assert [d.file for d in result.documents] == ["z.yaml", "a.yaml"]
    assert where(only(result)) == ("m.yaml", 1, 1)


# --------------------------------------------------------------------------- properties

YAMLISH = st.lists(
    st.sampled_from(list("ab01:-[]{},&*!|>?'\"#%@` \t\n.~<") + ["---\n", "- ", ": ", "<<", "!!"]),
    max_size=60,
).map("".join)


def check_never_raises(raw: bytes) -> None:
    result = load_sources([("p.yaml", raw)], limits=Limits(max_nodes=5000))
    assert result.files == ["p.yaml"]
    for diagnostic in result.diagnostics:
        assert diagnostic.severity is Severity.ERROR
        assert diagnostic.location is not None
        assert diagnostic.location.file == "p.yaml"
        assert diagnostic.location.line >= 1 and diagnostic.location.col >= 1
    for doc in result.documents:
        assert isinstance(doc.data, dict)
        assert doc.locate(["a"]).line >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(raw: bytes) -> None:
    """Arbitrary bytes give documents or located diagnostics, never an exception."""
    check_never_raises(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_random_yamlish_text_never_raises(text: str) -> None:
    """Arbitrary YAML-looking text gives documents or located diagnostics, never an exception."""
    check_never_raises(text.encode())
