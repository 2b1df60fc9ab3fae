"""Pydantic validation errors → located, actionable diagnostics (the schema layer's messages).

Pydantic reports what failed in its own terms ("Input should be a valid string", a location
that includes union branch names). A person needs: which key, what was expected in words, and
the nearest valid spelling. This module turns each error into one diagnostic with a stable
code, located at the key (unknown or missing keys) or at the value (wrong values):

- union branches are folded: of "a date, or a {start, end} mapping", only the branch whose
  type matches the value reports, and a value matching no branch gets one "expected A or B";
- an unknown key whose did-you-mean names a missing required key is reported once, as the
  misspelling, not twice;
- a literal secret in a Channel is FS501, never a mere unknown key.

Codes are catalogued in docs/diagnostics.md.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from flowspec import models, timeparse
from flowspec.diagnostics import Diagnostic, Location, error
from flowspec.suggest import closest, did_you_mean

Locator = Callable[[Sequence[str | int]], Location]
Path = tuple[str | int, ...]

FS_SCHEMA = "FS100"
FS_UNKNOWN_KEY = "FS103"
FS_MISSING = "FS105"
FS_TYPE = "FS106"
FS_CHOICE = "FS107"
FS_FORMAT = "FS108"
FS_RANGE = "FS109"
FS_API_VERSION = "FS110"
FS_RULE = "FS112"
FS_SECRET = "FS501"

# Words for the formats the models' patterns enforce.
_FORMATS: dict[str, str] = {
    models.SLUG_PATTERN: (
        "a lowercase slug: a-z, 0-9 and '-', starting and ending with a letter or digit, "
        "at most 63 characters (e.g. 'daily-promo')"
    ),
    timeparse.DATE_PATTERN: "a date YYYY-MM-DD (e.g. 2025-12-25)",
    timeparse.WHEN_PATTERN: (
        "a date YYYY-MM-DD or a datetime YYYY-MM-DDTHH:MM[:SS], optionally ending in Z or an "
        "offset like -03:00 (e.g. 2025-11-24T14:00:00)"
    ),
    timeparse.TIME_PATTERN: 'a time of day "HH:MM" (24-hour, quoted; e.g. "09:00")',
    timeparse.DURATION_PATTERN: "a duration such as 30s, 5m, 1h, 1h30m, 2d",
    r"^[A-Z]{2}$": "a two-letter ISO 3166-1 country code in capitals (e.g. BR)",
}
_TYPE_WORDS: dict[str, str] = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_from_float": "an integer",
}
_RANGE_TYPES = {
    "greater_than_equal": "at least {ge}",
    "greater_than": "greater than {gt}",
    "less_than_equal": "at most {le}",
    "less_than": "less than {lt}",
    "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} item(s)",
    "string_too_short": "at least {min_length} character(s)",
    "string_too_long": "at most {max_length} characters",
}
_SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|credential", re.IGNORECASE)


def diagnostics_from_validation_error(
    exc: ValidationError,
    data: Any,
    locate: Locator,
    locate_key: Locator | None = None,
    model: type[BaseModel] | None = None,
) -> list[Diagnostic]:
    """One diagnostic per real problem in `exc`, for the document `data` validated by `model`."""
    key_at = locate_key or locate
    errors = _fold_unions(exc.errors(), data)
    extra_suggestions: dict[Path, set[str]] = {}
    out: list[tuple[Path, ErrorDetails, Diagnostic]] = []
    for path, err in errors:
        diag = _diagnostic(path, err, data, locate, key_at, model)
        if diag.code == FS_UNKNOWN_KEY and diag.data.get("suggestion"):
            extra_suggestions.setdefault(path[:-1], set()).add(str(diag.data["suggestion"]))
        out.append((path, err, diag))
    result = []
    seen: set[tuple[str, str, Location | None]] = set()
    for path, err, diag in out:
        # "recurence_type" unknown + "recurrence_type" missing is one misspelling, said once.
        if err["type"] == "missing" and path and str(path[-1]) in extra_suggestions.get(path[:-1], ()):
            continue
        ident = (diag.code, diag.message, diag.location)
        if ident not in seen:
            seen.add(ident)
            result.append(diag)
    return result


# --------------------------------------------------------------------------- paths and unions


def _real_path(err: ErrorDetails, data: Any) -> tuple[Path, int | None, str]:
    """The error's path through the data, without pydantic's union branch names.

    Also returns where the first branch name was dropped (the union's node; None when the
    error did not pass through a union) and that branch name.
    """
    loc = err["loc"]
    node = data
    path: list[str | int] = []
    union_at: int | None = None
    branch = ""
    names_key = err["type"] in ("missing", "extra_forbidden")
    for i, part in enumerate(loc):
        if _has(node, part):
            path.append(part)
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and names_key and i == len(loc) - 1:
            path.append(part)  # the missing or unknown key itself
        elif union_at is None:
            union_at = len(path)
            branch = str(part)
    return tuple(path), union_at, branch


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node)


def _fold_unions(errors: list[ErrorDetails], data: Any) -> list[tuple[Path, ErrorDetails]]:
    """Keep the errors of the union branch that fits the value's type; else one type error."""
    plain: list[tuple[Path, ErrorDetails]] = []
    unions: dict[Path, list[tuple[Path, ErrorDetails, str]]] = {}
    for err in errors:
        path, union_at, branch = _real_path(err, data)
        if union_at is None:
            plain.append((path, err))
        else:
            unions.setdefault(path[:union_at], []).append((path, err, branch))
    for node_path, items in unions.items():
        branches: dict[str, list[tuple[Path, ErrorDetails]]] = {}
        for path, err, branch in items:
            branches.setdefault(branch, []).append((path, err))
        fitting = [
            errs
            for errs in branches.values()
            if not any(p == node_path and e["type"] in _TYPE_WORDS for p, e in errs)
        ]
        if fitting:
            plain.extend(fitting[0])
            continue
        expected: list[str] = []
        for errs in branches.values():
            word = _expected_words(errs[0][1])
            if word not in expected:
                expected.append(word)
        first = items[0][1]
        combined: ErrorDetails = {
            "type": "union_type",
            "loc": first["loc"],
            "msg": _either(expected),
            "input": first["input"],
        }
        plain.append((node_path, combined))
    return plain


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _expected_words(err: ErrorDetails) -> str:
    if err["type"] == "string_pattern_mismatch":
        return _format_words(str(err.get("ctx", {}).get("pattern", "")))
    return _TYPE_WORDS.get(err["type"], err["msg"])


