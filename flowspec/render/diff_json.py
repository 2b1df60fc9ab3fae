"""`flowspec diff --format json`: the machine contract `flowspec.diff/v1` (keys may be added, never
renamed). Documented with an example in docs/diff.md.

Top level: `format`, `range` {from, to}, `automations` (changed ones only, by organization and
name: `change` added | removed | changed, `fields` [{path, old, new}], `affected_by`,
`occurrences` {added, removed, moved, modified}, `next` {before, after}), `config` (changed
Defaults, Flows, Channels, Audiences with `affects`) and `summary` (counts).
"""

from __future__ import annotations

import json
from typing import IO

from flowspec.diff import Diff


def render(diff: Diff, out: IO[str]) -> None:
    json.dump(diff.to_json(), out, indent=2, ensure_ascii=False, default=str)
    out.write("\n")
