"""Loaded documents → a typed Config: defaults merged, names indexed, every object located.

This is the schema layer's data half: `validate` adds the semantic checks on top. A document that
fails its model is left out of the Config (its diagnostics say why), so later layers only see
well-typed objects.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from flowspec import models
from flowspec.diagnostics import Diagnostic, Location, error
from flowspec.loader import Document, LoadResult, load_paths, load_sources

M = TypeVar("M", bound=BaseModel)

DEFAULTS_FILE = "flowspec.yaml"


@dataclass(frozen=True)
class Entry(Generic[M]):
    """A typed object and the document it came from (for locations)."""

    model: M
    doc: Document
    # For an Automation: the flowspec.yaml Defaults document that filled missing fields.
    defaults_doc: Document | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the document's data after defaults merge

    @property
    def organization(self) -> str:
        return self.model.metadata.organization  # type: ignore[attr-defined, no-any-return]

    @property
    def name(self) -> str:
        return self.model.metadata.name  # type: ignore[attr-defined, no-any-return]

    @property
    def source(self) -> str:
        return self.doc.file

    def locate(self, path: Sequence[str | int]) -> Location:
        """Location of a field; one that only the defaults gave points into flowspec.yaml."""
        return locate_merged(self.doc, self.defaults_doc, path)


@dataclass
class Config:
    automations: list[Entry[models.Automation]] = field(default_factory=list)
    flows: dict[tuple[str, str], Entry[models.Flow]] = field(default_factory=dict)
    channels: dict[tuple[str, str], Entry[models.Channel]] = field(default_factory=dict)
    audiences: dict[tuple[str, str], Entry[models.Audience]] = field(default_factory=dict)
    defaults: Entry[models.Defaults] | None = None
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def automation_hash(self, entry: Entry[models.Automation]) -> str:
        """Content hash of an automation as it will run: its merged spec and what it references."""
        spec = entry.model.spec
        org = entry.organization
        parts: dict[str, Any] = {"automation": entry.model.model_dump(mode="json")}
        for label, table, name in (
            ("flow", self.flows, spec.flow),
            ("channel", self.channels, spec.whatsapp_number),
            ("audience", self.audiences, spec.audience.audience),
        ):
            ref = table.get((org, name)) if name else None
            parts[label] = ref.model.model_dump(mode="json") if ref else None  # type: ignore[attr-defined]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def load_config(paths: Sequence[str | os.PathLike[str]]) -> Config:
    return build_config(load_paths(paths))


def load_config_sources(sources: Iterable[tuple[str, bytes]]) -> Config:
    return build_config(load_sources(sources))


def build_config(loaded: LoadResult) -> Config:
    config = Config(documents=loaded.documents, diagnostics=list(loaded.diagnostics), files=loaded.files)
    typed: list[tuple[Document, str]] = []
    for doc in loaded.documents:
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if kind == "Defaults":
            if Path(doc.file).name != DEFAULTS_FILE:
                config.diagnostics.append(
                    error(
                        "FS120",
                        f"a Defaults document belongs in {DEFAULTS_FILE} at the config root; "
                        f"move it there",
                        doc.locate(["kind"]),
                    )
                )
                continue
            defaults_entry = _validate(config, doc, models.Defaults, doc.data)
            if defaults_entry is not None:
                if config.defaults is not None:
                    config.diagnostics.append(
                        error("FS121", "only one Defaults document is allowed; merge them", doc.locate(["kind"]))
                    )
                else:
                    config.defaults = defaults_entry
            continue
        typed.append((doc, kind if isinstance(kind, str) else ""))

    defaults_data: dict[str, Any] = {}
    if config.defaults is not None:
        defaults_data = config.defaults.doc.data.get("spec") or {}

    seen: dict[tuple[str, str, str], Document] = {}
    for doc, kind in typed:
        model = models.DOCUMENT_MODELS.get(kind)
        if model is None:
            _unknown_kind(config, doc, kind)
            continue
        data = doc.data
        defaults_doc = None
        if kind == "Automation" and defaults_data and isinstance(data.get("spec"), dict):
            data = {**data, "spec": models.merge_defaults(data["spec"], defaults_data)}
            defaults_doc = config.defaults.doc if config.defaults else None
        typed_entry = _validate(config, doc, model, data, defaults_doc)
        if typed_entry is None:
            continue
        entry: Entry[Any] = typed_entry
        ident = (kind, entry.organization, entry.name)
        if ident in seen:
            first = seen[ident]
            config.diagnostics.append(
                error(
                    "FS201",
                    f"duplicate {kind} '{entry.name}' in organization '{entry.organization}' "
                    f"(first defined at {first.locate(['metadata', 'name'])}); names are unique per "
                    f"organization and kind",
                    doc.locate(["metadata", "name"]),
                )
            )
            continue
        seen[ident] = doc
        key = (entry.organization, entry.name)
        if kind == "Automation":
            config.automations.append(entry)  # type: ignore[arg-type]
        elif kind == "Flow":
            config.flows[key] = entry  # type: ignore[assignment]
        elif kind == "Channel":
            config.channels[key] = entry  # type: ignore[assignment]
        elif kind == "Audience":
            config.audiences[key] = entry  # type: ignore[assignment]
    config.automations.sort(key=lambda e: (e.organization, e.name))
    return config


def _validate(
    config: Config,
    doc: Document,
    model: type[M],
    data: dict[str, Any],
    defaults_doc: Document | None = None,
) -> Entry[M] | None:
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        from flowspec.schema_errors import diagnostics_from_validation_error

        config.diagnostics.extend(
            diagnostics_from_validation_error(
                exc,
                data,
                lambda p: locate_merged(doc, defaults_doc, p),
                locate_key=lambda p: locate_merged(doc, defaults_doc, p, key=True),
                model=model,
            )
        )
        return None
    return Entry(model=instance, doc=doc, defaults_doc=defaults_doc, raw=data)


def _unknown_kind(config: Config, doc: Document, kind: str) -> None:
    from flowspec.suggest import did_you_mean

    if not kind:
        config.diagnostics.append(
            error("FS101", "document has no 'kind'; add kind: Automation | Flow | Channel | Audience | Defaults",
                  doc.locate([]))
        )
        return
    config.diagnostics.append(
        error(
            "FS102",
            f"unknown kind '{kind}'{did_you_mean(kind, models.KINDS)}; "
            f"use one of {', '.join(models.KINDS)}",
            doc.locate(["kind"]),
        )
    )


def locate_merged(
    doc: Document, defaults_doc: Document | None, path: Sequence[str | int], *, key: bool = False
) -> Location:
    """Where `path` is written: in the document, or in flowspec.yaml when only the defaults
    give it; `key=True` points at the key naming the field rather than its value."""
    source = doc
    if (
        defaults_doc is not None
        and not _has_path(doc.data, path)
        and list(path)[:1] == ["spec"]
        and _has_path(defaults_doc.data, path)
    ):
        source = defaults_doc
    return source.locate_key(path) if key else source.locate(path)


def _has_path(data: Any, path: Sequence[str | int]) -> bool:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        if not (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            return False
        node = node[part]
    return True
