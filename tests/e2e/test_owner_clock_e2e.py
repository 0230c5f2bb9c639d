"""`clock: owner` through the real server: Handoff asks Slack (users.info) for the members'
time zones (and names) when it starts, remembers them, and a rep's claim runs on the rep's
own hours; with the team clock it learns the names only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.lead import LeadView
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"


@pytest.fixture
async def owner_stack(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> AsyncIterator[LocalStack]:
    data = snapshot(policy)
    data["clock"] = "owner"
    data["disposition_deadline"] = "2 business hours"  # the owner's hours: business time
    local = await start_stack(sqlite_url, parse_policy(data), clock=clock)
    try:
        yield local
    finally:
        await local.close()


async def claimed_by_maya(stack: LocalStack) -> LeadView:
    """A new lead, posted, and claimed by U0REP1 (maya) in its channel."""
    status, body = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await stack.settle()
    return await stack.services.lead(body["id"])


async def test_a_claim_runs_on_the_reps_own_hours(owner_stack: LocalStack) -> None:
    stack = owner_stack
    stack.sim.users["U0REP1"].tz = "Europe/London"
    stack.sim.users["U0REP2"].tz = "America/New_York"
    del stack.sim.users["U0REP6"]  # left the workspace: Slack cannot describe them
    found = await stack.handoff.people.refresh(stack.handoff.clock())
    assert found["U0REP1"] == "Europe/London" and "U0REP6" not in found
    assert stack.sim.calls_to("users.info")

    lead = await claimed_by_maya(stack)
    assert (lead.owner, lead.owner_zone) == ("U0REP1", "Europe/London")
    # Claimed Monday 11:00 in Sydney = 00:00 in London: 2 working hours end 11:00 London.
    assert lead.disposition_due_at == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    # A restart reads the zones back from the database, without asking Slack.
    assert (await stack.handoff.store.zones())["U0REP2"] == "America/New_York"


async def test_the_team_clock_learns_names_but_keeps_the_team_hours(stack: LocalStack) -> None:
    stack.sim.users["U0REP1"].tz = "Europe/London"
    zones = await stack.handoff.people.refresh(stack.handoff.clock())
    assert zones["U0REP1"] == "Europe/London"
    assert stack.services.names["U0REP1"] == "maya"  # the name Slack shows
    assert stack.services.zones == {}  # the team's clock: nobody's own zone is used

    lead = await claimed_by_maya(stack)
    assert (lead.owner, lead.owner_zone) == ("U0REP1", None)


async def test_a_claim_leaves_the_first_touch_on_the_team_clock(
    owner_stack: LocalStack, clock: TravelClock
) -> None:
    """The first-touch deadline is set at arrival, on the team's clock, and a claim does not
    move it: its reminders and alerts come at their shares of that window, and say the time
    left on it, wherever the owner works (regression: read on a London owner's hours, the
    window was 0 minutes long, so the next sweep took the lead from the rep who had just
    claimed it)."""
    stack = owner_stack
    stack.sim.users["U0REP1"].tz = "Europe/London"
    await stack.handoff.people.refresh(stack.handoff.clock())
    lead = await claimed_by_maya(stack)  # Monday 11:00 in Sydney, 00:00 in London
    assert lead.first_touch_due_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 13:00 Sydney

    clock.advance(hours=1, minutes=31)  # 12:31 in Sydney: 75% of the first touch's window
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    lead = await stack.services.lead(lead.id)
    assert lead.owner == "U0REP1"  # still hers: the first touch is due at 13:00
    (reminder,) = [
        message.all_text
        for message in stack.sim.messages(stack.sim.dm_channel("U0REP1"))
        if "Reminder" in message.all_text
    ]
    assert "first touch due in 29m of business time" in reminder


async def test_a_reassignment_gives_the_new_owner_the_working_time_left(
    owner_stack: LocalStack, clock: TravelClock
) -> None:
    """Maya (London) owes feedback by 09:00–11:00 London; at 09:30 London a manager hands the
    lead to Tom (New York), where it is 04:30. The 1h 30m of working time she had left is
    his, from his 09:00: due 10:30 New York. His reminder and the managers' alert come at
    100% and 150% of that, on his hours (regression: the London deadline read on New York's
    hours held no working time, so every step fell due at once and the managers heard at
    11:00 London that feedback was due "in 0m")."""
    stack = owner_stack
    stack.sim.users["U0REP1"].tz = "Europe/London"
    stack.sim.users["U0REP2"].tz = "America/New_York"
    await stack.handoff.people.refresh(stack.handoff.clock())
    lead = await claimed_by_maya(stack)  # Monday 00:00 in London
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)  # the first touch
    await stack.settle()
    assert lead.disposition_due_at == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)

    clock.now = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 09:30 London, 04:30 New York
    await stack.driver.choose("U0MGR1", "tom", channel=ENTERPRISE, action_id="lead_reassign")
    await stack.settle()
    lead = await stack.services.lead(lead.id)
    assert (lead.owner, lead.owner_zone) == ("U0REP2", "America/New_York")
    assert lead.disposition_due_at == datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 10:30 NY

    for hour in (11, 15):  # London's deadline; New York's 10:00
        clock.now = datetime(2026, 11, 23, hour, 0, tzinfo=UTC)
        await stack.handoff.sweeper.run(clock())
        await stack.settle()
    assert stack.sim.messages("C0ESCALATE") == []
    assert not [m for m in stack.sim.messages(stack.sim.dm_channel("U0REP2")) if "⏰" in m.text]

    clock.now = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 10:30 New York: 100%
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    (reminder,) = [
        m.all_text for m in stack.sim.messages(stack.sim.dm_channel("U0REP2")) if "⏰" in m.text
    ]
    assert "first feedback (a disposition) due now" in reminder
    clock.now = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # 11:30 New York: 150%
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    (alert,) = stack.sim.messages("C0ESCALATE")
    assert "first feedback (a disposition) overdue by 1h of business time" in alert.all_text
