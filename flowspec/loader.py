"""Safe, bounded YAML 1.2 (core schema) loader that remembers where every value came from.

Design decisions (the contract is SPEC sections 1, 2 and 7):

* **Parsing is libyaml's, construction is ours.** ``yaml.compose_all`` with a loader derived
  from ``yaml.CSafeLoader`` (pure-Python ``SafeLoader`` when libyaml is missing) builds the node
  graph in C. We never call a PyYAML constructor: a small walk turns nodes into plain ``dict``,
  ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``, so no tag can ever build an
  object.
* **YAML 1.2 core schema, not PyYAML's 1.1.** The loader's ``resolve`` hook is replaced: an
  untagged plain scalar gets a private marker tag and the walk resolves it with the core-schema
  rules (``09:00``, ``no``, ``on``, ``y``, ``2025-11-20``, ``1_000`` stay strings; ``0x1A`` is 26).
  Quoted scalars are always strings. This does not depend on the implicit-resolver tables,
  which the C parser would otherwise consult with the 1.1 rules.
* **Only the core tags** ``!!str !!int !!float !!bool !!null !!map !!seq`` are accepted; any other
  tag (``!!python/object``, ``!!binary``, ``!!timestamp``, ``!!set``, ``!!omap``, ``!local``) is
  FS006 at the tagged node, and the value reads as ``None`` so the rest of the file is still
  checked. The non-specific tag ``!`` on a quoted scalar gives a string, as YAML says.
* **Merge keys ``<<`` are supported** (YAML 1.1 semantics; common for sharing a schedule
  between automations): the value is a mapping or a list of mappings; keys written in the
  mapping itself win over merged ones, and among several merged mappings the earlier one wins.
  Merged nodes count toward the node budget like any alias. ``locate`` follows merges too, so a
  merged value is reported where it is written. A quoted ``"<<"`` is an ordinary key.
* **Empty documents are skipped**, as ``kubectl`` does: a trailing ``---`` or ``---`` followed
  only by comments is not an error. A file with no document at all (empty, or only comments)
  is FS008. ``Document.index`` is the document's position in the file counting skipped ones, so
  it matches what a person counts between ``---`` separators.
* **Bounded.** File size is checked from ``stat``/``len`` before reading or parsing (FS002);
  libyaml itself refuses nesting beyond 1000 levels, and our walk enforces ``max_depth`` (FS003)
  and a per-file budget of visited nodes in which every use of an alias is counted again
  (FS004), so a "billion laughs" file stops after ``max_nodes`` steps instead of exhausting
  memory. The budget is per file, not per document, so many small bombs in one file are bounded
  too. A recursive alias (``&a [*a]``, which the composer accepts) is caught by the depth limit
  and reported as recursive.
* **Locations are lazy.** Locations are needed only for diagnostics, so no path-to-mark map is
  built and no node is kept: a ``Document`` keeps its file's text, and the first
  ``locate``/``locate_key`` on any document of that file parses it again (libyaml is
  deterministic) and walks the nodes. Keeping the node graphs of 1,000 files alive instead made
  the cyclic garbage collector triple the load time. Loading measures about 0.6x the time of a
  bare ``yaml.load(..., Loader=yaml.CSafeLoader)``.
* **Errors are values.** Nothing here raises for bad input: every problem is a ``Diagnostic``
  with a 1-based line and column. A document with duplicate keys, bad tags or non-string keys is
  still returned (``has_errors=True``, offending entries dropped or ``None``) so later layers can
  report more in the same run; a document over a limit, or that is not a mapping, is dropped.
* **Folders** are walked recursively for ``*.yaml``/``*.yml`` (any case), skipping entries whose
  name starts with a dot (``.git``, ``.github``: CI workflows are YAML but not config), in an
  order sorted by path components, so output never depends on the file system. A file reached
  twice (named explicitly and inside a folder) is read once.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flowspec.diagnostics import Diagnostic, Location, error

__all__ = ["Document", "Limits", "LoadResult", "load_paths", "load_sources"]


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 5 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 200_000
    max_documents_per_file: int = 1000


# --------------------------------------------------------------------------- scalars

_Y = "tag:yaml.org,2002:"
_STR = _Y + "str"
_INT = _Y + "int"
_FLOAT = _Y + "float"
_BOOL = _Y + "bool"
_NULL = _Y + "null"
_MAP = _Y + "map"
_SEQ = _Y + "seq"
# Marker for "plain scalar without a tag": resolved by the core schema during our walk.
_PLAIN = "tag:flowspec,2025:plain"

_NULLS = {"": None, "~": None, "null": None, "Null": None, "NULL": None}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INF_NAN: dict[str, float] = {}
for _sign, _value in (("", math.inf), ("+", math.inf), ("-", -math.inf)):
    for _spelling in (".inf", ".Inf", ".INF"):
        _INF_NAN[_sign + _spelling] = _value
for _spelling in (".nan", ".NaN", ".NAN"):
    _INF_NAN[_spelling] = math.nan
_SPECIAL: dict[str, Any] = {**_NULLS, **_BOOLS, **_INF_NAN}
_MISSING = object()

_DEC_RE = re.compile(r"[-+]?[0-9]+")
_OCT_RE = re.compile(r"0o[0-7]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# Characters a core-schema number can start with; anything else is a string without a regex.
_NUMBER_START = frozenset("0123456789+-.")


def _to_int(value: str) -> int | None:
    if _DEC_RE.fullmatch(value):
        try:
            return int(value, 10)
        except ValueError:  # beyond Python's int-from-str digit limit
            return None
    if _HEX_RE.fullmatch(value):
        return int(value[2:], 16)
    if _OCT_RE.fullmatch(value):
        return int(value[2:], 8)
    return None


def _plain(value: str) -> Any:
    """Resolve an untagged plain scalar with the YAML 1.2 core schema."""
    special = _SPECIAL.get(value, _MISSING)
    if special is not _MISSING:
        return special
    if value[0] not in _NUMBER_START:
        return value
    number = _to_int(value)
    if number is not None:
        return number
    if _FLOAT_RE.fullmatch(value):
        return float(value)
    return value


def _explicit_scalar(tag: str, value: str) -> Any:
    """Value of a scalar with an explicit core tag, or _MISSING when it does not fit the tag."""
    if tag == _STR:
        return value
    if tag == _INT:
        number = _to_int(value)
        return _MISSING if number is None else number
    if tag == _FLOAT:
        if value in _INF_NAN:
            return _INF_NAN[value]
        number = _to_int(value)
        if number is None and not _FLOAT_RE.fullmatch(value):
            return _MISSING
        try:
            return float(value if number is None else number)
        except OverflowError:
            return _MISSING
    if tag == _BOOL:
        return _BOOLS.get(value, _MISSING)
    if tag == _NULL:
        return None if value in _NULLS else _MISSING
    return _MISSING


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_Y) :] if tag.startswith(_Y) else tag


# --------------------------------------------------------------------------- composer


_ComposerBase: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Composer(_ComposerBase):  # type: ignore[misc, valid-type]
    """Builds nodes only; ``resolve`` marks untagged plain scalars for our core-schema walk."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _SEQ if kind is SequenceNode else _MAP


