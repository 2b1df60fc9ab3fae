"""A stand-in WhatsApp Business Cloud API on 127.0.0.1, for tests, benchmarks and the demo.

It speaks the real request/response/webhook shapes (FACTS.md, "WhatsApp Business Cloud API"),
records every message it accepts so tests can count duplicates, injects the failures that
matter (error codes, latency, dropped connections before *and after* accepting, a throughput
cap) and posts signed status webhooks, shuffled or duplicated on request.

In a test::

    with StandIn(token="t") as api:           # a thread with its own event loop, free port
        channel = WhatsAppCloudChannel(api.base_url, api.phone_number_id, "t")
        api.add_fault(Fault(code=131056, times=1))
        ...
        assert not api.duplicates()

From a shell: `python -m reconciler.standin --port 8089` (admin API under `/_admin/`).

The hot path stays lean (no logging, one lock, no per-request allocation beyond the record) so
the stand-in is never the bottleneck of a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import aiohttp
from aiohttp import web

FaultAction = Literal["error", "delay", "drop", "drop_after_accept"]
StatusName = Literal["sent", "delivered", "read", "failed"]

# Titles only make bodies look real; clients must (and ours do) decide on `code`.
TITLES: Mapping[int, str] = {
    100: "Invalid parameter",
    190: "Access token has expired",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "This message was not delivered to maintain healthy ecosystem engagement",
    131051: "Unsupported message type",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132015: "Template is paused",
    132016: "Template is disabled",
    133010: "Phone number not registered",
}
# HTTP status Meta answers with per code; 400 for everything not listed.
_HTTP_STATUS: Mapping[int, int] = {0: 401, 190: 401, 10: 403, 200: 403, 1: 500, 2: 503,
                                   131000: 500, 131016: 503}
_TO = re.compile(r"\+?[1-9][0-9]{5,14}")


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """A message the stand-in accepted (answered with a wamid)."""

    id: str
    phone_number_id: str
    to: str  # normalised to "+<digits>": "+55..." and "55..." are the same WhatsApp user
    type: str
    body: dict[str, Any]
    received_at: float

    @property
    def content(self) -> str:
        """What the user would see: the text, or the template with its parameters."""
        if self.type == "text":
            return str(self.body["text"]["body"])
        return json.dumps(self.body.get(self.type), sort_keys=True)


@dataclass(slots=True)
class Fault:
    """One injected behaviour, applied to matching requests to the messages endpoint.

    `error` answers `code` (a Graph error body) and/or `http_status` (a plain-text body when
    `code` is None); `delay` only adds `latency` and lets the request proceed; `drop` closes the
    connection without answering; `drop_after_accept` records the message first, then drops:
    the client sees a failure for a message that WAS accepted. Any action waits `latency` s
    first. `times` limits it to the next N matching requests (None: all), `probability` makes
    it random, `recipient` scopes it to one `to`.
    """

    action: FaultAction = "error"
    code: int | None = None
    http_status: int | None = None
    message: str | None = None
    times: int | None = None
    probability: float = 1.0
    recipient: str | None = None
    latency: float = 0.0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def __post_init__(self) -> None:
        if self.action not in ("error", "delay", "drop", "drop_after_accept"):
            raise ValueError(f"unknown fault action {self.action!r}")
        if self.action == "error" and self.code is None and self.http_status is None:
            raise ValueError("an error fault needs code or http_status")
        if self.recipient is not None:
            recipient = _normalise(self.recipient)
            if recipient is None:  # None would silently widen the fault to every recipient
                raise ValueError(f"fault recipient {self.recipient!r} is not a phone number")
            self.recipient = recipient


@dataclass(frozen=True, slots=True)
class Status:
    """One status callback, as in `entry[].changes[].value.statuses[]`."""

    id: str  # the wamid
    status: StatusName
    recipient_id: str
    timestamp: int | None = None  # unix seconds; None: now
    errors: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def failed(cls, message_id: str, recipient_id: str, code: int) -> Status:
        title = TITLES.get(code, "Error")
        error = {"code": code, "title": title, "message": title,
                 "error_data": {"details": title}}
        return cls(message_id, "failed", recipient_id, errors=(error,))

    def to_json(self, *, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "timestamp": str(int(self.timestamp if self.timestamp is not None else now)),
            "recipient_id": self.recipient_id.lstrip("+"),
        }
        if self.status in ("sent", "delivered"):  # as Meta does: receivers must tolerate extras
            out["conversation"] = {"id": "conv-" + hashlib.sha1(self.id.encode()).hexdigest()[:16],
                                   "origin": {"type": "marketing"}}
            out["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "marketing"}
        if self.errors:
            out["errors"] = [dict(e) for e in self.errors]
        return out


@dataclass(frozen=True, slots=True)
class AutoStatuses:
    """Post these statuses for every accepted message, in order, to `url`."""

    url: str
    app_secret: str
    statuses: tuple[StatusName, ...] = ("delivered", "read")


def sign(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` header value for a raw webhook body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class _State:
    """Everything handlers mutate, guarded by one lock (tests read it from another thread)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[RecordedMessage] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    throughput: dict[str, float] = field(default_factory=dict)  # phone id -> messages/s
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    last_to: dict[tuple[str, str], float] = field(default_factory=dict)  # pair-rate memory
    requests: int = 0
    in_flight: int = 0  # requests to the messages endpoint being handled now
    most_in_flight: int = 0


