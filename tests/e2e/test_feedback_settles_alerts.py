"""A managers' alert about a lead's missing feedback is answered when its rep gives feedback
that keeps the lead open ("Contacted – progressing", or a question to marketing): replaced in
place with who gave it and when, its Reassign menu and Snooze button gone, so no manager hands
on a lead that is being worked. An alert about a clock the rep's action does not meet (a
missing first touch, a missing final outcome) stays live. A press on a settled alert's stale
control is answered privately and changes nothing."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.domain.policy import Policy
from bot.simulator.data import Message
from tests.conftest import lead_payload
from tests.e2e.test_reassign import has_controls, private_answers, sweep

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MANAGER, MAYA = "U0MGR1", "U0REP1"
LEAD = f"*Priya Raman* (Northwind Logistics) in <#{ENTERPRISE}>"


@pytest.fixture
def policy(policy: Policy) -> Policy:
    """The shipped SLA with a follow-up standard the first call meets, so the cadence's own
    reminders stay out of the way of the feedback and outcome clocks."""
    standard = policy.follow_up.model_copy(update={"min_attempts": 1})
    return policy.model_copy(update={"follow_up": standard})


async def press(stack: LocalStack, user: str, label: str) -> None:
    await stack.driver.press(user, label, channel=ENTERPRISE)
    await stack.settle()


async def claimed(stack: LocalStack, *, call: bool = True) -> None:
    """A hot lead posted Monday 11:00 in Sydney, claimed by Maya at once (and called)."""
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    await press(stack, MAYA, "Claim")
    if call:
        await press(stack, MAYA, "Log call")


async def feedback_overdue(stack: LocalStack, clock: TravelClock) -> Message:
    """No feedback 72 hours after the claim: the managers hear of it when the next working week
    opens (150% of the window falls on Friday night), with Reassign and Snooze."""
    claim = clock()
    await claimed(stack)
    clock.now = claim + timedelta(days=7, hours=-2)  # Monday 09:00
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "first feedback (a disposition) overdue" in alert.text and has_controls(alert)
    return alert


def the_alert(stack: LocalStack, alert: Message) -> Message:
    """The alert as the managers see it now: still the one message."""
    (now,) = stack.sim.messages(ESCALATIONS)
    assert now.ts == alert.ts
    return now


async def ask_marketing(stack: LocalStack, question: str = "Which region is it for?") -> None:
    await press(stack, MAYA, "Need more info")
    view = stack.sim.latest_view(MAYA)
    assert view is not None
    done = await stack.driver.submit_view(MAYA, {"question": question}, view_id=view.id)
    assert done.status == 200 and done.json is None
    await stack.settle()


async def test_contacted_progressing_settles_the_alert_about_missing_feedback(
    stack: LocalStack, clock: TravelClock
) -> None:
    alert = await feedback_overdue(stack, clock)
    clock.advance(minutes=5)

    await press(stack, MAYA, "Contacted – progressing")

    settled = the_alert(stack, alert)
    assert settled.text == (
        f"💬 Feedback given by <@{MAYA}> at Mon 09:05 AEDT: Contacted – progressing. {LEAD} "
        "stays open with its owner."
    )
    assert not has_controls(settled)
    assert stack.sim.ephemerals(user=MANAGER) == []


async def test_a_question_to_marketing_settles_the_alert_about_missing_feedback(
    stack: LocalStack, clock: TravelClock
) -> None:
    alert = await feedback_overdue(stack, clock)
    clock.advance(minutes=5)

    await ask_marketing(stack)

    settled = the_alert(stack, alert)
    assert settled.text == (
        f"💬 Feedback given by <@{MAYA}> at Mon 09:05 AEDT: Need more info. {LEAD} waits for "
        "marketing's answer to the rep's question (its clocks paused)."
    )
    assert not has_controls(settled)


async def test_a_stale_control_on_a_settled_alert_changes_nothing(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A manager whose Slack still shows the alert's controls (the settled words not there
    yet) picks a rep, then presses Snooze: each is answered privately, and the lead stays
    with the rep working it, unsnoozed."""
    alert = await feedback_overdue(stack, clock)
    as_seen = copy.deepcopy(alert)  # the manager's Slack has not shown the edit
    clock.advance(minutes=5)
    await press(stack, MAYA, "Contacted – progressing")
    settled = the_alert(stack, alert)
    before = (await stack.services.lead(1), settled.edited_count)

    await stack.driver.choose(MANAGER, "tom", channel=ESCALATIONS, seen=as_seen)
    await stack.settle()
    await stack.driver.press(MANAGER, "Snooze 1h", channel=ESCALATIONS, seen=as_seen)
    await stack.settle()

    words = (
        "Nothing was changed: this alert was settled already. "
        f"{settled.text} `/lead hs-1` shows where the lead stands now, with its Reassign menu "
        "if it still needs one."
    )
    assert private_answers(stack, MANAGER) == [words, words]
    lead = await stack.services.lead(1)
    assert (lead, the_alert(stack, alert).edited_count) == before
    assert (lead.owner, lead.snoozed_until) == (MAYA, None)
    (post,) = stack.sim.messages(ENTERPRISE)
    notes = [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]
    assert not any("Reassigned" in note or "Snoozed" in note for note in notes)


