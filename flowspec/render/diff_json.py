"""`flowspec diff --format json`: the machine contract `flowspec.diff/v1` (keys may be added, never
renamed). Documented with an example in docs/diff.md.

Top level: `format`, `range` {from, to}, `automations` (changed ones only, by organization and
name: `change` added | removed | changed, `fields` [{path, old, new}], `affected_by`,
`occurrences` {added, removed, moved, modified}, `next` {before, after}), `config` (changed
Defaults, Flows, Channels, Audiences with `affects`) and `summary` (counts).

Layout: indented, except that each occurrence entry is one compact line. A diff that re-keys a
whole repository lists hundreds of thousands of occurrences; one per line keeps it readable with
grep and line diffs, and lets the C encoder write them (indenting every key is ~8x slower).
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

from flowspec.diff import Diff

_PLACEHOLDER = re.compile(r'"\\u0000(\d+)"')


def render(diff: Diff, out: IO[str]) -> None:
    data = diff.to_json()
    compact: list[str] = []

    def hold(entry: Any) -> str:
        compact.append(json.dumps(entry, ensure_ascii=False, separators=(", ", ": "), default=str))
        return f"\x00{len(compact) - 1}"

    for automation in data["automations"]:
        occurrences = automation["occurrences"]
        for kind in occurrences:
            occurrences[kind] = [hold(entry) for entry in occurrences[kind]]
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    out.write(_PLACEHOLDER.sub(lambda m: compact[int(m.group(1))], text))
    out.write("\n")
