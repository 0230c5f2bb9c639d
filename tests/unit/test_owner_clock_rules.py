"""`clock: owner`: a claimed lead's clocks run on its owner's working hours in their zone."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain import escalation
from bot.domain.escalation import feedback_deadline
from bot.domain.info import resumed
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.slack import alert_views, lead_views

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 11:00 in Sydney, 00:00 in London


def with_clock(policy: Policy, clock: str, deadline: str = "2 business hours") -> Policy:
    data = snapshot(policy)
    data["clock"] = clock
    data["disposition_deadline"] = deadline
    return parse_policy(data)


def test_the_team_clock_ignores_the_owner_zone(policy: Policy) -> None:
    team = with_clock(policy, "team")
    assert team.calendar_for("Europe/London") is team.calendar
    due, _ = feedback_deadline(team, MONDAY, "Europe/London")
    assert due == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 13:00 in Sydney


def test_the_owner_clock_runs_on_the_owners_working_hours(policy: Policy) -> None:
    owner = with_clock(policy, "owner")
    london = owner.calendar_for("Europe/London")
    assert str(london.zone) == "Europe/London"
    due, check = feedback_deadline(owner, MONDAY, "Europe/London")
    # Claimed at midnight in London: the 2 working hours are 09:00–11:00 London time.
    assert due == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert check == due  # the example's no_feedback ladder starts at 100%
    # The team's holidays and closed dates still hold: Christmas Eve is closed for everyone.
    assert not london.is_working_day(datetime(2026, 12, 24).date())


def test_an_owner_without_a_known_zone_keeps_the_team_clock(policy: Policy) -> None:
    owner = with_clock(policy, "owner")
    assert owner.calendar_for(None) is owner.calendar
    assert owner.calendar_for("Mars/Olympus_Mons") is owner.calendar
    assert feedback_deadline(owner, MONDAY, None)[0] == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_the_owners_reminder_counts_in_their_working_hours(policy: Policy) -> None:
    owner = with_clock(policy, "owner", deadline="72 business hours")
    lead = LeadView(
        id=7,
        external_id="x-7",
        email="a@b.example",
        name="Priya",
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=88,
        sla_version=owner.version,
        received_at=MONDAY,
        stage=Stage.SAL,
        owner="U0REP1",
        owner_zone="America/New_York",
        claimed_at=MONDAY,
        disposition_due_at=datetime(2026, 11, 23, 20, 0, tzinfo=UTC),  # Mon 15:00 in New York
    )
    window = next(w for w in escalation.windows(lead, owner) if w.ladder == "no_feedback")
    at_noon_new_york = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 04:00 Tue in Sydney: closed
    text = alert_views.owner_reminder(lead, window, owner, at_noon_new_york)
    # New York's 12:00 → 15:00; Sydney is shut at that instant
    assert "due in 3h of business time" in text
    team = with_clock(policy, "team", deadline="72 business hours")
    assert "due in 3h" not in alert_views.owner_reminder(lead, window, team, at_noon_new_york)


def test_a_calendar_deadline_is_the_same_on_every_owner_s_clock(policy: Policy) -> None:
    """`72h` is elapsed time: where the owner works changes nothing."""
    owner = with_clock(policy, "owner", deadline="72h")
    london, _ = feedback_deadline(owner, MONDAY, "Europe/London")
    sydney, _ = feedback_deadline(owner, MONDAY, None)
    assert london == sydney == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def test_the_claim_and_first_touch_spans_count_on_the_team_clock(policy: Policy) -> None:
    """A Sydney lead a London rep claims and calls in the Sydney morning (their night): the
    spans are on the clocks of their deadlines, the team's, not 0m of the owner's hours."""
    owner = with_clock(policy, "owner")
    lead = LeadView(
        id=7,
        external_id="x-7",
        email="a@b.example",
        name="Priya",
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=88,
        sla_version=owner.version,
        received_at=MONDAY,
        posted_at=MONDAY,
        stage=Stage.SAL,
        owner="U0REP1",
        owner_zone="Europe/London",
        claimed_at=datetime(2026, 11, 23, 0, 40, tzinfo=UTC),  # 11:40 in Sydney
        first_touch_due_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),  # 13:00 in Sydney
        first_touch_at=datetime(2026, 11, 23, 1, 30, tzinfo=UTC),  # 12:30 in Sydney
        disposition_due_at=datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
    )
    line = lead_views.clock_line(lead, owner, datetime(2026, 11, 23, 1, 45, tzinfo=UTC))
    assert "Claimed by <@U0REP1> after 40m of business time" in line
    assert "first touch after 1h 30m of business time ✅" in line


def test_an_answer_gives_the_first_touch_its_time_left_on_the_team_clock(policy: Policy) -> None:
    """Asked Mon 11:30 in Sydney with the first touch due 13:00 (1h 30m of the team's working
    time left), answered Tue 10:00: due Tue 11:30, whatever the owner's zone (regression: on a
    London owner's hours the Sydney morning was no time at all, so it fell due at the answer)."""
    owner = with_clock(policy, "owner")
    asked = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # Mon 11:30 in Sydney
    lead = LeadView(
        id=7,
        external_id="x-7",
        email="a@b.example",
        name="Priya",
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=88,
        sla_version=owner.version,
        received_at=MONDAY,
        stage=Stage.SAL,
        owner="U0REP1",
        owner_zone="Europe/London",
        claimed_at=MONDAY,
        first_touch_due_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),  # 13:00 in Sydney
        info_question="Budget?",
        info_asked_at=asked,
        info_asked_by="U0REP1",
    )
    back = resumed(lead, owner, datetime(2026, 11, 23, 23, 0, tzinfo=UTC))  # Tue 10:00 Sydney
    assert back.first_touch_due_at == datetime(2026, 11, 24, 0, 30, tzinfo=UTC)  # Tue 11:30