async def test_an_alert_about_a_missing_first_touch_stays_live_after_a_question(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A question to marketing is feedback, not a touch: the managers' alert about the first
    touch it still owes keeps its controls."""
    await claimed(stack, call=False)
    clock.advance(hours=3)  # 14:00: no first touch an hour after it was due
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "first touch overdue" in alert.text and has_controls(alert)
    as_sent = copy.deepcopy(alert)

    await ask_marketing(stack)

    live = the_alert(stack, alert)
    assert (live.text, live.blocks, live.edited_count) == (
        as_sent.text,
        as_sent.blocks,
        as_sent.edited_count,
    )
    # Still the managers' to answer: a snooze from it goes through.
    await stack.driver.press(MANAGER, "Snooze 1h", channel=ESCALATIONS)
    await stack.settle()
    assert private_answers(stack, MANAGER) == []
    assert (await stack.services.lead(1)).snoozed_until is not None


async def test_an_alert_about_the_final_outcome_stays_live_until_the_lead_is_closed(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Feedback given early, the final disposition never came: an attempt is no outcome, so
    the alert stays live; closing the lead settles it."""
    claim = clock()
    await claimed(stack)
    clock.advance(hours=2)
    await press(stack, MAYA, "Contacted – progressing")
    clock.now = claim + timedelta(weeks=3)  # 150% of the 2-week cadence: the managers hear
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "final disposition overdue" in alert.text and has_controls(alert)

    await press(stack, MAYA, "Log email")

    assert has_controls(the_alert(stack, alert))
    assert the_alert(stack, alert).edited_count == alert.edited_count

    await press(stack, MAYA, "Qualified")

    settled = the_alert(stack, alert)
    assert settled.text == f"✅ Closed as Qualified by <@{MAYA}> at Mon 11:00 AEDT: {LEAD}."
    assert not has_controls(settled)


async def test_a_question_slack_refuses_for_good_is_told_to_the_managers(
    stack: LocalStack,
) -> None:
    """The question waits for marketing's answer with the lead's clocks paused: if Slack
    refuses it for good (chat.postMessage: `is_archived`, "Channel has been archived."), the
    managers must hear it, or the lead waits for an answer nobody was asked for."""
    await claimed(stack)
    stack.sim.archive_channel("C0MKTFEED")

    await ask_marketing(stack)

    assert stack.sim.messages("C0MKTFEED") == []
    (alert,) = [m.all_text for m in stack.sim.messages(ESCALATIONS)]
    for expected in ("Priya Raman", "<#C0MKTFEED>", "is_archived", "unarchive it"):
        assert expected in alert, expected
