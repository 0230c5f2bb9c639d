"""App Home while Slack refuses it for the whole app, through the real server and the
simulator, on SQLite and PostgreSQL.

views.publish's reference (/work/shared/slack/methods/views.publish.json) lists `not_enabled`:
"Error returned if a `home` view is published but the Home tab isn't enabled for the app". It is
about the app, not the person: once an admin turns the Home tab off, every home is refused the
same way. The escalations channel hears it once a day for the app, naming how many homes wait;
each person's home waits (one publish each, whatever changes meanwhile) and is published,
once, as it is then, when the tab is back on. A refusal about one person's home stays theirs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.faults import Fault
from tests.conftest import lead_payload
from tests.e2e.conftest import replica

ESCALATIONS = "C0ESCALATE"
REP, PEER = "U0REP1", "U0REP2"
# A lead for each of five reps: the round robin of each segment (sla.yaml) suggests its first
# rep, then its second.
LEADS = [("ent-1", 2400, "C0ENT"), ("ent-2", 2400, "C0ENT"), ("mid-1", 500, "C0MID")]
LEADS += [("mid-2", 500, "C0MID"), ("smb-1", 40, "C0SMB")]


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


async def until(condition: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def home_alerts(stack: LocalStack) -> list[str]:
    return [m.all_text for m in stack.sim.messages(ESCALATIONS) if "App Home" in m.all_text]


def refused(stack: LocalStack) -> int:
    return sum(not call.ok for call in stack.sim.calls_to("views.publish"))


def published(stack: LocalStack, user: str) -> int:
    calls = stack.sim.calls_to("views.publish")
    return sum(call.ok and call.args.get("user_id") == user for call in calls)


async def waiting_homes(stack: LocalStack) -> int:
    rows = await stack.handoff.outbox.rows.rows()
    return sum(row["kind"] == "home" and row["state"] == "pending" for row in rows)


async def five_reps_with_a_lead(stack: LocalStack) -> dict[str, tuple[int, str]]:
    """Each of five reps has a lead suggested to them, and has opened App Home."""
    theirs: dict[str, tuple[int, str]] = {}
    for external_id, employees, channel in LEADS:
        company: dict[str, Any] = {"name": f"{external_id} Ltd", "employees": employees}
        company["domain"] = f"{external_id}.example"
        status, answer = await stack.post_lead(
            lead_payload(external_id, email=f"a@{external_id}.example", company=company)
        )
        assert status == 201, answer
        await stack.settle()
        lead = await stack.services.lead(int(answer["id"]))
        assert lead.suggested_owner is not None and lead.channel == channel
        theirs[lead.suggested_owner] = (lead.id, channel)
    assert len(theirs) == 5, theirs
    for rep in theirs:
        assert (await stack.driver.app_home_opened(rep)).status == 200
        await stack.settle()
        assert published(stack, rep) == 1
    return theirs


async def test_the_home_tab_turned_off_is_told_once_a_day_and_homes_come_back_once(
    stack: LocalStack, clock: TravelClock
) -> None:
    sim = stack.sim
    reps = await five_reps_with_a_lead(stack)
    fault = sim.inject("views.publish", error="not_enabled")  # an admin turned the tab off

    for rep, (lead, channel) in reps.items():  # each claims their lead, then logs a call
        await stack.driver.press(rep, "Claim", channel=channel, value=str(lead))
        await stack.settle()
        await stack.driver.press(rep, "Log call", channel=channel, value=str(lead))
        await stack.settle()

    # One alert for the app, not one per person; one refused publish, not one per change.
    alerts = home_alerts(stack)
    assert len(alerts) == 1, alerts
    assert "not_enabled" in alerts[0] and "Turn the Home tab back on" in alerts[0]
    assert not any(f"<@{rep}>" in alerts[0] for rep in reps)
    assert refused(stack) == 1
    assert await waiting_homes(stack) == 5  # one each, whatever changed meanwhile

    # The next day, still off: told once more, naming the five homes that wait.
    clock.advance(days=1)
    await until(lambda: len(home_alerts(stack)) == 2)
    await stack.settle()
    alerts = home_alerts(stack)
    assert len(alerts) == 2 and "5 people's App Homes wait" in alerts[1], alerts
    assert refused(stack) == 2  # the one publish that asked whether it is back on
    assert await waiting_homes(stack) == 5
    # Homes held a day are no delivery falling behind: the replica stays in rotation.
    async with stack.session.get(f"{stack.base_url}/readyz") as response:
        answer = await response.json()
        assert response.status == 200 and answer["checks"]["outbox"]["ok"], answer

    # The tab is on again: at the next try every home is published once, as it is now.
    sim.faults.remove(fault)
    clock.advance(minutes=6)
    await until(lambda: all(published(stack, rep) == 2 for rep in reps))
    await stack.settle()
    await asyncio.sleep(0.3)
    assert {rep: published(stack, rep) for rep in reps} == dict.fromkeys(reps, 2)
    for rep in reps:
        view = json.dumps(sim.home(rep), ensure_ascii=False)
        assert "Attempts 1/6" in view, view  # claimed, one call logged
    assert await waiting_homes(stack) == 0
    assert len(home_alerts(stack)) == 2


async def claimed_with_the_tab_off(stack: LocalStack, reps: dict[str, tuple[int, str]]) -> Fault:
    """An admin turns the Home tab off (Slack: `not_enabled`), then each rep claims their lead."""
    fault = stack.sim.inject("views.publish", error="not_enabled")
    for rep, (lead, channel) in reps.items():
        await stack.driver.press(rep, "Claim", channel=channel, value=str(lead))
        await stack.settle()
    return fault


async def test_a_person_opening_the_home_tab_shows_it_is_back_on(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Slack sends app_home_opened with `tab: home` only when a person opens the Home tab: it
    is on, so the homes waiting are published at once, not at the next try."""
    reps = await five_reps_with_a_lead(stack)
    fault = await claimed_with_the_tab_off(stack, reps)
    assert refused(stack) == 1 and await waiting_homes(stack) == 5

    stack.sim.faults.remove(fault)
    assert (await stack.driver.app_home_opened(PEER)).status == 200  # the clock stands still
    await until(lambda: all(published(stack, rep) == 2 for rep in reps))
    await stack.settle()
    assert {rep: published(stack, rep) for rep in reps} == dict.fromkeys(reps, 2)
    assert len(home_alerts(stack)) == 1


