"""The sweep over the real store (SQLite and PostgreSQL): SLA versions, concurrency, batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.policies import PolicyBook
from bot.services import Services
from bot.sweep import Sweeper
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 11:00 in Sydney


class Wakes:
    def deliver_soon(self) -> None: ...


async def fired(store: Store) -> list[tuple[int, str, int, str]]:
    rows = await store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT lead_id, ladder, step, status FROM escalations ORDER BY lead_id, ladder, step"
        ).all()
    )
    return [(int(a), str(b), int(c), str(d)) for a, b, c, d in rows]


async def setup(store: Store, policy: Policy, leads: int) -> tuple[Services, Sweeper]:
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY)
    services = Services(store, book, Wakes())
    for index in range(leads):
        result = await services.intake(lead_payload(f"hs-{index}"), MONDAY)
        assert result.created
    return services, Sweeper(SweepStore(store.db), book, Wakes())


async def test_editing_the_sla_does_not_move_running_clocks(store: Store, policy: Policy) -> None:
    await setup(store, policy, 1)
    edited = snapshot(policy)
    edited["escalation"] = {"unclaimed": [{"at": "10%", "do": "notify_manager"}]}
    new_policy = parse_policy(edited)
    book = PolicyBook(store, new_policy)
    await book.record_current(MONDAY)
    sweeper = Sweeper(SweepStore(store.db), book, Wakes())

    assert (await sweeper.run(MONDAY + timedelta(minutes=7))).changed == 0  # not at 10%
    assert (await sweeper.run(MONDAY + timedelta(minutes=31))).changed == 1  # its own 50%
    assert await fired(store) == [(1, "unclaimed", 0, "fired")]


async def test_concurrent_sweeps_fire_each_step_once(store: Store, policy: Policy) -> None:
    _, sweeper = await setup(store, policy, 12)
    now = MONDAY + timedelta(minutes=31)
    results = await asyncio.gather(*(sweeper.run(now, batch=5) for _ in range(3)))
    assert sum(result.changed for result in results) == 12
    assert [row[1:] for row in await fired(store)] == [("unclaimed", 0, "fired")] * 12


async def test_a_sweep_reads_only_what_is_due(store: Store, policy: Policy) -> None:
    services, sweeper = await setup(store, policy, 3)
    result = await sweeper.run(MONDAY + timedelta(minutes=5))
    assert (result.looked_at, result.changed) == (0, 0)
    lead = await services.lead(1)
    assert lead.next_action_at == MONDAY + timedelta(minutes=30)


async def test_one_sweep_reassigns_a_segment_by_the_round_robin(
    store: Store, policy: Policy
) -> None:
    three = snapshot(policy)
    three["segments"][0]["reps"] = ["U0REP1", "U0REP2", "U0REP7"]
    services, sweeper = await setup(store, parse_policy(three), 6)
    before = {lead_id: (await services.lead(lead_id)).suggested_owner for lead_id in range(1, 7)}
    assert sorted(before.values()) == ["U0REP1", "U0REP1", "U0REP2", "U0REP2", "U0REP7", "U0REP7"]

    result = await sweeper.run(MONDAY + timedelta(minutes=95))  # past 150% of the 1h claim

    assert result.changed == 6
    after = {lead_id: (await services.lead(lead_id)).suggested_owner for lead_id in range(1, 7)}
    assert all(after[lead_id] != before[lead_id] for lead_id in after)  # never the same rep
    assert sorted(after.values()) == sorted(before.values())  # spread evenly over the pool
    position = await store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT position FROM round_robin WHERE segment = 'enterprise'"
        ).scalar_one()
    )
    assert position >= 12  # the intake's 6 turns and the sweep's 6 (or more, skipping owners)
