"""Nurture and recycle come back, and "request more info", through the real server and the Slack
simulator: re-engagement by the sweep, re-qualification by POST /leads, and a question to
marketing answered with its button or through the activity route."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.data import Message
from tests.conftest import lead_payload
from tests.e2e.test_crm_activity import activity

ENTERPRISE, FEEDBACK = "C0ENT", "C0MKTFEED"
OWNER, MARKETER, MANAGER = "U0REP1", "U0OUTSIDER", "U0MGR1"
DEMO = {"type": "demo_request", "title": "Book a demo"}


def labels(message: Message) -> list[str]:
    return [button["text"]["text"] for _, button in message.buttons()]


def thread(stack: LocalStack, channel: str, ts: str) -> list[str]:
    return [reply.all_text for reply in stack.sim.thread(channel, ts)]


async def sweep(stack: LocalStack, clock: TravelClock) -> int:
    result = await stack.handoff.sweeper.run(clock())
    await stack.settle()
    return result.changed


async def claimed(stack: LocalStack) -> Message:
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    (message,) = stack.sim.messages(ENTERPRISE)
    return message


async def event_types(stack: LocalStack, lead_id: int = 1) -> list[str]:
    return [event.type for event in await stack.services.store.events(lead_id)]


# --- nurture re-engagement ----------------------------------------------------------------------


async def test_a_bad_timing_lead_is_posted_again_at_its_re_engagement_date(
    stack: LocalStack, clock: TravelClock
) -> None:
    await claimed(stack)
    await stack.driver.press(OWNER, "Bad timing", channel=ENTERPRISE)
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.stage.value == "nurture" and lead.next_action_at is not None
    back = lead.next_action_at
    policy = stack.services.policy
    assert lead.dispositioned_at is not None
    calendar = policy.calendar  # 90 days on, at the next opening of working time
    assert back == calendar.at_work(calendar.add(lead.dispositioned_at, policy.nurture_after))

    clock.now = back - timedelta(minutes=1)
    assert await sweep(stack, clock) == 0  # not yet
    clock.now = back
    assert await sweep(stack, clock) == 1
    lead = await stack.services.lead(1)
    assert (lead.stage.value, lead.cycle, lead.owner, lead.attempts) == ("mql", 2, None, 0)
    posts = stack.sim.messages(ENTERPRISE)
    assert len(posts) == 2 and labels(posts[-1]) == ["Claim"]  # a new cycle, its own post
    assert "First touch due by" in posts[-1].all_text
    assert "nurture_reengaged" in await event_types(stack)
    assert await sweep(stack, clock) == 0  # once


async def test_a_lead_still_below_the_bar_stays_in_nurture_quietly(
    stack: LocalStack, clock: TravelClock
) -> None:
    status, answer = await stack.post_lead(lead_payload(score=35))
    assert (status, answer["status"]) == (201, "nurture")
    await stack.settle()
    (notice,) = stack.sim.messages(FEEDBACK)  # the nurture notice, with its date
    assert "scored again <!date^" in notice.all_text
    lead = await stack.services.lead(1)
    back = lead.next_action_at
    assert back is not None
    clock.now = back
    await sweep(stack, clock)
    lead = await stack.services.lead(1)
    assert lead.stage.value == "nurture" and lead.cycle == 1
    assert lead.next_action_at is not None and lead.next_action_at > back  # the next date
    assert len(stack.sim.messages(FEEDBACK)) == 1 and stack.sim.messages(ENTERPRISE) == []
    assert "nurture_checked" in await event_types(stack)


# --- re-qualification at intake -----------------------------------------------------------------


async def test_a_nurtured_lead_sent_again_with_new_engagement_is_posted_as_a_new_cycle(
    stack: LocalStack, clock: TravelClock
) -> None:
    status, answer = await stack.post_lead(lead_payload(score=35))
    assert (status, answer) == (201, {"id": 1, "status": "nurture"})
    await stack.settle()
    assert stack.sim.messages(ENTERPRISE) == []

    clock.advance(hours=3)
    again = lead_payload(score=35, engagement=[*lead_payload()["engagement"], DEMO])
    status, answer = await stack.post_lead(again)
    assert (status, answer["status"]) == (200, "nurture")  # new engagement, still too low
    assert answer["message"] == "still not an MQL: score 35 is below the MQL threshold 60"

    again["score"] = 90  # the marketing system scores it higher now
    status, answer = await stack.post_lead(again)
    assert (status, answer) == (201, {"id": 1, "status": "mql", "cycle": 2})
    await stack.settle()
    (post,) = stack.sim.messages(ENTERPRISE)
    assert labels(post) == ["Claim"] and "Book a demo" in post.all_text

    status, answer = await stack.post_lead(again)  # a duplicate: nothing new
    assert (status, answer) == (200, {"id": 1, "status": "mql"})
    await stack.settle()
    assert len(stack.sim.messages(ENTERPRISE)) == 1
    kinds = await event_types(stack)
    assert kinds.count("requalified") == 1 and kinds.count("engagement") == 1


# --- request more info ----------------------------------------------------------------------------


async def ask(stack: LocalStack, question: str = "Which region is the rollout for?") -> Message:
    message = await claimed(stack)
    assert "Need more info" in labels(message)
    await send_question(stack, question)
    return message


async def send_question(stack: LocalStack, question: str) -> None:
    """The owner presses *Need more info* on the claimed lead and sends `question`."""
    await stack.driver.press(OWNER, "Need more info", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view(OWNER)
    assert view is not None
    done = await stack.driver.submit_view(OWNER, {"question": question}, view_id=view.id)
    assert done.status == 200 and done.json is None
    await stack.settle()


async def test_a_question_goes_to_marketing_and_the_answer_comes_back_to_the_owner(
    stack: LocalStack, clock: TravelClock
) -> None:
    message = await ask(stack)
    (request,) = stack.sim.messages(FEEDBACK)
    assert "Which region is the rollout for?" in request.all_text and labels(request) == ["Answer"]
    current = stack.sim.message(ENTERPRISE, message.ts)
    assert current is not None and labels(current) == []  # with marketing: nothing to press
    assert "With marketing since" in current.all_text
    assert "Next touch" not in current.all_text  # its clocks are paused: no touch is due
    assert any(
        "asked marketing for more info" in text for text in thread(stack, ENTERPRISE, message.ts)
    )
    lead = await stack.services.lead(1)
    assert lead.waiting_for_info and lead.next_action_at is None  # no clock runs

    clock.advance(hours=2)
    await stack.driver.press(MARKETER, "Answer", channel=FEEDBACK)
    await stack.settle()
    view = stack.sim.latest_view(MARKETER)
    assert view is not None and "Which region" in str(view.blocks)
    done = await stack.driver.submit_view(
        MARKETER, {"answer": "EMEA first, then APAC"}, view_id=view.id
    )
    assert done.status == 200 and done.json is None
    await stack.settle()

    replies = thread(stack, ENTERPRISE, message.ts)
    assert f"<@{OWNER}>" in replies[-1] and "EMEA first, then APAC" in replies[-1]
    current = stack.sim.message(ENTERPRISE, message.ts)
    assert current is not None and "Log call" in labels(current)  # open again, in place
    lead = await stack.services.lead(1)
    assert not lead.waiting_for_info and lead.stage.value == "sal" and lead.owner == OWNER

    (reply,) = thread(stack, FEEDBACK, request.ts)  # marketing sees it is answered
    assert reply.startswith(f"✅ Answered by <@{MARKETER}>")
    # ...and the question's post says so itself, its Answer button gone: no old question
    # looks open in marketing's channel.
    settled = stack.sim.message(FEEDBACK, request.ts)
    assert settled is not None and labels(settled) == []
    assert settled.all_text.startswith("✅ *Answered* · Priya Raman at Northwind Logistics")
    assert "*Question*: Which region is the rollout for?" in settled.all_text
    assert f"*Answer* (<@{MARKETER}>, <!date^" in settled.all_text
    assert "EMEA first, then APAC" in settled.all_text
    assert (await event_types(stack)).count("info_answered") == 1


async def test_after_the_answer_each_step_keeps_the_working_time_it_had_left(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Asked Monday 12:12, 60% of the first touch's 2 working hours used (due 13:00, the
    owner's reminder at 75%, 12:30); answered Tuesday 10:00: the first touch is due 10:48 and
    the reminder comes at 10:18, 18 working minutes after the answer as it was 18 before the
    question (regression: the window still began at Monday 11:00, so its 75% had passed and
    the reminder went out with the answer)."""
    await claimed(stack)
    clock.advance(minutes=72)  # Monday 12:12
    await send_question(stack, "Which region is the rollout for?")
    clock.advance(hours=22, minutes=48)  # Tuesday 10:00 in Sydney
    answered = clock()
    status, body = await activity(stack, "hs-1", {"type": "info", "answer": "EMEA"})
    assert status == 201, body
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.first_touch_due_at == answered + timedelta(minutes=48)

    await sweep(stack, clock)
    assert stack.sim.messages(stack.sim.dm_channel(OWNER)) == []  # nothing is due yet
    assert (await stack.services.lead(1)).next_action_at == answered + timedelta(minutes=18)

    clock.advance(minutes=18)  # 10:18: 75% of the window, in working time
    assert await sweep(stack, clock) == 1
    (reminder,) = stack.sim.messages(stack.sim.dm_channel(OWNER))
    assert "first touch due in 30m of business time" in reminder.all_text


