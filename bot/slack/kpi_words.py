"""Each KPI's plain one-line definition and its target key, in the order `/sla` lists them.

docs/reports.md gives the same definitions with their formulas; tests/unit/test_kpi_words.py
checks that every target key of `targets:` is here and in the docs."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.policy import VELOCITY_STEPS, Policy
from bot.slack.text import one_line


@dataclass(frozen=True)
class KpiWords:
    name: str
    definition: str
    target_key: str  # under `targets:` in sla.yaml


KPI_WORDS = (
    KpiWords("MQL volume", "leads received that qualified as MQLs, per segment", "mql_per_week"),
    KpiWords(
        "Data completeness",
        "leads that arrived with every required field ÷ leads",
        "data_completeness",
    ),
    KpiWords("ICP match", "leads that fit the ICP ÷ leads", "icp_match"),
    KpiWords(
        "MQL → SAL (acceptance)",
        "MQLs claimed and not rejected (not a fit, bad data) ÷ MQLs posted",
        "acceptance_rate",
    ),
    KpiWords("SAL → SQL", "MQLs qualified (SQL) ÷ MQLs accepted", "sal_to_sql_rate"),
    KpiWords("MQL → SQL", "SQLs ÷ MQLs posted", "mql_to_sql_rate"),
    KpiWords(
        "SQL → SQO", "SQLs that reached the CRM's opportunity stage ÷ SQLs", "sql_to_sqo_rate"
    ),
    KpiWords(
        "First-touch compliance",
        "MQLs first touched by their deadline ÷ MQLs touched or past it (not those rejected "
        "inside it without a touch)",
        "first_touch_compliance",
    ),
    KpiWords(
        "Coverage",
        "MQLs with the minimum attempts, or resolved by a conversation first ÷ MQLs whose "
        "attempt window has closed",
        "attempts_coverage",
    ),
    KpiWords(
        "Feedback completion",
        "claimed leads dispositioned by their deadline ÷ those dispositioned or past it",
        "feedback_completion",
    ),
    KpiWords(
        "Response time",
        "MQL creation → first contact attempt, the mean (its target's) and the median",
        "response_time",
    ),
    KpiWords(
        "Speed to lead",
        "Slack post → first contact attempt, median and p90 by tier (a tier the SLA gives "
        "longer than the target: its own first-touch window)",
        "speed_to_lead",
    ),
    KpiWords("Time to claim", "Slack post → claim, median", "time_to_claim"),
    KpiWords(
        "Lead velocity",
        "mean calendar days MQL → SAL → SQL → opportunity → won, each step over the leads "
        "that made it",
        "lead_velocity",
    ),
    KpiWords(
        "Pipeline generated", "the amounts of the MQLs' CRM opportunities", "pipeline_per_week"
    ),
    KpiWords("Won", "the amounts of the MQLs' won deals", "won_per_week"),
    KpiWords("Win rate", "won deals ÷ closed opportunities (won + lost)", "win_rate"),
    KpiWords(
        "Recycle → SQL",
        "leads back from recycling or nurture that became SQLs in their new cycle ÷ leads back",
        "recycle_to_sql_rate",
    ),
    KpiWords(
        "Lead quality",
        "the reps' rating of fit and of timing after a disposition, 1–5, mean",
        "lead_quality",
    ),
)


def target_words(key: str, policy: Policy) -> str:
    """`target 70%`, `target ≤ 2h`, `target 4 of 5`, or how to set one: `no target
    (targets.win_rate)`."""
    found = _target(key, policy)
    return f"target {found}" if found else f"no target (`targets.{key}`)"


def _target(key: str, policy: Policy) -> str | None:
    targets = policy.targets
    value = getattr(targets, key)
    if key == "mql_per_week":
        return ", ".join(f"{one_line(n, 40)} {c}/week" for n, c in value.items()) or None
    if key == "lead_velocity":
        steps = [
            f"{step.replace('_', ' ')} ≤ {value[step]:g}d"
            for step in VELOCITY_STEPS
            if step in value
        ]
        return ", ".join(steps) or None
    if value is None:
        return None
    if key in ("response_time", "speed_to_lead", "time_to_claim"):
        return f"≤ {value}"
    if key == "lead_quality":
        return f"{value:g} of 5"
    if key in ("pipeline_per_week", "won_per_week"):
        currency = f"{policy.currency} " if policy.currency else ""
        return f"{currency}{value:,.0f} a week"
    return f"{value:.0%}"