# --------------------------------------------------------------------------- one error


def _diagnostic(
    path: Path,
    err: ErrorDetails,
    data: Any,
    locate: Locator,
    key_at: Locator,
    model: type[BaseModel] | None,
) -> Diagnostic:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err["input"]
    field = _field_name(path)

    if kind == "extra_forbidden":
        key = str(path[-1])
        parent = path[:-1]
        where = _dotted(parent) or "the document"
        if _is_channel(data) and _SECRET_KEY.search(key):
            return error(
                FS_SECRET,
                f"'{key}' looks like a literal secret: secrets never go in YAML. Put the value in "
                f"an environment variable and name it with {_secret_field(key)}: YOUR_ENV_VAR",
                key_at(path),
            )
        fields = _fields_at(model, parent, data)
        suggestion = closest(key, fields) if fields else None
        hint = f" (did you mean '{suggestion}'?)" if suggestion and suggestion != key else ""
        allowed = f"; allowed keys: {', '.join(fields)}" if fields and not hint and len(fields) <= 12 else ""
        return error(
            FS_UNKNOWN_KEY,
            f"unknown key '{key}' in {where}{hint}{allowed}",
            key_at(path),
            **({"suggestion": suggestion} if hint else {}),
        )

    if kind == "missing":
        key = str(path[-1]) if path else "?"
        parent = path[:-1]
        where = _dotted(parent) or "the document"
        return error(FS_MISSING, f"missing required key '{key}' in {where}", key_at(parent))

    if kind in ("union_tag_not_found",):
        tag = str(ctx.get("discriminator", "type")).strip("'")
        return error(
            FS_MISSING,
            f"{_dotted(path)} has no '{tag}'; add {tag}: one of "
            + _literal_list(str(_node_tags())),
            key_at(path),
        )

    if kind in ("literal_error", "union_tag_invalid", "enum"):
        expected = str(ctx.get("expected") or ctx.get("expected_tags") or "")
        choices = _literals(expected)
        given = ctx.get("tag", value)
        if path == ("apiVersion",):
            return error(
                FS_API_VERSION,
                f"apiVersion '{given}' is not supported; write apiVersion: {models.API_VERSION}",
                locate(path),
            )
        if path and path[-1] == "kind" and len(path) == 1:
            return error(
                FS_CHOICE,
                f"kind '{given}' does not match this document's schema",
                locate(path),
            )
        target = path + ("type",) if kind == "union_tag_invalid" else path
        hint = did_you_mean(str(given), choices) if isinstance(given, str) else ""
        return error(
            FS_CHOICE,
            f"{_field_name(target)}: {_show(given)} is not one of {', '.join(choices)}{hint}",
            locate(target),
            **({"suggestion": closest(str(given), choices)} if hint else {}),
        )

    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        words = _format_words(pattern)
        hint = ""
        if pattern == models.SLUG_PATTERN and isinstance(value, str):
            fixed = _slugify(value)
            if fixed and fixed != value:
                hint = f" (did you mean '{fixed}'?)"
        return error(FS_FORMAT, f"{field}: {_show(value)} is not {words}{hint}", locate(path))

    if kind in _TYPE_WORDS or kind == "union_type":
        expected = err["msg"] if kind == "union_type" else _TYPE_WORDS[kind]
        fmt = _field_format(model, path, data)
        if fmt and kind == "string_type":
            expected = fmt
        return error(FS_TYPE, f"{field}: expected {expected}, got {_describe(value)}", locate(path))

    if kind in _RANGE_TYPES:
        bound = _RANGE_TYPES[kind].format(**{k: ctx.get(k) for k in ("ge", "gt", "le", "lt", "min_length", "max_length")})
        what = "must have" if kind in ("too_short", "too_long", "string_too_short", "string_too_long") else "must be"
        return error(FS_RANGE, f"{field} {what} {bound}, got {_describe(value)}", locate(path))

    if kind in ("value_error", "assertion_error"):
        message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        where = _dotted(path)
        return error(FS_RULE, f"{where}: {message}" if where else message, key_at(path))

    where = _dotted(path) or "document"
    return error(FS_SCHEMA, f"{where}: {err['msg']}", locate(path))


