"""`/sla-report` for one week of 20,000 leads with 100,000 and with 1,000,000 leads stored,
and for a quarter of 13 such weeks.

    python -m bench.report_week [--week-leads 20000] [--sizes 100000 600000 1000000]
                                [--rounds 5] [--quarter-rounds 3] [--no-postgres]

For each backend (a SQLite file in a temporary directory; PostgreSQL when it answers at
HANDOFF_TEST_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test, in a fresh
database dropped afterwards) it grows one store through the sizes, bulk-loading leads under
the example SLA,
`week_leads` in each ISO week going back from the reported week (so 100,000 leads are 5 weeks
of history and 1,000,000 are 50), with the mix a team sees: 85% MQLs, 90% of those posted, 70%
claimed, 60% touched (some late), 40% dispositioned with the example's codes and reasons, and
escalations on 5% of them. A tenth of the claimed leads whose feedback deadline passed
unanswered by then (about 3% of the leads) had a rep away: the sweep offered them to the pool
a few seconds after it (its no-feedback step and `offered` event, with the deadline kept, as
bot/services/sweep.py writes them), and the segment's other rep claimed 70% of them again
within four hours (the rest wait in the pool, unanswered). After ANALYZE at each size, each
round builds the whole report of the newest week (`Reports.report`, as `/sla-report` does:
this week and the week before it, every KPI, by segment, source, campaign and rep). It reports
the median wall time and, of it, the time in the database (inside `Database.run` and
`Database.read`; the two periods are read at once, so this can exceed the wall time).
Targets: 1,000,000 within 1.5x of 100,000 (a week's report costs the week, not the history),
and the week's report under 1 s.

The quarter: on each size that holds all of 2026-Q3 (13 weeks of `week_leads`: 600,000 and
1,000,000 stored), `quarter_rounds` reports of that quarter (and the quarter before, as
`/sla-report 2026-Q3` compares). Targets: under 3 s, and 1,000,000 stored within 1.5x of the
smallest store that holds the quarter.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from bench.pg import postgres_base, scratch_databases
from bot.domain.escalation import claim_deadline
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, snapshot
from bot.domain.report import Period
from bot.services.policies import PolicyBook, load_policy
from bot.services.reports import Reports
from bot.services.sweep import ACTOR, offered
from storage.crm import insert_events
from storage.db import Database, upgrade
from storage.reports import ReportStore
from storage.repository import Store, _claimed
from storage.tables import EscalationRow, LeadRow

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
ZONE = "Australia/Sydney"
WEEK = Period(2026, 47, ZONE)  # the reported week: Mon 16 – Sun 22 Nov 2026
AS_OF = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tue 24 Nov 12:00 in Sydney
QUARTER = Period(2026, 3, ZONE, "quarter")  # Jul – Sep 2026: 13 weeks
CHUNK = 5_000
SEGMENTS = [("enterprise", "C0ENT", 2400), ("mid_market", "C0MID", 450), ("smb", "C0SMB", 40)]
REPS = {"enterprise": ["U0REP1", "U0REP2"], "mid_market": ["U0REP3", "U0REP4"],
        "smb": ["U0REP5", "U0REP6"]}  # fmt: skip
SOURCES = ["webinar", "content_download", "demo_request", "paid_search", "event", "referral"]
OUTCOMES = [  # code, reason, stage
    ("qualified", None, "sql"),
    ("not_a_fit", "Not ICP", "reject"),
    ("not_a_fit", "No budget", "reject"),
    ("not_a_fit", "Wrong territory or segment", "reject"),
    ("bad_data", "Wrong contact", "reject"),
    ("bad_timing", None, "nurture"),
    ("no_response", None, "recycle"),
]


class TimedDatabase(Database):
    """A Database that sums the time spent in `run` while `timing`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.timing = False
        self.run_seconds = 0.0

    async def run(self, work: Callable[[Connection], T]) -> T:
        started = time.perf_counter()
        try:
            return await super().run(work)
        finally:
            if self.timing:
                self.run_seconds += time.perf_counter() - started

    async def read(self, work: Callable[[Connection], T]) -> T:
        # SQLite's reader connections in threads, PostgreSQL's reader loop: neither is `run`.
        started = time.perf_counter()
        try:
            return await super().read(work)
        finally:
            if self.timing:
                self.run_seconds += time.perf_counter() - started


