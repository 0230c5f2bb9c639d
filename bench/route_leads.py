"""Route 10,000 leads across 50 reps with 5,000 named accounts and 20 territory rules.

    python -m bench.route_leads [--leads 10000] [--no-postgres] [--no-sqlite]

Each backend (a SQLite file in a temporary directory; PostgreSQL when it answers at
HANDOFF_TEST_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test, in fresh
databases dropped afterwards) runs intake (`Services.intake`, the `POST /leads` use case, every
lead an MQL) twice, each on an empty database:

* the baseline: the same two segments of 50 reps with no routing keys (all weights 1, no caps,
  nobody away, no named accounts or territories: the plain round robin);
* routed: 5,000 named accounts (15% of the leads come from one of them), lead-to-account
  matching on, 20 territory rules (country, state, postcode prefix) that pick the segment,
  weights 1–3, a daily cap that the heaviest reps reach, and 5 of the 50 reps away.
  On PostgreSQL the routed run is two processes taking intake at once (half the leads each),
  as two replicas would.

It reports leads a second, intake time per lead (p50, p99), the routing time per lead (the
rules, the account look-up, the read of who is away and the rotation's turn, timed around
those calls; the last three run in the intake's transaction; on PostgreSQL the account
look-ups ride on the select of the batch's stored leads, which every lead makes: the summary
also gives routing without that select, a bound from below, and the turn's locking statement:
on PostgreSQL the whole turn, where the wait for another process's lock shows), and the fairness
figure: each round-robin rep's leads against the weighted share, with the caps and time away
applied (the share is water-filled: a capped rep's share is the cap, the rest is shared by
weight among the reps available). Targets: routing adds under 2 ms a lead at p99; no rep
deviates from the share by more than one lead.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_

import bot.services.leads as leads_service
import storage.repository as repository_storage
import storage.rotation as rotation_storage
from bench.pg import postgres_base, scratch_databases
from bot.app import settle_heap
from bot.cli.stack import ERASURE_KEY
from bot.domain.erasure import ErasureKey
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.leads import Services
from bot.services.policies import PolicyBook, load_policy
from storage.away import AwayStore
from storage.db import Database, fetch_driven, upgrade
from storage.repository import Store
from storage.tables import LeadRow, RotationRep

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # Wednesday 14:00 in Sydney: business hours
REPS = [f"U0R{number:02d}" for number in range(50)]
AWAY = frozenset(REPS[-5:])
STATES = ["NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT"]
COUNTRIES = ["AU", "NZ", "SG", "GB", "DE", "FR", "US", "CA"]
NAMED = 5_000


def bench_policy(routed: bool, leads: int) -> Policy:
    """The example SLA with two segments of the same 50 reps; `routed`: the routing keys."""
    content = snapshot(load_policy(str(ROOT / "sla.yaml")))
    content["targets"].pop("mql_per_week", None)
    content.pop("plan", None)
    apac: dict[str, Any] = {"name": "apac", "when": {"country": ["AU", "NZ", "SG"]}}
    emea: dict[str, Any] = {"name": "emea"}
    segments = [apac | {"channel": "C0APAC", "reps": REPS}, emea | {"channel": "C0EMEA"}]
    segments[1]["reps"] = REPS
    if routed:
        weights = {rep: 1 + number % 3 for number, rep in enumerate(REPS)}
        # About the share of a weight-3 rep, less a little: the heaviest reps reach it.
        cap = {"per_day": max(2, leads // 50)}
        for segment in segments:
            segment |= {"weights": weights, "cap": cap}
        content["named_accounts"] = {
            f"named{number}.example": REPS[number % 50] for number in range(NAMED)
        }
        content["account_matching"] = True
        territories = [
            {"when": {"country": "AU", "state": state}, "segment": "apac"} for state in STATES
        ]
        territories += [
            {"when": {"country": "US", "postcode_prefix": str(digit)}, "segment": "apac"}
            for digit in range(6)
        ]
        territories += [
            {"when": {"country": "US", "postcode_prefix": str(digit)}, "segment": "emea"}
            for digit in range(6, 10)
        ]
        territories += [{"when": {"country": c}, "segment": "emea"} for c in ("NZ", "SG")]
        content["territories"] = territories
    content["segments"] = segments
    return parse_policy(content, "bench")


def payloads(count: int, seed: int = 7) -> list[dict[str, Any]]:
    chance = random.Random(seed)
    sent = []
    for number in range(count):
        if chance.random() < 0.15:
            domain = f"named{chance.randrange(NAMED)}.example"
        else:
            domain = f"co{number}.example"
        country = chance.choice(COUNTRIES)
        company = {"name": f"Company {number}", "domain": domain, "employees": 2400}
        company |= {"country": country, "state": chance.choice(STATES)}
        company["postcode"] = f"{chance.randrange(10)}{chance.randrange(1000):03d}"
        sent.append(
            {
                "external_id": f"bench-{number}",
                "email": f"p{number}@{domain}",
                "name": "Pat Lee",
                "title": "VP Sales",
                "company": company,
                "source": "webinar",
                "score": 88,
            }
        )
    return sent


class Quiet:
    def deliver_soon(self) -> None:
        pass


@dataclass
class Timer:
    """The routing time of the lead under way: the calls wrapped below add to it."""

    spent: float = 0.0
    shared: float = 0.0  # of it, in statements that run routed or not (`wrap(shared=True)`)
    held: float = 0.0  # of it, in the turn's lock statement with its reads (a wait included)

    def wrap(self, function: Callable[..., Any], shared: bool = False) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                self.spent += took
                self.shared += took if shared else 0.0

        return timed

    def wrap_held(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` (called inside a wrapped call: its time is counted there) timed apart."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.held += time.perf_counter() - started

        return timed

    def wrap_async(self, function: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - started

        return timed


def transaction_begun(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, the first statement of intake's transaction, with the transaction begun
    before it: asyncpg sends a transaction's BEGIN as a round trip of its own just before its
    first statement, and that round trip is the transaction's, paid routed or not, not
    routing's (SQLite: nothing to begin)."""

    def call(db: Connection, *args: Any, **kwargs: Any) -> Any:
        adapted = db.connection.dbapi_connection
        if getattr(adapted, "_transaction", False) is None:  # asyncpg's, not begun yet
            await_(adapted._start_transaction())  # type: ignore[union-attr]
        return function(db, *args, **kwargs)

    return call


