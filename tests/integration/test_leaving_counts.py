"""A lead leaving a rep takes it off the counts of the rep the rotation counted it to, in the
day and week it was counted in (SQLite and PostgreSQL). A claim is not a turn: a lead the
rotation suggested to U0REP1 and U0REP2 claimed is still U0REP1's in "N of M this week", so
when it leaves U0REP2 (offered while they are away, handed on when Slack deactivates them, a
manager's reassignment) it leaves U0REP1's counts; and a lead counted on Monday that leaves
on Tuesday leaves Monday's count and the week's, not Tuesday's (`cap.per_day`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.leads import Services
from bot.services.routing import rotations
from bot.slack.lead_views import lead_message
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import (
    MONDAY,
    away_wired,
    enterprise_counts,
    intake_one,
    pool_of,
)

REP1, REP2, REP3, MANAGER = "U0REP1", "U0REP2", "U0REP3", "U0MGR1"
RELEASED = MONDAY + timedelta(minutes=121)  # 13:01 Sydney: the 13:00 first touch has passed
TUESDAY = MONDAY + timedelta(days=1)  # 11:00 in Sydney


async def _shown(services: Services, now: datetime) -> dict[str, tuple[int, int]]:
    """Each rep's (today, this week) as the rotation reads them at `now` (`/handoff routing`)."""
    shown = await rotations(services.store, services.policy, services.availability, now)
    return {rep: (load.today, load.week) for rep, load in shown[0].loads.items()}


async def _why(services: Services, lead_id: int, now: datetime) -> str:
    """The post's round-robin why line as rendered at `now`."""
    lead = await services.lead(lead_id)
    message = lead_message(lead, await services.policy_for(lead), now)
    lines = [
        str(element.get("text", ""))
        for block in message.blocks
        if block["type"] == "context"
        for element in block["elements"]
    ]
    return next(line for line in lines if "Round robin" in line)


async def _rep2_claims_both(services: Services) -> tuple[int, int]:
    """Two leads: the first suggested to REP1, the second to REP2; REP2 claims both."""
    first, second = [await intake_one(services, f"hs-{n}", MONDAY) for n in (1, 2)]
    assert [(await services.lead(i)).suggested_owner for i in (first, second)] == [REP1, REP2]
    for lead_id in (first, second):
        await services.claim(lead_id, REP2, MONDAY + timedelta(minutes=5))
    return first, second


async def test_offered_while_the_claimer_is_away_leaves_the_rep_it_was_counted_to(
    store: Store, policy: Policy
) -> None:
    services, away, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2, REP3]))
    first, second = await _rep2_claims_both(services)
    await away.set(REP2, None, None, MANAGER, MONDAY + timedelta(minutes=10))

    await sweeper.run(RELEASED)
    handed = [(await services.lead(i)).suggested_owner for i in (first, second)]
    assert REP2 not in handed and None not in handed, handed
    counts = await enterprise_counts(store)
    assert sum(week for _, week in counts.values()) == 2, counts  # two leads, counted once each
    assert counts[REP2] == (0, 0)
    for lead_id, rep in zip((first, second), handed, strict=True):
        assert f"<@{rep}>, {counts[rep][1]} of 2 this week" in await _why(
            services, lead_id, RELEASED
        )


async def test_handed_on_when_the_claimer_leaves_slack_leaves_the_rep_it_was_counted_to(
    store: Store, policy: Policy
) -> None:
    services, _, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2, REP3]))
    first, second = await _rep2_claims_both(services)

    assert await sweeper.hand_on(REP2, "deactivated", MONDAY + timedelta(minutes=30)) == 2
    handed = [(await services.lead(i)).suggested_owner for i in (first, second)]
    assert REP2 not in handed and None not in handed, handed
    counts = await enterprise_counts(store)
    assert sum(week for _, week in counts.values()) == 2, counts
    assert counts[REP2] == (0, 0)


async def test_a_managers_reassignment_of_a_claimed_lead_leaves_the_rep_it_was_counted_to(
    store: Store, policy: Policy
) -> None:
    services, _, _ = await away_wired(store, pool_of(policy, [REP1, REP2, REP3]))
    first, _ = await _rep2_claims_both(services)

    await services.reassign(first, MANAGER, REP3, MONDAY + timedelta(minutes=30))
    assert await enterprise_counts(store) == {REP1: (0, 0), REP2: (1, 1), REP3: (1, 1)}


