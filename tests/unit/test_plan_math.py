"""The revenue plan worked backwards by hand: goal parsing, the arithmetic per segment, where
each input came from, what is missing, and its Block Kit."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.cli.plan_text import as_text
from bot.domain.plan import (
    PRIOR_WEIGHT,
    Funnel,
    Goal,
    History,
    blend,
    build_plan,
    parse_goal,
    whole,
)
from bot.domain.policy import Policy, PolicyError, parse_policy, snapshot
from bot.domain.refusal import Refusal
from bot.slack.blocks import Message
from bot.slack.plan_view import revenue_plan
from tests.unit.test_render import assert_no_live_markup, assert_valid_message

AS_OF = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
# 26 weeks of history, made so every rate is a round number:
#   enterprise: 100 of 200 MQLs accepted (50%), 50 of 100 SALs qualified (50%), 40 of 50 SQLs
#               became opportunities (80%), 10 won of 40 closed (25%), 500,000 won over 10
#               deals (50,000 each); MQL → opportunity 40 of 200 = 20% = 50% × 50% × 80%
#   smb:        50 of 100 (50%), 20 of 50 (40%), 10 of 20 (50%), 5 won of 10 closed (50%),
#               100,000 over 5 deals (20,000)
#   mid_market: nothing measured: the team's rates apply (150 of 300 = 50%, 70 of 150 = 7/15,
#               50 of 70 = 5/7, 15 won of 50 = 30%, 600,000 over 15 deals = 40,000)
ENTERPRISE = Funnel(
    mqls=200, sals=100, sqls=50, opportunities=40, won=10, lost=30, won_with_amount=10,
    won_amount=500_000.0,
)  # fmt: skip
SMB = Funnel(
    mqls=100, sals=50, sqls=20, opportunities=10, won=5, lost=5, won_with_amount=5,
    won_amount=100_000.0,
)  # fmt: skip
HISTORY = History(26, {"enterprise": ENTERPRISE, "smb": SMB})


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
    goal = parse_goal(text)
    assert (goal.amount, goal.per) == (amount, per)


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
    # No plan: in sla.yaml, nothing to blend with: the measured rates as they are.
    # enterprise: 1,000,000 / 50,000 = 20 deals / 25% = 80 opportunities / 80% = 100 SQLs
    #             / 50% = 200 SALs / 50% = 400 MQLs
    assert enterprise.revenue == pytest.approx(1_000_000)
    assert enterprise.average_deal.value == pytest.approx(50_000)
    assert enterprise.win_rate.value == pytest.approx(0.25)
    assert enterprise.opportunity_rate.value == pytest.approx(0.8)
    assert enterprise.sql_rate.value == pytest.approx(0.5)
    assert enterprise.sal_rate.value == pytest.approx(0.5)
    chain = (enterprise.deals, enterprise.opportunities, enterprise.sqls, enterprise.sals)
    assert (*chain, enterprise.mqls) == pytest.approx((20, 80, 100, 200, 400))
    assert enterprise.mqls_per_week == pytest.approx(400 / 13)
    # smb: 200,000 / 20,000 = 10 deals / 50% = 20 opportunities / 50% = 40 SQLs / 40% = 100
    #      SALs / 50% = 200 MQLs
    assert (smb.deals, smb.opportunities, smb.sqls, smb.sals, smb.mqls) == pytest.approx(
        (10, 20, 40, 100, 200)
    )
    assert (mid_market.deals, mid_market.opportunities, mid_market.mqls) == (0, 0, 0)
    totals = plan.totals
    assert totals is not None
    assert (totals.deals, totals.opportunities, totals.sqls, totals.sals, totals.mqls) == (
        30,
        100,
        140,
        300,
        600,
    )
    assert totals.mqls_per_week == pytest.approx(30.8 + 15.4)  # as shown: 400 ÷ 13, 200 ÷ 13
    assert plan.missing == []
    # The measured pace and the SLA's weekly targets beside it.
    assert enterprise.mqls_now == pytest.approx(200 / 26) and enterprise.target == 10
    assert plan.mqls_now == pytest.approx(300 / 26)


def test_each_input_says_where_it_came_from(measured_only: Policy) -> None:
    plan = build_plan(Goal(1_200_000, "quarter"), HISTORY, measured_only)
    enterprise, mid_market, _ = plan.segments
    win = enterprise.win_rate
    assert (win.successes, win.trials, win.scope, win.prior, win.weight) == (
        10,
        40,
        "in enterprise",
        None,
        0,
    )
    average = enterprise.average_deal
    assert (average.successes, average.trials) == (500_000, 10)
    assert (enterprise.sal_rate.successes, enterprise.sal_rate.trials) == (100, 200)
    assert (enterprise.sql_rate.successes, enterprise.sql_rate.trials) == (50, 100)
    assert (enterprise.opportunity_rate.successes, enterprise.opportunity_rate.trials) == (40, 50)
    # Nothing measured in mid-market: the whole team's numbers, and it says so.
    assert mid_market.win_rate.value == pytest.approx(0.3)
    assert mid_market.win_rate.scope == "across all segments"
    assert mid_market.average_deal.value == pytest.approx(40_000)
    # 50% × 7/15 × 5/7 = 1/6 of MQLs become opportunities, as 50 of 300 did.
    assert mid_market.sal_rate.value == pytest.approx(0.5)
    assert mid_market.sql_rate.value == pytest.approx(7 / 15)
    assert mid_market.opportunity_rate.value == pytest.approx(5 / 7)
    text = as_text(plan)
    assert (
        "  win rate (opportunity → won) 25%: measured 10 won of 40 closed in enterprise "
        "(no sla.yaml value to blend with)"
    ) in text
    assert "  MQL → SAL 50%: measured 150 of 300 MQLs accepted across all segments" in text


def test_the_sla_file_splits_the_goal_and_history_is_blended_in(policy: Policy) -> None:
    """The example sla.yaml: split 60/30/10; average deal 40,000, win rate 25%, MQL → SAL 75%,
    SAL → SQL 40%, MQL → opportunity 15% (so SQL → opportunity 0.15 ÷ (0.75 × 0.4) = 50%),
    each worth 20 observations: blended = (measured + prior × 20) ÷ (trials + 20).

    enterprise (its own history):
      average deal (500,000 + 40,000 × 20) ÷ (10 + 20) = 1,300,000 ÷ 30 = 43,333.33
      600,000 ÷ 43,333.33 = 13.85 → 14 deals
      win rate (10 + 0.25 × 20) ÷ (40 + 20) = 15 ÷ 60 = 25% → 14 ÷ 0.25 = 56 opportunities
      SQL → opportunity (40 + 0.5 × 20) ÷ (50 + 20) = 5/7 → 56 × 7/5 = 78.4 SQLs
      SAL → SQL (50 + 0.4 × 20) ÷ (100 + 20) = 58/120 → 78.4 × 120/58 = 162.21 SALs
      MQL → SAL (100 + 0.75 × 20) ÷ (200 + 20) = 115/220 → 162.21 × 220/115 = 310.31 MQLs
    mid-market (the team's history, 15 deals worth 600,000, 15 won of 50 closed):
      average (600,000 + 800,000) ÷ (15 + 20) = 40,000 → 300,000 ÷ 40,000 = 7.5 → 8 deals
      win rate (15 + 5) ÷ (50 + 20) = 2/7 → 8 × 7/2 = 28 opportunities
    smb: average (100,000 + 800,000) ÷ (5 + 20) = 36,000 → 100,000 ÷ 36,000 = 2.78 → 3 deals;
      win rate (5 + 5) ÷ (10 + 20) = 1/3 → 9 opportunities
    """
    plan = build_plan(Goal(1_000_000, "month"), HISTORY, policy)
    enterprise, mid_market, smb = plan.segments
    assert plan.split_origin == "sla.yaml plan.revenue_split"
    assert plan.currency == "AUD"
    assert PRIOR_WEIGHT == 20
    assert enterprise.average_deal.value == pytest.approx(1_300_000 / 30)
    assert enterprise.win_rate.value == pytest.approx(0.25)
    assert enterprise.opportunity_rate.value == pytest.approx(5 / 7)
    assert enterprise.sql_rate.value == pytest.approx(58 / 120)
    assert enterprise.sal_rate.value == pytest.approx(115 / 220)
    chain = (enterprise.deals, enterprise.opportunities, enterprise.sqls, enterprise.sals)
    assert (*chain, enterprise.mqls) == pytest.approx(
        (14, 56, 78.4, 78.4 * 120 / 58, 78.4 * 120 / 58 * 220 / 115)
    )
    assert whole(enterprise.mqls or 0) == 311
    assert enterprise.mqls_per_week == pytest.approx(78.4 * 120 / 58 * 220 / 115 / 4.33)
    assert mid_market.average_deal.value == pytest.approx(40_000)
    assert (mid_market.deals, mid_market.opportunities) == pytest.approx((8, 28))
    assert smb.average_deal.value == pytest.approx(36_000)
    assert (smb.deals, smb.opportunities) == pytest.approx((3, 9))
    assert enterprise.win_rate.prior_key == "plan.win_rate"
    assert enterprise.opportunity_rate.prior_key == (
        "plan.opportunity_rate ÷ (plan.sal_rate × plan.sql_rate)"
    )
    assert (
        "  average deal AUD 43,333: measured mean of 10 won deals (AUD 50,000) in enterprise, "
        "blended with sla.yaml's AUD 40,000 (plan.average_deal, weight 20): "
        "(500,000 + 40,000 × 20) ÷ (10 + 20)"
    ) in as_text(plan)


def test_without_history_the_sla_file_gives_the_rates(policy: Policy) -> None:
    plan = build_plan(Goal(2_000_000, "quarter"), History(26), policy)
    enterprise, mid_market, smb = plan.segments
    assert (enterprise.win_rate.prior_key, enterprise.win_rate.trials) == ("plan.win_rate", 0)
    assert enterprise.average_deal.prior_key == "plan.average_deal"
    assert enterprise.sal_rate.prior_key == "plan.sal_rate"
    # 1,200,000 / 40,000 = 30 deals / 25% = 120 opportunities / 50% = 240 SQLs / 40% = 600 SALs
    # / 75% = 800 MQLs a quarter (120 / 15% MQL → opportunity: the same)
    chain = (enterprise.deals, enterprise.opportunities, enterprise.sqls, enterprise.sals)
    assert (*chain, enterprise.mqls) == pytest.approx((30, 120, 240, 600, 800))
    # smb: 200,000 / 40,000 = 5 / 25% = 20 / 50% = 40 / 40% = 100 / 75% = 133.3 MQLs: 134
    assert smb.mqls == pytest.approx(400 / 3) and whole(smb.mqls or 0) == 134
    totals = plan.totals
    assert totals is not None and totals.mqls == 1334
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
        "POST /leads/{external_id}/activity, or set plan.opportunity_rate (MQL → opportunity) "
        "in sla.yaml",
        "no SQLs recorded yet: disposition claimed leads as Qualified in Slack, or set "
        "plan.sql_rate (SAL → SQL) in sla.yaml",
        "no SALs recorded yet: claim leads in Slack, or set plan.sal_rate (MQL → SAL) in sla.yaml",
    ]
    assert "Not enough to work back from yet" in as_text(plan)


def test_a_chain_goes_as_far_as_its_inputs(policy: Policy) -> None:
    # Deals are known from the file's average deal; only lost deals and no opportunity rate.
    settings = {"average_deal": 50_000, "revenue_split": {"enterprise": 1.0}}
    lost_only = History(
        26, {"enterprise": Funnel(mqls=100, opportunities=4, lost=4, sals=8, sqls=4)}
    )
    plan = build_plan(Goal(500_000), lost_only, with_plan(policy, settings))
    enterprise, mid_market, smb = plan.segments
    assert enterprise.deals == pytest.approx(10)
    assert enterprise.opportunities is None and enterprise.mqls is None
    assert enterprise.win_rate.missing is not None  # 0 won of 4 is no rate to divide by
    assert (mid_market.mqls, smb.mqls) == (0, 0)  # no share of the goal: nothing needed
    assert len(plan.missing) == 1 and "plan.win_rate" in plan.missing[0]
    assert enterprise.sal_rate.value == pytest.approx(0.08)  # 8 of 100, measured alone
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


# --- issue 12: the three ways the plan broke on its first real data, by hand -------------------


def test_steps_are_consistent_and_segments_add_up_to_the_headline(policy: Policy) -> None:
    """$500k a month with the example sla.yaml (average deal 40,000, win rate 25%, SQL →
    opportunity 50%, SAL → SQL 40%, MQL → SAL 75%; split 60/30/10), no history.

    enterprise 300,000 ÷ 40,000 = 7.5 → 8 deals (rounded once: a deal is whole)
      8 ÷ 0.25 = 32 opportunities ÷ 0.5 = 64 SQLs ÷ 0.4 = 160 SALs ÷ 0.75 = 213.33 → 214 MQLs
    mid-market 150,000 ÷ 40,000 = 3.75 → 4 deals → 16 → 32 → 80 → 106.67 → 107 MQLs
    smb 50,000 ÷ 40,000 = 1.25 → 2 deals → 8 → 16 → 40 → 53.33 → 54 MQLs
    headline: 8 + 4 + 2 = 14 deals, 56 opportunities, 112 SQLs, 280 SALs, 214 + 107 + 54 = 375
    MQLs; (213.33 + 106.67 + 53.33) ÷ 4.33 = 86.2 a week.
    """
    plan = build_plan(Goal(500_000), History(26), policy)
    enterprise, mid_market, smb = plan.segments
    chain = (enterprise.deals, enterprise.opportunities, enterprise.sqls, enterprise.sals)
    assert (*chain, enterprise.mqls) == pytest.approx((8, 32, 64, 160, 640 / 3))
    assert (mid_market.deals, mid_market.mqls) == pytest.approx((4, 320 / 3))
    assert (smb.deals, smb.mqls) == pytest.approx((2, 160 / 3))
    totals = plan.totals
    assert totals is not None
    assert (totals.deals, totals.opportunities, totals.sqls, totals.sals, totals.mqls) == (
        14,
        56,
        112,
        280,
        375,
    )
    assert totals.mqls_per_week == pytest.approx(49.3 + 24.6 + 12.3)  # as shown, to a tenth
    text = as_text(plan)
    assert (
        "Marketing needs 86.2 MQLs a week (375 a month) → 280 SALs → 112 SQLs → 56 "
        "opportunities → 14 won deals"
    ) in text
    assert "  8 deals → 32 opportunities → 64 SQLs → 160 SALs → 214 MQLs a month: 49.3" in text
    assert "  4 deals → 16 opportunities → 32 SQLs → 80 SALs → 107 MQLs a month" in text
    assert "  2 deals → 8 opportunities → 16 SQLs → 40 SALs → 54 MQLs a month" in text


def test_one_won_deal_moves_the_plan_a_little(policy: Policy) -> None:
    """500 MQLs, 1 opportunity, 1 win of 5,000 (Slack accepted 375 and qualified 150, as the
    file expects); the example sla.yaml with all of the goal in enterprise. Before blending this
    asked for 15,384.6 MQLs a week. Now (weight 20):

    average deal (5,000 + 40,000 × 20) ÷ (1 + 20) = 805,000 ÷ 21 = 38,333.33
      500,000 ÷ 38,333.33 = 13.04 → 14 deals
    win rate (1 + 0.25 × 20) ÷ (1 + 20) = 6/21 = 2/7 → 14 × 7/2 = 49 opportunities
    SQL → opportunity (1 + 0.5 × 20) ÷ (150 + 20) = 11/170 → 49 × 170/11 = 757.27 SQLs
    SAL → SQL (150 + 0.4 × 20) ÷ (375 + 20) = 158/395 = 40% → 1,893.18 SALs
    MQL → SAL (375 + 0.75 × 20) ÷ (500 + 20) = 390/520 = 75% → 2,524.24 MQLs a month
      ÷ 4.33 = 582.97 a week: the one win barely moves the deal size and win rate; what moves
      the plan is 1 opportunity of 150 SQLs, which is a real sample.
    """
    settings = {**snapshot(policy)["plan"], "revenue_split": {"enterprise": 1.0}}
    one_win = Funnel(
        mqls=500, sals=375, sqls=150, opportunities=1, won=1, won_with_amount=1, won_amount=5_000.0
    )
    plan = build_plan(
        Goal(500_000), History(26, {"enterprise": one_win}), with_plan(policy, settings)
    )
    enterprise = plan.segments[0]
    assert enterprise.average_deal.value == pytest.approx(805_000 / 21)
    assert enterprise.win_rate.value == pytest.approx(2 / 7)
    assert enterprise.opportunity_rate.value == pytest.approx(11 / 170)
    assert enterprise.sql_rate.value == pytest.approx(0.4)
    assert enterprise.sal_rate.value == pytest.approx(0.75)
    mqls = 49 * 170 / 11 / 0.4 / 0.75
    assert (enterprise.deals, enterprise.opportunities, enterprise.mqls) == pytest.approx(
        (14, 49, mqls)
    )
    assert enterprise.mqls_per_week == pytest.approx(582.97, abs=0.01)
    assert (
        "win rate (opportunity → won) 28.6%: measured 1 won of 1 closed (100%) in enterprise, "
        "blended with sla.yaml's 25% (plan.win_rate, weight 20): (1 + 0.25 × 20) ÷ (1 + 20)"
    ) in as_text(plan)


def test_the_blend_weighs_the_sample() -> None:
    """(successes + prior × 20) ÷ (trials + 20): 3 won of 10 with 25% configured is
    (3 + 5) ÷ 30 = 26.7%; 1 of 1 is 6 ÷ 21 = 28.6%; 50 of 100 is 55 ÷ 120 = 45.8%; with no
    prior, the measure alone."""
    assert blend(3, 10, 0.25) == pytest.approx(8 / 30)
    assert blend(1, 1, 0.25) == pytest.approx(6 / 21)
    assert blend(50, 100, 0.25) == pytest.approx(55 / 120)
    assert blend(3, 10, None) == pytest.approx(0.3)


def test_now_is_measured_over_the_weeks_observed(policy: Policy) -> None:
    """12 MQLs, the first 14 days ago: 12 ÷ 2 = 6 a week (not 12 ÷ 26 = 0.5). A history longer
    than the window is measured over the window; a first MQL an hour ago counts as one week."""
    first = AS_OF - timedelta(days=14)
    twelve = {"enterprise": Funnel(mqls=12)}
    plan = build_plan(Goal(500_000), History(26, twelve, AS_OF, first), policy)
    assert plan.observed_weeks == pytest.approx(2)
    assert plan.segments[0].mqls_now == pytest.approx(6)
    assert "now 6.0 MQLs a week (over the 2.0 weeks since the first MQL)" in as_text(plan)
    long_ago = AS_OF - timedelta(weeks=100)
    assert History(26, twelve, AS_OF, long_ago).observed_weeks == 26
    assert History(26, twelve, AS_OF, AS_OF - timedelta(hours=1)).observed_weeks == 1


def test_a_configured_opportunity_rate_past_the_sql_rate_is_refused(policy: Policy) -> None:
    with pytest.raises(PolicyError) as error:
        with_plan(policy, {"sal_rate": 0.5, "sql_rate": 0.2, "opportunity_rate": 0.15})
    assert error.value.problems == [
        "plan.opportunity_rate: 0.15 of MQLs cannot become opportunities when only 0.1 become "
        "SQLs (plan.sal_rate × plan.sql_rate): lower it, or raise those"
    ]


# --- in words and in Slack -----------------------------------------------------------------------


def test_the_text_shows_every_number_and_its_source(policy: Policy) -> None:
    text = as_text(build_plan(Goal(2_000_000, "quarter"), History(26), policy))
    assert text.splitlines()[:3] == [
        "Revenue plan: AUD 2,000,000 a quarter (13 weeks), rates from the MQLs of the last 26 "
        "weeks blended with sla.yaml's (weight 20); counts rounded up once, when shown",
        "Marketing needs 102.6 MQLs a week (1,334 a quarter) → 1,000 SALs → 400 SQLs → 200 "
        "opportunities → 50 won deals; now 0.0 MQLs a week (over 26 weeks)",
        "Split of the goal: sla.yaml plan.revenue_split",
    ]
    assert "enterprise: 60% of the goal, AUD 1,200,000 a quarter" in text
    assert (
        "  30 deals → 120 opportunities → 240 SQLs → 600 SALs → 800 MQLs a quarter: 61.5 MQLs a "
        "week (now 0.0 a week, target 10)"
    ) in text
    assert "  win rate (opportunity → won) 25%: sla.yaml plan.win_rate (nothing measured yet)" in (
        text
    )
    assert (
        "  SQL → opportunity 50%: sla.yaml plan.opportunity_rate ÷ (plan.sal_rate × "
        "plan.sql_rate) (nothing measured yet)"
    ) in text
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
    history = History(26, {hostile: Funnel(10, 2, 1, 1, 1, 5_000.0, sals=4, sqls=2)})
    message = revenue_plan(build_plan(Goal(100_000), history, odd), odd, AS_OF)
    assert_valid_message(message)
    everything = message.text + json.dumps(message.blocks)
    assert "&lt;!channel&gt; &amp; &lt;@U0REP1&gt;" in everything
    assert_no_live_markup([message.text, message.blocks], mentions=())


def many_segments(policy: Policy, count: int) -> Policy:
    """The example SLA with `count` segments and no `plan:` block (every rate missing)."""
    content = snapshot(policy)
    content["segments"] = [
        {
            "name": f"segment_{number:02d}",
            "when": {"employees_min": 1000 - number},
            "channel": f"C0S{number:02d}",
            "reps": ["U0REP1"],
        }
        for number in range(count)
    ]
    content["targets"]["mql_per_week"] = {}
    content["plan"] = None
    return parse_policy(content)


def segment_names(message: Message) -> list[str]:
    """The segments the answer names, in its order."""
    return re.findall(r"\*(segment_\d+)\* · ", json.dumps(message.blocks, ensure_ascii=False))


def test_a_plan_past_slacks_block_limit_shows_every_segment_missing_and_footer(
    policy: Policy,
) -> None:
    """60 segments need more than a message's 50 blocks (Block Kit: docs.slack.dev/reference/
    block-kit/blocks): they share sections, whole, and what is missing and where the numbers
    came from are still shown; they were dropped without a word."""
    crowded = many_segments(policy, 60)
    message = revenue_plan(
        build_plan(Goal(2_000_000, "quarter"), History(26), crowded), crowded, AS_OF
    )
    assert_valid_message(message)
    assert segment_names(message) == [f"segment_{n:02d}" for n in range(60)]
    texts = [json.dumps(block, ensure_ascii=False) for block in message.blocks]
    assert not any("…" in text for text in texts)  # no segment cut in half
    assert "⚠️ *Missing*" in texts[-2] and "plan.win_rate" in texts[-2]
    assert "Split of the goal:" in texts[-1] and "Rates from the MQLs received" in texts[-1]


def test_segments_past_what_50_blocks_hold_are_counted_with_the_command_for_all(
    policy: Policy,
) -> None:
    crowded = many_segments(policy, 700)
    message = revenue_plan(
        build_plan(Goal(2_000_000, "quarter"), History(26), crowded), crowded, AS_OF
    )
    assert_valid_message(message)
    names = segment_names(message)
    assert names == [f"segment_{n:02d}" for n in range(len(names))] and len(names) < 700
    texts = [json.dumps(block, ensure_ascii=False) for block in message.blocks]
    assert (
        texts[-3].count("…and ") == 1
        and (
            f"…and {700 - len(names)} more segments: "
            "`handoff plan 2000000 --per quarter --weeks 26` prints all of them"
        )
        in texts[-3]
    )
    assert "⚠️ *Missing*" in texts[-2] and "Split of the goal:" in texts[-1]


def test_a_plan_within_slacks_block_limit_has_a_section_per_segment(policy: Policy) -> None:
    crowded = many_segments(policy, 47)  # a title, 47 segments, what is missing, the footer
    message = revenue_plan(build_plan(Goal(2_000_000), History(26), crowded), crowded, AS_OF)
    assert_valid_message(message)
    assert len(message.blocks) == 50
    assert segment_names(message) == [f"segment_{n:02d}" for n in range(47)]
    assert "more segments" not in json.dumps(message.blocks, ensure_ascii=False)


def test_a_count_of_one_reads_in_the_singular(policy: Policy) -> None:
    """$30k a month, all enterprise (average deal 40,000, win rate 25%): 0.75 → 1 deal, 4
    opportunities. A goal under one deal is common for a small team's month: "1 deal", not
    "1 deals", in `/sla-plan` and `handoff plan` alike."""
    plan = build_plan(
        Goal(30_000),
        History(26),
        with_plan(policy, {**snapshot(policy)["plan"], "revenue_split": {"enterprise": 1.0}}),
    )
    message = revenue_plan(plan, policy, datetime(2026, 11, 25, tzinfo=UTC))
    shown = "\n".join(str(block) for block in message.blocks) + message.text + as_text(plan)
    assert "1 deal → 4 opportunities →" in shown and "→ 1 won deal;" in shown
    assert "1 deals" not in shown and "1 won deals" not in shown


# --- audit against the seed articles (/work/shared/seeds) -------------------------------------


@pytest.mark.parametrize("text", ["€400k", "EUR 400k", "400k EUR", "£1m", "US$2M", "CAD 1.2M"])
def test_a_goal_in_another_currency_is_refused_not_read_as_the_plans(text: str) -> None:
    """With `plan.currency: AUD`, `/sla-plan €400k` answered "Revenue plan · AUD 400,000": the
    euros were read as Australian dollars. Handoff converts nothing (activity amounts in
    another currency are refused too), so the goal must be in the plan's currency."""
    with pytest.raises(Refusal) as refused:
        parse_goal(text, currency="AUD")
    assert "in AUD (plan.currency in sla.yaml)" in refused.value.message
    assert "does not convert currencies" in refused.value.message


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("$2.5M", "AUD", 2_500_000),  # the dollar sign is the Australian dollar's too
        ("A$1.2m", "AUD", 1_200_000),
        ("AUD 1.2M", "AUD", 1_200_000),
        ("1.2M AUD", "AUD", 1_200_000),
        ("2,500,000", "AUD", 2_500_000),
        ("€400k", "EUR", 400_000),
        ("400k EUR", "EUR", 400_000),
        ("$2.5 million", "USD", 2_500_000),
        ("2.5mn", None, 2_500_000),
        ("€400 thousand", None, 400_000),
    ],
)
def test_goals_in_the_plans_currency_as_people_write_them(
    text: str, currency: str | None, amount: float
) -> None:
    assert parse_goal(text, currency=currency).amount == amount


