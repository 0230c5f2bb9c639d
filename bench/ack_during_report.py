"""Acks never wait behind a report: Claim presses at 10 concurrent against a `handoff serve`
process, alone and while managers' `/sla-report` commands build a 20,000-lead week's report.

    python -m bench.ack_during_report [--week-leads 20000] [--presses 3200] [--rounds 3]
                                      [--no-postgres] [--no-sqlite] [--no-freeze]
                                      [--in-process-reports] [--no-charts]
                                      [--stand-in {sliced,spin}]

Three processes besides this client, as in a deployment: the Slack simulator (bench/servers.py;
Block Kit validation off, that is Slack's CPU), and `handoff serve` on a SQLite file or, when one
answers, on PostgreSQL (a fresh database, dropped afterwards), with the example SLA. Before the
server starts, the store is pre-filled with last week's 20,000 leads (bench/report_week.py's mix,
dated relative to the real clock: `serve` runs on it). Fresh enterprise leads are posted through
POST /leads; each Claim press is a signed `block_actions` request carrying the posted message as
the simulator holds it, 10 in flight at a time, and its latency is the time to the HTTP answer
(Slack's 3-second ack). The p99 is taken with nothing else running, and while a manager's
`/sla-report last-week` (a signed slash command; the server acks, builds the week's report,
answers through the response_url and draws its charts into the manager's DM) is sent again as
soon as the last one was answered, in alternating blocks so that whatever else the machine does
weighs on both alike. The command's response_url is the benchmark's own, so it learns of the
answer when it comes instead of asking the server for `handoff_reports_total` ten times a
second (each /metrics request held the server's loop for 2 ms or so, and only in the blocks
with reports). Target: the p99 during the reports within
1.2x of the p99 without them. The report worker gives way to the presses (bot/traffic.py), so
a report takes longer while they go on: each report's time from command to answer is printed,
alone (nothing else running) and during the presses.

`--in-process-reports` runs the server with HANDOFF_REPORT_PROCESS=0 (the report built in the
server process rather than its worker process); `--no-freeze` runs it without the heap freeze
`serve` does once started (`bot.app.settle_heap`); `--no-charts`, a diagnostic, without the
report's charts drawn into the manager's DM (both patched out of `serve` for the run).
`--stand-in spin|sliced`, a diagnostic, sends no reports: in their place a process at the
worker's priority (SCHED_IDLE) spins for a second, or for two seconds in slices of 10 ms each
followed by 200 ms of rest (what a priority does alone, and what giving way does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import Connection, text

import bench.report_week as week_data
from bench.claim_ack import (
    TOKEN,
    UNPACED,
    free_port,
    metric,
    posted_messages,
    process,
    serve_env,
    settled,
    signed,
    signed_press,
    wait_ready,
)
from bench.pg import postgres_base, scratch_databases
from bot.domain.report import Period
from bot.services.policies import load_policy
from storage.db import Database

ROOT = Path(__file__).resolve().parents[1]
CONCURRENT = 10
BLOCKS = 4  # alone, during, alone, during, ...
REPS = ["U0REP1", "U0REP2"]  # the example SLA's enterprise pool
MANAGER = "U0MGR1"
# `serve` with parts patched out, for the comparisons (the `handoff` command's own main).
NO_FREEZE = "import bot.app; bot.app.settle_heap = lambda: None"
NO_CHARTS = (
    "import bot.services.digest as d\n"
    "async def _no_charts(*args, **kwargs): return None\n"
    "d.Digests.charts_to = _no_charts"
)
MAIN = "import sys\nfrom bot.cli.main import main\nsys.exit(main())"
# `--stand-in`, a diagnostic: instead of the reports, a process at SCHED_IDLE (the worker's
# priority) that spins for a second, or for two seconds in slices of 10 ms, each followed by
# 200 ms of rest (the worker's pace while it gives way).
LOWEST = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))"
STAND_INS = {
    "spin": "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass",
    "sliced": (
        "import time\nend = time.monotonic() + 2.0\nwhile time.monotonic() < end:\n"
        "    stop = time.monotonic() + 0.01\n    while time.monotonic() < stop: pass\n"
        "    time.sleep(0.2)"
    ),
}


@dataclass
class Run:
    backend: str
    alone: list[float]
    during: list[float]
    reports: int
    errors: int
    won: int  # claims won, of the presses (warm-up included): every press claims a fresh lead
    pressed: int
    # Seconds from the command to its answer: a report with nothing else running, and each
    # report of the blocks with presses (the worker gives way to them: bot/traffic.py).
    report_alone: float = 0.0
    report_during: list[float] = field(default_factory=list)

    @staticmethod
    def p99(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    @property
    def ratio(self) -> float:
        return self.p99(self.during) / self.p99(self.alone)


def last_week(now: datetime) -> Period:
    """The ISO week before `now`'s, in the example SLA's time zone (`/sla-report last-week`)."""
    day = now.astimezone(ZoneInfo(week_data.ZONE)).date() - timedelta(days=7)
    year, week, _ = day.isocalendar()
    return Period(year, week, week_data.ZONE)


def signed_command(
    user: str, command: str, words: str, response_url: str
) -> tuple[bytes, dict[str, str]]:
    """A slash command shaped like Slack's form post, signed like Slack signs it."""
    form = {
        "token": "verification-token",
        "team_id": "T0SIM",
        "team_domain": "bench",
        "channel_id": "C0ENT",
        "channel_name": "sales-enterprise",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": words,
        "api_app_id": "A0HANDOFF",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{time.time_ns()}.1.bench",
    }
    return signed(urllib.parse.urlencode(form).encode())


