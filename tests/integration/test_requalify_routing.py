"""A lead that comes back and qualifies (sent again with new engagement, or at its
re-engagement date; a recycled lead back in its queue) is routed by the full rules in order, as
a new lead is: named account, the same account's owner, partner, then the pool's rotation; its
reason is stored for its post (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.domain.lead import Stage
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.leads import Services, Stored
from bot.services.policies import PolicyBook
from bot.services.sweep import Sweeper
from storage.outbox import OutboxStore
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes, services_on

DEMO = {"type": "demo_request", "title": "Book a demo"}
LATER = MONDAY + timedelta(days=20)
REP1, REP2, REP3, MANAGER2 = "U0REP1", "U0REP2", "U0REP3", "U0MGR2"


def _with(policy: Policy, **changes: Any) -> Policy:
    return parse_policy(snapshot(policy) | changes)


async def _nurtured(services: Services, **overrides: Any) -> int:
    """A lead nurtured at intake: its own score, 35, is under the threshold of 60."""
    result = await services.intake(lead_payload("hs-back", score=35, **overrides), MONDAY)
    assert isinstance(result, Stored) and result.lead.stage is Stage.NURTURE
    return result.lead.id


async def _requalified(services: Services, **overrides: Any) -> Any:
    """The nurtured lead sent again with a demo request and a score of 90: a new cycle."""
    again = lead_payload("hs-back", score=90, **overrides)
    again["engagement"] = [*again["engagement"], DEMO]
    result = await services.intake(again, LATER)
    assert isinstance(result, Stored) and result.requalified
    return result.lead


async def _posted_to(services: Services, lead_id: int) -> list[str]:
    rows = await OutboxStore(services.store.db).rows()
    return [
        row["channel"] for row in rows if row["kind"] == "post_lead" and row["lead_id"] == lead_id
    ]


async def test_a_named_account_beats_the_pool(store: Store, policy: Policy) -> None:
    services = await services_on(store, _with(policy, named_accounts={"northwind.example": REP3}))
    lead_id = await _nurtured(services)
    lead = await _requalified(services)
    assert (lead.id, lead.suggested_owner, lead.segment) == (lead_id, REP3, "mid_market")
    assert lead.route_reason == {
        "rule": "named_account",
        "rep": REP3,
        "domain": "northwind.example",
    }
    assert await _posted_to(services, lead_id) == ["C0MID"]  # where its owner can claim it
    (event,) = [e for e in await store.events(lead_id) if e.type == "requalified"]
    assert event.data["rule"] == "named_account"


async def test_the_same_accounts_owner_beats_the_pool(store: Store, policy: Policy) -> None:
    services = await services_on(store, _with(policy, account_matching=True))
    lead_id = await _nurtured(services)
    other = await services.intake(lead_payload("hs-other"), MONDAY)
    assert isinstance(other, Stored)
    await services.claim(other.lead.id, REP2, MONDAY + timedelta(minutes=5))
    lead = await _requalified(services)
    assert (lead.id, lead.suggested_owner) == (lead_id, REP2)
    assert lead.route_reason == {
        "rule": "account_match",
        "rep": REP2,
        "lead": other.lead.id,
        "domain": "northwind.example",
    }


async def test_a_returning_lead_is_not_its_own_accounts_other_lead(
    store: Store, policy: Policy
) -> None:
    """Claimed, then nurtured by its owner: when it comes back it takes its turn in the pool;
    it does not "match" its own earlier cycle."""
    services = await services_on(store, _with(policy, account_matching=True))
    first = await services.intake(lead_payload("hs-back"), MONDAY)
    assert isinstance(first, Stored)
    await services.claim(first.lead.id, REP1, MONDAY + timedelta(minutes=5))
    await services.dispose(first.lead.id, REP1, "bad_timing", MONDAY + timedelta(minutes=10))
    assert (await services.lead(first.lead.id)).stage is Stage.NURTURE
    lead = await _requalified(services)
    assert lead.route_reason is not None and lead.route_reason["rule"] == "round_robin"


async def test_a_partner_sourced_lead_goes_to_the_partner_manager(
    store: Store, policy: Policy
) -> None:
    partner = {"manager": MANAGER2, "sources": ["partner"]}
    services = await services_on(store, _with(policy, partner=partner))
    await _nurtured(services, source="partner")
    lead = await _requalified(services, source="partner")
    assert lead.suggested_owner == MANAGER2
    assert lead.route_reason == {"rule": "partner", "rep": MANAGER2}


async def test_otherwise_the_pools_rotation_and_its_figures(store: Store, policy: Policy) -> None:
    services = await services_on(store, policy)
    await _nurtured(services)
    lead = await _requalified(services)
    assert lead.suggested_owner == REP1
    assert lead.route_reason == {
        "rule": "round_robin",
        "rep": REP1,
        "week": 1,
        "week_total": 1,
        "weight": 1,
        "cap": None,
        "counted_on": "2026-12-14",  # the business day it counts the lead in
    }


# --- the sweep's new cycles ------------------------------------------------------------------


async def test_a_nurtured_lead_back_at_its_date_is_routed_by_the_rules(
    store: Store, policy: Policy
) -> None:
    """At its re-engagement date the lead qualifies under the SLA now in force, which names
    its account: it goes to the named owner, in the owner's segment, and says so."""
    services = await services_on(store, policy)
    lead_id = await _nurtured(services)
    data = snapshot(policy)
    data["mql"]["threshold"] = 30  # its score, 35, qualifies now
    data["named_accounts"] = {"northwind.example": REP3}
    book = PolicyBook(store, parse_policy(data))
    await book.record_current(MONDAY + timedelta(days=1))
    due = (await services.lead(lead_id)).next_action_at
    assert due is not None

    await Sweeper(SweepStore(store.db), book, Wakes()).run(due)

    lead = await services.lead(lead_id)
    assert (lead.stage, lead.cycle, lead.suggested_owner) == (Stage.MQL, 2, REP3)
    assert (lead.segment, lead.channel) == ("mid_market", "C0MID")
    assert lead.route_reason == {
        "rule": "named_account",
        "rep": REP3,
        "domain": "northwind.example",
    }


