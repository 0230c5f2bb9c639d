"""The two deadlines in the store, on SQLite and PostgreSQL: a claim stores both, "progressing"
is the first feedback once, a final disposition keeps it, and the report's feedback completion
reads the first feedback against `disposition_deadline`."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.lead import Stage
from bot.domain.policy import Policy, policy_from_snapshot, snapshot
from bot.domain.report import Group, Period, attempt_standard
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from storage.reports import Filter, ReportStore
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes

WEEK = Period(2026, 48, "Australia/Sydney")
REP = "U0REP1"


async def services_for(store: Store, policy: Policy) -> Services:
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY)
    return Services(store, book, Wakes())


async def claimed(services: Services, external_id: str) -> int:
    result = await services.intake(lead_payload(external_id), MONDAY)
    assert result.lead is not None
    await services.claim(result.lead.id, REP, MONDAY)
    await services.log_attempt(result.lead.id, REP, "call", MONDAY + timedelta(minutes=5))
    return result.lead.id


async def test_progressing_is_the_first_feedback_once_and_the_lead_stays_open(
    store: Store, policy: Policy
) -> None:
    services = await services_for(store, policy)
    lead_id = await claimed(services, "hs-1")
    lead = await services.lead(lead_id)
    assert lead.disposition_due_at == MONDAY + timedelta(hours=72)
    assert lead.final_due_at == MONDAY + timedelta(weeks=2)

    first = await services.dispose(lead_id, REP, "progressing", MONDAY + timedelta(hours=2))
    again = await services.dispose(lead_id, REP, "progressing", MONDAY + timedelta(hours=3))
    assert not first.repeated and again.repeated
    lead = await services.lead(lead_id)
    assert (lead.stage, lead.owner, lead.feedback_at) == (
        Stage.SAL,
        REP,
        MONDAY + timedelta(hours=2),
    )
    kinds = [event.type for event in await store.events(lead_id)]
    assert kinds.count("feedback") == 1 and "dispositioned" not in kinds

    await services.dispose(lead_id, REP, "qualified", MONDAY + timedelta(days=5))
    lead = await services.lead(lead_id)
    assert lead.stage is Stage.SQL and lead.dispositioned_at == MONDAY + timedelta(days=5)
    assert lead.feedback_at == MONDAY + timedelta(hours=2)  # the first feedback stays


async def test_feedback_completion_counts_the_first_feedback_within_the_deadline(
    store: Store, policy: Policy
) -> None:
    """Three leads claimed Monday 11:00 (feedback due Thursday 11:00): one marked progressing
    on Tuesday (on time, still open), one qualified on Friday (late), one silent (late)."""
    services = await services_for(store, policy)
    progressing = await claimed(services, "hs-1")
    late = await claimed(services, "hs-2")
    await claimed(services, "hs-3")
    await services.dispose(progressing, REP, "progressing", MONDAY + timedelta(days=1))
    await services.dispose(late, REP, "qualified", MONDAY + timedelta(days=4))
    as_of = MONDAY + timedelta(days=7)
    facts = await ReportStore(store.db).facts(
        WEEK.start, WEEK.end, as_of, attempt_standard(policy, as_of), Filter()
    )
    counts = facts.counts[Group("enterprise", "webinar", REP, "Q4 Pipeline Webinar")]
    assert (counts.feedback_due, counts.feedback_on_time) == (3, 1)


def old_format(policy: Policy) -> dict[str, object]:
    """The SLA as a snapshot stored before durations carried their clock: no `clock` keys,
    `72h` then meaning 72 working hours."""
    content = snapshot(policy)

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "clock"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    stripped = strip(content)
    assert isinstance(stripped, dict)
    stripped["disposition_deadline"] = {"days": 0, "minutes": 72 * 60}
    stripped["follow_up"]["within"] = {"days": 10, "minutes": 0}
    return stripped


async def test_a_lead_under_an_old_snapshot_keeps_business_time(
    store: Store, policy: Policy
) -> None:
    """A lead that arrived under a version stored without clocks, claimed after the upgrade:
    its feedback is due 72 working hours (9 working days) after the claim; a new lead's in 72
    hours."""
    old = policy_from_snapshot(old_format(policy), "0ld0ld0ld0ld")
    await store.save_policy(old.version, old_format(policy), MONDAY - timedelta(days=7))
    before = Services(store, PolicyBook(store, old), Wakes())
    arrived = await before.intake(lead_payload("hs-old"), MONDAY)
    assert arrived.lead is not None and arrived.lead.sla_version == old.version

    services = await services_for(store, policy)  # today's sla.yaml
    await services.claim(arrived.lead.id, REP, MONDAY)
    lead = await services.lead(arrived.lead.id)
    # Monday 11:00 + 72 working hours of 8: Friday of the next week, 11:00 (2026-12-04).
    assert lead.disposition_due_at == MONDAY + timedelta(days=11)
    assert lead.final_due_at == MONDAY + timedelta(days=14)  # 10 working days: two weeks on
    new = await claimed(services, "hs-new")
    assert (await services.lead(new)).disposition_due_at == MONDAY + timedelta(hours=72)
