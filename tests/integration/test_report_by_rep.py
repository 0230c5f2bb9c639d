"""The by-rep table charges a lead's first touch (and its feedback and final disposition: the
last test) to the rep who had it when the clock ran, not to the rep who has it now, over the
real services and store on SQLite and PostgreSQL.

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

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, update

from bot.domain.erasure import erased_event_data, erased_values
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
from storage.tables import EventRow
from tests.conftest import lead_payload
from tests.integration.conftest import Wakes
from tests.integration.test_report_oracle import assert_by_rep_adds_up

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


def day(date: int, hour: int, minute: int = 0) -> datetime:
    """A time in Sydney from Mon 23 Nov (a date after the 20th is November's) into December."""
    month = 11 if date > 20 else 12
    return datetime(2026, month, date, hour, minute, tzinfo=ZONE).astimezone(UTC)


class Desk(NamedTuple):
    services: Services
    away: AwayStore
    sweeper: Sweeper
    reports: Reports


async def desk(store: Store, policy: Policy) -> Desk:
    """The services, the sweep (with who is away) and the reports over `store`, the SLA
    recorded a month before the week."""
    book = PolicyBook(store, policy)
    await book.record_current(at(9) - timedelta(days=30))
    away = AwayStore(store.db)
    return Desk(
        Services(store, book, Wakes()),
        away,
        Sweeper(SweepStore(store.db), book, Wakes(), away=away),
        Reports(ReportStore(store.db), book),
    )


async def posted(services: Services, store: Store, name: str) -> int:
    """A hot enterprise lead `hs-{name}` received and posted Mon 11:00: its id."""
    result = await services.intake(lead_payload(f"hs-{name}"), at(11))
    assert isinstance(result, Stored)
    await store.mark_posted(result.lead.id, result.lead.channel, f"1.{name}", at(11))
    return result.lead.id


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


async def test_a_lead_claimed_from_the_pool_after_its_deadline_is_missed_by_its_suggested_rep(
    store: Store, policy: Policy
) -> None:
    """Five hot enterprise leads arrive Mon 11:00 (first touch due 13:00), each suggested by
    the rotation (Maya, Tom, Maya, Tom, Maya) and claimed from the channel by the other rep:

    - P1: Tom claims it at 14:00, after its deadline, and calls at 14:01: the miss is Maya's
      (it was held for her while the clock ran); Tom is not measured on it.
    - P2: Maya claims Tom's suggestion at 12:00, before the deadline, and calls late (13:30):
      she had it when the clock ran, so the miss is hers.
    - P3: Tom claims Maya's suggestion at 12:00 and calls at 12:30: his, on time.
    - P4: as P1 (Tom's suggestion, Maya claims at 14:00), but its claim event is as Handoff
      wrote it before claims recorded whom the lead was held for (no `from`): the claimer's,
      as before.
    - P5: as P1, but the lead was held for nobody at the claim (`from` null: offered to a
      pool with nobody available): nobody's, as a reassignment of it would be.

    By rep: Maya 0 of 3 (P1, P2, P4), Tom 1 of 1 (P3), nobody 0 of 1 (P5). The team's,
    segment's and source's figures are the five leads' (1 of 5)."""
    book = PolicyBook(store, policy)
    await book.record_current(at(9) - timedelta(days=30))
    services = Services(store, book, Wakes())
    reports = Reports(ReportStore(store.db), book)

    leads, suggested = [], []
    for name in ("p1", "p2", "p3", "p4", "p5"):
        result = await services.intake(lead_payload(f"hs-{name}"), at(11))
        assert isinstance(result, Stored)
        await store.mark_posted(result.lead.id, result.lead.channel, f"1.{name}", at(11))
        leads.append(result.lead.id)
        suggested.append(result.lead.suggested_owner)
    assert suggested == [MAYA, TOM, MAYA, TOM, MAYA]
    p1, p2, p3, p4, p5 = leads
    for lead_id, rep, claimed, called in (
        (p1, TOM, at(14), at(14, 1)),
        (p2, MAYA, at(12), at(13, 30)),
        (p3, TOM, at(12), at(12, 30)),
        (p4, MAYA, at(14), at(14, 1)),
        (p5, TOM, at(14), at(14, 1)),
    ):
        await services.claim(lead_id, rep, claimed)
        await services.log_attempt(lead_id, rep, "call", called)
    # The claim records whom the lead was held for (its suggested rep) as `from`.
    trail = await store.events(p1)
    assert [e.data for e in trail if e.type == "claimed"] == [{"from": MAYA}]

    def rewrite(lead_id: int, data: dict[str, object]) -> Callable[[Connection], None]:
        claimed = EventRow.lead_id == lead_id, EventRow.type == "claimed"
        return lambda db: db.execute(update(EventRow).where(*claimed).values(data=data))

    await store.db.run(rewrite(p4, {}))  # an older Handoff's claim
    await store.db.run(rewrite(p5, {"from": None}))  # held for nobody

    report = await reports.report(W48, AS_OF)
    assert first_touch(report) == {
        MAYA: (0.0, "0 of 3"),
        TOM: (1.0, "1 of 1"),
        "(unclaimed)": (0.0, "0 of 1"),
    }
    assert report.first_touch == (1, 5)
    assert kpi(report.by_segment, "first_touch") == [("enterprise", 0.2, "1 of 5")]
    assert kpi(report.by_source, "first_touch") == [("webinar", 0.2, "1 of 5")]
    # Everything else by rep is the owners' now: Tom's P1, P3, P5, Maya's P2, P4.
    mqls = {name: value for name, value, _ in kpi(report.by_rep, "mql")}
    assert mqls == {MAYA: 2.0, TOM: 3.0, "(unclaimed)": 0.0}
    # Speed to lead goes with the first touch: P1 and P4 waited 3h01 from the post, P2 2h30.
    speed = {name: value for name, value, _ in kpi(report.by_rep, "speed_median")}
    assert speed == {MAYA: 181.0, TOM: 90.0, "(unclaimed)": 181.0}
    tom = await reports.report(W48, AS_OF, rep=TOM)
    assert (tom.first_touch, first_touch(tom)) == ((1, 1), {TOM: (1.0, "1 of 1")})
    maya = await reports.report(W48, AS_OF, rep=MAYA)
    assert (maya.first_touch, first_touch(maya)) == ((0, 3), {MAYA: (0.0, "0 of 3")})


async def test_feedback_and_final_disposition_stay_with_the_rep_who_had_the_lead(
    store: Store, policy: Policy
) -> None:
    """Three hot enterprise leads arrive Mon 23 Nov 11:00, each claimed at 11:05 and called at
    11:10: feedback is due 72 hours after the claim (Thu 26 Nov 11:05), the final disposition
    at the cadence's end, two weeks after it (Mon 7 Dec 11:05).

    - F1: Maya's; no feedback by Thursday. On Friday a manager reassigns it to Tom, who marks
      it progressing at once (late) and closes it Qualified on Tue 1 Dec (in time).
    - F2: Maya's; progressing on Tuesday (in time), left open past Mon 7 Dec; on Tue 8 Dec a
      manager reassigns it to Tom, who closes it Qualified at once (late).
    - F3: Tom's; progressing on Tuesday, Qualified on Wednesday: both in time.

    Each deadline is the rep's who had the lead when it ran (at the answer, if in time, else
    at the deadline): Maya's feedback 1 of 2 (F2 in time, F1 missed) and final 0 of 1 (F2);
    Tom's feedback 1 of 1 (F3) and final 2 of 2 (F1, F3). Before, all three were Tom's, the
    owner now: feedback 2 of 3, final 2 of 3, and Maya's misses his. Seed 003: "The SLA isn't
    a punishment device. The point is shared accountability, not blame assignment." The
    team's, segment's and source's figures are the three leads' (2 of 3 each)."""
    book = PolicyBook(store, policy)
    await book.record_current(at(9) - timedelta(days=30))
    services = Services(store, book, Wakes())
    reports = Reports(ReportStore(store.db), book)

    def day(date: int, hour: int, minute: int = 0) -> datetime:
        month = 11 if date > 20 else 12
        return datetime(2026, month, date, hour, minute, tzinfo=ZONE).astimezone(UTC)

    async def arrive(name: str, rep: str) -> int:
        result = await services.intake(lead_payload(f"hs-{name}"), at(11))
        assert isinstance(result, Stored)
        await store.mark_posted(result.lead.id, result.lead.channel, f"1.{name}", at(11))
        await services.claim(result.lead.id, rep, at(11, 5))
        await services.log_attempt(result.lead.id, rep, "call", at(11, 10))
        return result.lead.id

    f1, f2, f3 = [
        await arrive(name, rep) for name, rep in (("f1", MAYA), ("f2", MAYA), ("f3", TOM))
    ]
    assert (await services.lead(f1)).disposition_due_at == day(26, 11, 5)
    assert (await services.lead(f1)).final_due_at == day(7, 11, 5)
    await services.dispose(f2, MAYA, "progressing", day(24, 10))
    await services.dispose(f3, TOM, "progressing", day(24, 10))
    await services.dispose(f3, TOM, "qualified", day(25, 10))
    await services.reassign(f1, MANAGER, TOM, day(27, 11))
    await services.dispose(f1, TOM, "progressing", day(27, 11, 5))
    await services.dispose(f1, TOM, "qualified", day(1, 10))
    await services.reassign(f2, MANAGER, TOM, day(8, 10))
    await services.dispose(f2, TOM, "qualified", day(8, 10, 5))
    assert {(await services.lead(i)).owner for i in (f1, f2, f3)} == {TOM}

    as_of = day(14, 12)
    report = await reports.report(W48, as_of)
    assert kpi(report.by_rep, "feedback") == [(MAYA, 0.5, "1 of 2"), (TOM, 1.0, "1 of 1")]
    assert kpi(report.by_rep, "final") == [(MAYA, 0.0, "0 of 1"), (TOM, 1.0, "2 of 2")]
    # The rest by rep is the owner's now (all three Tom's); first touch was Maya's and Tom's.
    assert kpi(report.by_rep, "mql") == [(MAYA, 0.0, ""), (TOM, 3.0, "")]
    assert first_touch(report) == {MAYA: (1.0, "2 of 2"), TOM: (1.0, "1 of 1")}
    # The team's figures count every lead once, as before.
    for key in ("feedback", "final"):
        (team,) = [k for k in report.headline if k.key == key]
        assert team.detail == "2 of 3", key
        assert kpi(report.by_segment, key) == [("enterprise", 2 / 3, "2 of 3")]
        assert kpi(report.by_source, key) == [("webinar", 2 / 3, "2 of 3")]
    assert_by_rep_adds_up(report)
    # A report for one rep takes the same split.
    maya = await reports.report(W48, as_of, rep=MAYA)
    assert kpi(maya.by_rep, "feedback") == [(MAYA, 0.5, "1 of 2")]
    assert kpi(maya.by_rep, "final") == [(MAYA, 0.0, "0 of 1")]
    tom = await reports.report(W48, as_of, rep=TOM)
    assert kpi(tom.by_rep, "feedback") == [(TOM, 1.0, "1 of 1")]
    assert kpi(tom.by_rep, "final") == [(TOM, 1.0, "2 of 2")]


async def test_leads_nurtured_at_intake_have_a_row_of_their_own_not_unclaimed(
    store: Store, policy: Policy
) -> None:
    """Mon 23 Nov 11:00: a hot lead nobody claims, and a low-score lead with no title, routed
    straight to nurture at intake (never an MQL, never meant for a rep). A manager reads
    "(unclaimed)" as the leads nobody took: it is the MQL alone, its data completeness its own;
    the nurtured lead is counted under "(nurtured at intake)", so the table still adds up to the
    team's figures (every lead once). Before, both were "(unclaimed)": 2 leads received, data
    completeness 1 of 2."""
    book = PolicyBook(store, policy)
    await book.record_current(at(9) - timedelta(days=30))
    services = Services(store, book, Wakes())
    reports = Reports(ReportStore(store.db), book)
    hot = await services.intake(lead_payload("hs-hot"), at(11))
    assert isinstance(hot, Stored)
    await store.mark_posted(hot.lead.id, hot.lead.channel, "1.hot", at(11))
    low = await services.intake(lead_payload("hs-low", score=20, title=None), at(11))
    assert isinstance(low, Stored) and low.lead.stage.value == "nurture"

    report = await reports.report(W48, AS_OF)
    rows = {s.name: s for s in report.by_rep}
    assert sorted(rows) == ["(nurtured at intake)", "(unclaimed)"]
    assert (rows["(unclaimed)"].received, rows["(nurtured at intake)"].received) == (1, 1)
    assert kpi(report.by_rep, "mql") == [
        ("(nurtured at intake)", 0.0, ""),
        ("(unclaimed)", 1.0, ""),
    ]
    assert kpi(report.by_rep, "completeness") == [
        ("(nurtured at intake)", 0.0, "0 of 1"),
        ("(unclaimed)", 1.0, "1 of 1"),
    ]
    (team,) = [k for k in report.headline if k.key == "completeness"]
    assert team.detail == "1 of 2"  # the team's figures carry both, as before
    assert_by_rep_adds_up(report)


async def test_a_deadline_missed_before_an_offer_to_the_pool_stays_a_miss(
    store: Store, policy: Policy
) -> None:
    """Three hot enterprise leads arrive Mon 23 Nov 11:00, claimed by Maya at 11:05 (feedback
    due Thu 26 Nov 11:05, the final disposition Mon 7 Dec 11:05). Maya is away from 11:30 to
    Wed 9 Dec, and a lead of hers whose deadline passes goes back to the pool (an offer):

    - A1: called at 11:10, no feedback by Thursday: offered at 11:05 that day; Tom claims it at
      12:00, marks it progressing at 12:05 and closes it Qualified on Tue 1 Dec.
    - A2: called at 11:10, progressing on Tuesday (in time), left open past Mon 7 Dec: offered
      at 11:05 that day, and nobody has claimed it since.
    - A3: not called by 13:00: offered at 13:01, when no feedback or final deadline was due
      yet; Tom claims it at 14:00, calls at once, marks it progressing on Tuesday and leaves it
      open past his final deadline (Mon 7 Dec 14:00).

    The offer cleared the lead's feedback and final deadlines (a claim sets new ones), and with
    them Maya's missed Thursday (A1) and Monday (A2), and A2's feedback in time: the team read
    feedback 2 of 2 and final 1 of 2. A deadline that had run when the lead was offered stays
    the lead's, charged to Maya, who had it then (the offer's `from`); a deadline not yet due
    at the offer goes with the lead, as before (A3's are Tom's, from his claim). So: feedback
    Maya 1 of 2 (A2 in time, A1 missed), Tom 1 of 1 (A3); final Maya 0 of 1 (A2), Tom 1 of 2
    (A1 in time, A3 missed); the team's 2 of 3 and 1 of 3."""
    services, away, sweeper, reports = await desk(store, policy)

    leads = []
    for name in ("a1", "a2", "a3"):
        lead_id = await posted(services, store, name)
        await services.claim(lead_id, MAYA, at(11, 5))
        leads.append(lead_id)
    a1, a2, a3 = leads
    await services.log_attempt(a1, MAYA, "call", at(11, 10))
    await services.log_attempt(a2, MAYA, "call", at(11, 10))
    await away.set(MAYA, day(9, 17), "Leave", MAYA, at(11, 30))

    await sweeper.run(at(13, 1))  # A3's first touch is overdue: offered
    assert (await services.lead(a3)).owner is None
    await services.claim(a3, TOM, at(14))
    await services.log_attempt(a3, TOM, "call", at(14))
    await services.dispose(a2, MAYA, "progressing", day(24, 10))
    await services.dispose(a3, TOM, "progressing", day(24, 10))
    # A1's feedback deadline: offered once it has passed (an answer at it is in time)
    await sweeper.run(day(26, 11, 5))
    assert (await services.lead(a1)).owner == MAYA
    await sweeper.run(day(26, 11, 5) + timedelta(seconds=1))
    assert (await services.lead(a1)).owner is None
    await services.claim(a1, TOM, day(26, 12))
    await services.dispose(a1, TOM, "progressing", day(26, 12, 5))
    await services.dispose(a1, TOM, "qualified", day(1, 10))
    await sweeper.run(day(7, 11, 5) + timedelta(seconds=1))  # A2's final deadline: offered
    lead = await services.lead(a2)
    assert lead.owner is None and lead.final_due_at is None
    # Each offer keeps the deadlines that had run (answered or passed) when it cleared them.
    kept = []
    for lead_id in (a1, a2, a3):
        (offer,) = [e.data for e in await store.events(lead_id) if e.type == "offered"]
        assert offer["from"] == MAYA and offer["released"] is True
        kept.append({k: v for k, v in offer.items() if k.endswith("_due")})
    assert kept == [
        {"feedback_due": "2026-11-26T00:05:00.000000+00:00"},  # Thu 11:05 Sydney, missed
        {
            "feedback_due": "2026-11-26T00:05:00.000000+00:00",  # answered in time
            "final_due": "2026-12-07T00:05:00.000000+00:00",  # Mon 7 Dec 11:05, missed
        },
        {},  # none had run at 13:01 on Monday
    ]

    as_of = day(14, 12)
    report = await reports.report(W48, as_of)
    assert kpi(report.by_rep, "feedback") == [
        ("(unclaimed)", None, "0 of 0"),
        (MAYA, 0.5, "1 of 2"),
        (TOM, 1.0, "1 of 1"),
    ]
    assert kpi(report.by_rep, "final") == [
        ("(unclaimed)", None, "0 of 0"),
        (MAYA, 0.0, "0 of 1"),
        (TOM, 0.5, "1 of 2"),
    ]
    for key, detail in (("feedback", "2 of 3"), ("final", "1 of 3")):
        (team,) = [k for k in report.headline if k.key == key]
        assert team.detail == detail, key
        assert kpi(report.by_segment, key) == [("enterprise", team.value, detail)]
    assert_by_rep_adds_up(report)
    # A report for one rep takes the same split.
    maya = await reports.report(W48, as_of, rep=MAYA)
    assert kpi(maya.by_rep, "feedback") == [(MAYA, 0.5, "1 of 2")]
    assert kpi(maya.by_rep, "final") == [(MAYA, 0.0, "0 of 1")]
    tom = await reports.report(W48, as_of, rep=TOM)
    assert kpi(tom.by_rep, "final") == [(TOM, 0.5, "1 of 2")]
    # An erasure keeps the deadlines an offer kept (times, nothing about the person).
    for lead_id in (a1, a2, a3):
        stored = await store.get(lead_id)
        assert stored is not None
        values = erased_values(stored, as_of, store.erasure_key)
        await store.erase(lead_id, values, erased_event_data, "cli", as_of)
    erased = await reports.report(W48, as_of)
    assert kpi(erased.by_rep, "feedback") == kpi(report.by_rep, "feedback")
    assert kpi(erased.by_rep, "final") == kpi(report.by_rep, "final")


async def test_an_offers_kept_deadline_is_read_for_its_own_lead_only(
    store: Store, policy: Policy
) -> None:
    """Two hot enterprise leads arrive Mon 23 Nov 11:00.

    - K1: Tom claims it at 11:05 and calls at 11:10; he is away from Wednesday to Thursday
      17:00, so at its feedback deadline (Thu 26 Nov 11:05) the sweep offers it to the pool,
      keeping that deadline (missed, Tom's); Maya claims it at 12:00 and marks it progressing.
    - K2: Maya claims it on Wed 25 Nov 10:00 (feedback due Sat 28 Nov 10:00); on Friday, before
      the deadline, a manager hands it to Tom, who gives no feedback: the miss is Tom's, the
      deadline ran while he had it.

    The lookup of K1's kept deadline, nested in the lookup of who had a lead when its clock
    ran, was not tied to the lead: it read the first kept deadline of any lead in the
    database (K1's Thursday) for K2 as well, found Friday's handover after it and charged
    K2's miss to Maya. Feedback by rep: Tom 0 of 2, Maya none; the team's 0 of 2."""
    services, away, sweeper, reports = await desk(store, policy)

    k1, k2 = [await posted(services, store, name) for name in ("k1", "k2")]
    await services.claim(k1, TOM, at(11, 5))
    await services.log_attempt(k1, TOM, "call", at(11, 10))
    await services.claim(k2, MAYA, day(25, 10))
    await services.log_attempt(k2, MAYA, "call", day(25, 10))
    await away.set(TOM, day(26, 17), "Leave", TOM, day(25, 9))
    await sweeper.run(day(26, 11, 6))  # K1's feedback deadline has passed: offered
    (offer,) = [e.data for e in await store.events(k1) if e.type == "offered"]
    assert offer["from"] == TOM and offer["feedback_due"] == "2026-11-26T00:05:00.000000+00:00"
    await services.claim(k1, MAYA, day(26, 12))
    await services.dispose(k1, MAYA, "progressing", day(26, 12, 5))
    await services.reassign(k2, MANAGER, TOM, day(27, 10))
    assert (await services.lead(k2)).disposition_due_at == day(28, 10)

    report = await reports.report(W48, day(1, 12))
    (team,) = [k for k in report.headline if k.key == "feedback"]
    assert team.detail == "0 of 2"
    assert kpi(report.by_rep, "feedback") == [(MAYA, None, "0 of 0"), (TOM, 0.0, "0 of 2")]
    assert_by_rep_adds_up(report)


async def test_an_offer_in_a_later_cycle_keeps_nothing_for_the_lead_nurtured_at_intake(
    store: Store, policy: Policy
) -> None:
    """A lead arrives Mon 23 Nov 11:00 with a score of 35: nurtured at intake (its first
    cycle: never an MQL, never claimed). On Tuesday 10:00 marketing sends it again with a demo
    request and a score of 90: it qualifies, and its second cycle is posted; Maya claims it at
    10:05, calls and marks it progressing on Wednesday, but leaves it open past its final
    deadline (Tue 8 Dec 10:05), away from Monday 7 Dec: the sweep offers it to the pool just
    after that deadline, keeping it (Maya's miss).

    A cycle that ended without a disposition (the nurtured first one) has no end the lookup
    of an offer's kept deadlines could bound it by, and read the second cycle's offer as its
    own: the week's final disposition counted the nurtured cycle as a second miss, charged
    to Maya (0 of 2). Only a claimed cycle has deadlines an offer can keep: the team's 0 of 1,
    Maya's 0 of 1."""
    services, away, sweeper, reports = await desk(store, policy)

    first = await services.intake(lead_payload("hs-n", score=35), at(11))
    assert isinstance(first, Stored) and first.lead.stage.value == "nurture"
    demo = {"type": "demo_request", "title": "Book a demo"}
    again = lead_payload("hs-n", engagement=[*lead_payload()["engagement"], demo])
    again["score"] = 90
    second = await services.intake(again, day(24, 10))
    assert isinstance(second, Stored) and second.requalified
    lead_id = first.lead.id
    await store.mark_posted(lead_id, second.lead.channel, "2.n", day(24, 10))
    await services.claim(lead_id, MAYA, day(24, 10, 5))
    await services.log_attempt(lead_id, MAYA, "call", day(24, 10, 5))
    await services.dispose(lead_id, MAYA, "progressing", day(25, 10))
    final_due = (await services.lead(lead_id)).final_due_at
    assert final_due is not None
    await away.set(MAYA, day(11, 17), "Leave", MAYA, day(7, 9))
    await sweeper.run(final_due + timedelta(seconds=1))
    (offer,) = [e.data for e in await store.events(lead_id) if e.type == "offered"]
    assert offer["from"] == MAYA and "final_due" in offer

    report = await reports.report(W48, final_due + timedelta(days=1))
    (team,) = [k for k in report.headline if k.key == "final"]
    assert team.detail == "0 of 1"
    assert (MAYA, 0.0, "0 of 1") in kpi(report.by_rep, "final")
    assert_by_rep_adds_up(report)
