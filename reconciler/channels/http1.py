"""HTTP/1.1 POSTs to one origin over a bounded pool of keep-alive connections: the WhatsApp
channel's client.

Why not aiohttp's client, which the channel used first: at a campaign's rate the event-loop
thread that sends is the busiest thread of a worker process, and aiohttp spends 63-72 µs of
CPU per request on machinery a JSON POST to one origin does not use (URL and header objects,
cookie jar, tracing hooks, the redirect loop, per-request timer contexts). This client spends
17-21 µs (measured against the stand-in, 50 connections; docs/decisions.md). Responses are
parsed by httptools, the C parser uvicorn uses, so the part of HTTP that is easy to get wrong
is not written here.

Deliberately small: one origin (scheme, host, port); POST with a `Content-Length` body;
keep-alive (a connection idle for `max_idle` is closed rather than reused: a server that
times it out at the moment we write would leave that request's outcome unknown); TLS through
the standard `ssl` module with certificate checks on; one timeout per request (connecting
counts), enforced by one periodic check per pool rather than a timer per request (a timer
per request was ~4% of the client's CPU, measured), so a request may outlive it by a quarter of
it (at most 0.25 s). No proxies (the aiohttp client ran with `trust_env=False`, so
none either), redirects, cookies or compression. A request is never retried here: whether a
POST that may have arrived is sent again is the engine's decision (SPEC 6.5).

Errors tell the two cases that decision needs apart: `NotConnected` (an OSError) when no
connection could be established, so nothing was sent; after the request was written, a closed
connection or a malformed response raises `ConnectionResetError` and a missing response
`TimeoutError`: the API may have accepted the message.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


class NotConnected(OSError):
    """No connection could be established (refused, DNS, TLS handshake, connect timeout):
    nothing was sent."""


class InvalidURL(ValueError):
    """The origin is not an http(s) URL with a host."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


class Pool:
    """Up to `limit` connections to the origin of `url`; `post` sends to the URL's path.

    Bound to the event loop it is first used on (as any asyncio transport is)."""

    def __init__(self, url: str, *, limit: int, headers: Mapping[str, str], timeout: float,
                 ssl_context: ssl.SSLContext | None = None, max_idle: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidURL(f"not an http(s) URL with a host: {url!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"bad port in {url!r}") from exc
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = port or (443 if self.tls else 80)
        self.limit = max(1, limit)
        self.timeout = timeout
        self.max_idle = max_idle
        # The system's trust store unless told otherwise (a private CA); never unverified.
        self._ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rsplit("@", 1)[-1]  # never send userinfo
        lines = [f"POST {target} HTTP/1.1", f"Host: {authority}",
                 *(f"{name}: {value}" for name, value in headers.items()), "Content-Length: "]
        # Everything before the body but its length: built once, it is most of a request.
        self._head = "\r\n".join(lines).encode("latin-1")
        self._idle: list[_Connection] = []
        self._open = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._busy: set[_Connection] = set()  # a request on the wire: watched for its deadline
        self._tick = max(0.005, min(0.25, timeout / 4))
        self._reaper: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:  # the head holds credentials: never show it
        return f"Pool({'https' if self.tls else 'http'}://{self.host}:{self.port}, limit={self.limit})"

    async def post(self, body: bytes) -> Response:
        conn = await self._acquire()
        loop = asyncio.get_running_loop()
        self._busy.add(conn)
        if self._reaper is None:
            self._reaper = loop.call_later(self._tick, self._reap)
        try:
            response = await conn.request(
                b"%s%d\r\n\r\n%s" % (self._head, len(body), body), loop.time() + self.timeout)
        except BaseException:
            self._busy.discard(conn)
            self._drop(conn)
            raise
        self._busy.discard(conn)
        if conn.reusable and not self._closed:
            conn.idle_since = loop.time()
            self._idle.append(conn)
            self._wake()
        else:
            self._drop(conn)
        return response

    async def close(self) -> None:
        """Close the idle connections; those in use close when their request ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._open -= len(idle)

    def _reap(self) -> None:
        """Fail the requests past their deadline; runs every `_tick` while any is on the wire."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in [c for c in self._busy if c.deadline <= now]:
            conn.expire()
        self._reaper = loop.call_later(self._tick, self._reap) if self._busy else None

    async def _acquire(self) -> _Connection:
        while True:
            while self._idle:
                conn = self._idle.pop()
                fresh = asyncio.get_running_loop().time() - conn.idle_since < self.max_idle
                if conn.reusable and fresh:
                    return conn
                conn.close()
                self._open -= 1  # closed by the server while idle, or idle too long
            if self._open < self.limit:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken but leaving: pass the wake-up on
                raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, conn = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self.tls else None)
        except OSError as exc:  # refused, DNS, TLS (ssl.SSLError), timeout (TimeoutError)
            detail = str(exc) or type(exc).__name__
            raise NotConnected(f"Cannot connect to host {self.host}:{self.port}: {detail}") from exc
        return conn

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; httptools calls the `on_*` methods."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.keep_alive = True
        self.deadline = 0.0  # loop time by which the request in flight must be answered
        self.idle_since = 0.0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    @property
    def reusable(self) -> bool:
        return not self.closed and self.keep_alive

    async def request(self, data: bytes, deadline: float) -> Response:
        """Write the request and wait for its response; `deadline` (loop time) is enforced
        by the pool's `_reap`, which calls `expire`."""
        assert self.transport is not None and self.waiter is None
        self.deadline = deadline
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            return await waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def expire(self) -> None:
        self._fail(TimeoutError("no response within the timeout"))
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: BaseException) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        # A body delimited by the close itself is not accepted: the outcome stays unknown.
        self._fail(ConnectionResetError(
            "the connection closed before the response" + (f": {exc}" if exc else "")))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionResetError(f"malformed HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.abort()

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        response = Response(self.parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body = {}, []
        self.keep_alive = self.parser.should_keep_alive()
        if self.waiter is None or self.waiter.done():
            self.keep_alive = False  # a response nobody asked for: do not trust the stream
            return
        self.waiter.set_result(response)
