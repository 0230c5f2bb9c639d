"""Refusals of one channel and error count into ONE managers' alert (SQLite and PostgreSQL),
also when two replicas give up on rows at the same moment: the open group's key is unique in
the database. Once the channel takes messages again, each lead whose post was refused is
posted again once, however many replicas (or unarchive events) find out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.services.leads import Services
from storage import db
from storage.outbox import Kind, OutboxItem, OutboxStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY

LATER = MONDAY + timedelta(minutes=5)
ESCALATIONS = "C0ESCALATE"


async def refused_posts(services: Services, rows: OutboxStore, count: int) -> list[OutboxItem]:
    """`count` leads whose posts to the enterprise channel a worker has taken."""
    taken = []
    for index in range(count):
        result = await services.intake(lead_payload(f"hs-{index}"), MONDAY)
        assert result.lead is not None
    for row in await rows.rows():
        if row["kind"] == Kind.POST_LEAD:
            item = await rows.lease(int(row["id"]), LATER, LATER + timedelta(seconds=30))
            assert item is not None
            taken.append(item)
    assert len(taken) == count
    return taken


async def test_two_replicas_refused_at_once_make_one_alert_counting_every_refusal(
    services: Services, database_url: str
) -> None:
    rows = OutboxStore(services.store.db)
    other = db.Database(database_url)  # a second replica: its own connections
    try:
        items = await refused_posts(services, rows, 8)
        replicas = [rows, OutboxStore(other)]
        await asyncio.gather(
            *(
                replicas[index % 2].refused(item, LATER, "is_archived", ESCALATIONS)
                for index, item in enumerate(items)
            )
        )

        written = await rows.rows()
        alerts = [row for row in written if row["channel"] == ESCALATIONS]
        (alert,) = [row for row in alerts if row["kind"] == Kind.MESSAGE]
        group = await rows.refusals(int(alert["payload"]["group"]))
        assert group is not None and (group.refused, group.channel) == (8, "C0ENT")
        assert all(row["kind"] == Kind.RECOUNT for row in alerts if row is not alert)

        # Unarchived: the event on one replica, a post getting through on the other.
        again = await asyncio.gather(
            rows.mended("C0ENT", LATER), OutboxStore(other).mended("C0ENT", LATER)
        )
        assert sum(again) == 8
        posts = [
            row
            for row in await rows.rows()
            if row["kind"] == Kind.POST_LEAD and row["state"] == "pending"
        ]
        assert sorted(int(row["lead_id"]) for row in posts) == list(range(1, 9))
        group = await rows.refusals(group.id)
        assert group is not None and group.reposted == 8 and group.mended_at == LATER
    finally:
        await other.dispose()


async def test_a_day_later_the_same_refusal_opens_a_new_alert(services: Services) -> None:
    rows = OutboxStore(services.store.db)
    first, second = await refused_posts(services, rows, 2)
    await rows.refused(first, LATER, "is_archived", ESCALATIONS)
    await rows.refused(second, LATER + timedelta(hours=25), "is_archived", ESCALATIONS)

    alerts = [row for row in await rows.rows() if row["kind"] == Kind.MESSAGE]
    assert len(alerts) == 2
    assert {row["key"] for row in alerts} == {"refused:1", "refused:2"}
