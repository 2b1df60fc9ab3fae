"""Status webhooks over a real uvicorn server: signatures, tenancy, ordering, limits, and
statuses that only move forward (SPEC 6.9). Webhooks are posted by the stand-in Cloud API."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import db as dbmod
from reconciler.models import automations, executions, messages, recipients
from reconciler.service import ServerThread, create_app
from reconciler.standin import StandIn, Status, sign
from reconciler.webhooks import MESSAGE_RANK, StatusUpdate, apply_statuses, next_status

NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
ENV = {"ACME_SECRET": "acme-app-secret", "GLOBEX_SECRET": "globex-app-secret",
       "ACME_VERIFY": "acme-verify", "WA_TOKEN": "t"}
ACME_PHONE, GLOBEX_PHONE = "1110001", "2220002"


def channel(organization: str, phone: str, secret_env: str, verify_env: str | None) -> str:
    spec: dict[str, Any] = {"type": "whatsapp_cloud", "phone_number_id": phone,
                            "access_token_env": "WA_TOKEN", "app_secret_env": secret_env}
    if verify_env:
        spec["verify_token_env"] = verify_env
    return json.dumps({"apiVersion": "flowspec/v1", "kind": "Channel",
                       "metadata": {"name": "cloud", "organization": organization}, "spec": spec})


@dataclass
class Harness:
    url: str  # the webhook endpoint
    db_url: str
    engine: sa.Engine
    acme: StandIn  # posts as acme's number, signed with acme's secret
    globex: StandIn

    def message(self, wamid: str, *, organization: str = "acme", status: str = "sent",
                recipient_status: str = "sent", step: int = 0, recipient_id: int | None = None) -> int:
        """A message row (with its automation, execution and recipient); the recipient id."""
        with self.engine.begin() as conn:
            if recipient_id is None:
                recipient_id = _recipient(conn, organization, wamid, recipient_status)
            conn.execute(messages.insert().values(
                organization=organization, recipient_id=recipient_id, step=step, node=f"n{step}",
                channel="cloud", message_id=wamid, status=status, created_at=NOW, updated_at=NOW,
            ))
        return recipient_id

    def status_of(self, wamid: str) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(sa.select(messages.c.status)
                                    .where(messages.c.message_id == wamid)).scalar_one())

    def recipient(self, recipient_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(recipients).where(recipients.c.id == recipient_id)).one()
            return dict(row._mapping)

    def unmatched(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM unmatched_statuses")).scalar_one())

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Every row the webhook path may write, to prove a rejected request wrote nothing."""
        with self.engine.connect() as conn:
            out = [tuple(r) for r in conn.execute(sa.select(messages).order_by(messages.c.id))]
            out += [tuple(r) for r in conn.execute(sa.select(recipients).order_by(recipients.c.id))]
            out += [tuple(r) for r in conn.execute(sa.text("SELECT * FROM unmatched_statuses"))]
            return out

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def _insert(conn: sa.Connection, statement: Any) -> int:
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return int(key[0])


def _recipient(conn: sa.Connection, organization: str, key: str, status: str) -> int:
    automation_id = _insert(conn, automations.insert().values(
        organization=organization, name=f"a-{abs(hash(key)) % 10**9}", source="x.yaml", spec={},
        spec_hash="h", timezone="UTC", is_active=True, is_paused=False,
        created_at=NOW, updated_at=NOW,
    ))
    execution_id = _insert(conn, executions.insert().values(
        organization=organization, automation_id=automation_id, status="running",
        created_at=NOW, updated_at=NOW,
    ))
    return _insert(conn, recipients.insert().values(
        organization=organization, execution_id=execution_id, contact_id="c-1", status=status,
        created_at=NOW, updated_at=NOW,
    ))


def build_app(db_url: str, root: Path, **kwargs: Any) -> Any:
    root.mkdir(exist_ok=True)
    (root / "channels.yaml").write_text("\n---\n".join([
        channel("acme", ACME_PHONE, "ACME_SECRET", "ACME_VERIFY"),
        channel("globex", GLOBEX_PHONE, "GLOBEX_SECRET", None),
    ]))
    return create_app(db_url=db_url, config_paths=[root], env=ENV, **kwargs)