def test_a_dollar_goal_is_refused_when_the_plan_is_in_euros() -> None:
    with pytest.raises(Refusal, match="in EUR"):
        parse_goal("$2M", currency="EUR")


def test_seed_004s_three_numbers_are_enough_to_work_back(policy: Policy) -> None:
    """Seed 004: "It requires three core numbers: the average rate at which leads convert to
    opportunities, the average rate at which opportunities convert to closed sales, and the
    average value of a sale. With those inputs, a business can work backwards from a revenue
    goal". An sla.yaml with just those (plan.opportunity_rate, win_rate, average_deal) got
    "Not enough to work back from yet". By hand, $500k a month split 60/30/10:
      enterprise 300,000 ÷ 40,000 = 7.5 → 8 deals ÷ 0.25 = 32 opportunities ÷ 0.1 = 320 MQLs
      mid-market 150,000 ÷ 40,000 = 3.75 → 4 deals → 16 opportunities → 160 MQLs
      smb 50,000 ÷ 40,000 = 1.25 → 2 deals → 8 opportunities → 80 MQLs
    560 MQLs a month; 320 ÷ 4.33 = 73.9, 160 ÷ 4.33 = 37.0, 80 ÷ 4.33 = 18.5 a week."""
    seed = {
        "opportunity_rate": 0.1,
        "win_rate": 0.25,
        "average_deal": 40000,
        "currency": "AUD",
        "revenue_split": {"enterprise": 0.6, "mid_market": 0.3, "smb": 0.1},
    }
    plan = build_plan(Goal(500_000), History(26), with_plan(policy, seed))
    enterprise, mid_market, smb = plan.segments
    assert (enterprise.deals, enterprise.opportunities, enterprise.mqls) == pytest.approx(
        (8, 32, 320)
    )
    assert (enterprise.sqls, enterprise.sals) == (None, None)  # not asked for, not invented
    assert (mid_market.mqls, smb.mqls) == pytest.approx((160, 80))
    text = as_text(plan)
    assert "Marketing needs 129.4 MQLs a week (560 a month) → 56 opportunities → 14 won deals" in (
        text
    )
    assert "  8 deals → 32 opportunities → 320 MQLs a month: 73.9 MQLs a week" in text
    assert "  MQL → opportunity 10%: sla.yaml plan.opportunity_rate (nothing measured yet)" in text


