"""The sweep over the real store (SQLite and PostgreSQL): SLA versions, concurrency, batches."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from bot.services.sweep import Sweeper, decide
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes


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


async def _rotation(store: Store) -> int:
    return await store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT position FROM round_robin WHERE segment = 'enterprise'"
        ).scalar_one()
    )


def _decider(policy: Policy, now: datetime) -> Any:
    return partial(decide, policies={policy.version: policy}, now=now)


async def test_a_lead_claimed_while_the_sweep_decides_stays_with_its_claimer(
    store: Store, policy: Policy
) -> None:
    services, _ = await setup(store, policy, 2)  # suggested U0REP1 and U0REP2 (turns 0, 1)
    rows, now = SweepStore(store.db), MONDAY + timedelta(minutes=95)  # both due a reassign
    page = await rows.due(now, 10)
    assert [lead.id for lead in page.leads] == [1, 2]
    await services.claim(1, "U0REP1", now)  # between the read and the lock

    assert await rows.apply(page, now, _decider(policy, now)) == [1, 2]

    claimed = await services.lead(1)  # decided again as it is now: claimed, still untouched
    assert (claimed.owner, claimed.suggested_owner) == ("U0REP1", "U0REP1")
    assert "reassigned" not in [e.type for e in await store.events(1)]
    assert [row[1:] for row in await fired(store) if row[0] == 1 and row[3] == "fired"] == [
        ("no_touch", 0, "fired")  # 75% of its first-touch window gone: its owner is reminded
    ]
    assert (await services.lead(2)).suggested_owner == "U0REP1"
    # Lead 1, claimed meanwhile, is not reassigned: the rotation moved one turn (lead 2's), not
    # two (no rep's turn spent on a stale decision).
    assert await _rotation(store) == 3


async def test_a_round_robin_that_moved_while_the_sweep_decided_is_followed(
    store: Store, policy: Policy
) -> None:
    three = snapshot(policy)
    three["segments"][0]["reps"] = ["U0REP1", "U0REP2", "U0REP7"]
    policy = parse_policy(three)
    services, _ = await setup(store, policy, 2)  # U0REP1, U0REP2 (turns 0, 1)
    rows, now = SweepStore(store.db), MONDAY + timedelta(minutes=95)
    page = await rows.due(now, 10)
    late = await services.intake(lead_payload("hs-late"), now)  # takes turn 2: U0REP7
    assert late.lead is not None and late.lead.suggested_owner == "U0REP7"

    assert await rows.apply(page, now, _decider(policy, now)) == [1, 2]

    # Picked from turn 3, after the newcomer: U0REP1 is lead 1's own (skipped), so U0REP2;
    # then U0REP7 for lead 2. Deciding on the stale turn 2 would have given U0REP7 twice running.
    assert (await services.lead(1)).suggested_owner == "U0REP2"
    assert (await services.lead(2)).suggested_owner == "U0REP7"
    assert await _rotation(store) == 5  # one turn a lead: the intake's 3, the sweep's 2
