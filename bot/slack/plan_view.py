"""`/sla-plan`: the revenue plan as Block Kit, a pure function of the plan (bot/domain/plan.py),
and the plan in words, which `handoff plan` prints as plain text (bot/cli/plan_text.py).

Segment names, currency codes and the SLA's words are escaped and clipped here, like every
text the Slack views show.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.plan import PRIOR_WEIGHT, Input, Per, RevenuePlan, SegmentPlan, whole
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
    # Every other part is kept: the title, what is missing and the footer (a block each).
    blocks += _segment_blocks(plan, MAX_BLOCKS - 2 - bool(plan.missing))
    if plan.missing:
        lines = "\n".join(f"• {one_line(item, 400)}" for item in plan.missing)
        blocks.append(section(f"⚠️ *Missing*\n{lines}"))
    blocks.append(
        context(
            f"Split of the goal: {one_line(plan.split_origin, 300)}",
            f"Rates from the MQLs received in the {plan.history_weeks} weeks to "
            f"{slack_date(as_of, policy.timezone)}, blended with sla.yaml's by sample size "
            f"(its values count as {PRIOR_WEIGHT} observations) · counts are rounded up once, "
            "when shown · a month is 4.33 weeks, a quarter 13",
        )
    )
    return Message(text=_fallback(plan), blocks=blocks)


def _segment_blocks(plan: RevenuePlan, room: int) -> list[dict[str, Any]]:
    """A section per segment, in `room` blocks at most: a message holds 50 (docs.slack.dev/
    reference/block-kit/blocks), and past them Slack refuses it. More segments than that share
    sections, whole, up to a section's 3,000 characters; any still past the room are counted,
    with the command that prints them all (`handoff plan`, bot/cli/main.py)."""
    texts = [_segment_text(segment, plan) for segment in plan.segments]
    if len(texts) <= room:
        return [section(text) for text in texts]
    groups: list[list[str]] = [[]]
    for text in texts:
        joined = "\n\n".join([*groups[-1], text])
        if groups[-1] and len(joined) > SECTION_LIMIT:
            groups.append([])
        groups[-1].append(text)
    if len(groups) <= room:
        return [section("\n\n".join(group)) for group in groups]
    shown = groups[: room - 1]
    unshown = len(texts) - sum(len(group) for group in shown)
    goal = plan.goal
    # With the plan's currency, so a plan shown in the goal's (no plan.currency) prints in it.
    amount = " ".join(filter(None, [plan.currency, number(goal.amount).replace(",", "")]))
    command = f"handoff plan {amount} --per {goal.per} --weeks {plan.history_weeks}"
    more = context(
        f"…and {unshown} more segment{'' if unshown == 1 else 's'}: `{command}` prints all of "
        f"them (Slack shows {MAX_BLOCKS} blocks in a message at most)"
    )
    return [*(section("\n\n".join(group)) for group in shown), more]


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


def number(value: float) -> str:
    """`5,000`, `0.25`, `12,345.5`: as written, never in exponent form."""
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def percent(share: float) -> str:
    """`25%`, `12.5%`."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


def per_week(value: float) -> str:
    return f"{value:,.1f}"


def _sample(item: Input, words: str, shown: Callable[[float], str]) -> str:
    """How `item` was worked out, with the numbers a calculator needs."""
    if item.prior is not None and item.trials:
        return (
            f"measured {words} ({shown(item.measured or 0)}) {item.scope}, blended with "
            f"sla.yaml's {shown(item.prior)} ({item.prior_key}, weight {item.weight}): "
            f"({number(item.successes)} + {number(item.prior)} × {item.weight}) ÷ "
            f"({number(item.trials)} + {item.weight})"
        )
    if item.prior is not None:
        return f"sla.yaml {item.prior_key} (nothing measured yet)"
    return f"measured {words} {item.scope} (no sla.yaml value to blend with)"


def input_line(
    label: str, item: Input, shown: Callable[[float], str], words: Callable[[Input], str]
) -> str:
    """`win rate (opportunity → won) 27.3%: measured 1 won of 2 closed (50%) in enterprise,
    blended with sla.yaml's 25% (plan.win_rate, weight 20): (1 + 0.25 × 20) ÷ (2 + 20)`."""
    if item.value is None:
        return f"{label}: missing"
    return f"{label} {shown(item.value)}: {_sample(item, words(item), shown)}"


