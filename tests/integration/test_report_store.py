"""The report's counts over the real store: the same numbers on SQLite and PostgreSQL, only
the period's leads, and each filter."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import storage.reports
from bot.domain.policy import Policy
from bot.domain.report import (
    Counts,
    Facts,
    Funnel,
    Group,
    Period,
    attempt_standard,
    build_report,
)
from bot.services import report_process
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from bot.services.report_process import ReportProcess
from bot.services.reports import Reports
from bot.traffic import BEATEN, LAST, Traffic, shared_state
from storage.reports import Filter, ReportStore
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes, services_on
from tests.unit.test_report_kpis import HAND_AS_OF, HAND_COMPUTED

WEEK = Period(2026, 48, "Australia/Sydney")
AS_OF = MONDAY + timedelta(days=7, hours=1)  # the next Monday, 12:00 in Sydney
ENT = "U0REP1"
CAMPAIGN = "Q4 Pipeline Webinar"  # lead_payload's


async def history(store: Store, policy: Policy) -> Services:
    """Monday's leads: a qualified one touched in time, an untouched claimed one, an unclaimed
    one, a rejected smb one, a lead below the bar, and one from the week before."""
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY - timedelta(days=7))
    services = Services(store, book, Wakes())

    async def arrive(external_id: str, at: datetime, **fields: object) -> int:
        result = await services.intake(lead_payload(external_id, **fields), at)
        assert result.lead is not None
        await store.mark_posted(result.lead.id, result.lead.channel, f"1.{result.lead.id}", at)
        return result.lead.id

    early = await arrive("hs-old", MONDAY - timedelta(days=7))
    await services.claim(early, ENT, MONDAY - timedelta(days=7))
    touched = await arrive("hs-1", MONDAY)
    await services.claim(touched, ENT, MONDAY + timedelta(minutes=5))
    await services.log_attempt(touched, ENT, "call", MONDAY + timedelta(minutes=20))
    await services.dispose(touched, ENT, "qualified", MONDAY + timedelta(hours=1))
    claimed = await arrive("hs-2", MONDAY + timedelta(minutes=1))
    await services.claim(claimed, "U0REP2", MONDAY + timedelta(minutes=30))
    await arrive("hs-3", MONDAY + timedelta(minutes=2), source="event")
    small = {"name": "Tiny Co", "employees": 12, "country": "AU"}
    smb = await arrive("hs-4", MONDAY + timedelta(minutes=3), company=small, score=70)
    await services.claim(smb, "U0REP5", MONDAY + timedelta(minutes=10))
    for minute in range(6):
        at = MONDAY + timedelta(minutes=11 + minute)
        await services.log_attempt(smb, "U0REP5", ["call", "email"][minute % 2], at)
    rejected = await services.dispose(
        smb, "U0REP5", "not_a_fit", MONDAY + timedelta(hours=2), "Not ICP", "Too small"
    )
    assert not rejected.repeated
    low = await services.intake(lead_payload("hs-5", score=20, title=None), MONDAY)
    assert low.lead is not None
    return services


async def test_the_weeks_counts_are_the_same_on_every_backend(store: Store, policy: Policy) -> None:
    await history(store, policy)
    facts = await ReportStore(store.db).facts(
        WEEK.start, WEEK.end, AS_OF, attempt_standard(policy, AS_OF), Filter()
    )
    velocity = [name for name in Counts.__dataclass_fields__ if name.endswith(("_days", "_leads"))]
    # Lead velocity is measured in tests/integration/test_report_kpis_store.py.
    counts = {g: replace(c, **dict.fromkeys(velocity, 0)) for g, c in facts.counts.items()}
    assert counts == {
        Group("enterprise", "webinar", ENT, CAMPAIGN): Counts(
            received=1,
            mql=1,
            complete=1,
            complete_known=1,
            icp=1,
            icp_known=1,
            posted=1,
            accept_due=1,
            claimed=1,
            accepted=1,
            sql=1,
            touch_due=1,
            touched_on_time=1,
            attempts_closed=1,  # dispositioned
            attempts_covered=1,  # qualified on the first call
            feedback_due=1,
            feedback_on_time=1,
            final_due=1,
            final_on_time=1,
        ),
        Group("enterprise", "webinar", "U0REP2", CAMPAIGN): Counts(
            received=1,
            mql=1,
            complete=1,
            complete_known=1,
            icp=1,
            icp_known=1,
            posted=1,
            accept_due=1,
            claimed=1,
            accepted=1,
            touch_due=1,
            # no feedback by its deadline (72 hours after the claim, Thursday): due and late;
            # its attempt window (2 weeks) is still ahead
            feedback_due=1,
        ),
        Group("enterprise", "event", None, CAMPAIGN): Counts(
            received=1,
            mql=1,
            complete=1,
            complete_known=1,
            icp=1,
            icp_known=1,
            posted=1,
            accept_due=1,
            touch_due=1,
        ),
        Group("smb", "webinar", "U0REP5", CAMPAIGN): Counts(
            received=1,
            mql=1,
            complete=1,
            complete_known=1,
            icp=0,
            icp_known=1,
            posted=1,
            accept_due=1,
            claimed=1,
            touch_due=1,
            touched_on_time=1,
            attempts_closed=1,  # rejected: claimed, not accepted
            attempts_covered=1,
            feedback_due=1,
            feedback_on_time=1,
            final_due=1,  # rejected two hours after the claim: the final disposition in time
            final_on_time=1,
        ),
        # The lead below the bar, nurtured at intake: by rep, not "(unclaimed)".
        Group("enterprise", "webinar", None, CAMPAIGN, nurtured=True): Counts(
            received=1,
            complete=0,
            complete_known=1,
            icp=1,
            icp_known=1,
        ),
    }
    assert facts.dispositions == {("qualified", None): 1, ("not_a_fit", "Not ICP"): 1}
    assert len(facts.times) == 4  # the week's MQLs, not last week's, not the one below the bar


async def test_filters_and_the_report_built_from_them(store: Store, policy: Policy) -> None:
    services = await history(store, policy)
    facts = await ReportStore(store.db).facts(
        WEEK.start, WEEK.end, AS_OF, attempt_standard(policy, AS_OF), Filter(segment="smb")
    )
    assert list(facts.counts) == [Group("smb", "webinar", "U0REP5", CAMPAIGN)]
    by_rep = await ReportStore(store.db).facts(
        WEEK.start, WEEK.end, AS_OF, attempt_standard(policy, AS_OF), Filter(rep=ENT)
    )
    assert sum(c.received for c in by_rep.counts.values()) == 1
    report = await Reports(ReportStore(store.db), services.policies).report(WEEK, AS_OF)
    first_touch = next(k for k in report.headline if k.key == "first_touch")
    assert (first_touch.value, first_touch.detail) == (0.5, "2 of 4")
    mqls = next(k for k in report.headline if k.key == "mql")
    assert (mqls.value, mqls.previous) == (4.0, 1.0)  # last week's one lead, in its own week
    # hs-2 (claimed, never touched) and hs-3 (never claimed) are past their deadlines: at their
    # time so far, Mon 11:01 and 11:02 → next Mon 12:00 (359 + 4 × 480 + 180 working minutes).
    assert report.speed_minutes == [20, 2459, 2458, 8]


async def test_the_seeds_kpis_on_the_hand_computed_week(store: Store, policy: Policy) -> None:
    """Leads A–H of tests/unit/test_report_kpis.py (where each figure is derived), lived
    through the real services, counted by SQL and measured on the team's calendar."""
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY - timedelta(days=7))
    services = Services(store, book, Wakes())
    zone = ZoneInfo(WEEK.zone)

    def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=zone).astimezone(UTC)

    async def lead(
        name: str,
        received: datetime,
        posted: datetime,
        claimed: datetime | None,
        attempts: list[datetime],
        outcome: tuple[str, str | None] | None = None,
    ) -> None:
        result = await services.intake(lead_payload(f"hs-{name}"), received)
        assert result.lead is not None
        lead_id = result.lead.id
        await store.mark_posted(lead_id, result.lead.channel, f"1.{lead_id}", posted)
        if claimed is None:
            return
        await services.claim(lead_id, ENT, claimed)
        for number, when in enumerate(attempts):
            await services.log_attempt(lead_id, ENT, ["call", "email"][number % 2], when)
        if outcome is not None:
            code, reason = outcome
            note = "Checked on the call." if reason else None
            done = attempts[-1] + timedelta(minutes=10)
            await services.dispose(lead_id, ENT, code, done, reason, note)

    # C: six at 11:00, 2+ working days (48+ hours) apart: each counts (bot/domain/cadence.py)
    calls = [at(24, 11), at(26, 11), at(30, 11)] + [at(d, 11, month=12) for d in (2, 4, 8)]
    await lead("a", at(23, 9), at(23, 9, 10), at(23, 9, 15), [at(23, 9, 40)], ("qualified", None))
    await lead(
        "b",
        at(23, 16),
        at(23, 16, 20),
        at(23, 16, 25),
        [at(24, 10), at(24, 11)],
        ("not_a_fit", "Not ICP"),
    )
    await lead("c", at(24, 10), at(24, 10), at(24, 10, 5), calls, ("no_response", None))
    await lead(
        "d", at(25, 13), at(25, 13, 30), at(25, 13, 35), [at(25, 14, 20)], ("bad_timing", None)
    )
    await lead("e", at(26, 9), at(26, 9), at(26, 9, 5), [at(26, 9, 20), at(26, 10), at(26, 11)])
    await lead("f", at(27, 9), at(27, 9), at(1, 9, month=12), [])
    await lead("g", at(27, 14), at(27, 14), None, [])
    await lead(
        "h",
        at(27, 11),
        at(27, 11, 5),
        at(27, 11, 10),
        [at(27, 11, 40)],
        ("bad_data", "Wrong contact"),
    )

    as_of = HAND_AS_OF
    facts = await ReportStore(store.db).facts(
        WEEK.start, WEEK.end, as_of, attempt_standard(policy, as_of), Filter()
    )
    assert facts.dispositions == {
        ("qualified", None): 1,
        ("not_a_fit", "Not ICP"): 1,
        ("no_response", None): 1,
        ("bad_timing", None): 1,
        ("bad_data", "Wrong contact"): 1,
    }
    total = sum(facts.counts.values(), Counts())
    assert (total.posted, total.claimed, total.accepted, total.sql) == (8, 7, 5, 1)
    assert (total.attempts_closed, total.attempts_covered) == (6, 5)
    report = await Reports(ReportStore(store.db), services.policies).report(WEEK, as_of)
    found = {k.key: (k.value, k.rag, k.detail) for k in report.headline if k.key in HAND_COMPUTED}
    assert found == HAND_COMPUTED
    assert report.conversion == Funnel(8, 8, 5, 1)


