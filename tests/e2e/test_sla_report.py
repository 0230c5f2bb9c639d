"""`/sla-report` through the real server: managers and reporters get the week privately, can
share it to the channel; anyone else is refused; bad periods and segments say what is valid."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.report import Report
from tests.conftest import lead_payload

ENTERPRISE, MANAGER, REP = "C0ENT", "U0MGR1", "U0REP1"
ROOM = "C0SALESLEADS"  # a channel the bot is not in


async def week_of_leads(stack: LocalStack, clock: TravelClock) -> None:
    """Three enterprise leads on Monday: one touched in 20 minutes, one claimed and left, one
    nobody claimed; and one that did not qualify."""
    for index in range(3):
        status, _ = await stack.post_lead(lead_payload(f"hs-{index}"))
        assert status == 201
    status, _ = await stack.post_lead(lead_payload("hs-low", score=20, title=None))
    assert status == 201
    await stack.settle()
    posts = stack.sim.messages(ENTERPRISE)
    clock.advance(minutes=10)
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE, message_ts=posts[0].ts)
    await stack.driver.press("U0REP2", "Claim", channel=ENTERPRISE, message_ts=posts[1].ts)
    await stack.settle()
    clock.advance(minutes=10)
    await stack.driver.press(REP, "Log call", channel=ENTERPRISE, message_ts=posts[0].ts)
    await stack.settle()
    clock.advance(hours=3)  # Monday 14:20: the untouched ones are past their 2h window


async def report_for(stack: LocalStack, user: str, text: str = "", channel: str = ROOM) -> str:
    response = await stack.driver.command(user, "/sla-report", text, channel_id=channel)
    assert response.status == 200
    await stack.settle()
    notes = stack.sim.ephemerals(user=user, channel=channel)
    assert notes, "no private answer"
    return notes[-1].all_text


async def test_a_manager_gets_the_week_privately(stack: LocalStack, clock: TravelClock) -> None:
    await week_of_leads(stack, clock)
    text = await report_for(stack, MANAGER)
    assert "SLA report · 2026-W48" in text and "(week in progress)" in text
    assert "First-touch compliance" in text and "1 of 3" in text  # 1 touched on time of 3 due
    assert "MQL → SAL (acceptance)" in text and "2 of 3" in text
    assert "Data completeness" in text and "3 of 4" in text
    assert "3 MQLs posted → 2 SAL → 0 SQL" in text  # the rates are the fields above
    assert "*enterprise*" in text and "<@U0REP1>" in text
    assert stack.sim.messages(ROOM) == []  # nothing in the channel
    assert "The charts are in your DM with Handoff" in text
    files = stack.sim.files(stack.sim.dm_channel(MANAGER))
    assert [f.name for f in files] == [
        "handoff-2026-W48-speed-to-lead.png",
        "handoff-2026-W48-first-touch.png",
    ]
    assert all(f.content.startswith(b"\x89PNG") for f in files)


async def test_the_report_can_be_shared_to_the_channel(
    stack: LocalStack, clock: TravelClock
) -> None:
    await stack.handoff.people.refresh(clock())  # names from Slack, as at start and daily
    await week_of_leads(stack, clock)
    await report_for(stack, MANAGER, "this-week enterprise")
    response = await stack.driver.press_ephemeral(MANAGER, "Share to channel", channel=ROOM)
    assert response.status == 200
    await stack.settle()
    (shared,) = stack.sim.messages(ROOM)
    assert "SLA report · 2026-W48" in shared.all_text and "enterprise" in shared.all_text
    assert "Share to channel" not in shared.all_text  # no button in the shared copy
    # In a channel, people are named, not mentioned: a shared report pings nobody.
    assert "Shared by grace" in shared.all_text and "maya" in shared.all_text
    assert "<@" not in shared.text and "<@" not in str(shared.blocks)


async def test_a_report_slower_than_its_response_url_comes_in_the_dm(
    stack: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack takes a response_url for 30 minutes, then answers 404 `expired_url`
    (docs.slack.dev/interactivity/handling-user-interaction, "Message responses"): a report
    that took longer (a busy report worker) reaches the manager in their DM with Handoff
    instead of being lost."""
    await week_of_leads(stack, clock)
    stack.sim.interaction_clock = lambda: clock().timestamp()
    reports = stack.handoff.reports
    ask = reports.ask

    async def slow(text: str | None, now: datetime) -> Report:
        built = await ask(text, now)
        clock.advance(minutes=31)
        return built

    monkeypatch.setattr(reports, "ask", slow)
    response = await stack.driver.command(MANAGER, "/sla-report", "", channel_id=ROOM)
    assert response.status == 200
    await stack.settle()
    assert stack.sim.ephemerals(user=MANAGER) == []  # the response URL refused it
    dm = stack.sim.messages(stack.sim.dm_channel(MANAGER))  # the report, then its charts
    (report,) = [m for m in dm if "SLA report" in m.all_text]
    assert "SLA report · 2026-W48" in report.all_text and "1 of 3" in report.all_text
    assert stack.sim.messages(ROOM) == []
    # No "Share to channel" there: pressed in the DM, its response URL would post the report
    # in the DM again, not in the channel where it was asked for.
    assert "Share to channel" not in str(report.blocks)


