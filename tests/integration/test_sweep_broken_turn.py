"""A lead the sweep cannot hand on keeps its place in the rotation (SQLite and PostgreSQL): when
one lead's decision fails after it took a turn of its pool's rotation (here: its thread note
cannot be written), the lead stays with its rep, to be tried again later, and the batch saves
the turns of the leads that moved only. Each rep's "N this week" and `cap.per_day` count the
leads the rotation gave them, not one that never moved to them; in the planned batch, in the
batch decided under the lock (an open-leads cap), when Slack deactivates a rep, and with
sweeps racing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.lead import LeadView
from bot.domain.policy import Policy
from bot.services.leads import Services
from bot.services.sweep import Sweeper
from bot.slack import alert_views
from storage.repository import Store
from storage.sweep import RETRY_BROKEN, SweepStore
from tests.integration.conftest import (
    MONDAY,
    Wakes,
    away_wired,
    enterprise_counts,
    intake_many,
    pool_of,
)

REP1, REP2, REP7 = "U0REP1", "U0REP2", "U0REP7"
REASSIGN_DUE = MONDAY + timedelta(minutes=95)  # past 150% of the 1h claim window: reassign


def _note_fails_for(monkeypatch: pytest.MonkeyPatch, broken: set[int]) -> None:
    """The thread note of a lead in `broken` cannot be written (after the lead's turn)."""
    written = alert_views.reassign_note

    def note(lead: LeadView, *args: Any) -> str:
        if lead.id in broken:
            raise RuntimeError(f"lead {lead.id}: the note cannot be written")
        return written(lead, *args)

    monkeypatch.setattr(alert_views, "reassign_note", note)


async def _held(services: Services, count: int) -> list[str | None]:
    return [(await services.lead(lead_id)).suggested_owner for lead_id in range(1, count + 1)]


async def _reassigned(store: Store, lead_id: int) -> list[dict[str, Any]]:
    return [event.data for event in await store.events(lead_id) if event.type == "reassigned"]


def _as_held(owners: list[str | None]) -> dict[str, tuple[int, int]]:
    """Each rep's (today, this week) when the rotation counts them the leads they hold."""
    return {rep: (owners.count(rep), owners.count(rep)) for rep in {o for o in owners if o}}


@pytest.mark.parametrize(
    "cap",
    [None, {"open": 10}],  # planned before the lock; decided under it (an open-leads cap)
    ids=["planned", "locked"],
)
async def test_a_lead_the_sweep_cannot_hand_on_stays_counted_to_its_rep(
    store: Store, policy: Policy, monkeypatch: pytest.MonkeyPatch, cap: dict[str, int] | None
) -> None:
    """Three unclaimed leads (U0REP1, U0REP2, U0REP1) are reassigned, each to the other rep;
    lead 2's note fails: it stays U0REP2's, and U0REP1 is not counted a lead they never got.
    Tried again once its retry comes, it moves, and is counted once."""
    pool = pool_of(policy, [REP1, REP2], **({"cap": cap} if cap else {}))
    services, _, sweeper = await away_wired(store, pool)
    assert await intake_many(services, 3) == [REP1, REP2, REP1]
    _note_fails_for(monkeypatch, {2})

    assert (await sweeper.run(REASSIGN_DUE)).changed == 2

    assert await _held(services, 3) == [REP2, REP2, REP2]
    assert await _reassigned(store, 2) == []
    assert await enterprise_counts(store) == {REP1: (0, 0), REP2: (3, 3)}

    monkeypatch.undo()
    assert (await sweeper.run(REASSIGN_DUE + RETRY_BROKEN)).changed == 1

    assert await _held(services, 3) == [REP2, REP1, REP2]
    assert await _reassigned(store, 2) == [{"from": REP2, "to": REP1, "why": "unclaimed"}]
    assert await enterprise_counts(store) == {REP1: (1, 1), REP2: (2, 2)}


async def test_a_lead_that_cannot_be_handed_on_from_a_deactivated_rep_stays_counted_to_them(
    store: Store, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack deactivates U0REP1, who holds leads 1 and 3; lead 3's note fails: lead 1 moves to
    U0REP2 and is counted to them, lead 3 stays (for a manager) and stays U0REP1's."""
    services, _, _ = await away_wired(store, policy)  # the pool: U0REP1, U0REP2
    assert await intake_many(services, 4) == [REP1, REP2, REP1, REP2]
    hands = Sweeper(SweepStore(store.db), services.policies, Wakes(), barred={REP1})
    _note_fails_for(monkeypatch, {3})

    assert await hands.hand_on(REP1, "deactivated", MONDAY + timedelta(minutes=5)) == 1

    assert await _held(services, 4) == [REP2, REP2, REP1, REP2]
    assert await enterprise_counts(store) == {REP1: (1, 1), REP2: (3, 3)}


async def test_racing_sweeps_count_only_the_leads_they_moved(
    store: Store, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three sweeps share twelve leads, three at a time; the notes of leads 5 and 9 fail:
    ten leads move once each, and each rep's count is the leads they hold."""
    three = pool_of(policy, [REP1, REP2, REP7], weights={REP7: 2})
    services, _, sweeper = await away_wired(store, three)
    before = await intake_many(services, 12)
    _note_fails_for(monkeypatch, {5, 9})

    runs = await asyncio.gather(*(sweeper.run(REASSIGN_DUE, batch=3) for _ in range(3)))

    assert sum(run.changed for run in runs) == 10
    after = await _held(services, 12)
    for lead_id, (was, now) in enumerate(zip(before, after, strict=True), start=1):
        assert len(await _reassigned(store, lead_id)) == (0 if lead_id in (5, 9) else 1)
        assert (now == was) == (lead_id in (5, 9))
    counts = await enterprise_counts(store)
    assert {rep: count for rep, count in counts.items() if count != (0, 0)} == _as_held(after)