class _Source:
    """One file's text, shared by its documents; parsed again only when a location is asked."""

    __slots__ = ("text", "roots")

    def __init__(self, text: str) -> None:
        self.text = text
        self.roots: list[Node] | None = None

    def root(self, index: int) -> Node | None:
        if self.roots is None:
            self.roots = []
            loader = _Composer(self.text)
            try:
                while loader.check_node():
                    self.roots.append(loader.get_node())
            except yaml.YAMLError:
                pass  # documents before the error loaded, and only those can be located
            finally:
                loader.dispose()
        return self.roots[index] if index < len(self.roots) else None


# --------------------------------------------------------------------------- public types


@dataclass
class Document:
    file: str
    index: int
    data: Any
    # True when the loader reported an error inside this document (a duplicate key, a tag that
    # is not allowed, a non-string key) and dropped or nulled the offending value.
    has_errors: bool = False
    # The file's text, parsed again on the first locate() call (see "Locations are lazy").
    _source: _Source | None = field(default=None, repr=False, compare=False)

    def locate(self, path: Sequence[str | int]) -> Location:
        """Location of the value at ``path``; the deepest existing ancestor's if it is missing."""
        node, _key = _follow(self._node(), path)
        return self._loc(node)

    def locate_key(self, path: Sequence[str | int]) -> Location:
        """Location of the key of the last mapping step in ``path``.

        A path ending in a sequence index gives the item itself (items have no key). When the
        path is missing, the key of the deepest mapping step that exists, else as ``locate``.
        """
        node, key = _follow(self._node(), path)
        return self._loc(key if key is not None else node)

    def _node(self) -> Node | None:
        return None if self._source is None else self._source.root(self.index)

    def _loc(self, node: Node | None) -> Location:
        if node is None:
            return Location(self.file, 1, 1)
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)


