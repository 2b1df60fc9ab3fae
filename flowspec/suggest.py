""""Did you mean" for misspelled names, keys, timezones and references."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    pool = list(candidates)
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    # Case slips ("america/sao_paulo") are the most common misspelling of a timezone.
    lowered = {c.lower(): c for c in pool}
    return lowered.get(word.lower())


def did_you_mean(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str:
    """" (did you mean 'x'?)" or "" — ready to append to a message."""
    match = closest(word, candidates, cutoff=cutoff)
    return f" (did you mean '{match}'?)" if match and match != word else ""
