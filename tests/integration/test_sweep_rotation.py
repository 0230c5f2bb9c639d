"""The sweep's reassignments take the pool's weighted rotation (SQLite and PostgreSQL): weights
and caps followed, reps away and the rep the lead is taken from passed over, the lead counted
to its new rep and out of the old one's, the fallback owner when nobody is available, and
each lead reassigned once under concurrent sweeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.domain.policy import Policy, parse_policy, snapshot
from storage.repository import Store
from tests.integration.conftest import MONDAY, away_wired, enterprise_counts, intake_many, pool_of

REP1, REP2, REP7, REP8, MANAGER = "U0REP1", "U0REP2", "U0REP7", "U0REP8", "U0MGR1"
REASSIGN_DUE = MONDAY + timedelta(minutes=95)  # past 150% of the 1h claim window: reassign


async def _notes(store: Store, lead_id: int) -> list[str]:
    rows = await store.db.run(
        lambda db: db.exec_driver_sql(
            f"SELECT payload FROM outbox WHERE lead_id = {lead_id} AND key LIKE 'sweep:%'"
        ).all()
    )
    return [str(row[0]) for row in rows]


async def test_a_reassignment_follows_the_weights_and_skips_away_reps_and_the_holder(
    store: Store, policy: Policy
) -> None:
    """Six leads reach U0REP7 while the others are away; at the reassignment U0REP1 and
    U0REP2 are back (weights 2 and 1), U0REP8 is still away: 4 and 2, in the 2:1 order, none
    to U0REP7 or U0REP8, and the rotation's counts follow the leads."""
    weighted = pool_of(policy, [REP1, REP2, REP7, REP8], weights={REP1: 2, REP2: 1})
    services, away, sweeper = await away_wired(store, weighted)
    for rep in (REP1, REP2, REP8):
        await away.set(rep, MONDAY + timedelta(minutes=30), None, MANAGER, MONDAY)
    await away.set(REP8, None, None, MANAGER, MONDAY)  # away until back
    assert await intake_many(services, 6) == [REP7] * 6

    result = await sweeper.run(REASSIGN_DUE)

    assert result.changed == 6
    owners = [(await services.lead(lead_id)).suggested_owner for lead_id in range(1, 7)]
    assert owners == [REP1, REP2, REP1, REP1, REP2, REP1]  # smooth 2:1, never REP7 or REP8
    for lead_id in range(1, 7):
        lead = await services.lead(lead_id)
        assert lead.route_reason is not None and lead.route_reason["rule"] == "round_robin"
        assert lead.route_reason["weight"] == (2 if lead.suggested_owner == REP1 else 1)
        reassigned = [e.data for e in await store.events(lead_id) if e.type == "reassigned"]
        assert reassigned == [{"from": REP7, "to": lead.suggested_owner, "why": "unclaimed"}]
    counts = await enterprise_counts(store)
    assert (counts[REP1], counts[REP2], counts[REP7]) == ((4, 4), (2, 2), (0, 0))
    assert counts.get(REP8, (0, 0)) == (0, 0)


async def test_a_reassignment_passes_over_a_capped_rep_and_frees_the_old_reps_cap(
    store: Store, policy: Policy
) -> None:
    """A daily cap of 3: U0REP7's three leads go to U0REP1 (U0REP2 is at the cap), and as they
    leave U0REP7 they leave its count, so U0REP2's three can go to U0REP7 rather than to the
    fallback owner."""
    capped = pool_of(policy, [REP1, REP2, REP7], cap={"per_day": 3})
    services, away, sweeper = await away_wired(store, capped)
    for rep in (REP1, REP2):
        await away.set(rep, MONDAY + timedelta(minutes=1), None, MANAGER, MONDAY)
    assert await intake_many(services, 3, "a") == [REP7] * 3
    for rep in (REP1, REP7):
        await away.set(rep, MONDAY + timedelta(minutes=1), None, MANAGER, MONDAY)
    await away.clear(REP2, MONDAY)
    assert await intake_many(services, 3, "b") == [REP2] * 3

    assert (await sweeper.run(REASSIGN_DUE)).changed == 6

    owners = [(await services.lead(lead_id)).suggested_owner for lead_id in range(1, 7)]
    assert owners == [REP1, REP1, REP1, REP7, REP7, REP7]
    assert await enterprise_counts(store) == {REP1: (3, 3), REP2: (0, 0), REP7: (3, 3)}


