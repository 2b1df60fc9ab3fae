"""The WhatsApp channel's HTTP/1.1 client against real servers on 127.0.0.1: a scripted
asyncio server for the edges of the protocol (keep-alive, chunked bodies, closes, silence,
garbage) and a TLS server with a throw-away certificate."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.channels import classify
from reconciler.channels.http1 import InvalidURL, NotConnected, Pool
from reconciler.engine.retry import outcome_unknown

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
Reply = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]  # False: close after


@dataclass
class Server:
    """Reads requests one by one per connection and answers with `reply`; counts."""

    reply: Reply
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.reply(len(self.requests), request, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


async def serving(reply: Reply, body: Callable[[Server], Awaitable[None]],
                  ssl_context: ssl.SSLContext | None = None) -> Server:
    server = Server(reply)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        await body(server)
    return server


async def ok(_n: int, _request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    return True


def pool(port: int, *, limit: int = 4, timeout: float = 5.0, scheme: str = "http",
         ssl_context: ssl.SSLContext | None = None) -> Pool:
    return Pool(f"{scheme}://127.0.0.1:{port}/v21.0/123/messages?x=1", limit=limit,
                timeout=timeout, headers={"Authorization": "Bearer secret-token-123"},
                ssl_context=ssl_context)


def test_a_post_carries_its_head_and_body_and_connections_are_kept_alive() -> None:
    """Each POST has the path, Host, headers and Content-Length it should; the response comes
    back whole; twenty POSTs in a row use one connection."""
    got = []

    async def body(server: Server) -> None:
        p = pool(server.port)
        for i in range(20):
            got.append(await p.post(b'{"n":%d}' % i))
        await p.close()

    server = asyncio.run(serving(ok, body))
    assert [(r.status, r.body, r.headers["content-type"]) for r in got] == [
        (200, b'{"ok":true}', "application/json")] * 20
    assert server.connections == 1
    head, _, sent = server.requests[3].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v21.0/123/messages?x=1 HTTP/1.1"
    assert set(lines[1:]) == {f"Host: 127.0.0.1:{server.port}".encode(),
                              b"Authorization: Bearer secret-token-123", b"Content-Length: 7"}
    assert sent == b'{"n":3}'


def test_the_pool_never_opens_more_connections_than_its_limit() -> None:
    """Thirty concurrent POSTs through a pool of three: at most three connections, all answered."""

    async def slow(_n: int, _request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        writer.write(OK)
        return True

    statuses: list[int] = []

    async def body(server: Server) -> None:
        p = pool(server.port, limit=3)
        statuses.extend(r.status for r in await asyncio.gather(*(p.post(b"{}") for _ in range(30))))
        await p.close()

    server = asyncio.run(serving(slow, body))
    assert statuses == [200] * 30 and server.most_open <= 3 and server.connections == 3


def test_chunked_bodies_and_connection_close_are_honoured() -> None:
    """A chunked body is joined; after `Connection: close` the next POST opens a new connection."""

    async def reply(n: int, _request: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"4\r\n{\"a\"\r\n5\r\n:\"b\"}\r\n0\r\n\r\n")
            return True
        writer.write(b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nConnection: close\r\n"
                     b"Content-Length: 2\r\n\r\n{}")
        return False

    got = []

    async def body(server: Server) -> None:
        p = pool(server.port, limit=1)
        got.extend([await p.post(b"1"), await p.post(b"2"), await p.post(b"3")])
        await p.close()

    server = asyncio.run(serving(reply, body))
    assert got[0].body == b'{"a":"b"}'
    assert (got[1].status, got[1].headers["retry-after"]) == (429, "7")
    assert server.connections == 2 and len(server.requests) == 3


def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    """The server drops every connection after one answer: each POST still succeeds, on a
    fresh connection, because a closed idle connection is never written to."""

    async def once(_n: int, _request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(OK)
        return False

    got = []

    async def body(server: Server) -> None:
        p = pool(server.port, limit=1)
        for _ in range(3):
            got.append(await p.post(b"{}"))
            await asyncio.sleep(0.05)  # the close arrives while the connection is idle
        await p.close()

    server = asyncio.run(serving(once, body))
    assert [r.status for r in got] == [200] * 3 and server.connections == 3


def test_a_connection_idle_for_longer_than_max_idle_is_closed_not_reused() -> None:
    """A keep-alive connection unused for `max_idle` seconds is replaced by a fresh one: a
    server timing it out as we write would leave that request's outcome unknown."""
    got = []

    async def body(server: Server) -> None:
        p = Pool(f"http://127.0.0.1:{server.port}/x", limit=1, timeout=5, headers={},
                 max_idle=0.1)
        got.append(await p.post(b"{}"))
        got.append(await p.post(b"{}"))  # at once: the same connection
        await asyncio.sleep(0.2)
        got.append(await p.post(b"{}"))  # idle too long: a new one
        await p.close()

    server = asyncio.run(serving(ok, body))
    assert [r.status for r in got] == [200] * 3 and server.connections == 2