@dataclass
class Run:
    intake_ms: list[float] = field(default_factory=list)
    routing_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    # Each lead's routing time less the statements it shares with intake's own work: a bound
    # from below, as `routing_ms` is one from above.
    own_ms: list[float] = field(default_factory=list)
    # Each routed turn's lock statement with its reads: with two processes, the wait for the
    # other's lock shows here.
    lock_ms: list[float] = field(default_factory=list)


async def take_intake(url: str, routed: bool, leads: int, part: slice, migrate: bool) -> Run:
    """Intake of `payloads(leads)[part]` on `url`, each lead timed."""
    database = Database(url)
    if migrate:
        await upgrade(database.engine)
    store = Store(database, ErasureKey(ERASURE_KEY))
    policy = bench_policy(routed, leads)
    book = PolicyBook(store, policy)
    await book.record_current(NOW)
    services = Services(store, book, Quiet())
    timer = Timer()
    if routed:
        # Five reps away for the whole run, stored as `/handoff away` stores it: intake reads
        # who is away with the rotation's turn (inside `take`, timed below).
        away = AwayStore(database)
        for rep in sorted(AWAY):
            await away.set(rep, None, "bench", rep, NOW)
        services.availability = away
        rotation_storage.take = timer.wrap(rotation_storage.take)
        rotation_storage._hold_read = timer.wrap_held(rotation_storage._hold_read)
        # PostgreSQL's one-statement turn (lock, reads, pick, write; a wait included)
        rotation_storage._turn_in_sql = timer.wrap_held(rotation_storage._turn_in_sql)
        # SQLite takes a batch's turns before it inserts the leads (storage/repository.py)
        repository_storage._turned_first = timer.wrap(repository_storage._turned_first)
        leads_service.choose_owner = timer.wrap(leads_service.choose_owner)
        Services._account = timer.wrap_async(Services._account)  # type: ignore[method-assign]
        # The account look-up in the intake's transaction (storage/repository.py's name for
        # it); on PostgreSQL it is joined to the read of the batch's stored leads, which runs
        # anyway: that whole statement is timed as routing (more than the look-up costs).
        repository_storage.account_lead = timer.wrap(repository_storage.account_lead)
        repository_storage._stored_and_accounts = transaction_begun(
            timer.wrap(repository_storage._stored_and_accounts, shared=True)
        )
        Services._away = timer.wrap_async(Services._away)  # type: ignore[method-assign]
        # Who is away, read in the intake's transaction when a rule names a rep (SQLite; on
        # PostgreSQL it rides on the stored-lead select, timed above).
        repository_storage.everyone_away = timer.wrap(repository_storage.everyone_away)
    sent = payloads(leads)[part]
    settle_heap()  # as `serve` does once started: the SLA's 5,000 accounts out of the GC's walk
    # As `serve` does: SQLite's WAL checkpointed in a thread, not inside a commit (a no-op on
    # PostgreSQL).
    checkpoints = asyncio.create_task(database.checkpoints())
    run = Run()
    started = time.perf_counter()
    for number, payload in enumerate(sent):
        timer.spent = timer.shared = timer.held = 0.0
        begun = time.perf_counter()
        await services.intake(payload, NOW + timedelta(milliseconds=number))
        run.intake_ms.append((time.perf_counter() - begun) * 1000)
        run.routing_ms.append(timer.spent * 1000)
        run.own_ms.append((timer.spent - timer.shared) * 1000)
        if timer.held:
            run.lock_ms.append(timer.held * 1000)
    run.wall_s = time.perf_counter() - started
    checkpoints.cancel()
    await asyncio.gather(checkpoints, return_exceptions=True)
    await database.dispose()
    return run


