"""The escalation rules, pure: clocks across a weekend, a holiday, DST; one step per lead."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain import escalation
from bot.domain.escalation import claim_deadline, feedback_check
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy

SYDNEY = ZoneInfo("Australia/Sydney")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SYDNEY)  # type: ignore[misc]


def new_lead(policy: Policy, arrived: datetime, tier: str = "hot") -> LeadView:
    """A lead as intake stores it: its clocks from the tier, its first check from the ladders."""
    chosen = next(t for t in policy.tiers if t.name == tier)
    lead = LeadView(
        id=1,
        external_id="hs-1",
        email="a@b.example",
        stage=Stage.MQL,
        segment="enterprise",
        channel="C0ENT",
        tier=tier,
        score=90,
        sla_version=policy.version,
        received_at=arrived,
        cycle_started_at=arrived,
        suggested_owner="U0REP1",
        claim_due_at=claim_deadline(policy, chosen, arrived),
        first_touch_due_at=policy.calendar.add(arrived, chosen.first_touch),
    )
    return replace(lead, next_action_at=escalation.first_check(lead, policy))


def fired(plan: escalation.Plan) -> list[tuple[str, str]]:
    return [(due.ladder, due.step.do) for due in plan.fire]


def test_a_hot_lead_has_an_hour_to_be_claimed_and_two_to_be_touched(policy: Policy) -> None:
    lead = new_lead(policy, local(2026, 11, 23, 11, 0))
    assert lead.claim_due_at == local(2026, 11, 23, 12, 0)
    assert lead.first_touch_due_at == local(2026, 11, 23, 13, 0)
    assert lead.next_action_at == local(2026, 11, 23, 11, 30)  # the first step: 50% of claim


def test_a_step_due_from_the_start_is_looked_at_at_once(policy: Policy) -> None:
    """A short window whose first step is a small share of it (1% of a 5-minute claim window
    rounds to 0 minutes) is due at arrival: the lead must be looked at then, not never."""
    from bot.domain.durations import Duration
    from bot.domain.policy import EscalationStep

    tiers = [t.model_copy(update={"first_touch": Duration.parse("10m")}) for t in policy.tiers]
    ladders = policy.escalation.model_copy(
        update={"unclaimed": [EscalationStep.model_validate({"at": "1%", "do": "remind_channel"})]}
    )
    short = policy.model_copy(update={"tiers": tiers, "escalation": ladders})
    arrived = local(2026, 11, 23, 11, 0)
    lead = new_lead(short, arrived)
    assert lead.next_action_at == arrived
    assert fired(escalation.plan(lead, short, arrived, set())) == [("unclaimed", "remind_channel")]


def test_the_ladder_climbs_one_step_at_a_time(policy: Policy) -> None:
    lead = new_lead(policy, local(2026, 11, 23, 11, 0))
    recorded: set[tuple[str, int]] = set()
    seen = []
    after = escalation.JUST_AFTER
    for minute, later in ((29, 0), (30, 0), (60, 0), (60, 1), (90, 0), (120, 0), (120, 1)):
        at = local(2026, 11, 23, 11, 0) + timedelta(minutes=minute) + later * after
        plan = escalation.plan(lead, policy, at, recorded)
        seen.append(fired(plan))
        recorded |= {(due.ladder, due.index) for due in plan.fire + plan.skip}
    seen.append(fired(escalation.plan(lead, policy, local(2026, 11, 23, 15, 0), recorded)))
    assert seen == [
        [],
        [("unclaimed", "remind_channel")],  # 11:30
        [],  # 12:00 sharp: a claim now is still in time, so the managers do not hear yet
        [("unclaimed", "notify_manager")],  # the first instant after 12:00
        [("unclaimed", "reassign")],  # 12:30 (no_touch's remind at 12:30 is skipped with it)
        [],  # 13:00 sharp: a touch now is in time (the report: `touched <= due`)
        [("no_touch", "notify_manager")],  # just after 13:00
        [("no_touch", "reassign")],  # 15:00: 200% of the first-touch window
    ]


def test_a_managers_alert_at_the_deadline_waits_until_it_has_passed(policy: Policy) -> None:
    """The report counts an answer at the deadline itself as in time, so a sweep at that very
    instant tells the managers of no miss: the lead is looked at again just after it. A
    reminder to the owner at the deadline ("due now") still comes at it."""
    lead = new_lead(policy, local(2026, 11, 23, 11, 0))
    claimed = replace(lead, stage=Stage.SAL, owner="U0REP1", claimed_at=local(2026, 11, 23, 11, 0))
    due = local(2026, 11, 23, 13, 0)
    sharp = escalation.plan(claimed, policy, due, {("no_touch", 0)})
    assert sharp.fire == [] and sharp.next_at == due + escalation.JUST_AFTER
    later = escalation.plan(claimed, policy, sharp.next_at, {("no_touch", 0)})
    assert fired(later) == [("no_touch", "notify_manager")]


def test_after_downtime_only_the_strongest_step_fires_and_the_rest_are_skipped(
    policy: Policy,
) -> None:
    lead = new_lead(policy, local(2026, 11, 23, 11, 0))
    plan = escalation.plan(lead, policy, local(2026, 11, 23, 17, 0), set())
    assert fired(plan) == [("no_touch", "reassign")]
    assert len(plan.skip) == 5  # three unclaimed steps, two no_touch steps


def test_a_weekend_does_not_count(policy: Policy) -> None:
    lead = new_lead(policy, local(2026, 11, 27, 16, 30))  # Friday 16:30
    assert lead.claim_due_at == local(2026, 11, 30, 9, 30)  # Monday 09:30
    saturday = escalation.plan(lead, policy, local(2026, 11, 28, 12, 0), set())
    assert fired(saturday) == [("unclaimed", "remind_channel")]  # due Friday 17:00
    # nothing more until Monday: the managers' alert just after the claim deadline
    assert saturday.next_at == local(2026, 11, 30, 9, 30) + escalation.JUST_AFTER


def test_christmas_and_the_shutdown_days_do_not_count(policy: Policy) -> None:
    # sla.yaml closes 24 and 31 December; AU-NSW: Christmas (Fri 25), Boxing Day (Mon 28).
    lead = new_lead(policy, local(2026, 12, 23, 16, 30))
    assert lead.claim_due_at == local(2026, 12, 29, 9, 30)
    assert lead.first_touch_due_at == local(2026, 12, 29, 10, 30)
    plan = escalation.plan(lead, policy, local(2026, 12, 28, 12, 0), {("unclaimed", 0)})
    assert plan.fire == [] and plan.next_at == local(2026, 12, 29, 9, 30) + escalation.JUST_AFTER


def test_a_dst_change_keeps_wall_clock_deadlines(policy: Policy) -> None:
    # Sydney moves from AEST (+10) to AEDT (+11) on Sunday 4 October 2026.
    # Monday 5 October is Labour Day in NSW: the hour left on Friday runs on Tuesday.
    lead = new_lead(policy, local(2026, 10, 2, 16, 0))  # Friday 16:00 AEST = 06:00Z
    assert lead.first_touch_due_at == local(2026, 10, 6, 10, 0)  # Tuesday 10:00 AEDT
    assert lead.first_touch_due_at.astimezone(SYDNEY).utcoffset() == timedelta(hours=11)
    assert policy.calendar.elapsed(lead.received_at, lead.first_touch_due_at) == 120


def test_the_post_turns_near_when_the_first_reminder_comes(policy: Policy) -> None:
    """A hot lead in at 11:00 has until 12:00 to be claimed; the channel is reminded at 50%
    (11:30), and from that instant the post's clock shows it near its deadline, not before."""
    lead = new_lead(policy, local(2026, 11, 23, 11, 0))
    assert escalation.urgency(lead, policy, local(2026, 11, 23, 11, 29))[0] == "ok"
    level, window = escalation.urgency(lead, policy, local(2026, 11, 23, 11, 30))
    assert level == "near" and window is not None and window.ladder == "unclaimed"
    assert fired(escalation.plan(lead, policy, local(2026, 11, 23, 11, 30), set())) == [
        ("unclaimed", "remind_channel")
    ]


