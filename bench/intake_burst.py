"""Intake under a burst: 10,000 leads through `POST /leads` from 50 concurrent clients, against
the floor measured in the same run.

    python -m bench.intake_burst [--leads 10000] [--clients 50] [--no-postgres] [--profile DIR]

On a SQLite file, one `handoff serve` process; on PostgreSQL (when one answers at
HANDOFF_TEST_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test, in fresh
databases dropped afterwards), two processes taking the burst between them. The floor is a bare
aiohttp handler that checks the same bearer token and inserts one row into the same database
through the same storage layer (`bench/servers.py floor`): what any intake costs here. Handoff
does much more per lead (validation, scoring, routing, the idempotency check, the lead row, its
events and its Slack post in the outbox, in one transaction). Slack is the local simulator at
Slack's published pace, so posting goes on beside the burst as it would.

It reports accepted leads per second, the intake latency (p50, p99), and the CPU time a lead
of the server process(es) and of the clients (this process; on Linux) for each, checks that
every lead is stored exactly once, and prints Handoff's throughput as a share of the floor's.
Target: at least 50%, with nothing lost. The two sides share the machine's cores: the CPU a
lead says which side a run was bound by, and is steadier than the throughput on a busy machine.

With `--profile DIR`, py-spy samples each Handoff process during its burst and leaves its
collapsed stacks in DIR (`<backend>-<pid>.txt`, py-spy's raw format: grep them, or feed them to
a flame graph tool).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from bench.claim_ack import TOKEN, free_port, process, serve_env
from bench.pg import postgres_base, scratch_databases
from storage.db import Database

SIZES = (2400, 450, 40)  # the example's three segments


@dataclass
class Burst:
    name: str
    leads: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    stored: int
    server_cpu: float | None = None  # CPU seconds of the server process(es) over the burst
    client_cpu: float = 0.0  # ...and of this process, the clients

    @property
    def per_second(self) -> float:
        return self.leads / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def line(self) -> str:
        p50, p99 = self.percentile(0.5) * 1000, self.percentile(0.99) * 1000
        codes = ", ".join(f"{code}: {n:,}" for code, n in sorted(self.statuses.items()))
        server = "?" if self.server_cpu is None else f"{self.server_cpu / self.leads * 1e3:.3f} ms"
        return (
            f"| {self.name} | {self.per_second:,.0f} | {p50:.1f} ms | {p99:.1f} ms | "
            f"{server} | {self.client_cpu / self.leads * 1e3:.3f} ms | "
            f"{self.stored:,} of {self.leads:,} | {codes} |"
        )


def cpu_seconds(pids: list[int]) -> float | None:
    """The CPU time (user and system) the processes `pids` used so far; None off Linux."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def lead(index: int, stamp: int) -> dict[str, Any]:
    return {
        "external_id": f"burst-{stamp}-{index}",
        "email": f"lead{index}@company{index}.example",
        "name": f"Lead {index}",
        "title": "VP Sales",
        "company": {"name": f"Company {index}", "employees": SIZES[index % 3], "country": "AU"},
        "source": "webinar",
        "campaign": "Burst",
        "score": 85,
    }


