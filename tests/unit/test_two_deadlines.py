"""Clocks that say which clock, and feedback and the final outcome as two deadlines: the SLA
file's checks, and the windows and escalation shares on each clock (hand-computed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.domain import escalation
from bot.domain.durations import Clock
from bot.domain.escalation import claim_deadline, claim_deadlines
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, PolicyError, parse_policy, policy_from_snapshot, snapshot

ROOT = Path(__file__).resolve().parents[2]
SYDNEY = ZoneInfo("Australia/Sydney")


def example() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "sla.yaml").read_text(encoding="utf-8"))


def problems(change: Any) -> list[str]:
    data = example()
    change(data)
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    return caught.value.problems


def sydney(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SYDNEY)  # type: ignore[misc]


# --- `handoff check`: contradictions, each naming both paths and the fix ----------------------


def test_a_final_deadline_before_the_cadence_ends_is_refused() -> None:
    found = problems(lambda d: d.update(final_disposition_deadline="3d"))
    assert found == [
        "final_disposition_deadline: 72h ends before follow_up.within (2w): a rep following "
        "the cadence could not finish it before the final disposition is due; make it at least "
        "2w, or leave it out (it defaults to the cadence's end)"
    ]


def test_a_feedback_deadline_longer_than_the_final_one_is_refused() -> None:
    found = problems(lambda d: d.update(disposition_deadline="3w"))
    assert found == [
        "disposition_deadline: 3w (the first feedback) ends after the final disposition "
        "deadline (2w, follow_up.within, the cadence's end): the feedback deadline must be the "
        "shorter one; shorten it, or lengthen the other"
    ]


def test_deadlines_on_different_clocks_are_compared_where_they_end() -> None:
    """10 business days (two working weeks) can end after 2 calendar weeks when a holiday or
    shutdown falls in them; 9 business days never do."""
    data = example()
    data["follow_up"]["within"] = "9 business days"
    data["final_disposition_deadline"] = "2w"
    assert parse_policy(data).final_deadline.clock is Clock.CALENDAR
    data["follow_up"]["within"] = "11 business days"
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    assert caught.value.problems[0].startswith(
        "final_disposition_deadline: 2w ends before follow_up.within (11 business days)"
    )


def test_a_first_touch_after_the_final_deadline_is_refused() -> None:
    def change(data: dict[str, Any]) -> None:
        data["follow_up"]["within"] = "3d"  # 2 business hours fit (Friday 16:59 → Monday 10:59)
        data["disposition_deadline"] = "12h"
        data["tiers"][1]["first_touch"] = "2 business days"

    assert problems(change) == [
        "tiers[1].first_touch: 2 business days ends after the final disposition deadline "
        "(72h): the cadence starts with the first touch and must fit before the final "
        "disposition; shorten first_touch, or lengthen follow_up.within"
    ]


def test_unable_to_contact_before_the_minimum_attempts_is_refused() -> None:
    found = problems(lambda d: d["dispositions"][5].update(requires_attempts=False))
    assert found == [
        "dispositions[5].requires_attempts: 'Unable to contact' (recycle) could be picked "
        "before follow_up.min_attempts (6) attempts; set requires_attempts: true (the default "
        "for a recycle outcome)"
    ]


def test_a_recycle_outcome_needs_the_attempts_by_default() -> None:
    data = example()
    del data["dispositions"][5]["requires_attempts"]
    assert parse_policy(data).dispositions[5].requires_attempts


def test_a_stored_version_with_an_early_unable_to_contact_still_loads(policy: Policy) -> None:
    """A lead keeps the SLA it arrived under, even where today's checks are stricter."""
    content = snapshot(policy)
    content["dispositions"][5]["requires_attempts"] = False
    assert not policy_from_snapshot(content, "0123456789ab").dispositions[5].requires_attempts


def test_progressing_takes_no_reason_and_no_attempts() -> None:
    found = problems(lambda d: d["dispositions"][6].update(requires_attempts=True))
    assert found == [
        "dispositions[6]: 'Contacted – progressing' (progressing) is feedback on an open lead: "
        "it takes no reason_required and no requires_attempts"
    ]


@pytest.mark.parametrize(
    ("value", "hint"),
    [(70, ": write 0.7 for 70%"), (1.5, ": write 0.015 for 1.5%"), (-0.1, "")],
)
def test_a_kpi_target_outside_0_to_100_percent_says_how_to_write_a_share(
    value: float, hint: str
) -> None:
    found = problems(lambda d: d["targets"].update(acceptance_rate=value))
    assert found == [
        f"targets.acceptance_rate: {value:g} is not a share between 0 and 1 (0.7 = 70%){hint}"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1mo", "there is no month unit (months differ in length): write weeks or days"),
        ("2 fortnights", "'fortnights' is not a unit of time: write calendar time: 30m, 24h"),
        ("1bd 2h", "mixes calendar and business time"),
        (72, "has no unit: write a duration with its clock, like 72h (calendar hours) or 72 "),
    ],
)
def test_a_bad_duration_names_its_path_and_the_forms(value: Any, message: str) -> None:
    found = problems(lambda d: d.update(disposition_deadline=value))
    assert len(found) == 1 and found[0].startswith("disposition_deadline: ")
    assert message in found[0]