async def test_a_report_built_in_the_worker_process_is_the_same_report(
    store: Store, policy: Policy
) -> None:
    """`serve` builds reports in a worker process (so acks never wait behind one): it reads
    the same database through a connection of its own and gives the same report, filtered
    or not."""
    services = await history(store, policy)
    here = Reports(ReportStore(store.db), services.policies)
    there = Reports(ReportStore(store.db), services.policies, ReportProcess(store.db.url))
    assert await there.report(WEEK, AS_OF) == await here.report(WEEK, AS_OF)
    by_segment = await there.report(WEEK, AS_OF, segment="smb")
    assert by_segment == await here.report(WEEK, AS_OF, segment="smb")
    assert by_segment.received == 1


async def test_the_reports_charts_are_drawn_in_the_worker_process_the_same(
    store: Store, policy: Policy
) -> None:
    """Drawing a report's charts is CPU work too: with the worker process it is drawn there,
    not in a thread of the server (where it would hold the interpreter's lock from the acks),
    and the charts are the same PNGs."""
    services = await history(store, policy)
    process = ReportProcess(store.db.url)
    here = Reports(ReportStore(store.db), services.policies)
    there = Reports(ReportStore(store.db), services.policies, process)
    report = await here.report(WEEK, AS_OF)
    assert await process.run(os.getpid, "its pid") != os.getpid()
    drawn = await there.charts(report)
    assert [chart.png[:8] for chart in drawn] == [b"\x89PNG\r\n\x1a\n"] * 2
    assert drawn == await here.charts(report)