@contextlib.contextmanager
def serving(db_url: str, tmp_path: Path) -> Iterator[Harness]:
    app = build_app(db_url, tmp_path / "config", unmatched_interval=0.1)
    engine = dbmod.create_engine(db_url)
    try:
        with ServerThread(app) as base:
            yield Harness(f"{base}/webhooks/whatsapp", db_url, engine,
                          StandIn(phone_number_ids=(ACME_PHONE,), seed=1),
                          StandIn(phone_number_ids=(GLOBEX_PHONE,), seed=2))
    finally:
        engine.dispose()


@pytest.fixture
def harness(db_url: str, tmp_path: Path) -> Iterator[Harness]:
    """The service on both engines: for behaviour that writes."""
    with serving(db_url, tmp_path) as h:
        yield h


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Harness]:
    """The service on SQLite only: for requests refused before the database is reached,
    where the engine cannot matter (the row snapshot still proves nothing changed)."""
    with serving(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as h:
        yield h


def acme_send(h: Harness, statuses: list[Status], **kwargs: Any) -> list[int]:
    return h.acme.send_statuses(h.url, ENV["ACME_SECRET"], statuses, **kwargs)


# --------------------------------------------------------------------------- happy path


def test_statuses_move_message_and_recipient_forward(harness: Harness) -> None:
    """delivered then read reach the message (with Meta's timestamps) and raise the recipient."""
    rid = harness.message("wamid.A1")
    assert acme_send(harness, [Status("wamid.A1", "delivered", "+5511999990001", timestamp=1767603600),
                               Status("wamid.A1", "read", "+5511999990001", timestamp=1767603660)]) == [200, 200]
    assert harness.status_of("wamid.A1") == "read"
    assert harness.recipient(rid)["status"] == "read"
    with harness.engine.connect() as conn:
        row = conn.execute(sa.select(messages).where(messages.c.message_id == "wamid.A1")).one()
    assert row.delivered_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert row.read_at == datetime(2026, 1, 5, 9, 1, tzinfo=UTC)


def test_reordered_and_duplicated_callbacks_end_at_the_highest_status(harness: Harness) -> None:
    """Shuffled, duplicated callbacks (and `sent` arriving last) leave every message at read:
    a late delivered or sent never lowers it, though its time is recorded."""
    wamids = [f"wamid.R{i}" for i in range(6)]
    for w in wamids:
        harness.message(w)
    statuses = [Status(w, s, "+5511999990001") for w in wamids for s in ("sent", "delivered", "read")]
    codes = acme_send(harness, statuses, shuffle=True, duplicate=True)
    assert codes == [200] * 36
    assert {w: harness.status_of(w) for w in wamids} == {w: "read" for w in wamids}
    late = acme_send(harness, [Status(w, "delivered", "+5511999990001") for w in wamids])
    assert late == [200] * 6
    assert {harness.status_of(w) for w in wamids} == {"read"}
    with harness.engine.connect() as conn:
        stamps = conn.execute(sa.select(messages.c.sent_at, messages.c.delivered_at, messages.c.read_at)
                              .where(messages.c.message_id.in_(wamids))).all()
    # A status that arrives after a later one moves nothing but still records its time.
    assert all(None not in row for row in stamps)


def test_concurrent_callbacks_are_grouped_without_losing_or_lowering(harness: Harness) -> None:
    """Many callbacks at once (the service writes them in shared transactions): each is
    answered 200 after its statuses are stored, and every message ends at read."""
    wamids = [f"wamid.G{i}" for i in range(20)]
    rids = [harness.message(w) for w in wamids]
    statuses = [Status(w, s, "+5511999990001") for w in wamids for s in ("delivered", "read")]
    bodies = harness.acme.webhook_bodies(statuses, shuffle=True, duplicate=True)
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(lambda b: harness.post(
            b, {"X-Hub-Signature-256": sign(b, ENV["ACME_SECRET"])})[0], bodies))
    assert codes == [200] * len(bodies)
    assert {harness.status_of(w) for w in wamids} == {"read"}
    assert {harness.recipient(r)["status"] for r in rids} == {"read"}