class StandIn:
    def __init__(
        self,
        *,
        token: str = "standin-token",
        phone_number_ids: Sequence[str] = ("1234567890",),
        version: str = "v21.0",
        host: str = "127.0.0.1",
        port: int = 0,
        display_phone_number: str = "15550001234",
        waba_id: str = "100000000000001",
        throughput_per_second: float | None = None,
        pair_rate_seconds: float | None = None,
        auto_statuses: AutoStatuses | None = None,
        seed: int | None = None,
    ) -> None:
        self.version = version
        self.host = host
        self.port = port
        self.phone_number_ids = tuple(phone_number_ids)
        self.display_phone_number = display_phone_number
        self.waba_id = waba_id
        self.pair_rate_seconds = pair_rate_seconds
        self.auto_statuses = auto_statuses
        self.webhook_responses: list[int] = []  # HTTP statuses of auto-status posts
        self._auth = "Bearer " + token
        self._state = _State()
        if throughput_per_second is not None:
            self.set_throughput(throughput_per_second)
        self._random = random.Random(seed)
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4).upper()  # ids stay unique across restarts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._queue: asyncio.Queue[RecordedMessage] | None = None
        self._posters: list[asyncio.Task[None]] = []
        self._client: aiohttp.ClientSession | None = None

    # -- addresses --------------------------------------------------------------------------

    @property
    def phone_number_id(self) -> str:
        return self.phone_number_ids[0]

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a Channel's `api_base_url` should be: includes the version, like Graph's."""
        return f"{self.origin}/{self.version}"

    # -- recorded messages ------------------------------------------------------------------

    @property
    def messages(self) -> list[RecordedMessage]:
        with self._state.lock:
            return list(self._state.messages)

    @property
    def request_count(self) -> int:
        """Requests that reached the messages endpoint, whatever their outcome."""
        return self._state.requests

    def count_by_recipient(self) -> Counter[str]:
        return Counter(m.to for m in self.messages)

    @property
    def most_in_flight(self) -> int:
        """The most requests to the messages endpoint handled at once since the last reset
        (with `latency` faults: how many a client kept in flight)."""
        return self._state.most_in_flight

    def duplicates(self) -> dict[tuple[str, str], int]:
        """(to, content) accepted more than once, with their counts: a user saw it twice."""
        counts = Counter((m.to, m.content) for m in self.messages)
        return {k: n for k, n in counts.items() if n > 1}

    def reset(self) -> None:
        """Forget messages, faults and rate memory (throughput caps stay)."""
        with self._state.lock:
            self._state.messages.clear()
            self._state.faults.clear()
            self._state.buckets.clear()
            self._state.last_to.clear()
            self._state.requests = 0
            self._state.most_in_flight = self._state.in_flight

    # -- faults -----------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._state.lock:
            self._state.faults.append(fault)

    def fail_next(self, n: int, *, code: int | None = None, http_status: int | None = None) -> None:
        self.add_fault(Fault("error", code=code, http_status=http_status, times=n))

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    def set_throughput(self, messages_per_second: float | None, phone_number_id: str | None = None
                       ) -> None:
        """Cap accepted messages per second per number (over it: 130429); None removes it."""
        ids = [phone_number_id] if phone_number_id else list(self.phone_number_ids)
        with self._state.lock:
            for pid in ids:
                self._state.buckets.pop(pid, None)
                if messages_per_second is None:
                    self._state.throughput.pop(pid, None)
                else:
                    self._state.throughput[pid] = float(messages_per_second)

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> StandIn:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"standin-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("stand-in did not start within 10 s")
        if failure:
            raise failure[0]

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def drain_statuses(self, timeout: float = 10.0) -> None:
        """Block until every auto status queued so far has been posted."""
        if self._loop is None or self._queue is None:
            return
        asyncio.run_coroutine_threadsafe(self._queue.join(), self._loop).result(timeout)

    async def serve_forever(self, *, announce: bool = True) -> None:
        """Run in the current event loop until SIGINT/SIGTERM (the CLI)."""
        self._loop = asyncio.get_running_loop()
        await self._startup()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, stop.set)
        if announce:
            print(f"stand-in WhatsApp Cloud API listening on {self.base_url}", flush=True)
        try:
            await stop.wait()
        finally:
            await self._shutdown()

    async def _startup(self) -> None:
        sock = socket.create_server((self.host, self.port), backlog=1024)
        self.port = sock.getsockname()[1]
        # Short shutdown: a test's `with` must not wait on a handler sleeping out a latency fault.
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.2
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=1024).start()
        if self.auto_statuses is not None:
            self._queue = asyncio.Queue()
            self._client = aiohttp.ClientSession()
            self._posters = [asyncio.create_task(self._post_auto()) for _ in range(8)]

    async def _shutdown(self) -> None:
        for task in self._posters:
            task.cancel()
        await asyncio.gather(*self._posters, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers whose client went away (a latency fault past the client's timeout) keep
        # sleeping; end them so the loop closes cleanly.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    # -- HTTP -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/{version}/{phone_number_id}/messages", self._handle_message)
        app.router.add_post("/_admin/faults", self._admin_add_faults)
        app.router.add_delete("/_admin/faults", self._admin_clear_faults)
        app.router.add_post("/_admin/throughput", self._admin_throughput)
        app.router.add_get("/_admin/messages", self._admin_messages)
        app.router.add_post("/_admin/reset", self._admin_reset)
        app.router.add_post("/_admin/statuses", self._admin_statuses)
        app.router.add_post("/_admin/noop", self._admin_noop)
        return app

    async def _handle_message(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        # Counted on the server's own loop thread only: tests read the maximum afterwards.
        state.in_flight += 1
        state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            return await self._handle_message_counted(request)
        finally:
            state.in_flight -= 1

    async def _handle_message_counted(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        to = _normalise(body.get("to")) if isinstance(body, dict) else None
        # Faults come first, before auth and validation: they stand for the network and Meta's
        # side misbehaving, whatever the request. `if state.faults` keeps the common path free.
        fault = self._pick_fault(to) if state.faults else None
        with state.lock:
            state.requests += 1
        if fault is not None:
            if fault.latency > 0:
                await asyncio.sleep(fault.latency)
            if fault.action == "drop":
                return _drop(request)
            if fault.action == "error":
                return _fault_response(fault)
        if request.headers.get("Authorization") != self._auth:
            return _error(190, "Error validating access token: the session is invalid.")
        phone_number_id = request.match_info["phone_number_id"]
        if phone_number_id not in self.phone_number_ids or not request.match_info[
            "version"
        ].startswith("v"):
            return _error(100, f"Unsupported post request. Object with ID '{phone_number_id}' "
                               "does not exist or does not support this operation")
        problem = _validate(body)
        if problem is not None:
            return _error(100, problem)
        assert isinstance(body, dict) and to is not None
        message_id = f"wamid.{self._id_prefix}{next(self._ids):012d}"
        now = time.monotonic()
        record = RecordedMessage(message_id, phone_number_id, to, body["type"], body, time.time())
        with state.lock:
            code = self._limit_locked(phone_number_id, to, now)
            if code is None:
                state.messages.append(record)
        if code is not None:
            return _error(code, TITLES[code])
        if self._queue is not None:
            self._queue.put_nowait(record)
        if fault is not None and fault.action == "drop_after_accept":
            return _drop(request)
        # Formatted by hand: json.dumps of a dict cost about as much as the rest of our handler.
        status = ',"message_status":"accepted"' if body["type"] == "template" else ""
        payload = (
            f'{{"messaging_product":"whatsapp","contacts":[{{"input":{json.dumps(body["to"])},'
            f'"wa_id":"{to[1:]}"}}],"messages":[{{"id":"{message_id}"{status}}}]}}'
        )
        return web.Response(body=payload.encode(), content_type="application/json")

    def _pick_fault(self, to: str | None) -> Fault | None:
        """The first matching terminal fault; `delay` faults on the way add their latency."""
        latency = 0.0
        with self._state.lock:
            for fault in list(self._state.faults):
                if fault.recipient is not None and fault.recipient != to:
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._state.faults.remove(fault)
                if fault.action == "delay":
                    latency += fault.latency
                    continue
                return Fault(fault.action, fault.code, fault.http_status, fault.message,
                             latency=latency + fault.latency)
        return Fault("delay", latency=latency) if latency else None

    def _limit_locked(self, phone_number_id: str, to: str, now: float) -> int | None:
        """Throughput (token bucket, 1 s of burst) then pair rate; the error code or None."""
        state = self._state
        rate = state.throughput.get(phone_number_id)
        if rate is not None:
            bucket = state.buckets.get(phone_number_id)
            if bucket is None:
                bucket = state.buckets[phone_number_id] = _Bucket(rate, now)
            bucket.tokens = min(rate, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens < 1.0:
                return 130429
            bucket.tokens -= 1.0
        if self.pair_rate_seconds is not None:
            key = (phone_number_id, to)
            last = state.last_to.get(key)
            if last is not None and now - last < self.pair_rate_seconds:
                return 131056
            state.last_to[key] = now
        return None

    # -- admin ------------------------------------------------------------------------------

    async def _admin_add_faults(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            items = data.get("faults", [data]) if isinstance(data, dict) else data
            faults = [Fault.from_json(item) for item in items]
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for fault in faults:
            self.add_fault(fault)
        with self._state.lock:
            return web.json_response({"faults": len(self._state.faults)})

    async def _admin_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"faults": 0})

    async def _admin_throughput(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.set_throughput(data.get("messages_per_second"), data.get("phone_number_id"))
        return web.json_response({"throughput": self._state.throughput})

    async def _admin_messages(self, request: web.Request) -> web.Response:
        messages = [asdict(m) for m in self.messages]
        return web.json_response({"count": len(messages), "messages": messages})

    async def _admin_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _admin_statuses(self, request: web.Request) -> web.Response:
        """Post `statuses` (default delivered, read) for every recorded message (the demo)."""
        data = await request.json()
        names = data.get("statuses", ["delivered", "read"])
        statuses = [Status(m.id, s, m.to) for m in self.messages for s in names]
        codes = await self.asend_statuses(
            data["url"], data["app_secret"], statuses,
            shuffle=bool(data.get("shuffle")), duplicate=bool(data.get("duplicate")),
        )
        return web.json_response({"posted": len(codes), "responses": dict(Counter(codes))})

    async def _admin_noop(self, request: web.Request) -> web.Response:
        """The server stack with no handler work: measures the stand-in's own ceiling."""
        await request.read()
        return web.Response(body=b"{}", content_type="application/json")

    # -- webhooks ---------------------------------------------------------------------------

    def webhook_bodies(
        self, statuses: Iterable[Status], *, shuffle: bool = False, duplicate: bool = False,
        batch: bool = False,
    ) -> list[bytes]:
        """Raw webhook bodies: one status per callback as Meta usually sends (all in one if
        `batch`), each twice if `duplicate`, in random order if `shuffle`."""
        items = list(statuses)
        groups = [items] if batch else [[s] for s in items]
        if duplicate:
            groups = [g for g in groups for _ in (0, 1)]
        if shuffle:
            self._random.shuffle(groups)
        now = time.time()
        return [json.dumps(self.envelope(g, now=now)).encode() for g in groups]

    def envelope(self, statuses: Iterable[Status], *, now: float | None = None) -> dict[str, Any]:
        """The Cloud API webhook payload for status updates."""
        at = time.time() if now is None else now
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": self.display_phone_number,
                         "phone_number_id": self.phone_number_id},
            "statuses": [s.to_json(now=at) for s in statuses],
        }
        return {"object": "whatsapp_business_account",
                "entry": [{"id": self.waba_id, "changes": [{"field": "messages", "value": value}]}]}

    def send_statuses(
        self, webhook_url: str, app_secret: str, statuses: Iterable[Status], *,
        shuffle: bool = False, duplicate: bool = False, batch: bool = False, timeout: float = 10.0,
    ) -> list[int]:
        """POST signed status webhooks from the calling thread; the receiver's HTTP statuses."""
        codes = []
        for body in self.webhook_bodies(statuses, shuffle=shuffle, duplicate=duplicate,
                                        batch=batch):
            request = urllib.request.Request(
                webhook_url, data=body, method="POST",
                headers={"Content-Type": "application/json",
                         "X-Hub-Signature-256": sign(body, app_secret)},
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    codes.append(response.status)
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
        return codes

    async def asend_statuses(
        self, webhook_url: str, app_secret: str, statuses: Iterable[Status], *,
        shuffle: bool = False, duplicate: bool = False, batch: bool = False,
    ) -> list[int]:
        """`send_statuses` for callers inside an event loop (e.g. the receiver's own loop)."""
        bodies = self.webhook_bodies(statuses, shuffle=shuffle, duplicate=duplicate, batch=batch)
        async with aiohttp.ClientSession() as session:
            return [await _post_signed(session, webhook_url, app_secret, b) for b in bodies]

    async def _post_auto(self) -> None:
        assert self._queue is not None and self._client is not None
        auto = self.auto_statuses
        assert auto is not None
        while True:
            message = await self._queue.get()
            try:
                for name in auto.statuses:
                    body = json.dumps(self.envelope([Status(message.id, name, message.to)])).encode()
                    try:
                        code = await _post_signed(self._client, auto.url, auto.app_secret, body)
                    except (aiohttp.ClientError, OSError):
                        code = 0  # receiver down: recorded, as Meta would retry later
                    self.webhook_responses.append(code)
            finally:
                self._queue.task_done()


async def _post_signed(session: aiohttp.ClientSession, url: str, secret: str, body: bytes) -> int:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        return response.status


def _normalise(to: object) -> str | None:
    if not isinstance(to, str):
        return None
    digits = to.strip().lstrip("+").replace(" ", "").replace("-", "")
    return "+" + digits if digits.isdigit() else None


def _validate(body: object) -> str | None:
    """What the real API would reject in a send body (code 100), or None."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    if body.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required and must be 'whatsapp'"
    if body.get("recipient_type", "individual") != "individual":
        return "recipient_type must be 'individual'"
    to = body.get("to")
    if not isinstance(to, str) or not _TO.fullmatch(to):
        return "The parameter to must be a phone number: digits with an optional +"
    kind = body.get("type")
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
            return "The parameter text['body'] is required"
        if len(text["body"]) > 4096:
            return "text['body'] is longer than 4096 characters"
        return None
    if kind == "template":
        return _validate_template(body.get("template"))
    return f"Unsupported message type {kind!r} (the stand-in knows text and template)"


def _validate_template(template: object) -> str | None:
    if not isinstance(template, dict) or not isinstance(template.get("name"), str):
        return "The parameter template['name'] is required"
    language = template.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        return "The parameter template['language']['code'] is required"
    components = template.get("components", [])
    if not isinstance(components, list):
        return "template['components'] must be a list"
    for component in components:
        if not isinstance(component, dict) or not isinstance(component.get("type"), str):
            return "each template component needs a type"
        for parameter in component.get("parameters", []):
            if not isinstance(parameter, dict) or parameter.get("type") != "text" or not (
                isinstance(parameter.get("text"), str)
            ):
                return "each parameter must be {'type': 'text', 'text': <string>}"
    return None


def _error(code: int, message: str, http_status: int | None = None) -> web.Response:
    body = {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "A" + secrets.token_hex(10),
        }
    }
    status = http_status or _HTTP_STATUS.get(code, 400)
    return web.Response(status=status, body=json.dumps(body).encode(),
                        content_type="application/json")


def _fault_response(fault: Fault) -> web.Response:
    if fault.code is not None:
        return _error(fault.code, fault.message or TITLES.get(fault.code, "Error"),
                      fault.http_status)
    status = fault.http_status or 500
    # No Graph body: what a proxy or load balancer in front of the API would answer.
    return web.Response(status=status, text=fault.message or f"HTTP {status}")


def _drop(request: web.Request) -> web.Response:
    # Close the socket without a byte of response: the client cannot know the outcome.
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.standin", description=__doc__.split("\n\n")[0] if __doc__
        else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument("--version", default="v21.0", help="API version path segment")
    parser.add_argument("--token-env", default="FLOWSPEC_STANDIN_TOKEN",
                        help="environment variable holding the accepted access token "
                             "(default token 'standin-token' when unset)")
    parser.add_argument("--phone-number-id", action="append", dest="phone_number_ids",
                        help="accepted phone number id (repeatable; default 1234567890)")
    parser.add_argument("--throughput", type=float, help="messages/s per number (over: 130429)")
    parser.add_argument("--pair-rate", type=float, help="seconds between messages to one user "
                                                        "(faster: 131056)")
    parser.add_argument("--webhook-url", help="post delivered/read for every accepted message")
    parser.add_argument("--app-secret-env", default="WA_APP_SECRET",
                        help="environment variable holding the webhook signing secret")
    args = parser.parse_args(argv)
    auto = None
    if args.webhook_url:
        secret = os.environ.get(args.app_secret_env)
        if not secret:
            parser.error(f"--webhook-url needs the app secret in ${args.app_secret_env}")
        auto = AutoStatuses(args.webhook_url, secret)
    standin = StandIn(
        token=os.environ.get(args.token_env) or "standin-token",
        phone_number_ids=args.phone_number_ids or ("1234567890",),
        version=args.version, host=args.host, port=args.port,
        throughput_per_second=args.throughput, pair_rate_seconds=args.pair_rate,
        auto_statuses=auto,
    )
    asyncio.run(standin.serve_forever())
    return 0


if __name__ == "__main__":
    sys.exit(main())