@dataclass
class LoadResult:
    documents: list[Document]
    diagnostics: list[Diagnostic]
    files: list[str]


# --------------------------------------------------------------------------- locate


def _key_text(node: Node) -> str | None:
    """The string a key node denotes, or None when it is not a string key."""
    if node.__class__ is not ScalarNode:
        return None
    if node.tag == _PLAIN:
        key = _plain(node.value) if node.value else None
        return key if isinstance(key, str) else None
    return node.value if node.tag == _STR else None


def _lookup(node: MappingNode, key: str, seen: set[int]) -> tuple[Node, Node] | None:
    """(key node, value node) for ``key`` in ``node``, looking through merge keys like the walk."""
    if id(node) in seen:
        return None
    seen.add(id(node))
    merges: list[Node] = []
    for knode, vnode in node.value:
        if knode.tag == _PLAIN and knode.value == "<<":
            merges.append(vnode)
        elif _key_text(knode) == key:
            return knode, vnode
    for source in merges:
        items = source.value if isinstance(source, SequenceNode) else [source]
        for item in items:
            if isinstance(item, MappingNode):
                hit = _lookup(item, key, seen)
                if hit is not None:
                    return hit
    return None


def _follow(root: Node | None, path: Sequence[str | int]) -> tuple[Node | None, Node | None]:
    """Walk ``path`` from ``root`` as far as it exists: (value node, key node of last step)."""
    node = root
    key: Node | None = None
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            hit = _lookup(node, step, set())
            if hit is None:
                break
            key, node = hit
        elif (
            isinstance(node, SequenceNode)
            and isinstance(step, int)
            and not isinstance(step, bool)
            and -len(node.value) <= step < len(node.value)
        ):
            node = node.value[step]
            key = None
        else:
            break
    return node, key


# --------------------------------------------------------------------------- walk


class _Abort(Exception):
    """A limit was hit: stop the document (depth) or the whole file (node budget)."""

    def __init__(self, diagnostic: Diagnostic, *, whole_file: bool) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.whole_file = whole_file


def _children(node: Node) -> list[Node]:
    if node.__class__ is MappingNode:
        return [n for pair in node.value for n in pair]
    if node.__class__ is SequenceNode:
        return list(node.value)
    return []


def _find_cycle(root: Node) -> Node | None:
    """A collection node that contains itself through aliases, or None (iterative DFS)."""
    finished: set[int] = set()
    on_path: set[int] = {id(root)}
    stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(_children(root)))]
    while stack:
        node, kids = stack[-1]
        child = next(kids, None)
        if child is None:
            on_path.discard(id(node))
            finished.add(id(node))
            stack.pop()
        elif id(child) in on_path:
            return child
        elif id(child) not in finished and child.__class__ is not ScalarNode:
            on_path.add(id(child))
            stack.append((child, iter(_children(child))))
    return None


