"""The claim window in the claim's conditional update, on SQLite and PostgreSQL: a lead held
for its suggested owner is claimed by nobody else until `claim_opens_at`, whatever the service
read before; managers always may; at the window's edge exactly one claim wins."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.refusal import Reason, Refusal
from bot.services.leads import Services
from bot.services.sweep import Sweeper
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, services_on

MANAGER, OWNER, PEER = "U0MGR1", "U0REP1", "U0REP2"
OPENS = MONDAY + timedelta(minutes=15)  # 11:15 in Sydney: 15 business minutes after 11:00


def assigned(policy: Policy) -> Policy:
    data = snapshot(policy)
    data["segments"][0] |= {"claim": "assigned", "claim_window": "15 business minutes"}
    return parse_policy(data)


@pytest.fixture
async def services(store: Store, policy: Policy) -> Services:
    return await services_on(store, assigned(policy))


async def held_lead(services: Services) -> int:
    result = await services.intake(lead_payload(), MONDAY)
    lead = result.lead  # type: ignore[union-attr]
    assert (lead.suggested_owner, lead.claim_opens_at) == (OWNER, OPENS)
    assert lead.next_action_at == OPENS  # the sweep wakes when the window ends
    return lead.id


async def test_the_statement_keeps_a_held_lead_from_the_pool(services: Services) -> None:
    lead_id = await held_lead(services)
    store = services.store
    inside = OPENS - timedelta(seconds=1)
    # The conditional update itself refuses a peer, whatever a caller checked before it.
    assert not await store.claim(lead_id, PEER, None, inside, segments=["enterprise"])
    assert not await store.claim(lead_id, PEER, None, inside)
    assert (await services.lead(lead_id)).owner is None
    assert await store.claim(lead_id, OWNER, None, inside, segments=["enterprise"])
    assert (await services.lead(lead_id)).owner == OWNER


async def test_a_manager_claims_inside_the_window(services: Services) -> None:
    lead_id = await held_lead(services)
    await services.claim(lead_id, MANAGER, MONDAY + timedelta(minutes=1))
    assert (await services.lead(lead_id)).owner == MANAGER


async def test_a_peer_is_refused_with_whose_and_when_and_nothing_changes(
    services: Services,
) -> None:
    lead_id = await held_lead(services)
    before = (await services.lead(lead_id), await services.store.events(lead_id))
    with pytest.raises(Refusal) as refused:
        await services.claim(lead_id, PEER, MONDAY + timedelta(minutes=10))
    assert refused.value.reason is Reason.NOT_READY
    assert refused.value.message == (
        f"This lead is reserved for <@{OWNER}> until Mon 11:15 AEDT; after that anyone in the "
        "pool can claim it. Nothing was changed."
    )
    assert (await services.lead(lead_id), await services.store.events(lead_id)) == before


async def test_after_the_window_the_pool_claims(services: Services) -> None:
    lead_id = await held_lead(services)
    await services.claim(lead_id, PEER, OPENS)
    assert (await services.lead(lead_id)).owner == PEER


async def test_at_the_windows_edge_exactly_one_claim_wins(services: Services) -> None:
    lead_id = await held_lead(services)
    presses = [(OWNER, OPENS - timedelta(milliseconds=1)), (PEER, OPENS), (MANAGER, OPENS)]
    outcomes = await asyncio.gather(
        *(services.claim(lead_id, who, at) for who, at in presses), return_exceptions=True
    )
    won = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    assert len(won) == 1
    assert all(isinstance(o, Refusal) for o in outcomes if isinstance(o, BaseException))
    claimed = [e for e in await services.store.events(lead_id) if e.type == "claimed"]
    assert len(claimed) == 1


async def test_the_sweep_opens_the_window_once(services: Services) -> None:
    lead_id = await held_lead(services)
    sweeper = Sweeper(SweepStore(services.store.db), services.policies, services.notifier)
    assert (await sweeper.run(OPENS - timedelta(minutes=1))).changed == 0
    assert (await sweeper.run(OPENS)).changed == 1
    assert (await sweeper.run(OPENS + timedelta(minutes=1))).changed == 0
    opened = [e for e in await services.store.events(lead_id) if e.type == "claim_opened"]
    assert [e.data for e in opened] == [{"reserved_for": OWNER}]
    lead = await services.lead(lead_id)
    assert lead.next_action_at is not None and lead.next_action_at > OPENS  # the ladder's next


async def test_two_sweeps_at_once_open_the_window_once(services: Services) -> None:
    lead_id = await held_lead(services)
    sweepers = [
        Sweeper(SweepStore(services.store.db), services.policies, services.notifier)
        for _ in range(2)
    ]
    await asyncio.gather(*(sweeper.run(OPENS) for sweeper in sweepers))
    opened = [e for e in await services.store.events(lead_id) if e.type == "claim_opened"]
    assert len(opened) == 1
