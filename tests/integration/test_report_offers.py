"""A week with leads offered to the pool again and again reports what it reported when the
deadlines an offer kept were looked up afresh wherever the report's query read a deadline:
the lookup is made once per handed-over cycle now (storage/reports.py `cycle_dues`), over
the real services, sweep and store on SQLite and PostgreSQL.

Week 2026-W48 (Sydney). Four hot enterprise leads arrive Mon 23 Nov 11:00; Maya (U0REP1)
claims C1 and C2, Tom (U0REP2) C3 and C4, at 11:05 (feedback due Thu 26 Nov 11:05, the final
disposition Mon 7 Dec 11:05), and each calls at 11:10. Maya is away from Wed 25 Nov to
Wed 9 Dec, Tom from Fri 27 Nov to Wed 2 Dec (the sweep offers an away rep's overdue lead in
business hours: Tuesday 09:00):

- C1: Maya marks it progressing on Tuesday (in time); offered at its final deadline (both
  deadlines kept: the feedback answered, the final missed); Tom claims it at 12:00 and
  closes it Qualified on Tuesday 8 Dec.
- C2: no feedback: offered at Thursday's deadline (kept, Maya's miss) to Tom, who claims it
  at 12:00 and gives none either: offered again past his own deadline (Sun 29 Nov 12:00, kept
  too) while he is away, to nobody (Maya is away): the cycle's first offer's is its.
- C3: Tom gives no feedback; offered on Tuesday, past its deadline while he is away
  (Thursday's deadline kept, his miss), to nobody.
- C4: a manager hands it to Maya on Tuesday, before its deadline; she marks it progressing at
  once (in time, hers), and it is offered at its final deadline to Tom (both kept).
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
from storage.away import AwayStore
from storage.reports import ReportStore
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import Wakes
from tests.integration.test_report_oracle import assert_by_rep_adds_up

ZONE = ZoneInfo("Australia/Sydney")
W48 = Period(2026, 48, "Australia/Sydney")
MAYA, TOM, MANAGER = "U0REP1", "U0REP2", "U0MGR1"
KEYS = ("first_touch", "feedback", "final", "speed_median")


def day(date: int, hour: int, minute: int = 0) -> datetime:
    month = 11 if date > 20 else 12
    return datetime(2026, month, date, hour, minute, tzinfo=ZONE).astimezone(UTC)


def figures(report: Report) -> dict[str, list[tuple[str, float | None, str]]]:
    """The team's and each rep's first touch, feedback, final disposition and speed to lead."""
    found = {
        key: [(s.name, k.value, k.detail) for s in report.by_rep for k in s.kpis if k.key == key]
        for key in KEYS
    }
    found["team"] = [(k.key, k.value, k.detail) for k in report.headline if k.key in KEYS]
    return found


async def test_a_week_of_repeated_offers_reports_as_before(store: Store, policy: Policy) -> None:
    book = PolicyBook(store, policy)
    await book.record_current(day(23, 9) - timedelta(days=30))
    services = Services(store, book, Wakes())
    away = AwayStore(store.db)
    sweeper = Sweeper(SweepStore(store.db), book, Wakes(), away=away)
    reports = Reports(ReportStore(store.db), book)

    leads = []
    for name, rep in (("c1", MAYA), ("c2", MAYA), ("c3", TOM), ("c4", TOM)):
        result = await services.intake(lead_payload(f"hs-{name}"), day(23, 11))
        assert isinstance(result, Stored)
        await store.mark_posted(result.lead.id, result.lead.channel, f"1.{name}", day(23, 11))
        await services.claim(result.lead.id, rep, day(23, 11, 5))
        await services.log_attempt(result.lead.id, rep, "call", day(23, 11, 10))
        leads.append(result.lead.id)
    c1, c2, c3, c4 = leads
    await services.dispose(c1, MAYA, "progressing", day(24, 10))
    await services.reassign(c4, MANAGER, MAYA, day(24, 10))
    await services.dispose(c4, MAYA, "progressing", day(24, 10, 1))
    await away.set(MAYA, day(9, 17), "Leave", MAYA, day(24, 12))
    await sweeper.run(day(26, 11, 5) + timedelta(seconds=1))  # C2: offered to Tom
    await services.claim(c2, TOM, day(26, 12))
    await away.set(TOM, day(2, 17), "Leave", TOM, day(27, 12))
    await sweeper.run(day(1, 9) + timedelta(seconds=1))  # C2 again, and C3
    await sweeper.run(day(7, 11, 5) + timedelta(seconds=1))  # C1 and C4 at their final deadline
    await services.claim(c1, TOM, day(7, 12))
    await services.dispose(c1, TOM, "qualified", day(8, 10))

    offers = {
        lead_id: [
            {k: v for k, v in e.data.items() if k in ("from", "feedback_due", "final_due")}
            for e in await store.events(lead_id)
            if e.type == "offered"
        ]
        for lead_id in leads
    }
    feedback, final = "2026-11-26T00:05:00.000000+00:00", "2026-12-07T00:05:00.000000+00:00"
    assert offers == {
        c1: [{"from": MAYA, "feedback_due": feedback, "final_due": final}],
        c2: [
            {"from": MAYA, "feedback_due": feedback},
            {"from": TOM, "feedback_due": "2026-11-29T01:00:00.000000+00:00"},
        ],
        c3: [{"from": TOM, "feedback_due": feedback}],
        c4: [{"from": MAYA, "feedback_due": feedback, "final_due": final}],
    }

    as_of = day(14, 12)
    report = await reports.report(W48, as_of)
    unclaimed = [("(unclaimed)", None, "0 of 0")]
    maya = {
        "first_touch": [(MAYA, 1.0, "2 of 2")],  # C1, C2
        "feedback": [(MAYA, 2 / 3, "2 of 3")],  # C1 and C4 in time, C2 missed (its first offer)
        "final": [(MAYA, 0.0, "0 of 2")],  # C1 and C4, kept at their offers
        "speed_median": [(MAYA, 10.0, "2 leads")],
    }
    tom = {
        "first_touch": [(TOM, 1.0, "2 of 2")],  # C3, C4 (his when it was touched)
        "feedback": [(TOM, 0.0, "0 of 1")],  # C3; C2's is Maya's, kept by its first offer
        "final": [(TOM, None, "0 of 0")],  # C1's kept deadline is Maya's, not his
        "speed_median": [(TOM, 10.0, "2 leads")],
    }
    assert figures(report) == {
        "first_touch": [*unclaimed, *maya["first_touch"], *tom["first_touch"]],
        "feedback": [*unclaimed, *maya["feedback"], *tom["feedback"]],
        "final": [*unclaimed, *maya["final"], *tom["final"]],
        "speed_median": [
            ("(unclaimed)", None, "0 leads"),
            (MAYA, 10.0, "2 leads"),
            (TOM, 10.0, "2 leads"),
        ],
        "team": [
            ("first_touch", 1.0, "4 of 4"),
            ("feedback", 0.5, "2 of 4"),
            ("final", 0.0, "0 of 2"),
            ("speed_median", 10.0, "4 leads"),
        ],
    }
    assert_by_rep_adds_up(report)
    # A report for one rep takes the same split.
    for rep, theirs in ((MAYA, maya), (TOM, tom)):
        team = [(key, value, detail) for key, ((_, value, detail),) in theirs.items()]
        assert figures(await reports.report(W48, as_of, rep=rep)) == theirs | {"team": team}
