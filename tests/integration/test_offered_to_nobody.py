"""A lead offered to the pool with nobody to suggest it to (SQLite and PostgreSQL): its rep is
away past a deadline and everyone else in the pool is away or at a cap. Its post's why line
says so, not the round robin's pick it no longer has; and the rotation's "N of M this week"
stays right through what follows: the offer takes it out of its rep's counts once, and a claim
by a rep back from time away, the lead leaving that rep again, a manager's reassignment and
the sweep's `reassign` step count it neither twice nor to the wrong rep."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.policy import Policy
from bot.services.leads import Services
from bot.slack.lead_views import lead_message
from storage.outbox import Kind, OutboxStore
from storage.repository import Store
from tests.integration.conftest import (
    MONDAY,
    away_wired,
    enterprise_counts,
    intake_one,
    pool_of,
)

REP1, REP2, REP3, MANAGER = "U0REP1", "U0REP2", "U0REP3", "U0MGR1"
OFFERED = MONDAY + timedelta(minutes=61)  # 12:01: the 12:00 claim deadline has passed
BACK = MONDAY + timedelta(minutes=62)  # 12:02: REP2 is back
RELEASED = MONDAY + timedelta(minutes=121)  # 13:01: the 13:00 first touch has passed


async def _why(services: Services, lead_id: int, now: datetime) -> list[str]:
    """The post's context lines as rendered at `now` (the why line is one of them)."""
    lead = await services.lead(lead_id)
    message = lead_message(lead, await services.policy_for(lead), now)
    return [
        str(element.get("text", ""))
        for block in message.blocks
        if block["type"] == "context"
        for element in block["elements"]
    ]


async def test_the_post_says_offered_to_nobody_and_the_rep_is_uncounted_once(
    store: Store, policy: Policy
) -> None:
    services, away, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2]))
    lead_id = await intake_one(services, "hs-1", MONDAY)
    assert (await services.lead(lead_id)).suggested_owner == REP1
    assert f"Round robin: <@{REP1}>, 1 of 1 this week" in await _why(services, lead_id, MONDAY)
    for rep in (REP1, REP2):
        await away.set(rep, None, None, MANAGER, MONDAY + timedelta(minutes=10))

    await sweeper.run(OFFERED)
    lead = await services.lead(lead_id)
    assert (lead.owner, lead.suggested_owner) == (None, None)
    lines = await _why(services, lead_id, OFFERED)
    assert f"Offered to the pool: <@{REP1}> away · nobody available (all away)" in lines
    assert not any("Round robin" in line for line in lines), lines
    assert (await enterprise_counts(store))[REP1] == (0, 0)

    await sweeper.run(OFFERED + timedelta(minutes=30))  # later sweeps leave the counts alone
    assert (await enterprise_counts(store))[REP1] == (0, 0)


async def test_reps_at_their_caps_are_named_in_the_why_line(store: Store, policy: Policy) -> None:
    services, away, sweeper = await away_wired(
        store, pool_of(policy, [REP1, REP2], cap={"per_day": 1})
    )
    first, second = [await intake_one(services, f"hs-{n}", MONDAY) for n in range(2)]
    assert [(await services.lead(i)).suggested_owner for i in (first, second)] == [REP1, REP2]
    await away.set(REP1, None, None, MANAGER, MONDAY + timedelta(minutes=10))
    await services.claim(second, REP2, MONDAY + timedelta(minutes=5))

    await sweeper.run(OFFERED)
    assert (await services.lead(first)).suggested_owner is None
    lines = await _why(services, first, OFFERED)
    assert f"Offered to the pool: <@{REP1}> away · nobody available (all at cap)" in lines
    assert (await enterprise_counts(store)) == {REP1: (0, 0), REP2: (1, 1)}
    (alert,) = [
        row["payload"]["text"]
        for row in await OutboxStore(store.db).rows()
        if row["kind"] == Kind.MESSAGE and row["channel"] == policy.channels.escalations
    ]
    assert f"<@{REP1}> is away and the enterprise pool has nobody available (all at cap)." in (
        alert
    )
    assert "away and so is everyone else" not in alert