def test_replayed_callback_changes_nothing(harness: Harness) -> None:
    """The exact same signed body posted again is accepted (Meta retries) and is a no-op."""
    harness.message("wamid.P1")
    body = harness.acme.webhook_bodies([Status("wamid.P1", "delivered", "+5511999990001")])[0]
    headers = {"X-Hub-Signature-256": sign(body, ENV["ACME_SECRET"])}
    code, first = harness.post(body, headers)
    assert (code, first["applied"]) == (200, 1)
    before = harness.snapshot()
    code, again = harness.post(body, headers)
    assert (code, again["applied"], again["ignored"]) == (200, 0, 1)
    assert harness.snapshot() == before


def test_failed_only_from_sent_and_fails_the_recipient(harness: Harness) -> None:
    """failed moves a sent message to failed with Meta's code and fails its recipient; it is
    final (a late read is ignored); a failed that arrives after delivered is ignored."""
    rid = harness.message("wamid.F1")
    rid2 = harness.message("wamid.F2")
    assert acme_send(harness, [Status.failed("wamid.F1", "+5511999990001", 131026)]) == [200]
    acme_send(harness, [Status("wamid.F1", "read", "+5511999990001")])
    assert harness.status_of("wamid.F1") == "failed"
    recipient = harness.recipient(rid)
    assert (recipient["status"], recipient["error_code"]) == ("failed", "131026")
    acme_send(harness, [Status("wamid.F2", "delivered", "+5511999990002"),
                        Status.failed("wamid.F2", "+5511999990002", 131026)])
    assert harness.status_of("wamid.F2") == "delivered"
    assert harness.recipient(rid2)["status"] == "delivered"


def test_recipient_follows_only_its_latest_send_and_never_leaves_terminal(harness: Harness) -> None:
    """A read of a recipient's first message does not raise it once a later message exists;
    the latest one's does; a completed recipient stays completed; pending/sending recipients
    belong to the engine and are not touched."""
    rid = harness.message("wamid.S0", step=0)
    harness.message("wamid.S1", step=1, recipient_id=rid)
    acme_send(harness, [Status("wamid.S0", "read", "+5511999990001")])
    assert (harness.status_of("wamid.S0"), harness.recipient(rid)["status"]) == ("read", "sent")
    acme_send(harness, [Status("wamid.S1", "delivered", "+5511999990001")])
    assert harness.recipient(rid)["status"] == "delivered"
    done = harness.message("wamid.C1", recipient_status="completed")
    sending = harness.message("wamid.C2", recipient_status="sending")
    acme_send(harness, [Status("wamid.C1", "read", "+1"), Status.failed("wamid.C2", "+1", 131026)])
    assert harness.recipient(done)["status"] == "completed"
    assert harness.recipient(sending)["status"] == "sending"
    assert harness.status_of("wamid.C2") == "failed"


def test_status_before_the_wamid_is_recorded_is_applied_later(harness: Harness) -> None:
    """A callback for a wamid not stored yet is kept, and applied once the sender records it."""
    code, = acme_send(harness, [Status("wamid.E1", "delivered", "+5511999990001")])
    assert code == 200
    rid = harness.message("wamid.E1")
    deadline = time.monotonic() + 20
    while harness.status_of("wamid.E1") != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert harness.status_of("wamid.E1") == "delivered"
    assert harness.recipient(rid)["status"] == "delivered"
    while harness.unmatched() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert harness.unmatched() == 0  # applied, so no longer waiting


# --------------------------------------------------------------------------- rejected


def test_unsigned_or_forged_callbacks_are_rejected_and_change_nothing(gate: Harness) -> None:
    """No signature: 401. Another secret, a tampered body, or a bad header format: 401/403.
    None of them changes a row."""
    gate.message("wamid.X1")
    before = gate.snapshot()
    body = gate.acme.webhook_bodies([Status("wamid.X1", "read", "+5511999990001")])[0]
    good = sign(body, ENV["ACME_SECRET"])
    tampered = body.replace(b"wamid.X1", b"wamid.X2")
    cases = [
        ({}, body, 401),
        ({"X-Hub-Signature-256": "deadbeef"}, body, 401),
        ({"X-Hub-Signature-256": sign(body, "guessed-secret")}, body, 403),
        ({"X-Hub-Signature-256": good}, tampered, 403),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, body, 403),
    ]
    for headers, payload, expected in cases:
        code, _ = gate.post(payload, headers)
        assert code == expected, headers
    assert gate.acme.send_statuses(gate.url, "wrong", [Status("wamid.X1", "read", "+1")]) == [403]
    assert gate.snapshot() == before