def _process(url: str, leads: int, part: slice) -> Run:
    return asyncio.run(take_intake(url, True, leads, part, migrate=False))


def fairness(rows: list[tuple[str, str, int]], leads: int, routed: bool) -> float:
    """The largest deviation of a round-robin rep's leads from the weighted share (caps and
    time away applied), over both segments."""
    policy = bench_policy(routed, leads)
    worst = 0.0
    for segment in policy.segments:
        counts = {rep: count for name, rep, count in rows if name == segment.name}
        total = sum(counts.values())
        cap = segment.cap.per_day if segment.cap and segment.cap.per_day else None
        available = [rep for rep in segment.reps if not (routed and rep in AWAY)]
        shares = water_fill(total, {rep: segment.weight(rep) for rep in available}, cap)
        for rep in segment.reps:
            worst = max(worst, abs(counts.get(rep, 0) - shares.get(rep, 0.0)))
    return worst


def water_fill(total: int, weights: dict[str, int], cap: int | None) -> dict[str, float]:
    """`total` leads shared by weight, no rep over `cap`: the capped get the cap, the rest is
    shared again among the others."""
    shares: dict[str, float] = {}
    left, open_reps = float(total), dict(weights)
    while open_reps:
        weight = sum(open_reps.values())
        over = [r for r, w in open_reps.items() if cap is not None and left * w / weight > cap]
        if not over:
            shares |= {rep: left * w / weight for rep, w in open_reps.items()}
            break
        for rep in over:
            shares[rep] = float(cap or 0)
            left -= cap or 0
            del open_reps[rep]
    return shares


