"""Acks never wait behind a report: Claim presses at 10 concurrent, alone and while
`/sla-report` is built over a 20,000-lead week, measured in the same run.

    python -m bench.ack_during_report [--week-leads 20000] [--presses 800] [--rounds 3]
                                      [--no-postgres] [--no-sqlite] [--no-freeze]

A real Handoff server (its HTTP routes, Bolt, the access check, the claim's transaction) on a
SQLite file and, when one answers, on PostgreSQL, pre-filled with a week of `week_leads` leads
(bench/report_week.py's mix), plus fresh leads posted through intake to be claimed. The presses
are signed Slack requests from the local driver, 10 at a time; the p99 of their answer times is
taken with nothing else running, and while the same week's report is built again and again in
the server (what `/sla-report` does), in alternating blocks (so that whatever else the machine
does weighs on both alike), each block long enough for several whole reports. Target: the p99
during the reports within 1.2× of the p99 without them.

The server, the Slack simulator and the driver share this process (and its garbage collector:
the simulator keeps every call it received); the heap is frozen after the warm-up as `serve`
freezes it once started (`bot.app.settle_heap`; `--no-freeze` leaves it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass

from sqlalchemy import text

from bench.pg import postgres_base, scratch_databases
from bench.report_week import AS_OF, ROOT, WEEK, build
from bot.app import settle_heap
from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.services.policies import load_policy
from storage.db import Database

CONCURRENT = 10
BLOCKS = 4  # alone, during, alone, during, ...
REPS = ["U0REP1", "U0REP2"]


@dataclass
class Run:
    backend: str
    alone: list[float]
    during: list[float]
    reports: int

    @staticmethod
    def p99(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    @property
    def ratio(self) -> float:
        return self.p99(self.during) / self.p99(self.alone)


async def presses(stack: LocalStack, ids: list[int], timestamps: dict[int, str]) -> list[float]:
    """Claim each lead once, CONCURRENT at a time; each press's answer time (s)."""
    times: list[float] = []
    queue = iter(ids)

    async def presser(index: int) -> None:
        for lead_id in queue:
            started = time.perf_counter()
            response = await stack.driver.press(
                REPS[index % 2], "Claim", channel="C0ENT", message_ts=timestamps[lead_id]
            )
            times.append(time.perf_counter() - started)
            assert response.status == 200, response.body

    await asyncio.gather(*(presser(i) for i in range(CONCURRENT)))
    return times


async def fresh_leads(stack: LocalStack, count: int, tag: str) -> dict[int, str]:
    """Post `count` enterprise leads through intake; their ids and message timestamps."""
    found: dict[int, str] = {}
    for n in range(count):
        payload = {
            "external_id": f"{tag}-{n}",
            "email": f"{tag}-{n}@bench.example",
            "name": f"Lead {n}",
            "title": "VP Sales",
            "company": {"name": f"Company {n}", "employees": 2400},
            "source": "webinar",
            "score": 88,
        }
        status, answer = await stack.post_lead(payload)
        assert status == 201, answer
        found[int(answer["id"])] = ""
    await stack.settle()
    for lead_id in found:
        lead = await stack.services.lead(lead_id)
        assert lead.message_ts is not None
        found[lead_id] = lead.message_ts
    return found


async def measure_backend(
    backend: str, url: str, week_leads: int, count: int, freeze: bool = True
) -> Run:
    policy = load_policy(str(ROOT / "sla.yaml"))
    database = Database(url)
    await build(database, policy, week_leads, week_leads)
    if url.startswith("postgresql"):  # the bulk load set the ids: move the sequences past them
        for name in ("leads", "escalations"):
            statement = text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT max(id) FROM {name}))"
            )
            await database.run(lambda db, s=statement: db.execute(s))
    await database.dispose()
    # Reports in the worker process (HANDOFF_REPORT_PROCESS=1, the default).
    stack = await start_stack(url, policy, clock=TravelClock(AS_OF), HANDOFF_REPORT_PROCESS="1")
    try:
        warm = await fresh_leads(stack, 20, "warm")
        await presses(stack, list(warm), warm)
        if freeze:
            settle_heap()  # as `serve` does once started
        alone: list[float] = []
        during: list[float] = []
        built = 0
        # Alone and during alternate, block by block, so that whatever else the machine does
        # meanwhile weighs on both alike.
        for block in range(BLOCKS):
            size = count // BLOCKS
            alone_leads = await fresh_leads(stack, size, f"alone{block}")
            alone += await presses(stack, list(alone_leads), alone_leads)
            during_leads = await fresh_leads(stack, size, f"during{block}")
            stop = asyncio.Event()

            async def reporting(stop: asyncio.Event = stop) -> None:
                nonlocal built
                while not stop.is_set():
                    await stack.handoff.reports.report(WEEK, AS_OF)
                    built += 1

            reporter = asyncio.create_task(reporting())
            await asyncio.sleep(0.05)  # the first report is under way
            during += await presses(stack, list(during_leads), during_leads)
            stop.set()
            await reporter
        return Run(backend, alone, during, built)
    finally:
        await stack.close()


async def measure(
    week_leads: int,
    count: int,
    rounds: int,
    postgres: bool,
    sqlite: bool = True,
    freeze: bool = True,
) -> list[Run]:
    runs: list[Run] = []
    for _ in range(rounds if sqlite else 0):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/handoff.db"
            runs.append(await measure_backend("SQLite", url, week_leads, count, freeze))
    base = await postgres_base() if postgres else None
    if base is not None:
        for _ in range(rounds):
            async with scratch_databases(base, [1]) as urls:
                runs.append(await measure_backend("PostgreSQL", urls[1], week_leads, count, freeze))
    return runs


def report(runs: list[Run]) -> str:
    lines = [
        "| backend | p99 alone | p99 during reports | ratio | reports built meanwhile |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.backend} | {Run.p99(run.alone) * 1000:.1f} ms | "
            f"{Run.p99(run.during) * 1000:.1f} ms | {run.ratio:.2f}x | {run.reports} |"
        )
    lines.append("")
    for backend in dict.fromkeys(run.backend for run in runs):
        ratios = [run.ratio for run in runs if run.backend == backend]
        middle = statistics.median(ratios)
        verdict = "ok" if middle <= 1.2 else "MISSED"
        lines.append(f"{backend}: median ratio {middle:.2f}x (target <= 1.2x: {verdict})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--week-leads", type=int, default=20_000)
    parser.add_argument("--presses", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the heap as it is (serve freezes it)"
    )
    args = parser.parse_args()
    runs = asyncio.run(
        measure(
            args.week_leads,
            args.presses,
            args.rounds,
            not args.no_postgres,
            not args.no_sqlite,
            not args.no_freeze,
        )
    )
    print(report(runs))


if __name__ == "__main__":
    main()
