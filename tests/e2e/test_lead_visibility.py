"""Who may see a lead (issue 16), one test per cell of the access table's `view_lead` row, end
to end through `/lead`: the lead's segment reps, its owner, managers, reporters and viewers see
it; anyone else is refused privately without learning whether the lead exists; Slack guests and
deactivated members see nothing and claim nothing, whatever the SLA file lists; and every
look-up is recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
REPORTER, VIEWER = "U0RPT", "U0MKT"
MID_MARKET_REP = "U0REP3"
SHOWN_TO = "shown only to the lead's segment reps, its owner, the sales managers"
NOT_YOURS = "No lead you may see has the email or external id 'hs-1'"


@pytest.fixture
async def shared(sqlite_url: str, policy: Policy, clock: TravelClock) -> AsyncIterator[LocalStack]:
    """The example SLA with a reporter and a marketing viewer, and the lead posted."""
    content = snapshot(policy) | {"reporters": [REPORTER], "viewers": [VIEWER]}
    local = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    local.sim.add_user(REPORTER, "rita", "Rita (RevOps analyst)")
    local.sim.add_user(VIEWER, "mo", "Mo (Marketing)")
    try:
        status, _ = await local.post_lead(lead_payload())
        assert status == 201
        await local.settle()
        yield local
    finally:
        await local.close()


async def look_up(stack: LocalStack, user: str, query: str = "hs-1") -> str:
    answer = await stack.driver.command(user, "/lead", query)
    assert answer.json is not None and answer.json.get("response_type") == "ephemeral"
    return json.dumps(answer.json)


async def viewers_recorded(stack: LocalStack) -> list[str]:
    return [e.actor for e in await stack.services.store.events(1) if e.type == "viewed"]


@pytest.mark.parametrize(
    "user",
    [
        pytest.param("U0REP1", id="a rep of the lead's segment"),
        pytest.param("U0MGR1", id="a manager"),
        pytest.param(REPORTER, id="a reporter"),
        pytest.param(VIEWER, id="a viewer"),
    ],
)
async def test_those_who_work_the_lead_see_it_and_are_recorded(
    shared: LocalStack, user: str
) -> None:
    assert "Priya Raman" in await look_up(shared, user)
    assert await viewers_recorded(shared) == [user]


async def test_its_owner_sees_it_from_another_segment(shared: LocalStack) -> None:
    """A smb rep who came to own the enterprise lead (a reassignment across segments)."""
    await shared.services.store.db.run(
        lambda db: db.exec_driver_sql("UPDATE leads SET owner = 'U0REP5', stage = 'sal'")
    )
    assert "Priya Raman" in await look_up(shared, "U0REP5")
    assert await viewers_recorded(shared) == ["U0REP5"]


async def test_a_rep_of_another_segment_learns_nothing(shared: LocalStack) -> None:
    answer = await look_up(shared, "U0REP3")  # mid-market
    assert NOT_YOURS in answer and "Priya" not in answer
    missing = await look_up(shared, "U0REP3", "nobody@nowhere.example")
    assert missing.replace("nobody@nowhere.example", "hs-1") == answer  # the same either way
    assert await viewers_recorded(shared) == []


async def test_anyone_else_is_refused_before_any_search(shared: LocalStack) -> None:
    answer = await look_up(shared, "U0OUTSIDER")
    assert SHOWN_TO in answer and "Priya" not in answer
    partial = await look_up(shared, "U0OUTSIDER", "priya")
    assert partial == answer  # a partial email or name reveals nothing either
    assert await viewers_recorded(shared) == []


async def test_guests_and_deactivated_members_see_nothing_and_claim_nothing(
    shared: LocalStack, clock: TravelClock
) -> None:
    shared.sim.make_guest("U0REP2")  # listed as an enterprise rep, but a Slack guest
    shared.sim.deactivate_user("U0MGR2")  # a manager who left
    await shared.handoff.people.refresh(clock())
    for user in ("U0REP2", "U0MGR2"):
        answer = await look_up(shared, user)
        assert SHOWN_TO in answer and "Priya" not in answer
    press = await shared.driver.press("U0REP2", "Claim", channel=ENTERPRISE)
    assert press.status == 200
    await shared.settle()
    (refused,) = shared.sim.ephemerals(user="U0REP2")
    assert "Slack guests and deactivated accounts cannot" in refused.text
    assert (await shared.services.lead(1)).owner is None
    await shared.driver.app_home_opened("U0REP2")
    await shared.settle()
    home = json.dumps(shared.sim.home("U0REP2"))
    assert "Slack guests and deactivated accounts cannot" in home and "Priya" not in home
    assert await viewers_recorded(shared) == []


@pytest.fixture
async def came_back(stack: LocalStack, clock: TravelClock) -> LocalStack:
    """One person, two leads: first from a mid-market company, a minute later from the group
    (enterprise); the mid-market rep may see the first only."""
    mid = {"name": "Acme", "employees": 500}
    await stack.post_lead(lead_payload("hs-mid", email="jane@acme.example", company=mid))
    clock.advance(minutes=1)
    group = {"name": "Acme Group", "employees": 5000}
    await stack.post_lead(lead_payload("hs-ent", email="jane@acme.example", company=group))
    await stack.settle()
    return stack


async def test_a_rep_finds_the_lead_of_an_email_they_may_see_not_only_the_newest(
    came_back: LocalStack,
) -> None:
    answer = await look_up(came_back, MID_MARKET_REP, "jane@acme.example")

    assert "Priya Raman at Acme," in answer and "Acme Group" not in answer
    assert await viewers_recorded(came_back) == [MID_MARKET_REP]  # of the mid-market lead


async def test_someone_who_may_see_several_leads_of_an_email_is_shown_each(
    came_back: LocalStack,
) -> None:
    answer = json.loads(await look_up(came_back, "U0MGR1", "JANE@acme.example"))

    assert answer["text"].splitlines() == [
        "2 leads you may see have the email 'JANE@acme.example'; ask for one by its external "
        "id, e.g. `/lead hs-ent`:",
        "• `/lead hs-ent` · enterprise · MQL, waiting for a rep · received Mon 23 Nov 2026 "
        "11:01 AEDT",
        "• `/lead hs-mid` · mid market · MQL, waiting for a rep · received Mon 23 Nov 2026 "
        "11:00 AEDT",
    ]
    assert await viewers_recorded(came_back) == []  # no lead's details were shown
    assert "Acme Group" in await look_up(came_back, "U0MGR1", "hs-ent")