async def counts_of(url: str) -> tuple[list[tuple[str, str, int]], int]:
    """The rotation's counts per segment and rep, and how many leads went to the fallback."""
    database = Database(url)
    rows = await database.run(
        lambda db: [
            (str(s), str(r), int(c))
            for s, r, c in db.execute(
                select(RotationRep.segment, RotationRep.rep, RotationRep.this_week)
            ).all()
        ]
    )
    fallback = await database.run(
        lambda db: sum(
            1
            for (reason,) in db.execute(select(LeadRow.route_reason)).all()
            if reason and reason.get("rule") == "fallback"
        )
    )
    await database.dispose()
    return rows, fallback


async def riding_cost(url: str, leads: int, pairs: int = 2_000) -> tuple[float, float]:
    """PostgreSQL: what the account look-up and the read of who is away add to the select of
    a lead's stored ids they ride on, at p50 and p99: on the routed run's database, the
    statement with them and without them, alternated, each in a transaction of its own
    (begun before the timer), for leads not yet stored from the payloads' domains."""
    database = Database(url)
    chance = random.Random(11)
    domains = [payload["email"].split("@")[1] for payload in payloads(leads)]
    since = NOW - timedelta(days=90)
    timed: dict[bool, list[float]] = {True: [], False: []}

    def execute(db: Connection, riding: bool, number: int) -> float:
        statement = repository_storage._stored_and_accounts_pg(True, riding, riding)
        params: dict[str, Any] = {"p_external_id": f"new-{number}", "p_erased_id": f"e{number}"}
        if riding:
            params |= {"p_domain": chance.choice(domains), "p_since": since, "p_away_now": NOW}
        started = time.perf_counter()
        fetch_driven(db, statement, params)
        return (time.perf_counter() - started) * 1000

    for number in range(pairs):
        for riding in (number % 2 == 0, number % 2 == 1):
            took = await database.run(
                transaction_begun(lambda db, r=riding, n=number: execute(db, r, n))
            )
            timed[riding].append(took)
    await database.dispose()
    return (
        pct(timed[True], 50) - pct(timed[False], 50),
        pct(timed[True], 99) - pct(timed[False], 99),
    )


@dataclass
class Case:
    backend: str
    routed: bool
    processes: int
    run: Run
    fairness: float
    fallback: int
    riding: tuple[float, float] = (0.0, 0.0)  # PostgreSQL: `riding_cost`, p50 and p99

    def line(self, leads: int) -> str:
        intake, routing = self.run.intake_ms, self.run.routing_ms
        kind = "routed" if self.routed else "baseline"
        return (
            f"| {self.backend} | {kind} | {self.processes} | {leads / self.run.wall_s:,.0f} "
            f"| {pct(intake, 50):.2f} / {pct(intake, 99):.2f} ms "
            f"| {pct(routing, 50):.3f} / {pct(routing, 99):.3f} ms "
            f"| {self.fairness:.2f} | {self.fallback} |"
        )


def pct(values: list[float], which: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * which / 100))] if ordered else 0.0


async def measure_backend(backend: str, urls: list[str], leads: int, two: bool) -> list[Case]:
    cases = []
    baseline = await take_intake(urls[0], False, leads, slice(None), migrate=True)
    rows, fallback = await counts_of(urls[0])
    cases.append(Case(backend, False, 1, baseline, fairness(rows, leads, False), fallback))
    if two:  # one replica first, to tell the routing work from the wait for the other's lock
        alone = await take_intake(urls[2], True, leads, slice(None), migrate=True)
        rows, fallback = await counts_of(urls[2])
        riding = await riding_cost(urls[2], leads)
        cases.append(Case(backend, True, 1, alone, fairness(rows, leads, True), fallback, riding))
        migrating = Database(urls[1])
        await upgrade(migrating.engine)
        await migrating.dispose()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            started = time.perf_counter()
            halves = [slice(0, None, 2), slice(1, None, 2)]
            futures = [pool.submit(_process, urls[1], leads, half) for half in halves]
            runs = [future.result() for future in futures]
            routed = Run(
                [ms for run in runs for ms in run.intake_ms],
                [ms for run in runs for ms in run.routing_ms],
                time.perf_counter() - started,
                [ms for run in runs for ms in run.own_ms],
                [ms for run in runs for ms in run.lock_ms],
            )
    else:
        routed = await take_intake(urls[1], True, leads, slice(None), migrate=True)
    rows, fallback = await counts_of(urls[1])
    riding = await riding_cost(urls[1], leads) if two else (0.0, 0.0)
    cases.append(
        Case(backend, True, 2 if two else 1, routed, fairness(rows, leads, True), fallback, riding)
    )
    for case in cases:
        print(case.line(leads), flush=True)
    return cases


