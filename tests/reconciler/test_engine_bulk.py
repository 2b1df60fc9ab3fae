"""Array literals of the bulk writes, read back by PostgreSQL itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.engine import bulk

pytestmark = pytest.mark.postgres

_EPOCH_US = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg(postgres_server_url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(postgres_server_url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        yield conn


def _read(pg: Any, literal: str, kind: str) -> list[Any]:
    return list(pg.execute(f"SELECT %s::{kind}[]", (literal,)).fetchone()[0])


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12)
_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(ids=st.lists(st.none() | st.integers(-2**63, 2**63 - 1), min_size=1, max_size=30),
       texts=st.lists(st.none() | _TEXT | st.sampled_from(["wamid.A", "wamid.B", 'q"', "b\\"]),
                      min_size=1, max_size=30),
       times=st.lists(st.none() | _TIMES, min_size=1, max_size=30),
       repeat=st.integers(1, 4))
def test_every_array_literal_reads_back_as_the_values_written(
    pg: Any, ids: list[int | None], texts: list[str | None], times: list[datetime | None],
    repeat: int
) -> None:
    """Integers, texts (quotes, backslashes, any Unicode) and times, with NULLs, repeated or
    all alike, read back from PostgreSQL exactly as written, whichever way the literal was
    built."""
    ids, texts, times = ids * repeat, texts * repeat, times * repeat
    assert _read(pg, bulk.pg_array(ids, bulk._int), "bigint") == ids
    assert _read(pg, bulk.pg_array(texts, bulk._text), "text") == texts
    micros = [None if t is None else (t - _EPOCH_US) // timedelta(microseconds=1) for t in times]
    assert _read(pg, bulk.pg_array(times, bulk._micros), "bigint") == micros
