"""The service's HTTP app (Starlette, served by uvicorn): webhooks, read-only API, health.

`create_app` returns a plain Starlette app; `base_routes()` is its route list, and callers add theirs
with `create_app(..., routes=[...])` (metrics, dashboard). The database is synchronous
SQLAlchemy, so handlers run their queries in the thread pool and the event loop only moves
bytes. Webhook statuses that arrive before their message's wamid is recorded are retried by a
background loop every `UNMATCHED_INTERVAL` seconds (reconciler.webhooks.apply_unmatched).

Endpoints:

    GET  /webhooks/whatsapp     verification handshake (hub.mode, hub.verify_token, hub.challenge)
    POST /webhooks/whatsapp     signed status callbacks (reconciler.webhooks)
    GET  /healthz               200 when the database answers, else 503
    GET  /api/automations       automations with schedule and aggregate stats (?organization=)
    GET  /api/executions/{id}   one execution with recipient and message status counts
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from flowspec.config import Config, load_config
from reconciler import db as dbmod
from reconciler import webhooks
from reconciler.models import automations, executions, messages, recipients, unmatched_statuses

log = logging.getLogger("flowspec.service")
UNMATCHED_INTERVAL = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Service:
    """What handlers share: the database, the webhook keys of the loaded config, a clock."""

    database: dbmod.Database
    settings: webhooks.WebhookSettings
    now: Callable[[], datetime] = _utcnow
    writer: StatusWriter = field(init=False)

    def __post_init__(self) -> None:
        self.writer = StatusWriter(self)

    def set_config(self, config: Config, env: Mapping[str, str]) -> None:
        """Swap in a re-loaded config (the serve loop calls this when files change)."""
        self.settings = webhooks.WebhookSettings.from_config(config, env)
        for problem in self.settings.problems:
            log.warning("%s", problem)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


# --------------------------------------------------------------------------- webhooks


async def webhook_verify(request: Request) -> Response:
    params = request.query_params
    mode, token, challenge = (params.get("hub.mode"), params.get("hub.verify_token"),
                              params.get("hub.challenge"))
    if mode is None or token is None or challenge is None:
        return PlainTextResponse("hub.mode, hub.verify_token and hub.challenge are required",
                                 status_code=400)
    if mode != "subscribe" or not service_of(request).settings.verify_token_matches(token):
        return PlainTextResponse("verification failed", status_code=403)
    return PlainTextResponse(challenge)


async def webhook_receive(request: Request) -> Response:
    service = service_of(request)
    try:
        body = await read_limited(request, webhooks.MAX_BODY)
        secrets = service.settings.verify(body, request.headers.get(webhooks.SIGNATURE_HEADER))
        parsed = webhooks.parse_payload(body)
    except webhooks.WebhookError as exc:
        return JSONResponse({"error": exc.reason}, status_code=exc.status)
    updates, dropped = webhooks.scope(parsed, service.settings, secrets)
    result = webhooks.ApplyResult(outcomes=["ignored"] * dropped)
    if updates:
        try:
            result.add(await service.writer.submit(updates))
        except sa.exc.DBAPIError as exc:
            # Not acknowledged, so Meta delivers it again later; nothing was committed.
            log.warning("webhook statuses not stored: %s",
                        dbmod.describe_error(exc, service.database.url))
            return JSONResponse({"error": "database unavailable"}, status_code=503)
    return JSONResponse(result.to_json())


class StatusWriter:
    """One writer per process that applies the statuses of every callback waiting at that
    moment in ONE transaction, then answers each callback with its own outcomes.

    Meta sends about one status per callback; one transaction each would make the commit (a
    disk flush) the cost of every status, and on SQLite every callback would queue for the
    single write lock anyway. Callbacks that arrive while a transaction runs form the next
    group, so there is no added delay when traffic is light. A callback is answered only after
    its group committed; if a group fails, its callbacks are retried one by one so one bad
    callback cannot fail the others.
    """

    def __init__(self, service: Service, *, max_statuses: int = 5000, writers: int | None = None
                 ) -> None:
        self._service = service
        self._max = max_statuses
        # PostgreSQL: a few transactions in flight overlap one's commit flush with the next
        # one's work (and the server merges their flushes). SQLite has one write lock: one.
        self._writers = writers or (1 if service.database.is_sqlite else 4)
        self._queue: asyncio.Queue[tuple[list[webhooks.StatusUpdate],
                                         asyncio.Future[webhooks.ApplyResult]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, updates: list[webhooks.StatusUpdate]) -> webhooks.ApplyResult:
        if self._queue is None or any(t.done() for t in self._tasks):
            await self.aclose()
            self._queue = asyncio.Queue()
            self._tasks = [asyncio.create_task(self._run(self._queue))
                           for _ in range(self._writers)]
        future: asyncio.Future[webhooks.ApplyResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((updates, future))
        return await future

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self, queue: asyncio.Queue[tuple[list[webhooks.StatusUpdate],
                                                    asyncio.Future[webhooks.ApplyResult]]]) -> None:
        while True:
            group = [await queue.get()]
            size = len(group[0][0])
            while size < self._max and not queue.empty():
                item = queue.get_nowait()
                group.append(item)
                size += len(item[0])
            try:
                combined = await run_in_threadpool(
                    self._write, [u for updates, _ in group for u in updates])
            except Exception:
                for updates, future in group:
                    await self._write_alone(updates, future)
                continue
            start = 0
            for updates, future in group:
                part = webhooks.ApplyResult(combined.outcomes[start:start + len(updates)])
                start += len(updates)
                if not future.done():
                    future.set_result(part)

    async def _write_alone(self, updates: list[webhooks.StatusUpdate],
                           future: asyncio.Future[webhooks.ApplyResult]) -> None:
        try:
            result = await run_in_threadpool(self._write, updates)
        except Exception as exc:  # handed to the waiting request, which answers 503 or 500
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)

    def _write(self, updates: list[webhooks.StatusUpdate]) -> webhooks.ApplyResult:
        with dbmod.write_transaction(self._service.database.engine) as conn:
            return webhooks.apply_statuses(conn, updates, now=self._service.now())


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or WebhookError(413) as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise webhooks.WebhookError(413, f"body larger than {limit} bytes")
        except ValueError:
            raise webhooks.WebhookError(400, "bad Content-Length") from None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise webhooks.WebhookError(413, f"body larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


# --------------------------------------------------------------------------- read-only API


async def healthz(request: Request) -> Response:
    service = service_of(request)

    def check() -> str | None:
        with service.database.engine.connect() as conn:
            return dbmod.current_revision(conn)

    try:
        revision = await run_in_threadpool(check)
    except sa.exc.DBAPIError as exc:
        return JSONResponse({"status": "error", "database": dbmod.describe_error(
            exc, service.database.url)}, status_code=503)
    return JSONResponse({"status": "ok", "schema": revision})


async def api_automations(request: Request) -> Response:
    service = service_of(request)
    organization = request.query_params.get("organization")

    def query() -> list[dict[str, Any]]:
        a = automations.c
        stmt = sa.select(
            a.organization, a.name, a.is_active, a.is_paused, a.next_scheduled_at,
            a.last_executed_at, a.execution_count, a.total_sent, a.total_delivered, a.total_read,
            a.total_completed, a.total_failed, a.removed_at,
        ).order_by(a.organization, a.name)
        if organization:
            stmt = stmt.where(a.organization == organization)
        with service.database.engine.connect() as conn:
            return [_jsonable(dict(r._mapping)) for r in conn.execute(stmt)]

    return JSONResponse({"automations": await run_in_threadpool(query)})


async def api_execution(request: Request) -> Response:
    service = service_of(request)
    execution_id: int = request.path_params["id"]

    def query() -> dict[str, Any] | None:
        with service.database.engine.connect() as conn:
            row = conn.execute(
                sa.select(executions, automations.c.name.label("automation"))
                .join(automations, automations.c.id == executions.c.automation_id)
                .where(executions.c.id == execution_id)
            ).first()
            if row is None:
                return None
            by_recipient = conn.execute(
                sa.select(recipients.c.status, sa.func.count())
                .where(recipients.c.execution_id == execution_id)
                .group_by(recipients.c.status)
            ).all()
            by_message = conn.execute(
                sa.select(messages.c.status, sa.func.count())
                .join(recipients, recipients.c.id == messages.c.recipient_id)
                .where(recipients.c.execution_id == execution_id)
                .group_by(messages.c.status)
            ).all()
        out = _jsonable(dict(row._mapping))
        out["recipients"] = {status: count for status, count in by_recipient}
        out["messages"] = {status: count for status, count in by_message}
        return out

    found = await run_in_threadpool(query)
    if found is None:
        return JSONResponse({"error": f"no execution {execution_id}"}, status_code=404)
    return JSONResponse(found)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
            for k, v in row.items()}


# --------------------------------------------------------------------------- app


def base_routes() -> list[BaseRoute]:
    """The service's own routes; `create_app(routes=...)` appends more."""
    return [
        Route("/webhooks/whatsapp", webhook_verify, methods=["GET"]),
        Route("/webhooks/whatsapp", webhook_receive, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/automations", api_automations, methods=["GET"]),
        Route("/api/executions/{id:int}", api_execution, methods=["GET"]),
    ]


def create_app(
    *,
    db_url: str,
    config_paths: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] = os.environ,
    routes: Sequence[BaseRoute] = (),
    now: Callable[[], datetime] = _utcnow,
    unmatched_interval: float | None = UNMATCHED_INTERVAL,
) -> Starlette:
    """The HTTP app over the state database at `db_url` and the config at `config_paths`.

    Opens (and for SQLite, upgrades) the database at once, so a bad URL fails here with a
    UserError rather than on the first request. `unmatched_interval=None` turns the background
    retry of early webhook statuses off.
    """
    database = dbmod.open_database(db_url)
    service = Service(database, webhooks.WebhookSettings(), now)
    service.set_config(load_config(config_paths), env)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = (asyncio.create_task(_unmatched_loop(service, unmatched_interval))
                if unmatched_interval else None)
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await service.writer.aclose()
            database.dispose()

    app = Starlette(routes=[*base_routes(), *routes], lifespan=lifespan)
    app.state.service = service
    return app