async def test_a_step_past_a_missed_deadline_waits_out_the_question_too(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The first touch was due Monday 13:00 (the lead reassigned at 200%, 15:00); asked 13:30,
    90 working minutes before that, answered Tuesday 10:00: the lead stays with its owner with
    the answer and is reassigned at 11:30 (regression: the step fell due while marketing had
    the question, and the lead was taken away the moment the answer came)."""
    await claimed(stack)
    clock.advance(hours=2, minutes=30)  # Monday 13:30: the first touch is overdue
    assert await sweep(stack, clock) == 1  # the managers hear of it
    await send_question(stack, "Which region is the rollout for?")
    clock.advance(hours=20, minutes=30)  # Tuesday 10:00
    answered = clock()
    status, body = await activity(stack, "hs-1", {"type": "info", "answer": "EMEA"})
    assert status == 201, body
    await stack.settle()

    await sweep(stack, clock)
    lead = await stack.services.lead(1)
    assert lead.owner == OWNER and lead.first_touch_due_at is not None
    assert lead.first_touch_due_at < answered  # missed: it stays so
    assert lead.next_action_at == answered + timedelta(minutes=90)
    assert (await event_types(stack))[-1] == "info_answered"  # the sweep did nothing

    clock.advance(minutes=89)  # 11:29
    await sweep(stack, clock)
    assert (await stack.services.lead(1)).owner == OWNER
    clock.advance(minutes=1)  # 11:30: 200% of the window, the question's time left out
    assert await sweep(stack, clock) == 1
    assert (await stack.services.lead(1)).owner == "U0REP2"


async def test_an_empty_question_is_refused_in_the_modal(stack: LocalStack) -> None:
    await claimed(stack)
    await stack.driver.press(OWNER, "Need more info", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view(OWNER)
    assert view is not None
    done = await stack.driver.submit_view(OWNER, {"question": "   "}, view_id=view.id)
    assert done.json == {
        "response_action": "errors",
        "errors": {"question": "Write the question marketing should answer."},
    }
    assert stack.sim.messages(FEEDBACK) == []


async def test_marketing_answers_through_the_activity_route(stack: LocalStack) -> None:
    message = await ask(stack)
    answer: dict[str, Any] = {"type": "info", "answer": "EMEA", "by": "Jo (marketing ops)"}
    status, body = await activity(stack, "hs-1", answer)
    assert status == 201, body
    assert body["recorded"] == {
        "type": "info",
        "question": "Which region is the rollout for?",
        "answer": "EMEA",
        "owner": OWNER,
    }
    await stack.settle()
    replies = thread(stack, ENTERPRISE, message.ts)
    assert (
        f"<@{OWNER}>" in replies[-1]
        and "EMEA" in replies[-1]
        and "Jo (marketing ops)" in replies[-1]
    )
    current = stack.sim.message(ENTERPRISE, message.ts)
    assert current is not None and "Log call" in labels(current)
    (request,) = stack.sim.messages(FEEDBACK)
    assert thread(stack, FEEDBACK, request.ts) == [
        "✅ Answered by Jo (marketing ops); Priya Raman at Northwind Logistics is back with its "
        "owner."
    ]

    status, body = await activity(stack, "hs-1", answer)  # sent twice
    assert (
        status == 200
        and body["message"] == "the question was already answered by Jo (marketing ops)"
    )
    # The post's Answer button is gone: answered in the CRM, it says so in Slack too.
    settled = stack.sim.message(FEEDBACK, request.ts)
    assert settled is not None and labels(settled) == []
    assert "Jo (marketing ops)" in settled.all_text and "EMEA" in settled.all_text


async def test_a_question_on_a_lead_closed_meanwhile_is_refused_on_its_input(
    stack: LocalStack,
) -> None:
    await claimed(stack)
    await stack.driver.press(OWNER, "Need more info", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view(OWNER)
    assert view is not None
    await stack.driver.press(OWNER, "Qualified", channel=ENTERPRISE)  # closed meanwhile
    await stack.settle()
    done = await stack.driver.submit_view(OWNER, {"question": "Budget?"}, view_id=view.id)
    assert done.json is not None and set(done.json["errors"]) == {"question"}
    assert "already closed as Qualified" in done.json["errors"]["question"]
    assert stack.sim.messages(FEEDBACK) == []


async def test_an_answer_submitted_after_another_is_refused_on_its_input(
    stack: LocalStack,
) -> None:
    await ask(stack)
    await stack.driver.press(MARKETER, "Answer", channel=FEEDBACK)
    await stack.driver.press(MANAGER, "Answer", channel=FEEDBACK)
    await stack.settle()
    first, second = stack.sim.latest_view(MARKETER), stack.sim.latest_view(MANAGER)
    assert first is not None and second is not None
    done = await stack.driver.submit_view(MARKETER, {"answer": "EMEA"}, view_id=first.id)
    assert done.json is None
    late = await stack.driver.submit_view(MANAGER, {"answer": "APAC"}, view_id=second.id)
    assert late.json == {
        "response_action": "errors",
        # Plain text: the marketer by name where Slack knows them, else their id as typed.
        "errors": {"answer": f"Already answered by @{MARKETER}; nothing was changed."},
    }
    await stack.settle()
    lead = await stack.services.lead(1)
    assert not lead.waiting_for_info
    events = [e for e in await stack.services.store.events(1) if e.type == "info_answered"]
    assert [(e.actor, e.data["answer"]) for e in events] == [(MARKETER, "EMEA")]


async def test_concurrent_re_qualifying_requests_post_the_lead_once(stack: LocalStack) -> None:
    status, _ = await stack.post_lead(lead_payload(score=35))
    assert status == 201
    again = lead_payload(score=90, engagement=[DEMO])
    answers = await asyncio.gather(*(stack.post_lead(again) for _ in range(6)))
    assert sorted(status for status, _ in answers) == [200] * 5 + [201]
    await stack.settle()
    assert len(stack.sim.messages(ENTERPRISE)) == 1
    assert (await event_types(stack)).count("requalified") == 1
