"""The report's week is midnight to midnight in the team's zone, also when daylight saving
makes it 167 or 169 hours long: a lead at the last microsecond of Sunday is in the week, one
at Monday 00:00 in the next (Sydney's clocks go forward on 2026-10-04, back on 2026-04-05)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.policy import Policy
from bot.domain.report import Period, attempt_standard, parse_period
from storage.reports import Filter, ReportStore
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import services_on

MICROSECOND = timedelta(microseconds=1)


@pytest.mark.parametrize(("number", "hours"), [(40, 167), (14, 169)])
async def test_a_week_across_a_dst_change_holds_its_own_leads(
    store: Store, policy: Policy, number: int, hours: int
) -> None:
    week = Period(2026, number, policy.timezone)
    assert week.end - week.start == timedelta(hours=hours)
    services = await services_on(store, policy, week.start - timedelta(days=30))
    arrivals = {
        "before": week.start - MICROSECOND,
        "first": week.start,
        "last": week.end - MICROSECOND,
        "after": week.end,
    }
    for name, at in arrivals.items():
        assert (await services.intake(lead_payload(name), at)).lead is not None
    as_of = week.end + timedelta(days=1)
    facts = await ReportStore(store.db).facts(
        week.start, week.end, as_of, attempt_standard(policy, as_of), Filter()
    )
    assert sum(counts.received for counts in facts.counts.values()) == 2
    # `/sla-report last-week` on the next Monday morning, Sydney time, is this week.
    monday = week.end + timedelta(hours=9)
    assert parse_period("last-week", monday, policy.timezone) == week