def _blowup(root: Node, limit: int) -> Node:
    """Where to report an alias bomb: the line whose expansion first exceeds ``limit``.

    The walk runs out of budget deep inside some anchor, which says little. Instead, compute
    each distinct node's expanded size (capped, memoised, so this is linear in the file) and
    descend from the root into the first child that alone is over the limit, as long as there
    is one; a value reached through a mapping key is reported at its key, the line a person
    reads.
    """
    size: dict[int, int] = {}
    on_path: set[int] = set()  # a recursive alias back to one of these counts as one node
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            total = 1 + sum(size.get(id(k), 1) for k in _children(node))
            size[nid] = min(limit + 1, total)
            continue
        if nid in size or nid in on_path:
            continue
        kids = _children(node)
        if not kids:
            size[nid] = 1
            continue
        on_path.add(nid)
        stack.append((node, True))
        stack.extend((k, False) for k in kids)
    where = node = root
    visited: set[int] = set()
    while id(node) not in visited:
        visited.add(id(node))
        if node.__class__ is MappingNode:
            pairs = [(v, k) for k, v in node.value]
        else:
            pairs = [(k, k) for k in _children(node)]
        big = [(v, k) for v, k in pairs if size.get(id(v), 1) > limit]
        if not big:
            break
        node, where = big[0]
    return where


