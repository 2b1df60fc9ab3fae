"""The channel layer against the stand-in Cloud API over real sockets (no mocks)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowspec.diagnostics import UserError
from reconciler.channels import (
    RULES,
    Channel,
    ChannelError,
    OutboxChannel,
    OutgoingMessage,
    SendResult,
    WhatsAppCloudChannel,
    classify,
    message_body,
    open_channel,
    outbox_message_id,
)
from reconciler.channels.whatsapp_cloud import encode_body
from reconciler.standin import Fault, StandIn

TOKEN = "EAAG-test-token-0123456789abcdef"


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as standin:
        yield standin


def text(i: int = 1, body: str = "Hello") -> OutgoingMessage:
    return OutgoingMessage(f"r{i}:greet", f"+55119999{i:05d}", "text", text=body)


def template(params: tuple[str, ...] = ()) -> OutgoingMessage:
    return OutgoingMessage("r1:promo", "+5511999990001", "template", template="promo_bf",
                           language="pt_BR", params=params)


def send(api: StandIn, messages: Sequence[OutgoingMessage], *, token: str = TOKEN,
         timeout: float = 5.0, concurrency: int = 4) -> list[SendResult]:
    channel = WhatsAppCloudChannel(api.base_url, api.phone_number_id, token, timeout=timeout)
    return channel.send_many_sync(messages, concurrency=concurrency)


def only_error(results: list[SendResult]) -> ChannelError:
    assert len(results) == 1 and not results[0].ok and results[0].error is not None
    return results[0].error


# -- request bodies and results -----------------------------------------------------------


def test_text_body_exact(api: StandIn) -> None:
    """A text message reaches the API as the exact Cloud API text body."""
    send(api, [text(body="Olá {name}")])
    assert api.messages[0].body == {
        "messaging_product": "whatsapp", "recipient_type": "individual",
        "to": "+5511999900001", "type": "text", "text": {"body": "Olá {name}"},
    }


@settings(max_examples=300, deadline=None)
@given(to=st.text(max_size=20), body=st.text(max_size=200))
def test_a_text_body_is_the_compact_json_of_the_cloud_api_body(to: str, body: str) -> None:
    """A text message's bytes, filled in directly, are exactly the compact JSON encoding of
    its Cloud API body, whatever the text holds (quotes, escapes, emoji, control characters)."""
    m = OutgoingMessage("r1:greet", to, "text", text=body)
    assert encode_body(m) == json.dumps(message_body(m), separators=(",", ":")).encode()


def test_template_body_with_params_exact(api: StandIn) -> None:
    """A template with params sends language.code and one body component of text parameters."""
    send(api, [template(("Ana", "20%"))])
    assert api.messages[0].body["template"] == {
        "name": "promo_bf", "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [
            {"type": "text", "text": "Ana"}, {"type": "text", "text": "20%"}]}],
    }
    assert api.messages[0].body["type"] == "template"


def test_template_without_params_omits_components(api: StandIn) -> None:
    """A template without params has no components key at all."""
    send(api, [template()])
    assert api.messages[0].body["template"] == {"name": "promo_bf", "language": {"code": "pt_BR"}}


def test_message_ids_returned_in_input_order(api: StandIn) -> None:
    """Each result carries the wamid the API gave that message, in input order."""
    messages = [text(i) for i in range(40)]
    results = send(api, messages, concurrency=8)
    by_id = {m.id: m.to for m in api.messages}
    assert all(r.ok and r.message_id and r.message_id.startswith("wamid.") for r in results)
    assert [by_id[r.message_id or ""] for r in results] == [m.to for m in messages]


def test_async_send_many_reuses_one_connection_pool(api: StandIn) -> None:
    """Two async batches on one channel share its connection pool and both succeed."""

    async def run() -> tuple[list[SendResult], list[SendResult], bool]:
        channel = WhatsAppCloudChannel(api.base_url, api.phone_number_id, TOKEN)
        first = await channel.send_many([text(1)], concurrency=2)
        pool = channel._pool
        second = await channel.send_many([text(2)], concurrency=2)
        same = pool is channel._pool
        await channel.aclose()
        return first, second, same

    first, second, same = asyncio.run(run())
    assert first[0].ok and second[0].ok and same


def test_channel_classes_satisfy_protocol(tmp_path: Path) -> None:
    """Both channels implement the Channel protocol."""
    assert isinstance(OutboxChannel(tmp_path / "o.jsonl"), Channel)
    assert isinstance(WhatsAppCloudChannel("http://x/v21.0", "1", TOKEN), Channel)


def test_send_is_send_many_of_one(api: StandIn, tmp_path: Path) -> None:
    """`Channel.send` (what the engine's senders call) gives what `send_many` gives for one
    message: the API's id from WhatsApp, the outbox line's id, and a failure value, not an
    exception, for a URL that cannot be used."""

    async def run() -> list[SendResult]:
        cloud = WhatsAppCloudChannel(api.base_url, api.phone_number_id, TOKEN)
        outbox = OutboxChannel(tmp_path / "o.jsonl")
        broken = WhatsAppCloudChannel("ftp://x/v21.0", "1", TOKEN)
        try:
            return [await cloud.send(text(1)), await outbox.send(text(2)),
                    await broken.send(text(3))]
        finally:
            for channel in (cloud, outbox, broken):
                await channel.aclose()

    sent, written, failed = asyncio.run(run())
    assert sent.ok and sent.message_id == api.messages[0].id and len(api.messages) == 1
    line = json.loads((tmp_path / "o.jsonl").read_text())
    assert written.ok and written.message_id == line["id"] and line["to"] == text(2).to
    assert not failed.ok and failed.error is not None and failed.error.code == "invalid_url"


# -- errors ---------------------------------------------------------------------------------


def test_bad_token_is_circuit_190(api: StandIn) -> None:
    """A token the API rejects opens the circuit with code 190."""
    error = only_error(send(api, [text()], token="EAAG-wrong-token-xxxxxxxx"))
    assert (error.code, error.kind) == ("190", "circuit")
    assert api.messages == []


ERROR_CASES: list[tuple[Fault, str, str]] = [
    (Fault(code=130429), "130429", "retryable"),
    (Fault(code=131056), "131056", "pair_rate"),
    (Fault(code=131048), "131048", "circuit"),
    (Fault(code=190), "190", "circuit"),
    (Fault(code=131026), "131026", "permanent"),
    (Fault(code=131047), "131047", "permanent"),
    (Fault(code=132001), "132001", "permanent"),
    (Fault(code=132015), "132015", "permanent"),
    (Fault(http_status=500), "http_500", "retryable"),
    (Fault(http_status=503), "http_503", "retryable"),
    (Fault(http_status=429), "http_429", "retryable"),
    (Fault("delay", latency=4.0), "timeout", "retryable"),
    (Fault("drop"), "connection", "retryable"),
]


@pytest.mark.parametrize(("fault", "code", "kind"), ERROR_CASES, ids=[c[1] for c in ERROR_CASES])
def test_error_classes(api: StandIn, fault: Fault, code: str, kind: str) -> None:
    """Each failure the API can produce maps to its code and kind (SPEC 6.8)."""
    api.add_fault(fault)
    # Only the latency case needs a short timeout. A connect slower than the timeout is a
    # `connection` failure (nothing was sent), and on a loaded CI machine connecting to the
    # in-process stand-in once took longer than 0.3 s: every timeout here leaves that margin.
    error = only_error(send(api, [text()], timeout=1.0 if fault.action == "delay" else 5.0))
    assert (error.code, error.kind) == (code, kind)
    if kind == "pair_rate":
        assert error.retry_after is not None and error.retry_after >= 6


def test_dropped_after_accept_is_retryable_but_was_sent(api: StandIn) -> None:
    """A connection dropped after acceptance looks retryable while the API holds the message:
    a blind retry would send it twice, which is why the engine guards sends with idempotency."""
    api.add_fault(Fault("drop_after_accept", times=1))
    error = only_error(send(api, [text()]))
    assert (error.code, error.kind) == ("connection", "retryable")
    assert len(api.messages) == 1
    send(api, [text()])  # the naive retry
    assert api.duplicates() == {("+5511999900001", "Hello"): 2}


def test_token_never_in_repr_str_or_errors(api: StandIn) -> None:
    """The access token appears in no repr, str or error message, even when echoed back."""
    channel = WhatsAppCloudChannel(api.base_url, api.phone_number_id, TOKEN)
    api.add_fault(Fault(code=100, message=f"Invalid OAuth access token {TOKEN}", times=1))
    api.add_fault(Fault("drop", times=1))
    results = channel.send_many_sync([text(1), text(2)], concurrency=1)
    bad = send(api, [text()], token=TOKEN + "x")
    texts = [repr(channel), str(channel), repr(vars(channel)), *map(repr, results + bad)]
    assert [r.ok for r in results] == [False, False]
    assert not any(TOKEN in t for t in texts)
    assert "<secret>" in repr(results[0].error)


def test_unknown_codes_fall_back_to_http_class() -> None:
    """Unlisted API codes keep their code and take the kind of their HTTP status class."""
    assert classify(400, 999999, None).kind == "permanent"
    assert classify(400, 999999, None).code == "999999"
    assert classify(502, 999999, None).kind == "retryable"
    assert classify(401, None, None) == ChannelError("http_401", "circuit", RULES["http_401"].summary)
    assert classify(418, None, None).kind == "permanent"
    assert classify(200, None, None).code == "bad_response"


def test_exceptions_classify_as_transport_errors() -> None:
    """Timeouts, socket errors and unexpected exceptions get transport codes."""
    assert classify(None, None, TimeoutError()).code == "timeout"
    assert classify(None, None, ConnectionResetError()).code == "connection"
    assert classify(None, None, ValueError("bug")).kind == "permanent"


def test_retry_after_hint_only_lengthens() -> None:
    """A Retry-After hint extends the pair-rate minimum but never shortens it."""
    assert classify(400, 131056, None, retry_after=2).retry_after == 6
    assert classify(400, 131056, None, retry_after=30).retry_after == 30
    assert classify(400, 131026, None, retry_after=30).retry_after is None


def test_every_rule_kind_is_valid() -> None:
    """The table only uses the four kinds the engine understands, and the documented codes."""
    assert {r.kind for r in RULES.values()} == {"retryable", "pair_rate", "permanent", "circuit"}
    for code in ("131049", "132000", "132016", "131051", "100", "131030", "131000", "131016"):
        assert code in RULES


# -- open_channel ---------------------------------------------------------------------------


def test_open_channel_missing_env_names_variable_not_value(tmp_path: Path) -> None:
    """A missing token variable is a UserError naming it, and no other env value leaks."""
    spec = {"type": "whatsapp_cloud", "phone_number_id": "1", "access_token_env": "WA_TOKEN"}
    with pytest.raises(UserError, match="WA_TOKEN") as info:
        open_channel(spec, env={"OTHER": "s3cr3t-value"}, outbox_dir=tmp_path)
    assert "s3cr3t-value" not in str(info.value)


def test_open_channel_whatsapp_sends(api: StandIn, tmp_path: Path) -> None:
    """A whatsapp_cloud spec builds a channel that talks to its api_base_url with the env token."""
    spec = {"type": "whatsapp_cloud", "phone_number_id": api.phone_number_id,
            "access_token_env": "WA_TOKEN", "api_base_url": api.base_url,
            "messages_per_second": 80, "app_secret_env": "WA_APP_SECRET"}
    channel = open_channel(spec, env={"WA_TOKEN": TOKEN}, outbox_dir=tmp_path)
    assert isinstance(channel, WhatsAppCloudChannel)
    assert channel.send_many_sync([text()])[0].ok


def test_open_channel_outbox_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An outbox writes outbox_dir/outbox.jsonl by default; a relative path is from the cwd."""
    monkeypatch.chdir(tmp_path)
    outbox_dir = tmp_path / "state"
    default = open_channel({"type": "outbox"}, env={}, outbox_dir=outbox_dir)
    custom = open_channel({"type": "outbox", "path": "outbox/main-br.jsonl"}, env={},
                          outbox_dir=outbox_dir)
    assert isinstance(default, OutboxChannel) and default.path == outbox_dir / "outbox.jsonl"
    assert isinstance(custom, OutboxChannel)
    assert custom.path == tmp_path / "outbox" / "main-br.jsonl"
    asyncio.run(custom.send_many([text()], concurrency=1))
    asyncio.run(custom.aclose())
    assert len((tmp_path / "outbox" / "main-br.jsonl").read_text().splitlines()) == 1


def test_open_channel_rejects_unknown_type_and_literal_token(tmp_path: Path) -> None:
    """Unknown types and literal tokens are user errors that never echo the token."""
    with pytest.raises(UserError, match="unknown Channel type"):
        open_channel({"type": "sms"}, env={}, outbox_dir=tmp_path)
    with pytest.raises(UserError) as info:
        open_channel({"type": "whatsapp_cloud", "access_token": "lit3ral"}, env={},
                     outbox_dir=tmp_path)
    assert "lit3ral" not in str(info.value)


# -- outbox ---------------------------------------------------------------------------------


def test_outbox_lines_and_deterministic_ids(tmp_path: Path) -> None:
    """Each message is one JSON line with a sha256-derived id and the injected clock's time."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    channel = OutboxChannel(tmp_path / "o.jsonl", clock=lambda: at)
    results = asyncio.run(channel.send_many([text(), template(("Ana",))], concurrency=1))
    asyncio.run(channel.aclose())
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r.message_id for r in results] == [outbox_message_id("r1:greet"),
                                               outbox_message_id("r1:promo")]
    assert lines[0] == {"id": outbox_message_id("r1:greet"), "to": "+5511999900001",
                        "type": "text", "text": "Hello", "idempotency_key": "r1:greet",
                        "sent_at": "2026-01-02T03:04:05Z"}
    assert lines[1]["template"] == "promo_bf" and lines[1]["params"] == ["Ana"]
    assert outbox_message_id("r1:greet").startswith("outbox-") and len(results[0].message_id or "") == 31


def _append_worker(path: str, worker: int, count: int) -> None:
    channel = OutboxChannel(path)

    async def run() -> None:
        for i in range(0, count, 10):  # batches, like a worker's task
            batch = [OutgoingMessage(f"w{worker}-{j}:n", "+5511999990001", "text",
                                     text="x" * 6000) for j in range(i, i + 10)]
            await channel.send_many(batch, concurrency=1)
        await channel.aclose()

    asyncio.run(run())


def test_outbox_concurrent_process_appends_stay_intact(tmp_path: Path) -> None:
    """Lines longer than PIPE_BUF appended by several processes never interleave or get lost."""
    path = str(tmp_path / "o.jsonl")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_worker, args=(path, w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    records: list[dict[str, Any]] = [json.loads(x) for x in Path(path).read_text().splitlines()]
    keys = {r["idempotency_key"] for r in records}
    assert len(records) == 800 and keys == {f"w{w}-{j}:n" for w in range(4) for j in range(200)}