def test_the_weekly_mqls_of_the_segments_add_up_to_the_headline(policy: Policy) -> None:
    """$400k a month with the example sla.yaml: the segments need 160, 80 and 26.67 MQLs a
    month, 36.95, 18.48 and 6.16 a week, shown 37.0, 18.5 and 6.2: 61.7 added up. The headline
    said 61.6 (the unrounded sum), so the figures on screen did not add up."""
    text = as_text(build_plan(Goal(400_000), History(26), policy))
    assert ": 37.0 MQLs a week" in text and ": 18.5 MQLs a week" in text
    assert ": 6.2 MQLs a week" in text
    assert "Marketing needs 61.7 MQLs a week (267 a month)" in text


def test_without_a_plan_currency_the_goal_keeps_the_one_it_was_written_in(
    measured_only: Policy,
) -> None:
    """No plan.currency to hold it to: `€400k` is shown as EUR 400,000, not a bare 400,000."""
    plan = build_plan(parse_goal("€400k", currency=None), History(26), measured_only)
    assert as_text(plan).startswith("Revenue plan: EUR 400,000 a month")
    dollars = build_plan(parse_goal("$400k", currency=None), History(26), measured_only)
    assert as_text(dollars).startswith("Revenue plan: 400,000 a month")  # which dollar: unsaid