def _of(item: Input, of: str, became: str) -> str:
    return f"{number(item.successes)} of {number(item.trials)} {of} {became}"


def inputs(segment: SegmentPlan, currency: str | None) -> list[str]:
    """Where each of the segment's numbers came from, in the order the plan works back."""

    def deals(item: Input) -> str:
        return f"mean of {counted(item.trials, 'won deal', 'won deals')}"

    def amount(value: float) -> str:
        return money(value, currency)

    straight = [
        input_line(
            "MQL → opportunity",
            shortcut,
            percent,
            lambda item: _of(item, "MQLs", "became opportunities"),
        )
        for shortcut in filter(None, [segment.mql_opportunity_rate])
    ]
    return [
        input_line("average deal", segment.average_deal, amount, deals),
        input_line(
            "win rate (opportunity → won)",
            segment.win_rate,
            percent,
            lambda item: f"{number(item.successes)} won of {number(item.trials)} closed",
        ),
        input_line(
            "SQL → opportunity",
            segment.opportunity_rate,
            percent,
            lambda item: _of(item, "SQLs", "became opportunities"),
        ),
        input_line(
            "SAL → SQL", segment.sql_rate, percent, lambda item: _of(item, "SALs", "qualified")
        ),
        input_line(
            "MQL → SAL", segment.sal_rate, percent, lambda item: _of(item, "MQLs", "accepted")
        ),
        *straight,
    ]


def chain(segment: SegmentPlan, per: Per) -> str:
    """`30 deals → 120 opportunities → 240 SQLs → 600 SALs → 800 MQLs a quarter: 61.5 MQLs a
    week`, as far as known. Each count is the unrounded figure rounded up."""
    steps = [
        (segment.deals, "deal", "deals"),
        (segment.opportunities, "opportunity", "opportunities"),
        (segment.sqls, "SQL", "SQLs"),
        (segment.sals, "SAL", "SALs"),
        (segment.mqls, "MQL", "MQLs"),
    ]
    known = [counted(value, one, many) for value, one, many in steps if value is not None]
    if segment.mqls is None or segment.mqls_per_week is None:
        return " → ".join([*known, "MQLs not known yet"])
    return " → ".join(known) + f" a {per}: {per_week(segment.mqls_per_week)} MQLs a week"


def counted(value: float, one: str, many: str) -> str:
    """`1 deal`, `4 opportunities`: a count rounded up (`count`), its noun agreeing with it."""
    return f"{count(value)} {one if whole(value) == 1 else many}"


def pace(segment: SegmentPlan) -> str:
    """`now 3.1 a week, target 10`: the measured MQL pace and the SLA's weekly target."""
    target = f", target {segment.target}" if segment.target is not None else ""
    return f"now {per_week(segment.mqls_now)} a week{target}"


def headline(plan: RevenuePlan) -> str:
    """`Marketing needs 102.6 MQLs a week (1,334 a quarter) → 1,000 SALs → …`, or what is in the
    way. The counts are the segments' counts added up, so the segments add up to them."""
    totals = plan.totals
    if totals is None:
        return "Not enough to work back from yet: see what is missing."
    per = plan.goal.per
    steps = [(totals.sals, "SAL", "SALs"), (totals.sqls, "SQL", "SQLs")]
    known = "".join(
        f" → {counted(value, one, many)}" for value, one, many in steps if value is not None
    )
    return (
        f"Marketing needs {per_week(totals.mqls_per_week)} MQLs a week ({totals.mqls:,} a "
        f"{per}){known}"
        f" → {counted(totals.opportunities, 'opportunity', 'opportunities')} → "
        f"{counted(totals.deals, 'won deal', 'won deals')}; now {per_week(plan.mqls_now)} MQLs a "
        f"week ({observed(plan)})"
    )


def observed(plan: RevenuePlan) -> str:
    """`over 26 weeks`, or `over the 2.0 weeks since the first MQL` for a shorter history."""
    if plan.observed_weeks >= plan.history_weeks:
        return f"over {plan.history_weeks} weeks"
    return f"over the {plan.observed_weeks:.1f} weeks since the first MQL"