def test_cross_organization_wamids_are_never_touched(harness: Harness) -> None:
    """globex's signed callback naming acme's wamid changes nothing of acme's; acme's secret
    cannot speak for globex's number either."""
    acme_rid = harness.message("wamid.ACME", organization="acme")
    globex_rid = harness.message("wamid.GLOBEX", organization="globex")
    codes = harness.globex.send_statuses(harness.url, ENV["GLOBEX_SECRET"],
                                         [Status("wamid.ACME", "read", "+5511999990001")])
    assert codes == [200]
    assert (harness.status_of("wamid.ACME"), harness.recipient(acme_rid)["status"]) == ("sent", "sent")
    # A body claiming globex's number but signed with acme's secret: verified, yet out of scope.
    body = harness.globex.webhook_bodies([Status("wamid.GLOBEX", "read", "+1")])[0]
    code, result = harness.post(body, {"X-Hub-Signature-256": sign(body, ENV["ACME_SECRET"])})
    assert (code, result["applied"], result["ignored"]) == (200, 0, 1)
    assert harness.status_of("wamid.GLOBEX") == "sent"
    # And the rightful owner still can.
    harness.globex.send_statuses(harness.url, ENV["GLOBEX_SECRET"],
                                 [Status("wamid.GLOBEX", "read", "+1")])
    assert (harness.status_of("wamid.GLOBEX"), harness.recipient(globex_rid)["status"]) == ("read", "read")


def test_oversized_body_is_413(gate: Harness) -> None:
    """A body over 1 MiB is refused with 413, with or without Content-Length, signed or not."""
    gate.message("wamid.O1")
    before = gate.snapshot()
    envelope = gate.acme.envelope([Status("wamid.O1", "read", "+1")])
    envelope["padding"] = "x" * (1024 * 1024)
    body = json.dumps(envelope).encode()
    headers = {"X-Hub-Signature-256": sign(body, ENV["ACME_SECRET"]),
               "Content-Type": "application/json"}
    host = urllib.parse.urlsplit(gate.url)
    for chunked in (False, True):
        conn = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=10)
        try:
            if chunked:
                conn.request("POST", host.path, body=iter([body[i:i + 65536] for i in
                                                         range(0, len(body), 65536)]),
                             headers=headers, encode_chunked=True)
            else:
                conn.request("POST", host.path, body=body, headers=headers)
            status = conn.getresponse().status
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail("the server dropped the connection instead of answering 413")
        finally:
            conn.close()
        assert status == 413, chunked
    assert gate.snapshot() == before


MALFORMED = [
    b"{not json", b"[]", b'{"entry": {}}', b'{"entry": [{"changes": [{"value": {"statuses": [{}]}}]}]}',
    b'{"entry": [{"changes": [{"value": {"metadata": {"phone_number_id": "1110001"},'
    b' "statuses": [{"id": "wamid.M1", "status": "read", "timestamp": "soon"}]}}]}]}',
]


def test_malformed_signed_body_is_400(gate: Harness) -> None:
    """Correctly signed but not JSON, or not the Cloud API's shape: 400, nothing changed."""
    gate.message("wamid.M1")
    before = gate.snapshot()
    for body in MALFORMED:
        code, _ = gate.post(body, {"X-Hub-Signature-256": sign(body, ENV["ACME_SECRET"])})
        assert code == 400, body
    assert gate.snapshot() == before


def test_verification_handshake(gate: Harness) -> None:
    """GET echoes hub.challenge for subscribe with a channel's verify token; a wrong token or
    mode is 403, missing parameters 400."""
    def get(**params: str) -> tuple[int, str]:
        url = gate.url + "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    ok = {"hub.mode": "subscribe", "hub.verify_token": "acme-verify", "hub.challenge": "1158201444"}
    assert get(**ok) == (200, "1158201444")
    assert get(**{**ok, "hub.verify_token": "acme-verif"})[0] == 403
    assert get(**{**ok, "hub.mode": "unsubscribe"})[0] == 403
    assert get(**{"hub.mode": "subscribe", "hub.challenge": "1"})[0] == 400


