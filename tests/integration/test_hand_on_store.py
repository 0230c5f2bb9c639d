"""Handing on the open leads of a rep Slack deactivated, over the real store (SQLite and
PostgreSQL): only the leads the rep holds move, each once, with one message for the managers,
also when two replicas learn it at the same moment (the event on one, the daily refresh on
the other)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.cli.stack import ERASURE_KEY
from bot.domain.erasure import ErasureKey
from bot.domain.policy import Policy
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from bot.services.sweep import Sweeper
from storage import db
from storage.repository import Member, Store
from storage.sweep import SweepStore
from storage.tables import OutboxRow
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes, services_on

MAYA, TOM = "U0REP1", "U0REP2"  # the example enterprise pool, in its order
NOW = MONDAY + timedelta(minutes=5)


async def six_leads(services: Services) -> None:
    """Six enterprise leads, suggested in turn to @maya (1, 3, 5) and @tom (2, 4, 6); @maya
    claims 1, and @tom claims 3 (suggested to @maya: hers no more) and 4."""
    for index in range(1, 7):
        assert (await services.intake(lead_payload(f"hs-{index}"), MONDAY)).created
    for lead_id, rep in ((1, MAYA), (3, TOM), (4, TOM)):
        await services.claim(lead_id, rep, MONDAY + timedelta(minutes=1))


def sweeper(store: Store, book: PolicyBook) -> Sweeper:
    return Sweeper(SweepStore(store.db), book, Wakes(), barred={MAYA})


async def to_managers(store: Store) -> list[str]:
    query = select(OutboxRow.payload).where(OutboxRow.channel == "C0ESCALATE")
    rows = await store.db.run(lambda db: db.execute(query.order_by(OutboxRow.id)).all())
    return [str(payload["text"]) for (payload,) in rows]


async def holders(services: Services) -> list[tuple[str | None, str | None]]:
    leads = [await services.lead(lead_id) for lead_id in range(1, 7)]
    return [(lead.owner, lead.suggested_owner) for lead in leads]


async def test_only_the_leads_the_rep_holds_move_each_once(store: Store, policy: Policy) -> None:
    services = await services_on(store, policy)
    await six_leads(services)
    hands = sweeper(store, services.policies)

    assert await hands.hand_on(MAYA, "deactivated", NOW) == 2  # 1 (claimed) and 5 (suggested)
    assert await holders(services) == [
        (TOM, TOM),
        (None, TOM),
        (TOM, MAYA),  # suggested to @maya, claimed by @tom: not hers to hand on
        (TOM, TOM),
        (None, TOM),
        (None, TOM),
    ]
    assert await hands.hand_on(MAYA, "deactivated", NOW + timedelta(minutes=1)) == 0
    (alert,) = await to_managers(store)
    assert "with 2 open leads" in alert
    for lead_id in range(1, 7):
        moved = [e for e in await store.events(lead_id) if e.type == "reassigned"]
        assert len(moved) == (1 if lead_id in (1, 5) else 0)


async def test_two_replicas_at_once_hand_each_lead_on_once(
    database_url: str, policy: Policy
) -> None:
    database, other = db.Database(database_url), db.Database(database_url)
    await db.upgrade(database.engine)
    try:
        store = Store(database, ErasureKey(ERASURE_KEY))
        services = await services_on(store, policy)
        await six_leads(services)
        replicas = [sweeper(store, services.policies), sweeper(Store(other), services.policies)]

        handed = await asyncio.gather(
            *(replica.hand_on(MAYA, "deactivated", NOW) for replica in replicas)
        )

        assert sorted(handed) == [0, 2]
        assert await holders(services) == [
            (TOM, TOM),
            (None, TOM),
            (TOM, MAYA),
            (TOM, TOM),
            (None, TOM),
            (None, TOM),
        ]
        assert len(await to_managers(store)) == 1
        moved = [e for n in range(1, 7) for e in await store.events(n) if e.type == "reassigned"]
        assert len(moved) == 2
    finally:
        await other.dispose()
        await database.dispose()


async def test_a_member_is_news_once_when_they_leave(store: Store) -> None:
    """`save_people` names who became a guest or was deactivated since last remembered: the
    managers hear of leads left with them once, not at every event or daily refresh."""
    assert await store.save_people({MAYA: Member("Australia/Sydney")}, MONDAY) == set()
    gone = {MAYA: Member(deactivated=True), TOM: Member(guest=True)}
    assert await store.save_people(gone, NOW) == {MAYA, TOM}  # @tom: not remembered before
    assert await store.save_people(gone, NOW + timedelta(days=1)) == set()
    back = {MAYA: Member(deactivated=False)}
    assert await store.save_people(back, NOW + timedelta(days=2)) == set()
    assert await store.save_people(gone, NOW + timedelta(days=3)) == {MAYA}


async def test_the_holders_of_open_leads_are_whoever_hand_on_would_find(
    store: Store, policy: Policy
) -> None:
    """`holders` names the members the daily refresh and Slack's `user_change` event read
    besides the SLA's people: a rep moved off sla.yaml who still holds open leads is one."""
    services = await services_on(store, policy)
    assert await store.holders() == set()
    await six_leads(services)
    assert await store.holders() == {MAYA, TOM}
    assert await store.holders(MAYA) == {MAYA}
    assert await store.holders("U0NOBODY") == set()

    await sweeper(store, services.policies).hand_on(MAYA, "deactivated", NOW)
    assert await store.holders() == {TOM}  # @maya holds none any more
    assert await store.holders(MAYA) == set()


async def test_an_answer_read_before_the_remembered_one_does_not_overwrite_it(
    store: Store,
) -> None:
    """A daily refresh saves answers read at its start; a `user_change` saved meanwhile (on
    any replica) is newer: it stays, the older answer is no news, and the refresh is told."""
    await store.save_people({MAYA: Member("Australia/Sydney")}, NOW + timedelta(minutes=5))
    assert await store.save_people({MAYA: Member(deactivated=True)}, NOW) == set()
    assert await store.barred() == set()
    assert await store.read_after([MAYA, TOM], NOW) == {MAYA}
    assert await store.save_people({MAYA: Member(deactivated=True)}, NOW + timedelta(minutes=6))
    assert await store.barred() == {MAYA}