async def _unmatched_loop(service: Service, interval: float) -> None:
    def once() -> None:
        # A read first: the write lock (SQLite's only one) is taken only when there is work.
        with service.database.engine.connect() as conn:
            waiting = conn.execute(sa.select(unmatched_statuses.c.id).limit(1)).first()
        if waiting is None:
            return
        with dbmod.write_transaction(service.database.engine) as conn:
            webhooks.apply_unmatched(conn, now=service.now())

    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(once)
        except sa.exc.DBAPIError as exc:
            # The database being away is reported by /healthz; keep trying.
            log.warning("retrying early webhook statuses failed: %s",
                        dbmod.describe_error(exc, service.database.url))
        except Exception:
            # A bug must not silently end the loop: later statuses would wait forever.
            log.exception("retrying early webhook statuses failed")


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket to hand to uvicorn (`Server.run(sockets=[...])`).

    `socket.create_server` makes a socket with proto 0, so asyncio does not set TCP_NODELAY on
    the connections it accepts (it checks proto == IPPROTO_TCP), and uvicorn's separate header
    and body writes then wait out the peer's delayed ACK: ~40 ms per response. Linux copies
    the option from the listening socket to the accepted ones, so it is set here.
    """
    sock = socket.create_server((host, port), backlog=2048)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class ServerThread:
    """uvicorn serving `app` from a daemon thread on `host` (port 0: a free one), for tests,
    benchmarks and `flowspec run`; a context manager whose value is the base URL."""

    def __init__(self, app: Starlette, *, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._socket = listen_socket(host, port)
        self.host, self.port = host, int(self._socket.getsockname()[1])
        self._server = uvicorn.Server(uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on",
        ))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]},
            name=f"service-{self.port}", daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start within 10 s")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
