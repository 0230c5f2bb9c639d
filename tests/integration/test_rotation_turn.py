"""A rotation's turn on PostgreSQL is one round trip: the segment's lock, everything the turn
reads, the pick and the write (`rotation_take_turn`, migration 0024); a turn that waited for
another replica's lock reads what that replica wrote, in the same one round trip (a VOLATILE
function's queries each take a snapshot of their own: after the lock is granted). The turns
Python still takes (a batch's: `HeldRotations`) lock and read in one statement as well."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.policy import Policy, snapshot
from bot.domain.rotation import PoolRules
from storage.away import AwayStore
from storage.db import fetch_driven
from storage.home import HomeStore
from storage.repository import AccountAsk, Store
from storage.rotation import (
    RotationAsk,
    Suggestion,
    _hold_read_pg,
    count_reassignment,
    take,
    uncount,
)
from storage.tables import RotationRep
from tests.conftest import migrated_store, postgres_database
from tests.integration.test_storage import new_lead

T = TypeVar("T")
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
REPS = ("U0REP1", "U0REP2")
ASK = RotationAsk(
    segment="enterprise",
    rules=PoolRules(reps=REPS, weights={}),
    day="2026-11-23",
    week="2026-11-23",
    reason={"rule": "round_robin"},
    away_at=NOW,
)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url, drop = await postgres_database()
    try:
        yield url
    finally:
        await drop()


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements `engine` sends inside the block (each one a round trip)."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


def turn(db: Connection) -> Suggestion:
    return take(db, ASK)


async def weeks(store: Store) -> dict[str, int]:
    """Each rep's count of this week, as stored."""
    query = select(RotationRep.rep, RotationRep.this_week)
    rows = await store.db.run(lambda db: db.execute(query).all())
    return {str(rep): int(count) for rep, count in rows}


@asynccontextmanager
async def held_open(store: Store, work: Callable[[Connection], T]) -> AsyncIterator[T]:
    """`work` done in a transaction left open (its locks held) until the block ends: commit."""
    async with store.db.engine.connect() as connection:
        transaction = await connection.begin()
        yield await connection.run_sync(work)
        await transaction.commit()


async def while_waiting(waiter: Awaitable[T], watcher: Store) -> asyncio.Task[T]:
    """`waiter` started and seen (by `watcher`'s own connection) waiting for a lock."""
    task = asyncio.ensure_future(waiter)
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(10_000):
        if await watcher.db.run(lambda db: db.execute(waiting).scalar_one()):
            return task
        assert not task.done(), "the second turn did not wait for the first's lock"
    raise AssertionError("the second turn never waited for the lock")


async def test_a_turn_is_one_round_trip(pg_url: str) -> None:
    async with migrated_store(pg_url) as store:
        with statements(store.db.engine) as sent:
            owners = [(await store.db.run(turn)).rep for _ in range(4)]
        assert owners == ["U0REP1", "U0REP2", "U0REP1", "U0REP2"]
        # BEGIN/COMMIT are not cursor statements: the lock, the reads, the pick and the write
        assert len(sent) == 4
        assert await weeks(store) == {"U0REP1": 2, "U0REP2": 2}


async def test_a_turn_is_the_same_statement_whatever_the_pools_size(pg_url: str) -> None:
    """The pool travels as one array parameter: a list expanded into a placeholder per rep
    would be a new statement text (rendered again, prepared again) for every size of pool."""
    bigger = replace(ASK, rules=PoolRules(reps=(*REPS, "U0REP3"), weights={}))
    async with migrated_store(pg_url) as store:
        with statements(store.db.engine) as sent:
            await store.db.run(turn)
            await store.db.run(lambda db: take(db, bigger))
        assert len(sent) == 2 and sent[0] == sent[1]


async def test_a_lone_leads_intake_reads_are_planned_once_and_kept(
    pg_url: str, policy: Policy
) -> None:
    """A lead alone is read with plain parameters: PostgreSQL plans such a statement once and
    keeps the plan (after five executions). With arrays, whose lengths its plans depend on,
    it planned the read again at every execution, which took longer than running it."""
    account = AccountAsk("acme.example", NOW, lambda _: new_lead(policy, "never"))
    async with migrated_store(pg_url) as store:
        await store.save_policy(policy.version, snapshot(policy), NOW)
        for number in range(8):
            alone = new_lead(policy, f"kept-{number}")
            await store.intake(replace(alone, rotation=ASK, account=account), NOW)
        query = text("SELECT statement, generic_plans FROM pg_prepared_statements")
        plans = await store.db.run(lambda db: db.execute(query).all())
    reads = [kept for statement, kept in plans if statement.startswith("SELECT CAST(NULL")]
    assert reads and all(kept > 0 for kept in reads), plans


