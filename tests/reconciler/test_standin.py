"""The stand-in Cloud API: request validation, recording, fault injection and signed webhooks,
exercised over real sockets."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler.channels import OutgoingMessage, WhatsAppCloudChannel
from reconciler.standin import AutoStatuses, Fault, StandIn, Status

TOKEN = "EAAG-standin-test-token-42"
SECRET = "app-secret-for-tests"
TEXT = {"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": "+5511999990001", "type": "text", "text": {"body": "hi"}}


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn(token=TOKEN, seed=7) as standin:
        yield standin


def post(url: str, body: Any, *, token: str | None = TOKEN, method: str = "POST"
         ) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"text": raw.decode()}


def send_url(api: StandIn) -> str:
    return f"{api.base_url}/{api.phone_number_id}/messages"


def to(i: int) -> str:
    return f"+55119999{i:05d}"


def with_to(i: int) -> dict[str, Any]:
    return {**TEXT, "to": to(i)}


@dataclass
class Receiver:
    """A bare webhook receiver that keeps every raw POST."""

    url: str = ""
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.posts]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for b in self.bodies() for e in b["entry"] for c in e["changes"]
                for s in c["value"]["statuses"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with rec.lock:
                rec.posts.append((dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/whatsapp"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


# -- validation -----------------------------------------------------------------------------


def test_accepts_text_with_real_response_shape(api: StandIn) -> None:
    """A valid send answers like the Cloud API with a unique wamid per message."""
    status, first = post(send_url(api), TEXT)
    _, second = post(send_url(api), TEXT)
    assert status == 200
    assert first["messaging_product"] == "whatsapp"
    assert first["contacts"] == [{"input": "+5511999990001", "wa_id": "5511999990001"}]
    assert first["messages"][0]["id"].startswith("wamid.")
    assert first["messages"][0]["id"] != second["messages"][0]["id"]


def test_bad_or_missing_token_is_401_code_190(api: StandIn) -> None:
    """A wrong or absent bearer token is HTTP 401 with error code 190, nothing recorded."""
    for token in ("wrong", None):
        status, body = post(send_url(api), TEXT, token=token)
        assert (status, body["error"]["code"]) == (401, 190)
    assert api.messages == []


def test_unknown_phone_number_id_is_400_code_100(api: StandIn) -> None:
    """A phone number id the stand-in does not own is HTTP 400 with code 100."""
    status, body = post(f"{api.base_url}/999/messages", TEXT)
    assert (status, body["error"]["code"]) == (400, 100)


@pytest.mark.parametrize("body", [
    {k: v for k, v in TEXT.items() if k != "messaging_product"},
    {**TEXT, "to": "not-a-number"},
    {**TEXT, "type": "sticker"},
    {**TEXT, "text": {}},
    {**TEXT, "type": "template", "template": {"name": "promo"}},
    {**TEXT, "type": "template", "template": {"name": "p", "language": {"code": "en"},
                                              "components": [{"type": "body",
                                                              "parameters": [{"text": "x"}]}]}},
    b"{not json",
], ids=["no-product", "bad-to", "bad-type", "no-body", "no-language", "bad-param", "not-json"])
def test_rejects_malformed_bodies_with_code_100(api: StandIn, body: Any) -> None:
    """Bodies the real API would reject get HTTP 400 code 100 and are not recorded."""
    status, answer = post(send_url(api), body)
    assert (status, answer["error"]["code"]) == (400, 100)
    assert api.messages == []


def test_only_post_is_allowed(api: StandIn) -> None:
    """Other methods on the messages endpoint are 405."""
    assert post(send_url(api), TEXT, method="PUT")[0] == 405


# -- recording ------------------------------------------------------------------------------


def test_records_counts_and_duplicates(api: StandIn) -> None:
    """Accepted messages are recorded; the same content to the same user twice is a duplicate,
    whatever the `to` spelling."""
    post(send_url(api), TEXT)
    post(send_url(api), {**TEXT, "to": "5511999990001"})
    post(send_url(api), with_to(2))
    assert api.count_by_recipient() == {"+5511999990001": 2, "+5511999900002": 1}
    assert api.duplicates() == {("+5511999990001", "hi"): 2}
    api.reset()
    assert api.messages == [] and api.duplicates() == {}


# -- faults ---------------------------------------------------------------------------------


def test_fail_next_n_then_recovers(api: StandIn) -> None:
    """An error fault for the next N requests answers that code N times, then stops."""
    api.fail_next(2, code=131000)
    codes = [post(send_url(api), TEXT) for _ in range(3)]
    assert [(s, b.get("error", {}).get("code")) for s, b in codes] == [
        (500, 131000), (500, 131000), (200, None)]
    assert len(api.messages) == 1


def test_recipient_scoped_fault(api: StandIn) -> None:
    """A fault for one recipient leaves the others untouched."""
    api.add_fault(Fault(code=131026, recipient="5511999900002"))
    results = [post(send_url(api), with_to(i))[0] for i in (1, 2, 3, 2)]
    assert results == [200, 400, 200, 400]


def test_probability_faults(api: StandIn) -> None:
    """A fault with probability p hits about p of the requests (seeded)."""
    api.add_fault(Fault(code=131016, probability=0.3))
    failed = sum(post(send_url(api), with_to(i))[0] == 503 for i in range(200))
    assert 30 <= failed <= 90


def test_admin_endpoint_adds_and_clears_faults(api: StandIn) -> None:
    """Faults posted to /_admin/faults apply to sends; DELETE clears them; bad ones are 400."""
    status, _ = post(f"{api.origin}/_admin/faults",
                     {"faults": [{"code": 131048}, {"action": "delay", "latency": 0.01}]})
    assert status == 200
    assert post(send_url(api), TEXT)[1]["error"]["code"] == 131048
    post(f"{api.origin}/_admin/faults", {}, method="DELETE")
    assert post(send_url(api), TEXT)[0] == 200
    assert post(f"{api.origin}/_admin/faults", {"action": "explode"})[0] == 400
    assert post(f"{api.origin}/_admin/faults", {"colour": "red"})[0] == 400


def test_drop_before_and_after_accept(api: StandIn) -> None:
    """`drop` closes the connection without recording; `drop_after_accept` records first."""
    api.add_fault(Fault("drop", times=1))
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        post(send_url(api), TEXT)
    assert api.messages == []
    api.add_fault(Fault("drop_after_accept", times=1))
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        post(send_url(api), TEXT)
    assert len(api.messages) == 1


def test_throughput_cap_yields_130429() -> None:
    """Sending faster than the number's throughput cap is answered with 130429."""
    with StandIn(token=TOKEN, throughput_per_second=20) as api:
        channel = WhatsAppCloudChannel(api.base_url, api.phone_number_id, TOKEN)
        messages = [OutgoingMessage(f"r{i}:n", to(i), "text", text="hi") for i in range(200)]
        results = channel.send_many_sync(messages, concurrency=20)
        recorded = len(api.messages)
    codes = [r.error.code for r in results if r.error is not None]
    accepted = sum(r.ok for r in results)
    assert codes and set(codes) == {"130429"}
    # One second of burst (20) plus the refill while 200 requests go out on a noisy machine.
    assert 20 <= accepted <= 80 and accepted == recorded


