"""`/sla-plan`: the revenue plan as Block Kit, a pure function of the plan (bot/domain/plan.py),
and the plan in words, which `handoff plan` prints as plain text (bot/cli/plan_text.py).

Segment names, currency codes and the SLA's words are escaped and clipped here, like every
text the Slack views show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.plan import Input, Per, RevenuePlan, SegmentPlan, whole
from bot.domain.policy import Policy
from bot.slack.blocks import MAX_BLOCKS, SECTION_LIMIT, Message, context, section
from bot.slack.text import clip, one_line, slack_date


def revenue_plan(plan: RevenuePlan, policy: Policy, as_of: datetime) -> Message:
    """The plan for the person who asked (ephemeral): the MQLs a week it takes, per segment,
    and where every number came from."""
    goal, currency = plan.goal, plan.currency
    title = f"🎯 *Revenue plan · {one_line(money(goal.amount, currency), 60)} a {goal.per}*"
    blocks: list[dict[str, Any]] = [
        section(f"{title}\n{one_line(headline(plan), 600)}"),
    ]
    blocks += [section(_segment_text(segment, plan)) for segment in plan.segments]
    if plan.missing:
        lines = "\n".join(f"• {one_line(item, 400)}" for item in plan.missing)
        blocks.append(section(f"⚠️ *Missing*\n{lines}"))
    blocks.append(
        context(
            f"Split of the goal: {one_line(plan.split_origin, 300)}",
            f"Rates from the MQLs received in the {plan.history_weeks} weeks to "
            f"{slack_date(as_of, policy.timezone)} · a month is 4.33 weeks, a quarter 13",
        )
    )
    return Message(text=_fallback(plan), blocks=blocks[:MAX_BLOCKS])


def _segment_text(segment: SegmentPlan, plan: RevenuePlan) -> str:
    goal = plan.goal
    share = f"{percent(segment.share)} of the goal, {money(segment.revenue, plan.currency)}"
    lines = [
        f"*{one_line(segment.segment, 40)}* · {one_line(share, 100)} a {goal.per}",
        f"{one_line(chain(segment, goal.per), 300)} ({one_line(pace(segment), 100)})",
        *(f"• {one_line(line, 400)}" for line in inputs(segment, plan.currency)),
    ]
    return clip("\n".join(lines), SECTION_LIMIT)


def _fallback(plan: RevenuePlan) -> str:
    goal = plan.goal
    return one_line(
        f"Revenue plan for {money(goal.amount, plan.currency)} a {goal.per}: {headline(plan)}",
        3000,
    )


# --- in words (`handoff plan` prints these as they are; the view above escapes them) ----------


def count(value: float) -> str:
    """A whole count, rounded up, with thousands separators: `1,334`."""
    return f"{whole(value):,}"


def money(amount: float, currency: str | None) -> str:
    """`AUD 2,000,000` (`2,000,000` when the SLA names no currency)."""
    return f"{currency} {amount:,.0f}" if currency else f"{amount:,.0f}"


def percent(share: float) -> str:
    """`25%`, `12.5%`."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


def per_week(value: float) -> str:
    return f"{value:,.1f}"


def input_line(label: str, item: Input, shown: str) -> str:
    """`win rate 25%: measured over 26 weeks: 6 won of 24 closed in enterprise`."""
    return f"{label} {shown}: {item.origin}" if item.value is not None else f"{label}: missing"


def inputs(segment: SegmentPlan, currency: str | None) -> list[str]:
    """Where each of the segment's numbers came from."""
    average, win, rate = segment.average_deal, segment.win_rate, segment.opportunity_rate
    return [
        input_line("average deal", average, money(average.value or 0, currency)),
        input_line("win rate (opportunity → won)", win, percent(win.value or 0)),
        input_line("MQL → opportunity", rate, percent(rate.value or 0)),
    ]


def chain(segment: SegmentPlan, per: Per) -> str:
    """`30 deals → 120 opportunities → 800 MQLs a quarter: 61.6 MQLs a week`, as far as known."""
    if segment.mqls is not None and segment.deals is not None:
        assert segment.opportunities is not None and segment.mqls_per_week is not None
        return (
            f"{count(segment.deals)} deals → {count(segment.opportunities)} opportunities → "
            f"{count(segment.mqls)} MQLs a {per}: {per_week(segment.mqls_per_week)} MQLs a week"
        )
    known = []
    if segment.deals is not None:
        known.append(f"{count(segment.deals)} deals")
    if segment.opportunities is not None:
        known.append(f"{count(segment.opportunities)} opportunities")
    return " → ".join([*known, "MQLs not known yet"])


def pace(segment: SegmentPlan) -> str:
    """`now 3.1 a week, target 10`: the measured MQL pace and the SLA's weekly target."""
    target = f", target {segment.target}" if segment.target is not None else ""
    return f"now {per_week(segment.mqls_now)} a week{target}"


def headline(plan: RevenuePlan) -> str:
    """`Marketing needs 47.1 MQLs a week (612 a quarter) → …`, or what is in the way."""
    totals = plan.totals
    if totals is None:
        return "Not enough to work back from yet: see what is missing."
    per = plan.goal.per
    return (
        f"Marketing needs {per_week(totals.mqls_per_week)} MQLs a week ({count(totals.mqls)} a "
        f"{per}) → {count(totals.opportunities)} opportunities → {count(totals.deals)} won "
        f"deals; now {per_week(plan.mqls_now)} MQLs a week"
    )
