"""The revenue plan: work back from a revenue goal to the MQLs a week it needs."""

from __future__ import annotations

from datetime import datetime

from bot.domain.plan import Goal, RevenuePlan, build_plan
from bot.domain.policy import Policy
from bot.domain.refusal import Refusal
from bot.services.policies import PolicyBook
from storage.plan import PlanStore

PLAN_WEEKS = 26  # the history a revenue plan measures its rates over, by default
MAX_PLAN_WEEKS = 260


async def revenue_plan(
    store: PlanStore, policy: Policy, goal: Goal, now: datetime, weeks: int = PLAN_WEEKS
) -> RevenuePlan:
    """Work back from `goal` with the rates of the MQLs received in the last `weeks` weeks."""
    if not 1 <= weeks <= MAX_PLAN_WEEKS:
        raise Refusal(f"The plan measures 1 to {MAX_PLAN_WEEKS} weeks of history, not {weeks}.")
    return build_plan(goal, await store.history(now, weeks), policy)


class Plans:
    """`/sla-plan`: the plan under the current SLA, from the stored history."""

    def __init__(self, store: PlanStore, policies: PolicyBook) -> None:
        self.store = store
        self.policies = policies

    async def plan(self, goal: Goal, now: datetime, weeks: int = PLAN_WEEKS) -> RevenuePlan:
        return await revenue_plan(self.store, self.policies.current, goal, now, weeks)
