"""An escalation sweep over 100 due leads among 10,000 and among 100,000 open leads.

    python -m bench.sweep_due [--due 100] [--sizes 10000 100000] [--rounds 5] [--no-postgres]

For each backend (a SQLite file in a temporary directory; PostgreSQL when it answers at
HANDOFF_TEST_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test, in a fresh
database dropped afterwards) and each size, it builds the database with bulk inserts (not
through intake) under the example SLA, at a fixed `now` inside business hours:

* the open leads that are not due: 80% claimed and touched (SAL), waiting for their first
  feedback, whose next check is its deadline (72 hours after a claim in the last 2 days);
  20% warm MQLs received in the last hour, whose next check is their first unclaimed step
  (hours away). Every lead has its `received` and `mql` events and its
  delivered `post_lead` outbox row; a fifth of the SAL leads have a recorded escalation.
* exactly `due` leads (spread evenly over the ids): hot MQLs posted 2 hours before `now`
  and never claimed, so their claim deadline (1 working hour) has passed: the sweep fires the
  strongest due step of each, a reassignment (a note in the thread, a DM to the new rep and one
  to the rep it was taken from, a refresh of the post), and records the 4 steps it passes over
  as skipped.

After ANALYZE (VACUUM ANALYZE on PostgreSQL) and one warm-up sweep, each round resets the due
leads (the sweep's escalations, outbox rows and events deleted, their columns restored) and
runs `Sweeper.run(now)` on each size in turn, so load from elsewhere on the machine hits both.
It measures the sweep's wall time and its database time: the time spent inside `Database.run`
(the units of work, transactions included), split into executing SQL (cursor execute to its
return), deciding inside a transaction (the rules and rendering for leads that changed between
the sweep's read and its lock) and the rest (building statements, SQLAlchemy, the driver,
commits); and, apart, the deciding done before the locking transaction. The median round is
reported.
Targets: the 100,000 case within 1.5x of the 10,000 case (the sweep costs what is due, not
what is open), and under 50 ms of database time for the sweep of 100 due leads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import bindparam, event, insert, text, update
from sqlalchemy.engine import Connection

import bot.services.sweep as sweep_service
import storage.rotation as rotation_storage
from bench.pg import postgres_base, scratch_databases
from bot.domain import escalation
from bot.domain.escalation import claim_deadline
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, snapshot
from bot.services.policies import PolicyBook, load_policy
from bot.services.sweep import Sweeper
from storage.db import Database, upgrade
from storage.repository import Store
from storage.sweep import SweepStore, due_page
from storage.tables import LeadRow

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # Wednesday 14:00 in Sydney: business hours
CHUNK = 5_000
SEGMENTS = [  # (segment, channel, reps, employees) of the example SLA
    ("enterprise", "C0ENT", ["U0REP1", "U0REP2"], 2400),
    ("mid_market", "C0MID", ["U0REP3", "U0REP4"], 450),
    ("smb", "C0SMB", ["U0REP5", "U0REP6"], 40),
]
SOURCES = ["webinar", "content_download", "demo_request", "paid_search", "event", "referral"]
# The columns a sweep changes on a due lead, restored between rounds.
RESTORE = ["stage", "owner", "suggested_owner", "next_action_at", "cycle", "claim_due_at"]


class TimedDatabase(Database):
    """A Database that sums the time spent in `run` and in SQL statements while `timing`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.timing = False
        self.run_seconds = 0.0
        self.run_calls = 0
        self.sql_seconds = 0.0
        self.statements = 0
        engine = self._sqlite if self._sqlite is not None else self.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, *_: Any) -> None:
        if self.timing:
            self.sql_seconds += time.perf_counter() - conn.info.pop("bench_started")
            self.statements += 1

    def reset(self) -> None:
        self.run_seconds = self.sql_seconds = 0.0
        self.run_calls = self.statements = 0

    async def run(self, work: Callable[[Connection], T]) -> T:
        started = time.perf_counter()
        INSIDE[0] = True
        try:
            return await super().run(work)
        finally:
            INSIDE[0] = False
            if self.timing:
                self.run_seconds += time.perf_counter() - started
                self.run_calls += 1


INSIDE = [False]  # whether a `Database.run` (a transaction) is under way