async def test_a_report_read_pauses_before_each_query_and_between_slices_of_rows(
    store: Store, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report worker gives way to Slack's requests between slices of its work: the read
    calls `pause` before each query and after each slice of stage-time rows, and reads the
    same facts as without."""
    services = await history(store, policy)
    standard = attempt_standard(policy, AS_OF)
    reads = ReportStore(store.db)
    unpaused = await reads.facts(WEEK.start, WEEK.end, AS_OF, standard, Filter())
    assert len(unpaused.times) >= 4
    monkeypatch.setattr(storage.reports, "SLICE", 2)
    pauses: list[int] = []
    paused = await reads.facts(
        WEEK.start, WEEK.end, AS_OF, standard, Filter(), pause=lambda: pauses.append(1)
    )
    assert paused == unpaused
    # Four queries for the counts (three kinds of cycle rows, the escalations), three for the
    # times and one after each slice of two rows.
    assert len(pauses) >= 4 + 3 + len(unpaused.times) // 2
    assert services is not None


def _worker_sees() -> tuple[bool, float, float]:
    """In the report worker: whether it gives way, and the server's last request and last
    beat as it reads them."""
    give_way = report_process._give_way
    assert give_way is not None
    return True, give_way.shared[LAST], give_way.shared[BEATEN]


async def test_the_report_worker_sees_the_servers_slack_traffic(store: Store) -> None:
    """The worker reads the server's Slack traffic from memory they share, so its pauses
    follow it: the request marked here is the one it sees there, and while it works the
    server's loop beats (a loop held up beats late, and the worker waits)."""
    process = ReportProcess(store.db.url)
    await process.run(os.getpid, "its pid")  # the worker is up
    with Traffic().request():
        pass
    marked = shared_state()[LAST]
    asked = time.monotonic()
    gives_way, seen, beaten = await process.run(_worker_sees, "what it sees")
    assert gives_way and seen == marked
    assert beaten >= asked  # the loop beat while the worker worked for it


async def test_a_lead_inside_its_claim_window_is_not_counted_unaccepted_yet(
    store: Store, policy: Policy
) -> None:
    """Monday morning's digest: a lead still inside its claim window is left out of
    acceptance's base (it read as "not accepted", and the rate red, every Monday)."""
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY - timedelta(days=7))
    services = Services(store, book, Wakes())
    result = await services.intake(lead_payload("hs-wait"), MONDAY)
    assert result.lead is not None and result.lead.claim_due_at is not None
    await store.mark_posted(result.lead.id, result.lead.channel, "1.1", MONDAY)
    due = result.lead.claim_due_at

    async def total(as_of: datetime) -> Counts:
        facts = await ReportStore(store.db).facts(
            WEEK.start, WEEK.end, as_of, attempt_standard(policy, as_of), Filter()
        )
        return sum(facts.counts.values(), Counts())

    inside = await total(due - timedelta(minutes=1))
    assert (inside.posted, inside.accept_due, inside.accepted) == (1, 0, 0)
    assert Funnel(1, 1, 0, 0, waiting=1).mql_to_sal is None  # nothing to judge yet
    past = await total(due + timedelta(minutes=1))
    assert (past.posted, past.accept_due, past.accepted) == (1, 1, 0)
    assert Funnel(1, 1, 0, 0).mql_to_sal == 0.0


