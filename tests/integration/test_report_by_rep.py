"""The by-rep table charges a lead's first touch to the rep who had it when the clock ran, not
to the rep who has it now, over the real services and store on SQLite and PostgreSQL.

Week 2026-W48 (Sydney). Four hot enterprise leads arrive Mon 23 Nov 11:00 (first touch due
13:00, two business hours):

- L1: Maya (U0REP1) claims it and does not call; at 14:00 a manager reassigns it to Tom
  (U0REP2), who calls at once (14:01).
- L2: Maya claims it and does not call; the sweep reassigns it to Tom at 15:01 (200% of the
  window), who calls at 15:02.
- L3: Tom's own, called at 11:30.
- L4: Maya claims it; a manager hands it to Tom at 11:30, before its deadline, and Tom calls
  at 13:30, late: it was his when the clock ran out.
- L5: Maya claims and calls it on time (11:20), then a manager reassigns it to Tom at 12:00:
  the touch on time is Maya's.

By rep: Maya 1 of 3 (L1 and L2 missed while she had them, L5 hers on time), Tom 1 of 2 (L3,
and L4's miss); L1 and L2 came to Tom after their deadline and do not count in his first
touch. The team's totals, by segment and by source, are those of the five leads (2 of 5).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.policy import Policy
from bot.domain.report import Period, Report
from bot.services.leads import Services, Stored
from bot.services.policies import PolicyBook
from bot.services.reports import Reports
from bot.services.sweep import Sweeper
from storage.reports import ReportStore
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import Wakes

ZONE = ZoneInfo("Australia/Sydney")
W48 = Period(2026, 48, "Australia/Sydney")
MAYA, TOM, MANAGER = "U0REP1", "U0REP2", "U0MGR1"
AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=ZONE).astimezone(UTC)  # the next Monday


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=ZONE).astimezone(UTC)


def first_touch(report: Report) -> dict[str, tuple[float | None, str]]:
    """Each rep's first-touch compliance as the by-rep table shows it."""
    return {
        s.name: (k.value, k.detail) for s in report.by_rep for k in s.kpis if k.key == "first_touch"
    }


def kpi(slices: list, key: str) -> list[tuple[str, float | None, str]]:  # type: ignore[type-arg]
    return [(s.name, k.value, k.detail) for s in slices for k in s.kpis if k.key == key]


async def test_a_missed_first_touch_stays_with_the_rep_who_had_the_lead(
    store: Store, policy: Policy
) -> None:
    book = PolicyBook(store, policy)
    await book.record_current(at(9) - timedelta(days=30))
    services = Services(store, book, Wakes())
    sweeper = Sweeper(SweepStore(store.db), book, Wakes())
    reports = Reports(ReportStore(store.db), book)

    async def arrive(name: str, rep: str) -> int:
        result = await services.intake(lead_payload(f"hs-{name}"), at(11))
        assert isinstance(result, Stored)
        await store.mark_posted(result.lead.id, result.lead.channel, f"1.{name}", at(11))
        await services.claim(result.lead.id, rep, at(11, 5))
        return result.lead.id

    l1, l2, l3, l4, l5 = [
        await arrive(name, rep)
        for name, rep in (("1", MAYA), ("2", MAYA), ("3", TOM), ("4", MAYA), ("5", MAYA))
    ]
    await services.log_attempt(l3, TOM, "call", at(11, 30))
    await services.log_attempt(l5, MAYA, "call", at(11, 20))
    await services.reassign(l4, MANAGER, TOM, at(11, 30))
    await services.reassign(l5, MANAGER, TOM, at(12))
    await services.log_attempt(l4, TOM, "call", at(13, 30))
    await services.reassign(l1, MANAGER, TOM, at(14))
    await services.log_attempt(l1, TOM, "call", at(14, 1))
    await sweeper.run(at(15, 1))
    assert (await services.lead(l2)).owner == TOM  # the SLA moved it: no first touch at 200%
    await services.log_attempt(l2, TOM, "call", at(15, 2))
    assert {(await services.lead(i)).owner for i in (l1, l2, l3, l4, l5)} == {TOM}

    report = await reports.report(W48, AS_OF)
    assert first_touch(report) == {MAYA: (1 / 3, "1 of 3"), TOM: (0.5, "1 of 2")}
    # The team's figures count every lead once, as before.
    assert report.first_touch == (2, 5)
    assert kpi(report.by_segment, "first_touch") == [("enterprise", 0.4, "2 of 5")]
    assert kpi(report.by_source, "first_touch") == [("webinar", 0.4, "2 of 5")]
    # The rest of the by-rep table is the leads' owners' now: all five are Tom's.
    mqls = {name: value for name, value, _ in kpi(report.by_rep, "mql")}
    assert mqls == {MAYA: 0.0, TOM: 5.0}
    # Speed to lead by rep goes with the first touch: Maya's leads waited 3h01 and 4h02 of
    # business time from the post (L1, L2) and 20 minutes (L5); Tom's 30 minutes and 2h30.
    speed = {name: value for name, value, _ in kpi(report.by_rep, "speed_median")}
    assert speed == {MAYA: 181.0, TOM: 30.0}
    # A report for one rep takes the same split.
    maya = await reports.report(W48, AS_OF, rep=MAYA)
    assert (maya.first_touch, first_touch(maya)) == ((1, 3), {MAYA: (1 / 3, "1 of 3")})
    tom = await reports.report(W48, AS_OF, rep=TOM)
    assert (tom.first_touch, first_touch(tom)) == ((1, 2), {TOM: (0.5, "1 of 2")})
    assert tom.conversion.posted == 5 and maya.conversion.posted == 0