def test_a_refused_connection_is_not_connected_and_nothing_was_sent() -> None:
    """Nobody listening: `NotConnected`, which the engine treats as never sent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def run() -> BaseException:
        try:
            await pool(port).post(b"{}")
        except Exception as exc:  # noqa: BLE001
            return exc
        raise AssertionError("no error")

    exc = asyncio.run(run())
    assert isinstance(exc, NotConnected)
    error = classify(None, None, exc, detail=f"{type(exc).__name__}: {exc}")
    assert error.code == "connection" and not outcome_unknown(error)


@pytest.mark.parametrize(("behaviour", "kind", "code"), [
    ("silent", TimeoutError, "timeout"),
    ("hang_up", ConnectionResetError, "connection"),
    ("garbage", ConnectionResetError, "connection"),
])
def test_a_request_that_went_out_without_a_usable_answer_has_an_unknown_outcome(
    behaviour: str, kind: type[BaseException], code: str
) -> None:
    """No answer in time, the connection closed after the request, or bytes that are not
    HTTP: the request was written, so the API may have it; the connection is not reused."""

    async def reply(n: int, _request: bytes, writer: asyncio.StreamWriter) -> bool:
        if n > 1:
            writer.write(OK)
            return True
        if behaviour == "silent":
            await asyncio.sleep(1.0)
            return False
        if behaviour == "garbage":
            writer.write(b"SPDY/9 ???\r\n\r\n")
            return True
        return False  # hang_up

    outcome: list[object] = []

    async def body(server: Server) -> None:
        p = pool(server.port, limit=1, timeout=0.3)
        try:
            await p.post(b"{}")
        except Exception as exc:  # noqa: BLE001
            outcome.append(exc)
        outcome.append((await p.post(b"{}")).status)
        await p.close()

    server = asyncio.run(serving(reply, body))
    exc, after = outcome
    assert isinstance(exc, kind) and after == 200 and server.connections == 2
    assert isinstance(exc, BaseException)
    error = classify(None, None, exc, detail=f"{type(exc).__name__}: {exc}")
    assert error.code == code and outcome_unknown(error)


def test_urls_without_http_and_a_host_are_refused_and_the_head_never_shows() -> None:
    """Only http(s) URLs with a host; a pool's repr names the origin, never its credentials."""
    for url in ("ftp://example.com/x", "http:///path", "graph.facebook.com/v21.0", "http://h:99999/"):
        with pytest.raises(InvalidURL):
            Pool(url, limit=1, timeout=1, headers={})
    assert "secret" not in repr(pool(1)) and "127.0.0.1:1" in repr(pool(1))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a throw-away certificate)")
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_verifies_the_certificate(certificate: tuple[Path, Path]) -> None:
    """Over https a certificate the trust store does not vouch for is refused (NotConnected,
    nothing sent); with a context that trusts it, the POST goes through."""
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    outcome: list[object] = []

    async def body(server: Server) -> None:
        try:
            await pool(server.port, scheme="https").post(b"{}")
        except Exception as exc:  # noqa: BLE001
            outcome.append(exc)
        p = pool(server.port, scheme="https", ssl_context=trusting)
        outcome.append((await p.post(b"{}")).status)
        await p.close()

    server = asyncio.run(serving(ok, body, ssl_context=server_side))
    refused, status = outcome
    assert isinstance(refused, NotConnected) and "certificate" in str(refused).lower()
    assert status == 200 and len(server.requests) == 1