async def claimed_leads(
    store: Store, policy: Policy, *external_ids: str
) -> tuple[Services, list[int]]:
    """Monday's leads of `external_ids`, posted on arrival and claimed 5 minutes later."""
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY - timedelta(days=7))
    services = Services(store, book, Wakes())
    ids = []
    for external_id in external_ids:
        result = await services.intake(lead_payload(external_id), MONDAY)
        assert result.lead is not None
        await store.mark_posted(result.lead.id, result.lead.channel, f"1.{external_id}", MONDAY)
        await services.claim(result.lead.id, ENT, MONDAY + timedelta(minutes=5))
        ids.append(result.lead.id)
    return services, ids


async def test_qualifying_or_progressing_without_a_logged_attempt_is_the_first_touch(
    store: Store, policy: Policy
) -> None:
    """Qualified is "confirmed fit and interest through direct conversation", and Contacted –
    progressing says it too: each is a touch when none was logged (the lead read as a
    first-touch miss, and left speed to lead)."""
    services, ids = await claimed_leads(store, policy, "hs-sql", "hs-progress", "hs-reject")
    spoke = MONDAY + timedelta(minutes=25)
    await services.dispose(ids[0], ENT, "qualified", spoke)
    await services.dispose(ids[1], ENT, "progressing", spoke)
    await services.dispose(ids[2], ENT, "not_a_fit", spoke, "Not ICP", "Too small")
    touched = [(await store.get(lead_id)).first_touch_at for lead_id in ids]  # type: ignore[union-attr]
    assert touched == [spoke, spoke, None]  # a rejection may be read off the data alone
    # Marketing's mix shows the lead still being worked, not only the closed ones.
    facts = await ReportStore(store.db).facts(
        WEEK.start, WEEK.end, AS_OF, attempt_standard(policy, AS_OF), Filter()
    )
    report = build_report(WEEK, facts, Facts({}, {}, {}, []), policy, AS_OF)
    # The lead rejected without a touch was closed, not ignored: not in speed to lead.
    assert report.speed_minutes == [25, 25]
    assert sorted(report.dispositions) == [
        ("not_a_fit", "Not a fit", 1),
        ("progressing", "Contacted – progressing (still open)", 1),
        ("qualified", "Qualified", 1),
    ]