class Stopwatch:
    """Sums the time spent in `module.name` while `on` (it replaces the module attribute),
    and of it the time inside a transaction."""

    def __init__(self, module: Any, name: str) -> None:
        self.seconds = self.inside = 0.0
        self.on = False
        inner = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return inner(*args, **kwargs)
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                self.seconds += spent
                if INSIDE[0]:
                    self.inside += spent

        setattr(module, name, timed)


# The sweep's decisions (rules and rendering: before its locking transaction, or inside it for
# a lead that changed meanwhile) and, within those inside, the rotation's turns (a segment's
# hold and read under the lock, then in memory): deciding inside is the first less the second.
DECIDE = Stopwatch(sweep_service, "decide")
ROTATE = Stopwatch(rotation_storage.HeldRotations, "take")


class NoDelivery:
    def deliver_soon(self) -> None:
        pass


@dataclass
class Round:
    wall_ms: float
    db_ms: float
    sql_ms: float
    decide_ms: float  # inside a transaction (leads that changed after the read)
    decide_before_ms: float  # before the locking transaction
    db_calls: int
    statements: int
    looked_at: int
    changed: int


@dataclass
class Case:
    backend: str
    open_leads: int
    due: int
    build_s: float
    due_plan: str
    rounds: list[Round]

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in self.rounds))

    def middle(self) -> Round:
        """The median round by database time."""
        return sorted(self.rounds, key=lambda r: r.db_ms)[(len(self.rounds) - 1) // 2]


def _lead(index: int, policy: Policy) -> dict[str, Any]:
    """The columns every lead shares (who it is, where it goes), as intake would store them."""
    segment, channel, reps, employees = SEGMENTS[index % len(SEGMENTS)]
    source = SOURCES[index % len(SOURCES)]
    company: dict[str, Any] = {"name": f"Company {index}", "domain": f"company{index}.example"}
    company |= {"employees": employees, "industry": "Software", "country": "AU"}
    engagement: list[dict[str, Any]] = [
        {"type": source, "title": f"{source} {index % 40}", "at": "2026-03-02T01:00:00+00:00"},
        {"type": "page_view", "url": "https://acme.example/pricing", "at": None},
    ]
    payload = {
        "external_id": f"bench-{index}",
        "email": f"lead{index}@company{index}.example",
        "name": f"Lead {index}",
        "title": "VP Sales",
        "company": company,
        "source": source,
        "engagement": engagement,
    }
    return {
        "id": index + 1,
        "external_id": payload["external_id"],
        "email": payload["email"],
        "name": payload["name"],
        "title": "VP Sales",
        "phone": None,
        "company": company,
        "source": source,
        "campaign": f"FY27-Q3-{source}",
        "engagement": engagement,
        "payload": payload,
        "score_reasons": ["title: VP", f"source: {source}", "company size"],
        "stage_reason": None,
        "segment": segment,
        "channel": channel,
        "sla_version": policy.version,
        "suggested_owner": reps[index % 2],
        "attempts": 0,
        "disposition_code": None,
        "disposition_reason": None,
        "disposition_note": None,
        "message_channel": channel,
        "message_ts": f"1772000000.{index:06d}",
        "claimed_at": None,
        "first_touch_at": None,
        "dispositioned_at": None,
        "disposition_due_at": None,
        "cycle": 1,
        "snoozed_until": None,
    }


class Leads:
    """Generates the leads of one size: `due` of them due at NOW, the rest later."""

    def __init__(self, policy: Policy, size: int, due: int) -> None:
        self.policy = policy
        self.size = size
        step = size // due
        self.due_ids = [i * step + step // 2 + 1 for i in range(due)]
        self._due = set(self.due_ids)
        self.random = random.Random(size)
        self.hot = next(t for t in policy.tiers if t.name == "hot")
        self.warm = next(t for t in policy.tiers if t.name == "warm")
        self._clocks: dict[tuple[str, str, datetime], dict[str, Any]] = {}
        self._deadlines: dict[datetime, datetime] = {}

    def clocks(self, stage: Stage, tier: Any, received: datetime) -> dict[str, Any]:
        """A lead's clocks as intake sets them (cached: leads share whole minutes)."""
        key = (stage.value, tier.name, received)
        if key not in self._clocks:
            values = {
                "stage": stage.value,
                "tier": tier.name,
                "received_at": received,
                "cycle_started_at": received,
                "posted_at": received + timedelta(seconds=1),
                "claim_due_at": claim_deadline(self.policy, tier, received),
                "first_touch_due_at": self.policy.calendar.add(received, tier.first_touch),
            }
            if stage is Stage.MQL:
                view = LeadView(
                    id=0, external_id="", email="", segment="", channel="", score=0,
                    sla_version=self.policy.version, **{**values, "stage": stage},
                )  # fmt: skip
                values["next_action_at"] = escalation.first_check(view, self.policy)
            self._clocks[key] = values
        return self._clocks[key]

    def row(self, index: int) -> dict[str, Any]:
        row = _lead(index, self.policy)
        if row["id"] in self._due:
            # A hot MQL posted 2 hours ago and never claimed: its claim deadline has passed.
            row |= {"owner": None, "score": 90}
            row |= self.clocks(Stage.MQL, self.hot, NOW - timedelta(hours=2))
            assert row["next_action_at"] <= NOW, row
            return row
        if self.random.random() < 0.2:
            # A warm MQL received in the last hour: its first unclaimed step is hours away.
            received = NOW - timedelta(minutes=self.random.randrange(1, 60))
            row |= {"owner": None, "score": 65}
            row |= self.clocks(Stage.MQL, self.warm, received)
        else:
            # Claimed and touched in the last 2 days: waiting for its first feedback (72 hours
            # after the claim), which is its next check (the no_feedback ladder's first step is
            # at 100%, before the final disposition's at the cadence's end).
            claimed = NOW - timedelta(minutes=5 * self.random.randrange(1, 2 * 24 * 12))
            tier = self.hot if index % 4 == 0 else self.warm
            row |= {"owner": row["suggested_owner"], "score": 82}
            row |= self.clocks(Stage.SAL, tier, claimed - timedelta(minutes=30))
            if claimed not in self._deadlines:
                deadline = self.policy.disposition_deadline
                self._deadlines[claimed] = self.policy.calendar.add(claimed, deadline)
            disposition_due = self._deadlines[claimed]
            row |= {
                "claimed_at": claimed,
                "first_touch_at": claimed + timedelta(minutes=10),
                "attempts": 1,
                "disposition_due_at": disposition_due,
                "next_action_at": disposition_due,
            }
        assert row["next_action_at"] > NOW, row
        return row

    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, self.size, CHUNK):
            yield [self.row(i) for i in range(start, min(start + CHUNK, self.size))]


# The history every open lead has: its intake events, its posted message, some escalations.
_HISTORY = [
    """INSERT INTO events (lead_id, type, actor, at, data)
       SELECT id, 'received', 'intake', received_at, '{"source": "intake"}' FROM leads""",
    """INSERT INTO events (lead_id, type, actor, at, data)
       SELECT id, 'mql', 'handoff', received_at, '{"tier": "warm"}' FROM leads""",
    """INSERT INTO events (lead_id, type, actor, at, data)
       SELECT id, 'claimed', owner, claimed_at, '{}' FROM leads WHERE stage = 'sal'""",
    """INSERT INTO outbox (kind, lead_id, channel, key, payload, state, created_at,
                           attempts, unknown, unknown_before, done_at, result_ts)
       SELECT 'post_lead', id, channel, 'post_lead:' || id || ':1', '{}', 'done',
              received_at, 1, false, false, posted_at, message_ts FROM leads""",
    """INSERT INTO escalations (lead_id, cycle, ladder, step, action, status, at)
       SELECT id, 1, 'unclaimed', 0, 'remind_channel', 'fired', claimed_at FROM leads
       WHERE stage = 'sal' AND id % 5 = 0""",
]


async def build(database: Database, policy: Policy, leads: Leads) -> None:
    await upgrade(database.engine)
    await Store(database).save_policy(policy.version, snapshot(policy), NOW)
    statement = insert(LeadRow)
    for chunk in leads.chunks():
        await database.run(lambda db, rows=chunk: db.execute(statement, rows))  # type: ignore[misc]

    def history(db: Connection) -> None:
        for sql in _HISTORY:
            db.exec_driver_sql(sql)
        if db.dialect.name == "postgresql":
            db.exec_driver_sql("SELECT setval('leads_id_seq', (SELECT max(id) FROM leads))")

    await database.run(history)
    if database._sqlite is not None:
        await database.run(lambda db: db.exec_driver_sql("ANALYZE"))
    else:
        async with database.engine.connect() as connection:
            auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql("VACUUM ANALYZE")


async def due_plan(database: Database) -> str:
    """How the backend runs the sweep's due query (it should use ix_leads_next_action_at)."""

    def explain(db: Connection) -> str:
        compiled = due_page(db).compile(dialect=db.dialect)
        values = compiled.construct_params({"p_now": NOW, "p_limit": 200})
        params = []
        for name in compiled.positiontup or []:
            process = compiled.binds[name].type.bind_processor(db.dialect)
            params.append(process(values[name]) if process else values[name])
        prefix = "EXPLAIN" if db.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
        rows = db.exec_driver_sql(f"{prefix} {compiled.string}", tuple(params))
        return " / ".join(str(row[-1]).strip() for row in rows)

    return await database.run(explain)


async def reset_due(database: Database, originals: list[dict[str, Any]]) -> None:
    """Put the due leads back as they were before the sweep (its new rows deleted)."""
    ids = [row["id"] for row in originals]
    restore = (
        update(LeadRow)
        .where(LeadRow.id == bindparam("p_id"))
        .values({name: bindparam(f"p_{name}") for name in RESTORE})
    )
    params = [{"p_id": row["id"], **{f"p_{n}": row[n] for n in RESTORE}} for row in originals]

    def work(db: Connection) -> None:
        for table, column in (("escalations", "at"), ("outbox", "created_at"), ("events", "at")):
            db.execute(
                text(f"DELETE FROM {table} WHERE lead_id IN :ids AND {column} >= :now").bindparams(
                    bindparam("ids", expanding=True),
                    bindparam("now", type_=LeadRow.received_at.type),
                ),
                {"ids": ids, "now": NOW},
            )
        db.execute(restore, params)

    await database.run(work)


class Bench:
    """One database of one size: built, then swept once per round."""

    def __init__(self, backend: str, url: str, policy: Policy, size: int, due: int) -> None:
        self.database = TimedDatabase(url)
        self.leads = Leads(policy, size, due)
        self.policy = policy
        self.case = Case(backend, size, due, 0.0, "", [])
        self.originals = [self.leads.row(lead_id - 1) for lead_id in self.leads.due_ids]
        store = Store(self.database)
        self.sweeper = Sweeper(SweepStore(self.database), PolicyBook(store, policy), NoDelivery())

    async def build(self) -> None:
        started = time.perf_counter()
        await build(self.database, self.policy, self.leads)
        self.case.build_s = time.perf_counter() - started
        self.case.due_plan = await due_plan(self.database)
        await self.sweep()  # warm-up: compiled statement caches, as in a running server

    async def sweep(self) -> Round:
        database = self.database
        await reset_due(database, self.originals)
        database.reset()
        DECIDE.seconds = DECIDE.inside = ROTATE.seconds = 0.0
        database.timing = DECIDE.on = ROTATE.on = True
        started = time.perf_counter()
        result = await self.sweeper.run(NOW)
        wall = time.perf_counter() - started
        database.timing = DECIDE.on = ROTATE.on = False
        due = self.case.due
        if result.looked_at != due or result.changed != due:
            raise SystemExit(f"{self.case.backend}: expected {due} leads escalated, got {result}")
        return Round(
            wall_ms=wall * 1000,
            db_ms=database.run_seconds * 1000,
            sql_ms=database.sql_seconds * 1000,
            decide_ms=(DECIDE.inside - ROTATE.inside) * 1000,
            decide_before_ms=(DECIDE.seconds - DECIDE.inside) * 1000,
            db_calls=database.run_calls,
            statements=database.statements,
            looked_at=result.looked_at,
            changed=result.changed,
        )


async def measure_backend(
    backend: str, urls: dict[int, str], policy: Policy, due: int, rounds: int
) -> list[Case]:
    """Build every size, then sweep them in turn each round (load on the machine hits all)."""
    benches: list[Bench] = []
    try:
        for size, url in urls.items():
            bench = Bench(backend, url, policy, size, due)
            benches.append(bench)
            await bench.build()
            print(f"{backend} {size:,} open leads: built in {bench.case.build_s:.1f} s", flush=True)
        for _ in range(rounds):
            for bench in benches:
                bench.case.rounds.append(await bench.sweep())
    finally:
        for bench in benches:
            await bench.database.dispose()
    for bench in benches:
        print(_line(bench.case), flush=True)
    return [bench.case for bench in benches]


async def measure(due: int, sizes: list[int], rounds: int, postgres: bool) -> list[Case]:
    policy = load_policy(str(ROOT / "sla.yaml"))
    with tempfile.TemporaryDirectory(prefix="handoff-sweep-") as tmp:
        urls = {size: f"sqlite+aiosqlite:///{Path(tmp) / f'sweep-{size}.db'}" for size in sizes}
        cases = await measure_backend("sqlite", urls, policy, due, rounds)
    base = await postgres_base() if postgres else None
    if base is None:
        print("PostgreSQL: not measured (no server answered)", flush=True)
        return cases
    async with scratch_databases(base, sizes) as urls:
        cases += await measure_backend("postgresql", urls, policy, due, rounds)
    return cases


def _line(case: Case) -> str:
    walls = ", ".join(f"{r.wall_ms:.1f}" for r in case.rounds)
    dbs = ", ".join(f"{r.db_ms:.1f}" for r in case.rounds)
    return (
        f"{case.backend} {case.open_leads:,} open leads: sweep wall ms [{walls}], "
        f"database ms [{dbs}]\n  due query plan: {case.due_plan}"
    )


def report(cases: list[Case]) -> str:
    lines = [
        "Median round (by database time); database time = inside Database.run, of it: SQL "
        "executing, deciding inside a transaction (leads changed since the read), the rest "
        "(building statements, SQLAlchemy, the driver, commits). Deciding before the lock: the "
        "sweep's rules and rendering, between its read and its locking transaction.",
        "",
        "| backend | open leads | due | sweep wall | database time | of it SQL | deciding "
        "| the rest | deciding before the lock | transactions / statements "
        "| database time vs smallest |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary: list[str] = []
    for case in cases:
        smallest = min(c.open_leads for c in cases if c.backend == case.backend)
        base = next(c for c in cases if c.backend == case.backend and c.open_leads == smallest)
        ratio = case.median("db_ms") / base.median("db_ms")
        wall_ratio = case.median("wall_ms") / base.median("wall_ms")
        mid = case.middle()
        rest = mid.db_ms - mid.sql_ms - mid.decide_ms
        lines.append(
            f"| {case.backend} | {case.open_leads:,} | {case.due} | {mid.wall_ms:.1f} ms "
            f"| {mid.db_ms:.1f} ms | {mid.sql_ms:.1f} ms | {mid.decide_ms:.1f} ms "
            f"| {rest:.1f} ms | {mid.decide_before_ms:.1f} ms | {mid.db_calls} / {mid.statements} "
            f"| {ratio:.2f}x |"
        )
        if case is not base:
            verdict = "ok" if ratio <= 1.5 else "OVER"
            summary.append(
                f"{case.backend}: {case.open_leads:,} vs {base.open_leads:,} open leads: "
                f"database time {ratio:.2f}x, wall {wall_ratio:.2f}x (target <= 1.5x: {verdict})"
            )
        verdict = "ok" if mid.db_ms < 50 else "OVER"
        summary.append(
            f"{case.backend} {case.open_leads:,}: {mid.db_ms:.1f} ms of database time for "
            f"{case.due} due leads, {mid.db_ms / case.due:.2f} ms a lead "
            f"(target < 50 ms: {verdict})"
        )
    return "\n".join([*lines, "", *summary])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--due", type=int, default=100, help="leads due at the sweep")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    cases = asyncio.run(measure(args.due, sorted(args.sizes), args.rounds, not args.no_postgres))
    print()
    print(report(cases))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    data = [
        {
            **asdict(case),
            "median": {
                k: case.median(k)
                for k in ("wall_ms", "db_ms", "sql_ms", "decide_ms", "decide_before_ms")
            },
        }
        for case in cases
    ]
    (out / "sweep_due.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
