"""`flowspec diff --format markdown`: the diff as a pull-request comment.

A summary table (automation, +, −, ~, next send before and after), then each automation's lines
(the text renderer's, in a ```diff block so GitHub colours them) folded in `<details>`, then the
Flow/Channel/Audience/Defaults changes. GitHub rejects a comment over 65,536 characters, so the
output never exceeds `max_chars`: table rows, then detail blocks, then lines inside the last
block stop where the budget ends, and a note says what was left out and where the full report
is (`full_report`, e.g. the workflow run's step summary and artifact).
"""

from __future__ import annotations

from typing import IO

from flowspec.diff import AutomationDiff, Diff, DocumentDiff
from flowspec.plan import Occurrence
from flowspec.render import local_label
from flowspec.render.diff_text import (
    Line,
    affects_text,
    automation_lines,
    counts,
    document_lines,
    summary_line,
)

GITHUB_COMMENT_LIMIT = 65_536
NOTE_RESERVE = 800  # room kept for the truncation note and closing tags
_ESCAPE = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~&"})
DEFAULT_FULL_REPORT = "`flowspec diff --format text`, which has no size limit"


def escape(text: str) -> str:
    return text.translate(_ESCAPE).replace("\n", " ")


def render(
    diff: Diff,
    out: IO[str],
    *,
    expand: bool = False,
    max_chars: int = GITHUB_COMMENT_LIMIT,
    full_report: str | None = None,
) -> None:
    out.write(render_text(diff, expand=expand, max_chars=max_chars, full_report=full_report))


def render_text(
    diff: Diff, *, expand: bool = False, max_chars: int = GITHUB_COMMENT_LIMIT, full_report: str | None = None
) -> str:
    """The comment as one string, at most `max_chars` characters (0: no limit)."""
    limit = max_chars if max_chars > 0 else 1 << 62
    head = _head(diff)
    if not diff.has_changes:
        return head
    rows = [_row(a) for a in diff.automations]
    blocks = [_block(_summary(a), automation_lines(a, expand=expand)) for a in diff.automations]
    doc_blocks = [_block(_doc_summary(d), document_lines(d)) for d in diff.documents]
    table_head = "\n| Automation | + | − | ~ | Next send before | Next send after |\n|---|--:|--:|--:|---|---|\n"
    full = head + (table_head + "".join(rows) if rows else "") + _section("Automations", blocks) + _section(
        "Config documents", doc_blocks
    )
    if len(full) <= limit:
        return full
    return _truncated(diff, head, table_head, rows, blocks, doc_blocks, limit, full_report)


def _head(diff: Diff) -> str:
    start, end = diff.range_from.strftime("%Y-%m-%d %H:%M"), diff.range_to.strftime("%Y-%m-%d %H:%M")
    text = f"### flowspec diff\n\nRange {start} … {end} UTC\n\n"
    if not diff.has_changes:
        return text + f"No changes. `{summary_line(diff)}`\n"
    return text + f"**{escape(summary_line(diff))}**\n"


def _next(o: Occurrence | None) -> str:
    return local_label(o.local) if o is not None else "—"


def _sign(change: str) -> str:
    return {"added": "+", "removed": "−"}.get(change, "~")


def _row(a: AutomationDiff) -> str:
    plus, minus, tilde = counts(a)
    if a.compiled:
        before, after = _next(a.next_before), _next(a.next_after)
    else:
        before = after = "unchanged"
    return f"| {_sign(a.change)} `{a.ident}` | {plus} | {minus} | {tilde} | {before} | {after} |\n"


def _summary(a: AutomationDiff) -> str:
    plus, minus, tilde = counts(a)
    extra = f", {len(a.fields)} field{'s' if len(a.fields) != 1 else ''}" if a.fields else ""
    return f"<code>{_sign(a.change)} {a.ident}</code> {a.change}: +{plus} −{minus} ~{tilde}{extra}"


def _doc_summary(d: DocumentDiff) -> str:
    name = "Defaults" if d.kind == "Defaults" else f"{d.kind} {d.organization}/{d.name}"
    return f"<code>{_sign(d.change)} {name}</code> {d.change}, {escape(affects_text(d.affects))}"


def _fence(body: str) -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return ticks


def _code_lines(lines: list[Line]) -> list[str]:
    # GitHub colours a ```diff line only when its sign is in the first column.
    return [f"{sign} {text}".rstrip() + "\n" for sign, text in lines]


class _Block:
    def __init__(self, summary: str, lines: list[str]) -> None:
        self.summary = summary
        self.lines = lines
        self.fence = _fence("".join(lines))

    def open(self) -> str:
        return f"<details><summary>{self.summary}</summary>\n\n{self.fence}diff\n"

    def close(self) -> str:
        return f"{self.fence}\n\n</details>\n"

    def text(self) -> str:
        return self.open() + "".join(self.lines) + self.close()


def _block(summary: str, lines: list[Line]) -> _Block:
    # The first line repeats the summary's header; the block shows what is under it.
    return _Block(summary, _code_lines(lines))


def _section(title: str, blocks: list[_Block]) -> str:
    if not blocks:
        return ""
    return f"\n#### {title}\n\n" + "".join(b.text() for b in blocks)


def _truncated(
    diff: Diff,
    head: str,
    table_head: str,
    rows: list[str],
    blocks: list[_Block],
    doc_blocks: list[_Block],
    limit: int,
    full_report: str | None,
) -> str:
    budget = limit - NOTE_RESERVE
    parts = [head]
    used = len(head)
    shown_rows = 0
    if rows:
        parts.append(table_head)
        used += len(table_head)
        for r in rows:
            # Rows first, but never so many that no detail block fits: keep a third for them.
            if used + len(r) > budget - (budget // 3 if blocks else 0):
                break
            parts.append(r)
            used += len(r)
            shown_rows += 1
    shown_blocks = cut_lines = 0
    cut_block: str | None = None
    for title, group in (("Config documents", doc_blocks), ("Automations", blocks)):
        if not group or used >= budget:
            continue
        heading = f"\n#### {title}\n\n"
        parts.append(heading)
        used += len(heading)
        for b in group:
            text = b.text()
            if used + len(text) <= budget:
                parts.append(text)
                used += len(text)
                shown_blocks += 1
                continue
            # The first block that does not fit is shown in part, so a single huge automation
            # still shows its beginning.
            room = budget - used - len(b.open()) - len(b.close()) - 80
            kept: list[str] = []
            for line in b.lines:
                if room - len(line) < 0:
                    break
                kept.append(line)
                room -= len(line)
            if kept:
                cut_lines = len(b.lines) - len(kept)
                cut_block = b.summary
                parts.append(b.open() + "".join(kept) + f"… {cut_lines} more lines\n" + b.close())
                shown_blocks += 1
            used = budget
            break
    total_blocks = len(blocks) + len(doc_blocks)
    where = full_report or DEFAULT_FULL_REPORT
    missing = []
    if shown_rows < len(rows):
        missing.append(f"{len(rows) - shown_rows} of {len(rows)} table rows")
    if shown_blocks < total_blocks or cut_block:
        missing.append(f"details of {total_blocks - shown_blocks + (1 if cut_block else 0)} of {total_blocks} entries")
    note = (
        f"\n> [!WARNING]\n> **Truncated** to {limit:,} characters (GitHub's limit for a comment is "
        f"{GITHUB_COMMENT_LIMIT:,}): {' and '.join(missing)} are not shown here. "
        f"The full report is in {where}.\n"
    )
    return "".join(parts) + note
