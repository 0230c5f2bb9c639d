"""The weekly digest and the compliance alert through the real server and the simulator: at the
SLA's day and time, once per week, however many times or places the job runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.cli.stack import LocalStack, TravelClock, local_slack, start_stack
from bot.domain.policy import MonthlyDigest, Policy, WeeklyDigest
from bot.domain.report import Period, parse_period
from bot.services.digest import CATCH_UP
from tests.conftest import lead_payload

DIGEST, FEEDBACK, MANAGER = "C0REVOPS", "C0MKTFEED", "U0MGR1"
# The example SLA: the digest on Mondays at 09:00 in Sydney; the alert when first-touch
# compliance stays under 80% for 2 weeks, to U0MGR1.
DIGEST_TIME = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # Mon 30 Nov 09:00 AEDT


async def week_of(stack: LocalStack, clock: TravelClock, monday: datetime, prefix: str) -> None:
    """A Monday's leads: one touched in time and qualified, one rejected after a late touch,
    one never touched."""
    clock.now = monday
    services = stack.services
    ids = []
    for index in range(3):
        result = await services.intake(lead_payload(f"{prefix}-{index}"), clock())
        assert result.lead is not None
        ids.append(result.lead.id)
    await stack.settle()
    for lead_id in ids[:2]:
        await services.claim(lead_id, "U0REP1", clock() + timedelta(minutes=5))
    await services.log_attempt(ids[0], "U0REP1", "call", clock() + timedelta(minutes=9))
    later = clock() + timedelta(hours=3)
    await services.log_attempt(ids[1], "U0REP1", "call", later)
    await services.dispose(ids[0], "U0REP1", "qualified", later)
    rejected = await services.dispose(ids[1], "U0REP1", "not_a_fit", later, "Not ICP", "Too small")
    assert not rejected.repeated
    await stack.settle()


def new_posts(stack: LocalStack, channel: str, before: int) -> list[str]:
    return [message.all_text for message in stack.sim.messages(channel)[before:]]


async def test_the_digest_is_posted_once_at_its_time(stack: LocalStack, clock: TravelClock) -> None:
    await week_of(stack, clock, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "w48")
    feedback_before = len(stack.sim.messages(FEEDBACK))
    digests = stack.handoff.digests

    assert await digests.run(DIGEST_TIME - timedelta(minutes=1)) == []  # 08:59: not yet
    results = await asyncio.gather(*(digests.run(DIGEST_TIME) for _ in range(3)))
    assert sorted(map(tuple, results)) == [(), (), ("weekly digest",)]
    assert await digests.run(DIGEST_TIME + timedelta(hours=2)) == []  # a later run: nothing
    await stack.settle()

    digest, *charts = new_posts(stack, DIGEST, 0)
    assert "Weekly SLA digest · 2026-W48" in digest and "Share to channel" not in digest
    assert len(charts) == 2 and len(stack.sim.files(DIGEST)) == 2  # uploaded once each
    assert "3 MQLs posted → 1 SAL → 1 SQL" in digest
    (summary,) = new_posts(stack, FEEDBACK, feedback_before)
    assert "Rejections in 2026-W48" in summary and "1 lead" in summary and "1 leads" not in summary
    assert "*webinar* · Q4 Pipeline Webinar: Not ICP (MQL definition) 1" in summary
    # What it counts, beside the report marketing may hold it against (docs/reports.md).
    assert "the rejections made in 2026-W48" in summary
    assert "`/sla-report 2026-W48` counts those of the leads that came in that week" in summary


async def test_a_restart_just_after_the_time_catches_up_once(
    stack: LocalStack, clock: TravelClock
) -> None:
    digests = stack.handoff.digests
    assert await digests.run(DIGEST_TIME - timedelta(minutes=1), catch_up=CATCH_UP) == []
    assert await digests.run(DIGEST_TIME + timedelta(minutes=20), catch_up=CATCH_UP) == [
        "weekly digest"
    ]
    assert await digests.run(DIGEST_TIME + timedelta(minutes=21), catch_up=CATCH_UP) == []
    await stack.settle()
    digest, *_ = new_posts(stack, DIGEST, 0)
    assert "No leads this week" in digest


async def test_a_restart_hours_after_the_time_still_sends_that_weeks_digest_once(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """SPEC: "Nothing is lost and nothing is posted twice: ... a restart after hours of
    downtime." The server is down from Monday 08:00 to 13:00 (Sydney): the one that comes back
    posts last week's digest and marketing's review of its rejections, once, also with a second
    replica starting; before, a server back more than an hour after 09:00 lost that week's for
    good (seed 000: "Marketing commits to reviewing this feedback weekly"). Both backends."""
    sim = await local_slack()
    try:
        first = await start_stack(database_url, policy, clock=clock, sim=sim)
        try:
            await week_of(first, clock, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "w48")
        finally:
            await first.close()
        feedback_before = len(sim.messages(FEEDBACK))
        clock.now = DIGEST_TIME + timedelta(hours=4)  # Monday 13:00: back after the outage
        replicas = [await start_stack(database_url, policy, clock=clock, sim=sim) for _ in "ab"]
        try:
            for each in replicas:
                await each.handoff.digest(catch_up=True)  # what each one's start runs
                await each.settle()
            posts = [message.all_text for message in sim.messages(DIGEST)]
            assert sum("Weekly SLA digest · 2026-W48" in post for post in posts) == 1
            (summary,) = [m.all_text for m in sim.messages(FEEDBACK)[feedback_before:]]
            assert "Rejections in 2026-W48" in summary and "Not ICP (MQL definition) 1" in summary
            # The next restart, days later, still sends nothing twice.
            clock.now += timedelta(days=3)
            await replicas[0].handoff.digest(catch_up=True)
            await replicas[0].settle()
            assert len(sim.messages(DIGEST)) == len(posts)
        finally:
            for each in replicas:
                await each.close()
    finally:
        await sim.stop()


async def test_a_new_installation_posts_no_digest_of_the_week_before_it(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """Handoff first started Monday 10:30, over an hour after the digest time (its SLA recorded
    then): that digest, of the week before it, was never its to send, so neither that start
    nor the restarts after it (Monday 12:30, Tuesday 13:00) post an empty week. Both backends."""
    for started in (CATCH_UP + timedelta(minutes=30), timedelta(days=1, hours=4)):
        clock.now = DIGEST_TIME + started
        stack = await start_stack(database_url, policy, clock=clock)
        try:
            await stack.handoff.digest(catch_up=True)
            clock.now += timedelta(hours=2)
            await stack.handoff.digest(catch_up=True)
            await stack.settle()
            assert stack.sim.messages(DIGEST) == [] and stack.sim.messages(FEEDBACK) == []
        finally:
            await stack.close()


async def test_two_bad_weeks_send_the_alert_once(stack: LocalStack, clock: TravelClock) -> None:
    await week_of(stack, clock, datetime(2026, 11, 16, 0, 0, tzinfo=UTC), "w47")
    await week_of(stack, clock, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "w48")
    digests = stack.handoff.digests
    assert await digests.run(DIGEST_TIME) == ["weekly digest", "compliance alert"]
    assert await digests.run(DIGEST_TIME + timedelta(minutes=5)) == []
    await stack.settle()
    (alert,) = stack.sim.messages(stack.sim.dm_channel(MANAGER))
    text = alert.all_text
    assert "First-touch compliance has been under 80% for 2 weeks running" in text
    assert "2026-W47 33% → 2026-W48 33%" in text
    assert "Worst segments last week: enterprise 33%" in text


async def test_the_alert_names_only_segments_under_its_threshold(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """Enterprise misses two weeks running (1 of 3 touched in time each week); mid-market's one
    lead of last week was touched in 4 minutes (100%). The week is 2 of 4, 50%: the alert goes,
    and names enterprise as what pulls it under 80%, not mid-market at 100% as a "worst"
    segment (seed 000: the escalation is about compliance "below 80%"). Both backends."""
    stack = await start_stack(database_url, policy, clock=clock)
    try:
        await _worst_segments(stack, clock)
    finally:
        await stack.close()


async def _worst_segments(stack: LocalStack, clock: TravelClock) -> None:
    await week_of(stack, clock, datetime(2026, 11, 16, 0, 0, tzinfo=UTC), "w47")
    await week_of(stack, clock, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "w48")
    company = {"name": "Contoso", "domain": "contoso.example", "employees": 400}
    mid = await stack.services.intake(lead_payload("w48-mid", company=company), clock())
    assert mid.lead is not None and mid.lead.segment == "mid_market"
    await stack.services.claim(mid.lead.id, "U0REP3", clock() + timedelta(minutes=1))
    await stack.services.log_attempt(mid.lead.id, "U0REP3", "call", clock() + timedelta(minutes=4))
    assert await stack.handoff.digests.run(DIGEST_TIME) == ["weekly digest", "compliance alert"]
    await stack.settle()
    (alert,) = stack.sim.messages(stack.sim.dm_channel(MANAGER))
    assert "2026-W47 33% → 2026-W48 50%" in alert.all_text
    assert "Worst segments last week: enterprise 33%" in alert.all_text
    assert "mid market" not in alert.all_text


async def test_the_alert_is_weighed_once_a_week_not_again_at_each_restart(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """Monday 09:00: 2026-W47 at 33%, 2026-W48 at 100% (its warm lead from Friday 16:00 is due
    Monday 16:00, not yet): no streak, no alert. Untouched, that lead brings 2026-W48 to 50% by
    Thursday, when a replica restarts: the alert is not weighed again (docs/reports.md: it goes
    at the digest's time), so whether the CRO is told does not hang on a restart. Both
    backends."""
    stack = await start_stack(database_url, policy, clock=clock)
    try:
        await _weighed_once(stack, clock)
    finally:
        await stack.close()


async def _weighed_once(stack: LocalStack, clock: TravelClock) -> None:
    await week_of(stack, clock, datetime(2026, 11, 16, 0, 0, tzinfo=UTC), "w47")
    clock.now = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Mon 23 Nov 11:00
    hot = (await stack.services.intake(lead_payload("w48-hot"), clock())).lead
    assert hot is not None
    await stack.services.claim(hot.id, "U0REP1", clock() + timedelta(minutes=1))
    await stack.services.log_attempt(hot.id, "U0REP1", "call", clock() + timedelta(minutes=5))
    clock.now = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # Fri 27 Nov 16:00
    warm = (await stack.services.intake(lead_payload("w48-warm", score=65), clock())).lead
    assert warm is not None and warm.tier == "warm"
    await stack.settle()
    assert await stack.handoff.digests.run(DIGEST_TIME) == ["weekly digest"]
    clock.now = DIGEST_TIME + timedelta(days=3)  # Thursday: the warm lead missed Monday 16:00
    overall, _ = await stack.handoff.digests.reports.first_touch(week_of_w48(), clock())
    assert overall == 0.5  # under 80% two weeks running, as of now
    await stack.handoff.digest(catch_up=True)  # a replica restarts
    await stack.settle()
    assert stack.sim.messages(stack.sim.dm_channel(MANAGER)) == []


def week_of_w48() -> Period:
    return parse_period("2026-W48", DIGEST_TIME, "Australia/Sydney")


async def test_one_bad_week_is_no_streak(stack: LocalStack, clock: TravelClock) -> None:
    await week_of(stack, clock, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "w48")
    assert await stack.handoff.digests.run(DIGEST_TIME) == ["weekly digest"]
    await stack.settle()
    assert stack.sim.messages(stack.sim.dm_channel(MANAGER)) == []


MONTHLY_TIME = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # Tue 1 Dec 09:00 AEDT


async def test_the_monthly_digest_is_posted_once_for_the_month_before(
    stack: LocalStack, clock: TravelClock
) -> None:
    # The example SLA leaves `report.monthly_digest` at its default: the 1st at 09:00.
    await week_of(stack, clock, datetime(2026, 11, 16, 0, 0, tzinfo=UTC), "w47")
    await week_of(stack, clock, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "w48")
    before = len(stack.sim.messages(DIGEST))
    digests = stack.handoff.digests

    assert await digests.run_monthly(MONTHLY_TIME - timedelta(minutes=1)) == []  # 08:59
    results = await asyncio.gather(*(digests.run_monthly(MONTHLY_TIME) for _ in range(3)))
    assert sorted(map(tuple, results)) == [(), (), ("monthly digest",)]
    # A restart in the hour after: the server's own catch-up finds it sent.
    clock.now = MONTHLY_TIME + timedelta(minutes=20)
    await stack.handoff.monthly_digest(catch_up=True)
    assert await digests.run_monthly(MONTHLY_TIME + timedelta(days=3)) == []
    # The weekly digest is its own run: Monday's is still due, once.
    assert await digests.run(MONTHLY_TIME) == ["weekly digest", "compliance alert"]
    await stack.settle()

    monthly, *charts = new_posts(stack, DIGEST, before)[:3]
    assert "Monthly SLA digest · 2026-11 (November 2026)" in monthly
    assert "6 MQLs posted → 2 SAL → 2 SQL" in monthly
    assert "changes against 2026-10" in monthly and "Share to channel" not in monthly
    assert len(charts) == 2
    posts = new_posts(stack, DIGEST, before)
    assert sum("Monthly SLA digest" in post for post in posts) == 1
    assert sum("Weekly SLA digest · 2026-W48" in post for post in posts) == 1


async def test_many_rejected_campaigns_are_each_shown_whole_and_the_rest_counted(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """18 campaigns rejected for 3 reasons each pass one section's 3,000 characters: every
    pair shown has all its reasons, and the pairs left out are counted (not clipped away).
    On SQLite and PostgreSQL (the rows come from each one's query)."""
    stack = await start_stack(database_url, policy, clock=clock)
    try:
        await _many_rejected_campaigns(stack, clock)
    finally:
        await stack.close()


async def _many_rejected_campaigns(stack: LocalStack, clock: TravelClock) -> None:
    clock.now = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    services = stack.services
    reasons = ["Not ICP", "No budget", "Already using competitor"]
    for n in range(18):
        campaign = (
            f"FY27 enterprise pipeline campaign {n:02d} for APAC accounts, LinkedIn and search"
        )
        for index, reason in enumerate(reasons[: 3 if n < 17 else 1]):
            payload = lead_payload(f"c{n}-{index}", campaign=campaign)
            lead = (await services.intake(payload, clock())).lead
            assert lead is not None
            await services.claim(lead.id, "U0REP1", clock())
            await services.dispose(lead.id, "U0REP1", "not_a_fit", clock(), reason, "No")
    await stack.settle()
    feedback_before = len(stack.sim.messages(FEEDBACK))
    assert await stack.handoff.digests.run(DIGEST_TIME) == ["weekly digest"]
    await stack.settle()

    (summary,) = stack.sim.messages(FEEDBACK)[feedback_before:]
    sections = [block["text"]["text"] for block in summary.blocks if block["type"] == "section"]
    assert not any(text.endswith("…") for text in sections)
    pairs = [line for text in sections for line in text.split("\n") if line.startswith("• ")]
    assert len(pairs) == 16 and all(
        "Already using competitor (MQL definition) 1" in p for p in pairs
    )
    assert "…and 2 more source and campaign pairs" in summary.all_text


async def test_a_digest_missed_before_a_weekend_outage_is_sent_at_the_restart(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """The digest on Fridays at 17:00, the monthly one on the 28th: servers down from Friday
    16:00 to Monday 10:00 (Sydney) over 2026-W48's digest, and from 27 Dec to 3 Jan over
    November's. The one back sends them, late rather than never: they are the latest due
    (docs/reports.md). Before, a restart read only the week (month) just ended, whose digest
    was not due yet, and the one missed was lost for good. Both backends."""
    setting = {
        "weekly_digest": WeeklyDigest(day="fri", time="17:00"),
        "monthly_digest": MonthlyDigest(day=28, time="09:00"),
    }
    policy = policy.model_copy(update={"report": policy.report.model_copy(update=setting)})
    sim = await local_slack()
    try:
        first = await start_stack(database_url, policy, clock=clock, sim=sim)
        try:
            await week_of(first, clock, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "w48")
        finally:
            await first.close()
        for back in (
            datetime(2026, 12, 6, 23, 0, tzinfo=UTC),  # Mon 7 Dec 10:00 AEDT
            datetime(2027, 1, 2, 23, 0, tzinfo=UTC),  # Sun 3 Jan 10:00 AEDT
        ):
            clock.now = back
            stack = await start_stack(database_url, policy, clock=clock, sim=sim)
            try:
                await stack.handoff.digest(catch_up=True)  # what its start runs
                await stack.handoff.monthly_digest(catch_up=True)
                await stack.settle()
            finally:
                await stack.close()
        posts = [message.all_text for message in sim.messages(DIGEST)]
        assert sum("Weekly SLA digest · 2026-W48" in post for post in posts) == 1
        assert sum("Monthly SLA digest · 2026-11" in post for post in posts) == 1
    finally:
        await sim.stop()