async def burst(name: str, urls: list[str], leads: int, clients: int, servers: list[int]) -> Burst:
    """Send `leads` leads from `clients` concurrent clients, spread over `urls`, served by the
    processes `servers` (their CPU time is measured too)."""
    stamp = time.time_ns()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = iter(range(leads))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for index in next_index:
                url = urls[index % len(urls)]
                started = time.perf_counter()
                async with session.post(url, json=lead(index, stamp), headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        served, used = cpu_seconds(servers), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - started
        used, after = time.process_time() - used, cpu_seconds(servers)
    server_cpu = None if served is None or after is None else after - served
    return Burst(name, leads, seconds, latencies, statuses, 0, server_cpu, used)


async def count(url: str, table: str) -> int:
    database = Database(url)
    try:
        statement = text(f"SELECT count(*) FROM {table}")
        return int(await database.run(lambda db: db.execute(statement).scalar_one()))
    finally:
        await database.dispose()


@asynccontextmanager
async def sampled(pids: list[int], folder: Path | None, backend: str) -> AsyncIterator[None]:
    """py-spy sampling each of `pids` for the block (nothing without a `folder`)."""
    if folder is None:
        yield
        return
    spies = [
        await asyncio.create_subprocess_exec(
            *[str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid)],
            *["--format", "raw", "--rate", "250"],
            *["-o", str(folder / f"{backend}-{pid}.txt")],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for pid in pids
    ]
    await asyncio.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            await spy.wait()


async def run_backend(
    backend: str,
    urls: tuple[str, str],
    processes: int,
    leads: int,
    clients: int,
    profile: Path | None = None,
) -> list[Burst]:
    """The floor then Handoff, each on a fresh database of its own."""
    floor_url, handoff_url = urls
    results = []
    python = sys.executable
    async with AsyncExitStack() as running:
        sim_port = free_port()
        await running.enter_async_context(
            process(
                [python, "-m", "bench.servers", "simulator", "--port", str(sim_port)],
                "simulator ready",
                dict(os.environ),
            )
        )
        floor_ports = [free_port() for _ in range(processes)]
        floor_pids = []
        for port in floor_ports:
            args = ["floor", "--port", str(port), "--database-url", floor_url, "--token", TOKEN]
            floor_pids.append(
                await running.enter_async_context(
                    process([python, "-m", "bench.servers", *args], "floor ready", dict(os.environ))
                )
            )
        floor = await burst(
            f"{backend}: floor ({processes} process{'es' if processes > 1 else ''})",
            [f"http://127.0.0.1:{port}/leads" for port in floor_ports],
            leads,
            clients,
            floor_pids,
        )
        floor.stored = await count(floor_url, "floor_leads")
        results.append(floor)
        env = serve_env(
            f"http://127.0.0.1:{sim_port}/api/",
            handoff_url,
            HANDOFF_SWEEP_SECONDS="0",
            LOG_LEVEL="WARNING",
            LOG_FORMAT="text",
        )
        ports = [free_port() for _ in range(processes)]
        pids = []
        for port in ports:  # one after the other: each brings the schema up to date
            pids.append(
                await running.enter_async_context(
                    process(
                        [python, "-m", "bot.cli", "serve"],
                        "serving on",
                        {**env, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "INFO"},
                    )
                )
            )
        async with sampled(pids, profile, backend):
            handoff = await burst(
                f"{backend}: Handoff ({processes} process{'es' if processes > 1 else ''})",
                [f"http://127.0.0.1:{port}/leads" for port in ports],
                leads,
                clients,
                pids,
            )
        handoff.stored = await count(handoff_url, "leads")
        results.append(handoff)
    return results


async def measure(
    leads: int, clients: int, postgres: bool, profile: Path | None = None
) -> list[Burst]:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        sqlite = (f"sqlite+aiosqlite:///{folder}/floor.db", f"sqlite+aiosqlite:///{folder}/h.db")
        results += await run_backend("SQLite", sqlite, 1, leads, clients, profile)
    base = await postgres_base() if postgres else None
    if base is not None:
        async with scratch_databases(base, [1, 2]) as urls:
            pg = (urls[1], urls[2])
            results += await run_backend("PostgreSQL", pg, 2, leads, clients, profile)
    return results


def report(results: list[Burst]) -> str:
    lines = [
        "| run | leads/s | p50 | p99 | server CPU/lead | clients' CPU/lead | stored | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *(burst.line() for burst in results),
        "",
    ]
    for floor, handoff in zip(results[::2], results[1::2], strict=True):
        share = handoff.per_second / floor.per_second
        whole = handoff.stored == handoff.leads and set(handoff.statuses) == {201}
        verdict = "ok" if share >= 0.5 and whole else "MISSED"
        lines.append(
            f"{handoff.name}: {share:.0%} of the floor's throughput, "
            f"{'nothing lost' if whole else 'LEADS LOST OR REFUSED'} (target >= 50%: {verdict})"
        )
    lines.append(f"(p50 of the floor's latencies: {statistics.median(results[0].latencies):.4f} s)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", type=Path, help="a folder for py-spy's samples of Handoff")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    measured = measure(args.leads, args.clients, not args.no_postgres, args.profile)
    print(report(asyncio.run(measured)))


if __name__ == "__main__":
    main()