def test_no_stage_from_the_crm_is_not_a_measured_zero(policy: Policy) -> None:
    """A team whose CRM has sent no stage change yet (claims and dispositions in Slack only):
    "0 of 50 SQLs became opportunities" was blended as a measured 0%, (0 + 0.5 × 20) ÷ (50 +
    20) = 14.3%, and enterprise's $500k-a-month plan asked for 875 MQLs instead of 214. Seed
    002 sizes the MQLs "based on historical conversion rates": with no opportunity ever
    recorded there is no such rate, so the SLA file's 50% stands, said to be unmeasured.
      8 deals ÷ 25% = 32 opportunities ÷ 50% = 64 SQLs ÷ (50 + 8) ÷ 170 = 187.6 SALs
      ÷ (150 + 15) ÷ 220 = 250.1 MQLs → 251."""
    slack_only = Funnel(mqls=200, sals=150, sqls=50)
    plan = build_plan(Goal(500_000), History(26, {"enterprise": slack_only}), policy)
    enterprise = plan.segments[0]
    assert enterprise.opportunity_rate.value == pytest.approx(0.5)
    assert enterprise.opportunity_rate.trials == 0
    assert whole(enterprise.mqls or 0) == 251
    assert (
        "SQL → opportunity 50%: sla.yaml plan.opportunity_rate ÷ (plan.sal_rate × "
        "plan.sql_rate) (nothing measured yet)"
    ) in as_text(plan)


