"""`--format json`: the machine contract of SPEC 3 (`flowspec.plan/v1`), streamed.

`Plan.write_json` holds one automation's occurrences in memory at a time and writes exactly
`json.dumps(plan.to_json(), indent=2) + "\\n"` (a test proves it), so a million-occurrence plan
never becomes one big string.
"""

from __future__ import annotations

from typing import IO

from flowspec.plan import Plan
from flowspec.render import RenderOptions


def render(plan: Plan, out: IO[str], options: RenderOptions) -> None:
    # The contract lists every status; --include-skipped does not apply here.
    plan.write_json(out)
