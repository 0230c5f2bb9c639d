"""A lead that comes back never rewrites a week already reported (SPEC: "Stage timestamps are
never overwritten"), over the real services and store on SQLite and PostgreSQL.

Week 2026-W43 (Mon 19 – Sun 25 Oct 2026, Sydney, AEDT): lead L arrives Mon 09:00, is posted,
claimed by U0REP1 at 09:10 and called at 09:20; five more calls follow, 29 hours apart, and it
is closed *Unable to contact* on Mon 26 Oct 15:00 (the week after). 30 days later, Wed 25 Nov
15:00 (W48), the sweep brings it back as a new cycle, posted again and unclaimed. Lead N, also
W43, is closed *Bad timing* (nurture) on Tue 20 Oct; marketing sends it again with a demo
request on Thu 26 Nov (W48), and it re-qualifies as a new cycle.

W43's report, read at the same "as of", is the same before and after both come back: L and N
accepted, touched on time, their dispositions in the mix, their owner's. W48's counts their new
cycles: three MQLs posted, none claimed or touched yet, two back from recycling or nurture
(Recycle → SQL: 0 of 2); lead M, nurtured at intake in W42 (not an MQL), re-qualifies in W48:
a first-time MQL, not a recycled one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, select, update

from bot.domain.policy import Policy
from bot.domain.report import Period, Report
from bot.services.erasure import forget
from bot.services.leads import Services, Stored
from bot.services.policies import PolicyBook
from bot.services.reports import Reports
from bot.services.sweep import Sweeper
from storage.reports import ReportStore
from storage.repository import Store
from storage.sweep import SweepStore
from storage.tables import LeadCycleRow, table
from tests.conftest import lead_payload
from tests.integration.conftest import Wakes

ZONE = ZoneInfo("Australia/Sydney")
W43 = Period(2026, 43, "Australia/Sydney")
W48 = Period(2026, 48, "Australia/Sydney")
OWNER = "U0REP1"
AS_OF = datetime(2026, 12, 7, 12, 0, tzinfo=ZONE).astimezone(UTC)  # Mon of W50
DEMO = {"type": "demo_request", "title": "Book a demo", "at": "2026-11-25T22:00:00Z"}


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def seen(report: Report) -> dict[str, object]:
    """What a manager reads in a report: every figure with its detail, the mix, the funnel,
    the figures by rep."""
    return {
        "headline": [(k.key, k.value, k.detail) for k in report.headline],
        "volume": [(k.key, k.value, k.detail) for k in report.volume],
        "dispositions": report.dispositions,
        "conversion": report.conversion,
        "by_rep": [(s.name, [(k.key, k.value) for k in s.kpis]) for s in report.by_rep],
        "first_touch": report.first_touch,
        "speed": report.speed_minutes,
    }


async def test_a_lead_that_comes_back_leaves_its_first_week_as_reported(
    store: Store, policy: Policy
) -> None:
    book = PolicyBook(store, policy)
    await book.record_current(at(10, 1, 9))
    services = Services(store, book, Wakes())
    sweeper = Sweeper(SweepStore(store.db), book, Wakes())
    reports = Reports(ReportStore(store.db), book)

    async def arrive(name: str, when: datetime, **fields: object) -> int:
        result = await services.intake(lead_payload(f"hs-{name}", **fields), when)
        assert isinstance(result, Stored)
        await store.mark_posted(result.lead.id, result.lead.channel, f"1.{name}", when)
        await services.claim(result.lead.id, OWNER, when + timedelta(minutes=10))
        await services.log_attempt(result.lead.id, OWNER, "call", when + timedelta(minutes=20))
        return result.lead.id

    recycled = await arrive("l", at(10, 19, 9))
    for attempt in range(1, 6):
        when = at(10, 19, 9, 20) + timedelta(hours=29 * attempt)
        await services.log_attempt(recycled, OWNER, "call", when)
    await services.dispose(recycled, OWNER, "no_response", at(10, 26, 15))
    nurtured = await arrive("n", at(10, 19, 11), source="event")
    await services.dispose(nurtured, OWNER, "bad_timing", at(10, 20, 10))

    # M, in W42, did not qualify (nurtured at intake, never handed to sales).
    low = await services.intake(lead_payload("hs-m", source="event", score=20), at(10, 12, 12))
    assert isinstance(low, Stored) and low.lead.stage.value == "nurture"

    first = await reports.report(W43, AS_OF)
    assert first.conversion.sal == 2 and first.first_touch == (2, 2)
    assert [s.name for s in first.by_rep] == [OWNER]
    assert {code for code, _, _ in first.dispositions} == {"no_response", "bad_timing"}
    before = seen(first)

    back = (await services.lead(recycled)).next_action_at
    assert back is not None and W48.start <= back < W48.end
    await sweeper.run(back)
    lead = await services.lead(recycled)
    assert (lead.cycle, lead.claimed_at, lead.disposition_code) == (2, None, None)
    await store.mark_posted(recycled, lead.channel, "2.l", back)
    sent = lead_payload("hs-n", source="event")
    sent["engagement"] = [*sent["engagement"], DEMO]
    again = await services.intake(sent, at(11, 26, 9))
    assert isinstance(again, Stored) and again.lead.cycle == 2
    await store.mark_posted(nurtured, again.lead.channel, "2.n", at(11, 26, 9))
    sent = lead_payload("hs-m", source="event", score=90)
    sent["engagement"] = [*sent["engagement"], DEMO]
    qualified = await services.intake(sent, at(11, 26, 10))
    assert isinstance(qualified, Stored) and qualified.lead.cycle == 2
    await store.mark_posted(qualified.lead.id, qualified.lead.channel, "2.m", at(11, 26, 10))

    # W43 reads as it did: the cycles that ended are kept as they stood.
    assert seen(await reports.report(W43, AS_OF)) == before
    filtered = await reports.report(W43, AS_OF, rep=OWNER)  # whose they were then
    assert filtered.conversion.sal == 2
    kept = await store.db.run(
        lambda db: db.execute(select(func.count()).select_from(LeadCycleRow)).scalar_one()
    )
    assert kept == 3  # one row a cycle that ended, written once

    # W48 counts the new cycles, where they began.
    now = await reports.report(W48, AS_OF)
    assert (now.conversion.posted, now.conversion.sal) == (3, 0)
    kpis = {k.key: (k.value, k.detail) for k in now.headline}
    # L and N came back after sales routed them back to marketing (seed 001's
    # "Recycling/Nurture" area, whose KPI is "Recycle→SQL rate"): L by the sweep after
    # recycle_after, N nurtured and sent again by marketing. M is a first-time MQL: sales never
    # had it. Neither is qualified yet in its new cycle.
    assert kpis["recycle_to_sql"] == (0.0, "0 of 2")
    assert kpis["response_median"][1] == "3 leads, 3 not touched yet"
    assert now.dispositions == []

    # N is nurtured again in its second cycle and sent again in W49: W48 still counts that
    # cycle as back from nurture (read from the cycle kept when it ended).
    await services.claim(nurtured, OWNER, at(11, 26, 11))
    await services.dispose(nurtured, OWNER, "bad_timing", at(11, 26, 12))
    sent = lead_payload("hs-n", source="event")
    webinar = {"type": "webinar", "title": "Q1 kickoff", "at": "2026-12-01T22:00:00Z"}
    sent["engagement"] = [*sent["engagement"], DEMO, webinar]
    third = await services.intake(sent, at(12, 2, 9))
    assert isinstance(third, Stored) and third.lead.cycle == 3
    later = {k.key: (k.value, k.detail) for k in (await reports.report(W48, AS_OF)).headline}
    assert later["recycle_to_sql"] == (0.0, "0 of 2")
    # Erasing the people leaves the figure as it was (the kept cycles name nobody).
    for name in ("hs-l", "hs-n", "hs-m"):
        await forget(store, Wakes(), name, "cli", at(12, 3, 9))
    erased = {k.key: (k.value, k.detail) for k in (await reports.report(W48, AS_OF)).headline}
    assert erased["recycle_to_sql"] == (0.0, "0 of 2")


async def test_a_cycle_whose_previous_one_ended_before_cycles_were_kept_counts_by_the_rule(
    store: Store, policy: Policy
) -> None:
    """Migration 0026 kept no cycle that had ended before it, and the cycles kept between it
    and the rule that counts every way back were stored with `recycled` as the sweep's
    comebacks alone. Lead N, closed *Bad timing* in W43 (sales routed it back to marketing),
    re-qualifies when marketing sends it again in W48: W48's Recycle → SQL counts it whether
    its first cycle is kept or not (its audit trail has the disposition), and still does once
    that second cycle has ended, kept under the old rule, and a third began."""
    book = PolicyBook(store, policy)
    await book.record_current(at(10, 1, 9))
    services = Services(store, book, Wakes())
    reports = Reports(ReportStore(store.db), book)
    result = await services.intake(lead_payload("hs-n", source="event"), at(10, 19, 11))
    assert isinstance(result, Stored)
    nurtured = result.lead.id
    await store.mark_posted(nurtured, result.lead.channel, "1.n", at(10, 19, 11))
    await services.claim(nurtured, OWNER, at(10, 19, 11, 10))
    await services.dispose(nurtured, OWNER, "bad_timing", at(10, 20, 10))
    sent = lead_payload("hs-n", source="event")
    sent["engagement"] = [*sent["engagement"], DEMO]
    again = await services.intake(sent, at(11, 26, 9))
    assert isinstance(again, Stored) and again.lead.cycle == 2

    def ended_before_0026(db: Connection) -> None:  # as such a lead is stored
        db.execute(delete(table(LeadCycleRow)).where(LeadCycleRow.cycle == 1))

    await store.db.run(ended_before_0026)
    kpis = {k.key: k.detail for k in (await reports.report(W48, AS_OF)).headline}
    assert kpis["recycle_to_sql"] == "0 of 1"

    await services.claim(nurtured, OWNER, at(11, 26, 11))
    await services.dispose(nurtured, OWNER, "bad_timing", at(11, 26, 12))
    sent["engagement"] = [*sent["engagement"], {**DEMO, "at": "2026-12-01T22:00:00Z"}]
    third = await services.intake(sent, at(12, 2, 9))
    assert isinstance(third, Stored) and third.lead.cycle == 3

    def kept_under_the_old_rule(db: Connection) -> None:  # no `recycled_back` event: False
        db.execute(update(table(LeadCycleRow)).values(recycled=False))

    await store.db.run(kept_under_the_old_rule)
    kpis = {k.key: k.detail for k in (await reports.report(W48, AS_OF)).headline}
    assert kpis["recycle_to_sql"] == "0 of 1"
    # The figure survives erasing the person (the audit trail keeps what happened, and when).
    await forget(store, Wakes(), "hs-n", "cli", at(12, 3, 9))
    kpis = {k.key: k.detail for k in (await reports.report(W48, AS_OF)).headline}
    assert kpis["recycle_to_sql"] == "0 of 1"
