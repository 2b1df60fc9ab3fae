"""Messages/s through `WhatsAppCloudChannel.send_many` vs a bare aiohttp loop, same stand-in.

Run: `.venv/bin/python benchmarks/bench_channel.py [--messages N] [--rounds R]`.

The stand-in runs as its own process (`python -m reconciler.standin`) so client and server do not
share a GIL. Rounds alternate channel / bare so machine noise hits both alike; the ratio within
a round is the figure that holds (FACTS.md: machines here are shared and noisy). The stand-in's
ceiling is the bare loop against `/_admin/noop` (same server stack, no handler work), from one
and from two client processes at once: if two clients together get no more than one, the
server is the limit, not the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.synchronize
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.channels import OutgoingMessage, WhatsAppCloudChannel, message_body  # noqa: E402

TOKEN = "EAAG-bench-token-0000000000000000"
PHONE_NUMBER_ID = "1234567890"
CONCURRENCY = 50


def make_messages(n: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(f"r{i}:greet", f"+55119{i:08d}", "template", template="promo_bf",
                        language="pt_BR", params=(f"name{i}", "20%"))
        for i in range(n)
    ]


async def bare_loop(url: str, bodies: list[bytes], concurrency: int = CONCURRENCY) -> float:
    """The floor of client overhead: pre-encoded bodies, read the response, nothing else."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    work = iter(bodies)
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for body in work:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok += response.status == 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    if ok != len(bodies):
        raise SystemExit(f"bare loop: only {ok}/{len(bodies)} accepted")
    return len(bodies) / elapsed


async def channel_run(base_url: str, messages: list[OutgoingMessage]) -> float:
    channel = WhatsAppCloudChannel(base_url, PHONE_NUMBER_ID, TOKEN)
    start = time.perf_counter()
    results = await channel.send_many(messages, concurrency=CONCURRENCY)
    elapsed = time.perf_counter() - start
    await channel.aclose()
    if not all(r.ok for r in results):
        raise SystemExit(f"channel: {sum(not r.ok for r in results)} failures")
    return len(messages) / elapsed


def _bare_in_process(url: str, bodies: list[bytes], out: multiprocessing.SimpleQueue[float],
                     go: multiprocessing.synchronize.Event) -> None:
    go.wait()
    out.put(asyncio.run(bare_loop(url, bodies)))


def two_clients(url: str, bodies: list[bytes]) -> float:
    """Total rate of two client processes posting at the same time."""
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.SimpleQueue[float] = ctx.SimpleQueue()
    go = ctx.Event()
    procs = [ctx.Process(target=_bare_in_process, args=(url, bodies, out, go)) for _ in range(2)]
    for p in procs:
        p.start()
    time.sleep(0.3)  # both started and waiting
    go.set()
    for p in procs:
        p.join()
    # Each reports its own rate over roughly the same window: the sum is the server's total.
    return out.get() + out.get()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to derive a per-core ceiling."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admin(origin: str, path: str) -> None:
    request = urllib.request.Request(origin + path, data=b"{}", method="POST")
    urllib.request.urlopen(request, timeout=10).read()


def start_standin() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "FLOWSPEC_STANDIN_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.standin", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
    if not base_url.startswith("http"):
        proc.kill()
        raise SystemExit("stand-in did not start")
    return proc, base_url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    proc, base_url = start_standin()
    origin = base_url.rsplit("/", 1)[0]
    url = f"{base_url}/{PHONE_NUMBER_ID}/messages"
    messages = make_messages(args.messages)
    bodies = [json.dumps(message_body(m), separators=(",", ":")).encode() for m in messages]
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
          f"{args.messages} template messages per run, concurrency {CONCURRENCY}")
    try:
        asyncio.run(bare_loop(url, bodies[:2000]))  # warm-up: imports, server caches
        admin(origin, "/_admin/reset")
        channel_rates, bare_rates, ratios, channel_cpu, bare_cpu = [], [], [], [], []
        for r in range(1, args.rounds + 1):
            # Client CPU per message is steadier than wall time on a shared machine.
            cpu = time.process_time()
            c = asyncio.run(channel_run(base_url, messages))
            channel_cpu.append((time.process_time() - cpu) / len(messages))
            admin(origin, "/_admin/reset")
            cpu = time.process_time()
            b = asyncio.run(bare_loop(url, bodies))
            bare_cpu.append((time.process_time() - cpu) / len(bodies))
            admin(origin, "/_admin/reset")
            channel_rates.append(c)
            bare_rates.append(b)
            ratios.append(c / b)
            print(f"round {r}: channel.send_many {c:8.0f} msg/s   bare aiohttp {b:8.0f} msg/s   "
                  f"ratio {c / b:.2f}   client CPU/msg {channel_cpu[-1] * 1e6:.0f} vs "
                  f"{bare_cpu[-1] * 1e6:.0f} us")
        noop_url = f"{origin}/_admin/noop"
        noop_one = statistics.median(asyncio.run(bare_loop(noop_url, bodies))
                                     for _ in range(args.rounds))
        before = cpu_seconds(proc.pid)
        asyncio.run(bare_loop(url, bodies))
        admin(origin, "/_admin/reset")
        server_cpu_per_msg = (cpu_seconds(proc.pid) - before) / len(bodies)
        before = cpu_seconds(proc.pid)
        asyncio.run(bare_loop(noop_url, bodies))
        server_cpu_per_noop = (cpu_seconds(proc.pid) - before) / len(bodies)
        noop_two = two_clients(noop_url, bodies)
        msgs_two = two_clients(url, bodies)
        admin(origin, "/_admin/reset")
    finally:
        proc.terminate()
        proc.wait(10)

    print()
    print(f"median channel.send_many : {statistics.median(channel_rates):8.0f} msg/s")
    print(f"median bare aiohttp loop : {statistics.median(bare_rates):8.0f} msg/s")
    print(f"median ratio channel/bare: {statistics.median(ratios):8.2f}")
    c_cpu, b_cpu = statistics.median(channel_cpu), statistics.median(bare_cpu)
    print(f"median client CPU per message: channel {c_cpu * 1e6:.0f} us, bare {b_cpu * 1e6:.0f} us "
          f"(bare/channel {b_cpu / c_cpu:.2f})")
    print(f"stand-in /_admin/noop, 1 client process : {noop_one:8.0f} req/s")
    print(f"stand-in /_admin/noop, 2 client processes: {noop_two:8.0f} req/s")
    print(f"stand-in messages,     2 client processes: {msgs_two:8.0f} msg/s")
    print(f"stand-in CPU per message {server_cpu_per_msg * 1e6:5.0f} us -> ceiling "
          f"{1 / server_cpu_per_msg:8.0f} msg/s per core "
          f"(noop {server_cpu_per_noop * 1e6:.0f} us -> {1 / server_cpu_per_noop:.0f} req/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
