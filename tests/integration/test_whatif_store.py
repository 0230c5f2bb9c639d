"""The what-if replay's query over the real store: the same MQLs and stage times on SQLite and
PostgreSQL, only the range's MQLs, and nothing lost or repeated across batch boundaries."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.policy import Policy
from bot.domain.whatif import History, MqlReplay, Replay
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from storage.repository import Store
from storage.whatif import WhatIfStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes

START, END = MONDAY - timedelta(hours=1), MONDAY + timedelta(days=3)


def at(minutes: int) -> datetime:
    return MONDAY + timedelta(minutes=minutes)


async def history(store: Store, policy: Policy) -> None:
    """A worked lead (claimed, touched, qualified), a lead the CRM created an hour before it
    reached Handoff, an untouched smb lead, and leads the query must leave out."""
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY - timedelta(days=7))
    services = Services(store, book, Wakes())

    async def arrive(external_id: str, now: datetime, **fields: object) -> int:
        result = await services.intake(lead_payload(external_id, **fields), now)
        assert result.lead is not None
        return result.lead.id

    worked = await arrive("hs-1", at(0))
    await services.claim(worked, "U0REP1", at(5))
    await services.log_attempt(worked, "U0REP1", "call", at(90))
    await services.dispose(worked, "U0REP1", "qualified", at(600))
    await arrive("hs-2", at(60), received_at=at(0).isoformat())  # on a batch boundary
    small = {"name": "Tiny Co", "employees": 12, "country": "AU"}
    await arrive("hs-3", at(61), company=small, score=70, source="event")
    await arrive("hs-low", at(2), score=20)  # below the MQL threshold: not an MQL
    await arrive("hs-old", START - timedelta(minutes=1))  # before the range
    await arrive("hs-late", END)  # the range's end is exclusive


async def test_the_ranges_mqls_read_the_same_on_every_backend(store: Store, policy: Policy) -> None:
    await history(store, policy)
    batches = [
        batch async for batch in WhatIfStore(store.db).history(START, END, timedelta(hours=1))
    ]
    assert len(batches) == 73  # 3 days and an hour, an hour at a time
    found = sorted((lead for batch in batches for lead in batch), key=lambda lead: lead.started_at)
    assert found == [
        History(at(0), at(0), at(5), at(90), at(600), 88, "webinar"),
        History(at(0), at(60), None, None, None, 88, "webinar"),
        History(at(61), at(61), None, None, None, 70, "event"),
    ]


async def test_the_replay_reads_what_the_store_gives(store: Store, policy: Policy) -> None:
    await history(store, policy)
    replay = Replay(policy, policy, END, weeks=1)
    async for batch in WhatIfStore(store.db).history(replay.start, replay.end):
        replay.add(batch)
    assert replay.start < START and replay.end == END  # the week from Monday 00:00 in Sydney
    total = replay.total["today"]
    assert total.leads == 4 and total.tiers == {"hot": 3, "warm": 1}
    # The warm lead's 1 business day ran out too: four leads were due a first touch.
    assert (total.first_touch.met, total.first_touch.due) == (1, 4)


async def test_every_lead_of_the_range_reads_back_for_the_mql_replay(
    store: Store, policy: Policy
) -> None:
    """The MQL definition's replay reads every lead of the range, MQL or not, on every
    backend: its data and engagement, its CRM score, and Handoff's own stored beside it."""
    await history(store, policy)
    batches = [batch async for batch in WhatIfStore(store.db).leads(START, END, timedelta(days=1))]
    assert len(batches) == 4  # 3 days and an hour, a day at a time
    found = {item.lead.external_id: item for batch in batches for item in batch}
    assert sorted(found) == ["hs-1", "hs-2", "hs-3", "hs-low"]
    low = found["hs-low"]
    assert (low.lead.score, low.company, low.segment, low.as_of) == (
        20,
        "Northwind Logistics",
        "enterprise",
        at(2),
    )
    assert found["hs-2"].as_of == at(0)  # scored as of its arrival, not when it reached us
    assert [item.type for item in found["hs-1"].lead.engagement] == ["webinar", "page"]
    stored = await store.by_external_id("hs-low")
    assert stored is not None and stored.stage.value == "nurture"
    # 2,400 employees +20, VP (seniority) +15, Logistics +5, a webinar 4 days before +10.
    assert (stored.score, stored.handoff_score) == (20, 50)
    replay = MqlReplay(policy, policy)
    for batch in batches:
        replay.add(batch)
    assert (replay.total["today"].leads, replay.total["today"].mqls) == (4, 3)
    assert replay.flipped == {}


async def test_a_lead_rejected_untouched_in_its_window_is_not_a_replayed_miss(
    store: Store, policy: Policy
) -> None:
    """Spam claimed and closed *Bad data* 30 minutes in, never called: the replay, as the SLA
    report, leaves it out of first-touch compliance under a file whose window it beat."""
    book = PolicyBook(store, policy)
    await book.record_current(MONDAY - timedelta(days=7))
    services = Services(store, book, Wakes())
    result = await services.intake(lead_payload("hs-spam"), at(0))
    assert result.lead is not None
    await services.claim(result.lead.id, "U0REP1", at(5))
    await services.dispose(result.lead.id, "U0REP1", "bad_data", at(30), "Fake or spam", "a bot")
    replay = Replay(policy, policy, END, weeks=1)
    async for batch in WhatIfStore(store.db).history(replay.start, replay.end):
        assert all(lead.rejected for lead in batch)
        replay.add(batch)
    total = replay.total["today"]
    assert total.leads == 1 and (total.first_touch.met, total.first_touch.due) == (0, 0)
