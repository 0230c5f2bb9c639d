"""Where a window's steps fall once its deadline is set again: a lead released while its owner
is away, a lead back from marketing, a claimed lead handed to an owner on other hours. Each
window is its SLA duration long, back from its deadline, so its steps keep their shares."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain import escalation
from bot.domain.escalation import claim_deadline, claim_deadlines, handed_over
from bot.domain.info import resumed
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, parse_policy, snapshot

SYDNEY = ZoneInfo("Australia/Sydney")
CLOCKS = ["2 business hours", "2h"]  # the hot tier's first touch: business or calendar time


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SYDNEY)  # type: ignore[misc]


def edited(policy: Policy, **changes: Any) -> Policy:
    """The example SLA with the hot tier's `first_touch` and top-level keys changed."""
    data = snapshot(policy)
    first_touch = changes.pop("first_touch", None)
    if first_touch is not None:
        data["tiers"][0] = data["tiers"][0] | {"first_touch": first_touch}
    return parse_policy(data | changes)


def lead_at(policy: Policy, arrived: datetime) -> LeadView:
    """A hot lead as intake stores it at `arrived`."""
    tier = policy.tier("hot")
    return LeadView(
        id=1,
        external_id="hs-1",
        email="a@b.example",
        stage=Stage.MQL,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=90,
        sla_version=policy.version,
        received_at=arrived,
        cycle_started_at=arrived,
        suggested_owner="U0REP1",
        claim_due_at=claim_deadline(policy, tier, arrived),
        first_touch_due_at=policy.calendar.add(arrived, tier.first_touch),
    )


def claimed(policy: Policy, lead: LeadView, at: datetime, zone: str | None = None) -> LeadView:
    deadlines = claim_deadlines(policy, at, zone)
    return replace(
        lead,
        stage=Stage.SAL,
        owner="U0REP1",
        owner_zone=zone,
        claimed_at=at,
        disposition_due_at=deadlines.feedback,
        final_due_at=deadlines.final,
    )


def steps(lead: LeadView, policy: Policy, ladder: str) -> list[datetime]:
    """When each step of `ladder` falls on the lead as it stands (Sydney time)."""
    (window,) = [w for w in escalation.windows(lead, policy) if w.ladder == ladder]
    calendar = escalation.calendar_of(ladder, lead, policy)
    times = escalation.step_times(window, policy.escalation.ladder(ladder), calendar)
    return [at.astimezone(SYDNEY) for at in times]


# --- a lead released because its owner is away ----------------------------------------------


@pytest.mark.parametrize("first_touch", CLOCKS)
def test_a_released_lead_s_claim_ladder_runs_from_the_release(
    policy: Policy, first_touch: str
) -> None:
    """Claimed at once at 11:00, released at 13:01 with a new claim deadline (an hour): its
    steps fall at 50%, 100% and 150% of release → deadline, as a fresh lead's would."""
    sla = edited(policy, first_touch=first_touch)
    released = local(2026, 11, 23, 13, 1)
    arrived = claimed(sla, lead_at(sla, local(2026, 11, 23, 11, 0)), local(2026, 11, 23, 11, 0))
    back = replace(
        arrived,
        stage=Stage.MQL,
        owner=None,
        disposition_due_at=None,
        final_due_at=None,
        suggested_owner="U0REP2",
        claim_due_at=claim_deadline(sla, sla.tier("hot"), released),
    )
    expected = [
        local(2026, 11, 23, 13, 31),
        local(2026, 11, 23, 14, 1),
        local(2026, 11, 23, 14, 31),
    ]
    assert steps(back, sla, "unclaimed") == expected
    assert steps(lead_at(sla, released), sla, "unclaimed") == expected  # a fresh lead's
    # The first touch was set at arrival: its clock does not move.
    assert steps(back, sla, "no_touch")[-1] == local(2026, 11, 23, 15, 0)


# --- a lead back from marketing -------------------------------------------------------------