async def measure(leads: int, postgres: bool, sqlite: bool = True) -> list[Case]:
    cases: list[Case] = []
    if sqlite:
        with tempfile.TemporaryDirectory(prefix="handoff-route-") as tmp:
            urls = [f"sqlite+aiosqlite:///{Path(tmp) / f'route-{n}.db'}" for n in (0, 1)]
            cases += await measure_backend("sqlite", urls, leads, two=False)
    base = await postgres_base() if postgres else None
    if base is None:
        print("PostgreSQL: not measured (no server answered)", flush=True)
        return cases
    async with scratch_databases(base, [0, 1, 2]) as scratch:
        urls = [scratch[0], scratch[1], scratch[2]]
        cases += await measure_backend("postgresql", urls, leads, two=True)
    return cases


def report(cases: list[Case], leads: int) -> str:
    lines = [
        f"{leads:,} leads, 50 reps in two segments; routed: {NAMED:,} named accounts, account "
        "matching, 20 territories, weights 1-3, a daily cap, 5 reps away.",
        "",
        "| backend | run | processes | leads/s | intake p50 / p99 | routing p50 / p99 "
        "| fairness (largest deviation, leads) | to the fallback |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *(case.line(leads) for case in cases),
        "",
    ]
    for backend in dict.fromkeys(case.backend for case in cases):
        base = next(c for c in cases if c.backend == backend and not c.routed)
        for routed in (c for c in cases if c.backend == backend and c.routed):
            lines.append(summary(backend, base, routed))
    return "\n".join(lines)


def summary(backend: str, base: Case, routed: Case) -> str:
    added = pct(routed.run.intake_ms, 99) - pct(base.run.intake_ms, 99)
    ratio = pct(routed.run.intake_ms, 50) / pct(base.run.intake_ms, 50)
    p99 = pct(routed.run.routing_ms, 99)
    own = pct(routed.run.own_ms, 99)
    lock50, lock99 = pct(routed.run.lock_ms, 50), pct(routed.run.lock_ms, 99)
    riding = ""
    if backend == "postgresql":
        adds = own + max(routed.riding[1], 0.0)
        riding = (
            f"; the look-ups riding on that select add {routed.riding[0]:+.3f} / "
            f"{routed.riding[1]:+.3f} ms to it at p50 / p99, so routing's own work comes to "
            f"{adds:.3f} ms at p99 (target < 2 ms: {'ok' if adds < 2 else 'OVER'})"
        )
    return (
        f"{backend}, {routed.processes} process(es): routing {p99:.3f} ms a lead at p99 "
        f"(target < 2 ms: {'ok' if p99 < 2 else 'OVER'}; {own:.3f} ms without the stored-lead "
        f"select the account look-ups ride on{riding}; the turn's locking statement "
        f"{lock50:.3f} / {lock99:.3f} ms at p50 / p99); intake p50 {ratio:.2f}x the "
        f"baseline, p99 {added:+.2f} ms; fairness {routed.fairness:.2f} lead(s) (target <= 1: "
        f"{'ok' if routed.fairness <= 1 else 'OVER'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    cases = asyncio.run(measure(args.leads, not args.no_postgres, not args.no_sqlite))
    print()
    print(report(cases, args.leads))


if __name__ == "__main__":
    main()