def rows(
    policy: Policy, size: int, week_leads: int, first: int = 0
) -> Iterator[list[dict[str, Any]]]:
    """Leads `first` to `size`, newest week first, in chunks; `week_leads` per ISO week (a
    store grows into older weeks)."""
    rng = random.Random(first)
    chunk: list[dict[str, Any]] = []
    for index in range(first, size):
        week_start = WEEK.start - timedelta(days=7 * (index // week_leads))
        received = week_start + timedelta(seconds=rng.randrange(7 * 24 * 3600))
        segment, channel, employees = SEGMENTS[index % 3]
        source = SOURCES[(index // 3) % len(SOURCES)]
        mql = rng.random() < 0.85
        row: dict[str, Any] = {
            "id": index + 1,
            "external_id": f"bench-{index}",
            "email": f"lead{index}@company{index}.example",
            "name": f"Lead {index}",
            "title": "VP Sales",
            "company": {"name": f"Company {index}", "employees": employees, "country": "AU"},
            "source": source,
            "campaign": f"FY27-{source}",
            "engagement": [],
            "payload": {},
            "score": 85 if mql else 40,
            "score_reasons": [],
            "stage": "mql" if mql else "nurture",
            "segment": segment,
            "channel": channel,
            "tier": "hot",
            "sla_version": policy.version,
            "suggested_owner": REPS[segment][index % 2],
            "owner": None,
            "attempts": 0,
            "received_at": received,
            "cycle": 1,
            "mql": mql,
            "complete": rng.random() < 0.95,
            "icp": rng.random() < 0.75,
            "posted_at": None,
            "claimed_at": None,
            "first_touch_at": None,
            "dispositioned_at": None,
            "feedback_at": None,  # the first feedback: here, the disposition
            "first_touch_due_at": received + timedelta(hours=2) if mql else None,
            "disposition_due_at": None,
            "disposition_code": None,
            "disposition_reason": None,
        }
        if mql and rng.random() < 0.9:
            row["posted_at"] = received + timedelta(seconds=2)
            if rng.random() < 0.7:
                row["owner"] = row["suggested_owner"]
                row["stage"] = "sal"
                row["claimed_at"] = received + timedelta(minutes=rng.randrange(1, 240))
                row["disposition_due_at"] = row["claimed_at"] + timedelta(days=4)
                if rng.random() < 0.86:
                    row["first_touch_at"] = row["claimed_at"] + timedelta(
                        minutes=rng.randrange(1, 300)
                    )
                    row["attempts"] = rng.randrange(1, 8)
                    if rng.random() < 0.6:
                        code, reason, stage = OUTCOMES[rng.randrange(len(OUTCOMES))]
                        row["dispositioned_at"] = row["first_touch_at"] + timedelta(
                            hours=rng.randrange(1, 120)
                        )
                        row |= {"disposition_code": code, "disposition_reason": reason,
                                "stage": stage, "feedback_at": row["dispositioned_at"]}  # fmt: skip
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


AWAY = 0.1  # of the claimed leads whose feedback deadline passed unanswered: their rep was away
RECLAIMED = 0.7  # of those offered: claimed again by the segment's other rep
_VIEW = {field.name for field in fields(LeadView)} - {"stage"}


def handovers(
    policy: Policy, chunk: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chunk's leads offered to the pool by the sweep while their rep was away (`AWAY`),
    by the product's own writers: the step that fired (the no-feedback ladder's at the
    deadline, as `escalation.plan` fires it for a rep away), its `escalated` and `offered`
    events (bot/services/sweep.py `decide` and `offered`: the missed feedback deadline kept),
    and for `RECLAIMED` of them the other rep's claim (storage/repository.py `_claimed`). The
    rows become what the offer (and the claim) left: the events and the escalation rows."""
    rng = random.Random(f"handovers:{chunk[0]['id']}")
    events: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    ladder = policy.escalation.ladder("no_feedback")
    index, step = next((i, s) for i, s in enumerate(ladder) if s.at >= 1.0)
    for row in chunk:
        row.setdefault("claim_due_at", None)  # one set of columns for the chunk's insert
        due, owner = row["disposition_due_at"], row["owner"]
        if owner is None or due is None:
            continue
        now = due + timedelta(seconds=rng.randrange(1, 60))  # the sweep's next pass
        answered = row["feedback_at"] is not None and row["feedback_at"] <= now
        if answered or now > AS_OF or rng.random() >= AWAY:
            continue
        # The lead as the sweep read it: claimed, unanswered.
        values = {name: row[name] for name in _VIEW if name in row}
        values |= {"feedback_at": None, "dispositioned_at": None, "disposition_code": None}
        lead = LeadView(**values, stage=Stage.SAL)
        rep = next(r for r in REPS[row["segment"]] if r != owner)
        fired = {"ladder": "no_feedback", "step": step.percent, "action": step.do}
        steps.append({"lead_id": row["id"], "cycle": 1, "ladder": "no_feedback",
                      "step": index, "action": step.do, "status": "fired", "at": now})  # fmt: skip
        for kind, data in (("escalated", fired), ("offered", offered(lead, owner, rep, now))):
            events.append(
                {"lead_id": row["id"], "type": kind, "actor": ACTOR, "at": now, "data": data}
            )
        stage = row["stage"]  # its stage in the end, had its owner kept it
        row |= {"owner": None, "suggested_owner": rep, "stage": Stage.MQL.value,
                "claim_due_at": claim_deadline(policy, policy.tier(row["tier"]), now),
                "disposition_due_at": None}  # fmt: skip
        claimed = now + timedelta(minutes=rng.randrange(5, 240))
        if claimed <= AS_OF and rng.random() < RECLAIMED:
            held = replace(lead, owner=None, suggested_owner=rep, stage=Stage.MQL)
            events.append(_claimed(held, rep, claimed))
            # Its first claim time stays; the new owner's feedback is due from this claim.
            row |= {"owner": rep, "stage": Stage.SAL.value,
                    "disposition_due_at": claimed + timedelta(days=4)}  # fmt: skip
            if row["feedback_at"] is not None and row["feedback_at"] >= claimed:
                row["stage"] = stage  # the new owner's feedback (and disposition)
                continue
        # Nobody's, or answered before the new owner had it: open, unanswered.
        row |= {"dispositioned_at": None, "feedback_at": None, "disposition_code": None,
                "disposition_reason": None}  # fmt: skip
    return events, steps


async def build(
    database: Database, policy: Policy, size: int, week_leads: int, first: int = 0
) -> tuple[float, int]:
    """Grow the store from `first` to `size` leads (the schema and the SLA first): the time it
    took, and how many of the leads added were offered to the pool (`handovers`)."""
    started = time.perf_counter()
    if first == 0:
        await upgrade(database.engine)
        await Store(database).save_policy(policy.version, snapshot(policy), AS_OF)
    leads, steps = insert(LeadRow), insert(EscalationRow)
    offered_leads = 0
    for chunk in rows(policy, size, week_leads, first):
        fired = [
            {"lead_id": row["id"], "cycle": 1, "ladder": "unclaimed", "step": 0,
             "action": "remind_channel", "status": "fired",
             "at": row["received_at"] + timedelta(minutes=30)}
            for row in chunk if row["id"] % 20 == 0 and row["mql"]
        ]  # fmt: skip
        offers, offer_steps = handovers(policy, chunk)
        fired += offer_steps
        offered_leads += sum(event["type"] == "offered" for event in offers)

        def work(
            db: Connection,
            chunk: list[dict[str, Any]] = chunk,
            fired: Any = fired,
            offers: Any = offers,
        ) -> None:
            db.execute(leads, chunk)
            if fired:
                db.execute(steps, fired)
            insert_events(db, offers)  # as the sweep writes them

        await database.run(work)
    if database._sqlite is not None:
        await database.run(lambda db: db.exec_driver_sql("ANALYZE"))
    else:
        async with database.engine.connect() as connection:
            auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - started, offered_leads


class Case:
    def __init__(self, backend: str, database: TimedDatabase, policy: Policy, size: int) -> None:
        self.backend, self.size = backend, size
        self.database = database
        self.reports = Reports(ReportStore(self.database), PolicyBook(Store(self.database), policy))
        self.walls: list[float] = []
        self.dbs: list[float] = []
        self.received = 0
        self.quarter_walls: list[float] = []
        self.quarter_dbs: list[float] = []
        self.quarter_received = 0

    @property
    def holds_quarter(self) -> bool:
        weeks = self.size // WEEK_LEADS[0]
        return WEEK.start - timedelta(days=7 * (weeks - 1)) <= QUARTER.start

    async def measure_quarter(self) -> None:
        self.database.run_seconds = 0.0
        self.database.timing = True
        started = time.perf_counter()
        report = await self.reports.report(QUARTER, AS_OF)
        self.quarter_walls.append(time.perf_counter() - started)
        self.database.timing = False
        self.quarter_dbs.append(self.database.run_seconds)
        self.quarter_received = report.received

    async def measure(self) -> None:
        self.database.run_seconds = 0.0
        self.database.timing = True
        started = time.perf_counter()
        report = await self.reports.report(WEEK, AS_OF)
        self.walls.append(time.perf_counter() - started)
        self.database.timing = False
        self.dbs.append(self.database.run_seconds)
        self.received = report.received

    def line(self) -> str:
        walls = ", ".join(f"{w * 1000:.0f}" for w in self.walls)
        line = f"{self.backend} {self.size:,} stored: report ms [{walls}], week {self.received:,}"
        if self.quarter_walls:
            quarter = ", ".join(f"{w * 1000:.0f}" for w in self.quarter_walls)
            line += f"; quarter ms [{quarter}], {self.quarter_received:,} leads"
        return line


WEEK_LEADS = [20_000]  # set by main: which sizes hold the whole quarter


async def measure_backend(
    backend: str,
    url: str,
    policy: Policy,
    sizes: list[int],
    week_leads: int,
    rounds: int,
    quarter_rounds: int,
) -> list[Case]:
    """One store grown through `sizes` (so a million leads are built once); at each size the
    week's report, and the quarter's when the store holds all of it."""
    cases = []
    database = TimedDatabase(url)
    try:
        built = 0
        for size in sizes:
            seconds, offers = await build(database, policy, size, week_leads, first=built)
            built = size
            print(
                f"{backend} {size:,} leads stored: built in {seconds:.0f} s "
                f"({offers:,} more offered to the pool, deadlines kept)",
                flush=True,
            )
            case = Case(backend, database, policy, size)
            cases.append(case)
            await case.measure()  # warm-up: caches, as in a running server
            case.walls.clear()
            case.dbs.clear()
            for _ in range(rounds):
                await case.measure()
            if case.holds_quarter:
                await case.measure_quarter()  # warm-up
                case.quarter_walls.clear()
                case.quarter_dbs.clear()
                for _ in range(quarter_rounds):
                    await case.measure_quarter()
            print(case.line(), flush=True)
    finally:
        await database.dispose()
    return cases


async def measure(
    week_leads: int, sizes: list[int], rounds: int, quarter_rounds: int, postgres: bool
) -> list[Case]:
    policy = load_policy(str(ROOT / "sla.yaml"))
    WEEK_LEADS[0] = week_leads
    with tempfile.TemporaryDirectory(prefix="handoff-report-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'report.db'}"
        cases = await measure_backend(
            "sqlite", url, policy, sizes, week_leads, rounds, quarter_rounds
        )
    base = await postgres_base() if postgres else None
    if base is None:
        print("PostgreSQL: not measured (no server answered)", flush=True)
        return cases
    async with scratch_databases(base, [sizes[-1]]) as urls:
        cases += await measure_backend(
            "postgresql", urls[sizes[-1]], policy, sizes, week_leads, rounds, quarter_rounds
        )
    return cases


def report(cases: list[Case]) -> str:
    lines = [
        "| backend | leads stored | leads in the week | report (median) | of it database "
        "| vs smallest |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    summary = []
    for case in cases:
        base = min((c for c in cases if c.backend == case.backend), key=lambda c: c.size)
        wall, db = statistics.median(case.walls), statistics.median(case.dbs)
        ratio = wall / statistics.median(base.walls)
        lines.append(
            f"| {case.backend} | {case.size:,} | {case.received:,} | {wall * 1000:.0f} ms "
            f"| {db * 1000:.0f} ms | {ratio:.2f}x |"
        )
        if case is not base:
            verdict = "ok" if ratio <= 1.5 else "OVER"
            summary.append(
                f"{case.backend}: {case.size:,} vs {base.size:,} stored: {ratio:.2f}x "
                f"(target <= 1.5x: {verdict})"
            )
        verdict = "ok" if wall < 1 else "OVER"
        summary.append(
            f"{case.backend} {case.size:,}: the week's report in {wall * 1000:.0f} ms "
            f"(target < 1 s: {verdict})"
        )
    quarter_lines = [
        "| backend | leads stored | leads in the quarter | quarter report (median) "
        "| of it database | vs smallest holding it |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        if not case.quarter_walls:
            continue
        holding = [c for c in cases if c.backend == case.backend and c.quarter_walls]
        base = min(holding, key=lambda c: c.size)
        wall, db = statistics.median(case.quarter_walls), statistics.median(case.quarter_dbs)
        ratio = wall / statistics.median(base.quarter_walls)
        quarter_lines.append(
            f"| {case.backend} | {case.size:,} | {case.quarter_received:,} | "
            f"{wall * 1000:.0f} ms | {db * 1000:.0f} ms | {ratio:.2f}x |"
        )
        if case is not base:
            verdict = "ok" if ratio <= 1.5 else "OVER"
            summary.append(
                f"{case.backend}: the quarter, {case.size:,} vs {base.size:,} stored: "
                f"{ratio:.2f}x (target <= 1.5x: {verdict})"
            )
        verdict = "ok" if wall < 3 else "OVER"
        summary.append(
            f"{case.backend} {case.size:,}: the quarter's report in {wall * 1000:.0f} ms "
            f"(target < 3 s: {verdict})"
        )
    return "\n".join([*lines, "", *quarter_lines, "", *summary])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--week-leads", type=int, default=20_000, help="leads per week")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 600_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported")
    parser.add_argument("--quarter-rounds", type=int, default=3, help="rounds of the quarter")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    cases = asyncio.run(
        measure(
            args.week_leads,
            sorted(args.sizes),
            args.rounds,
            args.quarter_rounds,
            not args.no_postgres,
        )
    )
    print()
    print(report(cases))


if __name__ == "__main__":
    main()
