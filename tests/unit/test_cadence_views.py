"""The cadence as people see it: the next touch on a lead's message and in App Home, the thread
reminder, and `follow_up.channels` in the SLA file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.cadence import TOUCH_LADDER, interval
from bot.domain.lead import Stage, check_attempts
from bot.domain.policy import Policy, PolicyError, parse_policy, snapshot
from bot.domain.refusal import Refusal
from bot.services.sweep import decide
from bot.slack.alert_views import touch_reminder
from bot.slack.home import owned_card
from bot.slack.lead_views import lead_card, lead_message, next_touch_line
from bot.slack.sla_view import sla_summary
from tests.unit.test_render import BEFORE_DUE, OWNER, all_text, assert_valid_message, view

NEXT = datetime(2026, 11, 24, 5, 35, tzinfo=UTC)  # Tue 24 Nov 16:35 AEDT


def test_a_claimed_lead_shows_its_next_touch_and_its_number(policy: Policy) -> None:
    lead = view(Stage.SAL, attempts=3, touches_counted=3, next_touch_due_at=NEXT)
    message = lead_message(lead, policy, BEFORE_DUE)
    assert_valid_message(message)
    text = all_text(message)
    assert "Next touch due <!date^1795498500^" in text and "|Tue 24 Nov 16:35 AEDT>" in text
    assert "attempt 4 of 6" in text
    assert "Attempts 3/6 (standard: within 2 weeks)" in text


def test_a_lead_stored_when_close_attempts_did_not_count_reads_by_its_attempts(
    policy: Policy,
) -> None:
    # Stored under the old span rule (an attempt counted only 28 h after the last one that
    # counted): 3 attempts, 2 counted. Every attempt counts now (seed 002), so the lead reads
    # 3 of 6 on its message and App Home, with nothing about attempts "too soon".
    lead = view(Stage.SAL, attempts=3, touches_counted=2, next_touch_due_at=NEXT)
    text = all_text(lead_message(lead, policy, BEFORE_DUE))
    assert "Attempts 3/6 (standard: within 2 weeks)" in text and "attempt 4 of 6" in text
    assert "counted" not in text and "too soon" not in text
    assert "Attempts 3/6" in str(owned_card(lead, policy, BEFORE_DUE))
    # Six attempts of which one counted then: the standard is met now, as the reports count it,
    # unless the standard asks for channels (only its next attempt tells them).
    six = view(Stage.SAL, attempts=6, touches_counted=1, next_touch_due_at=NEXT)
    assert next_touch_line(six, policy, BEFORE_DUE).startswith("✅ Follow-up standard met")
    varied = with_follow_up(policy, min_attempts=6, within="2w", channels=2)
    assert next_touch_line(six, varied, BEFORE_DUE).endswith("(2 channels needed)")
    unable = next(code for code in policy.dispositions if code.requires_attempts)
    check_attempts(six, policy, unable)  # Unable to contact agrees: no refusal
    with pytest.raises(Refusal, match="needs attempts on 2 different channels first"):
        check_attempts(six, varied, unable)


def test_a_late_touch_shows_red(policy: Policy) -> None:
    lead = view(Stage.SAL, attempts=1, touches_counted=1, next_touch_due_at=NEXT)
    late = next_touch_line(lead, policy, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    assert late.startswith("🔴 Next touch was due <!date^") and "attempt 2 of 6" in late


def test_no_next_touch_once_met_or_closed(policy: Policy) -> None:
    met = view(Stage.SAL, attempts=6, touches_counted=6, follow_up_met_at=NEXT)
    met_line = next_touch_line(met, policy, BEFORE_DUE)
    assert met_line == "✅ Follow-up standard met (6 within 2 weeks)"
    assert "Next touch" not in all_text(lead_message(met, policy, BEFORE_DUE))
    for stage in (Stage.MQL, Stage.SQL, Stage.RECYCLE, Stage.NURTURE, Stage.REJECT):
        closed = view(stage, touches_counted=2, next_touch_due_at=NEXT)
        assert next_touch_line(closed, policy, BEFORE_DUE) == ""
        assert "Next touch" not in all_text(lead_message(closed, policy, BEFORE_DUE))


def test_app_home_shows_the_owners_next_touch(policy: Policy) -> None:
    lead = view(Stage.SAL, attempts=1, touches_counted=1, next_touch_due_at=NEXT)
    text = str(owned_card(lead, policy, BEFORE_DUE))
    assert "Next touch due" in text and "attempt 2 of 6" in text


def with_follow_up(policy: Policy, **follow_up: object) -> Policy:
    data = snapshot(policy)
    data["follow_up"] = follow_up
    return parse_policy(data)


def test_the_reminder_names_the_owner_and_the_touch(policy: Policy) -> None:
    lead = view(Stage.SAL, touches_counted=2, next_touch_due_at=NEXT)
    text = touch_reminder(lead, 3, NEXT, policy)
    assert text.startswith(f"⏰ <@{OWNER}>, touch 3 of 6 was due <!date^1795498500^")
    assert "(the SLA asks for 6 attempts within" in text
    varied = with_follow_up(policy, min_attempts=2, within="4d", channels=2)
    assert "a touch on another channel (2 channels needed)" in touch_reminder(lead, 3, NEXT, varied)


def test_channel_variety_asks_for_another_channel(policy: Policy) -> None:
    varied = with_follow_up(policy, min_attempts=2, within="4d", channels=2)
    lead = view(Stage.SAL, attempts=2, touches_counted=2, next_touch_due_at=NEXT)
    line = next_touch_line(lead, varied, BEFORE_DUE)
    assert "an attempt on another channel (2 channels needed)" in line
    met = view(Stage.SAL, attempts=3, touches_counted=3, follow_up_met_at=NEXT)
    assert "on 2+ channels" in next_touch_line(met, varied, BEFORE_DUE)


@pytest.mark.parametrize(
    ("follow_up", "problem"),
    [
        (
            {"min_attempts": 1, "within": "1d", "channels": 2},
            "follow_up.channels: 2 channels need at least 2 attempts, but min_attempts is 1: "
            "lower channels or raise min_attempts",
        ),
        (
            {"min_attempts": 6, "within": "10d", "channels": 4},
            "follow_up.channels: input should be less than or equal to 3",
        ),
    ],
)
def test_handoff_check_names_a_channel_variety_that_cannot_be_met(
    policy: Policy, follow_up: dict[str, object], problem: str
) -> None:
    with pytest.raises(PolicyError) as error:
        with_follow_up(policy, **follow_up)
    assert error.value.problems == [problem]


def test_sla_shows_the_cadence(policy: Policy) -> None:
    varied = with_follow_up(policy, min_attempts=6, within="10 business days", channels=2)
    text = str(sla_summary(varied).blocks)
    step = interval(varied.follow_up, varied.calendar)
    assert step.total_minutes(480) == 800  # 10 working days of 8 hours ÷ 6
    assert f" on 2+ channels, a touch every {step}" in text


def test_the_lead_card_shows_the_next_touch(policy: Policy) -> None:
    lead = view(Stage.SAL, attempts=1, touches_counted=1, next_touch_due_at=NEXT)
    card = lead_card(lead, [], policy, BEFORE_DUE)
    assert_valid_message(card)
    assert "Next touch due" in all_text(card) and "attempt 2 of 6" in all_text(card)


def test_the_sweep_reminds_no_touch_to_a_lead_that_met_the_standard_under_the_old_rule(
    policy: Policy,
) -> None:
    # Stored under the old span rule: six attempts, one counted, its next touch kept. Every
    # attempt counts now: its post reads "standard met", and the sweep reminds nobody of a
    # seventh touch ("a touch on another channel (None channels needed)").
    six = view(
        Stage.SAL,
        attempts=6,
        touches_counted=1,
        next_touch_due_at=NEXT,
        first_touch_at=NEXT - timedelta(days=3),
    )
    later = NEXT + timedelta(hours=1)
    assert next_touch_line(six, policy, later).startswith("✅ Follow-up standard met")
    change = decide(six, set(), lambda *_: None, {six.sla_version: policy}, later)
    assert change is not None
    assert [name for name, _ in change.events if name == "touch_due"] == []
    assert all(ladder != TOUCH_LADDER for ladder, _, _ in change.fired)
    # Short of the standard, the reminder still comes: attempt 4 of 6.
    three = replace(six, attempts=3)
    change = decide(three, set(), lambda *_: None, {three.sla_version: policy}, later)
    assert change is not None and (TOUCH_LADDER, 4, "remind_owner") in change.fired