def test_read_only_api_and_health(harness: Harness) -> None:
    """/healthz answers ok; /api/executions/{id} counts recipients and messages by status;
    /api/automations lists automations; an unknown execution is 404."""
    rid = harness.message("wamid.API")
    acme_send(harness, [Status("wamid.API", "read", "+1")])
    base = harness.url.removesuffix("/webhooks/whatsapp")

    def get(path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(base + path, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert get("/healthz")[1]["status"] == "ok"
    execution_id = harness.recipient(rid)["execution_id"]
    code, execution = get(f"/api/executions/{execution_id}")
    assert code == 200
    assert (execution["recipients"], execution["messages"]) == ({"read": 1}, {"read": 1})
    assert execution["organization"] == "acme" and execution["status"] == "running"
    assert get("/api/executions/999999")[0] == 404
    code, listing = get("/api/automations?organization=acme")
    assert code == 200 and [a["organization"] for a in listing["automations"]] == ["acme"]


# --------------------------------------------------------------------------- property

ORDER = ("sending", "sent", "delivered", "read")


def expected_final(events: list[str]) -> str:
    """The documented rule: the highest of sent < delivered < read seen, unless a `failed`
    arrived while the message was still at most `sent`, which is final."""
    state = "sent"
    for e in events:
        if state == "failed":
            break
        if e == "failed":
            if state in ("sending", "sent"):
                state = "failed"
        elif ORDER.index(e) > ORDER.index(state):
            state = e
    return state


@pytest.fixture
def session_factory(db_url: str) -> Iterator[Callable[[], Any]]:
    engine = dbmod.create_engine(db_url)
    yield lambda: dbmod.write_transaction(engine)
    engine.dispose()


_seq = st.lists(st.sampled_from(("sent", "delivered", "read", "failed")), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=_seq, batch=st.booleans())
def test_status_sequences_are_monotonic(session_factory: Callable[[], Any], events: list[str],
                                        batch: bool) -> None:
    """For any sequence of statuses, one at a time or in one batch, a message's status never
    goes down (failed is final and only from sent) and ends at the documented value."""
    wamid = f"wamid.H{time.perf_counter_ns()}"
    with session_factory() as conn:
        rid = _recipient(conn, "acme", wamid, "sent")
        conn.execute(messages.insert().values(
            organization="acme", recipient_id=rid, step=0, node="n", channel="cloud",
            message_id=wamid, status="sent", created_at=NOW, updated_at=NOW))
    seen = ["sent"]
    groups = [events] if batch else [[e] for e in events]
    for group in groups:
        with session_factory() as conn:
            apply_statuses(conn, [StatusUpdate("acme", wamid, e) for e in group], now=NOW)
            seen.append(conn.execute(sa.select(messages.c.status)
                                     .where(messages.c.message_id == wamid)).scalar_one())
    ranks = [MESSAGE_RANK[s] for s in seen]
    assert ranks == sorted(ranks)
    assert seen[-1] == expected_final(events)


@given(current=st.sampled_from(tuple(MESSAGE_RANK)), status=st.sampled_from(("sent", "delivered", "read", "failed")))
def test_next_status_never_lowers(current: str, status: str) -> None:
    """The pure transition never lowers a status and never leaves failed."""
    after = next_status(current, status)
    if after is not None:
        assert MESSAGE_RANK[after] > MESSAGE_RANK[current]
        assert current != "failed"


def test_service_socket_disables_nagle_on_accepted_connections() -> None:
    """Connections accepted on the service's listening socket have TCP_NODELAY, so a response
    written in two parts is not held back for the client's delayed ACK."""
    import socket

    from reconciler.service import listen_socket

    server = listen_socket("127.0.0.1", 0)
    client = socket.create_connection(server.getsockname()[:2])
    accepted, _ = server.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for s in (accepted, client, server):
            s.close()
