"""The scanner-first JSON parser behind JSON columns and the Cloud API's answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import fastjson

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, spaced=st.booleans(), as_bytes=st.booleans())
def test_parses_every_document_as_json_loads_does(value: Any, spaced: bool, as_bytes: bool) -> None:
    """Any document, compact or padded with whitespace, as text or UTF-8 bytes, parses to what
    `json.loads` gives."""
    text = json.dumps(value, ensure_ascii=False)
    if spaced:
        text = f" \n{text}\t "
    data: str | bytes = text.encode() if as_bytes else text
    assert fastjson.loads(data) == json.loads(data)


@pytest.mark.parametrize("data", [b"", b"{", b'{"a": 1} x', b"[1,]", b"\xff\xfe{", "nul", b'"\xc3'])
def test_rejects_what_json_loads_rejects(data: str | bytes) -> None:
    """Invalid or truncated documents, trailing garbage and bad encodings raise ValueError."""
    with pytest.raises(ValueError):
        fastjson.loads(data)


def test_other_encodings_json_loads_detects_still_parse() -> None:
    """A UTF-16 document (json.loads detects it) is not mistaken for invalid UTF-8."""
    assert fastjson.loads('{"a": [1, "é"]}'.encode("utf-16")) == {"a": [1, "é"]}
