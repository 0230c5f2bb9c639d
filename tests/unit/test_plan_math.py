"""The revenue plan worked backwards by hand: goal parsing, the arithmetic per segment, where
each input came from, what is missing, and its Block Kit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.cli.plan_text import as_text
from bot.domain.plan import Funnel, Goal, History, build_plan, parse_goal, whole
from bot.domain.policy import Policy, PolicyError, parse_policy, snapshot
from bot.domain.refusal import Refusal
from bot.slack.plan_view import revenue_plan
from tests.unit.test_render import assert_no_live_markup, assert_valid_message

AS_OF = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
# 26 weeks of history, made so every rate is a round number:
#   enterprise: 40 of 200 MQLs became opportunities (20%), 10 won of 40 closed (25%),
#               500,000 won over 10 deals (50,000 each)
#   smb:        10 of 100 (10%), 5 won of 10 closed (50%), 100,000 over 5 deals (20,000)
#   mid_market: nothing measured: the team's rates apply (50 of 300 = 1/6, 15 of 50 = 30%,
#               600,000 over 15 deals = 40,000)
HISTORY = History(
    26,
    {
        "enterprise": Funnel(200, 40, 10, 30, 10, 500_000.0),
        "smb": Funnel(100, 10, 5, 5, 5, 100_000.0),
    },
)


def with_plan(policy: Policy, plan: dict[str, Any] | None) -> Policy:
    return parse_policy({**snapshot(policy), "plan": plan})


@pytest.fixture
def measured_only(policy: Policy) -> Policy:
    """The example SLA without its `plan:` block: only history counts."""
    return with_plan(policy, None)


# --- goals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "per"),
    [
        ("2000000", 2_000_000, "month"),
        ("2,000,000", 2_000_000, "month"),
        ("$2M", 2_000_000, "month"),
        ("500k", 500_000, "month"),
        ("1.5m", 1_500_000, "month"),
        ("2M per quarter", 2_000_000, "quarter"),
        ("$2M/quarter", 2_000_000, "quarter"),
        ("AUD 750k a month", 750_000, "month"),
        ("A$1.2m quarterly", 1_200_000, "quarter"),
        ("  3 MM per Month ", 3_000_000, "month"),
        ("1bn per quarter", 1_000_000_000, "quarter"),
    ],
)
def test_goals_people_type(text: str, amount: float, per: str) -> None:
    assert parse_goal(text) == Goal(amount, per)  # type: ignore[arg-type]


def test_the_period_given_apart_is_used_when_the_text_names_none() -> None:
    assert parse_goal("2M", "quarter") == Goal(2_000_000, "quarter")
    assert parse_goal("2M per month", "quarter") == Goal(2_000_000, "month")
    assert Goal(1, "month").weeks == 4.33 and Goal(1, "quarter").weeks == 13


@pytest.mark.parametrize(
    "text", ["abc", "2,00,000", "0", "-5", "2M per year", "1e6", "$", "2M quarter month", "k"]
)
def test_anything_else_is_refused_with_what_to_write(text: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_goal(text)
    assert "2,000,000, $2M, 500k or 1.5m" in refused.value.message


def test_an_empty_goal_gets_the_usage() -> None:
    with pytest.raises(Refusal) as refused:
        parse_goal("   ")
    assert refused.value.message.startswith("Usage: `/sla-plan <revenue goal> [per month|quarter]`")


def test_a_goal_over_a_trillion_is_refused() -> None:
    with pytest.raises(Refusal, match="at most 1 trillion"):
        parse_goal("2000bn")


def test_counts_are_rounded_up_but_not_past_float_noise() -> None:
    assert whole(22.0) == 22 and whole(22.000000001) == 22 and whole(22.1) == 23


# --- working backwards --------------------------------------------------------------------------


def test_measured_rates_per_segment_and_the_split_by_won_revenue(measured_only: Policy) -> None:
    plan = build_plan(Goal(1_200_000, "quarter"), HISTORY, measured_only)
    enterprise, mid_market, smb = plan.segments
    # Won revenue: enterprise 500,000 and smb 100,000 of 600,000; mid-market won nothing.
    assert plan.split_origin.startswith("each segment's share of the won revenue")
    assert (enterprise.share, mid_market.share, smb.share) == pytest.approx((5 / 6, 0, 1 / 6))
    # enterprise: 1,000,000 / 50,000 = 20 deals / 25% = 80 opportunities / 20% = 400 MQLs
    assert enterprise.revenue == pytest.approx(1_000_000)
    assert enterprise.average_deal.value == pytest.approx(50_000)
    assert enterprise.win_rate.value == pytest.approx(0.25)
    assert enterprise.opportunity_rate.value == pytest.approx(0.2)
    assert (enterprise.deals, enterprise.opportunities, enterprise.mqls) == pytest.approx(
        (20, 80, 400)
    )
    assert enterprise.mqls_per_week == pytest.approx(400 / 13)
    # smb: 200,000 / 20,000 = 10 deals / 50% = 20 opportunities / 10% = 200 MQLs
    assert (smb.deals, smb.opportunities, smb.mqls) == pytest.approx((10, 20, 200))
    assert (mid_market.deals, mid_market.opportunities, mid_market.mqls) == (0, 0, 0)
    totals = plan.totals
    assert totals is not None
    assert (totals.deals, totals.opportunities, totals.mqls) == pytest.approx((30, 100, 600))
    assert totals.mqls_per_week == pytest.approx(600 / 13)
    assert plan.missing == []
    # The measured pace and the SLA's weekly targets beside it.
    assert enterprise.mqls_now == pytest.approx(200 / 26) and enterprise.target == 10
    assert plan.mqls_now == pytest.approx(300 / 26)


def test_each_input_says_where_it_came_from(measured_only: Policy) -> None:
    plan = build_plan(Goal(1_200_000, "quarter"), HISTORY, measured_only)
    enterprise, mid_market, _ = plan.segments
    assert enterprise.win_rate.origin == "measured over 26 weeks: 10 won of 40 closed in enterprise"
    assert enterprise.average_deal.origin == (
        "measured over 26 weeks: mean of 10 won deals in enterprise"
    )
    assert enterprise.opportunity_rate.origin == (
        "measured over 26 weeks: 40 of 200 MQLs became opportunities in enterprise"
    )
    # Nothing measured in mid-market: the whole team's numbers, and it says so.
    assert mid_market.win_rate.value == pytest.approx(0.3)
    assert mid_market.win_rate.origin == (
        "measured over 26 weeks: 15 won of 50 closed across all segments"
    )
    assert mid_market.average_deal.value == pytest.approx(40_000)
    assert mid_market.opportunity_rate.value == pytest.approx(1 / 6)


def test_the_sla_file_splits_the_goal_and_history_still_wins(policy: Policy) -> None:
    # The example sla.yaml: split 60/30/10; win rate 25%, deals of 40,000, 15% MQL → opportunity.
    plan = build_plan(Goal(1_000_000, "month"), HISTORY, policy)
    enterprise, mid_market, smb = plan.segments
    assert plan.split_origin == "sla.yaml plan.revenue_split"
    assert plan.currency == "AUD"
    # enterprise: 600,000 / 50,000 (measured) = 12 deals / 25% = 48 / 20% = 240 MQLs
    assert (enterprise.deals, enterprise.opportunities, enterprise.mqls) == pytest.approx(
        (12, 48, 240)
    )
    assert enterprise.mqls_per_week == pytest.approx(240 / 4.33)
    # mid-market: 300,000 / 40,000 = 7.5 deals / 30% = 25 / (1/6) = 150 MQLs: the team's
    # measured rates come before the file's
    assert (mid_market.deals, mid_market.opportunities, mid_market.mqls) == pytest.approx(
        (7.5, 25, 150)
    )
    # smb: 100,000 / 20,000 = 5 deals / 50% = 10 / 10% = 100 MQLs
    assert (smb.deals, smb.opportunities, smb.mqls) == pytest.approx((5, 10, 100))


def test_without_history_the_sla_file_gives_the_rates(policy: Policy) -> None:
    plan = build_plan(Goal(2_000_000, "quarter"), History(26), policy)
    enterprise, mid_market, smb = plan.segments
    assert enterprise.win_rate.origin == "sla.yaml plan.win_rate"
    assert enterprise.average_deal.origin == "sla.yaml plan.average_deal"
    assert enterprise.opportunity_rate.origin == "sla.yaml plan.opportunity_rate"
    # 1,200,000 / 40,000 = 30 deals / 25% = 120 opportunities / 15% = 800 MQLs a quarter
    assert (enterprise.deals, enterprise.opportunities, enterprise.mqls) == pytest.approx(
        (30, 120, 800)
    )
    # smb: 200,000 / 40,000 = 5 / 25% = 20 / 15% = 133.3 MQLs: 134 when counted
    assert smb.mqls == pytest.approx(400 / 3) and whole(smb.mqls or 0) == 134
    totals = plan.totals
    assert totals is not None and whole(totals.mqls) == 1334
    assert mid_market.mqls_now == 0


def test_with_no_history_and_no_plan_it_says_what_is_missing(measured_only: Policy) -> None:
    plan = build_plan(Goal(1_500_000), History(26), measured_only)
    assert plan.split_origin.startswith("split equally")
    assert [segment.share for segment in plan.segments] == pytest.approx([1 / 3] * 3)
    assert plan.totals is None
    assert all(segment.mqls is None for segment in plan.segments)
    assert plan.missing == [
        'no won deal with an amount yet: send stage "won" with its "amount" to '
        "POST /leads/{external_id}/activity, or set plan.average_deal in sla.yaml",
        'no won deals recorded yet: send stage changes ("won", "lost") to '
        "POST /leads/{external_id}/activity, or set plan.win_rate in sla.yaml",
        'no opportunities recorded yet: send stage changes ("opportunity") to '
        "POST /leads/{external_id}/activity, or set plan.opportunity_rate in sla.yaml",
    ]
    assert "Not enough to work back from yet" in as_text(plan)


def test_a_chain_goes_as_far_as_its_inputs(policy: Policy) -> None:
    # Deals are known from the file's average deal; only lost deals and no opportunity rate.
    settings = {"average_deal": 50_000, "revenue_split": {"enterprise": 1.0}}
    lost_only = History(26, {"enterprise": Funnel(100, 0, 0, 4, 0, 0.0)})
    plan = build_plan(Goal(500_000), lost_only, with_plan(policy, settings))
    enterprise, mid_market, smb = plan.segments
    assert enterprise.deals == pytest.approx(10)
    assert enterprise.opportunities is None and enterprise.mqls is None
    assert enterprise.win_rate.missing is not None  # 0 won of 4 is no rate to divide by
    assert (mid_market.mqls, smb.mqls) == (0, 0)  # no share of the goal: nothing needed
    assert len(plan.missing) == 2 and "plan.win_rate" in plan.missing[0]
    assert "10 deals → MQLs not known yet" in as_text(plan)


def test_plan_settings_are_checked_with_their_paths(policy: Policy) -> None:
    broken = {
        "win_rate": 25,
        "opportunity_rate": 0,
        "currency": "aud",
        "revenue_split": {"enterprise": 0.5, "smb": 0.1},
    }
    with pytest.raises(PolicyError) as error:
        with_plan(policy, broken)
    assert error.value.problems == [
        "plan.opportunity_rate: input should be greater than 0",
        "plan.win_rate: 25 is over 1: write a share like 0.25 for 25%",
        "plan.currency: 'aud' is not a currency code: write three capitals like AUD",
        "plan.revenue_split: the shares add up to 0.6; they must add up to 1",
    ]
    with pytest.raises(PolicyError) as unknown:
        with_plan(policy, {"revenue_split": {"enterprise": 0.5, "retail": 0.5}})
    assert unknown.value.problems == ["plan.revenue_split.retail: no segment is called 'retail'"]


# --- in words and in Slack -----------------------------------------------------------------------


def test_the_text_shows_every_number_and_its_source(policy: Policy) -> None:
    text = as_text(build_plan(Goal(2_000_000, "quarter"), History(26), policy))
    assert text.splitlines()[:3] == [
        "Revenue plan: AUD 2,000,000 a quarter (13 weeks), rates from the MQLs of the last 26 "
        "weeks",
        "Marketing needs 102.6 MQLs a week (1,334 a quarter) → 200 opportunities → 50 won deals; "
        "now 0.0 MQLs a week",
        "Split of the goal: sla.yaml plan.revenue_split",
    ]
    assert "enterprise: 60% of the goal, AUD 1,200,000 a quarter" in text
    assert (
        "  30 deals → 120 opportunities → 800 MQLs a quarter: 61.5 MQLs a week "
        "(now 0.0 a week, target 10)"
    ) in text
    assert "  win rate (opportunity → won) 25%: sla.yaml plan.win_rate" in text
    assert "Missing" not in text


@pytest.mark.parametrize("plan_settings", ["example", "none"])
def test_the_slack_answer_is_valid_block_kit(policy: Policy, plan_settings: str) -> None:
    chosen = policy if plan_settings == "example" else with_plan(policy, None)
    message = revenue_plan(build_plan(Goal(2_000_000, "quarter"), HISTORY, chosen), chosen, AS_OF)
    assert_valid_message(message)
    text = json.dumps(message.blocks)
    assert "Revenue plan" in text and "MQLs a week" in text
    assert "Rates from the MQLs received in the 26 weeks to <!date^" in text


def test_the_slack_answer_lists_what_is_missing(policy: Policy) -> None:
    empty = with_plan(policy, None)
    message = revenue_plan(build_plan(Goal(500_000), History(26), empty), empty, AS_OF)
    assert_valid_message(message)
    blocks = json.dumps(message.blocks, ensure_ascii=False)
    assert "⚠️ *Missing*" in blocks and "plan.win_rate" in blocks
    assert message.text.startswith("Revenue plan for 500,000 a month: Not enough")


def test_segment_names_and_currency_are_escaped(policy: Policy) -> None:
    hostile = "<!channel> & <@U0REP1>"
    content = snapshot(policy)
    content["segments"][0]["name"] = hostile
    content["targets"]["mql_per_week"] = {}
    content["plan"] = {"win_rate": 0.2, "average_deal": 10_000, "opportunity_rate": 0.1}
    odd = parse_policy(content)
    history = History(26, {hostile: Funnel(10, 2, 1, 1, 1, 5_000.0)})
    message = revenue_plan(build_plan(Goal(100_000), history, odd), odd, AS_OF)
    assert_valid_message(message)
    everything = message.text + json.dumps(message.blocks)
    assert "&lt;!channel&gt; &amp; &lt;@U0REP1&gt;" in everything
    assert_no_live_markup([message.text, message.blocks], mentions=())
