"""The SLA clock polices itself: ladders fire through time travel, once each, via the sweep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.cli.stack import LocalStack, TravelClock
from tests.conftest import lead_payload

ENTERPRISE, ESCALATIONS, FEEDBACK = "C0ENT", "C0ESCALATE", "C0MKTFEED"
# The example SLA: hot leads (score ≥ 80) get 2 working hours to first touch, so 1 hour to
# claim. Unclaimed: remind at 50% (11:30), managers at 100% (12:00), reassign at 150% (12:30).


async def new_lead(stack: LocalStack, external_id: str = "hs-1") -> None:
    status, _ = await stack.post_lead(lead_payload(external_id))
    assert status == 201
    await stack.settle()


async def sweep(stack: LocalStack, clock: TravelClock) -> int:
    result = await stack.handoff.sweeper.run(clock())
    await stack.settle()
    return result.changed


def post_text(stack: LocalStack) -> str:
    (post,) = stack.sim.messages(ENTERPRISE)
    return post.all_text


def thread(stack: LocalStack) -> list[str]:
    (post,) = stack.sim.messages(ENTERPRISE)
    return [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]


async def escalations(stack: LocalStack) -> list[tuple[str, str, str]]:
    rows = await stack.services.store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT ladder, step, status FROM escalations ORDER BY id"
        ).all()
    )
    return [(str(a), str(b), str(c)) for a, b, c in rows]


async def test_an_unclaimed_lead_climbs_its_ladder_once_per_step(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack)
    assert await sweep(stack, clock) == 0  # nothing due at 11:00
    assert "🟢 First touch due by" in post_text(stack)

    clock.advance(minutes=31)  # 11:31: half the claim window gone
    assert await sweep(stack, clock) == 1
    assert await sweep(stack, clock) == 0  # the same step never fires twice
    assert "🟠 First touch due by" in post_text(stack)  # re-rendered when the step fired
    (reminder,) = thread(stack)
    assert "<@U0REP1>" in reminder and "still waiting for a claim" in reminder
    assert "<!here>" not in reminder and "<!channel>" not in reminder

    clock.advance(minutes=30)  # 12:01: the claim deadline passed
    assert await sweep(stack, clock) == 1
    assert "🔴 Claim was due" in post_text(stack)  # red because the claim is overdue
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "<@U0MGR1> <@U0MGR2>" in alert.all_text
    assert "claim overdue by 1m of business time" in alert.all_text
    assert "nobody has claimed it" in alert.all_text

    clock.advance(minutes=30)  # 12:31: 150%: reassigned to the next rep of the pool
    assert await sweep(stack, clock) == 1
    lead = await stack.services.lead(1)
    assert lead.suggested_owner == "U0REP2" and lead.owner is None
    note = thread(stack)[-1]
    assert "Reassigned to <@U0REP2> from <@U0REP1>" in note
    dm = stack.sim.messages(stack.sim.dm_channel("U0REP2"))
    assert dm and "The SLA (claim overdue) handed you" in dm[-1].all_text
    # remind_owner (no_touch, 75% = 12:30) came due with the reassignment: one step per
    # sweep, the strongest, so it is recorded as skipped (the new rep got a DM anyway).
    assert sorted(await escalations(stack)) == [
        ("no_touch", "0", "skipped"),
        ("unclaimed", "0", "fired"),
        ("unclaimed", "1", "fired"),
        ("unclaimed", "2", "fired"),
    ]


async def test_after_six_hours_down_one_step_fires_per_lead(
    stack: LocalStack, clock: TravelClock
) -> None:
    for index in range(3):
        await new_lead(stack, f"hs-{index}")
    clock.advance(hours=6)  # the server was down from 11:00 to 17:00
    assert await sweep(stack, clock) == 3
    assert await sweep(stack, clock) == 0
    rows = await escalations(stack)
    fired = [row for row in rows if row[2] == "fired"]
    assert len(fired) == 3  # one per lead: the most advanced step
    assert all(row[0] == "no_touch" and row[1] == "2" for row in fired)  # 200%: reassign
    assert len([row for row in rows if row[2] == "skipped"]) == 3 * 5
    assert stack.sim.messages(ESCALATIONS) == []  # no flood of manager alerts


async def test_two_concurrent_sweeps_fire_each_step_once(
    stack: LocalStack, clock: TravelClock
) -> None:
    for index in range(5):
        await new_lead(stack, f"hs-{index}")
    clock.advance(minutes=31)
    results = await asyncio.gather(*(stack.handoff.sweeper.run(clock()) for _ in range(2)))
    await stack.settle()
    assert sum(result.changed for result in results) == 5
    assert len(await escalations(stack)) == 5
    replies = [
        reply
        for post in stack.sim.messages(ENTERPRISE)
        for reply in stack.sim.thread(ENTERPRISE, post.ts)
    ]
    assert len(replies) == 5


async def test_a_claimed_lead_without_feedback_reminds_its_owner(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(hours=72)  # the first feedback's deadline: 72 hours after the claim
    assert await sweep(stack, clock) == 1
    dm = stack.sim.messages(stack.sim.dm_channel("U0REP1"))
    assert dm and "first feedback (a disposition) due now" in dm[-1].all_text
    lead = await stack.services.lead(1)
    assert lead.next_action_at is not None and lead.next_action_at > clock()


async def test_a_recycled_lead_returns_to_its_queue_as_a_new_cycle(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await stack.settle()
    for attempt in range(6):  # the follow-up standard: 6 attempts before "Unable to contact"
        clock.advance(hours=29)  # one counts if 28h (2 weeks ÷ 12) after the one before
        label = ("Log call", "Log email", "Log LinkedIn")[attempt % 3]
        await stack.driver.press("U0REP1", label, channel=ENTERPRISE)
        await stack.settle()
    await stack.driver.press("U0REP1", "Unable to contact", channel=ENTERPRISE)
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.stage.value == "recycle" and lead.next_action_at is not None
    back = lead.next_action_at

    clock.now = back - timedelta(minutes=1)
    assert await sweep(stack, clock) == 0  # not yet
    clock.now = back
    assert await sweep(stack, clock) == 1
    lead = await stack.services.lead(1)
    assert (lead.stage.value, lead.cycle, lead.owner, lead.attempts) == ("mql", 2, None, 0)
    assert lead.first_touch_due_at is not None and lead.first_touch_due_at > back
    posts = stack.sim.messages(ENTERPRISE)
    assert len(posts) == 2  # the first cycle's message stays; the new cycle has its own
    assert posts[-1].buttons() and "Claim" in [b[1]["text"]["text"] for b in posts[-1].buttons()]
    kinds = [event.type for event in await stack.services.store.events(1)]
    assert kinds.count("attempt") == 6 and "recycled_back" in kinds  # history intact
    assert await sweep(stack, clock) == 0


async def test_an_untouched_lead_waits_out_a_long_weekend_with_a_dst_change(
    stack: LocalStack, clock: TravelClock
) -> None:
    # Friday 2 October 2026, 16:00 in Sydney (AEST). Sunday the clocks go forward (AEDT) and
    # Monday is Labour Day in NSW: the 2 working hours to first touch are Friday 16:00–17:00
    # and Tuesday 09:00–10:00. No touch: owner reminder at 75% (Tue 09:30), managers at 100%
    # (10:00), reassignment at 200% (4 working hours after arrival: Tuesday 12:00).
    clock.now = datetime(2026, 10, 2, 6, 0, tzinfo=UTC)
    await new_lead(stack)
    clock.advance(minutes=10)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.first_touch_due_at == datetime(2026, 10, 5, 23, 0, tzinfo=UTC)  # Tue 10:00 AEDT

    for day in (3, 4, 5):  # Saturday, Sunday (the change) and the holiday, at noon in Sydney
        clock.now = datetime(2026, 10, day, 2, 0, tzinfo=UTC)
        assert await sweep(stack, clock) == 0
    clock.now = datetime(2026, 10, 5, 22, 29, tzinfo=UTC)  # Tue 09:29 AEDT
    # The first feedback was due 72 (calendar) hours after the claim, Monday 17:10 AEDT: the
    # weekend and the holiday count, so its reminder is waiting.
    assert await sweep(stack, clock) == 1
    dm = stack.sim.messages(stack.sim.dm_channel("U0REP1"))
    assert "first feedback (a disposition) overdue by 16h 19m" in dm[-1].all_text

    clock.advance(minutes=2)  # 09:31: the owner's reminder
    assert await sweep(stack, clock) == 1
    dm = stack.sim.messages(stack.sim.dm_channel("U0REP1"))
    assert dm and "first touch" in dm[-1].all_text and "due in 29m" in dm[-1].all_text
    clock.advance(minutes=30)  # 10:01: the managers
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "overdue by 1m" in alert.all_text
    clock.advance(minutes=118)  # 11:59: not yet
    assert await sweep(stack, clock) == 0
    clock.advance(minutes=2)  # 12:01: handed to the next rep of the pool
    assert await sweep(stack, clock) == 1
    lead = await stack.services.lead(1)
    assert lead.owner == "U0REP2"
    assert await escalations(stack) == [
        ("no_feedback", "0", "fired"),
        ("no_touch", "0", "fired"),
        ("no_touch", "1", "fired"),
        ("no_touch", "2", "fired"),
    ]


async def test_the_posts_text_says_overdue_when_its_blocks_do(
    stack: LocalStack, clock: TravelClock
) -> None:
    """chat.update's `text` replaces the post's fallback (what notifications, screen readers
    and search show): once the claim, then the first touch, is overdue, it says so as the
    blocks do, not "first touch due by 13:00" as if it were still on time."""
    await new_lead(stack)
    (post,) = stack.sim.messages(ENTERPRISE)
    assert post.text.endswith(", first touch due by Mon 13:00 AEDT · 2 business hours")
    clock.advance(minutes=61)  # 12:01: the claim deadline passed; the managers' step fires
    assert await sweep(stack, clock) == 1
    shown = stack.sim.message(ENTERPRISE, post.ts)
    assert shown is not None and "🔴 Claim was due" in shown.all_text
    assert shown.text.endswith(
        ", claim overdue since Mon 12:00 AEDT, first touch due by Mon 13:00 AEDT · 2 business hours"
    )
    clock.now = datetime(2026, 11, 23, 2, 0, 30, tzinfo=UTC)  # 13:00:30: the first touch too
    assert await sweep(stack, clock) == 1
    shown = stack.sim.message(ENTERPRISE, post.ts)
    assert shown is not None and "🔴 First touch was due" in shown.all_text
    assert shown.text.endswith(", first touch overdue since Mon 13:00 AEDT · 2 business hours")
    assert "due by" not in shown.text


def clock_words(text: str) -> str:
    """The line of a post or a card that carries the lead's clocks."""
    (line,) = [line for line in text.splitlines() if line.startswith(("🟢", "🟠", "🔴"))]
    return line