class Answers:
    """The response_url the reports answer to, served by the benchmark itself (as Slack would
    take the answer): each answer's JSON, in order."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/answer"

    async def take(self, request: web.Request) -> web.Response:
        await self.received.put(await request.json())
        return web.Response(text="ok")  # what Slack answers

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Answers]:
        application = web.Application()
        application.router.add_post("/answer", self.take)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            yield self
        finally:
            await runner.cleanup()


class Bench:
    """One server under test: its URLs, and what the presses and commands need."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, api_url: str, answers: Answers
    ) -> None:
        self.session = session
        self.base = base
        self.events = f"{base}/slack/events"
        self.api_url = api_url
        self.press_url = api_url.replace("/api/", "/response/bench")  # claims answer in-band
        self.answers = answers
        self.errors = 0
        self.serial = 0

    async def fresh_leads(self, count: int) -> dict[int, dict[str, Any]]:
        """Post `count` enterprise MQLs through intake; their ids and posted messages."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        ids: list[int] = []
        for _ in range(count):
            self.serial += 1
            payload = {
                "external_id": f"fresh-{time.time_ns()}-{self.serial}",
                "email": f"fresh{self.serial}@bench.example",
                "name": f"Lead {self.serial}",
                "title": "VP Sales",
                "company": {"name": f"Company {self.serial}", "employees": 2400},
                "source": "webinar",
                "score": 88,
            }
            async with self.session.post(
                f"{self.base}/leads", json=payload, headers=headers
            ) as response:
                answer = await response.json()
                assert response.status == 201, answer
                ids.append(int(answer["id"]))
        await settled(self.session, self.base)
        messages = await posted_messages(self.session, self.api_url)
        missing = [lead_id for lead_id in ids if lead_id not in messages]
        assert not missing, f"leads never posted to #sales-enterprise: {missing[:5]}"
        return {lead_id: messages[lead_id] for lead_id in ids}

    async def presses(self, leads: dict[int, dict[str, Any]]) -> list[float]:
        """Claim each lead once, CONCURRENT at a time; each press's answer time (s)."""
        times: list[float] = []
        queue = iter(leads.items())

        async def presser(index: int) -> None:
            for lead_id, message in queue:
                body, headers = signed_press(lead_id, REPS[index % 2], self.press_url, message)
                started = time.perf_counter()
                async with self.session.post(self.events, data=body, headers=headers) as response:
                    await response.read()
                    times.append(time.perf_counter() - started)
                    if response.status != 200:
                        self.errors += 1

        await asyncio.gather(*(presser(i) for i in range(CONCURRENT)))
        return times

    async def report(self) -> float:
        """A manager's `/sla-report last-week`, until the server has answered it: how long
        that took (s)."""
        started = time.perf_counter()
        body, headers = signed_command(MANAGER, "/sla-report", "last-week", self.answers.url)
        async with self.session.post(self.events, data=body, headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        try:
            answer = await asyncio.wait_for(self.answers.received.get(), 300)
        except TimeoutError:
            raise RuntimeError("/sla-report was not answered within 5 minutes") from None
        assert answer.get("blocks"), f"not a report: {answer.get('text')!r}"
        return time.perf_counter() - started

    async def stand_in(self, kind: str) -> float:
        """`--stand-in`: a CPU spinner at SCHED_IDLE instead of a report; how long it ran."""
        started = time.perf_counter()
        spinner = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"{LOWEST}\n{STAND_INS[kind]}"
        )
        await spinner.wait()
        return time.perf_counter() - started