@pytest.mark.parametrize("currency", ["AUD", None])
@pytest.mark.parametrize("text", ["2M ARR", "500k MRR", "1m YTD", "500k net", "400k new"])
def test_a_word_after_the_goal_is_not_a_currency(text: str, currency: str | None) -> None:
    """Any three letters around the number were read as a currency code: `/sla-plan 2M ARR`
    answered "Revenue plan · ARR 2,000,000" with no plan.currency, and with plan.currency AUD
    was refused as a goal in another currency ("Handoff does not convert currencies"). Only
    ISO 4217 codes name a currency; the rest is a goal Handoff can't read."""
    with pytest.raises(Refusal) as refused:
        parse_goal(text, currency=currency)
    assert refused.value.message.startswith(f"I can't read {text!r} as a revenue goal")


def test_the_plans_own_code_is_read_even_outside_iso_4217() -> None:
    """plan.currency takes any three capitals (bot/domain/policy.py): a goal in it is read."""
    assert parse_goal("2 XYZ", currency="XYZ") == Goal(2, "month", "XYZ")


def test_seed_004s_shortcut_is_taken_even_with_sal_and_sql_measured_in_slack(
    policy: Policy,
) -> None:
    """The docs said the one-step plan needs "no SAL → SQL or MQL → SAL, configured or
    measured"; it is taken whenever SQL → opportunity can't be worked out, as here (claims and
    dispositions in Slack, no CRM stage, no plan.sal_rate or sql_rate): 5 deals ÷ 25% = 20
    opportunities ÷ 10% = 200 MQLs, with no SQL or SAL count shown."""
    seed = {"opportunity_rate": 0.1, "win_rate": 0.25, "average_deal": 40000}
    slack_only = History(26, {"enterprise": Funnel(mqls=200, sals=150, sqls=50)})
    plan = build_plan(Goal(600_000), slack_only, with_plan(policy, seed))
    enterprise = plan.segments[0]
    assert enterprise.sal_rate.trials == 200 and enterprise.sql_rate.trials == 150
    assert (enterprise.sqls, enterprise.sals, enterprise.mqls) == (None, None, pytest.approx(200))


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("R$ 2M", "BRL"),  # the real's sign
        ("NT$2M", "TWD"),
        ("MX$2M", "MXN"),
        ("$2M", "COP"),  # the peso's sign is `$` too (Colombia, Chile, Argentina, …)
        ("$2M", "CLP"),
        ("$2M", "ARS"),
        ("$2M", "TWD"),
        ("$2M", "JMD"),
    ],
)
def test_a_dollar_sign_of_the_plans_currency_is_read(text: str, currency: str) -> None:
    """Before the currency check, `R$ 2M` and `$2M` were read for a plan in reais or pesos;
    after it, `R$ 2M` was "I can't read" (an unknown sign) and `$2M` for a plan in COP was
    refused as a goal in another currency, though `$` is the peso's own sign."""
    assert parse_goal(text, currency=currency).amount == 2_000_000


def test_a_sign_of_another_dollar_is_still_refused() -> None:
    with pytest.raises(Refusal, match="in BRL"):
        parse_goal("NT$2M", currency="BRL")


def test_the_command_for_every_segment_keeps_the_goals_currency(policy: Policy) -> None:
    """No plan.currency: `/sla-plan €2M per quarter` is a plan in EUR, but past 50 blocks it
    pointed to `handoff plan 2000000 …`, which prints the plan with no currency at all."""
    crowded = many_segments(policy, 700)
    plan = build_plan(parse_goal("€2M per quarter"), History(26), crowded)
    message = revenue_plan(plan, crowded, AS_OF)
    assert_valid_message(message)
    (command,) = re.findall(r"`handoff plan ([^`]*) --per", json.dumps(message.blocks))
    again = parse_goal(command, "quarter", crowded.currency)
    assert (again.amount, again.currency) == (2_000_000, "EUR")
    assert build_plan(again, History(26), crowded).currency == "EUR"
