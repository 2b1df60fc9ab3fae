"""What one execution runs, frozen on its row (`executions.plan`).

Dispatch freezes the Automation as applied (the database row, SPEC rule 2), the occurrence's
`modify` overrides and the manual-trigger options; fan-out adds the Flow and the Channel from
the config. Every later work pass, on any machine, reads this snapshot and nothing else, so an
execution runs one flow from start to end even when the files change while it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flowspec import models
from reconciler.engine.window import SendWindow


def effective_delivery(delivery: Mapping[str, Any], overrides: Mapping[str, Any]) -> models.Delivery:
    """The automation's delivery settings with the occurrence's `modify` overrides on top
    (`retry` merges key by key, as overlapping modify exceptions do)."""
    merged = dict(delivery)
    for key, value in overrides.items():
        if key not in models.DELIVERY_KEYS:
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return models.Delivery.model_validate(merged)


@dataclass(frozen=True)
class RunPlan:
    data: Mapping[str, Any]

    @cached_property
    def automation(self) -> models.Automation:
        return models.Automation.model_validate(self.data["automation"])

    @property
    def organization(self) -> str:
        return self.automation.metadata.organization

    @property
    def name(self) -> str:
        return self.automation.metadata.name

    @property
    def channel_name(self) -> str:
        return self.automation.spec.whatsapp_number

    @property
    def overrides(self) -> Mapping[str, Any]:
        return self.data.get("overrides") or {}

    @property
    def ignore_window(self) -> bool:
        return bool(self.data.get("ignore_window"))

    @cached_property
    def delivery(self) -> models.Delivery:
        return effective_delivery(
            self.automation.spec.delivery.model_dump(mode="json"), self.overrides
        )

    @property
    def variable_mapping(self) -> Mapping[str, Any]:
        return self.automation.spec.variable_mapping

    @property
    def fanned_out(self) -> bool:
        return "flow" in self.data and "channel" in self.data

    @cached_property
    def flow(self) -> models.FlowSpec:
        return models.FlowSpec.model_validate(self.data["flow"])

    @cached_property
    def channel(self) -> models.ChannelSpec:
        return models.ChannelSpec.model_validate(self.data["channel"])

    @property
    def channel_spec(self) -> Mapping[str, Any]:
        return dict(self.data["channel"])

    @cached_property
    def window(self) -> SendWindow | None:
        if self.ignore_window:
            return None
        window = SendWindow(self.automation, self.data["automation"])
        return window if window.constrained else None


def dispatch_plan(
    automation_doc: Mapping[str, Any], overrides: Mapping[str, Any], *, key: str,
    ignore_window: bool = False,
) -> dict[str, Any]:
    return {
        "automation": dict(automation_doc),
        "overrides": dict(overrides or {}),
        "key": key,
        "ignore_window": ignore_window,
    }


def with_flow_and_channel(
    plan: Mapping[str, Any], flow: models.FlowSpec, channel: models.ChannelSpec
) -> dict[str, Any]:
    # by_alias: a condition node's `if`/`else` must read back under the names the model parses.
    return {
        **plan,
        "flow": flow.model_dump(mode="json", by_alias=True, exclude_none=True),
        "channel": channel.model_dump(mode="json", exclude_none=True),
    }
