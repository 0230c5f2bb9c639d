"""What the escalation sweep says, in words people read: the post's why line once the SLA
reassigned a lead, and the follow-up standard in a touch reminder."""

from __future__ import annotations

from typing import Any

from bot.domain.lead import Stage
from bot.domain.policy import Policy
from bot.slack.alert_views import (
    away_offer_alert,
    away_offer_note,
    claimed_alert,
    touch_reminder,
)
from bot.slack.route_views import why_line
from tests.unit.test_render import view

NEXT = view().received_at


def reassigned(**reason: Any) -> str | None:
    return why_line(view(suggested_owner="U0REP2", route_reason=reason))


ROUND = {"rule": "round_robin", "rep": "U0REP2", "week": 3, "week_total": 4, "weight": 1}


def test_a_lead_the_sla_reassigned_says_so_before_the_rotations_turn() -> None:
    taken = {"reassigned": "unclaimed", "from": "U0REP6"}
    assert reassigned(**ROUND, **taken) == (
        "Reassigned by the SLA from <@U0REP6> (claim overdue) · Round robin: <@U0REP2>, "
        "3 of 4 this week"
    )
    assert reassigned(**ROUND, reassigned="no_touch") == (
        "Reassigned by the SLA (first touch overdue) · Round robin: <@U0REP2>, 3 of 4 this week"
    )
    fallback = {"rule": "fallback", "rep": "U0MGR1", "why": "nobody available (all away)"}
    assert reassigned(**fallback, **taken) == (
        "Reassigned by the SLA from <@U0REP6> (claim overdue) · Fallback: nobody available "
        "(all away) → <@U0MGR1>"
    )
    assert reassigned(**ROUND, reassigned="a_future_ladder") == (
        "Reassigned by the SLA (a deadline overdue) · Round robin: <@U0REP2>, 3 of 4 this week"
    )


def test_a_reps_weight_shows_only_when_it_is_not_the_default() -> None:
    assert reassigned(**ROUND) == "Round robin: <@U0REP2>, 3 of 4 this week"
    assert reassigned(**(ROUND | {"weight": 2})) == (
        "Round robin: <@U0REP2>, 3 of 4 this week, weight 2"
    )


def test_hostile_names_in_a_reason_stay_text() -> None:
    line = reassigned(**ROUND, reassigned="unclaimed", **{"from": "<!channel> & co"})
    assert line is not None and "<!channel>" not in line
    assert line.startswith("Reassigned by the SLA from &lt;!channel&gt; &amp; co (claim overdue)")


def test_a_settled_alert_says_whom_a_claim_took_the_lead_from(policy: Policy) -> None:
    """The managers were alerted about the suggested rep's lead: a claim by someone else says
    so, as its `claimed` event's `from` does (the first touch's miss stays that rep's,
    docs/reports.md "By rep")."""
    lead = view(Stage.SAL, owner="U0REP3", suggested_owner="U0REP2")
    assert claimed_alert(lead, "U0REP3", policy, NEXT).startswith(
        "✅ Claimed by <@U0REP3> (suggested to <@U0REP2>) at "
    )
    nobody = view(Stage.SAL, owner="U0REP3", suggested_owner=None)
    assert claimed_alert(nobody, "U0REP3", policy, NEXT).startswith(
        "✅ Claimed by <@U0REP3> (suggested to nobody) at "
    )
    own = view(Stage.SAL, owner="U0REP2", suggested_owner="U0REP2")
    assert claimed_alert(own, "U0REP2", policy, NEXT).startswith("✅ Claimed by <@U0REP2> at ")


def test_an_away_owners_lead_names_its_pool_as_its_post_does(policy: Policy) -> None:
    lead = view(Stage.SAL, segment="mid_market")
    note = away_offer_note(lead, "U0REP3", "U0REP4", policy, NEXT)
    assert "back with the mid market pool (suggested: <@U0REP4>)" in note
    alert = away_offer_alert(lead, "U0REP3", policy, NEXT)
    assert "the mid market pool has nobody available" in alert
    assert "mid_market" not in note + alert


def test_the_managers_hear_why_nobody_in_the_pool_could_take_an_away_reps_lead(
    policy: Policy,
) -> None:
    """The alert says the turn's reason, as the post's why line does: not "everyone else is
    away" when the others are at their caps or already had the lead this cycle."""
    for why in (
        "nobody available (all at cap)",
        "nobody available (all away)",
        "nobody available (everyone else in the pool already had it)",
        "nobody available (all at the open-leads cap or away)",
    ):
        reason = {"rule": "offered", "from": "U0REP3", "why": why}
        lead = view(Stage.MQL, owner=None, suggested_owner=None, route_reason=reason)
        alert = away_offer_alert(lead, "U0REP3", policy, NEXT)
        assert f"<@U0REP3> is away and the enterprise pool has {why}." in alert, alert
        assert "so is everyone else" not in alert
    unsaid = view(Stage.MQL, owner=None, suggested_owner=None, route_reason=None)
    alert = away_offer_alert(unsaid, "U0REP3", policy, NEXT)
    assert "<@U0REP3> is away and the enterprise pool has nobody available." in alert


def test_the_touch_reminder_says_the_standards_window_in_words(policy: Policy) -> None:
    lead = view(Stage.SAL, touches_counted=2, next_touch_due_at=NEXT)
    text = touch_reminder(lead, 3, NEXT, policy)
    assert "(the SLA asks for 6 attempts within 2 weeks)." in text
    assert "2w" not in text