async def test_a_rep_back_claims_it_and_leaving_them_again_uncounts_nobody(
    store: Store, policy: Policy
) -> None:
    """REP2, back from time away, claims the lead offered to nobody: the rotation never
    counted it to them, so when it leaves them (away again past its first touch) their count
    of the lead the rotation did give them stays."""
    services, away, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2]))
    lead_id = await intake_one(services, "hs-1", MONDAY)
    await away.set(REP1, None, None, MANAGER, MONDAY + timedelta(minutes=10))
    await away.set(REP2, BACK, None, MANAGER, MONDAY + timedelta(minutes=10))
    await sweeper.run(OFFERED)
    assert (await services.lead(lead_id)).suggested_owner is None

    await services.claim(lead_id, REP2, BACK + timedelta(minutes=1))
    assert (await services.lead(lead_id)).owner == REP2
    other = await intake_one(services, "hs-2", BACK + timedelta(minutes=2))  # REP1 is away
    assert (await services.lead(other)).suggested_owner == REP2
    assert (await enterprise_counts(store)) == {REP1: (0, 0), REP2: (1, 1)}

    await away.set(REP2, None, None, MANAGER, BACK + timedelta(minutes=3))
    await sweeper.run(RELEASED)
    lead = await services.lead(lead_id)
    assert (lead.owner, lead.suggested_owner) == (None, None)
    assert (await enterprise_counts(store)) == {
        REP1: (0, 0),
        REP2: (1, 1),
    }  # `other` is still REP2's
    lines = await _why(services, lead_id, RELEASED)
    assert f"Offered to the pool: <@{REP2}> away · nobody available (all away)" in lines


async def test_a_managers_reassignment_counts_it_to_the_new_rep_only(
    store: Store, policy: Policy
) -> None:
    services, away, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2, REP3]))
    lead_id = await intake_one(services, "hs-1", MONDAY)
    for rep in (REP1, REP2, REP3):
        await away.set(rep, None, None, MANAGER, MONDAY + timedelta(minutes=10))
    await sweeper.run(OFFERED)
    assert (await enterprise_counts(store))[REP1] == (0, 0)
    for rep in (REP2, REP3):
        await away.clear(rep, OFFERED)  # back

    await services.reassign(lead_id, MANAGER, REP3, OFFERED + timedelta(minutes=1))
    assert (await services.lead(lead_id)).suggested_owner == REP3
    lines = await _why(services, lead_id, OFFERED + timedelta(minutes=1))
    assert f"Reassigned by <@{MANAGER}>" in lines
    counts = await enterprise_counts(store)
    assert (counts[REP1], counts[REP3]) == ((0, 0), (1, 1))


async def test_the_sweeps_reassign_step_counts_it_once_to_its_new_rep(
    store: Store, policy: Policy
) -> None:
    """Offered to nobody at 12:01, nobody claims it: its `reassign` step (150% of the claim
    window) hands it to a rep back by then, counted to them alone, and the why line says so."""
    services, away, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2]))
    lead_id = await intake_one(services, "hs-1", MONDAY)
    await away.set(REP1, None, None, MANAGER, MONDAY + timedelta(minutes=10))
    await away.set(REP2, BACK, None, MANAGER, MONDAY + timedelta(minutes=10))
    await sweeper.run(OFFERED)
    assert (await services.lead(lead_id)).suggested_owner is None

    for minutes in (70, 95, 100):
        await sweeper.run(MONDAY + timedelta(minutes=minutes))
    lead = await services.lead(lead_id)
    assert lead.suggested_owner == REP2, lead.route_reason
    lines = await _why(services, lead_id, MONDAY + timedelta(minutes=100))
    assert any(f"Round robin: <@{REP2}>, 1 of 1 this week" in line for line in lines), lines
    assert (await enterprise_counts(store)) == {REP1: (0, 0), REP2: (1, 1)}


async def test_an_offer_to_the_next_rep_still_says_whose_turn_it_is(
    store: Store, policy: Policy
) -> None:
    services, away, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2]))
    lead_id = await intake_one(services, "hs-1", MONDAY)
    await away.set(REP1, None, None, MANAGER, MONDAY + timedelta(minutes=10))
    await sweeper.run(OFFERED)
    assert (await services.lead(lead_id)).suggested_owner == REP2
    lines = await _why(services, lead_id, OFFERED)
    assert f"Round robin: <@{REP2}>, 1 of 1 this week" in lines
    assert (await enterprise_counts(store)) == {REP1: (0, 0), REP2: (1, 1)}
