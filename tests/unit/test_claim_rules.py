"""Claim windows (bot/domain/claim.py): who may claim an unclaimed lead now under its
segment's `claim` rule, when the window ends in business time, what the sweep does when it
ends, and what `handoff check` says of a window that makes no sense."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain import claim, escalation
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, PolicyError, parse_policy, snapshot
from bot.services.sweep import decide
from bot.slack.lead_views import claim_line, lead_message

MONDAY_11 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 11:00 in Sydney (AEDT, +11)
MONDAY_1655 = datetime(2026, 11, 23, 5, 55, tzinfo=UTC)
TUESDAY_0910 = datetime(2026, 11, 23, 22, 10, tzinfo=UTC)
OWNER, PEER, MANAGER = "U0REP1", "U0REP2", "U0MGR1"


def with_claim(policy: Policy, **segment: Any) -> Policy:
    data = snapshot(policy)
    data["segments"][0] |= segment
    return parse_policy(data)


@pytest.fixture
def assigned(policy: Policy) -> Policy:
    return with_claim(policy, claim="assigned", claim_window="15 business minutes")


def lead(opens: datetime | None, **fields: Any) -> LeadView:
    view = LeadView(
        id=7,
        external_id="hs-7",
        email="priya@northwind.example",
        stage=Stage.MQL,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=88,
        sla_version="v1",
        received_at=MONDAY_11,
        cycle_started_at=MONDAY_11,
        suggested_owner=OWNER,
        claim_opens_at=opens,
    )
    return replace(view, **fields)


# --- the window's end ---------------------------------------------------------------------------


def test_an_open_segment_has_no_window(policy: Policy) -> None:
    assert policy.segments[0].claim == "open"
    assert claim.opens_at(policy, "enterprise", MONDAY_11) is None
    assert claim.opens_at(policy, "no such segment", MONDAY_11) is None


def test_an_assigned_segment_holds_the_lead_for_its_window(assigned: Policy) -> None:
    assert claim.opens_at(assigned, "enterprise", MONDAY_11) == MONDAY_11 + timedelta(minutes=15)
    assert claim.opens_at(assigned, "smb", MONDAY_11) is None  # only the segment that says so


def test_a_business_window_runs_across_the_night(assigned: Policy) -> None:
    """16:55 on Monday: 5 minutes that day, the other 10 from 09:00 on Tuesday."""
    assert claim.opens_at(assigned, "enterprise", MONDAY_1655) == TUESDAY_0910


def test_a_calendar_window_counts_elapsed_time(policy: Policy) -> None:
    calendar = with_claim(policy, claim="assigned", claim_window="15m")
    assert claim.opens_at(calendar, "enterprise", MONDAY_1655) == MONDAY_1655 + timedelta(
        minutes=15
    )


# --- who may claim, inside and after the window ---------------------------------------------------


def test_inside_the_window_only_the_suggested_owner_and_managers_claim(assigned: Policy) -> None:
    held = lead(MONDAY_11 + timedelta(minutes=15))
    inside = MONDAY_11 + timedelta(minutes=14, seconds=59)
    assert claim.held_from(held, OWNER, assigned, inside) is None
    assert claim.held_from(held, MANAGER, assigned, inside) is None
    reservation = claim.held_from(held, PEER, assigned, inside)
    assert reservation == claim.Reservation(OWNER, MONDAY_11 + timedelta(minutes=15))


def test_after_the_window_anyone_in_the_pool_claims(assigned: Policy) -> None:
    held = lead(MONDAY_11 + timedelta(minutes=15))
    assert claim.held_from(held, PEER, assigned, MONDAY_11 + timedelta(minutes=15)) is None
    assert claim.reservation(held, MONDAY_11 + timedelta(minutes=15)) is None
    assert claim.opened(held, MONDAY_11 + timedelta(minutes=20)) == held.claim_opens_at


def test_a_claimed_closed_or_unsuggested_lead_is_held_for_nobody(assigned: Policy) -> None:
    opens = MONDAY_11 + timedelta(minutes=15)
    for free in (
        lead(opens, owner=OWNER, stage=Stage.SAL),
        lead(opens, stage=Stage.REJECT),
        lead(opens, suggested_owner=None),
        lead(None),
    ):
        assert claim.held_from(free, PEER, assigned, MONDAY_11) is None


@pytest.mark.parametrize(
    "fields",
    [{"owner": OWNER}, {"stage": Stage.REJECT}, {"owner": OWNER, "stage": Stage.SQL}],
    ids=["claimed", "closed", "both"],
)
def test_a_claimed_or_closed_lead_never_opens_to_the_pool(
    assigned: Policy, fields: dict[str, Any]
) -> None:
    """Its window's end passes with nothing said: the post has no claim line, and the sweep
    neither redraws it nor wakes for the window (a claimed or closed lead is nobody's to claim)."""
    opens = MONDAY_11 + timedelta(minutes=15)
    gone = lead(opens, **fields)
    for now in (MONDAY_11, opens, opens + timedelta(minutes=5)):
        assert claim.opened(gone, now) is None
        assert claim.window_end(gone, now, set()) == (False, None)
        assert claim_line(gone, assigned, now) == ""


# --- the sweep ----------------------------------------------------------------------------------


def test_the_sweep_wakes_at_the_windows_end_and_says_so_once(assigned: Policy) -> None:
    opens = MONDAY_11 + timedelta(minutes=15)
    held = lead(opens, claim_due_at=MONDAY_11 + timedelta(hours=1))
    assert escalation.first_check(held, assigned) == opens  # before the ladder's first step
    assert claim.window_end(held, MONDAY_11, set()) == (False, opens)
    assert claim.window_end(held, opens, set()) == (True, None)
    done = {(claim.OPEN_LADDER, claim.OPEN_STEP)}
    assert claim.window_end(held, opens, done) == (False, None)

    policies = {"v1": assigned}
    change = decide(held, set(), lambda *_: None, policies, opens)
    assert change is not None
    assert change.noted == [(claim.OPEN_LADDER, claim.OPEN_STEP, claim.OPEN_ACTION)]
    assert change.fired == []  # not an escalation: the reports do not count it
    assert change.events == [("claim_opened", {"reserved_for": OWNER})]
    assert change.next_action_at == MONDAY_11 + timedelta(minutes=30)  # the ladder's 50%
    again = decide(held, done, lambda *_: None, policies, opens)
    assert again is not None and again.noted == [] and again.effects == []


def test_a_window_held_for_nobody_ends_with_nothing_said(assigned: Policy) -> None:
    """Suggested to nobody, the lead was open all along: its window's end is fenced (so nothing
    says it later, when a rep is suggested), with no event and no redraw of the post."""
    opens = MONDAY_11 + timedelta(minutes=15)
    nobodys = lead(opens, suggested_owner=None, claim_due_at=MONDAY_11 + timedelta(hours=1))
    assert claim.held_for_nobody(nobodys)
    change = decide(nobodys, set(), lambda *_: None, {"v1": assigned}, opens)
    assert change is not None
    assert change.noted == [(claim.OPEN_LADDER, claim.OPEN_STEP, claim.OPEN_ACTION)]
    assert (change.events, change.effects) == ([], [])


def test_an_offer_ends_a_running_window_or_a_released_leads_window() -> None:
    opens = MONDAY_11 + timedelta(minutes=15)
    assert claim.opens_on_offer(lead(opens), MONDAY_11)  # still running: open now
    assert not claim.opens_on_offer(lead(opens), opens)  # over: it opened at its end
    assert claim.opens_on_offer(lead(opens, owner=OWNER, stage=Stage.SAL), opens)  # released
    assert not claim.opens_on_offer(lead(None), MONDAY_11)  # no window


# --- the post -------------------------------------------------------------------------------------


def test_the_post_says_whose_it_is_then_that_it_is_open(assigned: Policy) -> None:
    opens = MONDAY_11 + timedelta(minutes=15)
    held = lead(opens)
    line = claim_line(held, assigned, MONDAY_11)
    assert line.startswith(f"🔒 Reserved for <@{OWNER}> until <!date^{int(opens.timestamp())}^")
    message = lead_message(held, assigned, MONDAY_11)
    assert f"reserved for <@{OWNER}> until Mon 11:15 AEDT" in message.text
    assert claim_line(held, assigned, opens).startswith("🔓 Open to the pool since <!date^")
    assert claim_line(lead(None), assigned, MONDAY_11) == ""


def test_the_post_of_a_lead_held_for_nobody_says_it_is_open_with_no_time(
    assigned: Policy,
) -> None:
    opens = MONDAY_11 + timedelta(minutes=15)
    nobodys = lead(opens, suggested_owner=None)
    for now in (MONDAY_11, opens, opens + timedelta(hours=1)):
        assert claim_line(nobodys, assigned, now) == "🔓 Open to the pool: nobody to reserve it for"
        assert lead_message(nobodys, assigned, now).text.endswith(
            ", open to the pool (nobody to reserve it for)"
        )
        assert claim.opened(nobodys, now) is None


# --- handoff check --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "problem"),
    [
        (
            {"claim": "assigned"},
            "segments[0].claim_window: claim: assigned needs a claim_window",
        ),
        (
            {"claim": "assigned", "claim_window": "15"},
            "segments[0].claim_window: ",
        ),
        ({"claim": "first_come"}, "segments[0].claim: input should be 'open' or 'assigned'"),
        (
            {"claim": "assigned", "claim_window": "3h"},
            "segments[0].claim_window: 3h is longer than the hot tier's first_touch",
        ),
    ],
)
def test_handoff_check_names_a_bad_window_with_its_path(
    policy: Policy, segment: dict[str, Any], problem: str
) -> None:
    with pytest.raises(PolicyError) as error:
        with_claim(policy, **segment)
    assert any(line.startswith(problem) for line in error.value.problems), error.value.problems
