"""`/sla-plan`: the revenue plan as Block Kit, a pure function of the plan (bot/domain/plan.py).

Segment names, currency codes and the SLA's words are escaped and clipped here, like every
text the Slack views show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.plan import (
    RevenuePlan,
    SegmentPlan,
    chain,
    headline,
    inputs,
    money,
    pace,
    percent,
)
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
        blocks.append(section(clip(f"⚠️ *Missing*\n{lines}", SECTION_LIMIT)))
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