# --- the windows and their escalation shares, each on its own clock -------------------------


def claimed_lead(policy: Policy, at: datetime, **changes: Any) -> LeadView:
    deadlines = claim_deadlines(policy, at, None)
    lead = LeadView(
        id=7,
        external_id="x-7",
        email="a@b.example",
        stage=Stage.SAL,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=88,
        sla_version=policy.version,
        received_at=at - timedelta(minutes=20),
        cycle_started_at=at - timedelta(minutes=20),
        owner="U0REP1",
        claimed_at=at,
        first_touch_at=at,
        disposition_due_at=deadlines.feedback,
        final_due_at=deadlines.final,
    )
    return replace(lead, **changes)


def test_a_claim_on_friday_afternoon_owes_feedback_72_hours_later_and_the_outcome_in_2_weeks(
    policy: Policy,
) -> None:
    friday = sydney(2026, 11, 20, 16)
    deadlines = claim_deadlines(policy, friday, None)
    assert deadlines.feedback == sydney(2026, 11, 23, 16)  # Monday 16:00: 72 elapsed hours
    assert deadlines.final == sydney(2026, 12, 4, 16)  # two weeks on
    assert deadlines.check == deadlines.feedback  # the no_feedback ladder starts at 100%


def test_escalation_shares_are_shares_of_the_window_in_its_clock(policy: Policy) -> None:
    friday = sydney(2026, 11, 20, 16)
    lead = claimed_lead(policy, friday)
    by_ladder = {window.ladder: window for window in escalation.windows(lead, policy)}
    assert set(by_ladder) == {"no_feedback", "no_outcome"}
    feedback, outcome = by_ladder["no_feedback"], by_ladder["no_outcome"]
    assert (feedback.clock, outcome.clock) == (Clock.CALENDAR, Clock.CALENDAR)
    steps = policy.escalation.ladder("no_feedback")
    # 150% of 72 hours is 108 hours, weekend and night included: Wednesday 04:00, a time
    # nobody should be messaged, so the step waits for the working day (09:00).
    assert escalation.step_times(feedback, steps, policy.calendar) == [
        sydney(2026, 11, 23, 16),
        sydney(2026, 11, 25, 9),
    ]
    # 150% of two weeks is three weeks.
    assert escalation.step_times(outcome, steps, policy.calendar)[1] == sydney(2026, 12, 11, 16)


def test_a_question_asked_at_the_deadline_itself_delays_the_managers_alert(
    policy: Policy,
) -> None:
    """Claimed Friday 16:00: the feedback is due Monday 16:00 and the managers hear at 150%
    (Wednesday 04:00, so 09:00). A question to marketing asked at Monday 16:00 exactly, the
    deadline's own instant, and answered a day later pauses the clock like one asked a minute
    after it: the alert comes a day later (Thursday 09:00). The deadline stays missed."""
    friday = sydney(2026, 11, 20, 16)
    asked, answered = sydney(2026, 11, 23, 16), sydney(2026, 11, 24, 16)
    lead = claimed_lead(policy, friday, info_pauses=((asked, answered),))
    (feedback,) = [w for w in escalation.windows(lead, policy) if w.ladder == "no_feedback"]
    assert feedback.due == asked
    steps = policy.escalation.ladder("no_feedback")
    assert escalation.step_times(feedback, steps, policy.calendar) == [
        sydney(2026, 11, 23, 16),  # the deadline: passed when the question came, as it was
        sydney(2026, 11, 26, 9),
    ]


@pytest.mark.parametrize("clock", [Clock.CALENDAR, Clock.BUSINESS])
def test_a_step_s_share_rounds_to_the_nearest_minute(policy: Policy, clock: Clock) -> None:
    """The first-touch reminder at 75% of a 5-minute window (Monday 10:00 to 10:05, working
    time on either clock) is 3.75 minutes in: it comes at 10:04, the nearest whole minute, not
    truncated to 10:03; the managers hear at 10:05 and the reassignment at 200%, 10:10."""
    start = sydney(2026, 11, 23, 10)
    window = escalation.Window("no_touch", start, start + timedelta(minutes=5), clock)
    steps = policy.escalation.ladder("no_touch")
    assert escalation.step_times(window, steps, policy.calendar) == [
        sydney(2026, 11, 23, 10, 4),
        sydney(2026, 11, 23, 10, 5),
        sydney(2026, 11, 23, 10, 10),
    ]


def test_a_business_window_s_share_is_working_time(policy: Policy) -> None:
    """The hot tier's claim window is half of 2 business hours: from Friday 16:30 its 50%
    reminder is 30 working minutes on (Friday 17:00), its deadline Monday 09:30, 150% at 10:00."""
    arrived = sydney(2026, 11, 20, 16, 30)
    tier = policy.tier("hot")
    due = claim_deadline(policy, tier, arrived)
    assert due == sydney(2026, 11, 23, 9, 30)
    window = escalation.Window("unclaimed", arrived, due, Clock.BUSINESS)
    steps = policy.escalation.ladder("unclaimed")
    times = escalation.step_times(window, steps, policy.calendar)
    assert times == [
        sydney(2026, 11, 20, 17),
        sydney(2026, 11, 23, 9, 30),
        sydney(2026, 11, 23, 10),
    ]