async def test_nobody_available_hands_the_lead_to_the_fallback_owner_and_says_why(
    store: Store, policy: Policy
) -> None:
    services, away, sweeper = await away_wired(store, policy)  # the pool: U0REP1, U0REP2
    await away.set(REP2, MONDAY + timedelta(minutes=1), None, MANAGER, MONDAY)
    assert await intake_many(services, 1) == [REP1]
    await away.set(REP2, None, "Parental leave", MANAGER, MONDAY)

    assert (await sweeper.run(REASSIGN_DUE)).changed == 1

    lead = await services.lead(1)
    assert lead.suggested_owner == MANAGER == policy.fallback
    assert lead.route_reason == {
        "rule": "fallback",
        "rep": MANAGER,
        "why": "nobody available (all away)",
        "reassigned": "unclaimed",  # the post's why line: the SLA took it from U0REP1
        "from": REP1,
        "had": [REP1],  # none of them gets it back this cycle
    }
    notes = " ".join(await _notes(store, 1))
    assert "Reassigned to <@U0MGR1> from <@U0REP1>" in notes
    assert "nobody available (all away), so to the fallback owner" in notes
    assert (await enterprise_counts(store))[REP1] == (0, 0)  # the lead left U0REP1's count


async def test_a_pool_of_one_without_a_fallback_keeps_the_lead(
    store: Store, policy: Policy
) -> None:
    """Nobody else and no fallback owner (no managers): the lead stays; nothing is said."""
    data = snapshot(pool_of(policy, [REP1]))
    data["managers"] = []
    services, _, sweeper = await away_wired(store, parse_policy(data))
    assert await intake_many(services, 1) == [REP1]
    await sweeper.run(REASSIGN_DUE)
    assert (await services.lead(1)).suggested_owner == REP1
    assert "reassigned" not in [event.type for event in await store.events(1)]


async def test_concurrent_sweeps_reassign_each_lead_once_and_count_it_once(
    store: Store, policy: Policy
) -> None:
    three = pool_of(policy, [REP1, REP2, REP7], weights={REP7: 2})
    services, _, sweeper = await away_wired(store, three)
    before = await intake_many(services, 12)

    results = await asyncio.gather(*(sweeper.run(REASSIGN_DUE, batch=3) for _ in range(3)))

    assert sum(result.changed for result in results) == 12
    after = []
    for lead_id in range(1, 13):
        events = [e for e in await store.events(lead_id) if e.type == "reassigned"]
        assert len(events) == 1
        lead = await services.lead(lead_id)
        assert lead.suggested_owner != before[lead_id - 1]
        after.append(lead.suggested_owner)
    counts = await enterprise_counts(store)
    assert sum(week for _, week in counts.values()) == 12  # each lead counted once, to its rep
    assert {rep: after.count(rep) for rep in (REP1, REP2, REP7)} == {
        rep: counts[rep][1] for rep in (REP1, REP2, REP7)
    }


async def test_one_batch_follows_the_open_leads_cap_as_it_reassigns(
    store: Store, policy: Policy
) -> None:
    """Three claimed leads of U0REP1, never touched, are reassigned in one batch, each rep may
    own one open lead: U0REP2 (weight 5) takes the first and would be next again, but the batch
    counts the lead it just handed over: the second goes to U0REP7, and the third, with
    everyone else at the cap, to the fallback owner."""
    capped = pool_of(policy, [REP1, REP2, REP7], weights={REP2: 5}, cap={"open": 1})
    services, _, sweeper = await away_wired(store, capped)
    await intake_many(services, 3)
    for lead_id in (1, 2, 3):
        await services.claim(lead_id, REP1, MONDAY + timedelta(minutes=5))

    # 200% of the 2-hour first-touch window, untouched: all three reassigned, in one batch.
    assert (await sweeper.run(MONDAY + timedelta(hours=4, minutes=1))).changed == 3

    owners = [(await services.lead(lead_id)).owner for lead_id in (1, 2, 3)]
    assert owners == [REP2, REP7, MANAGER]
    third = await services.lead(3)
    assert third.route_reason == {
        "rule": "fallback",
        "rep": MANAGER,
        "why": "nobody available (all at cap)",
        "reassigned": "no_touch",
        "from": REP1,
        "had": [REP1],  # none of them gets it back this cycle
    }