class _Walker:
    """Turns one file's nodes into plain data; holds that file's node budget and diagnostics."""

    __slots__ = ("file", "limits", "budget", "diagnostics", "doc_errors", "root")

    def __init__(self, file: str, limits: Limits, diagnostics: list[Diagnostic]) -> None:
        self.file = file
        self.limits = limits
        self.budget = limits.max_nodes
        self.diagnostics = diagnostics
        self.doc_errors = False
        self.root: Node | None = None

    def loc(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def report(self, code: str, message: str, node: Node) -> None:
        self.doc_errors = True
        self.diagnostics.append(error(code, message, self.loc(node)))

    def document(self, root: Node) -> Any:
        self.root = root
        self.doc_errors = False
        return self.build(root, 1)

    # The three methods below are the hot path: keep them free of per-node allocations.

    def build(self, node: Node, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            self.over_budget(node)
        tag = node.tag
        if tag == _PLAIN:
            return _plain(node.value) if node.value else None
        cls = node.__class__
        if tag == _MAP and cls is MappingNode:
            return self.mapping(node, depth)
        if tag == _SEQ and cls is SequenceNode:
            return self.sequence(node, depth)
        if tag == _STR and cls is ScalarNode:
            return node.value
        return self.tagged(node, depth)

    def sequence(self, node: Node, depth: int) -> list[Any]:
        if depth > self.limits.max_depth:
            self.too_deep(node)
        build = self.build
        inner = depth + 1
        return [build(item, inner) for item in node.value]

    def mapping(self, node: Node, depth: int) -> dict[str, Any]:
        if depth > self.limits.max_depth:
            self.too_deep(node)
        pairs = node.value
        # Keys are nodes too; charging them here keeps build() out of the key path.
        self.budget -= len(pairs)
        build = self.build
        inner = depth + 1
        result: dict[str, Any] = {}
        merges: list[Node] | None = None
        for knode, vnode in pairs:
            ktag = knode.tag
            if ktag == _PLAIN:
                text = knode.value
                if text == "<<":
                    if merges is None:
                        merges = []
                    merges.append(vnode)
                    continue
                key = _plain(text) if text else None
                if key.__class__ is not str:
                    self.non_string_key(knode, key)
                    continue
            elif ktag == _STR and knode.__class__ is ScalarNode:
                key = knode.value
            else:
                key = self.tagged_key(knode, depth)
                if key is None:
                    continue
            if key in result:
                self.duplicate(node, knode, key)
                continue
            result[key] = build(vnode, inner)
        if merges is not None:
            self.merge(result, merges, inner)
        return result

    # Everything below runs only for unusual input.

    def merge(self, result: dict[str, Any], merges: list[Node], depth: int) -> None:
        sources: list[dict[str, Any]] = []
        for value in merges:
            items = value.value if isinstance(value, SequenceNode) else [value]
            if isinstance(value, SequenceNode):
                self.budget -= 1  # the list node itself
            for item in items:
                if not isinstance(item, MappingNode):
                    self.report(
                        "FS001",
                        "merge key '<<' needs a mapping or a list of mappings (for example "
                        "'<<: *defaults'); point it at a mapping or remove it",
                        item,
                    )
                    continue
                merged = self.build(item, depth)
                if isinstance(merged, dict):
                    sources.append(merged)
        for source in sources:
            for key, val in source.items():
                if key not in result:
                    result[key] = val

    def tagged(self, node: Node, depth: int) -> Any:
        tag = node.tag
        short = _short_tag(tag)
        if tag not in _CORE_TAGS:
            self.report(
                "FS006",
                f"tag {short} is not allowed: flowspec reads plain data only (strings, numbers, "
                "booleans, null, lists and mappings); remove the tag",
                node,
            )
            return None
        if node.__class__ is MappingNode:
            if tag == _MAP:
                return self.mapping(node, depth)
            kind = "a mapping"
        elif node.__class__ is SequenceNode:
            if tag == _SEQ:
                return self.sequence(node, depth)
            kind = "a list"
        elif tag in (_MAP, _SEQ):
            kind = "a single value"
        else:
            value = _explicit_scalar(tag, node.value)
            if value is not _MISSING:
                return value
            self.report(
                "FS006",
                f"value {node.value!r} is not a valid {short}; fix the value or remove the tag",
                node,
            )
            return None
        self.report("FS006", f"tag {short} cannot be used on {kind}; remove the tag", node)
        return None

    def tagged_key(self, knode: Node, depth: int) -> str | None:
        if knode.__class__ is ScalarNode:
            reported = len(self.diagnostics)
            key = self.tagged(knode, depth)
            if isinstance(key, str):
                return key
            if len(self.diagnostics) == reported:
                self.non_string_key(knode, key)
        elif knode.tag in _CORE_TAGS:
            self.report(
                "FS011",
                "a mapping key must be a string, not a list or mapping; use a plain name as "
                "the key",
                knode,
            )
        else:
            self.tagged(knode, depth)  # reports FS006 without walking the key
        return None

    def non_string_key(self, knode: Node, key: Any) -> None:
        text = knode.value or "(empty)"
        kind = "null" if key is None else type(key).__name__
        self.report(
            "FS011",
            f'mapping key {text} is read as {kind}, not a string; quote it ("{knode.value}") '
            "if a text key is meant",
            knode,
        )

    def duplicate(self, mapping: Node, knode: Node, key: str) -> None:
        first = next(k for k, _ in mapping.value if k is not knode and _key_text(k) == key)
        self.report(
            "FS005",
            f"duplicate key '{key}' (first defined at line {first.start_mark.line + 1}); "
            "remove one of them",
            knode,
        )

    def too_deep(self, node: Node) -> NoReturn:
        self.if_recursive(whole_file=False)
        raise _Abort(
            error(
                "FS003",
                f"nesting deeper than {self.limits.max_depth} levels; flatten the structure",
                self.loc(node),
            ),
            whole_file=False,
        )

    def over_budget(self, node: Node) -> NoReturn:
        self.if_recursive(whole_file=True)
        where = node if self.root is None else _blowup(self.root, self.limits.max_nodes)
        raise _Abort(
            error(
                "FS004",
                f"file expands to more than {self.limits.max_nodes} nodes (each use of an alias "
                "*name counts again, so this may be an alias bomb); reduce the aliases or split "
                "the file",
                self.loc(where),
            ),
            whole_file=True,
        )

    def if_recursive(self, *, whole_file: bool) -> None:
        """A limit hit by a recursive alias gets a message that names the real cause."""
        cyclic = None if self.root is None else _find_cycle(self.root)
        if cyclic is not None:
            raise _Abort(
                error(
                    "FS004",
                    "recursive alias: this anchored node contains an alias to itself, which "
                    "would expand forever; replace the alias with a copy of the data",
                    self.loc(cyclic),
                ),
                whole_file=whole_file,
            )


_CORE_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _MAP, _SEQ})
_PLAIN_OR_CORE = _CORE_TAGS | {_PLAIN}


# --------------------------------------------------------------------------- one file


