"""A segment moved to another channel in sla.yaml, over the real store (SQLite and PostgreSQL):
each start looks for the open leads Slack refused in another channel than their segment's with
ONE query for every segment, which writes nothing when nothing moved, and writes the moved
leads' posts together, not one statement per lead, each once however many replicas start at
once (the key a mend of the old channel writes too: unarchived later, none comes back there)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.domain.policy import Policy
from bot.services.leads import Services
from storage import db
from storage.outbox import Kind, OutboxStore
from tests.integration.conftest import statements
from tests.integration.test_refusal_groups_store import ESCALATIONS, LATER, refused_posts

OLD, NEW = "C0ENT", "C0ENTNEW"


def outbox_statements() -> Any:
    """The statements about the outbox any engine sends inside the block."""
    return statements("outbox")


async def archived(services: Services, rows: OutboxStore, count: int) -> list[int]:
    """`count` enterprise leads whose posts the archived enterprise channel refused."""
    items = await refused_posts(services, rows, count)
    for item in items:
        await rows.refused(item, LATER, "is_archived", ESCALATIONS)
    return sorted(int(item.lead_id or 0) for item in items)


def channels(policy: Policy, **moved: str) -> dict[str, str]:
    return {segment.name: moved.get(segment.name, segment.channel) for segment in policy.segments}


async def posts_in(rows: OutboxStore, channel: str) -> list[dict[str, Any]]:
    return [
        row
        for row in await rows.rows()
        if row["kind"] == Kind.POST_LEAD and row["channel"] == channel
    ]


async def test_a_start_with_no_segment_moved_reads_once_and_posts_nothing(
    services: Services, policy: Policy
) -> None:
    rows = OutboxStore(services.store.db)
    leads = await archived(services, rows, 3)
    before = await rows.rows()
    assert len(policy.segments) == 3

    with outbox_statements() as sent:
        assert await rows.moved(channels(policy), LATER) == {}

    assert len(sent) == 1  # one query for the three segments, not one per segment
    assert await rows.rows() == before

    # With the enterprise segment moved, the same start posts its leads in its new channel.
    assert await rows.moved(channels(policy, enterprise=NEW), LATER) == {(OLD, NEW): 3}
    posted = await posts_in(rows, NEW)
    assert sorted(int(row["lead_id"]) for row in posted) == leads
    assert all(row["state"] == "pending" for row in posted)


async def test_a_few_hundred_moved_leads_are_written_together_each_once(
    services: Services, policy: Policy, database_url: str
) -> None:
    rows = OutboxStore(services.store.db)
    leads = await archived(services, rows, 300)
    other = db.Database(database_url)  # a second replica starting at the same moment
    try:
        with outbox_statements() as sent:
            counts = await asyncio.gather(
                rows.moved(channels(policy, enterprise=NEW), LATER),
                OutboxStore(other).moved(channels(policy, enterprise=NEW), LATER),
            )
        inserts = [statement for statement in sent if statement.startswith("INSERT")]
        assert len(inserts) <= 2  # one each, not one per lead

        assert sum(count.get((OLD, NEW), 0) for count in counts) == 300
        assert all(set(count) <= {(OLD, NEW)} for count in counts)
        posted = await posts_in(rows, NEW)
        assert sorted(int(row["lead_id"]) for row in posted) == leads  # each once
        # Started again, or the old channel unarchived later: none is posted again.
        assert await OutboxStore(other).moved(channels(policy, enterprise=NEW), LATER) == {}
        assert await rows.mended(OLD, LATER) == 0
        assert len(await posts_in(rows, NEW)) == 300
        assert [row for row in await posts_in(rows, OLD) if row["state"] == "pending"] == []
    finally:
        await other.dispose()
