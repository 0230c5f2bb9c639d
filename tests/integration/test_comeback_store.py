"""Nurture and recycle come back, and "request more info", over the real store (SQLite and
PostgreSQL): each conditional update has exactly one winner."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.domain.info import token
from bot.domain.lead import Stage
from bot.domain.refusal import Reason, Refusal
from bot.services.leads import Done, Recorded, Services, Stored
from bot.services.sweep import Sweeper
from storage.outbox import OutboxStore
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes

DEMO = {"type": "demo_request", "title": "Book a demo"}
LATER = MONDAY + timedelta(days=20)


async def posts(services: Services) -> list[tuple[int, int]]:
    """(lead, cycle) of each lead post written to the outbox."""
    rows = await OutboxStore(services.store.db).rows()
    return [
        (row["lead_id"], int(row["payload"].get("cycle") or 1))
        for row in rows
        if row["kind"] == "post_lead"
    ]


async def nurtured(services: Services) -> int:
    """A lead nurtured at intake: its own score, 35, is under the threshold of 60."""
    result = await services.intake(lead_payload(score=35), MONDAY)
    assert isinstance(result, Stored) and result.lead.stage is Stage.NURTURE
    assert result.lead.next_action_at is not None  # its re-engagement date
    return result.lead.id


async def test_concurrent_duplicates_with_new_engagement_start_one_new_cycle(
    services: Services,
) -> None:
    lead_id = await nurtured(services)
    again = lead_payload(score=35, engagement=[*lead_payload()["engagement"], DEMO], extra=1)
    again["score"] = 90
    results = await asyncio.gather(*(services.intake(again, LATER) for _ in range(8)))
    stored = [result for result in results if isinstance(result, Stored)]
    assert len(stored) == 8
    assert sum(result.requalified for result in stored) == 1
    assert not any(result.created for result in stored)
    lead = await services.lead(lead_id)
    assert (lead.stage, lead.cycle, lead.score, lead.segment) == (Stage.MQL, 2, 90, "enterprise")
    assert lead.suggested_owner in ("U0REP1", "U0REP2") and lead.next_action_at is not None
    assert [item["type"] for item in lead.engagement] == ["webinar", "page", "demo_request"]
    assert await posts(services) == [(lead_id, 2)]  # posted once, as its second cycle
    events = [event for event in await services.store.events(lead_id)]
    (requalified,) = [event for event in events if event.type == "requalified"]
    assert requalified.data["outcome"] == "nurture" and requalified.data["cycle"] == 1
    assert requalified.data["new_engagement"] == 1

    # The same request once more: nothing new, nothing posted.
    result = await services.intake(again, LATER + timedelta(minutes=1))
    assert isinstance(result, Stored) and not result.requalified and result.message is None
    assert await posts(services) == [(lead_id, 2)]


async def test_new_engagement_that_does_not_qualify_is_stored_only(services: Services) -> None:
    lead_id = await nurtured(services)
    webinar = {"type": "webinar", "title": "Another webinar"}
    result = await services.intake(lead_payload(score=35, engagement=[webinar]), LATER)
    assert isinstance(result, Stored) and not result.requalified
    assert result.message == "still not an MQL: score 35 is below the MQL threshold 60"
    lead = await services.lead(lead_id)
    assert lead.stage is Stage.NURTURE and len(lead.engagement) == 3
    assert await posts(services) == []


async def test_an_open_lead_stores_new_engagement_only(services: Services) -> None:
    result = await services.intake(lead_payload(), MONDAY)
    assert isinstance(result, Stored)
    again = await services.intake(lead_payload(engagement=[DEMO]), LATER)
    assert isinstance(again, Stored) and not again.requalified and again.message
    lead = await services.lead(result.lead.id)
    assert (lead.stage, lead.cycle, len(lead.engagement)) == (Stage.MQL, 1, 1 + 2)
    assert await posts(services) == [(lead.id, 1)]


async def asked(services: Services) -> int:
    result = await services.intake(lead_payload(), MONDAY)
    assert isinstance(result, Stored)
    lead_id = result.lead.id
    await services.claim(lead_id, "U0REP1", MONDAY + timedelta(minutes=5))
    done = await services.request_info(
        lead_id, "U0REP1", "more_info", "Which region?", MONDAY + timedelta(hours=1)
    )
    assert not done.repeated
    return lead_id


async def test_two_questions_at_once_one_is_asked(services: Services) -> None:
    result = await services.intake(lead_payload(), MONDAY)
    assert isinstance(result, Stored)
    await services.claim(result.lead.id, "U0REP1", MONDAY + timedelta(minutes=5))
    when = MONDAY + timedelta(hours=1)
    outcomes = await asyncio.gather(
        *(
            services.request_info(result.lead.id, "U0REP1", "more_info", f"Question {n}?", when)
            for n in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(outcome, Done) for outcome in outcomes) == 1
    lead = await services.lead(result.lead.id)
    assert lead.waiting_for_info and lead.info_asked_by == "U0REP1"
    kinds = [event.type for event in await services.store.events(lead.id)]
    assert kinds.count("info_requested") == 1


async def test_concurrent_answers_one_wins_the_others_hear_who(services: Services) -> None:
    lead_id = await asked(services)
    lead = await services.lead(lead_id)
    assert lead.info_asked_at is not None
    question = token(lead.info_asked_at)
    when = MONDAY + timedelta(hours=2)
    answers = [
        services.answer_info(lead_id, question, f"U0MKT{n}", "EMEA", when, "C0MKTFEED")
        for n in range(3)
    ]
    crm = services.activity(lead.external_id, {"type": "info", "answer": "EMEA"}, when)
    outcomes = await asyncio.gather(*answers, crm, return_exceptions=True)
    won = [o for o in outcomes if isinstance(o, Done | Recorded)]
    assert len(won) == 1, outcomes
    refused = [o for o in outcomes if isinstance(o, Refusal)]
    assert refused and all("Already answered by" in o.message for o in refused), outcomes
    lead = await services.lead(lead_id)
    assert not lead.waiting_for_info and lead.stage is Stage.SAL and lead.owner == "U0REP1"
    kinds = [event.type for event in await services.store.events(lead_id)]
    assert kinds.count("info_answered") == 1


async def test_an_answer_nobody_asked_for_is_refused(services: Services) -> None:
    result = await services.intake(lead_payload(), MONDAY)
    assert isinstance(result, Stored)
    with pytest.raises(Refusal) as refused:
        await services.activity("hs-1", {"type": "info", "answer": "EMEA"}, MONDAY)
    assert refused.value.reason is Reason.NOT_READY


async def test_each_answer_keeps_its_pause_with_the_cycle_until_a_new_one(
    services: Services,
) -> None:
    """Two questions answered (one in Slack, one by the CRM): the lead keeps both pauses,
    asked and answered, to the microsecond; recycled, its new cycle starts with none."""
    lead_id = await asked(services)
    asked_at = MONDAY + timedelta(hours=1)
    answered_at = MONDAY + timedelta(hours=2, microseconds=123456)
    await services.answer_info(lead_id, token(asked_at), "U0MKT1", "EMEA", answered_at, "C0MKTFEED")
    again = MONDAY + timedelta(hours=3)
    await services.request_info(lead_id, "U0REP1", "more_info", "And the budget?", again)
    lead = await services.lead(lead_id)
    back = MONDAY + timedelta(hours=4)
    await services.activity(lead.external_id, {"type": "info", "answer": "50k"}, back)
    lead = await services.lead(lead_id)
    assert lead.info_pauses == ((asked_at, answered_at), (again, back))

    for day, kind in enumerate(["call", "email", "linkedin"] * 2, start=1):
        await services.log_attempt(lead_id, "U0REP1", kind, MONDAY + timedelta(days=day))
    await services.dispose(lead_id, "U0REP1", "no_response", MONDAY + timedelta(days=7))
    recycled = (await services.lead(lead_id)).next_action_at
    assert recycled is not None
    sweeper = Sweeper(SweepStore(services.store.db), services.policies, Wakes())
    await sweeper.run(recycled)
    fresh = await services.lead(lead_id)
    assert (fresh.cycle, fresh.info_pauses) == (2, ())