async def preload(url: str, week_leads: int) -> None:
    """Last week's leads (report_week's mix), dated relative to the real clock."""
    now = datetime.now(UTC)
    week_data.WEEK = last_week(now)
    week_data.AS_OF = now
    policy = load_policy(str(ROOT / "sla.yaml"))
    database = Database(url)
    await week_data.build(database, policy, week_leads, week_leads)
    if url.startswith("postgresql"):  # the bulk load set the ids: move the sequences past them
        statements = [
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
            for name in ("leads", "escalations")
        ]

        def move_on(db: Connection) -> None:
            for statement in statements:
                db.execute(text(statement))

        await database.run(move_on)
    await database.dispose()


async def measure_backend(
    backend: str,
    url: str,
    week_leads: int,
    count: int,
    *,
    report_process: bool = True,
    freeze: bool = True,
    charts: bool = True,
    stand_in: str | None = None,
) -> Run:
    await preload(url, week_leads)
    sim_port, app_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{sim_port}/api/"
    python = sys.executable
    simulator = [python, "-m", "bench.servers", "simulator", "--port", str(sim_port)]
    env = dict(os.environ)
    handoff_env = serve_env(
        api_url,
        url,
        HOST="127.0.0.1",
        PORT=str(app_port),
        HANDOFF_REPORT_PROCESS="1" if report_process else "0",
        **UNPACED,
    )
    patches = ([] if freeze else [NO_FREEZE]) + ([] if charts else [NO_CHARTS])
    serve = [python, "-m", "bot.cli", "serve"]
    if patches:
        serve = [python, "-c", "\n".join([*patches, MAIN]), "serve"]
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session,
        Answers().serving() as answers,
        process(simulator, "simulator ready", env),
        process(serve, "serving on", handoff_env),
    ):
        base = f"http://127.0.0.1:{app_port}"
        await wait_ready(session, f"{base}/healthz")
        await settled(session, base)
        bench = Bench(session, base, api_url, answers)
        await bench.presses(await bench.fresh_leads(20))  # warm-up
        await bench.report()  # the first starts the worker
        await settled(session, base)
        report_alone = await bench.report()
        await settled(session, base)
        alone: list[float] = []
        during: list[float] = []
        report_during: list[float] = []
        size = count // BLOCKS
        for _ in range(BLOCKS):
            alone += await bench.presses(await bench.fresh_leads(size))
            await settled(session, base)
            leads = await bench.fresh_leads(size)
            stop = asyncio.Event()

            async def reporting(stop: asyncio.Event = stop) -> None:
                while not stop.is_set():
                    work = bench.stand_in(stand_in) if stand_in else bench.report()
                    report_during.append(await work)

            reporter = asyncio.create_task(reporting())
            await asyncio.sleep(0.05)  # the first report is under way
            during += await bench.presses(leads)
            stop.set()
            await reporter
            await settled(session, base)
        won = int(await metric(session, base, "handoff_claims_total"))
        given_up = await metric(session, base, "handoff_slack_errors_total")
        if given_up:  # a report's answer or charts that never reached Slack
            print(f"{backend}: {given_up:.0f} Slack side effects given up", file=sys.stderr)
        pressed = 20 + len(alone) + len(during)
        built = len(report_during)
        return Run(
            backend, alone, during, built, bench.errors, won, pressed, report_alone, report_during
        )