@pytest.mark.parametrize("first_touch", CLOCKS)
def test_after_the_answer_each_step_keeps_its_working_time_from_the_question(
    policy: Policy, first_touch: str
) -> None:
    """Asked Monday 12:12 (72 of the first touch's 120 minutes used), answered Tuesday 10:00:
    the 75% reminder comes 18 minutes after the answer, the deadline 48, the reassignment
    at 200% 168 (not at once, as when the window kept its Monday 11:00 start)."""
    sla = edited(policy, first_touch=first_touch)
    arrived = local(2026, 11, 23, 11, 0)
    asked = replace(
        claimed(sla, lead_at(sla, arrived), arrived),
        info_question="Which region?",
        info_asked_at=local(2026, 11, 23, 12, 12),
    )
    back = resumed(asked, sla, local(2026, 11, 24, 10, 0))
    assert steps(back, sla, "no_touch") == [
        local(2026, 11, 24, 10, 18),
        local(2026, 11, 24, 10, 48),
        local(2026, 11, 24, 12, 48),
    ]


def test_a_feedback_step_keeps_its_working_time_on_the_owner_s_hours(policy: Policy) -> None:
    """`clock: owner`, 2 business hours to feedback on London's hours: claimed 09:00 London,
    asked 10:30 (75% used), answered 16:00: the deadline, and its reminder, at 16:30."""
    sla = edited(policy, clock="owner", disposition_deadline="2 business hours")
    london = ZoneInfo("Europe/London")
    claim = datetime(2026, 11, 23, 9, 0, tzinfo=london)
    lead = replace(
        claimed(sla, lead_at(sla, claim), claim, "Europe/London"),
        first_touch_at=claim,
        info_asked_at=datetime(2026, 11, 23, 10, 30, tzinfo=london),
    )
    back = resumed(lead, sla, datetime(2026, 11, 23, 16, 0, tzinfo=london))
    due = datetime(2026, 11, 23, 16, 30, tzinfo=london)
    assert back.disposition_due_at == due
    assert steps(back, sla, "no_feedback")[0] == due


# --- a claimed lead handed to an owner on other hours ---------------------------------------

LONDON_NINE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 09:00 London, 04:00 New York


def owners_lead(policy: Policy) -> LeadView:
    """Claimed Monday 09:00 London by a London rep: feedback due 11:00 London."""
    lead = claimed(policy, lead_at(policy, LONDON_NINE), LONDON_NINE, "Europe/London")
    return replace(lead, first_touch_at=LONDON_NINE)


def test_a_new_owner_on_other_hours_gets_the_working_time_left(policy: Policy) -> None:
    """Handed at 09:30 London (1h 30m left) to a New York rep (04:30 there): due 10:30 New
    York, the owner's reminder then and the managers' alert at 150%, an hour later."""
    sla = edited(policy, clock="owner", disposition_deadline="2 business hours")
    lead = owners_lead(sla)
    assert lead.disposition_due_at == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    handed = handed_over(
        lead, sla, "U0REP2", "America/New_York", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    )
    assert (handed.owner, handed.suggested_owner, handed.owner_zone) == (
        "U0REP2",
        "U0REP2",
        "America/New_York",
    )
    assert handed.disposition_due_at == datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    assert [at.astimezone(UTC) for at in steps(handed, sla, "no_feedback")] == [
        datetime(2026, 11, 23, 15, 30, tzinfo=UTC),
        datetime(2026, 11, 23, 16, 30, tzinfo=UTC),
    ]
    assert handed.final_due_at == lead.final_due_at  # `2w` is elapsed time: nothing moves


