"""`handoff plan`: the revenue plan as plain text, in the words `/sla-plan` uses."""

from __future__ import annotations

from bot.domain.plan import PRIOR_WEIGHT, RevenuePlan
from bot.slack.plan_view import chain, headline, inputs, money, pace, percent


def as_text(plan: RevenuePlan) -> str:
    """The plan as plain text (`handoff plan`)."""
    goal, currency = plan.goal, plan.currency
    lines = [
        f"Revenue plan: {money(goal.amount, currency)} a {goal.per} "
        f"({goal.weeks:g} weeks), rates from the MQLs of the last {plan.history_weeks} weeks "
        f"blended with sla.yaml's (weight {PRIOR_WEIGHT}); counts rounded up once, when shown",
    ]
    lines.append(headline(plan))
    lines.append(f"Split of the goal: {plan.split_origin}")
    for segment in plan.segments:
        lines.append("")
        lines.append(
            f"{segment.segment}: {percent(segment.share)} of the goal, "
            f"{money(segment.revenue, currency)} a {goal.per}"
        )
        lines.append(f"  {chain(segment, goal.per)} ({pace(segment)})")
        lines += [f"  {line}" for line in inputs(segment, currency)]
    if plan.missing:
        lines += ["", "Missing:"] + [f"  - {item}" for item in plan.missing]
    return "\n".join(lines)