async def test_a_lead_left_open_past_its_final_deadline_shows(store: Store, policy: Policy) -> None:
    """Seed 001's maximum time to disposition: of the claimed leads closed or past their final
    deadline, the share closed by it. A lead left open for weeks looked green everywhere."""
    services, ids = await claimed_leads(store, policy, "hs-early", "hs-late", "hs-open")
    due = (await services.lead(ids[0])).final_due_at
    assert due is not None
    await services.dispose(ids[0], ENT, "qualified", due - timedelta(hours=1))

    async def final(as_of: datetime) -> tuple[float | None, str]:
        facts = await ReportStore(store.db).facts(
            WEEK.start, WEEK.end, as_of, attempt_standard(policy, as_of), Filter()
        )
        report = build_report(WEEK, facts, Facts({}, {}, {}, []), policy, as_of)
        kpi = next(k for k in report.headline if k.key == "final")
        return kpi.value, kpi.detail

    # Before the deadline, the open leads are not late yet; after it, they are.
    assert await final(due - timedelta(minutes=30)) == (1.0, "1 of 1")
    await services.dispose(ids[1], ENT, "qualified", due + timedelta(hours=1))
    assert await final(due + timedelta(days=1)) == (1 / 3, "1 of 3")


async def test_response_time_runs_from_the_leads_arrival_when_the_crm_sent_it_late(
    store: Store, policy: Policy
) -> None:
    """Seed 002's response time runs from MQL creation: a lead the CRM synced two hours late
    (its `received_at` 09:00, Handoff heard of it at 11:00) waited those two hours too. Counted
    from when intake heard of it, response time read as speed to lead and hid the late sync;
    lead velocity's MQL → SAL step starts at the same moment."""
    services = await services_on(store, policy, MONDAY - timedelta(days=7))
    arrived = MONDAY - timedelta(hours=2)  # Monday 09:00 in Sydney
    sent = lead_payload("hs-late", received_at=arrived.isoformat())
    result = await services.intake(sent, MONDAY)
    assert result.lead is not None and result.lead.received_at == arrived
    await store.mark_posted(result.lead.id, result.lead.channel, "1.late", MONDAY)
    await services.claim(result.lead.id, ENT, MONDAY + timedelta(minutes=5))
    await services.log_attempt(result.lead.id, ENT, "call", MONDAY + timedelta(minutes=30))
    report = await Reports(ReportStore(store.db), services.policies).report(WEEK, AS_OF)
    figures = {k.key: k.value for k in report.headline}
    assert figures["speed_median"] == 30  # 11:00 → 11:30, from the post
    assert figures["response_mean"] == 150  # 09:00 → 11:30, from its arrival
    assert figures["velocity_mql_to_sal"] == pytest.approx(125 / (24 * 60))  # 09:00 → 11:05