def test_a_new_owner_on_other_hours_gets_the_cadences_working_time_left(policy: Policy) -> None:
    """The follow-up cadence's next touch, on business time, moves like the feedback deadline:
    due 11:00 London (1h 30m left at 09:30), handed to New York: due 10:30 there."""
    follow_up = {"min_attempts": 6, "within": "12 business hours"}  # a touch every 2 hours
    sla = edited(
        policy, clock="owner", follow_up=follow_up, disposition_deadline="2 business hours"
    )
    lead = replace(
        owners_lead(sla),
        touches_counted=1,
        next_touch_due_at=datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
    )
    handed = handed_over(
        lead, sla, "U0REP2", "America/New_York", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    )
    assert handed.next_touch_due_at == datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    assert escalation.clocks_moved(lead, handed)
    # Before any attempt, the next touch is the first touch: the team's, it does not move.
    untouched = replace(lead, touches_counted=0, next_touch_due_at=lead.first_touch_due_at)
    kept = handed_over(untouched, sla, "U0REP2", "America/New_York", LONDON_NINE)
    assert kept.next_touch_due_at == untouched.next_touch_due_at


def test_a_deadline_passed_before_the_reassignment_stays_passed(policy: Policy) -> None:
    sla = edited(policy, clock="owner", disposition_deadline="2 business hours")
    lead = owners_lead(sla)
    handed = handed_over(
        lead, sla, "U0REP2", "America/New_York", datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    )
    assert handed.disposition_due_at == lead.disposition_due_at


def test_with_the_team_clock_a_reassignment_moves_no_deadline(policy: Policy) -> None:
    sla = edited(policy, disposition_deadline="2 business hours")
    lead = owners_lead(sla)  # the team's clock: no zone counts
    handed = handed_over(lead, sla, "U0REP2", "America/New_York", LONDON_NINE)
    assert handed.owner == "U0REP2"
    assert (handed.disposition_due_at, handed.final_due_at) == (
        lead.disposition_due_at,
        lead.final_due_at,
    )


def test_an_unclaimed_lead_handed_on_keeps_its_clocks(policy: Policy) -> None:
    sla = edited(policy, clock="owner")
    lead = lead_at(sla, LONDON_NINE)
    handed = handed_over(lead, sla, "U0REP2", "America/New_York", LONDON_NINE)
    assert handed == replace(lead, suggested_owner="U0REP2")