# --------------------------------------------------------------------------- words


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _field_name(path: Path) -> str:
    """The path as a person reads it: spec.schedule.start_time, blackout_dates[2]."""
    return _dotted(path) or "document"


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else _describe(value)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (the value is empty or null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string '{shown}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _literals(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _literal_list(expected: str) -> str:
    return " | ".join(_literals(expected)) or expected


def _node_tags() -> str:
    return "'send_text', 'send_template', 'wait', 'condition', 'end'"


def _format_words(pattern: str) -> str:
    return _FORMATS.get(pattern, f"in the expected format (pattern {pattern})")


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:63].rstrip("-")


def _secret_field(key: str) -> str:
    lowered = key.lower()
    if "app" in lowered and "secret" in lowered:
        return "app_secret_env"
    if "verify" in lowered:
        return "verify_token_env"
    return "access_token_env"


def _is_channel(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "Channel"


# --------------------------------------------------------------------------- model navigation


def _fields_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of a type, without None and Annotated wrappers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out = []
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [annotation]


def _step(annotation: Any, part: str | int, value: Any, parent: Any) -> Any:
    """The type found one step down `annotation` at `part`, or None."""
    for alt in _unwrap(annotation):
        origin = typing.get_origin(alt)
        if isinstance(alt, type) and issubclass(alt, BaseModel) and isinstance(part, str):
            field = _model_field(alt, part)
            if field is not None:
                return field
        elif origin is list and isinstance(part, int):
            return typing.get_args(alt)[0]
        elif origin is dict and isinstance(part, str):
            return typing.get_args(alt)[1]
    return None


def _model_field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            # pydantic moves a field's own Annotated metadata (its pattern) into FieldInfo.
            if info.metadata:
                return typing.Annotated[(info.annotation, *info.metadata)]  # type: ignore[valid-type]
            return info.annotation
    return None


def _pick_model(annotation: Any, value: Any, parent_value: Any, key: str | int | None) -> type[BaseModel] | None:
    """The model a mapping value is checked against, choosing among union members by data."""
    candidates = [a for a in _unwrap(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    if key == "recurrence_config" and isinstance(parent_value, dict):
        picked = models.RECURRENCE_CONFIGS.get(str(parent_value.get("recurrence_type")))
        if picked is not None:
            return picked
    if len(candidates) > 1 and isinstance(value, dict) and "type" in value:
        for cand in candidates:
            tag = cand.model_fields.get("type")
            if tag is not None and value["type"] in _literal_values(tag.annotation):
                return cand
    return candidates[0] if len(candidates) == 1 else None


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    values: list[Any] = []
    for alt in _unwrap(annotation):
        if typing.get_origin(alt) is typing.Literal:
            values.extend(typing.get_args(alt))
    return tuple(values)


def _annotation_at(model: type[BaseModel] | None, path: Path, data: Any) -> tuple[Any, Any, Any]:
    """(annotation, value, parent value) at `path`, following the data through unions."""
    annotation: Any = model
    value = data
    parent: Any = None
    for part in path:
        if annotation is None:
            return None, None, None
        chosen = _pick_model(annotation, value, parent, None)
        if chosen is not None:
            annotation = chosen
        nxt = _step(annotation, part, None, value)
        parent = value
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value):
            value = value[part]
        else:
            value = None
        annotation = nxt
        if part == "recurrence_config" and isinstance(parent, dict):
            picked = models.RECURRENCE_CONFIGS.get(str(parent.get("recurrence_type")))
            if picked is not None:
                annotation = picked
    return annotation, value, parent


def _fields_at(model: type[BaseModel] | None, path: Path, data: Any) -> list[str]:
    """Keys allowed in the mapping at `path` (for "did you mean" on an unknown key)."""
    annotation, value, parent = _annotation_at(model, path, data)
    if annotation is None:
        return []
    chosen = _pick_model(annotation, value, parent, path[-1] if path else None)
    if chosen is not None:
        return _fields_of(chosen)
    # Undecidable union (e.g. recurrence_config under a misspelt recurrence_type): any member.
    fields: list[str] = []
    for alt in _unwrap(annotation):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            fields.extend(f for f in _fields_of(alt) if f not in fields)
    return fields


def _field_format(model: type[BaseModel] | None, path: Path, data: Any) -> str | None:
    """Words for the string format a field expects ("HH:MM"...), when it has one."""
    annotation, _value, _parent = _annotation_at(model, path, data)
    pattern = _pattern_of(annotation)
    return _FORMATS.get(pattern) if pattern else None


def _pattern_of(annotation: Any) -> str | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        for meta in typing.get_args(annotation)[1:]:
            pattern = getattr(meta, "pattern", None)
            if isinstance(pattern, str):
                return pattern
            for inner in getattr(meta, "metadata", ()) or ():
                pattern = getattr(inner, "pattern", None)
                if isinstance(pattern, str):
                    return pattern
        return _pattern_of(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _pattern_of(arg)
            if found:
                return found
    return None
