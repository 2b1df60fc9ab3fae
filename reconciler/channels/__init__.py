"""Channels: where a flow's messages leave the system (SPEC 1.2 "Channel", 6.8).

`open_channel` turns a Channel document's `spec` into a `Channel`. Only the sending keys are read
here; `messages_per_second`, `daily_unique_recipients` (rate limits, SPEC 6.6/6.10) and
`app_secret_env` (webhook signatures, SPEC 6.9) belong to the engine and the webhook service,
which share them across processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowspec.diagnostics import UserError
from reconciler.channels.base import (
    PAIR_RATE_RETRY_AFTER,
    RULES,
    Channel,
    ChannelError,
    ErrorKind,
    OutgoingMessage,
    SendResult,
    classify,
)
from reconciler.channels.outbox import OutboxChannel, outbox_message_id
from reconciler.channels.whatsapp_cloud import (
    DEFAULT_API_BASE_URL,
    WhatsAppCloudChannel,
    message_body,
)

__all__ = [
    "DEFAULT_API_BASE_URL",
    "DEFAULT_OUTBOX_FILE",
    "PAIR_RATE_RETRY_AFTER",
    "RULES",
    "Channel",
    "ChannelError",
    "ErrorKind",
    "OutboxChannel",
    "OutgoingMessage",
    "SendResult",
    "WhatsAppCloudChannel",
    "classify",
    "message_body",
    "open_channel",
    "outbox_message_id",
]

DEFAULT_OUTBOX_FILE = "outbox.jsonl"


def open_channel(
    spec: Mapping[str, Any], *, env: Mapping[str, str], outbox_dir: Path
) -> Channel:
    """Build the channel a Channel document's `spec` describes.

    `env` is passed in (not read from `os.environ`) so callers and tests decide where secrets
    come from. An outbox without `path` writes `outbox_dir/outbox.jsonl`; a relative `path` is
    relative to the working directory, as the example Channel reads ("messages land in
    outbox/main-br.jsonl"), fixed now so a later chdir cannot move it. Raises `UserError` naming
    the environment variable, never its value, when a secret is missing.
    """
    kind = spec.get("type")
    if kind == "outbox":
        path = spec.get("path")
        return OutboxChannel(Path.cwd() / os.fspath(path) if path else outbox_dir / DEFAULT_OUTBOX_FILE)
    if kind == "whatsapp_cloud":
        if "access_token" in spec:
            raise UserError(
                "Channel spec has a literal access_token: put the token in an environment "
                "variable and name it with access_token_env"
            )
        phone_number_id = spec.get("phone_number_id")
        token_env = spec.get("access_token_env")
        if not phone_number_id or not token_env:
            raise UserError("a whatsapp_cloud Channel needs phone_number_id and access_token_env")
        token = env.get(str(token_env), "")
        if not token:
            raise UserError(
                f"environment variable {token_env} is not set or empty: the whatsapp_cloud "
                f"Channel reads its access token from it (access_token_env)"
            )
        return WhatsAppCloudChannel(
            str(spec.get("api_base_url") or DEFAULT_API_BASE_URL), str(phone_number_id), token
        )
    raise UserError(f"unknown Channel type {kind!r}: expected whatsapp_cloud or outbox")
