"""`clock: owner` over the real store (SQLite and PostgreSQL): a claim stores its owner's zone
and runs the disposition clock on the owner's hours; reassignments move the clock with the
lead; members' zones survive a restart in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.escalation import handed_over
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from bot.services.sweep import Sweeper
from storage.repository import Member, Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes

ZONES = {"U0REP1": "Europe/London", "U0REP2": "America/New_York"}


async def services_for(store: Store, policy: Policy, clock: str) -> Services:
    data = snapshot(policy)
    data["clock"] = clock
    data["disposition_deadline"] = "2 business hours"  # the owner's hours matter for business time
    book = PolicyBook(store, parse_policy(data))
    await book.record_current(MONDAY)
    services = Services(store, book, Wakes())
    services.zones.update(ZONES)
    return services


async def claimed(services: Services, rep: str = "U0REP1") -> int:
    result = await services.intake(lead_payload(), MONDAY)
    assert result.lead is not None
    await services.claim(result.lead.id, rep, MONDAY)
    return result.lead.id


async def test_a_claim_runs_the_feedback_clock_on_the_owners_hours(
    store: Store, policy: Policy
) -> None:
    services = await services_for(store, policy, "owner")
    lead = await services.lead(await claimed(services))
    assert lead.owner_zone == "Europe/London"
    assert lead.disposition_due_at == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 11:00 London


async def test_the_team_clock_keeps_the_team_hours(store: Store, policy: Policy) -> None:
    services = await services_for(store, policy, "team")
    lead = await services.lead(await claimed(services))
    assert lead.disposition_due_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 13:00 Sydney


async def test_a_rep_slack_did_not_describe_keeps_the_team_clock(
    store: Store, policy: Policy
) -> None:
    services = await services_for(store, policy, "owner")
    lead = await services.lead(await claimed(services, "U0MGR1"))  # a manager: no zone known
    assert lead.owner_zone is None
    assert lead.disposition_due_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def test_reassignment_moves_the_clock_to_the_new_owner(store: Store, policy: Policy) -> None:
    services = await services_for(store, policy, "owner")
    lead_id = await claimed(services)
    await services.reassign(lead_id, "U0MGR1", "U0REP2", MONDAY)
    lead = await services.lead(lead_id)
    assert (lead.owner, lead.owner_zone) == ("U0REP2", "America/New_York")


async def test_the_sweeps_reassignment_moves_the_clock_too(store: Store, policy: Policy) -> None:
    services = await services_for(store, policy, "owner")
    lead_id = await claimed(services)
    sweeper = Sweeper(SweepStore(store.db), services.policies, Wakes(), zones=services.zones)
    # No first touch: the no_touch ladder reassigns at 200% of the 2h window (15:00 Sydney).
    swept = MONDAY + timedelta(hours=4, minutes=5)
    result = await sweeper.run(swept)
    assert result.changed == 1
    lead = await services.lead(lead_id)
    assert (lead.owner, lead.owner_zone) == ("U0REP2", "America/New_York")
    # 04:05 in London, before its working day: all 2 working hours left to give feedback,
    # from New York's 09:00 (not London's 11:00, which is no working time in New York).
    assert lead.disposition_due_at == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert lead.next_action_at == swept  # its steps moved: the next sweep looks again


async def test_a_managers_reassignment_moves_the_deadlines_to_the_new_owners_hours(
    store: Store, policy: Policy
) -> None:
    services = await services_for(store, policy, "owner")
    lead_id = await claimed(services)  # Monday 00:00 London: feedback due 11:00 London
    await services.reassign(lead_id, "U0MGR1", "U0REP2", datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    lead = await services.lead(lead_id)
    # An hour left at 10:00 London; from 05:00 New York: due 10:00 there.
    assert lead.disposition_due_at == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert lead.next_action_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def test_with_the_team_clock_a_reassignment_moves_no_deadline(
    store: Store, policy: Policy
) -> None:
    services = await services_for(store, policy, "team")
    lead_id = await claimed(services)
    before = await services.lead(lead_id)
    await services.reassign(lead_id, "U0MGR1", "U0REP2", MONDAY + timedelta(minutes=30))
    lead = await services.lead(lead_id)
    assert lead.owner == "U0REP2"
    assert (lead.disposition_due_at, lead.final_due_at, lead.next_action_at) == (
        before.disposition_due_at,
        before.final_due_at,
        before.next_action_at,
    )


async def test_a_reassignment_read_before_a_question_keeps_the_paused_deadlines(
    store: Store, policy: Policy
) -> None:
    """A question to marketing between the read and the write: the handover computed from the
    lead as read (its clocks running) is refused, so the paused deadlines stay as they are."""
    services = await services_for(store, policy, "owner")
    lead_id = await claimed(services)
    read = await services.lead(lead_id)
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    await services.request_info(lead_id, "U0REP1", "more_info", "Which region?", at)
    handed = handed_over(read, await services.policy_for(read), "U0REP2", ZONES["U0REP2"], at)
    assert handed.disposition_due_at != read.disposition_due_at
    assert not await store.reassign(read, handed, "U0MGR1", at)
    lead = await services.lead(lead_id)
    assert (lead.owner, lead.disposition_due_at) == ("U0REP1", read.disposition_due_at)


async def test_members_zones_are_remembered(store: Store) -> None:
    await store.save_people({u: Member(z) for u, z in ZONES.items()}, MONDAY)
    await store.save_people({"U0REP1": Member("Asia/Singapore")}, MONDAY + timedelta(days=1))
    assert await store.zones() == {"U0REP1": "Asia/Singapore", "U0REP2": "America/New_York"}