async def test_a_replica_started_meanwhile_holds_the_homes_too(stack: LocalStack) -> None:
    """A replica started while the homes are held (another process, or this one restarted)
    learns it from the outbox: it asks Slack with one home, not with each of them."""
    reps = await five_reps_with_a_lead(stack)
    await claimed_with_the_tab_off(stack, reps)
    assert refused(stack) == 1

    other = replica(stack, stack.handoff.outbox.client)
    try:
        await until(lambda: refused(stack) >= 2)  # it asks at once, with one home
        await asyncio.sleep(0.5)
        assert refused(stack) == 2 and len(home_alerts(stack)) == 1
        assert await waiting_homes(stack) == 5
    finally:
        await other.close()


async def test_a_refusal_of_one_persons_home_stays_theirs(stack: LocalStack) -> None:
    """`view_too_large` ("the provided view is greater than 250kb") is about that person's
    home: it names them, and the others' homes are published as before."""
    reps = await five_reps_with_a_lead(stack)
    stack.sim.inject("views.publish", error="view_too_large", times=1)
    (first, (lead, channel)), *others = reps.items()
    await stack.driver.press(first, "Claim", channel=channel, value=str(lead))
    await stack.settle()
    alerts = home_alerts(stack)
    assert len(alerts) == 1 and f"<@{first}>" in alerts[0] and "view_too_large" in alerts[0]

    for rep, (lead, channel) in others:
        await stack.driver.press(rep, "Claim", channel=channel, value=str(lead))
        await stack.settle()
    assert all(published(stack, rep) == 2 for rep, _ in others)
    assert await waiting_homes(stack) == 0


async def test_held_homes_leave_the_other_deliveries_their_turn(stack: LocalStack) -> None:
    """The held homes are not due while held: with more of them than the dispatcher's full read
    takes (its oldest due rows; 1,000 when serving, 3 here), a lead's post Slack refused for
    now (`rate_limited`, chat.postMessage's "Application has posted too many messages") is
    still posted when it comes due, not once the Home tab is back."""
    outbox = stack.handoff.outbox
    reps = await five_reps_with_a_lead(stack)
    await claimed_with_the_tab_off(stack, reps)
    assert refused(stack) == 1 and await waiting_homes(stack) == 5
    outbox.read_limit = 3  # fewer than the homes held

    stack.sim.inject("chat.postMessage", error="rate_limited", times=1)
    company = {"name": "Late Ltd", "employees": 2400, "domain": "late.example"}
    status, answer = await stack.post_lead(
        lead_payload("ent-late", email="a@late.example", company=company)
    )
    assert status == 201, answer
    await until(lambda: any("Late Ltd" in m.all_text for m in stack.sim.messages("C0ENT")))
    assert refused(stack) == 1  # the homes still wait, asked about once
    assert await waiting_homes(stack) == 5


async def test_a_home_through_at_another_replica_brings_them_all_back(stack: LocalStack) -> None:
    """The homes are held in the outbox, for every replica: one started once the tab is back
    on asks with one home, and its getting through makes every home due again, wherever it is
    read (this replica's next try is minutes away: the clock stands still)."""
    reps = await five_reps_with_a_lead(stack)
    fault = await claimed_with_the_tab_off(stack, reps)
    assert refused(stack) == 1 and await waiting_homes(stack) == 5

    stack.sim.faults.remove(fault)
    other = replica(stack, stack.handoff.outbox.client)
    try:
        await until(lambda: all(published(stack, rep) == 2 for rep in reps))
        await asyncio.sleep(0.3)
        assert {rep: published(stack, rep) for rep in reps} == dict.fromkeys(reps, 2)
        assert await waiting_homes(stack) == 0
    finally:
        await other.close()
