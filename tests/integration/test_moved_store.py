"""A segment moved to another channel in sla.yaml, over the real store (SQLite and PostgreSQL):
each start looks for the open leads Slack refused in another channel than their segment's with
ONE query for every segment, which writes nothing when nothing moved, and writes the moved
leads' posts together, not one statement per lead, each once however many replicas start at
once (the key a mend of the old channel writes too: unarchived later, none comes back there)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from bot.domain.effects import Moved
from bot.domain.policy import Policy
from bot.services.erasure import forget
from bot.services.leads import Services
from storage import db
from storage.outbox import Kind, OutboxStore
from storage.tables import OutboxRow, table
from tests.integration.conftest import Wakes, erased_after, statements
from tests.integration.test_erasure_store import downgrade_to_before
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
        (group,) = await groups(rows)  # its alert tells all 300, each once
        assert group.moved == (Moved("enterprise", NEW, 300),) and group.refused == 300
        posted = await posts_in(rows, NEW)
        assert sorted(int(row["lead_id"]) for row in posted) == leads  # each once
        # Started again, or the old channel unarchived later: none is posted again.
        assert await OutboxStore(other).moved(channels(policy, enterprise=NEW), LATER) == {}
        assert await rows.mended(OLD, LATER) == 0
        assert len(await posts_in(rows, NEW)) == 300
        assert [row for row in await posts_in(rows, OLD) if row["state"] == "pending"] == []
    finally:
        await other.dispose()


async def groups(rows: OutboxStore) -> list[Any]:
    """The refusal groups, as their alerts show them, oldest first."""
    alerts = [
        row
        for row in await rows.rows()
        if row["kind"] == Kind.MESSAGE and str(row["key"]).startswith("refused:")
    ]
    return [await rows.refusals(int(row["payload"]["group"])) for row in alerts]


async def test_each_alert_about_the_old_channel_tells_the_moved_leads_it_counted(
    services: Services, policy: Policy
) -> None:
    """Refused on Monday (one alert), and again over a day later (a new alert): once the
    segment moved, each alert tells how many of the leads it counted are posted in the new
    channel; a lead erased later is no longer counted, and a start again changes nothing."""
    rows = OutboxStore(services.store.db)
    items = await refused_posts(services, rows, 5)
    for item in items[:3]:
        await rows.refused(item, LATER, "is_archived", ESCALATIONS)
    for item in items[3:]:
        await rows.refused(item, LATER + timedelta(days=1, minutes=1), "is_archived", ESCALATIONS)
    first, second = await groups(rows)
    assert (first.refused, second.refused) == (3, 2)
    assert first.moved == second.moved == () and first.moved_at is None

    moved_at = LATER + timedelta(days=2)
    assert await rows.moved(channels(policy, enterprise=NEW), moved_at) == {(OLD, NEW): 5}

    first, second = await groups(rows)
    assert first.moved == (Moved("enterprise", NEW, 3),) and first.moved_at == moved_at
    assert second.moved == (Moved("enterprise", NEW, 2),)

    await forget(services.store, Wakes(), "hs-0@northwind.example", "cli", moved_at)
    first, second = await groups(rows)
    assert first.moved == (Moved("enterprise", NEW, 2),)
    assert second.moved == (Moved("enterprise", NEW, 2),)
    before = await rows.rows()
    assert await rows.moved(channels(policy, enterprise=NEW), moved_at) == {}
    assert await rows.rows() == before


async def test_posts_refused_before_the_upgrade_are_told_in_the_alert_that_counted_them(
    services: Services, policy: Policy
) -> None:
    """Migration 0035 down and up again with two groups stored, their refused posts as an
    earlier Handoff left them (recording no group): once the segment moved, each alert tells
    the leads refused while it was open (the latest group of the channel and error opened by
    the time each post was given up)."""
    rows = OutboxStore(services.store.db)
    items = await refused_posts(services, rows, 3)
    for item in items[:2]:
        await rows.refused(item, LATER, "is_archived", ESCALATIONS)
    await rows.refused(items[2], LATER + timedelta(days=1, minutes=1), "is_archived", ESCALATIONS)
    engine = services.store.db.engine
    async with engine.connect() as connection:  # out of a transaction, as `db.upgrade` runs
        await connection.run_sync(downgrade_to_before("_refused_moved.py"))
        outbox = table(OutboxRow)
        await connection.execute(
            update(outbox).where(OutboxRow.kind == Kind.POST_LEAD).values(payload={})
        )
        await connection.commit()
    await db.upgrade(engine)

    assert await rows.moved(channels(policy, enterprise=NEW), LATER + timedelta(days=2)) == {
        (OLD, NEW): 3
    }
    first, second = await groups(rows)
    assert first.moved == (Moved("enterprise", NEW, 2),)
    assert second.moved == (Moved("enterprise", NEW, 1),)


async def test_a_lead_moved_twice_is_told_in_each_alert_where_it_is_posted_now(
    services: Services, policy: Policy
) -> None:
    """sla.yaml moves the enterprise segment to a channel that refuses its leads too (archived
    as well: a second alert), then to a third one: both alerts say the leads are posted in the
    third channel; the first one no longer says they are in the second, which refused them."""
    mid = "C0ENTMID"
    rows = OutboxStore(services.store.db)
    await archived(services, rows, 2)
    assert await rows.moved(channels(policy, enterprise=mid), LATER) == {(OLD, mid): 2}
    (first,) = await groups(rows)
    assert first.moved == (Moved("enterprise", mid, 2),)
    for row in await posts_in(rows, mid):  # the second channel refuses them too
        item = await rows.lease(int(row["id"]), LATER, LATER + timedelta(seconds=30))
        assert item is not None
        await rows.refused(item, LATER, "is_archived", ESCALATIONS)

    assert await rows.moved(channels(policy, enterprise=NEW), LATER) == {(mid, NEW): 2}

    first, second = await groups(rows)
    assert second.moved == (Moved("enterprise", NEW, 2),)
    assert first.moved == (Moved("enterprise", NEW, 2),)


async def test_posts_refused_while_no_alert_was_sent_are_not_told_in_an_earlier_alert(
    services: Services, policy: Policy
) -> None:
    """One post refused while sla.yaml named an escalations channel (its alert counts 1), two
    more once it named none (no alert counted them): once the segment moved, the alert tells
    the one lead it counted, not 3 leads "it could not post" when it counted 1 refusal."""
    rows = OutboxStore(services.store.db)
    items = await refused_posts(services, rows, 3)
    await rows.refused(items[0], LATER, "is_archived", ESCALATIONS)
    for item in items[1:]:
        await rows.failed(item, LATER + timedelta(hours=1), "is_archived", None)

    moved_at = LATER + timedelta(days=2)
    assert await rows.moved(channels(policy, enterprise=NEW), moved_at) == {(OLD, NEW): 3}

    (first,) = await groups(rows)
    assert first.refused == 1 and first.moved == (Moved("enterprise", NEW, 1),)


async def test_a_lead_erased_while_a_start_moves_it_keeps_nothing_of_the_person(
    services: Services, policy: Policy, database_url: str
) -> None:
    """The person is forgotten while a start moves the segment: the erasure commits between
    the start's look at the refused posts and its marks on them (which alert tells the move).
    The mark must not write back the payload the look read: nothing of the person may remain
    in any row of the outbox (PostgreSQL, Read Committed)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs a start's look and write with no other writer in between")
    rows = OutboxStore(services.store.db)
    await archived(services, rows, 2)
    # Right after the start's look (its transaction open): the erasure, to its commit.
    with erased_after(services, "hs-0", LATER, "CASE leads.segment", "FROM outbox") as erased:
        await rows.moved(channels(policy, enterprise=NEW), LATER + timedelta(days=1))
    assert erased and erased[0]  # the erasure ran between the look and the write
    (gone,) = erased[0]
    kept = [row for row in await rows.rows() if row["lead_id"] == gone.lead_id]
    assert not any("northwind" in str(row["payload"]).lower() for row in kept), kept
