"""Time away in the database (SQLite and PostgreSQL): set by hand, read from Slack statuses,
and the intake rotation passing over the reps who are away."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.domain.effects import Send
from bot.domain.lead import Stage
from bot.services.leads import Services
from bot.services.sweep import Sweeper
from storage.away import SLACK_STATUS, AwayStore, StatusAway, away_reps
from storage.repository import Store
from storage.sweep import SweepStore
from storage.tables import OutboxRow
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes

REP1, REP2, MANAGER = "U0REP1", "U0REP2", "U0MGR1"


async def test_a_rep_is_away_until_their_time_is_up(store: Store) -> None:
    away = AwayStore(store.db)
    until = MONDAY + timedelta(days=2)
    await away.set(REP1, until, "Offsite", REP1, MONDAY)
    assert await away.away([REP1, REP2], MONDAY) == frozenset({REP1})
    assert await away.away([REP1], until - timedelta(seconds=1)) == frozenset({REP1})
    assert await away.away([REP1], until) == frozenset()  # the end is exclusive
    found = await away.get(REP1, MONDAY)
    assert found is not None and (found.until, found.note, found.set_by) == (
        until,
        "Offsite",
        REP1,
    )
    assert await away.get(REP1, until) is None
    assert await away.away([], MONDAY) == frozenset()


async def test_setting_again_replaces_and_back_clears(store: Store) -> None:
    away = AwayStore(store.db)
    await away.set(REP1, MONDAY + timedelta(days=1), None, REP1, MONDAY)
    await away.set(REP1, MONDAY + timedelta(days=5), "longer", MANAGER, MONDAY)
    (only,) = await away.everyone(MONDAY)
    assert (only.user, only.until, only.set_by) == (REP1, MONDAY + timedelta(days=5), MANAGER)
    cleared = await away.clear(REP1, MONDAY + timedelta(hours=1))
    assert cleared is not None and cleared.note == "longer"
    assert await away.everyone(MONDAY) == []
    assert await away.clear(REP1, MONDAY) is None  # back twice: nothing to clear


async def test_the_reps_dm_is_written_with_a_change_and_only_then(store: Store) -> None:
    """The DM rides in the change's transaction; the same time away set again a moment later
    (a retried command) and `back` for someone not away write nothing more."""
    away = AwayStore(store.db)
    until = MONDAY + timedelta(days=3)

    def told(text: str, at: timedelta) -> tuple[Send]:
        return (Send(REP2, text, f"away:{REP2}:{(MONDAY + at).isoformat()}"),)

    await away.set(REP2, until, "Cover", MANAGER, MONDAY, told("away", timedelta()))
    again = timedelta(seconds=2)
    kept = await away.set(REP2, until, "Cover", MANAGER, MONDAY + again, told("again", again))
    assert kept.set_at == MONDAY  # nothing changed: the row as it was
    longer = timedelta(seconds=3)
    await away.set(REP2, until + timedelta(days=1), "Cover", MANAGER, MONDAY + longer)
    await away.clear(REP2, MONDAY + timedelta(minutes=1), told("back", timedelta(minutes=1)))
    await away.clear(REP2, MONDAY + timedelta(minutes=2), told("again", timedelta(minutes=2)))
    statement = select(OutboxRow.payload).where(OutboxRow.channel == REP2).order_by(OutboxRow.id)
    rows = await store.db.run(lambda db: db.execute(statement).scalars().all())
    assert [row["text"] for row in rows] == ["away", "back"]


async def test_the_sync_helper_reads_inside_another_transaction(store: Store) -> None:
    away = AwayStore(store.db)
    await away.set(REP2, None, None, MANAGER, MONDAY)  # until further notice
    inside = await store.db.run(lambda db: away_reps(db, [REP1, REP2, REP2], MONDAY))
    assert inside == frozenset({REP2})


async def test_a_slack_status_never_overrides_time_set_by_hand(store: Store) -> None:
    away = AwayStore(store.db)
    hand = MONDAY + timedelta(days=3)
    await away.set(REP1, hand, "Conference", REP1, MONDAY)
    later = MONDAY + timedelta(days=1)
    statuses = {REP1: StatusAway(later, ":palm_tree:"), REP2: StatusAway(None, "Out of office")}
    await away.sync_statuses([REP1, REP2], statuses, MONDAY)
    rows = {row.user: row for row in await away.everyone(MONDAY)}
    assert (rows[REP1].until, rows[REP1].set_by) == (hand, REP1)
    assert (rows[REP2].until, rows[REP2].set_by) == (None, SLACK_STATUS)
    assert rows[REP2].from_status

    # Statuses cleared: only the rows read from a status go.
    await away.sync_statuses([REP1, REP2], {}, MONDAY + timedelta(hours=1))
    assert [row.user for row in await away.everyone(MONDAY)] == [REP1]


async def test_a_status_replaces_an_expired_hand_set_row(store: Store) -> None:
    away = AwayStore(store.db)
    await away.set(REP1, MONDAY + timedelta(hours=1), None, REP1, MONDAY)
    now = MONDAY + timedelta(hours=2)
    await away.sync_statuses([REP1], {REP1: StatusAway(None, ":palm_tree:")}, now)
    found = await away.get(REP1, now)
    assert found is not None and found.from_status and found.note == ":palm_tree:"


async def test_new_leads_skip_a_rep_who_is_away(services: Services) -> None:
    away = AwayStore(services.store.db)
    services.availability = away  # as bot/app.py wires it: the rotation asks who is away
    await away.set(REP1, MONDAY + timedelta(days=1), None, REP1, MONDAY)
    owners = []
    for number in range(4):
        result = await services.intake(lead_payload(f"hs-{number}"), MONDAY)
        assert result.lead is not None
        owners.append(result.lead.suggested_owner)
    assert owners == [REP2] * 4
    back = MONDAY + timedelta(days=1)
    later = [await services.intake(lead_payload(f"hs-b{n}"), back) for n in range(2)]
    assert sorted(str(result.lead.suggested_owner) for result in later if result.lead) == [
        REP1,
        REP2,
    ]


async def test_a_pool_all_away_still_gets_a_suggested_owner(services: Services) -> None:
    """Nobody of the pool is available: each lead goes to the fallback owner (the first
    manager by default), never to nobody."""
    away = AwayStore(services.store.db)
    services.availability = away
    for rep in (REP1, REP2):
        await away.set(rep, None, None, MANAGER, MONDAY)
    results = await asyncio.gather(
        *(services.intake(lead_payload(f"hs-{n}"), MONDAY) for n in range(4))
    )
    owners = [result.lead.suggested_owner for result in results if result.lead]
    assert owners == [services.policy.fallback] * 4


async def test_the_sweep_hands_an_away_owners_overdue_leads_to_the_pool(
    services: Services,
) -> None:
    """Concurrent sweeps on both backends: each away owner's overdue lead is offered once,
    to the rep who is not away, and leaves its owner."""
    away = AwayStore(services.store.db)
    sweeper = Sweeper(SweepStore(services.store.db), services.policies, Wakes(), away=away)
    for number in range(6):
        result = await services.intake(lead_payload(f"hs-{number}"), MONDAY)
        assert result.lead is not None
        await services.claim(result.lead.id, REP1, MONDAY + timedelta(minutes=1))
    await away.set(REP1, MONDAY + timedelta(days=3), None, REP1, MONDAY)
    now = MONDAY + timedelta(hours=2, minutes=1)  # the first touch is overdue on all six
    results = await asyncio.gather(*(sweeper.run(now, batch=2) for _ in range(3)))
    assert sum(result.changed for result in results) == 6
    for lead_id in range(1, 7):
        lead = await services.lead(lead_id)
        assert (lead.stage, lead.owner, lead.suggested_owner) == (Stage.MQL, None, REP2)
        assert lead.claimed_at == MONDAY + timedelta(minutes=1)  # its first claim stays
        assert lead.claim_due_at is not None and lead.claim_due_at > now
        offered = [e for e in await services.store.events(lead_id) if e.type == "offered"]
        assert [event.data for event in offered] == [
            {"from": REP1, "to": REP2, "why": "away", "released": True}
        ]
    claimed = await services.claim(1, REP2, now + timedelta(minutes=5))
    assert not claimed.repeated and (await services.lead(1)).owner == REP2