async def test_a_recycled_lead_back_goes_to_its_accounts_owner(
    store: Store, policy: Policy
) -> None:
    """Recycled by U0REP1; meanwhile U0REP2 qualified another lead of the same account: the
    recycled lead's new cycle goes to U0REP2 (the same account), not round the pool."""
    services = await services_on(store, _with(policy, account_matching=True))
    first = await services.intake(lead_payload("hs-back"), MONDAY)
    assert isinstance(first, Stored) and first.lead.suggested_owner == REP1
    await services.claim(first.lead.id, REP1, MONDAY + timedelta(minutes=5))
    for day in (0, 2, 4, 7, 10, 13):  # the follow-up standard, spread over its 2 weeks
        at = MONDAY + timedelta(days=day, minutes=10)
        await services.log_attempt(first.lead.id, REP1, "call", at)
    recycled = MONDAY + timedelta(days=13, minutes=30)
    await services.dispose(first.lead.id, REP1, "no_response", recycled)
    other = await services.intake(lead_payload("hs-other"), recycled + timedelta(days=1))
    assert isinstance(other, Stored)
    await services.claim(other.lead.id, REP2, recycled + timedelta(days=1, minutes=5))
    await services.dispose(
        other.lead.id, REP2, "qualified", recycled + timedelta(days=1, minutes=9)
    )
    back = (await services.lead(first.lead.id)).next_action_at
    assert back is not None

    await Sweeper(SweepStore(store.db), services.policies, Wakes()).run(back)

    lead = await services.lead(first.lead.id)
    assert (lead.stage, lead.cycle, lead.suggested_owner) == (Stage.MQL, 2, REP2)
    assert lead.route_reason == {
        "rule": "account_match",
        "rep": REP2,
        "lead": other.lead.id,
        "domain": "northwind.example",
    }
