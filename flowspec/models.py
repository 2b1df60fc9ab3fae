"""Typed models of every kind of document (SPEC 1.1-1.2): the one place fields are declared.

The JSON Schemas under `schemas/` are generated from these classes (`flowspec schema`), so the
descriptions and examples here are what an editor shows on hover. Dates, times and durations
stay strings as written (they are checked here and given meaning by `flowspec.timeparse` and the
compiler), so a diff or a database row shows exactly what the user wrote.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from flowspec import timeparse

API_VERSION = "flowspec/v1"
KINDS = ("Automation", "Flow", "Channel", "Audience", "Defaults")

SLUG_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")

Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN, max_length=63),
    Field(description="Lowercase slug: letters, digits and '-', at most 63 characters."),
]
DateStr = Annotated[
    str,
    StringConstraints(pattern=timeparse.DATE_PATTERN),
    Field(description="A local date, YYYY-MM-DD.", examples=["2025-12-25"]),
]
WhenStr = Annotated[
    str,
    StringConstraints(pattern=timeparse.WHEN_PATTERN),
    Field(
        description=(
            "A date (YYYY-MM-DD) or datetime (YYYY-MM-DDTHH:MM[:SS]). Local wall-clock time in "
            "execution_timezone unless it ends with Z or an offset such as -03:00."
        ),
        examples=["2025-11-20", "2025-11-24T14:00:00", "2025-11-25T12:00:00Z"],
    ),
]
TimeStr = Annotated[
    str,
    StringConstraints(pattern=timeparse.TIME_PATTERN),
    Field(description='A local time of day, "HH:MM" (24-hour). Quote it in YAML.', examples=["09:00"]),
]
DurationStr = Annotated[
    str,
    StringConstraints(pattern=timeparse.DURATION_PATTERN),
    Field(description="A duration: 500ms, 30s, 5m, 1h, 1h30m, 2d, 1w.", examples=["30s", "1h"]),
]
Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
_DEFAULT_WEEKEND: tuple[Weekday, ...] = ("SAT", "SUN")


class _Model(BaseModel):
    # Unknown keys are errors (with a did-you-mean from validate), never silently ignored.
    # strict: no lax coercion ("yes" -> True, "2" -> 2), so the models accept exactly what the
    # published JSON Schemas accept (SPEC 1: `no`/`on`/`y` are strings, not booleans).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


# --------------------------------------------------------------------------- envelope


class Metadata(_Model):
    name: Slug = Field(description="Name of this document, unique per (organization, kind).")
    organization: Slug = Field(
        "default", description="Tenant that owns this document. Names are unique per organization."
    )
    description: str | None = Field(None, description="Free text shown in plans and the dashboard.")
    labels: dict[str, str] = Field(default_factory=dict, description="String labels, e.g. {team: growth}.")


# --------------------------------------------------------------------------- automation


class Segment(_Model):
    tags: list[str] = Field(
        min_length=1, description="Contacts in the database carrying all of these tags."
    )


class AudienceRef(_Model):
    """Exactly one of the keys."""

    contact_ids: list[str] | None = Field(None, min_length=1, description="Explicit contact ids.")
    audience: Slug | None = Field(None, description="Name of an Audience document.")
    segment: Segment | None = Field(None, description="Contacts carrying all these tags.")

    @model_validator(mode="after")
    def _exactly_one(self) -> AudienceRef:
        given = [k for k in ("contact_ids", "audience", "segment") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "audience needs exactly one of contact_ids, audience, segment"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


Times = Annotated[
    list[TimeStr],
    Field(min_length=1, description='Times of day ("HH:MM"); one occurrence per time. Replaces start_time.'),
]


# Every integer has a ceiling: an unbounded one validates, then overflows a date computation
# or a database BIGINT at apply. 1000 days/weeks/months is beyond any real schedule.
MAX_INTERVAL = 1000

class OnceConfig(_Model):
    type: Literal["once"] | None = None


class DailyConfig(_Model):
    type: Literal["daily"] | None = None
    interval: int = Field(1, ge=1, le=MAX_INTERVAL, description="Every N days, counted from start_date's local date.")
    times: Times | None = None


class WeeklyConfig(_Model):
    type: Literal["weekly"] | None = None
    days: list[Weekday] | None = Field(
        None, min_length=1, description="Weekdays (MON..SUN). Default: start_date's weekday."
    )
    interval: int = Field(1, ge=1, le=MAX_INTERVAL, description="Every N-th week (weeks start on Monday) from start_date's week.")
    times: Times | None = None


class MonthlyConfig(_Model):
    type: Literal["monthly"] | None = None
    day: int | None = Field(
        None,
        ge=-31,
        le=31,
        description="Day of month 1..31, or -1..-31 counted from the month's end. Months without it are skipped.",
    )
    weekday: Weekday | None = Field(None, description="With `week`: e.g. weekday FRI, week -1 = last Friday.")
    week: int | None = Field(None, ge=-1, le=5, description="1..5, or -1 for the last such weekday of the month.")
    interval: int = Field(1, ge=1, le=MAX_INTERVAL, description="Every N months from start_date's month.")
    times: Times | None = None

    @model_validator(mode="after")
    def _day_or_weekday(self) -> MonthlyConfig:
        if self.day == 0:
            raise ValueError("day must be 1..31 or -1..-31, not 0")
        if self.week == 0:
            raise ValueError("week must be 1..5 or -1, not 0")
        if self.day is not None and (self.weekday is not None or self.week is not None):
            raise ValueError("give either day, or weekday with week, not both")
        if (self.weekday is None) != (self.week is None):
            raise ValueError("weekday and week go together (e.g. weekday: FRI, week: -1)")
        return self


class CronConfig(_Model):
    type: Literal["cron"] | None = None
    expression: str = Field(
        description="5-field cron (min hour dom month dow) in local time, or @daily-style alias.",
        examples=["0 9 * * MON-FRI"],
    )
    day_match: Literal["or", "and"] = Field(
        "or", description="How day-of-month and day-of-week combine when both are restricted."
    )


class CustomConfig(_Model):
    type: Literal["custom"] | None = None
    dates: list[WhenStr] = Field(min_length=1, description="Each datetime is one occurrence.")
    times: Times | None = None


RecurrenceType = Literal["once", "daily", "weekly", "monthly", "cron", "custom"]
RECURRENCE_CONFIGS: dict[str, type[_Model]] = {
    "once": OnceConfig,
    "daily": DailyConfig,
    "weekly": WeeklyConfig,
    "monthly": MonthlyConfig,
    "cron": CronConfig,
    "custom": CustomConfig,
}
RecurrenceConfig = OnceConfig | DailyConfig | WeeklyConfig | MonthlyConfig | CronConfig | CustomConfig


class BlackoutRange(_Model):
    start: WhenStr = Field(description="First blocked local date (or datetime).")
    end: WhenStr | None = Field(None, description="Last blocked local date, inclusive. Default: start.")
    reason: str | None = Field(None, description="Shown as the skip detail in plans.")


def _under(step: str, err: ErrorDetails) -> InitErrorDetails:
    """An error of a nested validation, re-rooted one step lower."""
    out: InitErrorDetails = {"type": err["type"], "loc": (step, *err["loc"]), "input": err["input"]}
    if "ctx" in err:
        out["ctx"] = err["ctx"]
    return out


class Schedule(_Model):
    recurrence_type: RecurrenceType = Field(description="once | daily | weekly | monthly | cron | custom.")
    recurrence_config: RecurrenceConfig = Field(
        default_factory=OnceConfig, description="Keys depend on recurrence_type (SPEC 1.1 table)."
    )
    start_date: WhenStr | None = Field(
        None, description="First possible occurrence; a date alone means 00:00 local."
    )
    start_time: TimeStr | None = Field(None, description="Local time of day for once/daily/weekly/monthly.")
    end_date: WhenStr | None = Field(None, description="Last possible occurrence; a date alone means the whole day.")
    execution_timezone: str = Field("UTC", description="IANA timezone name.", examples=["America/Sao_Paulo"])
    execution_window_start: TimeStr | None = Field(None, description="Window opening (local). Both or neither.")
    execution_window_end: TimeStr | None = Field(
        None, description="Window end (local, exclusive). Before the start: the window spans midnight."
    )
    outside_window: Literal["defer", "skip"] = Field(
        "defer", description="defer: move to the next window opening; skip: drop the occurrence."
    )
    blackout_dates: list[DateStr | BlackoutRange] = Field(
        default_factory=list, description="Local dates or {start, end, reason} ranges with no sends."
    )
    skip_weekends: bool = Field(False, description="Block weekend_days.")
    weekend_days: list[Weekday] = Field(
        default_factory=lambda: list(_DEFAULT_WEEKEND), min_length=1, description="Days that count as weekend."
    )
    skip_holidays: bool = Field(False, description="Block public holidays (observed days included).")
    holiday_country: str | None = Field(
        None,
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2. Default: inferred from execution_timezone.",
        examples=["BR"],
    )
    holiday_subdivision: str | None = Field(None, description="Subdivision code, e.g. SP.", examples=["SP"])
    extra_holidays: list[DateStr] = Field(default_factory=list, description="Extra local dates treated as holidays.")
    on_blocked_day: Literal["skip", "next_allowed"] = Field(
        "skip", description="skip the occurrence, or move it to the same time on the next allowed day."
    )
    dst_gap: Literal["shift_forward", "skip"] = Field(
        "shift_forward", description="A local time that does not exist: shift by the gap, or skip."
    )
    dst_overlap: Literal["first", "last", "both"] = Field(
        "first", description="A local time that occurs twice: first instance, last, or both."
    )
    is_active: bool = Field(True, description="false: nothing is scheduled.")
    is_paused: bool = Field(False, description="true: occurrences are computed but not run.")

    @model_validator(mode="before")
    @classmethod
    def _typed_config(cls, data: Any) -> Any:
        # Validate recurrence_config against the model its recurrence_type names, so errors say
        # "recurrence_config.days" rather than six union branches' worth of noise.
        if isinstance(data, dict):
            rtype = data.get("recurrence_type")
            config = data.get("recurrence_config", {})
            model = RECURRENCE_CONFIGS.get(rtype) if isinstance(rtype, str) else None
            if model is not None and isinstance(config, dict):
                if "type" in config and config["type"] != rtype:
                    raise ValueError(
                        f"recurrence_config.type '{config['type']}' must equal recurrence_type '{rtype}'"
                    )
                try:
                    typed = model.model_validate(config)
                except ValidationError as exc:
                    # A ValidationError raised here is reported at `schedule`; put the
                    # recurrence_config step back so each error points at its own node.
                    raise ValidationError.from_exception_data(
                        exc.title, [_under("recurrence_config", e) for e in exc.errors()]
                    ) from None
                return {**data, "recurrence_config": typed}
        return data

    @model_validator(mode="after")
    def _window_pair(self) -> Schedule:
        if (self.execution_window_start is None) != (self.execution_window_end is None):
            raise ValueError("execution_window_start and execution_window_end go together: give both or neither")
        return self



DELIVERY_KEYS = (
    "rate_limit_per_hour",
    "max_concurrent_executions",
    "retry",
    "catchup_window",
    "overlap_policy",
    "delivery_guarantee",
)


class ScheduleException(_Model):
    name: Slug | None = Field(None, description="Optional stable id, unique within the automation.")
    exception_type: Literal["skip", "reschedule", "modify"]
    start_date: WhenStr = Field(
        description="A date alone: that whole local day; a datetime: that instant (reschedule: the occurrence's time)."
    )
    end_date: WhenStr | None = Field(None, description="Inclusive end of the range; a date alone means the whole day.")
    reason: str | None = Field(None, description="Shown in plans as the detail.")
    rescheduled_to: WhenStr | None = Field(None, description="reschedule only: the new time.")
    modified_config: dict[str, Any] | None = Field(
        None, description="modify only: delivery settings in force for matching occurrences."
    )

    @model_validator(mode="after")
    def _type_fields(self) -> ScheduleException:
        t = self.exception_type
        if t == "reschedule" and self.rescheduled_to is None:
            raise ValueError("a reschedule exception needs rescheduled_to")
        if t != "reschedule" and self.rescheduled_to is not None:
            raise ValueError(f"rescheduled_to belongs to reschedule exceptions, not {t}")
        if t == "modify" and not self.modified_config:
            raise ValueError("a modify exception needs modified_config")
        if t != "modify" and self.modified_config is not None:
            raise ValueError(f"modified_config belongs to modify exceptions, not {t}")
        return self


class Retry(_Model):
    max_attempts: int = Field(5, ge=1, le=100, description="Attempts per recipient, the first included.")
    initial_delay: DurationStr = Field("30s", description="Delay before the second attempt.")
    max_delay: DurationStr = Field("1h", description="Cap on any delay.")
    multiplier: float = Field(2.0, ge=1.0, le=100.0, description="Growth factor between attempts.")
    jitter: Literal["full", "equal", "none"] = Field("full", description="Randomisation of delays.")


class Delivery(_Model):
    rate_limit_per_hour: int | None = Field(
        None, ge=1, le=10_000_000, description="Messages per hour for this automation, across all workers. Default: no limit."
    )
    max_concurrent_executions: int = Field(
        50, ge=1, le=100_000, description="Recipients in flight at once for one execution."
    )
    retry: Retry = Field(default_factory=Retry)
    catchup_window: DurationStr = Field("1h", description="How late a due occurrence may still start.")
    overlap_policy: Literal["skip", "queue", "allow"] = Field(
        "skip", description="A run due while the previous one of this automation is still running."
    )
    delivery_guarantee: Literal["at_most_once", "at_least_once"] = Field(
        "at_most_once", description="After a crash mid-send: never re-send (unknown) or re-send."
    )


VariableValue = str | int | float | bool


class AutomationSpec(_Model):
    flow: Slug = Field(description="Name of a Flow in the same organization.")
    whatsapp_number: Slug = Field(description="Name of a Channel in the same organization.")
    audience: AudienceRef
    variable_mapping: dict[str, VariableValue] = Field(
        default_factory=dict, description="Values for the flow's variables; may use {{contact.<field>}}."
    )
    schedule: Schedule
    exceptions: list[ScheduleException] = Field(default_factory=list)
    delivery: Delivery = Field(default_factory=Delivery)


# --------------------------------------------------------------------------- flow


class _Node(_Model):
    pass


class SendTextNode(_Node):
    type: Literal["send_text"]
    text: str = Field(description="Message body; may use {{variable}} and {{contact.<field>}}.")
    next: str = Field(description="Name of the next node.")


class SendTemplateNode(_Node):
    type: Literal["send_template"]
    template: str = Field(description="Approved template name.")
    language: str = Field(description="Template language code, e.g. pt_BR.", examples=["pt_BR"])
    params: list[str] = Field(default_factory=list, description="Body parameters, in order.")
    next: str


class WaitNode(_Node):
    type: Literal["wait"]
    duration: DurationStr
    next: str


class Condition(_Model):
    field: str = Field(description="contact.<field> or a flow variable.", examples=["contact.city"])
    op: Literal["eq", "ne", "in", "not_in", "exists", "contains"] = "eq"
    value: Any = Field(None, description="Compared value (a list for in / not_in).")


class ConditionNode(_Node):
    type: Literal["condition"]
    if_: Condition = Field(alias="if")
    then: str
    else_: str = Field(alias="else")


class EndNode(_Node):
    type: Literal["end"]


FlowNode = Annotated[
    SendTextNode | SendTemplateNode | WaitNode | ConditionNode | EndNode, Field(discriminator="type")
]


class FlowSpec(_Model):
    variables: list[str] = Field(default_factory=list, description="Variables an Automation must map.")
    start: str = Field(description="Name of the first node.")
    nodes: dict[str, FlowNode] = Field(min_length=1)


# --------------------------------------------------------------------------- channel, audience


class ChannelSpec(_Model):
    type: Literal["whatsapp_cloud", "outbox"]
    phone_number_id: str | None = Field(None, description="whatsapp_cloud: the sender's phone number id.")
    access_token_env: str | None = Field(
        None, description="Name of the environment variable holding the access token (never the token)."
    )
    api_base_url: str = Field("https://graph.facebook.com/v21.0", description="API base, with version.")
    messages_per_second: int = Field(80, ge=1, le=10_000, description="Throughput limit of this number, shared by all automations.")
    app_secret_env: str | None = Field(None, description="Env var with the app secret that signs status webhooks.")
    verify_token_env: str | None = Field(None, description="Env var with the webhook verification token.")
    daily_unique_recipients: int | None = Field(
        None, ge=1, le=1_000_000_000, description="Messaging limit: unique recipients per moving 24 hours."
    )
    path: str | None = Field(None, description="outbox: file the messages are written to.")


class AudienceSpec(_Model):
    contact_ids: list[str] | None = Field(None, min_length=1)
    segment: Segment | None = None
    file: str | None = Field(None, description="CSV with a header; column id required, phone in E.164.")

    @model_validator(mode="after")
    def _exactly_one(self) -> AudienceSpec:
        given = [k for k in ("contact_ids", "segment", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an Audience needs exactly one of contact_ids, segment, file")
        return self


# --------------------------------------------------------------------------- defaults


def _partial(model: type[_Model], name: str) -> type[_Model]:
    """The same fields, all optional: what flowspec.yaml may give as defaults."""
    from pydantic import create_model

    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        annotation: Any = info.annotation
        if info.metadata:
            # Keep the field's own constraints (ge=1, a duration pattern): a default must be
            # as valid as the value it stands for.
            annotation = Annotated[(annotation, *info.metadata)]
        fields[field_name] = (annotation | None, Field(None, description=info.description))
    partial: type[_Model] = create_model(name, __base__=_Model, **fields)
    return partial


ScheduleDefaults = _partial(Schedule, "ScheduleDefaults")
DeliveryDefaults = _partial(Delivery, "DeliveryDefaults")


class DefaultsSpec(_Model):
    schedule: ScheduleDefaults = Field(default_factory=ScheduleDefaults)  # type: ignore[valid-type]
    delivery: DeliveryDefaults = Field(default_factory=DeliveryDefaults)  # type: ignore[valid-type]


# --------------------------------------------------------------------------- documents


class _Document(_Model):
    apiVersion: Literal["flowspec/v1"] = Field(description="Always flowspec/v1.")
    metadata: Metadata


class Automation(_Document):
    """Send a Flow to an Audience on a schedule."""

    kind: Literal["Automation"]
    spec: AutomationSpec


class Flow(_Document):
    """What one recipient goes through."""

    kind: Literal["Flow"]
    spec: FlowSpec


class Channel(_Document):
    """A WhatsApp number (or the outbox file) messages are sent from."""

    kind: Literal["Channel"]
    spec: ChannelSpec


class Audience(_Document):
    """A named set of contacts."""

    kind: Literal["Audience"]
    spec: AudienceSpec


class Defaults(_Document):
    """flowspec.yaml: default schedule and delivery values for every Automation."""

    kind: Literal["Defaults"]
    spec: DefaultsSpec


DOCUMENT_MODELS: dict[str, type[_Document]] = {
    "Automation": Automation,
    "Flow": Flow,
    "Channel": Channel,
    "Audience": Audience,
    "Defaults": Defaults,
}
AnyDocument = Automation | Flow | Channel | Audience | Defaults


def merge_defaults(spec: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """An Automation spec with flowspec.yaml defaults under it: its own values win, maps merge."""
    merged = dict(spec)
    for section in ("schedule", "delivery"):
        base = defaults.get(section)
        if isinstance(base, dict):
            own = spec.get(section)
            merged[section] = _deep_merge(base, own) if isinstance(own, dict) else own if own is not None else base
    return merged


def _deep_merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
