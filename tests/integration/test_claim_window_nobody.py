"""A `claim: assigned` lead held for nobody (SQLite and PostgreSQL): when there is nobody to
reserve it for (the whole pool away, and no fallback owner; or its suggested rep away past a
deadline with everyone else away too), it is open to the pool from that moment. Its post says
so at every moment, a rep back from time away claims it at once, and the window's end says
nothing of an opening that already happened. A lead offered mid-window to the next rep is back
with the pool, as the offer's note says, not held for that rep."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.leads import Services
from bot.services.sweep import Sweeper
from bot.slack.lead_views import lead_message
from storage.away import AwayStore
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, away_wired

REP1, REP2, REP3, MANAGER = "U0REP1", "U0REP2", "U0REP3", "U0MGR1"
BACK = MONDAY + timedelta(minutes=5)  # 11:05 in Sydney: the whole pool is away until then
OPENS = MONDAY + timedelta(minutes=15)  # 11:15: 15 business minutes after the post
OFFERED = MONDAY + timedelta(minutes=61)  # 12:01: the 12:00 claim deadline has passed
LONG_OPENS = MONDAY + timedelta(minutes=75)  # 12:15: a 75-business-minute window's end


def assigned(policy: Policy, window: str, reps: list[str], managers: bool = True) -> Policy:
    data = snapshot(policy)
    data["segments"][0] |= {"claim": "assigned", "claim_window": window, "reps": reps}
    if not managers:  # nobody to fall back on: no fallback owner, no manager
        data["managers"] = []
    return parse_policy(data)


async def _post(services: Services, lead_id: int, now: datetime) -> str:
    """What the lead's post says at `now`: its blocks' text and its `text` fallback."""
    lead = await services.lead(lead_id)
    message = lead_message(lead, await services.policy_for(lead), now)
    return f"{message.blocks}\n{message.text}"


async def _events(services: Services, lead_id: int, kind: str) -> list[dict]:
    return [e.data for e in await services.store.events(lead_id) if e.type == kind]


@pytest.fixture
async def nobody(store: Store, policy: Policy) -> tuple[Services, Sweeper, int]:
    """A lead posted at 11:00 while both reps of its pool are away until 11:05, with nobody
    to fall back on: suggested to nobody."""
    services, away, sweeper = await away_wired(
        store, assigned(policy, "15 business minutes", [REP1, REP2], managers=False)
    )
    for rep in (REP1, REP2):
        await away.set(rep, BACK, None, REP1, MONDAY)
    lead = (await services.intake(lead_payload(), MONDAY)).lead
    assert lead is not None and lead.suggested_owner is None
    return services, sweeper, lead.id


async def test_a_lead_held_for_nobody_says_it_is_open_and_a_rep_back_claims_it(
    nobody: tuple[Services, Sweeper, int],
) -> None:
    services, _, lead_id = nobody
    for now in (MONDAY, BACK, OPENS + timedelta(minutes=1)):
        post = await _post(services, lead_id, now)
        assert "Reserved for" not in post and "reserved for" not in post
        assert "Open to the pool: nobody to reserve it for" in post
        assert "open to the pool (nobody to reserve it for)" in post
        assert "since" not in post.split("Open to the pool")[1][:20]
    # Back at 11:05, inside what would have been the window: the post said it is open.
    await services.claim(lead_id, REP2, BACK + timedelta(minutes=1))
    assert (await services.lead(lead_id)).owner == REP2


async def test_the_windows_end_says_nothing_of_an_opening_that_never_was(
    nobody: tuple[Services, Sweeper, int],
) -> None:
    services, sweeper, lead_id = nobody
    before = await _post(services, lead_id, OPENS)
    await sweeper.run(OPENS)
    await sweeper.run(OPENS + timedelta(minutes=1))
    assert await _events(services, lead_id, "claim_opened") == []
    assert await _post(services, lead_id, OPENS) == before
    assert "since" not in before.split("Open to the pool")[1][:20]


@pytest.fixture
async def long_window(store: Store, policy: Policy) -> tuple[Services, AwayStore, Sweeper, int]:
    """A 75-business-minute window (longer than the 1-hour claim deadline): a lead posted at
    11:00 for U0REP1, who goes away at 11:10."""
    services, away, sweeper = await away_wired(
        store, assigned(policy, "75 business minutes", [REP1, REP2, REP3])
    )
    lead = (await services.intake(lead_payload(), MONDAY)).lead
    assert lead is not None
    assert (lead.suggested_owner, lead.claim_opens_at) == (REP1, LONG_OPENS)
    await away.set(REP1, None, None, MANAGER, MONDAY + timedelta(minutes=10))
    return services, away, sweeper, lead.id


async def test_a_lead_offered_mid_window_to_nobody_is_open_to_the_pool(
    long_window: tuple[Services, AwayStore, Sweeper, int],
) -> None:
    services, away, sweeper, lead_id = long_window
    for rep in (REP2, REP3):
        await away.set(rep, OFFERED + timedelta(minutes=2), None, MANAGER, MONDAY)
    await sweeper.run(OFFERED)
    lead = await services.lead(lead_id)
    assert lead.suggested_owner is None
    assert await _events(services, lead_id, "offered")
    post = await _post(services, lead_id, OFFERED)
    assert "Reserved for" not in post and "Open to the pool" in post
    # REP3 is back at 12:03, inside what was the window: the note said "Press Claim".
    await services.claim(lead_id, REP3, OFFERED + timedelta(minutes=3))
    assert (await services.lead(lead_id)).owner == REP3
    await sweeper.run(LONG_OPENS)
    assert await _events(services, lead_id, "claim_opened") == []


async def test_a_lead_offered_mid_window_to_the_next_rep_is_back_with_the_pool(
    long_window: tuple[Services, AwayStore, Sweeper, int],
) -> None:
    services, _, sweeper, lead_id = long_window
    await sweeper.run(OFFERED)
    lead = await services.lead(lead_id)
    assert lead.suggested_owner == REP2
    post = await _post(services, lead_id, OFFERED)
    assert "Reserved for" not in post
    assert "Open to the pool since" in post and "Mon 23 Nov 12:01" in post
    # The note said the lead is back with the pool: not only REP2 may claim it.
    await services.claim(lead_id, REP3, OFFERED + timedelta(minutes=1))
    assert (await services.lead(lead_id)).owner == REP3


async def test_the_window_opened_by_an_offer_is_told_once(
    long_window: tuple[Services, AwayStore, Sweeper, int],
) -> None:
    services, _, sweeper, lead_id = long_window
    await sweeper.run(OFFERED)
    await sweeper.run(LONG_OPENS)
    await sweeper.run(LONG_OPENS + timedelta(minutes=1))
    assert await _events(services, lead_id, "claim_opened") == []  # the offer said it
    assert len(await _events(services, lead_id, "offered")) == 1
    post = await _post(services, lead_id, LONG_OPENS)
    assert "Open to the pool since" in post and "Mon 23 Nov 12:01" in post


async def test_a_lead_released_from_an_owner_away_opens_when_released(
    store: Store, policy: Policy
) -> None:
    """Claimed inside its window, then released (its owner away past the first-touch deadline):
    open to the pool since the release, not since the window's end while it was claimed; and
    the sweep never tells of a window's end afterwards."""
    services, away, sweeper = await away_wired(
        store, assigned(policy, "15 business minutes", [REP1, REP2])
    )
    lead_id = (await services.intake(lead_payload(), MONDAY)).lead.id  # type: ignore[union-attr]
    await services.claim(lead_id, REP1, BACK)
    await away.set(REP1, None, None, MANAGER, BACK)
    released = MONDAY + timedelta(minutes=121)  # 13:01: the 13:00 first touch passed
    await sweeper.run(released)
    lead = await services.lead(lead_id)
    assert (lead.owner, lead.suggested_owner) == (None, REP2)
    post = await _post(services, lead_id, released)
    assert "Open to the pool since" in post and "Mon 23 Nov 13:01" in post
    assert "11:15" not in post
    for minutes in (5, 30, 60):
        await sweeper.run(released + timedelta(minutes=minutes))
    assert await _events(services, lead_id, "claim_opened") == []