async def test_a_named_accounts_lead_reassigned_by_a_manager_leaves_nobodys_counts(
    store: Store, policy: Policy
) -> None:
    """The rotation never counted a named account's lead: its owner's count of the lead the
    rotation did give them stays when a manager hands the named one on."""
    data = snapshot(pool_of(policy, [REP1, REP2, REP3]))
    data["named_accounts"] = {"contoso.example": REP2}
    services, _, _ = await away_wired(store, parse_policy(data))
    await intake_one(services, "hs-1", MONDAY)  # REP1
    await intake_one(services, "hs-2", MONDAY)  # REP2
    payload = lead_payload("hs-3")
    payload["email"] = "hs-3@contoso.example"
    payload["company"] = {**payload["company"], "domain": "contoso.example"}
    named = (await services.intake(payload, MONDAY)).lead
    assert named is not None and named.route_reason is not None
    assert (named.suggested_owner, named.route_reason["rule"]) == (REP2, "named_account")

    await services.reassign(named.id, MANAGER, REP3, MONDAY + timedelta(minutes=30))
    assert await enterprise_counts(store) == {REP1: (1, 1), REP2: (1, 1), REP3: (1, 1)}


async def test_a_lead_counted_monday_leaving_tuesday_leaves_mondays_count_not_tuesdays(
    store: Store, policy: Policy
) -> None:
    """Counted to REP1 on Monday, reassigned by the SLA on Tuesday (nobody claimed it): REP1's
    Tuesday lead still counts to their day (what `cap.per_day` holds them to), and the week
    loses the Monday lead once."""
    services, _, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2]))
    monday = await intake_one(services, "hs-1", MONDAY)
    tuesday = [await intake_one(services, f"hs-{n}", TUESDAY) for n in (2, 3)]
    assert [(await services.lead(i)).suggested_owner for i in (monday, *tuesday)] == [
        REP1,
        REP2,
        REP1,
    ]
    assert await _shown(services, TUESDAY) == {REP1: (1, 2), REP2: (1, 1)}

    later = TUESDAY + timedelta(minutes=10)
    await sweeper.run(later)
    assert (await services.lead(monday)).suggested_owner == REP2
    assert await _shown(services, later) == {REP1: (1, 1), REP2: (2, 2)}
    assert f"<@{REP2}>, 2 of 3 this week" in await _why(services, monday, later)
    assert f"<@{REP1}>, 2 of 3 this week" in await _why(services, tuesday[1], later)


async def test_a_lead_counted_last_week_leaving_this_week_leaves_this_weeks_counts_alone(
    store: Store, policy: Policy
) -> None:
    services, _, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2]))
    last_week = MONDAY - timedelta(days=3)  # Friday 11:00 in Sydney
    old = await intake_one(services, "hs-1", last_week)
    assert (await services.lead(old)).suggested_owner == REP1
    fresh = [await intake_one(services, f"hs-{n}", MONDAY) for n in (2, 3)]
    assert [(await services.lead(i)).suggested_owner for i in fresh] == [REP2, REP1]

    later = MONDAY + timedelta(minutes=10)
    await sweeper.run(later)
    assert (await services.lead(old)).suggested_owner == REP2
    assert await _shown(services, later) == {REP1: (1, 1), REP2: (2, 2)}


async def test_a_lead_a_manager_counted_monday_leaving_tuesday_leaves_mondays_count(
    store: Store, policy: Policy
) -> None:
    """A manager's reassignment counts the lead to its new rep in the rotation's day; when the
    lead leaves them on a later day it comes off that day's count (gone by then) and the
    week's, not off the day the rotation's own turns count to them (`cap.per_day`)."""
    services, _, sweeper = await away_wired(store, pool_of(policy, [REP1, REP2]))
    monday = await intake_one(services, "hs-1", MONDAY)  # REP1
    await services.reassign(monday, MANAGER, REP2, MONDAY + timedelta(minutes=5))
    assert await enterprise_counts(store) == {REP1: (0, 0), REP2: (1, 1)}
    tuesday = [await intake_one(services, f"hs-{n}", TUESDAY) for n in (2, 3)]
    assert {(await services.lead(i)).suggested_owner for i in tuesday} == {REP1, REP2}
    before = await _shown(services, TUESDAY)
    assert before == {REP1: (1, 1), REP2: (1, 2)}

    later = TUESDAY + timedelta(minutes=10)
    await sweeper.run(later)
    assert (await services.lead(monday)).suggested_owner == REP1
    # REP2's Tuesday lead still counts to their day; the week loses the Monday lead once.
    assert await _shown(services, later) == {REP1: (2, 2), REP2: (1, 1)}
    assert f"<@{REP1}>, 2 of 3 this week" in await _why(services, monday, later)