def test_a_snooze_holds_every_step_until_it_ends(policy: Policy) -> None:
    lead = replace(
        new_lead(policy, local(2026, 11, 23, 11, 0)), snoozed_until=local(2026, 11, 23, 13, 30)
    )
    during = escalation.plan(lead, policy, local(2026, 11, 23, 13, 5), set())
    assert during.fire == [] and during.next_at == local(2026, 11, 23, 13, 30)
    after = escalation.plan(lead, policy, local(2026, 11, 23, 13, 31), set())
    assert fired(after) == [("unclaimed", "reassign")]
    # The sweep comes back at the snooze's end itself (`next_at`): the steps fire then, or it
    # would be told to look again at that same instant, for ever.
    at_end = escalation.plan(lead, policy, local(2026, 11, 23, 13, 30), set())
    assert fired(at_end) == [("unclaimed", "reassign")]


def test_a_claimed_lead_runs_the_feedback_clock(policy: Policy) -> None:
    claimed_at = local(2026, 11, 23, 11, 10)
    due = policy.calendar.add(claimed_at, policy.disposition_deadline)
    lead = replace(
        new_lead(policy, local(2026, 11, 23, 11, 0)),
        stage=Stage.SAL,
        owner="U0REP1",
        claimed_at=claimed_at,
        first_touch_at=local(2026, 11, 23, 11, 20),
        disposition_due_at=due,
    )
    assert [w.ladder for w in escalation.windows(lead, policy)] == ["no_feedback"]
    assert feedback_check(policy, claimed_at, due) == due  # the first step is at 100%
    assert fired(escalation.plan(lead, policy, due, set())) == [("no_feedback", "remind_owner")]


