"""A lead's post deleted in Slack is posted again once (SQLite and PostgreSQL): two updates
that find it gone at the same moment (two replicas) write one new post and one alert, and the
lead then points at the new post, its stage times unchanged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.domain.effects import Refresh
from bot.services.leads import Services
from storage.outbox import Kind, OutboxItem, OutboxStore, write_effects
from tests.integration.conftest import MONDAY
from tests.integration.test_settle_store import posted

LATER = MONDAY + timedelta(minutes=5)
ALERT = ("C0ESCALATE", "Its post was deleted")


async def update(rows: OutboxStore, services: Services, lead_id: int) -> OutboxItem:
    """An update of the lead's post, taken by a worker (its request under way)."""
    await services.store.db.run(lambda db: write_effects(db, [Refresh(lead_id)], LATER))
    found = [row for row in await rows.rows() if row["kind"] == Kind.UPDATE_LEAD]
    item = await rows.lease(int(found[-1]["id"]), LATER, LATER + timedelta(seconds=30))
    assert item is not None
    return item


async def test_two_updates_finding_the_post_gone_post_it_again_once(services: Services) -> None:
    lead_id = await posted(services, "hs-1")
    deleted = "1790000000.hs-1"
    rows = OutboxStore(services.store.db)
    first, second = await update(rows, services, lead_id), await update(rows, services, lead_id)

    done = await asyncio.gather(
        rows.repost(first, "C0ENT", deleted, LATER, ALERT),
        rows.repost(second, "C0ENT", deleted, LATER, ALERT),
    )

    # One writes the new post and is done; the other waits for it (it may show its change).
    assert sorted(done) == [False, True]
    written = await rows.rows()
    reposts = [row for row in written if row["kind"] == Kind.POST_LEAD and row["lead_id"]]
    assert [row["payload"].get("replaces") for row in reposts] == [None, deleted]
    alerts = [row for row in written if row["channel"] == ALERT[0]]
    assert [row["payload"]["text"] for row in alerts] == [ALERT[1]]

    repost = await rows.lease(int(reposts[-1]["id"]), LATER, LATER + timedelta(seconds=30))
    assert repost is not None
    await rows.delivered(repost, LATER, "1790000300.000100", "C0ENT")

    lead = await services.store.get(lead_id)
    assert lead is not None
    assert (lead.message_channel, lead.message_ts) == ("C0ENT", "1790000300.000100")
    assert lead.posted_at == MONDAY  # a stage time: never overwritten
    waiting = first if not done[0] else second
    # It found the lead on another post now: it waits to update that one, writes nothing.
    assert await rows.repost(waiting, "C0ENT", deleted, LATER, ALERT) is False
    assert len(await rows.rows()) == len(written)
    events = [event.type for event in await services.store.events(lead_id)]
    assert events.count("reposted") == 1
