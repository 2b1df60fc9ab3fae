"""Webhook ingestion: statuses/s applied to PostgreSQL through the real HTTP endpoint.

Run: `.venv/bin/python benchmarks/bench_webhooks.py [--quick] [--messages N] [--rounds R]
[--db postgresql://...]` (default: a fresh database on FLOWSPEC_TEST_POSTGRES_URL's server,
dropped afterwards).

The service (Starlette under uvicorn, `reconciler.service.create_app`) runs in its own process
so client and server do not share a GIL. A bare aiohttp client posts pre-signed Cloud API
callbacks: one status per callback (what Meta usually sends) and batches of 100 statuses per
callback. Every round resets the messages to `sent` and moves them all to `delivered`.

Baseline, same run, same rows: one raw psycopg `executemany` of
`UPDATE messages SET status='delivered' ... WHERE message_id=%s AND organization=%s` in one
transaction: the floor of the database work with no HTTP, no signature check, no parsing, no
monotonic guard and no recipient update.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from reconciler import db as dbmod  # noqa: E402
from reconciler.models import automations, executions, messages, recipients  # noqa: E402
from reconciler.standin import StandIn, Status, sign  # noqa: E402

SECRET = "bench-app-secret"
PHONE = "1234567890"
CONCURRENCY = 32
NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
SERVER_URL = os.environ.get("FLOWSPEC_TEST_POSTGRES_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHANNEL = {
    "apiVersion": "flowspec/v1", "kind": "Channel", "metadata": {"name": "cloud", "organization": "acme"},
    "spec": {"type": "whatsapp_cloud", "phone_number_id": PHONE, "access_token_env": "WA_TOKEN",
             "app_secret_env": "BENCH_APP_SECRET"},
}


def serve(db_url: str, config: str, port_file: str) -> None:
    """Child process: the service on a free port, written to `port_file` once listening."""
    from reconciler.service import ServerThread, create_app

    app = create_app(db_url=db_url, config_paths=[config],
                     env={"BENCH_APP_SECRET": SECRET, "WA_TOKEN": "t"})
    with ServerThread(app) as url:
        Path(port_file).write_text(url)
        while True:
            time.sleep(3600)


def seed(db_url: str, n: int) -> list[str]:
    database = dbmod.open_database(db_url, check=False)
    dbmod.upgrade(database.engine)
    wamids = [f"wamid.HBgM{i:012d}" for i in range(n)]
    with dbmod.write_transaction(database.engine) as conn:
        aid = conn.execute(automations.insert().values(
            organization="acme", name="bench", source="b.yaml", spec={}, spec_hash="h",
            timezone="UTC", is_active=True, is_paused=False, created_at=NOW, updated_at=NOW,
        )).inserted_primary_key[0]  # type: ignore[index]
        eid = conn.execute(executions.insert().values(
            organization="acme", automation_id=aid, status="running", created_at=NOW, updated_at=NOW,
        )).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(recipients.insert(), [
            {"organization": "acme", "execution_id": eid, "contact_id": f"c-{i}", "status": "sent",
             "created_at": NOW, "updated_at": NOW} for i in range(n)])
        ids = [r.id for r in conn.execute(sa.select(recipients.c.id).order_by(recipients.c.id))]
        conn.execute(messages.insert(), [
            {"organization": "acme", "recipient_id": rid, "step": 0, "node": "greet",
             "channel": "cloud", "message_id": w, "status": "sent", "created_at": NOW,
             "updated_at": NOW} for rid, w in zip(ids, wamids, strict=True)])
    database.dispose()
    return wamids


def reset(db_url: str) -> None:
    engine = dbmod.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(messages.update().values(status="sent", delivered_at=None))
        conn.execute(recipients.update().values(status="sent"))
    engine.dispose()


def delivered(db_url: str) -> int:
    engine = dbmod.create_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).where(messages.c.status == "delivered")).scalar_one()
    engine.dispose()
    return int(n)


def bodies(wamids: list[str], per_callback: int) -> list[tuple[bytes, str]]:
    standin = StandIn(phone_number_ids=(PHONE,))
    out = []
    for start in range(0, len(wamids), per_callback):
        group = [Status(w, "delivered", "+5511999990001") for w in wamids[start:start + per_callback]]
        body = json.dumps(standin.envelope(group)).encode()
        out.append((body, sign(body, SECRET)))
    return out


async def post_all(url: str, signed: list[tuple[bytes, str]]) -> tuple[float, int]:
    work = iter(signed)
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for body, signature in work:
            async with session.post(url, data=body, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": signature,
            }) as response:
                await response.read()
                ok += response.status == 200

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        return time.perf_counter() - start, ok


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_executemany(db_url: str, wamids: list[str]) -> float:
    import psycopg

    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE messages SET status = 'delivered', delivered_at = now(), updated_at = now() "
                "WHERE message_id = %s AND organization = %s",
                [(w, "acme") for w in wamids],
            )
        conn.commit()
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 messages, 2 rounds")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", help="PostgreSQL URL (default: a fresh database, dropped after)")
    parser.add_argument("--serve", nargs=3, metavar=("DB", "CONFIG", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    n, rounds = (2_000, 2) if args.quick else (args.messages, args.rounds)

    import psycopg

    admin = SERVER_URL.replace("postgresql+psycopg://", "postgresql://")
    created = None
    db_url = args.db
    if db_url is None:
        created = f"flowspec_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{created}"')
        db_url = SERVER_URL.rsplit("/", 1)[0] + "/" + created
    workdir = Path(f"/tmp/{created or 'flowspec_bench_webhooks'}")
    workdir.mkdir(exist_ok=True)
    (workdir / "channels.yaml").write_text(json.dumps(CHANNEL))
    port_file = workdir / "url"
    port_file.unlink(missing_ok=True)
    server = None
    try:
        wamids = seed(db_url, n)
        server = subprocess.Popen([sys.executable, __file__, "--serve", db_url, str(workdir),
                                   str(port_file)])
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the service did not start")
            time.sleep(0.05)
        url = port_file.read_text() + "/webhooks/whatsapp"
        urllib.request.urlopen(url.replace("/webhooks/whatsapp", "/healthz"), timeout=10).read()
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {n} messages, "
              f"{CONCURRENCY} concurrent posts, PostgreSQL {mask(db_url)}")
        results: dict[str, list[float]] = {"single": [], "batch100": [], "raw": []}
        server_cpu: dict[str, list[float]] = {"single": [], "batch100": []}
        payloads = {"single": bodies(wamids, 1), "batch100": bodies(wamids, 100)}
        for r in range(1, rounds + 1):
            line = []
            for mode, signed in payloads.items():
                reset(db_url)
                cpu_before = cpu_seconds(server.pid)
                seconds, ok = asyncio.run(post_all(url, signed))
                server_cpu[mode].append((cpu_seconds(server.pid) - cpu_before) / n)
                if ok != len(signed) or delivered(db_url) != n:
                    raise SystemExit(f"{mode}: {ok}/{len(signed)} callbacks ok, "
                                     f"{delivered(db_url)}/{n} messages delivered")
                results[mode].append(n / seconds)
                line.append(f"{mode} {n / seconds:8.0f}/s")
            reset(db_url)
            raw = n / raw_executemany(db_url, wamids)
            results["raw"].append(raw)
            line.append(f"raw executemany {raw:8.0f}/s")
            print(f"round {r}: " + "   ".join(line))
        single, batch, raw = (statistics.median(results[k]) for k in ("single", "batch100", "raw"))
        print()
        print(f"median statuses/s, one status per callback : {single:8.0f}  ({single / raw:.3f} of raw)")
        print(f"median statuses/s, 100 statuses per callback: {batch:8.0f}  ({batch / raw:.3f} of raw)")
        print(f"median raw executemany UPDATE (baseline)    : {raw:8.0f}")
        for mode, values in server_cpu.items():
            print(f"service CPU per status, {mode:8}: {statistics.median(values) * 1e6:6.0f} us")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        if created is not None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
    return 0


def mask(url: str) -> str:
    return dbmod.mask_url(url)


if __name__ == "__main__":
    sys.exit(main())