def test_a_recycled_lead_comes_back_on_its_date(policy: Policy) -> None:
    back = local(2027, 1, 8, 11, 0)
    lead = replace(
        new_lead(policy, local(2026, 11, 23, 11, 0)), stage=Stage.RECYCLE, next_action_at=back
    )
    assert not escalation.plan(lead, policy, back - timedelta(minutes=1), set()).recycle
    assert escalation.plan(lead, policy, back, set()).recycle


@pytest.mark.parametrize("level_at", [(0, "ok"), (31, "near"), (61, "overdue")])
def test_urgency_turns_amber_then_red(policy: Policy, level_at: tuple[int, str]) -> None:
    minutes, level = level_at
    lead = new_lead(policy, local(2026, 11, 23, 11, 0))
    now = local(2026, 11, 23, 11, 0) + timedelta(minutes=minutes)
    assert escalation.urgency(lead, policy, now)[0] == level


def test_the_post_turns_overdue_only_once_its_deadline_has_passed(policy: Policy) -> None:
    """A hot lead in at 11:00 is due at 12:00: a claim at 12:00 itself is on time (the report
    and the managers' alerts count it so), so the post shows it near then, overdue just after."""
    lead = new_lead(policy, local(2026, 11, 23, 11, 0))
    due = local(2026, 11, 23, 12, 0)
    assert escalation.urgency(lead, policy, due)[0] == "near"
    assert escalation.urgency(lead, policy, due + timedelta(microseconds=1))[0] == "overdue"


def test_first_check_is_what_the_plan_says_from_the_start(policy: Policy) -> None:
    """`first_check` times only each ladder's first step: the same look as the whole plan at
    the lead's start (a step due by then: at once; else the earliest step; the claim window's
    end if sooner), for every tier, any hour of a week, claimed or not, a zone of its own."""

    def planned(lead: LeadView) -> datetime | None:
        start = lead.cycle_started_at or lead.received_at
        whole = escalation.plan(lead, policy, start, set())
        step = start if whole.fire or whole.skip else whole.next_at
        window = lead.claim_opens_at if lead.owner is None else None
        return min(filter(None, (step, window)), default=None)

    monday = local(2026, 11, 23, 0, 0)
    for tier in policy.tiers:
        for hour in range(0, 7 * 24, 5):
            arrived = monday + timedelta(hours=hour, minutes=hour % 60)
            lead = new_lead(policy, arrived, tier.name)
            claimed = replace(
                lead,
                stage=Stage.SAL,
                owner="U0REP1",
                owner_zone="Europe/London",
                claimed_at=arrived,
                disposition_due_at=arrived + timedelta(days=1),
                final_due_at=arrived + timedelta(days=9),
            )
            opens = replace(lead, claim_opens_at=arrived + timedelta(minutes=7))
            for each in (lead, claimed, opens):
                assert escalation.first_check(each, policy) == planned(each)