def test_a_lead_with_marketing_keeps_the_time_it_had_left_at_the_question(
    policy: Policy,
) -> None:
    """Asked at 10:00 London (1h left), handed to New York while marketing has it, answered
    at 16:00 London (11:00 New York): due an hour later, at 12:00 New York."""
    sla = edited(policy, clock="owner", disposition_deadline="2 business hours")
    asked = replace(owners_lead(sla), info_asked_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    handed = handed_over(
        asked, sla, "U0REP2", "America/New_York", datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    )
    back = resumed(handed, sla, datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    assert back.disposition_due_at == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


# --- the steps of a deadline already passed at the question ---------------------------------


def overdue_asked(policy: Policy, asked: datetime) -> LeadView:
    """Claimed Monday 11:00, untouched: the first touch due 13:00, its reassignment (200%) at
    15:00; the owner asks marketing a question at `asked`."""
    arrived = local(2026, 11, 23, 11, 0)
    lead = claimed(policy, lead_at(policy, arrived), arrived)
    return replace(lead, info_question="Which region?", info_asked_at=asked)


@pytest.mark.parametrize("first_touch", CLOCKS)
def test_a_step_still_to_come_after_a_missed_deadline_waits_out_the_question(
    policy: Policy, first_touch: str
) -> None:
    """Asked Monday 13:30, half an hour past the first-touch deadline and 90 minutes before
    the reassignment; answered Tuesday 10:00: the reassignment comes at 11:30, 90 minutes
    after the answer, not with it. The deadline and the steps already due stay where they
    were: the SLA was missed."""
    sla = edited(policy, first_touch=first_touch)
    asked = overdue_asked(sla, local(2026, 11, 23, 13, 30))
    back = resumed(asked, sla, local(2026, 11, 24, 10, 0))
    assert back.first_touch_due_at == asked.first_touch_due_at == local(2026, 11, 23, 13, 0)
    assert steps(back, sla, "no_touch") == [
        local(2026, 11, 23, 12, 30),
        local(2026, 11, 23, 13, 0),
        local(2026, 11, 24, 11, 30),
    ]


@pytest.mark.parametrize(
    ("first_touch", "reassigned"),
    [
        ("2 business hours", local(2026, 11, 24, 10, 0)),  # 30 working minutes Mon, 60 Tue
        ("2h", local(2026, 11, 24, 9, 0)),  # 18:00 Mon, at night: when work opens
    ],
)
def test_a_step_waits_the_pause_out_in_its_window_s_own_clock(
    policy: Policy, first_touch: str, reassigned: datetime
) -> None:
    """Answered Monday 16:30, 90 minutes before the close of work: the reassignment comes
    90 minutes of the window's clock after the answer."""
    sla = edited(policy, first_touch=first_touch)
    asked = overdue_asked(sla, local(2026, 11, 23, 13, 30))
    back = resumed(asked, sla, local(2026, 11, 23, 16, 30))
    assert steps(back, sla, "no_touch")[-1] == reassigned


@pytest.mark.parametrize("first_touch", CLOCKS)
def test_every_question_of_the_cycle_counts(policy: Policy, first_touch: str) -> None:
    """Asked 13:30, answered 14:00: the reassignment moves from 15:00 to 15:30. Asked again
    at 15:00 (30 minutes before it), answered Tuesday 10:00: it comes at 10:30."""
    sla = edited(policy, first_touch=first_touch)
    asked = overdue_asked(sla, local(2026, 11, 23, 13, 30))
    first = resumed(asked, sla, local(2026, 11, 23, 14, 0))
    assert steps(first, sla, "no_touch")[-1] == local(2026, 11, 23, 15, 30)
    again = replace(first, info_question="And the budget?", info_asked_at=local(2026, 11, 23, 15))
    back = resumed(again, sla, local(2026, 11, 24, 10, 0))
    assert steps(back, sla, "no_touch")[-1] == local(2026, 11, 24, 10, 30)


def test_the_sweep_looks_again_when_the_moved_step_comes_due(policy: Policy) -> None:
    """Back with the answer Tuesday 10:00, the first touch's deadline long passed: nothing
    fires then (its reminder and alert went out before the question); the sweep looks again
    at 11:30, when the reassignment comes due, and the lead still reads overdue."""
    asked = overdue_asked(policy, local(2026, 11, 23, 13, 30))
    answered = local(2026, 11, 24, 10, 0)
    back = resumed(asked, policy, answered)
    sent = {("no_touch", 0), ("no_touch", 1)}
    plan = escalation.plan(back, policy, answered, sent)
    assert plan.fire == [] and plan.skip == []
    assert plan.next_at == local(2026, 11, 24, 11, 30)
    (due,) = escalation.plan(back, policy, local(2026, 11, 24, 11, 30), sent).fire
    assert (due.ladder, due.step.do) == ("no_touch", "reassign")
    assert escalation.urgency(back, policy, answered)[0] == "overdue"


def test_a_step_past_a_deadline_on_the_owner_s_hours_waits_on_those_hours(
    policy: Policy,
) -> None:
    """`clock: owner`, 2 business hours to feedback on London's hours: claimed 09:00 London,
    due 11:00, the managers' alert (150%) at 12:00. Asked 11:30 London, answered 15:00: the
    alert comes 15:30 London (Sydney's hours, the team's, are closed all London day)."""
    sla = edited(policy, clock="owner", disposition_deadline="2 business hours")
    london = ZoneInfo("Europe/London")
    claim = datetime(2026, 11, 23, 9, 0, tzinfo=london)
    lead = replace(
        claimed(sla, lead_at(sla, claim), claim, "Europe/London"),
        first_touch_at=claim,
        info_asked_at=datetime(2026, 11, 23, 11, 30, tzinfo=london),
    )
    back = resumed(lead, sla, datetime(2026, 11, 23, 15, 0, tzinfo=london))
    assert back.disposition_due_at == datetime(2026, 11, 23, 11, 0, tzinfo=london)
    assert steps(back, sla, "no_feedback") == [
        datetime(2026, 11, 23, 11, 0, tzinfo=london),
        datetime(2026, 11, 23, 15, 30, tzinfo=london),
    ]