def test_a_calendar_first_touch_halves_in_elapsed_time(policy: Policy) -> None:
    data = snapshot(policy)
    data["tiers"][0]["first_touch"] = "2h"
    calendar_sla = parse_policy(data)
    friday = sydney(2026, 11, 20, 16, 30)
    assert claim_deadline(calendar_sla, calendar_sla.tier("hot"), friday) == sydney(
        2026, 11, 20, 17, 30
    )


@pytest.mark.parametrize("first_touch", ["1m", "1 business minute"])
def test_a_one_minute_first_touch_still_gives_a_minute_to_claim(first_touch: str) -> None:
    """The claim window is half the first touch in whole minutes, at least one (sla.yaml's
    `escalation` comment): half of one minute is not zero, so a lead is never due to be
    claimed at the instant it arrives."""
    data = example()
    data["tiers"][0]["first_touch"] = first_touch
    tight = parse_policy(data)
    arrived = sydney(2026, 11, 23, 10)
    assert escalation.claim_span(tight, tight.tier("hot")).minutes == 1
    assert claim_deadline(tight, tight.tier("hot"), arrived) == sydney(2026, 11, 23, 10, 1)


def test_the_first_feedback_stops_the_feedback_clock_not_the_final_one(policy: Policy) -> None:
    friday = sydney(2026, 11, 20, 16)
    lead = claimed_lead(policy, friday, feedback_at=friday + timedelta(hours=5))
    assert [window.ladder for window in escalation.windows(lead, policy)] == ["no_outcome"]
    # A week on, nothing is due; the owner hears at the cadence's end, the managers at 150%.
    week = escalation.plan(lead, policy, friday + timedelta(days=7), set())
    assert week.fire == [] and week.next_at == sydney(2026, 12, 4, 16)
    end = escalation.plan(lead, policy, sydney(2026, 12, 4, 16), set())
    assert [(due.ladder, due.step.do) for due in end.fire] == [("no_outcome", "remind_owner")]
    assert end.next_at == sydney(2026, 12, 11, 16)


def test_a_lead_claimed_before_the_two_deadlines_runs_one_clock(policy: Policy) -> None:
    """Stored before migration 0011: no final deadline; its feedback clock is its only one."""
    friday = sydney(2026, 11, 20, 16)
    lead = claimed_lead(policy, friday, final_due_at=None)
    assert [window.ladder for window in escalation.windows(lead, policy)] == ["no_feedback"]


def test_the_reminder_says_the_clock_of_its_deadline(policy: Policy) -> None:
    from bot.slack import alert_views

    friday = sydney(2026, 11, 20, 16)
    lead = claimed_lead(policy, friday, feedback_at=friday)
    window = escalation.windows(lead, policy)[0]
    text = alert_views.owner_reminder(lead, window, policy, sydney(2026, 12, 4, 16))
    assert "final disposition due now" in text
    assert "SLA: 2 weeks after the claim" in text
    late = alert_views.owner_reminder(lead, window, policy, sydney(2026, 12, 7, 18, 30))
    assert "final disposition overdue by 3d 2h 30m" in late
    assert datetime(2026, 12, 4, 5, tzinfo=UTC) == window.due


def test_the_claim_reminder_names_the_tier_s_own_claim_window() -> None:
    """A tier with its own `claim: 30 business minutes` (sla.yaml's comment on `escalation`):
    the reminder of an unclaimed lead says that SLA, not the first touch's 2 business hours."""
    from bot.slack import alert_views

    data = example()
    data["tiers"][0]["claim"] = "30 business minutes"
    own = parse_policy(data)
    arrived = sydney(2026, 11, 23, 10)
    lead = replace(
        claimed_lead(own, arrived),
        stage=Stage.MQL,
        owner=None,
        claimed_at=None,
        first_touch_at=None,
        claim_due_at=claim_deadline(own, own.tier("hot"), arrived),
    )
    window = next(w for w in escalation.windows(lead, own) if w.ladder == "unclaimed")
    assert window.due == sydney(2026, 11, 23, 10, 30)
    assert alert_views.clock_words(lead, window, own) == ("SLA: 30 business minutes after arrival")


def test_a_step_due_on_a_weekend_waits_for_monday_and_the_deadline_stays(
    policy: Policy,
) -> None:
    """Claimed Thursday 11:00: the feedback is due Sunday 11:00 (72 calendar hours), but the
    rep's reminder is not sent on a Sunday: it waits for Monday 09:00."""
    thursday = sydney(2026, 11, 26, 11)
    lead = claimed_lead(policy, thursday)
    (feedback,) = [w for w in escalation.windows(lead, policy) if w.ladder == "no_feedback"]
    assert feedback.due == sydney(2026, 11, 29, 11)  # the deadline: Sunday
    steps = policy.escalation.ladder("no_feedback")
    assert escalation.step_times(feedback, steps, policy.calendar)[0] == sydney(2026, 11, 30, 9)
