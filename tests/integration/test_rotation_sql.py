"""PostgreSQL's one-statement turn (`rotation_take_turn`, migration 0024) is the domain's pick:
for generated pools (weights, a daily cap, time away, catch-up) and stored loads (credits,
members joining and leaving, counts of earlier days and weeks), it picks the rep
`bot.domain.rotation.take_turn` picks and leaves every rep's load and the clock as it does, to
the bit. The domain stays the definition; the function is its hot path on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert, select

from bot.domain.policy import Policy, snapshot
from bot.domain.rotation import PoolRules, take_turn
from storage.repository import Store
from storage.rotation import RotationAsk, read_loads, take
from storage.tables import LeadRow, RotationRep, RoundRobin, TimeAway, table
from tests.conftest import migrated_store, postgres_database
from tests.integration.test_storage import new_lead

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
DAY, WEEK = "2026-11-23", "2026-11-23"
REPS = [f"U0SQL{n}" for n in range(6)]
_SEGMENTS = itertools.count()  # a segment per example, on one database


@pytest.fixture
async def pg_store() -> AsyncIterator[Store]:
    url, drop = await postgres_database()
    try:
        async with migrated_store(url) as store:
            yield store
    finally:
        await drop()


loads = st.fixed_dictionaries(
    {
        "settled": st.floats(min_value=-2.5, max_value=2.5, allow_nan=False),
        "since": st.none() | st.floats(min_value=0.0, max_value=6.0),
        "weight": st.integers(min_value=0, max_value=3),
        "today": st.integers(min_value=0, max_value=3),
        "this_week": st.integers(min_value=0, max_value=6),
        "same_day": st.booleans(),
        "same_week": st.booleans(),
    }
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    size=st.integers(min_value=1, max_value=6),
    weights=st.lists(st.integers(min_value=0, max_value=3), min_size=6, max_size=6),
    stored=st.lists(st.none() | loads, min_size=6, max_size=6),
    clock=st.floats(min_value=0.0, max_value=8.0),
    cap_per_day=st.none() | st.integers(min_value=1, max_value=3),
    catch_up=st.booleans(),
    away=st.sets(st.sampled_from(REPS)),
    stored_away=st.sets(st.sampled_from(REPS)),
)
async def test_the_statement_picks_as_the_domain_does(
    pg_store: Store,
    size: int,
    weights: list[int],
    stored: list[dict[str, Any] | None],
    clock: float,
    cap_per_day: int | None,
    catch_up: bool,
    away: set[str],
    stored_away: set[str],
) -> None:
    segment = f"sql-{next(_SEGMENTS)}"
    pool = tuple(REPS[:size])
    rules = PoolRules(
        pool, dict(zip(REPS, weights, strict=True)), cap_per_day=cap_per_day, catch_up=catch_up
    )
    rows = [
        {
            "segment": segment,
            "rep": rep,
            "settled": load["settled"],
            "since": load["since"],
            "weight": load["weight"],
            "day": DAY if load["same_day"] else "2026-11-20",
            "today": load["today"],
            "week": WEEK if load["same_week"] else "2026-11-16",
            "this_week": load["this_week"],
        }
        for rep, load in zip(REPS, stored, strict=True)
        if load is not None
    ]
    ask = RotationAsk(segment, rules, DAY, WEEK, frozenset(away), {"rule": "round_robin"})
    ask = replace(ask, away_at=NOW)

    def turn(db: Connection) -> tuple[Any, ...]:
        db.execute(insert(table(RoundRobin)), {"segment": segment, "position": 1, "clock": clock})
        if rows:
            db.execute(insert(table(RotationRep)), rows)
        db.execute(delete(table(TimeAway)))
        for rep in sorted(stored_away):
            db.execute(
                insert(table(TimeAway)),
                {"user_id": rep, "until": None, "note": "", "set_by": rep, "set_at": NOW},
            )
        before = read_loads(db, segment, DAY, WEEK, pool, False)
        picked = take(db, ask)  # one statement on PostgreSQL
        after = read_loads(db, segment, DAY, WEEK, pool, False)
        moved = db.execute(select(RoundRobin.clock).where(RoundRobin.segment == segment))
        return before, picked, after, moved.scalar_one()

    before, picked, after, moved = await pg_store.db.run(turn)
    expected = take_turn(rules, before, frozenset(away | stored_away), clock)
    if expected.rep is None:
        assert picked.reason["rule"] == "fallback"  # Python said why, as before
        return
    assert picked.rep == expected.rep
    assert moved == expected.clock  # to the bit: the same operations in the same order
    wanted = {rep: expected.loads[rep] for rep in expected.changed}
    assert {rep: after[rep] for rep in wanted} == wanted
    untouched = set(before) - expected.changed
    assert {rep: after[rep] for rep in untouched} == {rep: before[rep] for rep in untouched}
    assert picked.reason["week"] == expected.loads[expected.rep].week
    assert picked.reason["week_total"] == sum(load.week for load in expected.loads.values())


async def test_an_open_leads_cap_counts_the_reps_open_leads(
    pg_store: Store, policy: Policy
) -> None:
    """With `cap.open`, the statement counts each rep's claimed, open leads as Python does:
    the rep at the cap sits the turn out."""
    await pg_store.save_policy(policy.version, snapshot(policy), NOW)
    rules = PoolRules(("U0CAP1", "U0CAP2"), {}, cap_open=1)
    ask = RotationAsk("capped", rules, DAY, WEEK, reason={"rule": "round_robin"})

    def turns(db: Connection) -> list[str | None]:
        lead = new_lead(policy, "cap-1").columns()
        lead |= {"stage": "sal", "segment": "capped", "owner": "U0CAP1"}
        db.execute(insert(table(LeadRow)), [lead])
        return [take(db, ask).rep for _ in range(3)]

    assert await pg_store.db.run(turns) == ["U0CAP2", "U0CAP2", "U0CAP2"]
