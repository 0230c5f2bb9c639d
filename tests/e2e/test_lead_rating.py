"""The owner's lead-quality rating through the real server: in the disposition modal (two
optional menus), or with one pick on the closed lead's message; stored as an event, the owner's
alone, once per change; and reported by source in `/sla-report`."""

from __future__ import annotations

import copy
import logging

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.data import Message
from tests.conftest import lead_payload

ENTERPRISE, MANAGER, OWNER, OTHER = "C0ENT", "U0MGR1", "U0REP1", "U0REP2"
SECOND_MANAGER = "U0MGR2"


async def claimed(stack: LocalStack, external_id: str, source: str) -> Message:
    status, answer = await stack.post_lead(lead_payload(external_id, source=source))
    assert status == 201, answer
    await stack.settle()
    message = stack.sim.messages(ENTERPRISE)[-1]
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    await stack.driver.press(OWNER, "Log call", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    return message


async def rated_events(stack: LocalStack, lead_id: int) -> list[dict[str, object]]:
    events = await stack.services.store.events(lead_id)
    return [event.data for event in events if event.type == "rated"]


async def test_the_owner_rates_in_the_modal_and_on_the_message(
    stack: LocalStack, clock: TravelClock
) -> None:
    first = await claimed(stack, "hs-rated-1", "webinar")
    second = await claimed(stack, "hs-rated-2", "event")

    # A disposition with a reason: the rating is in the same modal, one pick per menu.
    await stack.driver.press(OWNER, "Not a fit", channel=ENTERPRISE, message_ts=first.ts)
    await stack.settle()
    view = stack.sim.latest_view(OWNER)
    assert view is not None and view.callback_id == "lead_dispose_modal"
    values = {"reason": "Not ICP", "note": "A reseller.", "fit": "2 weak fit", "timing": "4"}
    response = await stack.driver.submit_view(OWNER, values, view_id=view.id)
    assert response.status == 200
    await stack.settle()
    lead = await stack.services.lead(1)
    assert (lead.stage.value, lead.fit_rating, lead.timing_rating) == ("reject", 2, 4)
    assert await rated_events(stack, 1) == [{"fit": 2, "timing": 4}]
    shown = stack.sim.message(ENTERPRISE, first.ts)
    assert shown is not None and "2 weak fit" in str(shown.blocks)  # the menu shows the rating

    # A disposition without a modal: the closed message offers the menus.
    await stack.driver.press(OWNER, "Qualified", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    await stack.driver.choose(
        OTHER, "5 ideal fit", channel=ENTERPRISE, action_id="lead_rate_fit", message_ts=second.ts
    )
    await stack.settle()
    (refusal,) = stack.sim.ephemerals(user=OTHER)
    assert "Only <@U0REP1>, who owns this lead, can rate it" in refusal.text
    assert (await stack.services.lead(2)).fit_rating is None
    for _ in range(2):  # a double pick records once
        await stack.driver.choose(
            OWNER,
            "5 ideal fit",
            channel=ENTERPRISE,
            action_id="lead_rate_fit",
            message_ts=second.ts,
        )
    await stack.driver.choose(
        OWNER, "3 this year", channel=ENTERPRISE, action_id="lead_rate_timing", message_ts=second.ts
    )
    await stack.settle()
    lead = await stack.services.lead(2)
    assert (lead.stage.value, lead.fit_rating, lead.timing_rating) == ("sql", 5, 3)
    assert await rated_events(stack, 2) == [{"fit": 5}, {"timing": 3}]

    # The report: the ratings' average by source (fit/timing), and overall.
    await stack.driver.command(MANAGER, "/sla-report", "", channel_id="D0MGR1")
    await stack.settle()
    text = stack.sim.ephemerals(user=MANAGER)[-1].all_text
    assert "• webinar: 1 · 0% · 0 · 0 · AUD 0 · AUD 0 · – · 2.0/4.0" in text
    assert "• event: 1 · 100% · 1 · 0 · AUD 0 · AUD 0 · – · 5.0/3.0" in text
    assert "fit 3.5/5 · timing 3.5/5 (2 rated)" in text  # (2 + 5) ÷ 2 and (4 + 3) ÷ 2


def inputs(stack: LocalStack, user: str) -> list[str]:
    view = stack.sim.latest_view(user)
    assert view is not None and view.callback_id == "lead_dispose_modal"
    return [block["block_id"] for block in view.blocks if block["type"] == "input"]


async def test_a_manager_who_rejects_a_reps_lead_is_not_asked_to_rate_it(
    stack: LocalStack,
) -> None:
    message = await claimed(stack, "hs-for-the-rep", "webinar")
    await stack.driver.press(MANAGER, "Not a fit", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    assert inputs(stack, MANAGER) == ["reason", "note"]  # the rating is the owner's

    values = {"reason": "No budget", "note": "Frozen till July."}
    done = await stack.driver.submit_view(MANAGER, values)
    await stack.settle()
    assert done.status == 200 and done.json is None  # the modal closes: no errors on it
    assert stack.sim.open_views(MANAGER) == []
    lead = await stack.services.lead(1)
    assert (lead.stage.value, lead.disposition_code, lead.fit_rating) == (
        "reject",
        "not_a_fit",
        None,
    )
    events = await stack.services.store.events(1)
    assert [event.actor for event in events if event.type == "dispositioned"] == [MANAGER]
    assert len(stack.sim.messages("C0MKTFEED")) == 1


async def test_a_rating_that_cannot_be_kept_does_not_hold_a_saved_disposition_open(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    # A manager claims the lead (they own it: the modal asks them to rate), and while the
    # modal is open another manager hands the lead to a rep.
    status, _ = await stack.post_lead(lead_payload("hs-handed"))
    assert status == 201
    await stack.settle()
    message = stack.sim.messages(ENTERPRISE)[-1]
    await stack.driver.press(MANAGER, "Claim", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    await stack.driver.press(MANAGER, "Not a fit", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    assert inputs(stack, MANAGER) == ["reason", "note", "fit", "timing"]
    await stack.driver.choose(
        SECOND_MANAGER, "tom", channel=ENTERPRISE, action_id="lead_reassign", message_ts=message.ts
    )
    await stack.settle()
    assert (await stack.services.lead(1)).owner == OTHER

    values = {"reason": "No budget", "note": "Frozen till July.", "fit": "2 weak fit"}
    with caplog.at_level(logging.INFO, logger="handoff.handlers"):
        done = await stack.driver.submit_view(MANAGER, values)
        await stack.settle()
    # The disposition is a manager's to make; the rating was the owner's, and is skipped.
    assert done.status == 200 and done.json is None
    assert stack.sim.open_views(MANAGER) == []
    lead = await stack.services.lead(1)
    assert (lead.stage.value, lead.fit_rating) == ("reject", None)
    assert await rated_events(stack, 1) == []
    assert len(stack.sim.messages("C0MKTFEED")) == 1
    assert "lead 1: ratings by U0MGR1 skipped" in caplog.text


async def test_a_pick_on_an_earlier_cycles_post_leaves_the_lead_as_it_is(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The first cycle's post loses its rating menus once the lead came back from recycling
    (tests/e2e/test_earlier_cycle_post.py), but a Slack client may still show them, and a
    post rendered before the options carried their cycle carries none. A pick there rated the
    lead's current cycle (its owner's, if the same rep closed it again), or was refused as
    "Only the lead's owner can rate it" to the rep the post names as its owner; it is refused
    in plain words, the current cycle's rating untouched."""
    first = await claimed(stack, "hs-again", "webinar")
    for _ in range(5):  # six attempts in all: Unable to contact may close it
        clock.advance(minutes=30)
        await stack.driver.press(OWNER, "Log email", channel=ENTERPRISE, message_ts=first.ts)
        await stack.settle()
    await stack.driver.press(OWNER, "Unable to contact", channel=ENTERPRISE, message_ts=first.ts)
    await stack.settle()
    shown = copy.deepcopy(stack.sim.message(ENTERPRISE, first.ts))  # as a client still shows it
    clock.advance(days=31)  # recycle_after: 30d, then the sweep posts it again, cycle 2
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    second = stack.sim.messages(ENTERPRISE)[-1]
    assert second.ts != first.ts
    refused = (
        "This post is of an earlier cycle of this lead: it came back as cycle 2, and the "
        "rating of an earlier cycle stays as it was; nothing was changed."
    )

    # Cycle 2 open, suggested to someone else: the post's owner is told why, not "owner only".
    await stack.driver.choose(OWNER, "4 good fit", channel=ENTERPRISE, seen=shown)
    await stack.settle()
    assert stack.sim.ephemerals(user=OWNER)[-1].text == refused

    # The same rep claims cycle 2 and qualifies it, rating it 5 on its own post.
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    await stack.driver.press(OWNER, "Qualified", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    await stack.driver.choose(OWNER, "5 ideal fit", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    before = await rated_events(stack, 1)
    # A pick on the first cycle's post does not rate cycle 2, nor one on a post rendered
    # before the options carried their cycle (told apart by the post's ts).
    await stack.driver.choose(OWNER, "1 poor fit", channel=ENTERPRISE, seen=shown)
    await stack.settle()
    assert stack.sim.ephemerals(user=OWNER)[-1].text == refused
    await stack.driver.choose(
        OWNER, "1 poor fit", channel=ENTERPRISE, seen=shown, override_value="1:1"
    )
    await stack.settle()
    assert stack.sim.ephemerals(user=OWNER)[-1].text == refused
    lead = await stack.services.lead(1)
    assert (lead.cycle, lead.fit_rating) == (2, 5)
    assert await rated_events(stack, 1) == before


async def test_a_rating_that_fails_after_the_disposition_was_saved_closes_the_modal(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The disposition is saved before its optional rating: when storing the rating fails on
    Handoff's side (the database went away in between), the disposition stands, so the modal
    closes; it may not stay open saying "nothing was changed" over a closed lead."""
    await claimed(stack, "hs-rated-fails", "webinar")

    async def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    await stack.driver.press(OWNER, "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view(OWNER)
    assert view is not None
    monkeypatch.setattr(stack.services, "rate", fails)
    values = {"reason": "Not ICP", "note": "A reseller.", "fit": "2 weak fit"}
    response = await stack.driver.submit_view(OWNER, values, view_id=view.id)
    assert response.status == 200
    assert response.json in (None, "", {})  # closed: no error on the modal
    assert view.closed
    assert (await stack.services.lead(1)).stage.value == "reject"
    assert any(record.exc_info for record in caplog.records)  # the operator still sees it
