"""A managers' escalation alert says what became of its lead once someone acts on it anywhere:
claimed in the channel, closed with a disposition, reassigned from the lead's post, or its
missing first touch made. It is replaced in place, its Reassign menu and Snooze button gone,
so nobody answers it again. (Feedback that keeps the lead open: test_feedback_settles_alerts.py.)"""

from __future__ import annotations

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.data import Message
from tests.conftest import lead_payload
from tests.e2e.test_crm_activity import activity
from tests.e2e.test_reassign import alerted, has_controls, sweep

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MANAGER, MAYA, TOM = "U0MGR1", "U0REP1", "U0REP2"
LEAD = f"*Priya Raman* (Northwind Logistics) in <#{ENTERPRISE}>"


def the_alert(stack: LocalStack, alert: Message) -> Message:
    """The alert as the managers see it now: still the one message, updated in place."""
    (now,) = stack.sim.messages(ESCALATIONS)
    assert now.ts == alert.ts
    return now


async def press(stack: LocalStack, user: str, label: str) -> None:
    await stack.driver.press(user, label, channel=ENTERPRISE)
    await stack.settle()


async def first_touch_alert(stack: LocalStack, clock: TravelClock) -> Message:
    """A lead Maya claimed at 11:00 and has not touched by 14:00: the managers' alert about it."""
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    await press(stack, MAYA, "Claim")
    clock.advance(hours=3)  # 14:00: no first touch an hour after it was due
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    return alert


async def test_a_claim_settles_the_alert(stack: LocalStack, clock: TravelClock) -> None:
    alert = await alerted(stack, clock)  # 12:01: nobody has claimed it

    await press(stack, MAYA, "Claim")

    settled = the_alert(stack, alert)
    assert settled.text == f"✅ Claimed by <@{MAYA}> at Mon 12:01 AEDT: {LEAD}."
    assert not has_controls(settled)
    # Closing the lead later leaves it saying who claimed it: an alert settles once.
    await press(stack, MAYA, "Log call")
    await press(stack, MAYA, "Qualified")
    assert the_alert(stack, alert).text == settled.text
    assert stack.sim.ephemerals(user=MANAGER) == []


async def test_closing_a_lead_settles_its_alert(stack: LocalStack, clock: TravelClock) -> None:
    alert = await first_touch_alert(stack, clock)
    assert f"owner <@{MAYA}>" in alert.all_text and has_controls(alert)

    await press(stack, MAYA, "Qualified")

    settled = the_alert(stack, alert)
    assert settled.text == f"✅ Closed as Qualified by <@{MAYA}> at Mon 14:00 AEDT: {LEAD}."
    assert not has_controls(settled)


async def test_the_first_touch_settles_the_alert_about_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    alert = await first_touch_alert(stack, clock)
    assert "first touch overdue" in alert.text and has_controls(alert)

    await press(stack, MAYA, "Log call")

    settled = the_alert(stack, alert)
    assert settled.text == f"📞 First touch (call) by <@{MAYA}> at Mon 14:00 AEDT: {LEAD}."
    assert not has_controls(settled)
    await press(stack, MAYA, "Log email")  # a second attempt leaves it as it is
    await press(stack, MAYA, "Qualified")
    assert the_alert(stack, alert).text == settled.text


async def test_a_reassignment_from_the_post_settles_the_alert(
    stack: LocalStack, clock: TravelClock
) -> None:
    alert = await alerted(stack, clock)
    (post,) = stack.sim.messages(ENTERPRISE)

    await stack.driver.choose(
        MANAGER, "tom", channel=ENTERPRISE, action_id="lead_reassign", message_ts=post.ts
    )
    await stack.settle()

    assert (await stack.services.lead(1)).suggested_owner == TOM
    settled = the_alert(stack, alert)
    assert settled.text == (
        f"🔁 Reassigned to <@{TOM}> from <@{MAYA}> by <@{MANAGER}> at Mon 12:01 AEDT: {LEAD}."
    )
    assert not has_controls(settled)


async def test_a_first_touch_made_in_the_crm_settles_the_alert_about_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    alert = await first_touch_alert(stack, clock)

    email = {"type": "attempt", "kind": "email", "id": "hs-email-1"}  # no rep named
    status, _ = await activity(stack, "hs-1", email)
    assert status == 201
    await stack.settle()

    settled = the_alert(stack, alert)
    assert settled.text == f"📞 First touch (email) by the CRM at Mon 14:00 AEDT: {LEAD}."
    assert not has_controls(settled)