async def test_a_new_leads_turn_asks_for_its_reps_app_home_in_its_own_write(
    pg_url: str, policy: Policy
) -> None:
    """The lock is held for the turn's statement and the commit only: the lead's suggested
    owner and the request for the rep's App Home (only of a rep who opened it) are in it."""
    async with migrated_store(pg_url) as store:
        await store.save_policy(policy.version, snapshot(policy), NOW)
        await HomeStore(store.db).opened("U0REP1", NOW)
        with statements(store.db.engine) as sent:
            first = await store.intake(replace(new_lead(policy, "home-1"), rotation=ASK), NOW)
        second = await store.intake(replace(new_lead(policy, "home-2"), rotation=ASK), NOW)
        homes = text("SELECT channel FROM outbox WHERE kind = 'home' AND state = 'pending'")
        asked = await store.db.run(lambda db: db.execute(homes).scalars().all())
    assert (first.lead.suggested_owner, second.lead.suggested_owner) == ("U0REP1", "U0REP2")
    assert asked == ["U0REP1"]  # U0REP2 never opened App Home
    # the stored leads' read, the insert, its post, the turn: no more
    assert len(sent) == 4 and sent[-1].startswith("WITH turn")


async def test_a_turn_that_waited_for_another_replicas_reads_what_it_wrote(pg_url: str) -> None:
    async with migrated_store(pg_url) as one, migrated_store(pg_url) as two:
        await one.db.run(turn)  # the rotation exists, U0REP1 has had a turn (U0REP2 no row)
        with statements(two.db.engine) as sent:
            async with held_open(one, turn) as first:  # replica one's turn, not yet committed
                second = await while_waiting(two.db.run(turn), one)
            await second
        assert (first.rep, (await second).rep) == ("U0REP2", "U0REP1")
        assert len(sent) == 1  # the turn, once: no read again after the wait
        assert (await second).reason["week"] == 2  # the count as replica one left it
        assert await weeks(one) == {"U0REP1": 2, "U0REP2": 1}


async def test_a_turn_that_waited_for_an_uncount_or_a_reassignment_reads_it(pg_url: str) -> None:
    async with migrated_store(pg_url) as one, migrated_store(pg_url) as two:
        for _ in range(2):
            await one.db.run(turn)

        def lapsed(db: Connection) -> None:  # the sweep hands U0REP1's lead to the pool
            uncount(db, "enterprise", "U0REP1", ASK.day, ASK.week)

        with statements(two.db.engine) as sent:
            async with held_open(one, lapsed):
                waited = await while_waiting(two.db.run(turn), one)
            await waited
        assert (await waited).rep == "U0REP1" and len(sent) == 1
        assert await weeks(one) == {"U0REP1": 1, "U0REP2": 1}  # 3 turns, one lead left

        def reassigned(db: Connection) -> None:  # a manager moves a lead from U0REP1 to U0REP2
            count_reassignment(db, "enterprise", "U0REP1", "U0REP2", NOW)

        with statements(two.db.engine) as sent:
            async with held_open(one, reassigned):
                waited = await while_waiting(two.db.run(turn), one)
            await waited
        assert (await waited).rep == "U0REP2" and len(sent) == 1
        assert await weeks(one) == {"U0REP1": 0, "U0REP2": 3}


async def test_a_turns_statements_sent_through_the_driver_read_what_sqlalchemy_reads(
    pg_url: str,
) -> None:
    """The turn's lock-and-read goes to the driver as values encoded by their types' own
    processors (`fetch_driven`): the same rows as SQLAlchemy's execution, the time away's
    instant compared as SQLAlchemy binds it (one rep away until after it, one until before)."""
    async with migrated_store(pg_url) as store:
        await store.db.run(turn)  # both reps' rows exist
        away = AwayStore(store.db)
        await away.set("U0REP1", NOW + timedelta(minutes=1), "", "U0REP1", NOW)
        await away.set("U0REP2", NOW - timedelta(minutes=1), "", "U0REP2", NOW)
        params = {"p_segment": "enterprise", "p_reps": list(REPS), "p_now": NOW}

        def both(db: Connection) -> tuple[list[Any], list[Any]]:
            driven = [tuple(row) for row in fetch_driven(db, _hold_read_pg(True), params)]
            plain = [tuple(row) for row in db.execute(_hold_read_pg(True), params).all()]
            return driven, plain

        driven, plain = await store.db.run(both)
    assert len(driven) == len(REPS) and driven[0][1] == ["U0REP1"]
    assert plain == driven
