"""Feedback and the final outcome are two deadlines, each on its clock, through the real server:
the first feedback is due 72 calendar hours after the claim, the final disposition when the
2-week cadence ends, and "Contacted – progressing" is feedback that keeps the lead open."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.domain.lead import Stage
from bot.domain.policy import Policy
from tests.conftest import lead_payload

ENTERPRISE, ESCALATIONS, FEEDBACK = "C0ENT", "C0ESCALATE", "C0MKTFEED"
OWNER = "U0REP1"


@pytest.fixture
def policy(policy: Policy) -> Policy:
    """The shipped SLA, with a follow-up standard the first call meets: the cadence's own
    reminders (tests/e2e/test_cadence_e2e.py) stay out of the way of the two deadlines, which
    still run 72 hours and 2 weeks from the claim."""
    standard = policy.follow_up.model_copy(update={"min_attempts": 1})
    return policy.model_copy(update={"follow_up": standard})


async def claimed(stack: LocalStack) -> None:
    """A hot lead posted Monday 11:00 in Sydney, claimed and called at once."""
    status, _ = await stack.post_lead(lead_payload("hs-1"))
    assert status == 201
    await stack.settle()
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.press(OWNER, "Log call", channel=ENTERPRISE)
    await stack.settle()


async def sweep(stack: LocalStack, clock: TravelClock) -> int:
    result = await stack.handoff.sweeper.run(clock())
    await stack.settle()
    return result.changed


def dms(stack: LocalStack) -> list[str]:
    return [message.all_text for message in stack.sim.messages(stack.sim.dm_channel(OWNER))]


def post_text(stack: LocalStack) -> str:
    (post,) = stack.sim.messages(ENTERPRISE)
    return post.all_text


def buttons(stack: LocalStack) -> list[str]:
    (post,) = stack.sim.messages(ENTERPRISE)
    return [button["text"]["text"] for _, button in post.buttons()]


async def test_feedback_is_due_72_calendar_hours_after_the_claim_and_the_outcome_at_cadence_end(
    stack: LocalStack, clock: TravelClock
) -> None:
    await claimed(stack)
    claim = clock()
    lead = await stack.services.lead(1)
    assert lead.claimed_at == claim
    # Monday 11:00 + 72 hours = Thursday 11:00 (not nine working days on); + 2 weeks.
    assert lead.disposition_due_at == claim + timedelta(hours=72)
    assert lead.final_due_at == claim + timedelta(weeks=2)
    text = post_text(stack)
    assert "feedback due by" in text and "72 hours" in text
    assert "final disposition due by" in text and "2 weeks" in text

    clock.now = claim + timedelta(hours=72) - timedelta(minutes=1)
    assert await sweep(stack, clock) == 0
    clock.now = claim + timedelta(hours=72)
    assert await sweep(stack, clock) == 1
    reminder = dms(stack)[-1]
    assert "first feedback (a disposition) due now" in reminder
    assert "SLA: 72 hours after the claim" in reminder

    # 150% is Friday 23:00: the managers are not paged at night; they hear of the missing
    # feedback when the working day opens (Monday 09:00).
    clock.now = claim + timedelta(hours=108)
    assert await sweep(stack, clock) == 0
    clock.now = claim + timedelta(days=7, hours=-2)
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "first feedback (a disposition) overdue by 3d 22h (SLA: 72 hours" in alert.all_text

    clock.now = claim + timedelta(weeks=2) - timedelta(minutes=1)
    assert await sweep(stack, clock) == 0
    clock.now = claim + timedelta(weeks=2)  # the cadence's end: the final disposition is due
    assert await sweep(stack, clock) == 1
    reminder = dms(stack)[-1]
    assert "final disposition due now" in reminder and "SLA: 2 weeks after the claim" in reminder


async def test_contacted_progressing_keeps_the_lead_open_and_stops_the_feedback_clock(
    stack: LocalStack, clock: TravelClock
) -> None:
    await claimed(stack)
    claim = clock()
    clock.advance(hours=30)
    await stack.driver.press(OWNER, "Contacted – progressing", channel=ENTERPRISE)
    await stack.settle()

    lead = await stack.services.lead(1)
    assert (lead.stage, lead.owner, lead.disposition_code) == (Stage.SAL, OWNER, None)
    assert lead.feedback_at == claim + timedelta(hours=30) and lead.dispositioned_at is None
    events = await stack.services.store.events(1)
    assert [(e.type, e.data.get("code")) for e in events if e.type == "feedback"] == [
        ("feedback", "progressing")
    ]
    assert stack.sim.messages(FEEDBACK) == []  # not a rejection: marketing's channel is quiet
    (post,) = stack.sim.messages(ENTERPRISE)
    notes = [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]
    assert any("gave feedback: *Contacted – progressing*" in note for note in notes)
    assert "feedback given" in post_text(stack)
    # Still open: attempts and the final outcomes remain; the feedback button is spent.
    labels = buttons(stack)
    assert "Log email" in labels and "Qualified" in labels
    assert "Contacted – progressing" not in labels

    # The feedback clock stopped: 72 and 108 hours after the claim nobody is told anything.
    for hours in (72, 108):
        clock.now = claim + timedelta(hours=hours)
        assert await sweep(stack, clock) == 0
    assert dms(stack) == [] and stack.sim.messages(ESCALATIONS) == []

    clock.advance(hours=1)
    await stack.driver.press(OWNER, "Log email", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.press(OWNER, "Qualified", channel=ENTERPRISE)
    await stack.settle()
    lead = await stack.services.lead(1)
    assert (lead.stage, lead.attempts, lead.disposition_code) == (Stage.SQL, 2, "qualified")
    assert lead.feedback_at == claim + timedelta(hours=30)  # the first feedback stays
    # The final clock stopped too: the cadence's end passes in silence.
    clock.now = claim + timedelta(weeks=3)
    assert await sweep(stack, clock) == 0
    assert dms(stack) == []