def test_pair_rate_yields_131056() -> None:
    """A second message to the same user within the pair-rate interval gets 131056."""
    with StandIn(token=TOKEN, pair_rate_seconds=6) as api:
        first = post(send_url(api), TEXT)
        second = post(send_url(api), TEXT)
        other = post(send_url(api), with_to(2))
    assert first[0] == 200 and second[1]["error"]["code"] == 131056 and other[0] == 200


# -- webhooks -------------------------------------------------------------------------------


def test_signed_status_webhook_shape(api: StandIn, receiver: Receiver) -> None:
    """Status webhooks carry the Cloud API envelope and a valid X-Hub-Signature-256."""
    _, answer = post(send_url(api), TEXT)
    wamid = answer["messages"][0]["id"]
    codes = api.send_statuses(receiver.url, SECRET,
                              [Status(wamid, "delivered", "+5511999990001", timestamp=1700000000)])
    assert codes == [200]
    headers, raw = receiver.posts[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature-256"], expected)
    body = json.loads(raw)
    assert body["object"] == "whatsapp_business_account"
    change = body["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    assert change["value"]["messaging_product"] == "whatsapp"
    assert change["value"]["metadata"] == {"display_phone_number": api.display_phone_number,
                                           "phone_number_id": api.phone_number_id}
    status = change["value"]["statuses"][0]
    assert {k: status[k] for k in ("id", "status", "timestamp", "recipient_id")} == {
        "id": wamid, "status": "delivered", "timestamp": "1700000000",
        "recipient_id": "5511999990001"}


def test_failed_status_carries_errors(api: StandIn, receiver: Receiver) -> None:
    """A failed status has errors with code and title."""
    api.send_statuses(receiver.url, SECRET, [Status.failed("wamid.X", "+5511999990001", 131026)])
    status = receiver.statuses()[0]
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == 131026 and status["errors"][0]["title"]


def test_duplicate_and_shuffle(api: StandIn, receiver: Receiver) -> None:
    """`duplicate` posts every status twice and `shuffle` changes their order."""
    statuses = [Status(f"wamid.{i}", "delivered", to(i)) for i in range(30)]
    api.send_statuses(receiver.url, SECRET, statuses, shuffle=True, duplicate=True)
    ids = [s["id"] for s in receiver.statuses()]
    assert sorted(ids) == sorted([s.id for s in statuses] * 2)
    assert ids != sorted(ids, key=lambda i: int(i.split(".")[1]))


def test_batched_statuses_share_one_envelope(api: StandIn, receiver: Receiver) -> None:
    """`batch` puts all statuses into one signed callback."""
    api.send_statuses(receiver.url, SECRET, [Status("wamid.1", "delivered", to(1)),
                                             Status("wamid.1", "read", to(1))], batch=True)
    assert len(receiver.posts) == 1
    assert [s["status"] for s in receiver.statuses()] == ["delivered", "read"]


def test_auto_statuses_for_every_accepted_message(receiver: Receiver) -> None:
    """Auto mode posts delivered then read, signed, for every accepted message."""
    auto = AutoStatuses(receiver.url, SECRET)
    with StandIn(token=TOKEN, auto_statuses=auto) as api:
        ids = [post(send_url(api), with_to(i))[1]["messages"][0]["id"] for i in range(5)]
        api.drain_statuses()
        assert api.webhook_responses == [200] * 10
    for headers, raw in receiver.posts:
        assert headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(
            SECRET.encode(), raw, hashlib.sha256).hexdigest()
    by_id: dict[str, list[str]] = {}
    for s in receiver.statuses():
        by_id.setdefault(s["id"], []).append(s["status"])
    assert by_id == {i: ["delivered", "read"] for i in ids}


def test_admin_statuses_posts_for_recorded_messages(api: StandIn, receiver: Receiver) -> None:
    """POST /_admin/statuses sends the given statuses for every recorded message."""
    post(send_url(api), TEXT)
    status, answer = post(f"{api.origin}/_admin/statuses",
                          {"url": receiver.url, "app_secret": SECRET, "statuses": ["read"]})
    assert (status, answer["posted"]) == (200, 1)
    assert receiver.statuses()[0]["status"] == "read"


# -- CLI ------------------------------------------------------------------------------------


def test_cli_serves_until_terminated() -> None:
    """`python -m reconciler.standin --port 0` announces its URL and accepts sends."""
    env = {**os.environ, "FLOWSPEC_STANDIN_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.standin", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base_url = line.rsplit(" ", 1)[-1].strip()
        assert base_url.endswith("/v21.0")
        status, body = post(f"{base_url}/1234567890/messages", TEXT)
        assert status == 200 and body["messages"][0]["id"].startswith("wamid.")
        status, listing = post(base_url.rsplit("/", 1)[0] + "/_admin/messages", b"",
                               method="GET")
        assert listing["count"] == 1
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