async def test_a_share_slower_than_its_response_url_says_so_in_the_dm(
    stack: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared report goes to the channel through the press's response URL, which Slack takes
    for 30 minutes: a share built slower than that is not posted, and the manager is told so
    in their DM (instead of a button that seemed to do nothing)."""
    await week_of_leads(stack, clock)
    await report_for(stack, MANAGER)
    stack.sim.interaction_clock = lambda: clock().timestamp()
    reports = stack.handoff.reports
    named = reports.named

    async def slow(period: str | None, now: datetime, segment: str | None = None) -> Report:
        built = await named(period, now, segment)
        clock.advance(minutes=31)
        return built

    monkeypatch.setattr(reports, "named", slow)
    await stack.driver.press_ephemeral(MANAGER, "Share to channel", channel=ROOM)
    await stack.settle()
    assert stack.sim.messages(ROOM) == []
    dm = stack.sim.messages(stack.sim.dm_channel(MANAGER))
    (note,) = [m for m in dm if "Share to channel" in m.all_text]
    assert "took too long" in note.all_text and "press *Share to channel* again" in note.all_text


async def test_a_rep_is_refused_politely(stack: LocalStack, clock: TravelClock) -> None:
    await week_of_leads(stack, clock)
    answer = await stack.driver.command(REP, "/sla-report", "", channel_id=ROOM)
    assert answer.json is not None and answer.json["response_type"] == "ephemeral"
    assert "only the sales managers and the SLA's reporters" in answer.json["text"]
    await stack.settle()
    assert stack.sim.ephemerals(user=REP) == []  # no report follows


async def test_a_forged_share_by_a_rep_changes_nothing(
    stack: LocalStack, clock: TravelClock
) -> None:
    await week_of_leads(stack, clock)
    await report_for(stack, MANAGER)
    await stack.driver.press_ephemeral(MANAGER, "Share to channel", channel=ROOM, forged_by=REP)
    await stack.settle()
    assert stack.sim.messages(ROOM) == []
    (refusal,) = stack.sim.ephemerals(user=REP)
    assert "only the sales managers and the SLA's reporters" in refusal.text


async def test_bad_periods_and_segments_say_what_is_valid(stack: LocalStack) -> None:
    text = await report_for(stack, MANAGER, "fortnight")
    assert "`fortnight` is neither a period nor a segment of the SLA" in text
    assert "`2026-W47`" in text and "`enterprise`" in text  # what is valid, both ways
    text = await report_for(stack, MANAGER, "2026-W60")
    assert "2026 has no week 60" in text
    text = await report_for(stack, MANAGER, "last-week enterprise smb")
    assert "Usage: `/sla-report [period] [segment]`" in text


async def test_an_empty_week_shows_zeros(stack: LocalStack) -> None:
    text = await report_for(stack, MANAGER, "2026-W40", channel="D0MGR1")
    assert "No leads this week" in text and "0 MQLs posted → 0 SAL → 0 SQL" in text


async def test_the_notification_of_an_uncoloured_report_says_what_its_blocks_say(
    stack: LocalStack,
) -> None:
    await stack.driver.command(MANAGER, "/sla-report", "smb", channel_id="D0MGR1")
    await stack.settle()
    report = stack.sim.ephemerals(user=MANAGER)[-1]
    why = "Nothing to colour yet: no figures against the SLA's targets in this period."
    assert report.text == f"SLA report 2026-W48 · smb: {why}"  # not "no targets set"
    assert why in report.all_text


async def test_last_month_is_reported_and_can_be_shared(
    stack: LocalStack, clock: TravelClock
) -> None:
    await week_of_leads(stack, clock)  # Monday 23 November
    clock.advance(days=8)  # Tuesday 1 December: November is over
    text = await report_for(stack, MANAGER, "last-month enterprise")
    assert "SLA report · 2026-11 (November 2026)" in text and "in progress" not in text
    assert "changes against 2026-10" in text
    assert "3 MQLs posted → 2 SAL → 0 SQL" in text
    assert "MQLs vs monthly target*: enterprise 3/43" in text  # 10 a week × 30 days ÷ 7
    files = stack.sim.files(stack.sim.dm_channel(MANAGER))
    assert [f.name for f in files] == [
        "handoff-2026-11-enterprise-speed-to-lead.png",
        "handoff-2026-11-enterprise-first-touch.png",
    ]
    response = await stack.driver.press_ephemeral(MANAGER, "Share to channel", channel=ROOM)
    assert response.status == 200
    await stack.settle()
    (shared,) = stack.sim.messages(ROOM)
    assert "SLA report · 2026-11 (November 2026)" in shared.all_text
    assert "enterprise" in shared.all_text and "Shared by" in shared.all_text
    assert "3 MQLs posted → 2 SAL → 0 SQL" in shared.all_text


async def test_a_future_quarter_is_refused_plainly(stack: LocalStack) -> None:
    text = await report_for(stack, MANAGER, "2027-Q1")
    assert "2027-Q1 (Jan – Mar 2027) has not started yet" in text
    text = await report_for(stack, MANAGER, "2026-Q7")
    assert "A year has quarters Q1 to Q4, not Q7" in text
    assert stack.sim.messages(ROOM) == []


async def test_an_explicit_range_of_days(stack: LocalStack, clock: TravelClock) -> None:
    await week_of_leads(stack, clock)  # Monday 23 November
    clock.advance(days=8)  # Tuesday 1 December
    text = await report_for(stack, MANAGER, "2026-11-02..2026-11-29")
    assert "SLA report · 2026-11-02..2026-11-29 (Mon 2 Nov – Sun 29 Nov 2026, 28 days)" in text
    assert "in progress" not in text and "changes against 2026-10-05..2026-11-01" in text
    assert "3 MQLs posted → 2 SAL → 0 SQL" in text
    assert "MQLs vs the period's target*: enterprise 3/40" in text  # 10 a week × 28 days ÷ 7
    assert "*Sources and campaigns*" in text and "webinar · Q4 Pipeline Webinar: 3 · 67%" in text
    files = stack.sim.files(stack.sim.dm_channel(MANAGER))
    assert [f.name for f in files][-2:] == [
        "handoff-2026-11-02..2026-11-29-speed-to-lead.png",
        "handoff-2026-11-02..2026-11-29-first-touch.png",
    ]
    response = await stack.driver.press_ephemeral(MANAGER, "Share to channel", channel=ROOM)
    assert response.status == 200
    await stack.settle()
    (shared,) = stack.sim.messages(ROOM)
    assert "SLA report · 2026-11-02..2026-11-29" in shared.all_text


async def test_a_reversed_future_or_too_long_range_is_refused_privately(
    stack: LocalStack,
) -> None:
    # The stack's clock: Monday 23 November 2026, 11:00 in Sydney.
    text = await report_for(stack, MANAGER, "2026-11-20..2026-11-02")
    assert "ends before it starts: put the earlier day first, like `2026-11-02..2026-11-20`" in text
    text = await report_for(stack, MANAGER, "2026-11-02..2026-11-30")
    assert "ends after today (2026-11-23)" in text
    text = await report_for(stack, MANAGER, "2025-01-01..2026-11-20")
    assert "a range covers at most 366 days" in text
    assert stack.sim.messages(ROOM) == []


async def test_by_rep_a_missed_first_touch_stays_with_the_rep_the_sla_took_the_lead_from(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Maya claims a hot lead at 11:00 and does not call by its 13:00 deadline; at 15:01 the
    sweep hands it to Tom (200% of the window), who calls at once. The by-rep table shows the
    miss against Maya; Tom, who got it two hours late, is not measured on its first touch."""
    status, _ = await stack.post_lead(lead_payload("hs-1"))
    assert status == 201
    await stack.settle()
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(hours=4, minutes=1)
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    assert (await stack.services.lead(1)).owner == "U0REP2"
    await stack.driver.press("U0REP2", "Log call", channel=ENTERPRISE)
    await stack.settle()

    text = await report_for(stack, MANAGER)
    by_rep = [line for line in text[text.index("*By rep*") :].split("\n") if "<@U0REP" in line]
    assert by_rep == [
        "• <@U0REP2>: 1 MQL · MQL→SAL 100% 🟢",  # the lead is his now; its first touch was not
        f"• <@{REP}>: 0 MQLs · First touch 0% 🔴 · speed 4h 1m",
    ]
    assert "First-touch compliance" in text and "0 of 1" in text  # the team's: one lead


async def test_a_segment_called_r_and_d_reads_so_in_the_notification(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """The `text` of a message is mrkdwn: `&` escaped once reads `&`; twice, `&amp;`."""
    content = snapshot(policy)
    content["segments"][0]["name"] = "r&d"
    content["targets"]["mql_per_week"]["r&d"] = content["targets"]["mql_per_week"].pop("enterprise")
    split = content["plan"]["revenue_split"]
    split["r&d"] = split.pop("enterprise")
    stack = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    try:
        await week_of_leads(stack, clock)
        await report_for(stack, MANAGER, "this-week r&d")
        private = stack.sim.ephemerals(user=MANAGER, channel=ROOM)[-1]
        assert private.text.startswith("SLA report 2026-W48 · r&amp;d: ")
        await stack.driver.press_ephemeral(MANAGER, "Share to channel", channel=ROOM)
        await stack.settle()
        (shared,) = stack.sim.messages(ROOM)
        assert shared.text.startswith("SLA report 2026-W48 · r&amp;d: ")
        assert "&amp;amp;" not in shared.text + str(shared.blocks)
    finally:
        await stack.close()


async def test_a_segment_is_found_as_the_sla_names_it_whatever_its_case_or_spaces(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """A segment the SLA calls `Enterprise Accounts` (two words, as `handoff check` accepts)
    is asked for as the refusal lists it, in any case, before or after the period: before,
    `/sla-report Enterprise Accounts` answered "`Enterprise` is not a segment of the SLA: use
    one of `Enterprise Accounts`, …", the name it had just been given."""
    content = snapshot(policy)
    named = "Enterprise Accounts"
    content["segments"][0]["name"] = named
    targets = content["targets"]["mql_per_week"]
    targets[named] = targets.pop("enterprise")
    split = content["plan"]["revenue_split"]
    split[named] = split.pop("enterprise")
    stack = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    try:
        await week_of_leads(stack, clock)
        for asked in (
            "Enterprise Accounts",
            "this-week enterprise  accounts",
            "ENTERPRISE ACCOUNTS week",
        ):
            text = await report_for(stack, MANAGER, asked)
            assert text.startswith("SLA report 2026-W48 · Enterprise Accounts: "), asked
            assert "3 MQLs posted → 2 SAL → 0 SQL" in text, asked
        # The shipped names in another case too (`SMB`), or as the report shows them.
        text = await report_for(stack, MANAGER, "last-week SMB")
        assert text.startswith("SLA report 2026-W47 · smb: ")
        text = await report_for(stack, MANAGER, "Mid Market 2026-W47")
        assert text.startswith("SLA report 2026-W47 · mid market: ")
        # What is still no segment is refused as before, naming the segments as they are typed.
        text = await report_for(stack, MANAGER, "Enterprise")
        assert "`Enterprise` is neither a period nor a segment of the SLA" in text
        assert "`Enterprise Accounts`" in text
        text = await report_for(stack, MANAGER, "last-week Enterprise Accounts smb")
        assert "Usage: `/sla-report [period] [segment]`" in text
    finally:
        await stack.close()


async def test_a_week_of_one_lead_says_one_lead_and_one_mql(stack: LocalStack) -> None:
    """A quiet week of one lead read "of 1 leads received" and "1 MQLs posted"."""
    status, _ = await stack.post_lead(lead_payload("hs-only"))
    assert status == 201
    await stack.settle()
    text = await report_for(stack, MANAGER)
    assert "of 1 lead received" in text and "*Conversion*: 1 MQL posted → 0 SAL " in text
    assert "1 leads" not in text and "1 MQLs" not in text


async def test_a_lead_rejected_before_its_first_touch_deadline_is_not_a_miss(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Three hot leads on Monday, each claimed at once: one is spam, closed *Bad data · Fake or
    spam* ten minutes later without a call; one is called in 20 minutes; one is left until 14:20
    (past its 2-hour window) and only then closed *Not a fit* without a call. The spam was
    dealt with inside its window (seed 001 holds sales to "a maximum time-to-disposition for
    unqualified leads", apart from first response): first-touch compliance is 1 of 2, the
    late rejection a miss; before, the spam counted as a miss too (1 of 3)."""
    for index in range(3):
        status, _ = await stack.post_lead(lead_payload(f"hs-{index}"))
        assert status == 201
    await stack.settle()
    posts = stack.sim.messages(ENTERPRISE)
    for post in posts:
        await stack.driver.press(REP, "Claim", channel=ENTERPRISE, message_ts=post.ts)
    await stack.settle()
    clock.advance(minutes=10)
    await stack.services.dispose(1, REP, "bad_data", clock(), reason="Fake or spam", note="a bot")
    clock.advance(minutes=10)
    await stack.driver.press(REP, "Log call", channel=ENTERPRISE, message_ts=posts[1].ts)
    await stack.settle()
    clock.advance(hours=3)  # Monday 14:20: past the 2-hour window
    await stack.services.dispose(3, REP, "not_a_fit", clock(), reason="Not ICP", note="a student")
    await stack.settle()

    text = await report_for(stack, MANAGER)
    assert "*First-touch compliance*\n50% 🔴 (target 90%)\n1 of 2\n" in text, text
    by_rep = [line for line in text[text.index("*By rep*") :].split("\n") if "<@U0REP" in line]
    assert by_rep == [
        f"• <@{REP}>: 3 MQLs · First touch 50% 🔴 · MQL→SAL 33% 🔴 · Feedback 100% 🟢 · speed 20m"
    ]


async def test_by_rep_a_missed_feedback_deadline_stays_with_the_rep_who_had_the_lead(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Two hot leads on Monday 11:00, feedback due 72 hours after the claim (Thursday 11:00).
    Maya claims the first and calls at 11:10, but gives no feedback by Thursday; on Friday a
    manager reassigns it to Tom, who marks it *Contacted – progressing* at once. Tom claims
    the second and marks it progressing on Tuesday, in time; on Friday a manager hands it to
    Maya. The missed deadline ran out while Maya had the lead, and the answer in time was
    Tom's: seed 003, "The SLA isn't a punishment device. The point is shared accountability,
    not blame assignment", so nobody answers for a deadline that passed before the lead was
    theirs. Before, both went to the owner now: Tom's row showed Maya's miss, and Maya's
    showed Tom's answer in time."""
    for name in ("hs-1", "hs-2"):
        status, _ = await stack.post_lead(lead_payload(name))
        assert status == 201
    await stack.settle()
    first, second = stack.sim.messages(ENTERPRISE)
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE, message_ts=first.ts)
    await stack.driver.press("U0REP2", "Claim", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    clock.advance(minutes=10)
    await stack.driver.press(REP, "Log call", channel=ENTERPRISE, message_ts=first.ts)
    await stack.driver.press("U0REP2", "Log call", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    clock.advance(days=1)  # Tuesday: Tom's feedback, in time
    await stack.services.dispose(2, "U0REP2", "progressing", clock())
    clock.advance(days=3)  # Friday 11:10: Maya's feedback on the first is a day late
    await stack.services.reassign(1, MANAGER, "U0REP2", clock())
    await stack.services.reassign(2, MANAGER, REP, clock())
    clock.advance(minutes=5)
    await stack.services.dispose(1, "U0REP2", "progressing", clock())
    await stack.settle()

    text = await report_for(stack, MANAGER)
    assert "*Feedback completion*\n50% 🔴 (target 90%)\n1 of 2\n" in text, text  # the team's
    by_rep = [line for line in text[text.index("*By rep*") :].split("\n") if "<@U0REP" in line]
    assert by_rep == [
        f"• <@{REP}>: 1 MQL · First touch 100% 🟢 · MQL→SAL 100% 🟢 · Feedback 0% 🔴 · speed 10m",
        "• <@U0REP2>: 1 MQL · First touch 100% 🟢 · MQL→SAL 100% 🟢 · Feedback 100% 🟢 · speed 10m",
    ], by_rep


async def test_by_rep_unclaimed_is_not_the_leads_nurtured_at_intake(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Maya claims and calls the week's one MQL; a lead that did not qualify went straight to
    nurture. Nobody left a lead unclaimed, yet the by-rep table read "(unclaimed): 0 MQLs" (the
    nurtured lead). It is named for what it is."""
    status, _ = await stack.post_lead(lead_payload("hs-1"))
    assert status == 201
    status, _ = await stack.post_lead(lead_payload("hs-low", score=20, title=None))
    assert status == 201
    await stack.settle()
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(minutes=10)
    await stack.driver.press(REP, "Log call", channel=ENTERPRISE)
    await stack.settle()

    text = await report_for(stack, MANAGER)
    by_rep = text[text.index("*By rep*") :].split("\n")[1:3]
    assert by_rep == [
        f"• <@{REP}>: 1 MQL · First touch 100% 🟢 · MQL→SAL 100% 🟢 · speed 10m",
        "• (nurtured at intake): 0 MQLs",
    ], by_rep
    assert "(unclaimed)" not in text


async def away_at_the_feedback_deadline(stack: LocalStack, clock: TravelClock) -> None:
    """Maya claims a hot lead Monday 11:00 and calls at once; on Wednesday she is away until
    Friday 4 Dec. The clock stops at Thursday 11:00, the lead's feedback deadline (72 hours
    after the claim)."""
    status, _ = await stack.post_lead(lead_payload("hs-1"))
    assert status == 201
    await stack.settle()
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.press(REP, "Log call", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(days=2)  # Wednesday 11:00
    answer = await stack.driver.command(REP, "/handoff", "away 2026-12-04")
    assert answer.status == 200
    clock.advance(days=1)  # Thursday 11:00: the feedback deadline


async def test_a_feedback_deadline_missed_before_an_offer_to_the_pool_stays_a_miss(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Maya claims a hot lead Monday 11:00 and calls at once, but gives no feedback by its
    deadline, Thursday 11:00 (72 hours). She is away from Wednesday; Thursday's sweep offers the
    lead to the pool, and Tom claims it and marks it *Contacted – progressing* at once. The
    offer cleared the lead's feedback deadline (Tom's claim set a new one), and the report read
    feedback 1 of 1, Tom's, as if Thursday had not been missed. It stays Maya's miss: the
    team's 0 of 1, and Maya's row, not Tom's, shows it."""
    await away_at_the_feedback_deadline(stack, clock)
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    assert (await stack.services.lead(1)).owner == REP  # an answer now would be in time
    clock.advance(seconds=1)  # just after it: offered
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.owner is None and lead.suggested_owner == "U0REP2"
    clock.advance(minutes=5)
    await stack.driver.press("U0REP2", "Claim", channel=ENTERPRISE)
    await stack.settle()
    await stack.services.dispose(1, "U0REP2", "progressing", clock())
    await stack.settle()

    text = await report_for(stack, MANAGER)
    assert "*Feedback completion*\n0% 🔴 (target 90%)\n0 of 1\n" in text, text
    by_rep = [line for line in text[text.index("*By rep*") :].split("\n") if "<@U0REP" in line]
    assert by_rep == [
        "• <@U0REP2>: 1 MQL · MQL→SAL 100% 🟢",
        f"• <@{REP}>: 0 MQLs · First touch 100% 🟢 · Feedback 0% 🔴 · speed 0m",
    ], by_rep


async def test_an_away_reps_lead_is_not_offered_at_the_very_instant_of_its_deadline(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Maya claims a hot lead Monday 11:00 and calls at once; its feedback is due Thursday
    11:00. She is away from Wednesday, but at 11:00 sharp on Thursday she marks it
    *Contacted – progressing*, and the report counts an answer at the deadline itself as in
    time. The sweep at 11:00 sharp offered the lead to the pool first (an away rep's lead is
    offered on a step at its deadline: here the owner's 100% reminder), so her answer came
    to a lead no longer hers, and the offer kept the deadline as missed. The offer waits
    until the deadline has passed, as the managers' alert does."""
    await away_at_the_feedback_deadline(stack, clock)
    lead = await stack.services.lead(1)
    assert lead.disposition_due_at == clock()
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.owner == REP and lead.next_action_at is not None
    assert lead.next_action_at > clock()
    await stack.services.dispose(1, REP, "progressing", clock())
    await stack.settle()
    clock.advance(minutes=5)
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    assert (await stack.services.lead(1)).owner == REP

    text = await report_for(stack, MANAGER)
    assert "*Feedback completion*\n100% 🟢 (target 90%)\n1 of 1\n" in text, text