async def measure(
    week_leads: int,
    count: int,
    rounds: int,
    postgres: bool,
    sqlite: bool = True,
    *,
    report_process: bool = True,
    freeze: bool = True,
    charts: bool = True,
    stand_in: str | None = None,
) -> list[Run]:
    runs: list[Run] = []
    options: dict[str, Any] = {"report_process": report_process, "freeze": freeze}
    options |= {"charts": charts, "stand_in": stand_in}
    for _ in range(rounds if sqlite else 0):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/handoff.db"
            runs.append(await measure_backend("SQLite", url, week_leads, count, **options))
    base = await postgres_base() if postgres else None
    if base is not None:
        for _ in range(rounds):
            async with scratch_databases(base, [1]) as urls:
                run = await measure_backend("PostgreSQL", urls[1], week_leads, count, **options)
                runs.append(run)
    return runs


def report(runs: list[Run]) -> str:
    lines = [
        "| backend | p99 alone | p99 during reports | ratio | reports answered meanwhile "
        "| a report alone / meanwhile (median, longest) | non-200 | claims won |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        meanwhile = run.report_during or [0.0]
        lines.append(
            f"| {run.backend} | {Run.p99(run.alone) * 1000:.1f} ms | "
            f"{Run.p99(run.during) * 1000:.1f} ms | {run.ratio:.2f}x | {run.reports} "
            f"| {run.report_alone:.2f} s / {statistics.median(meanwhile):.2f} s, "
            f"{max(meanwhile):.2f} s | {run.errors} | {run.won}/{run.pressed} |"
        )
    lines.append("")
    for backend in dict.fromkeys(run.backend for run in runs):
        ratios = [run.ratio for run in runs if run.backend == backend]
        middle = statistics.median(ratios)
        verdict = "ok" if middle <= 1.2 else "MISSED"
        lines.append(f"{backend}: median ratio {middle:.2f}x (target <= 1.2x: {verdict})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--week-leads", type=int, default=20_000)
    # 3,200: 800 a block, a second or two, so each block with reports holds whole reports
    # (their reads, their answer and their charts), not only a report's start.
    parser.add_argument("--presses", type=int, default=3200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--no-freeze", action="store_true", help="serve without its heap freeze once started"
    )
    parser.add_argument(
        "--in-process-reports",
        action="store_true",
        help="HANDOFF_REPORT_PROCESS=0: the server builds reports in its own process",
    )
    parser.add_argument(
        "--no-charts",
        action="store_true",
        help="a diagnostic: serve with the report's charts to the DM patched out",
    )
    parser.add_argument(
        "--stand-in",
        choices=sorted(STAND_INS),
        help="a diagnostic: a CPU spinner at SCHED_IDLE instead of the reports (spin: for a "
        "second; sliced: 10 ms slices with 200 ms of rest between, for two seconds)",
    )
    args = parser.parse_args()
    runs = asyncio.run(
        measure(
            args.week_leads,
            args.presses,
            args.rounds,
            not args.no_postgres,
            not args.no_sqlite,
            report_process=not args.in_process_reports,
            freeze=not args.no_freeze,
            charts=not args.no_charts,
            stand_in=args.stand_in,
        )
    )
    print(report(runs))


if __name__ == "__main__":
    main()
