"""A manager's answer to an escalation, over the real store (SQLite and PostgreSQL): Reassign
hands the lead to another rep of its pool, Snooze holds its ladder for a working hour."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.lead import Stage
from bot.domain.refusal import Refusal
from bot.services.leads import Services
from bot.services.sweep import Sweeper
from storage.outbox import OutboxStore
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY

# The example SLA: a hot lead has 1 working hour to be claimed (reminder at 11:30, managers at
# 12:00, reassignment at 12:30) and 2 to be touched.
MANAGER, OWNER, PEER, OUTSIDER = "U0MGR1", "U0REP1", "U0REP2", "U0REP3"
ENTERPRISE, POST_TS = "C0ENT", "1790000000.000100"


def sweeper(services: Services) -> Sweeper:
    return Sweeper(SweepStore(services.store.db), services.policies, services.notifier)


def wakes(services: Services) -> int:
    """How often the use cases said "deliver soon" (the conftest's counting notifier)."""
    return int(getattr(services.notifier, "count"))  # noqa: B009


async def posted_lead(services: Services, **overrides: Any) -> int:
    """A hot enterprise lead (suggested to U0REP1) whose post is in Slack."""
    result = await services.intake(lead_payload(**overrides), MONDAY)
    assert result.lead is not None and result.lead.suggested_owner == OWNER
    await services.store.mark_posted(result.lead.id, ENTERPRISE, POST_TS, MONDAY)
    return result.lead.id


async def claimed_lead(services: Services) -> int:
    lead_id = await posted_lead(services)
    await services.claim(lead_id, OWNER, MONDAY + timedelta(minutes=4))
    return lead_id


async def state(services: Services, lead_id: int) -> tuple[Any, ...]:
    """Everything a change could touch: the lead, its events, the outbox."""
    rows = await OutboxStore(services.store.db).rows()
    return (
        await services.store.get(lead_id),
        await services.store.events(lead_id),
        [(row["kind"], row["channel"], row["payload"]) for row in rows],
    )


async def messages(services: Services) -> list[tuple[str, dict[str, Any]]]:
    rows = await OutboxStore(services.store.db).rows()
    return [(row["channel"], row["payload"]) for row in rows if row["kind"] == "message"]


async def updates(services: Services) -> int:
    rows = await OutboxStore(services.store.db).rows()
    return len([row for row in rows if row["kind"] == "update_lead"])


# --- reassign -----------------------------------------------------------------------------------


async def test_reassigning_an_unclaimed_lead_changes_its_suggested_owner(
    services: Services,
) -> None:
    lead_id = await posted_lead(services)
    now = MONDAY + timedelta(minutes=61)
    before = await updates(services)

    outcome = await services.reassign(lead_id, MANAGER, PEER, now)

    assert not outcome.repeated
    assert outcome.message.startswith(
        f"🔁 Reassigned to <@{PEER}> from <@{OWNER}> by <@{MANAGER}> at "
    )
    lead = await services.lead(lead_id)
    assert (lead.stage, lead.owner, lead.suggested_owner) == (Stage.MQL, None, PEER)
    event = (await services.store.events(lead_id))[-1]
    assert (event.type, event.actor) == ("reassigned", MANAGER)
    assert event.data == {"from": OWNER, "to": PEER, "by": MANAGER, "why": "manager"}
    (note, dm, lost) = await messages(services)
    assert note[0] == ENTERPRISE and note[1]["thread_ts"] == POST_TS
    assert f"Reassigned to <@{PEER}> from <@{OWNER}>" in note[1]["text"]
    assert f"<@{MANAGER}>" in note[1]["text"]
    assert dm[0] == PEER and "claim it there" in dm[1]["text"]
    # The rep it was suggested to hears privately who has it now.
    assert lost[0] == OWNER and "reassigned the lead suggested to you" in lost[1]["text"]
    assert await updates(services) == before + 1  # the post shows its new suggested owner
    assert wakes(services) == 2  # intake, reassign


async def test_reassigning_a_claimed_lead_changes_its_owner(services: Services) -> None:
    lead_id = await claimed_lead(services)

    outcome = await services.reassign(lead_id, MANAGER, PEER, MONDAY + timedelta(hours=3))

    assert not outcome.repeated
    lead = await services.lead(lead_id)
    assert (lead.stage, lead.owner) == (Stage.SAL, PEER)
    (note, dm, lost) = await messages(services)
    assert f"Reassigned to <@{PEER}> from <@{OWNER}>" in note[1]["text"]
    assert dm[0] == PEER and "it is yours now" in dm[1]["text"]
    assert lost[0] == OWNER and f"<@{MANAGER}> reassigned your lead" in lost[1]["text"]
    assert f"to <@{PEER}>" in lost[1]["text"]


async def test_a_rep_outside_the_pool_is_refused_and_nothing_changes(services: Services) -> None:
    lead_id = await posted_lead(services)
    before = await state(services, lead_id)

    with pytest.raises(Refusal) as refused:
        await services.reassign(lead_id, MANAGER, OUTSIDER, MONDAY + timedelta(minutes=61))

    assert refused.value.message == (
        f"<@{OUTSIDER}> is not in the enterprise pool (<@{OWNER}>, <@{PEER}>); nothing was changed."
    )
    assert await state(services, lead_id) == before


async def test_reassigning_to_the_current_owner_changes_nothing(services: Services) -> None:
    lead_id = await claimed_lead(services)
    before = await state(services, lead_id)

    outcome = await services.reassign(lead_id, MANAGER, OWNER, MONDAY + timedelta(hours=1))

    assert outcome.repeated
    assert outcome.message == f"<@{OWNER}> owns this lead already; nothing was changed."
    assert await state(services, lead_id) == before


async def test_only_a_manager_reassigns_or_snoozes(services: Services) -> None:
    lead_id = await posted_lead(services)
    before = await state(services, lead_id)
    now = MONDAY + timedelta(minutes=61)

    with pytest.raises(Refusal, match="only the sales managers can reassign"):
        await services.reassign(lead_id, OWNER, PEER, now)
    with pytest.raises(Refusal, match="only the sales managers can snooze"):
        await services.snooze(lead_id, OWNER, now)

    assert await state(services, lead_id) == before


async def test_a_closed_lead_is_neither_reassigned_nor_snoozed(services: Services) -> None:
    lead_id = await claimed_lead(services)
    await services.dispose(lead_id, OWNER, "qualified", MONDAY + timedelta(hours=1))
    before = await state(services, lead_id)
    now = MONDAY + timedelta(hours=2)

    with pytest.raises(Refusal, match="already closed as Qualified; there is nothing to reassign"):
        await services.reassign(lead_id, MANAGER, PEER, now)
    with pytest.raises(Refusal, match="already closed as Qualified; there is nothing to snooze"):
        await services.snooze(lead_id, MANAGER, now)

    assert await state(services, lead_id) == before


async def test_a_missing_lead_is_refused(services: Services) -> None:
    with pytest.raises(Refusal, match="Lead 999 no longer exists"):
        await services.reassign(999, MANAGER, PEER, MONDAY)
    with pytest.raises(Refusal, match="Lead 999 no longer exists"):
        await services.snooze(999, MANAGER, MONDAY)


async def test_two_managers_picking_the_same_rep_reassign_once(services: Services) -> None:
    lead_id = await posted_lead(services)
    now = MONDAY + timedelta(minutes=61)

    outcomes = await asyncio.gather(
        services.reassign(lead_id, MANAGER, PEER, now),
        services.reassign(lead_id, "U0MGR2", PEER, now),
    )

    assert sorted(outcome.repeated for outcome in outcomes) == [False, True]
    events = [e for e in await services.store.events(lead_id) if e.type == "reassigned"]
    assert len(events) == 1
    assert len(await messages(services)) == 3  # one note, a DM to each rep


# --- snooze -------------------------------------------------------------------------------------


async def test_a_snooze_holds_the_ladder_for_one_working_hour(services: Services) -> None:
    lead_id = await posted_lead(services)
    sweep = sweeper(services)
    assert (await sweep.run(MONDAY + timedelta(minutes=61))).changed == 1  # 12:01: managers
    now = MONDAY + timedelta(minutes=62)

    outcome = await services.snooze(lead_id, MANAGER, now)

    until = now + timedelta(hours=1)  # 13:02, within working hours
    assert outcome.message.startswith(f"😴 Snoozed by <@{MANAGER}> until <!date^")
    lead = await services.lead(lead_id)
    assert lead.snoozed_until == until and lead.next_action_at == until
    event = (await services.store.events(lead_id))[-1]
    assert (event.type, event.actor) == ("snoozed", MANAGER)
    assert event.data == {"by": MANAGER, "until": until.isoformat()}
    note = (await messages(services))[-1]
    assert note[0] == ENTERPRISE and note[1]["thread_ts"] == POST_TS
    assert note[1]["text"].startswith(f"😴 Snoozed by <@{MANAGER}> until <!date^")

    # 12:31 would reassign it (150% of the claim window), 13:00 would alert on first touch.
    for minutes in (29, 58, 59):
        result = await sweep.run(now + timedelta(minutes=minutes))
        assert (result.looked_at, result.changed) == (0, 0)
    assert (await sweep.run(until)).changed == 1  # the snooze is over: the strongest step
    lead = await services.lead(lead_id)
    assert lead.suggested_owner == PEER  # it was the reassignment


async def test_a_snooze_keeps_a_later_next_look(services: Services) -> None:
    lead_id = await posted_lead(services, score=65)  # warm: 12 working hours to claim
    before = await services.lead(lead_id)
    assert before.next_action_at is not None
    now = MONDAY + timedelta(minutes=5)

    await services.snooze(lead_id, MANAGER, now)

    lead = await services.lead(lead_id)
    assert lead.snoozed_until == now + timedelta(hours=1)
    assert lead.next_action_at == before.next_action_at > now + timedelta(hours=1)


async def test_a_repeated_snooze_is_recorded_once(services: Services) -> None:
    lead_id = await posted_lead(services)
    now = MONDAY + timedelta(minutes=61)

    first, second = [await services.snooze(lead_id, MANAGER, now) for _ in range(2)]

    assert not first.repeated and second.repeated
    events = [e for e in await services.store.events(lead_id) if e.type == "snoozed"]
    assert len(events) == 1
    assert len(await messages(services)) == 1


async def test_a_snooze_late_in_the_day_ends_the_next_working_morning(
    services: Services,
) -> None:
    lead_id = await posted_lead(services)
    friday_4_30pm = datetime(2026, 11, 27, 5, 30, tzinfo=UTC)

    await services.snooze(lead_id, MANAGER, friday_4_30pm)

    lead = await services.lead(lead_id)
    assert lead.snoozed_until == datetime(2026, 11, 29, 22, 30, tzinfo=UTC)  # Mon 09:30