def _line_col(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _decode(file: str, raw: bytes, diagnostics: list[Diagnostic]) -> str | None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        diagnostics.append(
            error(
                "FS007",
                "file is encoded as UTF-16 or UTF-32, not UTF-8; save it as UTF-8",
                Location(file, 1, 1),
            )
        )
        return None
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        col = len(raw[raw.rfind(b"\n", 0, nul) + 1 : nul].decode("utf-8", "replace")) + 1
        diagnostics.append(
            error(
                "FS007",
                "not a text file: it contains NUL bytes (binary data?); only UTF-8 YAML files "
                "belong in the config folder",
                Location(file, line, col),
            )
        )
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        start = raw.rfind(b"\n", 0, exc.start) + 1
        col = len(raw[start : exc.start].decode("utf-8", "replace")) + 1
        diagnostics.append(
            error(
                "FS007",
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                Location(file, line, col),
            )
        )
        return None
    # libyaml would accept the BOM too; dropping it keeps offsets equal to what editors show.
    return text[1:] if text.startswith("\ufeff") else text


def _syntax_diagnostic(file: str, text: str, exc: yaml.YAMLError) -> Diagnostic:
    if isinstance(exc, yaml.reader.ReaderError):
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        at = text.find(char)
        line, col = _line_col(text, at if at >= 0 else exc.position)
        return error(
            "FS007",
            f"not a text file: it contains the control character U+{ord(char[:1] or ' '):04X}, "
            "which YAML does not allow; remove it",
            Location(file, line, col),
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = (exc.problem or "").strip()
        context = (exc.context or "").strip()
        offset = _offset(text, line, col)
        if "cannot start any token" in problem and text[offset : offset + 1] == "\t":
            message = (
                "tabs are not allowed for indentation in YAML; indent with spaces instead "
                "(set your editor to insert spaces for this file)"
            )
        elif "duplicate anchor" in context:
            first = exc.context_mark
            where = f" (first defined at line {first.line + 1})" if first is not None else ""
            message = f"anchor defined twice{where}; give each &anchor a unique name"
        elif "undefined alias" in problem:
            name = re.match(r"\*[^\s,\[\]{}]*", text[offset:])
            alias = name.group(0) if name else "alias"
            message = (
                f"undefined alias {alias}: no anchor &{alias.lstrip('*')} was defined before it "
                "in this document; define the anchor first or fix the name"
            )
        else:
            detail = f"{problem} ({context})" if context else problem
            message = (
                f"invalid YAML: {detail}; check the indentation and quote values that contain "
                "': ', '#' or start with a special character"
            )
        return error("FS001", message, Location(file, line, col))
    return error("FS001", f"invalid YAML: {exc}", Location(file, 1, 1))


def _offset(text: str, line: int, col: int) -> int:
    pos = 0
    for _ in range(line - 1):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return pos + col - 1


def _load_text(file: str, text: str, limits: Limits, out: LoadResult) -> None:
    diagnostics = out.diagnostics
    walker = _Walker(file, limits, diagnostics)
    seen = 0
    nonempty = 0
    source = _Source(text)
    loader = _Composer(text)
    try:
        while loader.check_node():
            root = loader.get_node()
            index = seen
            seen += 1
            if seen > limits.max_documents_per_file:
                diagnostics.append(
                    error(
                        "FS004",
                        f"more than {limits.max_documents_per_file} documents in one file; "
                        "split it into several files",
                        walker.loc(root),
                    )
                )
                return
            if root.__class__ is ScalarNode and root.tag == _PLAIN and root.value == "":
                continue  # empty document (trailing '---' or only comments): skipped
            nonempty += 1
            if root.__class__ is not MappingNode and root.tag in _PLAIN_OR_CORE:
                what = "a list" if root.__class__ is SequenceNode else "a single value"
                diagnostics.append(
                    error(
                        "FS009",
                        f"document is {what}, expected a mapping with apiVersion, kind, "
                        "metadata and spec; write the document as 'key: value' lines",
                        walker.loc(root),
                    )
                )
                continue
            try:
                data = walker.document(root)
            except _Abort as abort:
                diagnostics.append(abort.diagnostic)
                if abort.whole_file:
                    return
                continue
            if not isinstance(data, dict):  # a tag error on the root node, already reported
                continue
            out.documents.append(Document(file, index, data, walker.doc_errors, source))
    except yaml.YAMLError as exc:
        diagnostics.append(_syntax_diagnostic(file, text, exc))
        return
    except RecursionError:  # only the pure-Python composer recurses
        diagnostics.append(
            error(
                "FS003",
                "nesting too deep to read; flatten the structure",
                Location(file, 1, 1),
            )
        )
        return
    finally:
        loader.dispose()
    if seen == 0:
        diagnostics.append(
            error(
                "FS008",
                "empty file: no YAML document; add a document or delete the file",
                Location(file, 1, 1),
            )
        )
    elif nonempty == 0:
        # Only '---' separators and comments: as useless as an empty file.
        diagnostics.append(
            error(
                "FS008",
                "empty file: every YAML document in it is empty; add content or delete the file",
                Location(file, 1, 1),
            )
        )


def _load_bytes(file: str, raw: bytes, limits: Limits, out: LoadResult) -> None:
    out.files.append(file)
    if len(raw) > limits.max_file_bytes:
        out.diagnostics.append(_too_large(file, len(raw), limits))
        return
    text = _decode(file, raw, out.diagnostics)
    if text is not None:
        _load_text(file, text, limits, out)


def _too_large(file: str, size: int, limits: Limits) -> Diagnostic:
    return error(
        "FS002",
        f"file is too large ({size} bytes; the limit is {limits.max_file_bytes}); split it "
        "into smaller files",
        Location(file, 1, 1),
    )


# --------------------------------------------------------------------------- public API


def load_sources(sources: Iterable[tuple[str, bytes]], *, limits: Limits = Limits()) -> LoadResult:
    """Load (display path, raw bytes) pairs, e.g. blobs read from git objects."""
    out = LoadResult([], [], [])
    for file, raw in sources:
        _load_bytes(file, raw, limits, out)
    return out


def _display(path: Path, cwd: Path) -> str:
    if path.is_absolute():
        with contextlib.suppress(ValueError):  # outside cwd: keep it absolute
            path = path.relative_to(cwd)
    return path.as_posix()


def _yaml_files(top: Path) -> list[Path]:
    found: list[tuple[str, ...]] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(top).parts
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith((".yaml", ".yml")):
                found.append((*rel, name))
    found.sort()
    return [top.joinpath(*parts) for parts in found]


def load_paths(paths: Sequence[str | os.PathLike[str]], *, limits: Limits = Limits()) -> LoadResult:
    """Load files and folders (recursively, sorted) of YAML config."""
    out = LoadResult([], [], [])
    cwd = Path.cwd()
    done: set[tuple[int, int]] = set()
    for given in paths:
        path = Path(given)
        shown = _display(path, cwd)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            out.diagnostics.append(
                error(
                    "FS010",
                    f"path '{shown}' does not exist; check the spelling or pass the folder "
                    "that holds the YAML files",
                    Location(shown, 1, 1),
                )
            )
            continue
        except OSError as exc:
            out.diagnostics.append(_unreadable(shown, exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            files = _yaml_files(path)
            if not files:
                out.diagnostics.append(
                    error(
                        "FS010",
                        f"folder '{shown}' holds no *.yaml or *.yml files; pass the folder "
                        "that holds the config",
                        Location(shown, 1, 1),
                    )
                )
            for file in files:
                _load_file(file, _display(file, cwd), limits, out, done)
        else:
            _load_file(path, shown, limits, out, done)
    return out


def _unreadable(shown: str, exc: OSError) -> Diagnostic:
    return error(
        "FS010",
        f"cannot read '{shown}': {exc.strerror or exc}; check that it exists and is readable",
        Location(shown, 1, 1),
    )


def _load_file(
    path: Path, shown: str, limits: Limits, out: LoadResult, done: set[tuple[int, int]]
) -> None:
    try:
        st = os.stat(path)
        # Checked before open(): opening a FIFO would block until something writes to it.
        if not stat.S_ISREG(st.st_mode):
            out.diagnostics.append(
                error(
                    "FS010",
                    f"'{shown}' is not a regular file; pass YAML files or folders",
                    Location(shown, 1, 1),
                )
            )
            return
        identity = (st.st_dev, st.st_ino)
        if identity in done:
            return
        done.add(identity)
        if st.st_size > limits.max_file_bytes:
            out.files.append(shown)
            out.diagnostics.append(_too_large(shown, st.st_size, limits))
            return
        with open(path, "rb") as handle:
            # One byte past the limit: a file that grows after stat() is still bounded.
            raw = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        out.diagnostics.append(_unreadable(shown, exc))
        return
    _load_bytes(shown, raw, limits, out)