async def test_a_post_read_after_its_deadline_says_nothing_that_stopped_counting(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The post is re-rendered when something happens, not every minute: it says the deadline
    (a date token each reader sees in their own zone), never "2h left" or "overdue by 0m",
    which would stay frozen; `/lead`, rendered as it is read, says how long."""
    await new_lead(stack)
    (post,) = stack.sim.messages(ENTERPRISE)
    assert clock_words(post.all_text).startswith("🟢 First touch due by <!date^")
    assert "left)" not in post.all_text
    card = await stack.driver.command("U0MGR1", "/lead", "hs-1")
    assert card.json is not None and "(2h of business time left)" in str(card.json["blocks"])

    clock.now = datetime(2026, 11, 23, 2, 0, 30, tzinfo=UTC)  # 13:00:30: just overdue
    await sweep(stack, clock)  # a step fires: the post is rendered now, 30 seconds late
    clock.now = datetime(2026, 11, 23, 3, 50, tzinfo=UTC)  # 14:50, read nearly 2 hours later
    await sweep(stack, clock)
    shown = stack.sim.message(ENTERPRISE, post.ts)
    assert shown is not None
    words = clock_words(shown.all_text)
    assert words.startswith("🔴 First touch was due <!date^")
    assert words.endswith("· 2 business hours: overdue")  # not "overdue by 0m"
    card = await stack.driver.command("U0MGR1", "/lead", "hs-1")
    assert card.json is not None
    assert "overdue by 1h 50m of business time" in str(card.json["blocks"])

    # A claimed lead's feedback deadline, passed: the post says so, and no span.
    await new_lead(stack, "hs-2")
    second = stack.sim.messages(ENTERPRISE)[-1]
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    due = (await stack.services.lead(2)).disposition_due_at
    assert due is not None
    clock.now = due + timedelta(seconds=30)
    await sweep(stack, clock)
    clock.advance(hours=30)
    await sweep(stack, clock)
    shown = stack.sim.message(ENTERPRISE, second.ts)
    assert shown is not None
    assert "🔴 feedback was due <!date^" in shown.all_text
    assert "· 72 hours: overdue" in shown.all_text and "overdue by" not in shown.all_text


async def test_no_overdue_alert_at_the_very_instant_of_the_deadline(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A hot lead claimed at 11:00 has until 13:00 for its first touch, and the report counts
    an answer at 13:00 itself as in time (`touched <= due`; a rejection then leaves the lead out
    of first-touch compliance). A sweep at 13:00 sharp used to fire the managers' "first touch
    overdue" while the rep could still act; the rep then closed it *Not a fit* at 13:00, and
    the escalations channel told of a miss the report did not count. The alert waits until the
    deadline has passed."""
    await new_lead(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(hours=2)  # 13:00 sharp: the first-touch deadline
    lead = await stack.services.lead(1)
    assert lead.first_touch_due_at == clock()
    await sweep(stack, clock)  # the 75% reminder is due; the 100% alert is not yet
    assert stack.sim.messages(ESCALATIONS) == []
    await stack.services.dispose(
        1, "U0REP1", "not_a_fit", clock(), reason="Not ICP", note="a student"
    )
    await stack.settle()
    clock.advance(minutes=1)
    await sweep(stack, clock)
    assert stack.sim.messages(ESCALATIONS) == []
    assert ("no_touch", "1", "fired") not in await escalations(stack)
    response = await stack.driver.command("U0MGR1", "/sla-report", "", channel_id="C0ROOM")
    assert response.status == 200
    await stack.settle()
    report = stack.sim.ephemerals(user="U0MGR1", channel="C0ROOM")[-1].all_text
    # Only the owner's 75% reminder fired (the clock is named "first touch overdue" whatever
    # the step): no managers' alert.
    assert "*Escalations fired*: first touch overdue: reminder to the owner 1\n" in report


async def test_a_step_at_the_deadline_fires_once_it_has_passed(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Untouched at 13:00, the lead is overdue from the first instant after it: the sweep that
    looked at 13:00 sharp looks again then, and the managers hear."""
    await new_lead(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(hours=2)
    await sweep(stack, clock)
    assert stack.sim.messages(ESCALATIONS) == []
    lead = await stack.services.lead(1)
    assert lead.next_action_at is not None and lead.next_action_at > clock()
    clock.advance(seconds=1)
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "first touch" in alert.all_text
